# robustbench-bytes: `make run` and `make test` set everything up from a bare Python.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench bench-gpu report extrapolation setup clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/robustbench run --noise antspeak

# one pytest worker per CPU this process may use (at most 8; xdist's own "auto" counts physical cores, which is 1
# on a 2-vCPU machine with SMT), a test file per worker at a time (module fixtures are built once);
# TEST_WORKERS=0 runs it in this process (pytest -n 0), as does a plain `pytest`
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(); print(min(8, n or 1))')
test: $(STAMP)
	$(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) bench/run_all.py

bench-gpu: $(STAMP)
	$(PY) bench/gpu.py

# the built-in multiple-choice tasks under the same noises; TASK_ITEMS keeps `make report` within a few minutes
TASK_ITEMS ?= 150
report: $(STAMP)
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
extrapolation: $(STAMP)
	$(VENV)/bin/robustbench run $(foreach m,$(EXTRAPOLATION_MODELS),--model $(m)) --noise antspeak \
		--corpus $(EXTRAPOLATION_CORPUS) --batch-size 16 $(EXTRAPOLATION_OPTIONS) --out runs/length
	$(VENV)/bin/robustbench report runs/length -o reports/length

clean:
	rm -rf $(VENV) build *.egg-info
