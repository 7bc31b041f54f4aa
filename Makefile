# The two set-up commands of the README (`make demo`, `make test`) and the benchmarks (`make bench`).
# Each creates or reuses .venv and installs the pinned requirements (runtime and dev) plus the provider in plugins/.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PYTEST_ARGS ?= -n 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench clean

$(STAMP): requirements.txt requirements-dev.txt plugins/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e plugins/
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/python scripts/demo.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy plugins/xero dags xero_sandbox dashboard

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python -m bench

# The dashboard over the configured warehouse's marts on http://127.0.0.1:8501 (DASHBOARD_ARGS="--port 8502").
.PHONY: dashboard
dashboard: venv
	$(BIN)/python -m dashboard $(DASHBOARD_ARGS)

clean:
	rm -rf .airflow data bench/results.json
