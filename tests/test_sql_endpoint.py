"""SQL for analysts: ``promo-roi sql`` (DuckDB, no JVM) and the Thrift endpoint (JDBC), same views.

The example warehouse (``promo_roi.sql_examples``) is written by a real Spark
job with real Delta tables into a temporary warehouse with its own embedded
Derby metastore; the endpoint is started on it by ``scripts/sql_endpoint.sh``
after the job has exited (Derby admits one JVM) and queried with beeline, the
Hive JDBC client from the pyspark wheel. The example queries in docs/sql.md
are checked on both.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from conftest import SMALL_DATA_SPARK, free_port

from promo_roi import cli
from promo_roi.analyst_views import ANALYST_VIEWS, plan_views
from promo_roi.sql_endpoint import JdbcQueryError, jdbc_query
from promo_roi.sql_examples import RUN_AUG_DIED, example_rows
from promo_roi.tables import BUDGET_PLAN, CAMPAIGN_ROI_FORECAST, FORECAST_ACCURACY, HOUSEHOLD_TARGETING

REPO = Path(__file__).resolve().parents[1]
SQL_DOC = REPO / "docs" / "sql.md"
SPARK_SETTINGS = ("spark.master=local[2]", "spark.shuffle_partitions=1", "spark.driver_memory=1g",
                  *(f"spark.extra.{key}={value}" for key, value in SMALL_DATA_SPARK.items()))


def _env() -> dict[str, str]:
    # The jobs read PROMO_ROI__* from the environment: none may leak into the tests.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMO_ROI")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def sets(root: Path) -> list[str]:
    out = []
    for item in (*SPARK_SETTINGS, f"warehouse.root={root}"):
        out += ["--set", item]
    return out


def run_checked(cmd: list[str], timeout: int = 900, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``cmd`` in the clean environment plus ``env``; fails the test with its output unless it exits 0."""
    done = subprocess.run(cmd, capture_output=True, text=True, env={**_env(), **(env or {})}, cwd=REPO,
                          timeout=timeout)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done


def write_example_warehouse(root: Path, extra: list[str] = (), env: dict[str, str] | None = None) -> None:
    run_checked([sys.executable, "-m", "promo_roi.sql_examples", *sets(root), *extra], env=env)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sql_example") / "warehouse"
    write_example_warehouse(root)
    return root


@pytest.fixture(scope="module")
def endpoint(warehouse, tmp_path_factory):
    """The SQL endpoint on the example warehouse (started after the writing job exited)."""
    port = free_port()
    run_dir = tmp_path_factory.mktemp("endpoint_run")
    script = str(REPO / "scripts" / "sql_endpoint.sh")
    common = ["--port", str(port), "--run-dir", str(run_dir)]
    run_checked([script, "start", *common, *sets(warehouse)])
    try:
        yield f"jdbc:hive2://localhost:{port}"
    finally:
        subprocess.run([script, "stop", *common], env=_env(), cwd=REPO, timeout=120)


def promo_roi_sql(capsys, warehouse: Path, *args: str) -> tuple[int, str, str]:
    """``promo-roi --set warehouse.root=... sql ARGS`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main(["--set", f"warehouse.root={warehouse}", "sql", *args])
    out, err = capsys.readouterr()
    return code, out, err


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def same_value(expected: str, actual: str) -> bool:
    """Cells as text: numbers compared as numbers (Java and Python print doubles differently), the rest exactly."""
    if expected == actual:
        return True
    try:
        a, b = float(expected), float(actual)
    except ValueError:
        return expected == re.sub(r"(\d\d:\d\d:\d\d)\.0$", r"\1", actual)
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


# --- promo-roi sql -------------------------------------------------------------------------------

def test_promo_roi_sql_queries_campaign_roi_forecast(capsys, warehouse):
    code, out, err = promo_roi_sql(
        capsys, warehouse, "--format", "csv",
        "SELECT run_date, run_id, campaign_id, campaign_type, audience, cost, roi, input_versions "
        "FROM gold.campaign_roi_forecast ORDER BY run_date, run_id, campaign_id")
    assert code == 0, err
    got = csv_rows(out)
    columns = CAMPAIGN_ROI_FORECAST.columns
    expected = sorted((dict(zip(columns, r)) for r in example_rows()[CAMPAIGN_ROI_FORECAST]),
                      key=lambda r: (r["run_date"], r["run_id"], r["campaign_id"]))
    assert len(got) == len(expected) == 6  # every run, the unpublished one too: this is the table
    for g, e in zip(got, expected):
        assert g["run_date"] == e["run_date"].isoformat()
        assert (g["run_id"], int(g["campaign_id"]), g["campaign_type"]) == (e["run_id"], e["campaign_id"],
                                                                              e["campaign_type"])
        assert int(g["audience"]) == e["audience"]
        assert float(g["cost"]) == e["cost"] and float(g["roi"]) == e["roi"]  # the doubles Spark wrote
        assert json.loads(g["input_versions"]) == e["input_versions"]


def test_published_views_hide_a_run_missing_from_the_publication_log(capsys, warehouse):
    code, out, err = promo_roi_sql(
        capsys, warehouse, "--format", "json",
        "SELECT (SELECT count(*) FROM gold.campaign_roi_forecast WHERE run_id = 'example-0801-died') AS in_table, "
        "(SELECT count(*) FROM gold.campaign_roi_forecast_published WHERE run_id = 'example-0801-died') AS in_view, "
        "(SELECT count(*) FROM gold.budget_plan_published WHERE run_id = 'example-0801-died') AS in_plan_view, "
        "(SELECT count(*) FROM gold.household_targeting_published) AS targeted, "
        "(SELECT count(*) FROM gold.household_scores_published) AS scores")
    assert code == 0, err
    assert json.loads(out) == [{"in_table": 2, "in_view": 0, "in_plan_view": 0, "targeted": 2, "scores": 8}]
    code, out, err = promo_roi_sql(
        capsys, warehouse, "--format", "csv",
        "SELECT campaign_id, run_date, run_id, roi FROM gold.latest_campaign_roi_forecast ORDER BY campaign_id")
    assert code == 0, err
    latest = {int(r["campaign_id"]): (r["run_date"], r["run_id"], float(r["roi"])) for r in csv_rows(out)}
    forecasts = [dict(zip(CAMPAIGN_ROI_FORECAST.columns, r)) for r in example_rows()[CAMPAIGN_ROI_FORECAST]]
    published = [f for f in forecasts if f["run_id"] != RUN_AUG_DIED]
    want = {}
    for f in sorted(published, key=lambda f: f["run_date"]):
        want[f["campaign_id"]] = (f["run_date"].isoformat(), f["run_id"], f["roi"])
    assert latest == want and set(want) == {13, 14, 101}


def test_plan_vs_budget_and_accuracy_views_compute_what_they_say(capsys, warehouse):
    code, out, err = promo_roi_sql(
        capsys, warehouse, "--format", "csv",
        "SELECT campaign_id, budget, min_budget, max_budget, planned_roi, forecast_roi, budget_status "
        "FROM gold.plan_vs_budget ORDER BY campaign_id")
    assert code == 0, err
    rows = {int(r["campaign_id"]): r for r in csv_rows(out)}
    plans = {r["campaign_id"]: r for r in (dict(zip(BUDGET_PLAN.columns, b)) for b in example_rows()[BUDGET_PLAN])
             if r["run_id"] != RUN_AUG_DIED}
    assert set(rows) == {13, 14, 101}
    assert rows[13]["budget"] == "" and rows[13]["budget_status"] == "no budget plan"
    for campaign, plan in plans.items():
        # Rounded in the view: money to cents, ROI to 4 decimals (the table keeps full precision).
        assert float(rows[campaign]["budget"]) == pytest.approx(plan["budget"], abs=0.005)  # not the unpublished 5000.0
        assert float(rows[campaign]["planned_roi"]) == pytest.approx(plan["roi"], abs=0.00005)
        assert float(rows[campaign]["planned_roi"]) == round(float(rows[campaign]["planned_roi"]), 4)
        bounded = rows[campaign]["min_budget"] or rows[campaign]["max_budget"]
        assert rows[campaign]["budget_status"] == ("within bounds" if bounded else "no bounds set"), campaign
    code, out, err = promo_roi_sql(
        capsys, warehouse, "--format", "json", "SELECT * FROM gold.forecast_accuracy_over_time ORDER BY run_date")
    assert code == 0, err
    got = json.loads(out)
    backtest = [dict(zip(FORECAST_ACCURACY.columns, r)) for r in example_rows()[FORECAST_ACCURACY]]
    dates = sorted({b["run_date"] for b in backtest})
    assert [g["run_date"] for g in got] == [d.isoformat() for d in dates]
    for g, date in zip(got, dates):
        rows_d = [b for b in backtest if b["run_date"] == date]
        assert g["campaigns"] == len(rows_d)
        assert g["mean_error"] == pytest.approx(sum(b["error"] for b in rows_d) / len(rows_d), abs=0.005)
        assert g["mean_error"] == round(g["mean_error"], 2)
        assert g["wape"] == pytest.approx(sum(b["absolute_error"] for b in rows_d)
                                          / sum(abs(b["realized_incremental_revenue"]) for b in rows_d), abs=0.00005)
        assert g["interval_coverage"] == pytest.approx(
            sum(b["interval_covers_realized"] for b in rows_d) / len(rows_d), abs=0.00005)


def test_promo_roi_sql_refuses_unknown_and_unavailable_names(capsys, warehouse):
    code, _, err = promo_roi_sql(capsys, warehouse, "SELECT * FROM gold.campaign_roi_forcast")
    assert code == 2 and "unknown table or view gold.campaign_roi_forcast" in err
    assert "(did you mean gold.campaign_roi_forecast" in err  # the closest spelling
    code, _, err = promo_roi_sql(capsys, warehouse, "SELECT * FROM silver.campaign_plans")
    assert code == 2 and "(did you mean gold.campaign_plans?)" in err  # the same table in another schema
    code, _, err = promo_roi_sql(capsys, warehouse, "SELECT * FROM campaign_roi_forecast")
    assert code == 2 and "did you mean gold.campaign_roi_forecast" in err
    code, _, err = promo_roi_sql(capsys, warehouse, "SELECT * FROM gold.model_evaluation")  # declared, not written
    assert code == 2 and "gold.model_evaluation is not available: there is no Delta table at" in err
    code, _, err = promo_roi_sql(capsys, warehouse, "SELECT nope FROM gold.campaign_plans")
    assert code == 2 and "nope" in err
    code, _, err = promo_roi_sql(capsys, warehouse, "SELEC 1")
    assert code == 2 and "syntax error" in err.lower()


def test_promo_roi_sql_is_read_only(capsys, warehouse, tmp_path):
    """Nothing but SELECT and EXPLAIN runs, and a query reads the warehouse's tables only."""
    outside, database, secret = tmp_path / "out.csv", tmp_path / "x.db", tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    inside = warehouse / "gold" / "campaign_plans" / "extra.parquet"
    for sql, message in [
        (f"COPY (SELECT * FROM gold.campaign_plans) TO '{outside}'", "COPY statements are refused"),
        (f"COPY (SELECT 1 AS x) TO '{inside}' (FORMAT parquet)", "COPY statements are refused"),
        (f"SELECT 1; ATTACH '{database}'", "ATTACH statements are refused"),
        ("SET enable_external_access = true", "SET statements are refused"),
        ("INSTALL httpfs", "LOAD statements are refused"),
        ("CREATE TABLE gold.copy AS SELECT * FROM gold.campaign_plans", "CREATE statements are refused"),
        ("DELETE FROM gold.campaign_plans", "DELETE statements are refused"),
        (f"SELECT * FROM read_csv('{secret}')", "promo-roi sql reads the warehouse's tables and views only"),
        ("SELECT * FROM read_parquet('http://127.0.0.1:9/x.parquet')", "reads the warehouse's tables and views only"),
    ]:
        code, _, err = promo_roi_sql(capsys, warehouse, sql)
        assert code == 2 and message in err, (sql, err)
        assert "Traceback" not in err
    assert not outside.exists() and not database.exists() and not inside.exists()
    code, out, _ = promo_roi_sql(capsys, warehouse, "SELECT count(*) AS n FROM gold.campaign_plans")
    assert code == 0 and out.splitlines()[2].strip() == "3"


def test_views_over_missing_tables_are_skipped_with_the_reason(capsys, warehouse, tmp_path):
    partial = tmp_path / "warehouse"
    shutil.copytree(warehouse, partial, ignore=shutil.ignore_patterns("metastore_db"))
    shutil.rmtree(partial / "gold" / "budget_plan")
    code, out, err = promo_roi_sql(capsys, partial, "SELECT count(*) AS n FROM gold.latest_campaign_roi_forecast")
    assert code == 0 and out.splitlines()[2].strip() == "3", err
    code, _, err = promo_roi_sql(capsys, partial, "SELECT * FROM gold.plan_vs_budget")
    assert code == 2
    assert "view gold.plan_vs_budget is not available: it reads gold.budget_plan: there is no Delta table" in err
    code, out, _ = promo_roi_sql(capsys, partial, "--list")
    assert code == 0
    assert re.search(r"gold\.latest_budget_plan\s+view\s+unavailable: it reads gold\.budget_plan", out)
    assert re.search(r"gold\.forecast_accuracy_over_time\s+view\s+ok", out)
    # the same planning rule decides for Spark
    creatable, skipped = plan_views(["gold.campaign_roi_forecast", "gold.publication_log", "gold.campaign_plans"])
    assert [v.name for v in creatable] == ["campaign_roi_forecast_published", "latest_campaign_roi_forecast"]
    assert skipped["gold.plan_vs_budget"] == "it reads gold.budget_plan, which does not exist yet"


def test_promo_roi_sql_command_line_formats(warehouse):
    base = [str(Path(sys.executable).parent / "promo-roi"), "--set", f"warehouse.root={warehouse}", "sql"]
    query = "SELECT campaign_id, min_budget, source FROM gold.campaign_plans ORDER BY campaign_id"
    table = run_checked([*base, query]).stdout.splitlines()
    assert table[0].split() == ["campaign_id", "min_budget", "source"]
    assert table[2].split() == ["13", "NULL", "completejourney"] and table[-1] == "(3 rows)"
    assert json.loads(run_checked([*base, "--format", "json", query]).stdout)[2] == {
        "campaign_id": 101, "min_budget": 500.0, "source": "planner"}
    assert run_checked([*base, "--format", "csv", query]).stdout.splitlines()[1] == "13,,completejourney"
    refused = subprocess.run([*base, "SELECT * FROM gold.nope"], capture_output=True, text=True, env=_env())
    assert refused.returncode == 2 and "unknown table or view gold.nope" in refused.stderr


# --- Delta features the file reader must not get wrong ---------------------------------------------

def _z85(data: bytes) -> str:
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
    out = []
    for i in range(0, len(data), 4):
        value = struct.unpack(">I", data[i:i + 4])[0]
        chunk = []
        for _ in range(5):
            chunk.append(alphabet[value % 85])
            value //= 85
        out.extend(reversed(chunk))
    return "".join(out)


def _write_delta(path: Path, files: dict[str, list[int]], partition: str | None = None,
                 configuration: dict | None = None, reader_features: list[str] | None = None,
                 deleted_row: int | None = None, physical_name: str | None = None) -> None:
    """A Delta table written by hand to the protocol (what Spark writes for these features)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    metadata = {"delta.columnMapping.id": 1, "delta.columnMapping.physicalName": physical_name} \
        if physical_name else {}
    fields = [{"name": "x", "type": "long", "nullable": True, "metadata": metadata}]
    if partition:
        fields.insert(0, {"name": partition, "type": "string", "nullable": True, "metadata": {}})
    protocol = {"minReaderVersion": 1, "minWriterVersion": 2}
    if reader_features:
        protocol = {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": reader_features,
                    "writerFeatures": reader_features}
    actions = [{"protocol": protocol}, {"metaData": {
        "id": "00000000-0000-0000-0000-000000000001", "format": {"provider": "parquet", "options": {}},
        "schemaString": json.dumps({"type": "struct", "fields": fields}),
        "partitionColumns": [partition] if partition else [], "configuration": configuration or {},
        "createdTime": 0}}]
    for i, (directory, values) in enumerate(files.items()):
        relative = f"{directory}/part-{i}.parquet" if directory else f"part-{i}.parquet"
        (path / relative).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({physical_name or "x": pa.array(values, pa.int64())}), path / relative)
        add = {"path": urllib.parse.quote(relative, safe="/="),  # as Spark writes it
               "partitionValues": {partition: urllib.parse.unquote(directory.split("=", 1)[1])} if partition else {},
               "size": (path / relative).stat().st_size, "modificationTime": 0, "dataChange": True,
               "stats": json.dumps({"numRecords": len(values)})}
        if deleted_row is not None:
            # 64-bit RoaringBitmapArray (magic, 1 bucket, key 0) holding one 32-bit roaring array container
            bitmap = struct.pack("<IIHHIH", 12346, 1, 0, 0, 16, deleted_row)
            data = struct.pack("<iqi", 1681511377, 1, 0) + bitmap
            add["deletionVector"] = {"storageType": "i", "pathOrInlineDv": _z85(data + b"\0" * (-len(data) % 4)),
                                     "sizeInBytes": len(data), "cardinality": 1}
        actions.append({"add": add})
    (path / "_delta_log").mkdir(parents=True)
    (path / "_delta_log" / "00000000000000000000.json").write_text("\n".join(json.dumps(a) for a in actions) + "\n")


def test_partition_values_come_from_the_log_and_encoded_paths_are_decoded(capsys, tmp_path):
    # Spark escapes '/', '%', ':' and '=' in partition directories, and the log percent-encodes the path again.
    _write_delta(tmp_path / "bronze" / "quarantine",
                 {"source_table=a b%2Fc%25d": [1, 2], "source_table=plain": [3]}, partition="source_table")
    code, out, err = promo_roi_sql(capsys, tmp_path, "--format", "csv",
                                   "SELECT source_table, x FROM bronze.quarantine ORDER BY x")
    assert code == 0, err
    assert out.splitlines() == ["source_table,x", "a b/c%d,1", "a b/c%d,2", "plain,3"]


def test_deletion_vectors_and_column_mapping_are_refused_not_misread(capsys, tmp_path):
    from deltalake import DeltaTable

    dv = tmp_path / "gold" / "campaign_plans"
    _write_delta(dv, {"": [10, 11, 12]}, reader_features=["deletionVectors"],
                 configuration={"delta.enableDeletionVectors": "true"}, deleted_row=1)
    # the deletion vector is valid: Delta's own reader (delta-kernel) deletes row 1
    kept = DeltaTable(str(dv)).deletion_vectors().read_all().column("selection_vector").to_pylist()
    assert kept == [[True, False, True]]
    code, _, err = promo_roi_sql(capsys, tmp_path, "SELECT count(*) FROM gold.campaign_plans")
    assert code == 2 and "1 of its files have deletion vectors" in err
    code, _, err = promo_roi_sql(capsys, tmp_path, "SELECT count(*) FROM gold.plan_vs_budget")
    assert code == 2 and "it reads gold.campaign_plans" in err
    # column mapping: the parquet column is "col-7f3a", the table's column is x
    mapped = tmp_path / "gold" / "publication_log"
    _write_delta(mapped, {"": [1, 2]}, reader_features=["columnMapping"], physical_name="col-7f3a",
                 configuration={"delta.columnMapping.mode": "name", "delta.columnMapping.maxColumnId": "1"})
    assert [f.name for f in DeltaTable(str(mapped)).schema().fields] == ["x"]
    code, _, err = promo_roi_sql(capsys, tmp_path, "SELECT * FROM gold.publication_log")
    assert code == 2 and "column mapping (mode 'name')" in err
    # a table the Delta library itself cannot open is named with its error, and does not stop the others
    broken = tmp_path / "gold" / "forecast_accuracy" / "_delta_log"
    broken.mkdir(parents=True)
    (broken / "00000000000000000000.json").write_text('{"commitInfo": {}}\n')
    code, _, err = promo_roi_sql(capsys, tmp_path, "SELECT * FROM gold.forecast_accuracy")
    assert code == 2 and "gold.forecast_accuracy is not available" in err and "cannot be read" in err


# --- the SQL endpoint (Thrift server, JDBC) ---------------------------------------------------------

def test_thrift_endpoint_serves_campaign_roi_forecast_and_the_views(capsys, warehouse, endpoint):
    query = ("SELECT run_date, run_id, campaign_id, audience, cost, roi FROM gold.campaign_roi_forecast "
             "ORDER BY run_date, run_id, campaign_id")
    (columns, rows), (_, views), (_, latest) = jdbc_query(endpoint, [
        query, "SHOW VIEWS IN gold",
        "SELECT campaign_id, run_id FROM gold.latest_campaign_roi_forecast ORDER BY campaign_id"])
    code, out, err = promo_roi_sql(capsys, warehouse, "--format", "csv", query)
    assert code == 0, err
    local = list(csv.reader(io.StringIO(out)))
    assert columns == local[0] == ["run_date", "run_id", "campaign_id", "audience", "cost", "roi"]
    assert len(rows) == len(local) - 1 == 6
    for jdbc_row, local_row in zip(rows, local[1:]):
        assert all(same_value(a, b) for a, b in zip(local_row, jdbc_row)), (local_row, jdbc_row)
    assert {v[1] for v in views} >= {v.name for v in ANALYST_VIEWS}
    assert latest == [["13", "example-0701"], ["14", "example-0801"], ["101", "example-0801"]]


def test_thrift_endpoint_reports_an_unknown_table(endpoint):
    with pytest.raises(JdbcQueryError, match="TABLE_OR_VIEW_NOT_FOUND"):
        jdbc_query(endpoint, ["SELECT * FROM gold.campaign_roi_forcast"])


# --- the examples in docs/sql.md ------------------------------------------------------------------------

def sql_doc_examples() -> list[tuple[str, str]]:
    """The checked example queries of docs/sql.md: (query, expected output) pairs."""
    text = SQL_DOC.read_text()
    section = text.split("\n## Example queries\n", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"<!-- sql-example -->\n```sql\n(.*?)```\n\n```text\n(.*?)```", section, re.S)
    assert len(found) >= 4, "docs/sql.md's example queries lost their checked examples"
    return found


def parse_table(text: str) -> tuple[list[str], list[list[str]]]:
    """The columns and cells of a table printed by ``promo-roi sql`` (spans from the dashes line)."""
    lines = text.rstrip("\n").splitlines()
    starts = [m.start() for m in re.finditer(r"-+", lines[1])]

    def cut(line: str) -> list[str]:
        return [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None])]

    return cut(lines[0]), [cut(line) for line in lines[2:] if not re.fullmatch(r"\(\d+ rows?\)", line)]


def test_sql_doc_examples_match_promo_roi_sql(capsys, warehouse):
    for sql, expected in sql_doc_examples():
        code, out, err = promo_roi_sql(capsys, warehouse, sql)
        assert code == 0, err
        assert out == expected, f"docs/sql.md example changed:\n{sql}\n--- docs/sql.md\n{expected}\n--- promo-roi sql\n{out}"


def test_sql_doc_examples_match_the_sql_endpoint(endpoint):
    examples = sql_doc_examples()
    results = jdbc_query(endpoint, [sql for sql, _ in examples])
    for (sql, expected), (columns, rows) in zip(examples, results):
        want_columns, want_rows = parse_table(expected)
        assert columns == want_columns, sql
        assert len(rows) == len(want_rows), (sql, rows)
        for want, got in zip(want_rows, rows):
            assert all(same_value(w, g) for w, g in zip(want, got)), (sql, want, got)


def test_example_tables_cover_every_view_source():
    # the docs/sql.md examples exercise every view: each view's tables are in the example warehouse
    written = {s.full_name for s in example_rows()}
    creatable, skipped = plan_views(written)
    assert not skipped and len(creatable) == len(ANALYST_VIEWS)
    assert HOUSEHOLD_TARGETING in example_rows()


# --- who may reach the endpoint: bind address, authentication, private run files -------------------

def test_a_non_loopback_bind_needs_authentication():
    from promo_roi.sql_endpoint import AUTH_KEY, bind_refusal

    for host in ("localhost", "127.0.0.1", "::1"):
        assert bind_refusal(host, {}) is None, host
    for host in ("0.0.0.0", "::"):
        assert "not a loopback address, without authentication" in bind_refusal(host, {})
        assert "is NOSASL" in bind_refusal(host, {AUTH_KEY: "nosasl"})
        assert bind_refusal(host, {AUTH_KEY: "LDAP"}) is None
        assert bind_refusal(host, {AUTH_KEY: "custom"}) is None


def test_start_refuses_an_open_bind_before_starting_anything(tmp_path, capsys):
    from promo_roi.sql_endpoint import main

    run = tmp_path / "run"
    port = free_port()
    assert main(["start", "--host", "0.0.0.0", "--port", str(port), "--run-dir", str(run)]) == 2
    assert "refusing to bind the SQL endpoint to '0.0.0.0'" in capsys.readouterr().err
    assert not list(run.iterdir())  # no pid file, no log: nothing was started


def test_run_files_are_private(tmp_path):
    from promo_roi.sql_endpoint import RunDirError, _private_file, run_dir

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    assert run_dir(str(shared)) == shared and (shared.stat().st_mode & 0o777) == 0o700
    fresh = run_dir(str(tmp_path / "a" / "b"))
    assert (fresh.stat().st_mode & 0o777) == 0o700
    log_file = fresh / "endpoint-1.log"
    log_file.write_text("old")
    log_file.chmod(0o644)
    with _private_file(log_file) as out:
        out.write("new")
    assert log_file.read_text() == "new" and (log_file.stat().st_mode & 0o777) == 0o600
    (tmp_path / "link").symlink_to(shared)
    with pytest.raises(RunDirError, match="not a directory owned by this user"):
        run_dir(str(tmp_path / "link"))
