# robustbench-bytes: `make run` and `make test` set everything up from a bare Python.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The torch build, installed before the locked packages (the lock files leave torch out): 2.13.0, which on this
# project's machines is a CPU wheel kept on disk. Elsewhere pip takes PyPI's build of that version (CUDA on Linux
# x86_64); for the CPU build elsewhere give its index, e.g. TORCH='torch==2.13.0 --index-url URL-of-PyTorch-CPU-wheels'.
# A torch already in .venv that satisfies TORCH is kept.
TORCH ?= torch==2.13.0
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# -e . without fetching build tools: the locked setuptools builds it
INSTALL_PACKAGE := $(PY) -m pip install --quiet --no-deps --no-build-isolation -e .

.PHONY: run test bench bench-gpu report extrapolation setup lock clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# `make run`: the package and what running needs, at the locked versions (requirements/run.lock; each lock file
# holds the whole dependency tree but torch, so it installs with --no-deps: nothing is resolved afresh)
$(RUN_STAMP): requirements/run.lock pyproject.toml | $(PY)
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/run.lock
	$(INSTALL_PACKAGE)
	$(PY) -m pip check
	touch $@

# `make test`: + the [dev] stack (pytest, transformers, triton for its interpreter tests, lm-eval)
$(DEV_STAMP): requirements/dev.lock $(RUN_STAMP)
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/dev.lock
	$(PY) -m pip check
	touch $@

setup: $(DEV_STAMP)

# re-resolve requirements/*.lock from pyproject.toml's ranges (deliberately; commit after `make test` passes)
lock:
	PYTHON=$(PYTHON) TORCH='$(TORCH)' bash requirements/lock.sh

run: $(RUN_STAMP)
	$(VENV)/bin/robustbench run --noise antspeak

# one pytest worker per CPU this process may use (at most 8; xdist's own "auto" counts physical cores, which is 1
# on a 2-vCPU machine with SMT), a test file per worker at a time (module fixtures are built once);
# TEST_WORKERS=0 runs it in this process (pytest -n 0), as does a plain `pytest`
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(); print(min(8, n or 1))')
test: $(DEV_STAMP)
	$(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadfile

bench: $(DEV_STAMP)
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/bench.lock
	$(PY) bench/run_all.py

bench-gpu: $(DEV_STAMP)
	$(PY) bench/gpu.py

# the built-in multiple-choice tasks under the same noises; TASK_ITEMS keeps `make report` within a few minutes
TASK_ITEMS ?= 150
report: $(RUN_STAMP)
	$(VENV)/bin/robustbench run --suite paper --out runs/default
	$(VENV)/bin/robustbench run --suite paper --out runs/default --task kjv-verses --task shakespeare-lines \
		--limit-items $(TASK_ITEMS) --batch-size 64
	$(VENV)/bin/robustbench report runs/default -o reports/default

# Length extrapolation (issue 12): the zoo, clean and under antspeak, on the 9 whole long test books and plays
# (1,025,054 bytes clean, 1,700,087 under antspeak); bits per byte by position in reports/length/. All documents in
# one batch (the byte model scans them together). Measured on the 2-core machine while training jobs held it
# (load 6-8): the six cells took 1,065 s of scoring (the byte model's from mambabyte-kjv, the same shape); the
# quiet-machine throughputs of bench/results/zoo.md give about 5 minutes. To cut the cost: EXTRAPOLATION_OPTIONS="--max-document-bytes 65536" (64x a 1 KB training length).
EXTRAPOLATION_MODELS ?= gpt-bpe-kjv-shakespeare mamba-bpe-kjv-shakespeare mambabyte-kjv-shakespeare
EXTRAPOLATION_CORPUS ?= kjv-shakespeare:long
EXTRAPOLATION_OPTIONS ?=
extrapolation: $(RUN_STAMP)
	$(VENV)/bin/robustbench run $(foreach m,$(EXTRAPOLATION_MODELS),--model $(m)) --noise antspeak \
		--corpus $(EXTRAPOLATION_CORPUS) --batch-size 16 $(EXTRAPOLATION_OPTIONS) --out runs/length
	$(VENV)/bin/robustbench report runs/length -o reports/length

clean:
	rm -rf $(VENV) build *.egg-info
