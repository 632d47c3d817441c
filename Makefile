# OpenPHM: two commands on a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark
BROWSER_STAMP := $(VENV)/.installed-browser
# Spark's driver binds to the loopback address (no network beyond this machine)
export SPARK_LOCAL_IP ?= 127.0.0.1
DEMO_DIR ?= demo-output
DEMO_PEOPLE ?= 50000

.PHONY: demo test unit spec integration e2e browser lint bench clean setup spark

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

# Debian's Chromium for the browser tests (Playwright drives it at /usr/bin/chromium; Playwright's own
# browser download is not used); `make demo` does not need it.
$(BROWSER_STAMP): $(STAMP)
	@test -x /usr/bin/chromium || { echo "installing chromium with apt-get"; \
		apt-get update -qq && apt-get install -y -qq chromium; }
	touch $(BROWSER_STAMP)

setup: $(STAMP)
spark: $(SPARK_STAMP)

# The demo applies the synthetic ICS's National Data Opt-out list before it builds (see `openphm demo`).
demo: $(STAMP)
	$(BIN)/openphm demo --people $(DEMO_PEOPLE) --out $(DEMO_DIR)

test: $(SPARK_STAMP) $(BROWSER_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest -n 2 --dist loadfile tests

unit: $(STAMP)
	$(BIN)/pytest tests/unit
spec: $(STAMP)
	$(BIN)/pytest tests/spec
integration: $(SPARK_STAMP)
	$(BIN)/pytest tests/integration
e2e: $(STAMP)
	$(BIN)/pytest tests/e2e
browser: $(BROWSER_STAMP)
	$(BIN)/pytest tests/browser

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

# the web benchmark's load generator is Debian's wrk (a C client, so the clients take little of the 2 cores)
bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "installing wrk with apt-get"; apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
