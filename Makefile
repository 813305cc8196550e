# Two entry points, both self-contained on a fresh machine with Python 3.11 and make:
#   make demo   venv + install + demo data + whole asset graph on DuckDB/SQLite
#   make test   venv + install + the whole test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export EXP_PIPELINE_HOME ?= $(CURDIR)/.exp_pipeline
DEMO_EVENTS ?= 200000

.PHONY: demo test ui lint install

$(BIN)/exp-pipeline: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/exp-pipeline

# The `spark` extra (PySpark, ~450 MB) only for the tests: `make demo` stays light.
$(VENV)/.spark-installed: $(BIN)/exp-pipeline
	$(BIN)/pip install --quiet -e '.[dev,spark]'
	touch $@

demo: install
	$(BIN)/exp-pipeline demo --events $(DEMO_EVENTS)

test: install $(VENV)/.spark-installed
	scripts/ensure-chromium
	$(BIN)/ruff check .
	$(BIN)/pytest

ui: install
	$(BIN)/exp-pipeline ui

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
