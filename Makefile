# The two set-up commands of the README: `make run` and `make test`. Both build .venv from the pinned
# requirements first, so a fresh clone needs only Python 3.11 and git.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint format bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

## run: migrate, load the demo data, start web + Celery worker + beat on 127.0.0.1:8000
run: $(VENV)/.runtime-installed
	./scripts/run.sh

# axe-core for the browser tests' accessibility checks (package.json, pinned). Without npm they are skipped
# (failed under REQUIRE_SERVICES=1, like the browser tests without Chromium).
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --silent && touch $@; \
	else echo "npm not found: the accessibility checks (tests/browser/axe.py) will be skipped"; fi

## test: the whole suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set, SQLite otherwise)
test: $(VENV)/.dev-installed node_modules/.installed
	$(BIN)/pytest

## lint: ruff (lint + format) and mypy (what it checks is in pyproject.toml, [tool.mypy] files)
lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## fuzz: the ingestion API against its OpenAPI schema with many generated documents (the suite runs a few)
fuzz: $(VENV)/.dev-installed
	API_FUZZ_EXAMPLES=$${API_FUZZ_EXAMPLES:-3000} $(BIN)/pytest -p no:cacheprovider tests/practices/test_api_fuzz.py

## bench: the performance budgets of SPEC §11 (needs DATABASE_URL pointing at PostgreSQL)
bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache node_modules
