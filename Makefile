# The two set-up commands of the README: `make repro` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install repro test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# --no-compile: Python writes the bytecode of the modules it imports when it first imports
# them; compiling every file of every package at install took 30 s more (71 s against 41 s
# into a fresh venv from the wheel cache, 2-core reference machine).
install: $(BIN)/python
	$(BIN)/pip install --quiet --no-compile -r requirements.txt

repro: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

test: lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder

bench: install
	$(BIN)/python -m bench.memory
