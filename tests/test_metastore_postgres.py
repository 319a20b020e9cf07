"""The multi-user setup: one PostgreSQL Hive metastore shared by the SQL endpoint and a job, at once.

``scripts/metastore_postgres.sh start`` sets PostgreSQL up (installing the
Debian packages when the server is missing) in a temporary directory on a free
port; the SQL endpoint is started on an empty warehouse with its flags; while
it serves, a Spark job (``promo_roi.sql_examples``) writes and registers the
gold tables and views through the same metastore, and the endpoint, which
never wrote them, answers for them. With the embedded Derby metastore the job
could not even open the catalog while the endpoint holds it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from promo_roi.analyst_views import ANALYST_VIEWS
from promo_roi.sql_endpoint import jdbc_query
from test_sql_endpoint import REPO, _env, free_port, run_checked, sets, write_example_warehouse

SCRIPT = str(REPO / "scripts" / "metastore_postgres.sh")


@pytest.fixture(scope="module")
def postgres():
    # Not under pytest's 0700 temp root: as root the server runs as the postgres account, which must reach it.
    directory = Path(tempfile.mkdtemp(prefix="promo-roi-metastore-"))
    directory.chmod(0o755)
    port = free_port()
    env = {**_env(), "PROMO_ROI_PG_PORT": str(port), "PROMO_ROI_PG_DIR": str(directory)}
    try:
        done = subprocess.run([SCRIPT, "start"], capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr
        flags = (directory / "spark-flags").read_text().splitlines()
        secret = dict(line.split("=", 1) for line in (directory / "metastore.env").read_text().splitlines())
        yield {"dir": directory, "port": port, "flags": flags, "env": env, "start_output": done.stdout,
               "secret": secret}
    finally:
        subprocess.run([SCRIPT, "stop"], env=env, cwd=REPO, timeout=120)
        shutil.rmtree(directory, ignore_errors=True)


def psql(postgres, sql: str) -> list[str]:
    cmd = ["psql", "-X", "-At", "-h", str(postgres["dir"]), "-p", str(postgres["port"]), "-U", "postgres",
           "-d", "hive_metastore", "-c", sql]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()


def test_metastore_script_prints_the_flags_and_is_idempotent(postgres):
    flags = postgres["flags"]
    assert flags[0::2] == ["--set", "--set"]
    assert flags[1] == f"spark.metastore_url=jdbc:postgresql://127.0.0.1:{postgres['port']}/hive_metastore?user=hive"
    assert flags[3] == "spark.extra.spark.hadoop.javax.jdo.option.ConnectionDriverName=org.postgresql.Driver"
    assert flags[1].split("=", 1)[1] in postgres["start_output"]
    # The password is in a file only its owner reads, to source into the environment; never in the flags
    # (argv) or the script's output.
    assert postgres["secret"] == {"PROMO_ROI_METASTORE_PASSWORD": "hive"}
    for name in ("metastore.env", "spark-flags"):
        assert (postgres["dir"] / name).stat().st_mode & 0o777 == 0o600, name
    assert "password" not in " ".join(flags).lower() and "password=" not in postgres["start_output"].lower()
    # the Hive schema is created once, completely (no lazy DDL left to deadlock on)
    tables = set(psql(postgres, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    assert {"DBS", "TBLS", "TBL_PRIVS", "TABLE_PARAMS", "SDS", "COLUMNS_V2", "SEQUENCE_TABLE"} <= tables
    again = subprocess.run([SCRIPT, "start"], capture_output=True, text=True, env=postgres["env"], cwd=REPO,
                           timeout=300)
    assert again.returncode == 0 and "already running" in again.stdout
    status = subprocess.run([SCRIPT, "status"], capture_output=True, text=True, env=postgres["env"], cwd=REPO)
    assert status.returncode == 0 and "running" in status.stdout


def test_endpoint_and_a_job_share_the_postgres_metastore_at_once(postgres, tmp_path):
    warehouse = tmp_path / "warehouse"
    port = free_port()
    endpoint = [str(REPO / "scripts" / "sql_endpoint.sh")]
    common = ["--port", str(port), "--run-dir", str(tmp_path / "endpoint_run")]
    run_checked([*endpoint, "start", *common, *sets(warehouse), *postgres["flags"]], env=postgres["secret"])
    try:
        url = f"jdbc:hive2://localhost:{port}"
        (_, before), = jdbc_query(url, ["SHOW TABLES IN gold"])
        assert before == []  # the endpoint starts on an empty warehouse
        # a second JVM, while the endpoint holds the metastore: writes, registers, creates the views
        write_example_warehouse(warehouse, postgres["flags"], env=postgres["secret"])
        (columns, rows), (_, tables) = jdbc_query(url, [
            "SELECT run_id, count(*) AS campaigns FROM gold.campaign_roi_forecast_published "
            "GROUP BY run_id ORDER BY run_id",
            "SHOW TABLES IN gold"])
        assert columns == ["run_id", "campaigns"] and rows == [["example-0701", "2"], ["example-0801", "2"]]
        names = {t[1] for t in tables}
        assert {"campaign_roi_forecast", "publication_log"} <= names
        assert {v.name for v in ANALYST_VIEWS} <= names
    finally:
        subprocess.run([*endpoint, "stop", *common], env=_env(), cwd=REPO, timeout=120)
    # the catalog is in PostgreSQL, not in a Derby database beside the tables
    assert not (warehouse / "metastore_db").exists()
    registered = set(psql(postgres, 'SELECT "TBL_NAME" FROM "TBLS"'))
    assert {"campaign_roi_forecast", "latest_campaign_roi_forecast", "plan_vs_budget"} <= registered
