"""The run report: one self-contained HTML page per published scoring run, with its PNG charts.

The report lives in rooms: :mod:`promo_roi.reporting.data` reads what a run
date shows into a :class:`~promo_roi.reporting.data.ReportData`;
:mod:`promo_roi.reporting.page` (with :mod:`~promo_roi.reporting.sections`
and :mod:`~promo_roi.reporting.markup`) renders it to HTML text and
matplotlib figures without writing anything; this module is the only one
that writes, locally and to MLflow.

:func:`render_report` writes ``report.html``, its appendix ``diagnostics.html``, the PNGs (+
``report.json``, a manifest) into a directory; :func:`write_report` does it in a hidden
directory beside the target and renames it into place, so a rerun replaces
the report whole and a failure never leaves half of one; :func:`log_report`
logs the files to the MLflow run of the scoring run (experiment
``reports.experiment``, one run per published run id, tagged with the run
date and model version).

:func:`publish_report` is all of it and raises on failure (jobs/report.py).
:func:`report_after_publication` is what the scoring job calls once its
results are published: it never raises. A report failure does not touch the
published tables; it is logged as an ERROR with the command that re-renders
the report, the job still succeeds (a retry would re-score and re-publish
the whole run for a page that can be rebuilt from the tables), and a report
left from an earlier run of the same date is removed, so that nobody reads
numbers that are no longer the published ones.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pyspark.sql import SparkSession

from promo_roi.config import AppConfig, ConfigError, ReportsConfig
from promo_roi.observability import stage
from promo_roi.reporting import charts, summaries
from promo_roi.reporting.data import ReportData, load_report_data
from promo_roi.reporting.index import write_index
from promo_roi.reporting.markup import is_missing
from promo_roi.reporting.page import DIAGNOSTICS_FILE, render_html

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
MANIFEST_FILE = "report.json"
MLFLOW_ARTIFACT_DIR = "report"


@dataclass(frozen=True)
class ReportOutcome:
    directory: str | None  # the local report directory (None: not written)
    mlflow_run_id: str | None
    error: str | None = None

    def describe(self) -> str:
        if self.error:
            return f"FAILED ({self.error})"
        where = self.directory or "MLflow only"
        return f"{where} (MLflow run {self.mlflow_run_id})" if self.mlflow_run_id else where


def require_reports(config: AppConfig) -> ReportsConfig:
    if config.reports is None:
        raise ConfigError("configuration section 'reports' is missing")
    return config.reports


def _missing_parts(data: ReportData) -> dict[str, str]:
    """What the report could not show, and why (the manifest's ``missing``)."""
    reasons = (("uplift_curves", data.curves_note if data.curves.empty else None),
               ("backtest", None if data.accuracy is not None and len(data.accuracy)
                else "no forecast_accuracy rows up to the run date"),
               ("product_promotions", None if data.promotion_lift is not None and len(data.promotion_lift)
                else "no promotion_lift_evaluation as of the run date or before"))
    return {k: v for k, v in reasons if v}


def _summary(data: ReportData) -> dict[str, Any]:
    """The run in a few figures, for the index of reports (index.html)."""
    out: dict[str, Any] = {"campaigns_forecast": len(data.forecast)}
    if len(data.plan):
        totals = summaries.plan_totals(data.plan, data.pairs_targeted, data.households_targeted)
        out.update({
            "campaigns_funded_ids": summaries.funded_campaigns(data.plan),
            **{key: None if is_missing(totals[key]) else float(totals[key])
               for key in ("budget_used", "total_budget", "expected_incremental_profit", "profit_low", "profit_high")},
        })
    return out


def render_report(data: ReportData, currency: str, out: Path) -> list[str]:
    """report.html, its charts and report.json (the manifest) in ``out``; returns the file names."""
    rendered_at = dt.datetime.now(dt.timezone.utc)
    page = render_html(data, currency, rendered_at)
    for chart in page.charts:
        charts.save_png(chart.figure, out / chart.file_name)
    (out / REPORT_FILE).write_text(page.html, encoding="utf-8")
    (out / DIAGNOSTICS_FILE).write_text(page.diagnostics_html, encoding="utf-8")
    manifest = {
        "run_date": data.run_date.isoformat(), "run_id": data.run_id, "model_version": data.model.version,
        "registered_model": data.model.registered_model, "model_mlflow_run_id": data.model.mlflow_run_id,
        "rendered_at": rendered_at.isoformat(), "charts": {chart.key: chart.file_name for chart in page.charts},
        "missing": _missing_parts(data), "table_versions": data.table_versions, "summary": _summary(data),
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    return sorted(p.name for p in out.iterdir())


def write_atomically(root: Path, name: str, fill: Callable[[Path], Any]) -> Path:
    """``fill`` a fresh hidden directory beside ``root/name``, then rename it into place.

    Readers see the old directory or the new one, never a half-written one;
    leftovers of a render killed earlier (``.<name>.*``) are removed first.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    for leftover in root.glob(f".{name}.*"):
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = root / f".{name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        fill(tmp)
        old = None
        if final.exists():
            old = root / f".{name}.old-{uuid.uuid4().hex}"
            final.rename(old)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def write_report(data: ReportData, reports: ReportsConfig) -> Path:
    """Renders the report to ``<reports.root>/<run_date>/``, replacing the date's previous report whole, and
    rewrites ``<reports.root>/index.html`` (:mod:`promo_roi.reporting.index`)."""
    assert reports.root is not None
    directory = write_atomically(Path(reports.root), data.run_date.isoformat(),
                                 lambda out: render_report(data, reports.currency, out))
    write_index(Path(reports.root), reports.currency, REPORT_FILE, MANIFEST_FILE)
    return directory


def log_report(directory: Path, data: ReportData, config: AppConfig) -> str:
    """Logs the report's files to the MLflow run of the scoring run (created on first use), tagged with the run
    date, run id and model version; returns the MLflow run id. A re-render logs into the same run."""
    from promo_roi.mlflow_io import MlflowStore

    reports = require_reports(config)
    store = MlflowStore.of(config.require_training().mlflow)
    experiment_id = store.experiment_id(reports.experiment)
    client = store.client
    existing = client.search_runs([experiment_id], filter_string=f"tags.`promo_roi.run_id` = '{data.run_id}'",
                                  max_results=1)
    tags = {"promo_roi.run_date": data.run_date.isoformat(), "promo_roi.run_id": data.run_id,
            "promo_roi.model_version": data.model.version, "promo_roi.registered_model": data.model.registered_model,
            "promo_roi.report_rendered_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    if existing:
        run_id = existing[0].info.run_id
        client.update_run(run_id, status="RUNNING")
    else:
        run_id = client.create_run(experiment_id, run_name=f"score-{data.run_date}", tags=tags).info.run_id
    try:
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
        totals = summaries.plan_totals(data.plan, data.pairs_targeted, data.households_targeted)
        metrics = {"campaigns_forecast": float(len(data.forecast)),
                   "plan_budget_used": totals["budget_used"], "plan_campaigns_funded": totals["campaigns_funded"],
                   "plan_expected_incremental_profit": totals["expected_incremental_profit"],
                   "plan_households_targeted": totals["households_targeted"]}
        for key, value in metrics.items():
            if value is not None and not is_missing(value):
                client.log_metric(run_id, key, float(value))
        client.log_artifacts(run_id, str(directory), MLFLOW_ARTIFACT_DIR)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id


def publish_report(spark: SparkSession, config: AppConfig, run_date: dt.date) -> ReportOutcome:
    """Reads the published tables of ``run_date``, writes the report locally (atomically) and logs it to MLflow.
    Raises on any failure."""
    reports = require_reports(config)
    with stage(log, f"report.read[{run_date}]") as st:
        data = load_report_data(spark, config, run_date)
        st.rows = len(data.forecast) + len(data.plan) + (0 if data.accuracy is None else len(data.accuracy))
        st.detail = f"run {data.run_id}, model version {data.model.version}"
    with stage(log, f"report.render[{run_date}]") as st:
        if reports.root is not None:
            directory = write_report(data, reports)
            temporary = None
        else:  # a warehouse off the local disk: render to a temporary directory for MLflow only
            temporary = tempfile.TemporaryDirectory(prefix="promo_roi_report_")
            directory = Path(temporary.name)
            render_report(data, reports.currency, directory)
        files = sorted(p.name for p in directory.iterdir())
        st.rows = len(files)
        st.detail = f"{directory}: {', '.join(files)}"
    try:
        with stage(log, f"report.mlflow[{run_date}]") as st:
            mlflow_run = log_report(directory, data, config)
            st.detail = f"experiment {reports.experiment}, run {mlflow_run}, artifacts {MLFLOW_ARTIFACT_DIR}/"
    finally:
        if temporary is not None:
            temporary.cleanup()
    return ReportOutcome(None if temporary is not None else str(directory), mlflow_run)


def _report_run_id(directory: Path) -> str | None:
    try:
        return json.loads((directory / MANIFEST_FILE).read_text())["run_id"]
    except (OSError, ValueError, KeyError):
        return None


def report_after_publication(spark: SparkSession, config: AppConfig, run_date: dt.date, run_id: str) -> ReportOutcome:
    """The scoring job's report step, after publication: never raises (see the module docstring)."""
    if config.reports is None:
        log.warning("report[%s]: no 'reports' configuration section, no run report written", run_date)
        return ReportOutcome(None, None, "no 'reports' configuration section")
    try:
        return publish_report(spark, config, run_date)
    except Exception as exc:  # noqa: BLE001 - the results are published; the report is rebuilt on demand
        directory = Path(config.reports.root) / run_date.isoformat() if config.reports.root else None
        written = directory is not None and _report_run_id(directory) == run_id
        if directory is not None and directory.exists() and not written:
            shutil.rmtree(directory, ignore_errors=True)
            log.error("report[%s]: removed %s, the report of an earlier run of this date", run_date, directory)
            try:  # the index must not link the removed report
                write_index(directory.parent, config.reports.currency, REPORT_FILE, MANIFEST_FILE)
            except OSError as index_error:
                log.error("report[%s]: could not rewrite %s: %s", run_date, directory.parent / "index.html",
                          index_error)
        log.error("report[%s]: FAILED (%s: %s). The run's results ARE published (run %s); %s. Re-render with: "
                  "spark-submit jobs/report.py --run-date %s", run_date, type(exc).__name__, exc, run_id,
                  f"the local report {directory} is complete" if written else "no local report for this date",
                  run_date, exc_info=True)
        return ReportOutcome(str(directory) if written else None, None, f"{type(exc).__name__}: {exc}")
