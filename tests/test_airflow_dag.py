"""The nightly Airflow DAG (airflow_dags/promo_roi_nightly.py) on real Airflow and real Spark.

- the DAG folder imports with no errors, without Spark, the library or conf/;
- the task graph, schedule, retries, timeouts, callbacks and SparkSubmitOperator
  settings are the agreed ones;
- a run without a logical date is refused and the failure alert arrives by
  e-mail (a loopback SMTP server in this file);
- an off day skips training and still scores (branch + trigger rule);
- one night runs end to end with ``dag.test()``: every task a real
  ``spark-submit`` of its job (connection ``local[2]``) on the small fixture,
  with a tiny training configuration given as a conf profile through the DAG's
  params, and its tables are read back. The night runs as on a cluster: from
  the cluster package (``PROMO_ROI_HOME``), outside the repository, each job
  with the package's zip on ``--py-files`` and a Python that has the
  dependencies but not promo_roi (named in ``$SPARK_CONF_DIR``).

Airflow gets a temporary AIRFLOW_HOME with a sqlite metadata database, set in
the environment by the module fixture before Airflow is first imported (its
configuration is read at import), and restored afterwards.
"""

from __future__ import annotations

import datetime as dt
import email
import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

import conftest
from conftest import PACKAGE_VERSION, SMALL_DATA_SPARK

REPO = Path(__file__).resolve().parents[1]
DAG_FOLDER = REPO / "airflow_dags"
DAG_FILE = DAG_FOLDER / "promo_roi_nightly.py"
DAG_ID = "promo_roi_nightly"
FIXTURE = REPO / "tests" / "fixtures" / "completejourney_small"
VENV_BIN = REPO / ".venv" / "bin" if (REPO / ".venv" / "bin" / "spark-submit").exists() else Path(sys.executable).parent

# A Tuesday inside the DAG's dates: the weekly training is due. As of it the
# fixture's fully observed campaigns are 27 and 1-9, and 11-23 are planned.
RUN_DATE = dt.date(2017, 7, 4)
OFF_DAY = dt.date(2017, 7, 5)
BACKTEST_DATE = RUN_DATE - dt.timedelta(days=56)
SPARK_TASKS = {
    "ingest": "ingest", "check_quality": "check_quality", "build_features": "build_features",
    "build_item_store_week": "build_item_store_week", "evaluate_promotions": "evaluate_promotions", "train": "train",
    "score": "score", "backtest": "backtest",
}
EDGES = {
    ("check_run_date", "ingest"), ("ingest", "check_quality"), ("check_quality", "build_features"),
    ("build_features", "choose_training"), ("choose_training", "train"), ("choose_training", "skip_training"),
    ("train", "score"), ("skip_training", "score"), ("score", "backtest"),
    ("check_quality", "build_item_store_week"), ("build_item_store_week", "evaluate_promotions"),
}
ALERT_TO = "oncall@promo-roi.test"


# --- a loopback SMTP server that keeps what it receives ----------------------

class _SmtpHandler(socketserver.StreamRequestHandler):
    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self._reply("220 localhost promo-roi test SMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self._reply("250 localhost")
            elif verb == "DATA":
                self._reply("354 end with <CRLF>.<CRLF>")
                data = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                self.server.messages.append(email.message_from_bytes(b"".join(data)))
                self._reply("250 queued")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:  # MAIL, RCPT, RSET, NOOP
                self._reply("250 ok")


class LoopbackSmtp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[email.message.Message] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]


def _body(message: email.message.Message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    return "".join(
        p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8")
        for p in parts if p.get_content_maintype() == "text"
    )


# --- Airflow in a temporary home ---------------------------------------------

@dataclass
class AirflowEnv:
    home: Path
    smtp: LoopbackSmtp
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("airflow_home")
    smtp = LoopbackSmtp()
    smtp.thread.start()
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW_CONN_PROMO_ROI_SPARK": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
            "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10, "retry_limit": 0},
        }),
        "PROMO_ROI_ALERT_EMAILS": ALERT_TO,
        # The SparkSubmitHook runs `spark-submit` from PATH (the venv's, see Makefile).
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("PROMO_ROI") or name.startswith("AIRFLOW"):
                mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        if "airflow" in sys.modules:  # configured at import: it must have been imported with this home
            import airflow.settings

            assert airflow.settings.SQL_ALCHEMY_CONN == env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], (
                "airflow was imported before this module's fixture set AIRFLOW_HOME")
        from airflow.utils.db import initdb

        initdb()
        yield AirflowEnv(home, smtp, env)
    smtp.shutdown()
    smtp.server_close()


def _load_dag(airflow_env: AirflowEnv):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FOLDER))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[DAG_ID]


@pytest.fixture(scope="module")
def dagbag(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAG_FOLDER))


@pytest.fixture(scope="module")
def dag(dagbag):
    assert DAG_ID in dagbag.dags, dagbag.import_errors
    return dagbag.dags[DAG_ID]


def _run(dag, logical_date, **kwargs):
    """dag.test() with retries off: a failure shows at once instead of after the 5 + 10 minute back-off."""
    import pendulum

    for task in dag.tasks:
        task.retries = 0
    when = None if logical_date is None else pendulum.datetime(
        logical_date.year, logical_date.month, logical_date.day, 3, tz="UTC")
    dr = dag.test(logical_date=when, **kwargs)
    return dr, {ti.task_id: ti for ti in dr.get_task_instances()}


def _states(tis) -> dict[str, str]:
    return {task_id: str(getattr(ti.state, "value", ti.state)) for task_id, ti in tis.items()}


# --- the DAG file ------------------------------------------------------------

def test_dag_folder_imports_with_no_errors(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dag_ids) == [DAG_ID]


def test_parsing_does_no_work(airflow_env):
    """Importing the DAG file loads no Spark, no project library and no conf/ (a missing conf dir is fine)."""
    probe = (
        "import runpy, sys; runpy.run_path(sys.argv[1]);"
        "heavy = sorted(m for m in ('pyspark', 'promo_roi', 'torch', 'mlflow', 'delta') if m in sys.modules);"
        "print('HEAVY', heavy)"
    )
    env = {**os.environ, "PROMO_ROI_CONF_DIR": "/nonexistent/conf"}
    out = subprocess.run([sys.executable, "-c", probe, str(DAG_FILE)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "HEAVY []" in out.stdout, out.stdout[-2000:]
    source = DAG_FILE.read_text()
    assert not re.search(r"\b(now|today|utcnow)\(", source), "the run date must come from the run, not the clock"


def test_task_graph(dag):
    edges = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
    assert edges == EDGES
    assert str(dag.get_task("score").trigger_rule) in ("none_failed_min_one_success",
                                                        "TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS")


def test_schedule_and_run_policy(dag):
    from airflow.sdk import CronTriggerTimetable

    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 3 * * *", "UTC")
    # What the scheduler makes of it: nightly runs at 03:00 UTC whose logical date is that day.
    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    core = coerce_to_core_timetable(dag.timetable)
    restriction = TimeRestriction(dag.start_date, dag.end_date, catchup=True)
    first = core.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    second = core.next_dagrun_info(last_automated_data_interval=first.data_interval, restriction=restriction)
    assert first.logical_date == first.run_after == pendulum.datetime(2017, 7, 4, 3, tz="UTC")
    assert second.logical_date == pendulum.datetime(2017, 7, 5, 3, tz="UTC")
    assert dag.start_date.date() == dt.date(2017, 7, 4) and dag.start_date.weekday() == 1  # first night trains
    assert dag.end_date.date() == dt.date(2017, 12, 28)
    assert dag.catchup is True
    assert dag.max_active_runs == 1
    assert dag.doc_md and "## promo_roi_nightly" in dag.doc_md
    assert {"promo-roi", "nightly"} <= set(dag.tags)
    assert dag.default_args["retries"] >= 2
    assert set(dag.params.keys()) >= {"profile", "conf_dir", "train", "backtest_lookback_days"}


@pytest.mark.parametrize(("param", "value"), [
    ("profile", "../../etc/passwd"), ("profile", "local --set x=1"), ("profile", ""),
    ("conf_dir", "relative/conf"), ("conf_dir", "/srv/promo/../../etc"), ("conf_dir", "/srv/conf; rm -rf /"),
    ("train", "sometimes"), ("backtest_lookback_days", 0),
])
def test_a_run_conf_outside_the_allow_lists_is_refused(dagbag, param, value):
    """Params that become job arguments are checked against allow-lists before any task runs."""
    import copy

    from airflow.exceptions import ParamValidationError

    params = copy.deepcopy(dagbag.dags[DAG_ID].params)
    params.validate()  # the defaults pass
    with pytest.raises(ParamValidationError):
        params[param] = value
        params.validate()


def test_the_allowed_values_pass(dagbag, tmp_path):
    import copy

    params = copy.deepcopy(dagbag.dags[DAG_ID].params)
    for param, value in (("profile", "airflow_e2e"), ("conf_dir", str(tmp_path / "conf")), ("train", "always")):
        params[param] = value
    params.validate()


def test_every_task_retries_with_backoff_times_out_and_alerts(dag):
    module = sys.modules[dag.get_task("ingest").on_failure_callback[0].__module__]
    for task in dag.tasks:
        assert task.execution_timeout is not None and task.execution_timeout <= dt.timedelta(hours=2), task.task_id
        assert module.alert_on_failure in task.on_failure_callback, task.task_id
        if task.task_id == "check_run_date":
            assert task.retries == 0  # a missing logical date does not come back by retrying
        else:
            assert task.retries >= 2, task.task_id
            assert task.retry_exponential_backoff >= 2 and task.max_retry_delay is not None, task.task_id


def test_spark_tasks_submit_their_job_with_conf_and_the_templated_run_date(dag):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    for task_id, job in SPARK_TASKS.items():
        task = dag.get_task(task_id)
        assert isinstance(task, SparkSubmitOperator), task_id
        assert Path(task.application) == REPO / "jobs" / f"{job}.py", task_id
        assert Path(task.application).is_file(), f"{task.application} does not exist"
        assert task._conn_id == "promo_roi_spark"
        assert task.name == f"promo-roi-{task_id}-{{{{ ds }}}}"
        args = task.application_args
        assert args[:4] == ["--profile", "{{ params.profile }}", "--conf-dir", "{{ params.conf_dir }}"], task_id
        assert not any(re.search(r"\d{4}-\d{2}-\d{2}", a) for a in args), f"{task_id}: a literal date in {args}"
        assert "jvm_packages(params.conf_dir, params.profile)" in task.packages
        assert task.py_files == "{{ promo_roi_py_files() }}", task_id
    assert dag.get_task("ingest").application_args[4:] == []
    assert dag.get_task("check_quality").application_args[4:] == []
    assert dag.get_task("build_features").application_args[4:] == ["--as-of", "{{ ds }}"]
    assert dag.get_task("build_item_store_week").application_args[4:] == ["--as-of", "{{ ds }}"]
    assert dag.get_task("evaluate_promotions").application_args[4:] == ["--as-of", "{{ ds }}"]
    assert dag.get_task("train").application_args[4:] == ["--as-of", "{{ ds }}"]
    assert dag.get_task("score").application_args[4:] == ["--run-date", "{{ ds }}"]
    assert dag.get_task("backtest").application_args[4:] == [
        "--run-dates", "{{ macros.ds_add(ds, -params.backtest_lookback_days) }}", "--observed-through", "{{ ds }}"]


def test_py_files_name_the_zip_of_a_cluster_package_and_nothing_for_a_checkout(dag, tmp_path, monkeypatch):
    module = sys.modules[dag.get_task("ingest").on_failure_callback[0].__module__]
    assert module.PROJECT_ROOT == REPO and module.promo_roi_py_files() == ""  # the checkout: promo_roi installed
    package = tmp_path / "promo-roi-0.1.0"
    package.mkdir()
    (package / "promo_roi-0.1.0.zip").write_bytes(b"")
    monkeypatch.setattr(module, "PROJECT_ROOT", package)
    assert module.promo_roi_py_files() == str(package / "promo_roi-0.1.0.zip")
    (package / "promo_roi-0.2.0.zip").write_bytes(b"")
    with pytest.raises(ValueError, match="holds 2 promo_roi zips"):
        module.promo_roi_py_files()


def test_training_is_weekly_on_tuesdays(dag):
    training_due = sys.modules[dag.get_task("ingest").on_failure_callback[0].__module__].training_due
    week = [dt.date(2017, 7, 3) + dt.timedelta(days=i) for i in range(7)]
    assert [d for d in week if training_due(d, "weekly")] == [dt.date(2017, 7, 4)]
    assert all(training_due(d, "always") for d in week)
    assert not any(training_due(d, "never") for d in week)
    with pytest.raises(ValueError, match="train must be one of"):
        training_due(RUN_DATE, "daily")


# --- runs --------------------------------------------------------------------

def test_a_run_without_logical_date_is_refused_and_alerts(airflow_env):
    dag = _load_dag(airflow_env)
    sent_before = len(airflow_env.smtp.messages)
    dr, tis = _run(dag, None)
    states = _states(tis)
    assert str(dr.state) in ("failed", "DagRunState.FAILED"), states
    assert states.pop("check_run_date") == "failed"
    assert set(states.values()) == {"upstream_failed"}, states
    alerts = airflow_env.smtp.messages[sent_before:]
    assert len(alerts) == 1, [m["Subject"] for m in alerts]
    assert alerts[0]["To"] == ALERT_TO
    assert "promo_roi_nightly.check_run_date failed" in alerts[0]["Subject"]
    assert "has no logical date" in _body(alerts[0])


def test_an_off_day_skips_training_and_still_scores(airflow_env):
    """Wednesday: the branch skips train, and score still runs after skip_training (Spark steps marked done)."""
    dag = _load_dag(airflow_env)
    dr, tis = _run(dag, OFF_DAY, mark_success_pattern="|".join(SPARK_TASKS))
    states = _states(tis)
    assert states["choose_training"] == "success"
    assert states["train"] == "skipped"
    assert states["skip_training"] == "success"
    assert states["score"] == "success" and states["backtest"] == "success", states
    assert str(dr.state) in ("success", "DagRunState.SUCCESS"), states


# --- one night end to end ----------------------------------------------------

@dataclass
class Night:
    root: Path
    package: Path
    spark_conf_dir: Path
    conf_dir: Path
    warehouse: Path
    mlflow_db: Path
    dagrun: object
    tis: dict
    seconds: float


def _e2e_profile(root: Path) -> dict:
    """conf/local.yaml shrunk like tests/conftest.py's `trained` fixture, everything under ``root``."""
    local = yaml.safe_load((REPO / "conf" / "local.yaml").read_text()) or {}
    spark = {**local.get("spark", {}), "master": "local[2]", "shuffle_partitions": 1, "driver_memory": "2g"}
    spark["extra"] = {**spark.get("extra", {}), **SMALL_DATA_SPARK}
    return {
        **local,
        "spark": spark,
        "warehouse": {"root": str(root / "warehouse")},
        "source": {"path": str(FIXTURE)},
        "training": {
            **local.get("training", {}),
            # One rank: what the night proves is that the train task's ranks run from the package's zip on
            # the cluster's Python; two ranks and their DDP gradients are the session chain's `trained`.
            # Two members: the night is where an ensemble is trained, registered and scored by the executors
            # end to end (every other test's tiny model is one network).
            "epochs": 1, "batch_size": 64, "num_processes": 1, "top_layers": 1, "hidden_dim": 32,
            "ensemble_size": 2,
            "checkpoint_dir": str(root / "checkpoints"), "petastorm_cache_dir": str(root / "petastorm"),
        },
        # The placebo-ranking verdict on the fixture's few dozen test households is
        # noise (conftest's `champion` fixture promotes the tiny model by hand for
        # that reason): open the gate so that the DAG's own train task makes the
        # champion its score task needs.
        "evaluation": {"bootstrap_samples": 20, "nuisance_folds": 3, "placebo_tolerance": 1.0e9},
        # Score on the executors as a cluster's large nights do: their Python workers import the scorer from
        # the package's zip (the fixture's few hundred pairs would otherwise be scored on the driver).
        "scoring": {**local.get("scoring", {}), "driver_max_pairs": 0},
        "mlflow": {"tracking_uri": None, "local_store": str(root / "mlflow.db"),
                   "artifact_root": str(root / "mlartifacts")},
    }


@contextmanager
def _deployed(package: Path, spark_conf_dir: Path, workdir: Path):
    """What an Airflow worker beside a cluster has: PROMO_ROI_HOME at the unpacked package, Spark's
    configuration naming the cluster's Python, and a working directory of its own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROMO_ROI_HOME", str(package))
        mp.setenv("SPARK_CONF_DIR", str(spark_conf_dir))
        mp.chdir(workdir)
        yield


@pytest.fixture(scope="module")
def night(airflow_env, cluster_package, bare_python, tmp_path_factory) -> Night:
    import time

    root = tmp_path_factory.mktemp("nightly")
    assert REPO not in root.parents and REPO not in cluster_package.parents
    conf_dir = root / "conf"
    conf_dir.mkdir()
    shutil.copy(cluster_package / "conf" / "base.yaml", conf_dir / "base.yaml")
    (conf_dir / "airflow_e2e.yaml").write_text(yaml.safe_dump(_e2e_profile(root), sort_keys=False))
    # The cluster's spark-defaults.conf: its Python (the venv's spark-defaults, which names the venv's, is
    # not read: SPARK_CONF_DIR replaces it).
    spark_conf_dir = root / "spark-conf"
    spark_conf_dir.mkdir()
    # And, for the test machine, the class path of the tests' class-data archive (tests/class_archive.py).
    archive_line = conftest.CLASS_ARCHIVE.spark_defaults_line() if conftest.CLASS_ARCHIVE else ""
    (spark_conf_dir / "spark-defaults.conf").write_text(
        f"spark.pyspark.python {bare_python}\nspark.pyspark.driver.python {bare_python}\n{archive_line}")
    with _deployed(cluster_package, spark_conf_dir, root):
        dag = _load_dag(airflow_env)
        started = time.monotonic()
        dr, tis = _run(dag, RUN_DATE, run_conf={"profile": "airflow_e2e", "conf_dir": str(conf_dir)})
    return Night(root, cluster_package, spark_conf_dir, conf_dir, root / "warehouse", root / "mlflow.db", dr, tis,
                 time.monotonic() - started)


def test_one_night_runs_end_to_end(night):
    states = _states(night.tis)
    print(f"dag.test() of {RUN_DATE}: {night.seconds:.0f} s, {states}")
    # Where the night's time goes (docs/tests.md cites these): each task's own seconds, from Airflow's records.
    print("task seconds:", {t: round(ti.duration) for t, ti in night.tis.items() if ti.duration})
    assert states == {
        "check_run_date": "success", "ingest": "success", "check_quality": "success",
        "build_features": "success", "build_item_store_week": "success", "evaluate_promotions": "success",
        "choose_training": "success",
        "train": "success",
        "skip_training": "skipped", "score": "success", "backtest": "success",
    }
    assert str(night.dagrun.state) in ("success", "DagRunState.SUCCESS")


def test_each_job_got_the_conf_profile_and_the_run_date(night):
    """What the operators rendered and ran, read back from Airflow's rendered-fields table."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    conf = ["--profile", "airflow_e2e", "--conf-dir", str(night.conf_dir)]
    expected = {
        "ingest": conf, "check_quality": conf,
        "build_features": [*conf, "--as-of", RUN_DATE.isoformat()],
        "build_item_store_week": [*conf, "--as-of", RUN_DATE.isoformat()],
        "evaluate_promotions": [*conf, "--as-of", RUN_DATE.isoformat()],
        "train": [*conf, "--as-of", RUN_DATE.isoformat()],
        "score": [*conf, "--run-date", RUN_DATE.isoformat()],
        "backtest": [*conf, "--run-dates", BACKTEST_DATE.isoformat(), "--observed-through", RUN_DATE.isoformat()],
    }
    for task_id, args in expected.items():
        rendered = RenderedTaskInstanceFields.get_templated_fields(night.tis[task_id])
        assert rendered is not None, f"{task_id} was never rendered"
        assert rendered["application_args"] == args, task_id
        assert rendered["application"] == str(night.package / "jobs" / f"{SPARK_TASKS[task_id]}.py")
        assert rendered["py_files"] == str(night.package / f"promo_roi-{PACKAGE_VERSION}.zip")
        assert rendered["name"] == f"promo-roi-{task_id}-{RUN_DATE.isoformat()}"
        assert rendered["packages"] == "io.delta:delta-spark_2.13:4.0.0"


def _delta(night: Night, schema: str, table: str, *columns: str):
    """Columns of a Delta table the night wrote, read from disk without Spark: the table's
    active files (deltalake reads the log) with their partition values.

    Not deltalake's own readers: with the pinned pyarrow 14 its pyarrow-dataset reader fails
    on partitioned tables and its query engine returns string views pyarrow 14 cannot import.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    path = night.warehouse / schema / table
    assert (path / "_delta_log").is_dir(), f"{schema}.{table} was not written at {path}"
    delta = DeltaTable(str(path))
    partitions = [c for c in columns if c in delta.metadata().partition_columns]
    stored = [c for c in columns if c not in partitions]
    actions = pa.table(delta.get_add_actions(flatten=True)).to_pylist()
    parts = []
    for action in actions:
        part = pq.read_table(path / action["path"], columns=stored)
        for c in partitions:
            part = part.append_column(c, pa.array([action[f"partition.{c}"]] * part.num_rows))
        parts.append(part.select(list(columns)))
    if not parts:
        import pandas as pd

        return pd.DataFrame({c: [] for c in columns})
    return pa.concat_tables(parts).to_pandas()


def test_the_night_left_its_tables_and_a_champion(night):
    audit = _delta(night, "bronze", "ingest_audit", "source_table", "rows_read", "rows_written",
                   "rows_quarantined")
    assert len(audit) == 8 and (audit.rows_read == audit.rows_written + audit.rows_quarantined).all()
    # Every source row is in bronze or in the quarantine (counted here from the source and Delta files).
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    quarantine = _delta(night, "bronze", "quarantine", "source_table")
    for source in sorted(FIXTURE.glob("*.parquet")):
        table = source.stem
        bronze = DeltaTable(str(night.warehouse / "bronze" / table))
        written = sum(pq.read_metadata(path).num_rows for path in bronze.file_uris())
        assert written + (quarantine.source_table == table).sum() == pq.read_metadata(source).num_rows, table
    for table, column in (("user_features", "as_of_date"), ("campaign_exposures", "as_of_date"),
                          ("training_examples", "as_of_date")):
        df = _delta(night, "silver", table, column)
        assert (df[column] == RUN_DATE).sum() > 0, table
    # The product promotion tables: every week that ended before the run date, each row with its features.
    weeks = _delta(night, "silver", "item_store_week", "product_id", "store_id", "week", "week_end_date")
    features = _delta(night, "silver", "item_store_week_features", "product_id", "store_id", "week")
    assert len(weeks) > 0 and (weeks.week_end_date < RUN_DATE).all() and len(features) == len(weeks)
    # The promotion yardstick and side effects of the run date (jobs/evaluate_promotions.py).
    lift = _delta(night, "gold", "promotion_lift_evaluation", "as_of_date", "model", "placement_type")
    assert set(lift.as_of_date) == {RUN_DATE} and {"own_last_lift", "lgbm"} <= set(lift.model)
    assert "all" in set(lift.placement_type)
    effects = _delta(night, "gold", "promotion_side_effects", "as_of_date", "effect")
    assert set(effects.as_of_date) == {RUN_DATE} and set(effects.effect) == {"pull_forward", "cannibalisation"}
    evaluation = _delta(night, "gold", "model_evaluation", "as_of_date", "model_name", "split", "scope", "metric",
                        "value")
    assert (evaluation.as_of_date == RUN_DATE).any()
    # The champion is an ensemble of two: each member's Qini and their spread on both held-out splits.
    spread = evaluation[(evaluation.as_of_date == RUN_DATE) & (evaluation.scope == "ensemble")]
    assert set(spread.model_name) == {"transformer", "transformer_member_1", "transformer_member_2"}
    assert set(spread.split) == {"validation", "test"}
    assert (spread[spread.metric == "members"].value == 2.0).all() and len(spread[spread.metric == "members"]) == 2
    assert (spread[spread.metric == "member_uplift_sd"].value > 0).all()

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{night.mlflow_db}")
    champion = client.get_model_version_by_alias("promo_roi_household_response", "champion")

    log = _delta(night, "gold", "publication_log", "run_date", "run_id", "model_version")
    tonight = log[log.run_date == RUN_DATE]
    assert len(tonight) >= 1
    forecast = _delta(night, "gold", "campaign_roi_forecast", "run_date", "run_id", "campaign_id", "model_version")
    published = forecast[(forecast.run_date == RUN_DATE) & forecast.run_id.isin(tonight.run_id)]
    # Campaigns 11-23 start on or after the run date: each gets a forecast from the champion.
    assert set(published.campaign_id) == set(range(11, 24))
    assert set(published.model_version.astype(str)) == {str(champion.version)}
    # The backtest forecast the run date eight weeks back, without publishing anything for it, and
    # held its forecasts against the campaigns observed through the run date that the champion never
    # trained on.
    assert not (log.run_date == BACKTEST_DATE).any()
    backtest = _delta(night, "gold", "backtest_forecast", "run_date", "model_version")
    assert set(backtest.run_date) == {BACKTEST_DATE}
    assert set(backtest.model_version.astype(str)) == {str(champion.version)}
    accuracy = _delta(night, "gold", "forecast_accuracy", "run_date", "campaign_id", "start_date", "end_date")
    assert set(accuracy.run_date) <= {BACKTEST_DATE}
    assert (accuracy.start_date >= BACKTEST_DATE).all() and (accuracy.end_date < RUN_DATE).all()


def test_check_quality_stops_a_night_whose_bronze_changed_after_ingest(airflow_env, night):
    """Runs last: it appends a row to the night's bronze.campaigns behind ingest's back. The real
    check_quality job then fails (exit 2), nothing downstream runs, and the alert names the table."""
    from deltalake import DeltaTable, write_deltalake

    path = str(night.warehouse / "bronze" / "campaigns")
    write_deltalake(path, DeltaTable(path).to_pyarrow_table().slice(0, 1), mode="append")
    sent_before = len(airflow_env.smtp.messages)
    # Another night reads the same warehouse; its ingest is marked done so the change stays.
    with _deployed(night.package, night.spark_conf_dir, night.root):
        dag = _load_dag(airflow_env)
        dr, tis = _run(dag, dt.date(2017, 7, 6), mark_success_pattern="ingest",
                       run_conf={"profile": "airflow_e2e", "conf_dir": str(night.conf_dir)})
    states = _states(tis)
    assert states["check_quality"] == "failed", states
    assert {states[t] for t in ("build_features", "choose_training", "train", "skip_training", "score",
                                "backtest")} == {"upstream_failed"}, states
    alerts = [m for m in airflow_env.smtp.messages[sent_before:] if "check_quality" in m["Subject"]]
    assert len(alerts) == 1
    body = _body(alerts[0])
    assert "Error code is: 2" in body
    assert "campaigns" in body and "Delta version" in body, body[-3000:]
