# robustbench-bytes: `make run` and `make test` set everything up from a bare Python.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench bench-gpu report setup clean

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

report: $(STAMP)
	$(VENV)/bin/robustbench run --suite paper --out runs/default
	$(VENV)/bin/robustbench report runs/default -o reports/default

clean:
	rm -rf $(VENV) build *.egg-info
