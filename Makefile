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

test: $(STAMP)
	$(PY) -m pytest tests

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

# Length extrapolation (issue 12): the zoo, clean and under antspeak, on the whole long test books and plays;
# bits per byte by position in reports/length/. All documents in one batch (the byte model scans them together).
EXTRAPOLATION_MODELS ?= mambabyte-kjv-shakespeare mamba-bpe-kjv-shakespeare gpt-bpe-kjv-shakespeare
EXTRAPOLATION_CORPUS ?= kjv-shakespeare:long
extrapolation: $(STAMP)
	$(VENV)/bin/robustbench run $(foreach m,$(EXTRAPOLATION_MODELS),--model $(m)) --noise antspeak \
		--corpus $(EXTRAPOLATION_CORPUS) --batch-size 16 --out runs/length
	$(VENV)/bin/robustbench report runs/length -o reports/length

clean:
	rm -rf $(VENV) build *.egg-info
