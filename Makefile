# Two entry points: `make demo` and `make test`. Both install what they need into .venv.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
export CX_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

# demo size (override: make demo DEMO_CUSTOMERS=20000)
DEMO_CUSTOMERS ?= 5000
DEMO_DAYS      ?= 30
DEMO_START     ?= 2026-10-10
DEMO_SEED      ?= 42

.PHONY: reliability install demo dev test lint bench clean java spark-demo test-spark

# --compile-bytecode: uv, unlike pip, installs no .pyc files; where PYTHONDONTWRITEBYTECODE is set (this
# workplace's machines) every process then compiles what it imports (Great Expectations alone: 9.5 s -> 3.7 s)
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev,simulator]'
	touch $@

# pyspark lives in its own venv: pyspark 4.3 exits the interpreter when Great Expectations probes for
# it, so the two never share a process. Its wheel ships the Spark that `cxw spark start` runs (the
# local Thrift server dbt's `spark` target reaches from .venv, over PyHive), and dbt-spark[session]
# for the `spark_session` target.
SPARK_VENV := .venv-spark
$(SPARK_VENV)/bin/.installed: pyproject.toml
	$(PYTHON) -m venv $(SPARK_VENV)
	$(SPARK_VENV)/bin/python -m pip install --quiet --upgrade pip uv
	$(SPARK_VENV)/bin/uv pip install --quiet --compile-bytecode --python $(SPARK_VENV)/bin/python "dbt-core>=1.11.16,<1.12" \
		"dbt-spark[session]>=1.11,<1.12"
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

# Great Expectations' Data Docs load jQuery, Bootstrap, Vega, Font Awesome... from CDNs: the gate serves them from
# the docs folder (expectations/data_docs_offline.py), copied from these npm packages, at the exact versions the
# pages name (docs/data-quality.md, "Data Docs offline")
DOCS_ASSETS := expectations/data_docs_assets
$(DOCS_ASSETS)/node_modules/.installed: $(DOCS_ASSETS)/package.json $(DOCS_ASSETS)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: the Data Docs' scripts, styles and fonts (jQuery," \
		"Bootstrap, Vega, Font Awesome) are installed with npm so that the Data Docs open offline. Install Node.js" \
		"and npm: sudo apt-get install -y nodejs npm (Debian/Ubuntu)." >&2; exit 1; }
	cd $(DOCS_ASSETS) && npm ci --no-audit --no-fund
	touch $@

install: $(BIN)/.installed $(DAGSTER_HOME)/dagster.yaml $(DOCS_ASSETS)/node_modules/.installed
	cd dbt_project && CX_DATA_DIR=$(CX_DATA_DIR) ../$(BIN)/dbt parse --profiles-dir . --no-partial-parse --quiet

DEMO_END = $(shell $(PYTHON) -c "import datetime as d; print(d.date.fromisoformat('$(DEMO_START)') + d.timedelta(days=$(DEMO_DAYS) - 1))")

demo: install
	$(BIN)/cxw generate --customers $(DEMO_CUSTOMERS) --days $(DEMO_DAYS) --start $(DEMO_START) --seed $(DEMO_SEED)
	$(BIN)/cxw backfill --start $(DEMO_START) --end $(DEMO_END)
	$(BIN)/cxw report
	@echo "drops: $(CX_DATA_DIR)/landing (planted effects and mess: landing/truth.json)"
	@echo "raw zone: $(CX_DATA_DIR)/raw, quarantine: $(CX_DATA_DIR)/quarantine, load audit: raw/_load_audit"
	@echo "live warehouse (not for BI): $(CX_DATA_DIR)/warehouse.duckdb; KPI definitions: docs/kpi-decisions.md"
	@echo "browse assets, checks and runs: make dev, then open http://127.0.0.1:3000"

dev: install
	$(BIN)/dagster dev -m orchestration.definitions

# the same nightly chain on Spark (docs/spark.md): a generated week, built by dbt over a local Spark
# Thrift server, gated and published like the DuckDB demo. Its own data directory; the server is
# stopped at the end, whatever happens.
SPARK_DEMO_DIR  ?= $(CURDIR)/data-spark
SPARK_DEMO_DAYS ?= 7
SPARK_DEMO_END = $(shell $(PYTHON) -c "import datetime as d; print(d.date.fromisoformat('$(DEMO_START)') + d.timedelta(days=$(SPARK_DEMO_DAYS) - 1))")
spark-demo: install $(SPARK_VENV)/bin/.installed java
	CX_DATA_DIR=$(SPARK_DEMO_DIR) $(BIN)/cxw generate --customers 2000 --days $(SPARK_DEMO_DAYS) --start $(DEMO_START) --seed $(DEMO_SEED)
	CX_DATA_DIR=$(SPARK_DEMO_DIR) $(BIN)/cxw spark start
	CX_DATA_DIR=$(SPARK_DEMO_DIR) CX_ENGINE=spark $(BIN)/cxw backfill --start $(DEMO_START) --end $(SPARK_DEMO_END); \
		status=$$?; CX_DATA_DIR=$(SPARK_DEMO_DIR) $(BIN)/cxw spark stop; exit $$status
	@echo "Spark's tables: $(SPARK_DEMO_DIR)/spark/warehouse; served copy: $(SPARK_DEMO_DIR)/serving"

# the local Spark Thrift server (tests/test_spark.py, `cxw spark start`) needs Java 17
java:
	@command -v java >/dev/null 2>&1 || { echo "Java not found: the local Spark Thrift server needs a Java 17 runtime." \
		"Install it: sudo apt-get install -y openjdk-17-jre-headless (Debian/Ubuntu), or set JAVA_HOME." >&2; exit 1; }

test: install $(SPARK_VENV)/bin/.installed java
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=25

# the project on a local Spark Thrift server against DuckDB (tests/test_spark.py, docs/spark.md)
test-spark: install $(SPARK_VENV)/bin/.installed java
	$(BIN)/pytest tests/test_spark.py -m spark -n 0

# every reliability scenario (docs/reliability.md); regenerates RELIABILITY.md from this run's outcomes
reliability: install
	CX_RELIABILITY_REPORT=$(CURDIR)/RELIABILITY.md $(BIN)/pytest tests/reliability -m reliability -n 2 --dist loadgroup

# benchmarks (docs/benchmarks.md): make bench BENCH_SCALE=M
BENCH_SCALE ?= S
bench: install
	$(BIN)/python -m benchmarks --scale $(BENCH_SCALE) --record

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(CX_DATA_DIR) bench_work .pytest_cache .ruff_cache
