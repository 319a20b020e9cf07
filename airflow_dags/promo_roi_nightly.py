"""
## promo_roi_nightly

The nightly promo-roi pipeline for run date **D** (the run's logical date,
`{{ ds }}`; D is the first day *not* observed, as in every job's `--as-of`):

| task | what it runs |
|---|---|
| `check_run_date` | refuses a run without a logical date (manual Airflow 3 runs may have none) |
| `ingest` | `spark-submit jobs/ingest.py`: the source (setting `source.path`) into bronze, bad rows quarantined |
| `check_quality` | `spark-submit jobs/check_quality.py`: the latest ingest's `bronze.ingest_audit` against what bronze and the quarantine hold now |
| `build_features` | `spark-submit jobs/build_features.py --as-of D` |
| `build_item_store_week` | `spark-submit jobs/build_item_store_week.py --as-of D`: product x store x week sales, placements and baseline features (product promotions; beside the household chain, which does not wait for it) |
| `evaluate_promotions` | `spark-submit jobs/evaluate_promotions.py --as-of D`: the promotion lift yardstick over the 8 weeks before D and the side effects (gold.promotion_lift_evaluation, gold.promotion_side_effects); the run report shows the latest on or before its date, so a report rendered before this task ends shows the previous night's |
| `choose_training` | branch: `train` on training days, else `skip_training` |
| `train` | `spark-submit jobs/train.py --as-of D`: examples, DDP training, evaluation, MLflow champion gate |
| `score` | `spark-submit jobs/score.py --run-date D`: ROI forecasts from the champion, published all-or-nothing |
| `backtest` | `spark-submit jobs/backtest.py --run-dates D-56 --observed-through D`: gold.forecast_accuracy |

**Schedule**: every day at 03:00 UTC (`CronTriggerTimetable`, so `{{ ds }}` is
the day the run starts: the source is complete up to midnight). The data is the
Complete Journey year, so the DAG runs from 2017-07-04 (a Tuesday: the first
run trains) to 2017-12-28 (the last campaign start: after it there is nothing
left to score). Catch-up is on and safe: every job replaces its own date's
slices (bronze snapshots, `as_of_date` / `run_date` slices), so replaying or
rerunning a date gives the same tables; `max_active_runs=1` keeps the nights in
order, one Spark pipeline at a time.

**Training is weekly**, on runs whose date is a Tuesday: the training set only
changes when a campaign ends (27 campaigns a year), a promotion week ends on
Monday and counts from Tuesday's as-of date on, and the champion gate moves the
`champion` alias only for a better model, so scoring always has a champion in
between. Param `train`: `weekly` (default), `always` (first run on an empty
warehouse, or after changing the model), `never`. A failed training fails the
night: scoring waits for it (`none_failed_min_one_success` lets it run after
a skipped one).

**Backtest**: re-scores the run date `backtest_lookback_days` (56) earlier and
compares those forecasts with what happened for the campaigns that ended on or
before D: eight weeks lets the typical 4-7 week campaign finish.

**Deployment**: `PROMO_ROI_HOME` (default: the checkout this file lives in)
holds `jobs/` and `conf/`: a checkout, whose Python has promo_roi installed,
or an unpacked cluster package (`make package`, docs/cluster.md), whose
`promo_roi-<version>.zip` every task passes to `spark-submit --py-files` so
that the driver and the executors import promo_roi from it. Which Python runs
the jobs is Spark's setting (`spark.pyspark.python` in `$SPARK_CONF_DIR`'s
spark-defaults.conf), as for any spark-submit.

**Configuration** comes from `conf/` like every job's: params `profile`
(default `$PROMO_ROI_PROFILE` or `local`) and `conf_dir` (default
`$PROMO_ROI_CONF_DIR` or the checkout's `conf/`) become `--profile` /
`--conf-dir`; the Delta package for `spark-submit --packages` is read from the
same profile when a task runs. A run's conf is checked before any task: a
profile is a plain name (letters, digits, `_`, `-`), conf_dir an absolute
path without `..`, train one of its modes. Spark's master comes from the Airflow
connection `promo_roi_spark` (e.g. `AIRFLOW_CONN_PROMO_ROI_SPARK='{"conn_type":
"spark", "host": "local[*]"}'`); `spark-submit` must be on the worker's PATH.

**Failures**: every task retries twice with exponential back-off (5, then 10
minutes; a refused run date never), has an execution timeout, and when it has
failed for good logs an `ALERT` line and, when `PROMO_ROI_ALERT_EMAILS` is set,
e-mails it through the `smtp_default` connection (for a Spark task with the
last lines of the job's output). Job exit code 2 (refused input) is
retried like any failure: rerun after fixing the input.

Without a logical date the run is refused (`check_run_date` fails, nothing
else runs): trigger with one, e.g.
`airflow dags trigger promo_roi_nightly --logical-date 2017-07-04T03:00:00+00:00`
or `airflow dags test promo_roi_nightly 2017-07-04`.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import os
from pathlib import Path

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, CronTriggerTimetable, Param, TriggerRule, task
from airflow.sdk.exceptions import AirflowFailException

log = logging.getLogger(__name__)

DAG_ID = "promo_roi_nightly"
# The checkout holding jobs/ and conf/ (this file lives in <root>/airflow_dags/).
PROJECT_ROOT = Path(os.environ.get("PROMO_ROI_HOME") or Path(__file__).resolve().parents[1])
JOBS_DIR = PROJECT_ROOT / "jobs"
SPARK_CONN_ID = "promo_roi_spark"
SCHEDULE = "0 3 * * *"
TRAIN_WEEKDAY = 1  # Tuesday (Monday is 0)
TRAIN_MODES = ("weekly", "always", "never")
BACKTEST_LOOKBACK_DAYS = 56
PROFILE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
CONF_DIR_PATTERN = r"^/(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_./-]+$"
ALERT_EMAILS_ENV = "PROMO_ROI_ALERT_EMAILS"
ALERT_FROM_ENV = "PROMO_ROI_ALERT_FROM"

TIMEOUTS = {
    "ingest": dt.timedelta(minutes=45),
    "check_quality": dt.timedelta(minutes=15),
    "build_features": dt.timedelta(minutes=45),
    "build_item_store_week": dt.timedelta(minutes=45),
    "evaluate_promotions": dt.timedelta(minutes=45),
    "train": dt.timedelta(hours=2),
    "score": dt.timedelta(minutes=45),
    "backtest": dt.timedelta(hours=1, minutes=30),
}


def training_due(run_date: dt.date, mode: str) -> bool:
    """Whether the night of ``run_date`` trains under ``mode`` (weekly: Tuesdays)."""
    if mode not in TRAIN_MODES:
        raise ValueError(f"train must be one of {', '.join(TRAIN_MODES)}, got {mode!r}")
    return mode == "always" or (mode == "weekly" and run_date.weekday() == TRAIN_WEEKDAY)


def jvm_packages(conf_dir: str, profile: str) -> str:
    """spark.jvm_packages of the profile (else base.yaml), comma-separated; read when a task renders."""
    import yaml  # only when a task runs, never at parse time

    packages = None
    for name in ("base.yaml", f"{profile}.yaml"):
        path = Path(conf_dir) / name
        if not path.is_file():
            raise FileNotFoundError(f"configuration file not found: {path}")
        tree = yaml.safe_load(path.read_text()) or {}
        packages = (tree.get("spark") or {}).get("jvm_packages", packages)
    if not packages:
        raise ValueError(f"spark.jvm_packages is not set in {conf_dir} (profile {profile})")
    return ",".join(packages)


def promo_roi_py_files() -> str:
    """The promo_roi zip when PROMO_ROI_HOME is an unpacked cluster package (``make package``), for
    ``spark-submit --py-files``; "" for a checkout, whose Python has promo_roi installed. Read when a task
    renders, never at parse time."""
    zips = sorted(PROJECT_ROOT.glob("promo_roi-*.zip"))
    if len(zips) > 1:
        raise ValueError(f"{PROJECT_ROOT} holds {len(zips)} promo_roi zips ({', '.join(z.name for z in zips)}); "
                         "a cluster package holds one: point PROMO_ROI_HOME at one package")
    return str(zips[0]) if zips else ""


def alert_on_failure(context) -> None:
    """Failure callback: an ALERT line in the task log, and an e-mail when PROMO_ROI_ALERT_EMAILS is set."""
    ti = context["ti"]
    dag_run = context.get("dag_run")
    logical = getattr(dag_run, "logical_date", None)
    exception = context.get("exception")
    summary = (
        f"promo-roi {ti.dag_id}.{ti.task_id} failed on try {ti.try_number} "
        f"(run {ti.run_id}, run date {logical.date() if logical else 'none'}): {exception}"
    )
    log.error("ALERT %s", summary)
    emails = os.environ.get(ALERT_EMAILS_ENV, "").strip()
    if not emails:
        return
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    SmtpNotifier(
        to=[e.strip() for e in emails.split(",") if e.strip()],
        from_email=os.environ.get(ALERT_FROM_ENV, "promo-roi@localhost"),
        subject=f"[promo-roi] {ti.dag_id}.{ti.task_id} failed ({ti.run_id})",
        html_content=f"<pre>{html.escape(summary, quote=False)}</pre>",
    )(context)


DEFAULT_ARGS = {
    "owner": "promo-roi",
    "depends_on_past": False,
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=5),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=30),
    "execution_timeout": dt.timedelta(hours=1),
    "on_failure_callback": [alert_on_failure],
}

# Every job reads conf/ the same way; the run date is added per task.
CONF_ARGS = ["--profile", "{{ params.profile }}", "--conf-dir", "{{ params.conf_dir }}"]


def spark_job(task_id: str, job: str, *date_args: str, **kwargs) -> SparkSubmitOperator:
    return SparkSubmitOperator(
        task_id=task_id,
        application=str(JOBS_DIR / f"{job}.py"),
        name=f"promo-roi-{task_id}-{{{{ ds }}}}",
        conn_id=SPARK_CONN_ID,
        packages="{{ jvm_packages(params.conf_dir, params.profile) }}",
        py_files="{{ promo_roi_py_files() }}",
        application_args=[*CONF_ARGS, *date_args],
        execution_timeout=TIMEOUTS[task_id],
        **kwargs,
    )


with DAG(
    dag_id=DAG_ID,
    description="Nightly ingest, quality check, features, weekly training, ROI scoring and backtest",
    doc_md=__doc__,
    schedule=CronTriggerTimetable(SCHEDULE, timezone="UTC"),
    start_date=pendulum.datetime(2017, 7, 4, 3, tz="UTC"),
    end_date=pendulum.datetime(2017, 12, 28, 3, tz="UTC"),
    catchup=True,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    user_defined_macros={"jvm_packages": jvm_packages, "promo_roi_py_files": promo_roi_py_files},
    params={
        # Allow-lists: a profile is a file name in conf_dir, conf_dir an absolute path without "..".
        "profile": Param(os.environ.get("PROMO_ROI_PROFILE") or "local", type="string", pattern=PROFILE_PATTERN,
                         description="configuration profile in conf_dir (--profile)"),
        "conf_dir": Param(os.environ.get("PROMO_ROI_CONF_DIR") or str(PROJECT_ROOT / "conf"), type="string",
                          pattern=CONF_DIR_PATTERN,
                          description="directory holding base.yaml and the profiles (--conf-dir)"),
        "train": Param("weekly", enum=list(TRAIN_MODES),
                       description="weekly: train on Tuesdays; always; never"),
        "backtest_lookback_days": Param(BACKTEST_LOOKBACK_DAYS, type="integer", minimum=1,
                                        description="backtest the run date this many days before D"),
    },
    tags=["promo-roi", "spark", "nightly"],
) as dag:

    @task(task_id="check_run_date", retries=0, doc_md="Refuses a run without a logical date.")
    def check_run_date(dag_run=None) -> str:
        logical = dag_run.logical_date if dag_run is not None else None
        if logical is None:
            raise AirflowFailException(
                f"run {dag_run.run_id if dag_run else '?'} has no logical date, and every job needs one as its "
                "run date: trigger with a logical date (airflow dags trigger promo_roi_nightly --logical-date "
                "2017-07-04T03:00:00+00:00, or pick one in the trigger form)"
            )
        return logical.date().isoformat()

    ingest = spark_job("ingest", "ingest", doc_md="Source tables into bronze; bad rows to bronze.quarantine.")
    check_quality = spark_job(
        "check_quality", "check_quality",
        doc_md="The latest ingest's audit against what bronze holds now (exit 2 names each failure).")
    build_features = spark_job("build_features", "build_features", "--as-of", "{{ ds }}",
                               doc_md="Point-in-time silver feature tables as of D.")

    build_item_store_week = spark_job(
        "build_item_store_week", "build_item_store_week", "--as-of", "{{ ds }}",
        doc_md="Product x store x week sales, placements and baseline features for the weeks ended before D.")
    evaluate_promotions = spark_job(
        "evaluate_promotions", "evaluate_promotions", "--as-of", "{{ ds }}",
        doc_md="The promotion lift yardstick over the last weeks before D, then pull-forward and cannibalisation.")

    @task.branch(task_id="choose_training", doc_md="train on training days (param `train`), else skip_training.")
    def choose_training(params=None, dag_run=None) -> str:
        return "train" if training_due(dag_run.logical_date.date(), params["train"]) else "skip_training"

    train = spark_job("train", "train", "--as-of", "{{ ds }}",
                      doc_md="Train, evaluate and register; the champion alias moves only for a better model.")
    skip_training = EmptyOperator(task_id="skip_training", doc_md="Not a training day: score with the champion.")
    score = spark_job("score", "score", "--run-date", "{{ ds }}",
                      trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
                      doc_md="ROI forecasts for D from the champion, published all-or-nothing.")
    backtest = spark_job(
        "backtest", "backtest",
        "--run-dates", "{{ macros.ds_add(ds, -params.backtest_lookback_days) }}",
        "--observed-through", "{{ ds }}",
        doc_md="Re-score D - backtest_lookback_days and compare with the campaigns observed through D.")

    check_run_date() >> ingest >> check_quality >> build_features >> choose_training() >> [train, skip_training]
    [train, skip_training] >> score >> backtest
    check_quality >> build_item_store_week >> evaluate_promotions
