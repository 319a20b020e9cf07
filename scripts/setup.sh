#!/usr/bin/env bash
# Creates .venv with the pinned dependencies, installs promo_roi (editable),
# pre-fetches the Delta Lake jars into ~/.m2 and writes the venv's
# spark-defaults.conf so plain `spark-submit jobs/X.py` finds Delta and the
# venv's Python. Idempotent: `make` reruns it only when the lock changes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
echo "[setup] installing pinned dependencies from requirements.lock"
# --compile-bytecode: write every module's .pyc now. Where PYTHONDONTWRITEBYTECODE
# is set (as on this project's machines) Python never caches bytecode itself, so
# without it every process (each job, Spark Python worker, TorchDistributor rank,
# Airflow task) compiles torch, transformers and mlflow from source again: about
# half the CPU of importing them.
.venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python -r requirements.lock
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .

JVM_PACKAGES=$(.venv/bin/python -c 'import yaml; print(",".join(yaml.safe_load(open("conf/base.yaml"))["spark"]["jvm_packages"]))')

# Spark resolves spark.jars.packages through Ivy, which also looks in ~/.m2:
# fetching once here lets later sessions start without reaching Maven Central.
if command -v mvn >/dev/null 2>&1; then
  for artifact in ${JVM_PACKAGES//,/ }; do
    echo "[setup] fetching $artifact into ~/.m2"
    mvn -q -B dependency:get -Dartifact="$artifact" >/dev/null || \
      echo "[setup] mvn could not fetch $artifact; Spark will resolve it at session start"
  done
fi

SPARK_HOME=$(.venv/bin/python -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))')
mkdir -p "$SPARK_HOME/conf"
cat > "$SPARK_HOME/conf/spark-defaults.conf" <<CONF
# Written by promo-roi scripts/setup.sh: lets \`spark-submit jobs/X.py\` load
# Delta Lake and run the driver and workers on this venv's Python.
spark.jars.packages              $JVM_PACKAGES
spark.sql.extensions             io.delta.sql.DeltaSparkSessionExtension
spark.sql.catalog.spark_catalog  org.apache.spark.sql.delta.catalog.DeltaCatalog
spark.pyspark.python             $ROOT/.venv/bin/python
spark.pyspark.driver.python      $ROOT/.venv/bin/python
CONF
# The PostgreSQL JDBC driver on Spark's class path, for the shared metastore
# (scripts/metastore_postgres.sh; docs/sql.md, "SQL for analysts"): the metastore
# client loads it through DriverManager, which does not see --packages jars.
PATH="$ROOT/.venv/bin:$PATH" bash scripts/metastore_postgres.sh driver || \
  echo "[setup] could not fetch the PostgreSQL JDBC driver; scripts/metastore_postgres.sh start will retry"
echo "[setup] done: $(.venv/bin/python -c 'import pyspark, delta, torch; print("pyspark", pyspark.__version__, "torch", torch.__version__)')"
