# Quick start: `make demo` and `make test`. Both bootstrap .venv from this repo's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps re-install only when pyproject.toml changes.
$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-all

demo: $(VENV)/.installed-all
	$(BIN)/phantom-auction demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy src

test: lint typecheck
	@# PostgreSQL for the store tests; without it they skip (CI requires it: .ci/run).
	bash scripts/ensure-postgres.sh >/dev/null || echo "PostgreSQL unavailable: its tests will skip"
	@# Headless Chromium for the explorer's browser tests; without it they skip (CI requires it).
	bash scripts/ensure-chromium.sh >/dev/null || echo "Chromium unavailable: the browser tests will skip"
	$(BIN)/python -m pytest -q

# The inner loop: every test but those marked slow (cluster, server-process, learning
# and load tests); `make test` still runs them all.
test-fast: $(VENV)/.installed-dev
	bash scripts/ensure-postgres.sh >/dev/null || echo "PostgreSQL unavailable: its tests will skip"
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(VENV)/.installed-all
	$(BIN)/phantom-auction bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
