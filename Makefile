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

# The demo, then the synthetic ICS's National Data Opt-out list applied as an ICS would receive it:
# planning outputs leave those people out (segments and indicators are computed again without them),
# direct care (the record, risk scores, case-finding lists) keeps them.
demo: $(STAMP)
	$(BIN)/openphm demo --people $(DEMO_PEOPLE) --out $(DEMO_DIR)
	@echo; echo "National Data Opt-out: applying $(DEMO_DIR)/synthetic-ics/optout/national_data_opt_out.txt"
	$(BIN)/openphm optout $(DEMO_DIR)/synthetic-ics/optout/national_data_opt_out.txt --db $(DEMO_DIR)/openphm.duckdb --build
	$(BIN)/openphm measures run --db $(DEMO_DIR)/openphm.duckdb
	$(BIN)/openphm measures report --db $(DEMO_DIR)/openphm.duckdb --out $(DEMO_DIR)/reports
	$(BIN)/openphm segments run --db $(DEMO_DIR)/openphm.duckdb

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
