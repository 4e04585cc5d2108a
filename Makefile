# The set-up commands of the README. All create .venv/ on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast lint bench clean-models

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## Run the service on http://127.0.0.1:8000 (trains the default model from data/ if none exists).
run: $(STAMP)
	$(BIN)/triage serve

## Lint (ruff check, ruff format --check, mypy), then run the whole test suite.
test: lint
	$(BIN)/python -m pytest

## The edit-test loop: everything except the slow (training, subprocess) and browser tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not browser"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/real_data.py
	$(BIN)/python benchmarks/api.py
	$(BIN)/python benchmarks/batch.py
