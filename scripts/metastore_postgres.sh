#!/usr/bin/env bash
# A Hive metastore on PostgreSQL that the jobs and the SQL endpoint share (several JVMs at once;
# the embedded Derby metastore admits one).
#
#   scripts/metastore_postgres.sh start  [--port 5433] [--dir DIR]   install (apt), init, start, print flags
#   scripts/metastore_postgres.sh status [--dir DIR]
#   scripts/metastore_postgres.sh stop   [--dir DIR]
#   scripts/metastore_postgres.sh flags  [--port 5433] [--dir DIR]   print the --set flags again
#   scripts/metastore_postgres.sh driver                              put the JDBC driver into the venv's Spark
#
# start: installs PostgreSQL from the Debian packages when no server binaries are found (apt-get,
# as root or through sudo), creates a cluster in DIR/data (default warehouse/_metastore_postgres)
# listening on 127.0.0.1:PORT only, the role and database (hive / hive_metastore), puts the
# PostgreSQL JDBC driver on Spark's class path (the venv's pyspark/jars: the metastore client loads
# it through java.sql.DriverManager, which does not see jars from spark.jars.packages), creates the
# Hive metastore schema with DataNucleus' SchemaTool from the hive-metastore jar Spark ships (the
# lazy auto-creation deadlocks on PostgreSQL: it adds foreign keys while the same metastore holds
# row locks), and prints the --set flags that point a job or the SQL endpoint at it; they are also
# written one per line to DIR/spark-flags:
#
#   mapfile -t PG < warehouse/_metastore_postgres/spark-flags
#   scripts/sql_endpoint.sh start "${PG[@]}"
#   spark-submit jobs/score.py --run-date 2017-07-01 "${PG[@]}"
#
# Settings (environment): PROMO_ROI_PG_PORT (5433), PROMO_ROI_PG_DIR, PROMO_ROI_PG_DB
# (hive_metastore), PROMO_ROI_PG_USER (hive), PROMO_ROI_PG_PASSWORD (hive).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
PORT="${PROMO_ROI_PG_PORT:-5433}"
DIR="${PROMO_ROI_PG_DIR:-$ROOT/warehouse/_metastore_postgres}"
DB="${PROMO_ROI_PG_DB:-hive_metastore}"
DB_USER="${PROMO_ROI_PG_USER:-hive}"
DB_PASSWORD="${PROMO_ROI_PG_PASSWORD:-hive}"
# The PostgreSQL JDBC driver (Maven Central), resolved by Spark's own resolver.
JDBC_PACKAGE="org.postgresql:postgresql:42.7.4"

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; }
say() { echo "[metastore] $*"; }
die() { echo "[metastore] error: $*" >&2; exit 1; }

COMMAND="${1:-}"
[ -n "$COMMAND" ] || { usage; exit 2; }
shift
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see $0 without arguments)" ;;
  esac
done
case "$COMMAND" in start|flags) mkdir -p "$DIR" ;; esac
DIR="$(cd "$DIR" 2>/dev/null && pwd || echo "$DIR")"
DATA="$DIR/data"
# The URL names the user only: the password reaches jobs through PROMO_ROI_METASTORE_PASSWORD, from
# $DIR/metastore.env (0600), never through argv (ps shows it) or a file others can read.
URL="jdbc:postgresql://127.0.0.1:$PORT/$DB?user=$DB_USER"

pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

install_postgres() {
  say "PostgreSQL server not found: installing the Debian packages"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || \
      die "PostgreSQL is not installed and this user cannot install it: apt-get install postgresql (as root)"
    sudo="sudo -n"
  fi
  # RUNLEVEL=1: invoke-rc.d does not start the package's own cluster (we run ours, on our port).
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -q --no-install-recommends \
    postgresql postgresql-client >/dev/null
}

BIN=""
RUN_AS=()
setup_runner() {
  BIN="$(pg_bindir)" || { install_postgres; BIN="$(pg_bindir)" || die "no PostgreSQL server binaries after install"; }
  if [ "$(id -u)" -eq 0 ]; then
    # The server refuses to run as root: run it as the postgres account the package created.
    id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user"
    RUN_AS=(runuser -u postgres --)
    chown postgres "$DIR"
    "${RUN_AS[@]}" test -w "$DIR" || die "user postgres cannot write $DIR (a parent directory is not traversable); use --dir"
  fi
}

pg() { "${RUN_AS[@]}" "$BIN/$1" "${@:2}"; }
psql_super() { "${RUN_AS[@]}" "$BIN/psql" -X -q -h "$DIR" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 "$@"; }

running() { [ -f "$DATA/PG_VERSION" ] && pg pg_ctl -D "$DATA" status >/dev/null 2>&1; }

spark_home() { "$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'; }

ensure_driver() {
  [ -x "$PY" ] || die "no $PY: run 'make setup' first"
  local jars artifact version target resolved
  jars="$(spark_home)/jars"
  artifact="${JDBC_PACKAGE#*:}"; artifact="${artifact%%:*}"
  version="${JDBC_PACKAGE##*:}"
  target="$jars/$artifact-$version.jar"
  [ -f "$target" ] && return 0
  say "resolving $JDBC_PACKAGE with spark-submit"
  resolved="$(PATH="$ROOT/.venv/bin:$PATH" "$ROOT/.venv/bin/spark-submit" --verbose --packages "$JDBC_PACKAGE" \
      --class org.apache.spark.deploy.SparkSubmit spark-internal --version 2>&1 \
    | sed -n 's#^file:\(//\)\{0,1\}\(/.*org\.postgresql_postgresql-'"$version"'\.jar\)$#\2#p' | head -1)"
  [ -n "$resolved" ] && [ -f "$resolved" ] || die "could not resolve $JDBC_PACKAGE (Maven Central or ~/.m2 needed once)"
  cp "$resolved" "$target"
  say "installed $target"
}

init_cluster() {
  if [ ! -f "$DATA/PG_VERSION" ]; then
    say "initialising a PostgreSQL cluster in $DATA"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$DIR"; fi
    pg initdb -D "$DATA" -U postgres -E UTF8 --locale=C --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  fi
}

start_server() {
  if running; then
    say "PostgreSQL already running ($DATA)"
    return 0
  fi
  say "starting PostgreSQL on 127.0.0.1:$PORT"
  pg pg_ctl -D "$DATA" -l "$DIR/postgres.log" -w -t 60 \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c unix_socket_permissions=0700" start >/dev/null \
    || { tail -20 "$DIR/postgres.log" >&2; die "PostgreSQL did not start (log $DIR/postgres.log)"; }
  echo "$PORT" > "$DIR/port"
}

ensure_database() {
  # On stdin, not -c: the password must not appear in any process's argv.
  psql_super -d postgres <<SQL
DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE "$DB_USER" LOGIN PASSWORD '$DB_PASSWORD';
  END IF; END\$\$;
SQL
  if [ -z "$(psql_super -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
    psql_super -d postgres -c "CREATE DATABASE \"$DB\" OWNER \"$DB_USER\""
    say "created database $DB owned by $DB_USER"
  fi
}

init_schema() {
  if [ -n "$(psql_super -d "$DB" -Atc "SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = 'DBS'")" ]; then
    return 0
  fi
  say "creating the Hive metastore schema (DataNucleus SchemaTool, Hive $(ls "$(spark_home)/jars" | sed -n 's/^hive-metastore-\(.*\)\.jar$/\1/p'))"
  local tmp jars java
  tmp="$(mktemp -d)"
  jars="$(spark_home)/jars"
  "$PY" - "$jars" "$tmp" <<'PYCODE'
import glob, sys, zipfile
jar = sorted(glob.glob(f"{sys.argv[1]}/hive-metastore-*.jar"))[0]
with zipfile.ZipFile(jar) as z:
    z.extract("package.jdo", sys.argv[2])
PYCODE
  cat > "$tmp/datanucleus.properties" <<PROPS
javax.jdo.option.ConnectionURL=jdbc:postgresql://127.0.0.1:$PORT/$DB
javax.jdo.option.ConnectionDriverName=org.postgresql.Driver
javax.jdo.option.ConnectionUserName=$DB_USER
javax.jdo.option.ConnectionPassword=$DB_PASSWORD
datanucleus.identifierFactory=datanucleus1
datanucleus.rdbms.useLegacyNativeValueStrategy=true
datanucleus.storeManagerType=rdbms
PROPS
  java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  "$java" -cp "$jars/*" org.datanucleus.store.schema.SchemaTool -create -api JDO \
    -props "$tmp/datanucleus.properties" "$tmp/package.jdo" > "$DIR/schematool.log" 2>&1 \
    || { tail -20 "$DIR/schematool.log" >&2; rm -rf "$tmp"; die "SchemaTool failed (log $DIR/schematool.log)"; }
  rm -rf "$tmp"
  # DataNucleus' id table, created lazily otherwise (two processes could race to create it).
  PGPASSWORD="$DB_PASSWORD" "$BIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U "$DB_USER" -d "$DB" -v ON_ERROR_STOP=1 -c \
    'CREATE TABLE IF NOT EXISTS "SEQUENCE_TABLE" ("SEQUENCE_NAME" varchar(255) NOT NULL, "NEXT_VAL" bigint NOT NULL,
     CONSTRAINT "SEQUENCE_TABLE_PK" PRIMARY KEY ("SEQUENCE_NAME"))'
  say "schema ready: $(psql_super -d "$DB" -Atc "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") tables"
}

print_flags() {
  (
    umask 077
    printf '%s\n' --set "spark.metastore_url=$URL" \
      --set "spark.extra.spark.hadoop.javax.jdo.option.ConnectionDriverName=org.postgresql.Driver" > "$DIR/spark-flags"
    printf 'PROMO_ROI_METASTORE_PASSWORD=%q\n' "$DB_PASSWORD" > "$DIR/metastore.env"
  )
  chmod 600 "$DIR/spark-flags" "$DIR/metastore.env"
  echo "Hive metastore on PostgreSQL: $URL"
  echo "Give every job and the SQL endpoint the same flags (also in $DIR/spark-flags):"
  echo "  --set 'spark.metastore_url=$URL' \\"
  echo "  --set spark.extra.spark.hadoop.javax.jdo.option.ConnectionDriverName=org.postgresql.Driver"
  echo "and the password in their environment (from $DIR/metastore.env, readable by you only):"
  echo "  set -a; . $DIR/metastore.env; set +a"
  echo "e.g.  mapfile -t PG < $DIR/spark-flags; scripts/sql_endpoint.sh start \"\${PG[@]}\""
}

case "$COMMAND" in
  start)
    setup_runner
    ensure_driver
    init_cluster
    start_server
    ensure_database
    init_schema
    print_flags
    ;;
  stop)
    BIN="$(pg_bindir)" || die "PostgreSQL is not installed"
    if [ "$(id -u)" -eq 0 ]; then RUN_AS=(runuser -u postgres --); fi
    if running; then
      pg pg_ctl -D "$DATA" -m fast -w stop >/dev/null
      say "stopped ($DATA)"
    else
      say "not running ($DATA)"
    fi
    ;;
  status)
    BIN="$(pg_bindir)" || { say "PostgreSQL is not installed"; exit 3; }
    if [ "$(id -u)" -eq 0 ]; then RUN_AS=(runuser -u postgres --); fi
    if running; then
      say "running: $DATA, port $(cat "$DIR/port" 2>/dev/null || echo "?")"
    else
      say "not running ($DATA)"
      exit 3
    fi
    ;;
  flags)
    print_flags
    ;;
  driver)
    ensure_driver
    ;;
  *)
    usage
    exit 2
    ;;
esac
