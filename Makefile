# The two commands a newcomer needs:
#   make demo   run the nightly pipeline end to end on the embedded default
#   make test   run the test suite
# Both set up .venv (pinned dependencies, Delta jars) when it is missing or stale.

VENV := .venv
STAMP := $(VENV)/.installed
AS_OF ?= 2017-07-01
# Past run dates the demo backtests (their campaigns have run to their end in the data).
BACKTEST_DATES ?= 2017-07-01,2017-08-01,2017-09-01
SPARK_SUBMIT := $(VENV)/bin/spark-submit
# spark-submit finds Spark through the python3 on PATH: make it the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test test-fast test-all tables package bench-training bench-scoring bench-solver bench-examples bench-delta-version clean-warehouse

$(STAMP): requirements.lock pyproject.toml scripts/setup.sh conf/base.yaml
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(SPARK_SUBMIT) jobs/ingest.py
	$(SPARK_SUBMIT) jobs/build_features.py --as-of $(AS_OF)
	$(SPARK_SUBMIT) jobs/build_item_store_week.py --as-of $(AS_OF)
	$(SPARK_SUBMIT) jobs/evaluate_promotions.py --as-of $(AS_OF)
	$(SPARK_SUBMIT) jobs/train.py --as-of $(AS_OF)
	$(SPARK_SUBMIT) jobs/score.py --run-date $(AS_OF)
	$(SPARK_SUBMIT) jobs/backtest.py --run-dates $(BACKTEST_DATES)
	$(VENV)/bin/promo-roi tables
	@# Where the jobs put it: the configuration decides (reports.root), as for the jobs above.
	@$(VENV)/bin/python scripts/demo_report_path.py $(AS_OF)

# Two pytest-xdist workers; tests/conftest.py decides what shares a worker (SCHEDULE_GROUPS).
# PYTEST_PARALLEL= runs everything in one process.
PYTEST_PARALLEL ?= -n 2

test: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow" $(PYTEST_PARALLEL)

# The edit-run loop: pure units and small Spark, no end-to-end chains (tests/conftest.py marks them e2e).
# One process: a second worker's Spark session costs more than it saves here (110 s vs 165 s).
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow and not e2e"

test-all: $(STAMP)
	$(VENV)/bin/python -m pytest

tables: $(STAMP)
	$(VENV)/bin/promo-roi tables

# What a cluster needs (docs/cluster.md): dist/promo-roi-<version>/
# with the promo_roi zip for --py-files, the job files, conf/ and the lock.
package: $(STAMP)
	$(VENV)/bin/python scripts/build_cluster_package.py

bench-training: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_training.py --as-of $(AS_OF)

bench-scoring: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_scoring.py --run-date $(AS_OF)

bench-solver: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_budget_solver.py --households 10000 100000 1000000

# Needs bronze and silver.campaign_exposures as of 2018-01-01 (jobs/build_features.py --as-of 2018-01-01).
bench-examples: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_examples.py --as-of 2018-01-01

bench-delta-version: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_delta_version.py --commits 20 --calls 40 --repeats 3

clean-warehouse:
	rm -rf warehouse

# One night of the Airflow DAG (airflow_dags/promo_roi_nightly.py) on the embedded
# default, run in-process by `airflow dags test`: NIGHT between 2017-07-04 and
# 2017-12-28; Airflow's sqlite metadata under warehouse/_airflow.
NIGHT ?= 2017-07-04
AIRFLOW_ENV := AIRFLOW_HOME=$(CURDIR)/warehouse/_airflow AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/airflow_dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW_CONN_PROMO_ROI_SPARK='{"conn_type": "spark", "host": "local[*]"}'
.PHONY: airflow-night
airflow-night: $(STAMP)
	$(AIRFLOW_ENV) $(VENV)/bin/airflow db migrate
	$(AIRFLOW_ENV) $(VENV)/bin/airflow dags test promo_roi_nightly $(NIGHT)

# SQL for analysts (docs/sql.md): the JDBC/ODBC endpoint on localhost:SQL_PORT
# over the jobs' catalog, the shared PostgreSQL metastore, and the small example warehouse
# that the example queries in docs/sql.md run on.
SQL_PORT ?= 10000
.PHONY: sql-endpoint sql-endpoint-stop metastore-postgres sql-example
sql-endpoint: $(STAMP)
	scripts/sql_endpoint.sh start --port $(SQL_PORT)

sql-endpoint-stop:
	scripts/sql_endpoint.sh stop --port $(SQL_PORT)

metastore-postgres: $(STAMP)
	scripts/metastore_postgres.sh start

sql-example: $(STAMP)
	$(VENV)/bin/python -m promo_roi.sql_examples --set warehouse.root=/tmp/promo-roi-sql-example
