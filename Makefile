# The two commands a newcomer needs:
#   make demo   run the nightly pipeline end to end on the embedded default
#   make test   run the test suite
# Both set up .venv (pinned dependencies, Delta jars) when it is missing or stale.

VENV := .venv
STAMP := $(VENV)/.installed
AS_OF ?= 2017-07-01
SPARK_SUBMIT := $(VENV)/bin/spark-submit
# spark-submit finds Spark through the python3 on PATH: make it the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test test-all tables bench-training clean-warehouse

$(STAMP): requirements.lock pyproject.toml scripts/setup.sh conf/base.yaml
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(SPARK_SUBMIT) jobs/ingest.py
	$(SPARK_SUBMIT) jobs/build_features.py --as-of $(AS_OF)
	$(SPARK_SUBMIT) jobs/train.py --as-of $(AS_OF)
	$(VENV)/bin/promo-roi tables

test: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow"

test-all: $(STAMP)
	$(VENV)/bin/python -m pytest

tables: $(STAMP)
	$(VENV)/bin/promo-roi tables

bench-training: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_training.py --as-of $(AS_OF)

clean-warehouse:
	rm -rf warehouse
