# Two commands set everything up on a fresh machine: `make train` and `make test`.
# Each creates .venv (CPU torch pinned first, so pip never pulls a CUDA build) when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: setup train test test-slow test-reference sweep bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

train: $(STAMP)
	$(PY) train.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(ARGS)

test-reference: $(STAMP)
	$(PY) -m pytest -m reference $(ARGS)

sweep: $(STAMP)
	$(PY) train.py -m experiment=cpu_quick loss=sup,mc,ssdu,noise2inverse,weighted_ssdu,ei,diffeo_ei,moi,mo_ei,vortex,adversarial,uair $(ARGS)

bench: $(STAMP)
	$(PY) -m ssmri.bench $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check ssmri tests train.py eval.py

clean:
	rm -rf outputs multirun wandb lightning_logs .pytest_cache .ruff_cache build *.egg-info
