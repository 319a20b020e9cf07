#!/usr/bin/env bash
# The SQL endpoint: Spark's Thrift (JDBC/ODBC, HiveServer2 protocol) server on the jobs' catalog.
#
#   scripts/sql_endpoint.sh start [--port 10000] [--host localhost] [--profile P] [--set KEY=VALUE ...]
#   scripts/sql_endpoint.sh status [--port 10000]
#   scripts/sql_endpoint.sh stop [--port 10000]
#   beeline -u jdbc:hive2://localhost:10000 -n "$USER"        (beeline is in .venv/bin)
#
# It uses the same configuration as the jobs (--profile, --set, PROMO_ROI__* variables): the same
# warehouse, metastore and Delta settings; it creates the analyst views (gold.*_published,
# gold.latest_campaign_roi_forecast, gold.plan_vs_budget, gold.forecast_accuracy_over_time) at start.
# With the embedded Derby metastore, jobs cannot run while it is up: use scripts/metastore_postgres.sh.
# Logs and pid files: $PROMO_ROI_SQL_ENDPOINT_DIR (default /tmp/promo-roi-sql-endpoint), or --run-dir.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
if [ ! -x "$PY" ]; then
  echo "no $PY: run 'make setup' first" >&2
  exit 1
fi
if [ $# -eq 0 ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
export PATH="$ROOT/.venv/bin:$PATH"
exec "$PY" -m promo_roi.sql_endpoint "$@"
