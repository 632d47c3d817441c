# OpenPHM: two commands on a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark
# Spark's driver binds to the loopback address (no network beyond this machine)
export SPARK_LOCAL_IP ?= 127.0.0.1
DEMO_DIR ?= demo-output
DEMO_PEOPLE ?= 50000

.PHONY: demo test unit spec integration e2e lint bench clean setup spark

$(STAMP): pyproject.toml
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || { echo "installing python3-venv with apt-get"; \
		apt-get update -qq && apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The Spark extra and Java 17 (from Debian) for the engine parity tests; `make demo` does not need them.
$(SPARK_STAMP): $(STAMP)
	@java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])' || { echo "installing Java 17 with apt-get"; \
		apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless; }
	$(BIN)/pip install --quiet -e ".[dev,spark]"
	touch $(SPARK_STAMP)

setup: $(STAMP)
spark: $(SPARK_STAMP)

# The demo applies the synthetic ICS's National Data Opt-out list before it builds (see `openphm demo`).
demo: $(STAMP)
	$(BIN)/openphm demo --people $(DEMO_PEOPLE) --out $(DEMO_DIR)

test: $(SPARK_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest tests

unit: $(STAMP)
	$(BIN)/pytest tests/unit
spec: $(STAMP)
	$(BIN)/pytest tests/spec
integration: $(SPARK_STAMP)
	$(BIN)/pytest tests/integration
e2e: $(STAMP)
	$(BIN)/pytest tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
