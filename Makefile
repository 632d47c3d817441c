# OpenPHM: two commands on a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-output
DEMO_PEOPLE ?= 50000

.PHONY: demo test unit spec integration e2e lint bench clean setup

$(STAMP): pyproject.toml
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || { echo "installing python3-venv with apt-get"; \
		apt-get update -qq && apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# The demo applies the synthetic ICS's National Data Opt-out list before it builds (see `openphm demo`).
demo: $(STAMP)
	$(BIN)/openphm demo --people $(DEMO_PEOPLE) --out $(DEMO_DIR)

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest tests

unit: $(STAMP)
	$(BIN)/pytest tests/unit
spec: $(STAMP)
	$(BIN)/pytest tests/spec
integration: $(STAMP)
	$(BIN)/pytest tests/integration
e2e: $(STAMP)
	$(BIN)/pytest tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
