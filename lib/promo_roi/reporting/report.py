"""The run report: one self-contained HTML page per published scoring run, with its PNG charts.

:func:`load_report_data` reads what readers see for one run date: the
published rows of gold.campaign_roi_forecast, gold.budget_plan and
gold.household_targeting (the ``*_published`` rule: runs in
gold.publication_log), gold.forecast_accuracy for every backtested run date
up to it, and, for the run's model version (its MLflow training run), the
uplift calibration and Qini from gold.model_evaluation and the DR gain curves
from gold.uplift_curves. :func:`render_report` turns that into
``report.html`` + PNGs (+ ``report.json``, a manifest) in a directory;
:func:`write_report` does it in a hidden directory beside the target and
renames it into place, so a rerun replaces the report whole and a failure
never leaves half of one; :func:`log_report` logs the files to the MLflow run
of the scoring run (experiment ``reports.experiment``, one run per published
run id, tagged with the run date and model version).

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
import html
import json
import logging
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.config import AppConfig, ConfigError, ReportsConfig
from promo_roi.observability import stage
from promo_roi.reporting import charts as C
from promo_roi.reporting import summaries as S
from promo_roi.tables import (
    BUDGET_PLAN,
    CAMPAIGN_ROI_FORECAST,
    FORECAST_ACCURACY,
    HOUSEHOLD_TARGETING,
    MODEL_EVALUATION,
    PUBLICATION_LOG,
    UPLIFT_CURVES,
)
from promo_roi.validation import InputError

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
MANIFEST_FILE = "report.json"
CHART_FILES = {
    "roi": "roi_per_campaign.png",
    "budget": "budget_allocation.png",
    "uplift": "uplift_curves.png",
    "backtest": "forecast_vs_realized.png",
}
CHAMPION_MODEL = "transformer"  # the model_name training gives the network that becomes champion
CURVE_SPLIT, CURVE_SCOPE = "test", "overall"  # held-out campaigns that chose nothing (validation chose the champion)
CURVE_OUTCOMES = (("coupon_product_spend", "Coupon-product spend"), ("spend", "Total spend"))
QINI_OUTCOMES = ("coupon_product_spend", "spend", "redeemed")
MLFLOW_ARTIFACT_DIR = "report"


class ReportInputError(InputError):
    """There is nothing published to report on for the run date."""


@dataclass(frozen=True)
class ModelInfo:
    registered_model: str
    version: str
    mlflow_run_id: str | None = None
    trained_as_of: dt.date | None = None
    current_champion: str | None = None
    lookup_error: str | None = None


@dataclass
class ReportData:
    run_date: dt.date
    run_id: str
    published_at: dt.datetime | None
    model: ModelInfo
    forecast: pd.DataFrame
    plan: pd.DataFrame
    targeting: pd.DataFrame  # per campaign: households, spend, profit, forced (summaries.targeting_counts)
    pairs_targeted: int
    households_targeted: int
    accuracy: pd.DataFrame | None  # None: gold.forecast_accuracy does not exist yet
    evaluation: pd.DataFrame  # gold.model_evaluation rows of the model's training run (may be empty)
    curves: pd.DataFrame  # gold.uplift_curves rows of the model's training run (may be empty)
    evaluation_note: str | None = None  # why evaluation/curves are missing
    curves_note: str | None = None
    table_versions: dict[str, int] = field(default_factory=dict)

    @property
    def interval_method(self) -> str | None:
        methods = sorted(set(self.forecast.get("interval_method", pd.Series(dtype=str)).dropna()))
        return "; ".join(methods) if methods else None

    @property
    def interval_label(self) -> str:
        method = self.interval_method or ""
        head = method.split(" ", 1)[0]
        return f"{head} interval" if head.endswith("%") else "interval"


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


# --- reading -------------------------------------------------------------------------------------


def _model_info(config: AppConfig, version: str) -> ModelInfo:
    """The version's training run and as-of date, and the current champion, from the MLflow registry."""
    training, _, mlflow_config = config.require_training()
    info = ModelInfo(training.registered_model, version)
    try:
        import mlflow
        from mlflow import MlflowClient

        mlflow.set_tracking_uri(mlflow_config.tracking_uri)
        client = MlflowClient()
        mv = client.get_model_version(training.registered_model, version)
        as_of = client.get_run(mv.run_id).data.params.get("as_of_date")
        try:
            champion = str(client.get_model_version_by_alias(training.registered_model, training.champion_alias).version)
        except Exception:  # noqa: BLE001 - no alias is a fact to show, not a failure
            champion = None
        return ModelInfo(training.registered_model, version, mv.run_id,
                         dt.date.fromisoformat(as_of) if as_of else None, champion)
    except Exception as exc:  # noqa: BLE001 - the report says what it could not look up
        log.warning("report: cannot look up %s version %s in MLflow: %s", training.registered_model, version, exc)
        return ModelInfo(info.registered_model, version, lookup_error=f"{type(exc).__name__}: {exc}")


BACKFILL_HINT = "jobs/report.py --run-date D --backfill-curves stores the curves of an older version without retraining"


def _training_rows(spark: SparkSession, config: AppConfig, spec, model: ModelInfo,
                   hint: str = "") -> tuple[pd.DataFrame, str | None]:
    """Rows of ``spec`` (a training gold table) written by the model's training run, or why there are none."""
    columns = spec.columns
    hint = f"; {hint}" if hint else ""
    if model.mlflow_run_id is None:
        return pd.DataFrame(columns=columns), (
            f"the training run of {model.registered_model} version {model.version} is unknown "
            f"({model.lookup_error or 'no MLflow lookup'})")
    if not delta_io.table_exists(spark, spec, config.warehouse):
        return pd.DataFrame(columns=columns), (
            f"{spec.full_name} does not exist yet: version {model.version} was trained before training stored it"
            f"{hint}")
    table = delta_io.read_table(spark, spec, config.warehouse)
    if model.trained_as_of is not None:
        table = table.filter(F.col("as_of_date") == F.lit(model.trained_as_of))
    rows = table.filter(F.col("mlflow_run_id") == model.mlflow_run_id).toPandas()
    if len(rows):
        return rows, None
    others = sorted({r[0] for r in table.select("mlflow_run_id").distinct().collect()})
    held = (f"it holds the training run(s) {', '.join(others)} as of {model.trained_as_of} instead (a later "
            "training as of the same date replaced the slice without becoming champion)" if others
            else f"it has no rows as of {model.trained_as_of}")
    return rows, (f"{spec.full_name} has no rows of MLflow run {model.mlflow_run_id} (version {model.version}): "
                  f"{held}{hint}")


def load_report_data(spark: SparkSession, config: AppConfig, run_date: dt.date) -> ReportData:
    """Everything the report shows for ``run_date``, read from the published gold tables."""
    from promo_roi.scoring.job import published

    if not delta_io.table_exists(spark, PUBLICATION_LOG, config.warehouse):
        raise ReportInputError(f"{PUBLICATION_LOG.full_name} does not exist: run jobs/score.py --run-date {run_date}")
    entry = delta_io.read_table(spark, PUBLICATION_LOG, config.warehouse).filter(
        F.col("run_date") == F.lit(run_date)).first()
    if entry is None:
        raise ReportInputError(f"no published scoring run for {run_date} in {PUBLICATION_LOG.full_name}: "
                               f"run jobs/score.py --run-date {run_date}")
    on_date = F.col("run_date") == F.lit(run_date)
    forecast = published(spark, CAMPAIGN_ROI_FORECAST, config).filter(on_date).toPandas()
    plan = published(spark, BUDGET_PLAN, config).filter(on_date).toPandas()
    targeting = published(spark, HOUSEHOLD_TARGETING, config).filter(on_date)
    counts = targeting.groupBy("campaign_id").agg(
        F.countDistinct("household_id").alias("households"), F.sum("expected_cost").alias("spend"),
        F.sum("expected_incremental_profit").alias("profit"),
        F.sum(F.col("forced").cast("int")).alias("forced"),
    ).toPandas()
    totals = targeting.agg(F.count(F.lit(1)).alias("pairs"), F.countDistinct("household_id").alias("households")).first()
    accuracy = None
    if delta_io.table_exists(spark, FORECAST_ACCURACY, config.warehouse):
        accuracy = delta_io.read_table(spark, FORECAST_ACCURACY, config.warehouse).filter(
            F.col("run_date") <= F.lit(run_date)).toPandas()
    model = _model_info(config, str(entry.model_version))
    evaluation, evaluation_note = _training_rows(spark, config, MODEL_EVALUATION, model)
    curves, curves_note = _training_rows(spark, config, UPLIFT_CURVES, model, BACKFILL_HINT)
    versions = {}
    for spec in (PUBLICATION_LOG, CAMPAIGN_ROI_FORECAST, BUDGET_PLAN, HOUSEHOLD_TARGETING, FORECAST_ACCURACY,
                 MODEL_EVALUATION, UPLIFT_CURVES):
        if delta_io.table_exists(spark, spec, config.warehouse):
            versions[spec.full_name] = delta_io.table_version(spark, spec, config.warehouse)
    return ReportData(
        run_date=run_date, run_id=entry.run_id, published_at=entry.published_at, model=model,
        forecast=forecast, plan=plan, targeting=counts, pairs_targeted=int(totals["pairs"]),
        households_targeted=int(totals["households"]), accuracy=accuracy, evaluation=evaluation,
        curves=curves, evaluation_note=evaluation_note, curves_note=curves_note, table_versions=versions,
    )


def backfill_curves(spark: SparkSession, config: AppConfig, run_date: dt.date) -> int:
    """Stores the uplift curves of the model version that scored ``run_date`` when gold.uplift_curves lacks
    them (a version trained before training stored curves): recomputed without retraining and checked against
    the Qini it was judged on (:mod:`promo_roi.training.curves`). Returns the rows written (0: already there)."""
    from promo_roi.training.curves import backfill_uplift_curves

    if not delta_io.table_exists(spark, PUBLICATION_LOG, config.warehouse):
        raise ReportInputError(f"{PUBLICATION_LOG.full_name} does not exist: run jobs/score.py --run-date {run_date}")
    entry = delta_io.read_table(spark, PUBLICATION_LOG, config.warehouse).filter(
        F.col("run_date") == F.lit(run_date)).first()
    if entry is None:
        raise ReportInputError(f"no published scoring run for {run_date} in {PUBLICATION_LOG.full_name}")
    model = _model_info(config, str(entry.model_version))
    if model.lookup_error:
        raise ReportInputError(f"cannot look up version {model.version} in MLflow: {model.lookup_error}")
    stored, _note = _training_rows(spark, config, UPLIFT_CURVES, model)
    if len(stored):
        log.info("report: gold.uplift_curves already holds version %s (run %s)", model.version, model.mlflow_run_id)
        return 0
    return backfill_uplift_curves(spark, config, model.version)


# --- HTML ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "text"  # text | int | money | pct | num | date | bool


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def format_value(value: Any, kind: str) -> str:
    """The text a table cell shows: money with 2 decimals, ROI-like ratios in percent with 1, 'n/a' for none."""
    if _missing(value):
        return "n/a"
    if kind == "int":
        return f"{float(value):,.0f}"
    if kind == "money":
        return f"{float(value):,.2f}"
    if kind == "pct":
        return f"{100 * float(value):,.1f}%"
    if kind == "num":
        return f"{float(value):,.4f}"
    if kind == "date":
        return pd.Timestamp(value).date().isoformat()
    if kind == "datetime":
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    if kind == "bool":
        return "yes" if bool(value) else "no"
    return str(value)


def html_table(frame: pd.DataFrame, columns: Sequence[Column], table_id: str, caption: str = "",
               totals: Mapping[str, Any] | None = None) -> str:
    """An HTML table of ``frame``'s ``columns``; every cell carries ``data-col`` (the column key) so that
    tools and tests can read it back."""
    e = html.escape
    head = "".join(f'<th class="{"num" if c.kind not in ("text", "date", "datetime", "bool") else "txt"}">'
                   f"{e(c.header)}</th>" for c in columns)

    def cell(c: Column, value: Any, tag: str = "td") -> str:
        classes = ["num" if c.kind not in ("text", "date", "datetime", "bool") else "txt"]
        if _missing(value):
            classes.append("na")
        elif c.kind in ("money", "pct", "num", "int") and float(value) < 0 and not c.key.endswith(("_low", "_high")):
            classes.append("neg")  # interval bounds stay black: a red column of lower bounds is noise
        if c.key == "interval_verdict" and not _missing(value):
            classes.append("verdict-" + str(value).replace(" ", "-"))
        return f'<{tag} class="{" ".join(classes)}" data-col="{e(c.key)}">{e(format_value(value, c.kind))}</{tag}>'

    body = "".join("<tr>" + "".join(cell(c, row.get(c.key)) for c in columns) + "</tr>"
                   for row in frame.to_dict("records"))
    foot = ""
    if totals is not None:
        cells = [cell(c, totals[c.key]) if c.key in totals else '<td class="txt"></td>' for c in columns[1:]]
        foot = f'<tfoot><tr><td class="txt" data-col="{e(columns[0].key)}">total</td>{"".join(cells)}</tr></tfoot>'
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    return (f'<div class="table-wrap"><table id="{e(table_id)}">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody>{foot}</table></div>")


CSS = """
:root { --ink:#1d1d1f; --muted:#5a5a5a; --line:#d9d9de; --band:#f5f6f8; --accent:#2166ac;
        --good:#1b7837; --bad:#b2182b; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink); font: 16px/1.5 -apple-system, "Segoe UI", Roboto,
       "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
main { max-width: 1260px; margin: 0 auto; padding: 28px 28px 60px; }
h1 { font-size: 30px; margin: 0 0 4px; }
h2 { font-size: 23px; margin: 44px 0 8px; padding-top: 14px; border-top: 2px solid var(--line); }
h3 { font-size: 18px; margin: 26px 0 6px; }
p { margin: 8px 0; max-width: 920px; }
.subtitle { color: var(--muted); font-size: 17px; margin-bottom: 18px; }
nav { margin: 14px 0 6px; font-size: 15px; }
nav a { margin-right: 18px; color: var(--accent); text-decoration: none; }
dl.meta { display: grid; grid-template-columns: 200px 1fr; gap: 4px 16px; margin: 12px 0; font-size: 15px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(165px, 1fr)); gap: 12px; margin: 18px 0; }
.kpi { background: var(--band); border-radius: 8px; padding: 12px 14px; }
.kpi .value { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
.kpi .label { color: var(--muted); font-size: 14px; }
.note { background: #fdf6e3; border-left: 5px solid #d9a400; padding: 12px 18px; margin: 18px 0; }
.note ul { margin: 6px 0; padding-left: 20px; }
.note li { margin: 5px 0; max-width: 1000px; }
.notice { background: var(--band); border-left: 5px solid var(--accent); padding: 12px 18px; margin: 14px 0; }
.warning { background: #fbeaea; border-left: 5px solid var(--bad); padding: 12px 18px; margin: 14px 0; }
figure { margin: 16px 0; }
figure img { display: block; width: 100%; max-width: 1100px; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 14px; margin-top: 6px; max-width: 1000px; }
.table-wrap { overflow-x: auto; margin: 10px 0 18px; }
table { border-collapse: collapse; font-size: 13.5px; font-variant-numeric: tabular-nums; }
caption { text-align: left; color: var(--muted); font-size: 14px; padding-bottom: 6px; caption-side: top; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { background: var(--band); font-weight: 600; position: sticky; top: 0; vertical-align: bottom;
     white-space: normal; min-width: 70px; }
td.num, th.num { text-align: right; }
td.txt, th.txt { text-align: left; }
td.neg { color: var(--bad); }
td.na { color: #9e9e9e; }
td.verdict-above-0 { color: var(--good); font-weight: 600; }
td.verdict-below-0 { color: var(--bad); font-weight: 600; }
tbody tr:nth-child(even) { background: #fafbfc; }
tfoot td { font-weight: 600; border-top: 2px solid var(--ink); }
code { background: var(--band); padding: 1px 5px; border-radius: 4px; font-size: 14px; }
footer { margin-top: 48px; color: var(--muted); font-size: 14px; border-top: 1px solid var(--line); padding-top: 12px; }
"""


def _figure_html(file_name: str, alt: str, caption: str) -> str:
    e = html.escape
    return (f'<figure><img src="{e(file_name)}" alt="{e(alt)}">'
            f"<figcaption>{e(caption)}</figcaption></figure>")


def _kpi(value: str, label: str) -> str:
    return f'<div class="kpi"><div class="value">{html.escape(value)}</div><div class="label">{html.escape(label)}</div></div>'


ROI_COLUMNS = (
    Column("campaign_id", "Campaign", "text"), Column("campaign_type", "Type"), Column("start_date", "Starts", "date"),
    Column("end_date", "Ends", "date"), Column("audience", "Households", "int"),
    Column("expected_redemptions", "Expected redemptions", "money"),
    Column("incremental_revenue", "Incremental revenue ({cur})", "money"),
    Column("incremental_gross_profit", "Incremental gross profit ({cur})", "money"),
    Column("cost", "Cost ({cur})", "money"), Column("incremental_profit", "Incremental profit ({cur})", "money"),
    Column("roi", "ROI", "pct"), Column("roi_low", "ROI low", "pct"), Column("roi_high", "ROI high", "pct"),
    Column("interval_verdict", "Interval"),
)
BUDGET_COLUMNS = (
    Column("campaign_id", "Campaign", "text"), Column("campaign_type", "Type"),
    Column("budget", "Planned spend ({cur})", "money"), Column("min_budget", "Min budget ({cur})", "money"),
    Column("max_budget", "Max budget ({cur})", "money"), Column("audience", "Households", "int"),
    Column("expected_redemptions", "Expected redemptions", "money"),
    Column("expected_incremental_profit", "Expected incremental profit ({cur})", "money"),
    Column("expected_incremental_profit_low", "Profit low ({cur})", "money"),
    Column("expected_incremental_profit_high", "Profit high ({cur})", "money"),
    Column("roi", "ROI", "pct"), Column("roi_low", "ROI low", "pct"), Column("roi_high", "ROI high", "pct"),
    Column("marginal_roi", "Marginal ROI", "pct"), Column("forced_households", "Forced households", "int"),
)
COLUMN_NOTES = {"min_budget": "a minimum budget", "max_budget": "a maximum budget",
                "forced_households": "households forced in to meet a minimum budget"}
QINI_COLUMNS = (
    Column("outcome", "Outcome"), Column("scope", "Households"), Column("model_name", "Model"),
    Column("qini", "Qini per household", "num"), Column("qini_low", "95% low", "num"),
    Column("qini_high", "95% high", "num"), Column("auuc", "AUUC per household", "num"),
    Column("n_rows", "Rows", "int"),
)
GAIN_COLUMNS = (
    Column("outcome", "Outcome"), Column("share_targeted", "Households targeted", "pct"),
    Column("rows_targeted", "Rows targeted", "int"), Column("gain", "Champion gain ({cur})", "money"),
    Column("random_gain", "Random gain ({cur})", "money"),
    Column("gain_over_random", "Champion - random ({cur})", "money"),
)
CALIBRATION_COLUMNS = (
    Column("outcome", "Outcome"), Column("metric", "Coefficient"), Column("value", "Value", "num"),
    Column("ci_low", "95% low", "num"), Column("ci_high", "95% high", "num"),
    Column("n_rows", "Held-out rows", "int"), Column("n_campaigns", "Held-out campaigns", "int"),
)
ACCURACY_BY_DATE_COLUMNS = (
    Column("run_date", "Forecast run date", "date"), Column("campaigns", "Campaigns", "int"),
    Column("forecast_incremental_revenue", "Forecast revenue ({cur})", "money"),
    Column("realized_incremental_revenue", "Realized revenue ({cur})", "money"),
    Column("mean_error", "Mean error, bias ({cur})", "money"),
    Column("mean_absolute_error", "Mean absolute error ({cur})", "money"), Column("wape", "WAPE", "pct"),
    Column("interval_coverage", "Intervals covering realized", "pct"),
)
ACCURACY_COLUMNS = (
    Column("campaign_id", "Campaign", "text"), Column("run_date", "Forecast run date", "date"),
    Column("audience", "Households", "int"),
    Column("forecast_incremental_revenue", "Forecast ({cur})", "money"),
    Column("forecast_incremental_revenue_low", "Forecast low", "money"),
    Column("forecast_incremental_revenue_high", "Forecast high", "money"),
    Column("realized_incremental_revenue", "Realized ({cur})", "money"),
    Column("realized_incremental_revenue_low", "Realized low", "money"),
    Column("realized_incremental_revenue_high", "Realized high", "money"),
    Column("error", "Error ({cur})", "money"), Column("interval_covers_realized", "Covered", "bool"),
    Column("naive_incremental_revenue", "Naive difference ({cur}), not an effect", "money"),
)


def _with_currency(columns: Sequence[Column], currency: str) -> list[Column]:
    return [Column(c.key, c.header.format(cur=currency), c.kind) for c in columns]


def _gap_text(gap: Any) -> str:
    """The plan's certified optimality gap, (bound - objective) / |bound|, as a percentage."""
    return "an unknown share" if _missing(gap) else f"{100 * float(gap):.2f}%"


def _money(value: Any, currency: str) -> str:
    return "n/a" if _missing(value) else f"{float(value):,.2f} {currency}"


OUTCOME_LABELS = {"coupon_product_spend": "coupon-product spend", "spend": "total spend", "redeemed": "redemptions"}
MODEL_LABELS = {**C.MODEL_LABELS, "transformer": "champion (transformer)"}


def _section_roi(data: ReportData, cur: str, files: dict[str, str], out: Path) -> str:
    parts = ['<section id="roi"><h2>1. Forecast ROI per campaign</h2>']
    if data.forecast.empty:
        return parts[0] + '<div class="notice">No campaign was forecast in this run.</div></section>'
    summary = S.roi_summary(data.forecast)
    C.save_png(C.roi_chart(summary, data.interval_label), out / CHART_FILES["roi"])
    files["roi"] = CHART_FILES["roi"]
    parts.append(
        f"<p>Each planned campaign, forecast for its whole audience (its target list where it has one, else every "
        f"scored household): incremental revenue and gross profit caused by the campaign, its cost (contact cost per "
        f"household plus expected redemptions times the cost per redemption) and ROI = (incremental gross profit - "
        f"cost) / cost, with the {html.escape(data.interval_label)}. Amounts in {html.escape(cur)}; ROI in percent "
        f"of cost (100% = the campaign returns twice its cost in gross profit).</p>")
    parts.append(_figure_html(CHART_FILES["roi"], "Forecast ROI per campaign with intervals",
                              f"Dot: forecast ROI; bar: {data.interval_label}; vertical line: ROI 0 (break-even). "
                              "Green: the whole interval is above 0; red: below 0; grey: it includes 0, so the data "
                              "cannot tell whether the campaign pays back."))
    parts.append(html_table(summary, _with_currency(ROI_COLUMNS, cur), "roi-table",
                            caption=f"Forecast per campaign, run {data.run_date} (gold.campaign_roi_forecast)"))
    return "".join(parts) + "</section>"


def _section_budget(data: ReportData, cur: str, files: dict[str, str], out: Path) -> str:
    parts = ['<section id="budget"><h2>2. Budget allocation</h2>']
    if data.plan.empty:
        return parts[0] + '<div class="notice">This run published no budget plan.</div></section>'
    summary = S.budget_summary(data.plan, data.forecast)
    totals = S.plan_totals(data.plan, data.pairs_targeted, data.households_targeted)
    mode = totals["planning_mode"]
    budget_text = ("no total budget" if totals["total_budget"] is None
                   else f"a total budget of {_money(totals['total_budget'], cur)}")
    target = "" if totals["target_roi"] is None else f", target ROI {format_value(totals['target_roi'], 'pct')}"
    parts.append(
        f"<p>The plan ({html.escape(str(mode))} mode, {budget_text}{target}, at most "
        f"{format_value(totals['household_cap'], 'int')} campaigns per household) spends "
        f"<b>{_money(totals['budget_used'], cur)}</b> on {totals['campaigns_funded']} of "
        f"{totals['campaigns_planned']} planned campaigns, targeting {totals['pairs_targeted']:,} household x "
        f"campaign pairs ({totals['households_targeted']:,} distinct households), for an expected incremental profit "
        f"of <b>{_money(totals['expected_incremental_profit'], cur)}</b> (gross profit minus cost; the solver "
        f"certifies it is within {_gap_text(totals['plan_gap'])} of the best plan the forecasts allow). A campaign's "
        f"ROI here is "
        f"over the households the plan chose, not its whole audience, so it differs from the forecast above. Marginal ROI "
        f"is the return of the last households admitted: where it stays above 0 more budget would still pay.</p>")
    problems = S.plan_mismatches(data.plan, data.targeting)
    if problems:
        parts.append('<div class="warning"><b>gold.budget_plan and gold.household_targeting disagree</b> for this '
                     "run; do not act on this plan before it is explained:<ul>"
                     + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul></div>")
    title = (f"Budget allocation: {format_value(totals['budget_used'], 'money')} of "
             f"{format_value(totals['total_budget'], 'money')} {cur} planned")
    C.save_png(C.budget_chart(summary, cur, title), out / CHART_FILES["budget"])
    files["budget"] = CHART_FILES["budget"]
    parts.append(_figure_html(CHART_FILES["budget"], "Planned spend and households per campaign",
                              "Left: planned spend per campaign (contact plus expected redemption cost of the "
                              "households chosen); right: households targeted. 'Not funded': the plan gives the "
                              "campaign nothing."))
    foot = {"budget": summary["budget"].fillna(0).sum(), "audience": summary["audience"].fillna(0).sum(),
            "expected_redemptions": summary["expected_redemptions"].fillna(0).sum(),
            "expected_incremental_profit": summary["expected_incremental_profit"].fillna(0).sum(),
            "forced_households": summary["forced_households"].fillna(0).sum()}
    # Columns that say nothing for this plan (no planner set a bound, nobody forced in) are left out.
    unused = [c for c in ("min_budget", "max_budget") if summary[c].isna().all()]
    unused += ["forced_households"] if summary["forced_households"].fillna(0).eq(0).all() else []
    if unused:
        notes = [COLUMN_NOTES[c] for c in unused]
        listed = notes[0] if len(notes) == 1 else ", ".join(notes[:-1]) + " or " + notes[-1]
        parts.append(f"<p>No campaign has {listed} in this plan; those columns are left out.</p>")
    columns = [c for c in BUDGET_COLUMNS if c.key not in unused]
    parts.append(html_table(summary, _with_currency(columns, cur), "budget-table",
                            caption=f"Budget plan, run {data.run_date} (gold.budget_plan"
                                    + ("" if problems else "; gold.household_targeting lists the same households "
                                       "and spend") + "). Intervals do not add up, so the total row has none.",
                            totals=foot))
    return "".join(parts) + "</section>"


def _section_uplift(data: ReportData, cur: str, files: dict[str, str], out: Path) -> str:
    model = data.model
    parts = ['<section id="uplift"><h2>3. Uplift (Qini) curves of the model</h2>']
    parts.append(
        f"<p>How well version {html.escape(model.version)} ranks households by the effect a campaign has on them, "
        "on the held-out test campaigns of its training (campaigns it was neither trained nor chosen on). Targeting "
        "the households with the highest predicted uplift first, the curve adds up their doubly robust (AIPW) "
        "effect estimates; random targeting gains in proportion (the dashed line). The area between the two, per "
        "household, is the Qini coefficient. These are effects estimated with a selection correction, not the "
        "targeted-minus-untargeted gap.</p>")
    if data.curves.empty:
        parts.append(f'<div class="notice"><b>No uplift curves stored for this model.</b> '
                     f"{html.escape(data.curves_note or 'gold.uplift_curves has no rows for it.')}</div>")
    else:
        fig = C.uplift_chart(data.curves, CHAMPION_MODEL, CURVE_SPLIT, CURVE_SCOPE, CURVE_OUTCOMES, cur)
        C.save_png(fig, out / CHART_FILES["uplift"])
        files["uplift"] = CHART_FILES["uplift"]
        parts.append(_figure_html(CHART_FILES["uplift"], "DR gain curves of the champion against random targeting",
                                  "Solid blue: the model of this run; dashed: random targeting; thin lines: the two "
                                  "baselines trained beside it. Shaded: the area that makes the Qini coefficient. A "
                                  "curve under the dashed line ranks worse than chance."))
        gains = []
        for outcome, _label in CURVE_OUTCOMES:
            g = S.gain_at_deciles(data.curves, CHAMPION_MODEL, CURVE_SPLIT, CURVE_SCOPE, outcome)
            g.insert(0, "outcome", OUTCOME_LABELS.get(outcome, outcome))
            gains.append(g)
        parts.append(html_table(pd.concat(gains, ignore_index=True), _with_currency(GAIN_COLUMNS, cur),
                                "gain-table", caption="The champion's curve at each decile of the held-out "
                                "households (gold.uplift_curves, test split, all households)"))
    if data.evaluation.empty:
        parts.append(f'<div class="notice"><b>No evaluation rows for this model.</b> '
                     f"{html.escape(data.evaluation_note or '')}</div>")
    else:
        qini = S.qini_summary(data.evaluation, CURVE_SPLIT, QINI_OUTCOMES)
        qini["outcome"] = qini["outcome"].map(lambda o: OUTCOME_LABELS.get(o, o))
        qini["scope"] = qini["scope"].map({"overall": "all", "overlap": "overlap band"}).fillna(qini["scope"])
        qini["model_name"] = qini["model_name"].map(lambda m: MODEL_LABELS.get(m, m))
        parts.append(html_table(qini, QINI_COLUMNS, "qini-table", caption=(
            "Qini coefficient and AUUC per household with 95% bootstrap intervals (households resampled), test "
            f"campaigns, from gold.model_evaluation; units: {cur} of incremental spend per household for the spend "
            "outcomes, redemptions per household for redemptions. 'Overlap band': households whose propensity of "
            "being targeted is in the band where both arms are plausible. An interval that includes 0 means the "
            "ranking is not shown to beat random targeting.")))
    return "".join(parts) + "</section>"


def _section_backtest(data: ReportData, cur: str, files: dict[str, str], out: Path) -> str:
    parts = ['<section id="backtest"><h2>4. Forecast vs realized (backtest)</h2>']
    if data.accuracy is None or data.accuracy.empty:
        where = ("gold.forecast_accuracy does not exist yet" if data.accuracy is None
                 else f"gold.forecast_accuracy has no rows for run dates up to {data.run_date}")
        parts.append(
            f'<div class="notice"><b>No backtest yet.</b> {where}: no forecast published on or before '
            f"{data.run_date} has been compared with what happened. Run <code>spark-submit jobs/backtest.py "
            f"--run-dates D1,D2,...</code> for past run dates whose campaigns have ended, then "
            f"<code>spark-submit jobs/report.py --run-date {data.run_date}</code> to add this section.</div>")
        return "".join(parts) + "</section>"
    by_date = S.accuracy_by_run_date(data.accuracy)
    detail = S.accuracy_summary(data.accuracy)
    dates = by_date["run_date"]
    when = (f"on {format_value(dates.min(), 'date')}" if len(dates) == 1 else
            f"on {len(dates)} run dates from {format_value(dates.min(), 'date')} to {format_value(dates.max(), 'date')}")
    parts.append(
        f"<p>Forecasts published {when}, held against what happened "
        "once their campaigns ended: the realized incremental revenue of the campaign's audience, estimated doubly "
        "robustly (AIPW effect on the targeted households, with cross-fitted propensity and outcome models). The "
        "realized value is an estimate too, with its own 95% interval: an error smaller than that interval is not "
        "evidence of anything. The naive column is what a targeted-minus-untargeted comparison reports; it is "
        "mostly who was chosen, not what the campaign did.</p>")
    parts.append(html_table(by_date, _with_currency(ACCURACY_BY_DATE_COLUMNS, cur), "accuracy-by-date-table",
                            caption="Per forecast run date (as gold.forecast_accuracy_over_time): bias = mean "
                                    "forecast - realized"))
    C.save_png(C.accuracy_chart(detail, cur), out / CHART_FILES["backtest"])
    files["backtest"] = CHART_FILES["backtest"]
    parts.append(_figure_html(CHART_FILES["backtest"], "Forecast against realized incremental revenue",
                              "Blue dot: forecast with its interval; orange diamond: realized (doubly robust) with "
                              "its 95% interval; a red label marks a forecast whose interval missed the realized "
                              "value."))
    parts.append(html_table(detail, _with_currency(ACCURACY_COLUMNS, cur), "accuracy-table",
                            caption="Per campaign and forecast run date (gold.forecast_accuracy)"))
    return "".join(parts) + "</section>"


def _section_about(data: ReportData, cur: str) -> str:
    m = data.model
    e = html.escape
    model = f"{m.registered_model} version {m.version}"
    if m.trained_as_of:
        model += f", trained as of {m.trained_as_of}"
    if m.mlflow_run_id:
        model += f" (MLflow run {m.mlflow_run_id})"
    if m.current_champion and m.current_champion != m.version:
        model += f"; the champion is now version {m.current_champion}"
    elif m.lookup_error:
        model += f"; MLflow lookup failed: {m.lookup_error}"
    rows = [
        ("Run date", str(data.run_date)), ("Scoring run id", data.run_id),
        ("Published", format_value(data.published_at, "datetime") + " UTC"),
        ("Model", model),
        ("Calibration used", data.interval_method or "n/a"),
        ("Amounts", f"{cur}; ROI in percent of cost"),
    ]
    parts = ['<section id="about"><h2>About this run</h2><dl class="meta">']
    parts += [f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows]
    parts.append("</dl>")
    calibration = S.calibration_summary(data.evaluation) if not data.evaluation.empty else pd.DataFrame()
    if len(calibration):
        units = {"spend": cur, "coupon_product_spend": cur}
        calibration["metric"] = [
            {"calibration_intercept": f"intercept ({units.get(o, '')} per household)",
             "calibration_slope": "slope (x predicted uplift)",
             "calibration_ratio": "ratio (observed / predicted redemptions)"}.get(m, m)
            for o, m in zip(calibration["outcome"], calibration["metric"])]
        calibration["outcome"] = calibration["outcome"].map(lambda o: OUTCOME_LABELS.get(o, o))
        parts.append(
            "<p>The model's raw uplift is not used as an effect: it is calibrated on held-out campaigns as "
            "effect = intercept + slope x predicted uplift (redemptions: scaled by a ratio), fitted against doubly "
            "robust effects. A slope near 0 means little of the predicted variation between households is real; the "
            "forecast then rests mostly on the intercept, the average effect seen on the held-out campaigns.</p>")
        parts.append(html_table(calibration, CALIBRATION_COLUMNS, "calibration-table",
                                caption="Uplift calibration of this model (gold.model_evaluation, 95% bootstrap "
                                        "intervals: campaigns, then households)"))
    else:
        parts.append(f'<div class="notice">The calibration coefficients are not in gold.model_evaluation for this '
                     f"model: {e(data.evaluation_note or 'no rows')}. The forecast still used the calibration "
                     "stored with the model, described above.</div>")
    return "".join(parts) + "</section>"


def _reading_note(data: ReportData) -> str:
    label = html.escape(data.interval_label)
    level = html.escape(data.interval_label.split(" ")[0]) if "%" in data.interval_label else "most"
    return f"""<div class="note"><b>How to read these numbers</b><ul>
<li><b>Incremental</b> means caused by the campaign: what its households spend because they were targeted, beyond
what they would have spent anyway. It is estimated, not observed: the model's predicted uplift, calibrated against
doubly robust effects on campaigns held out from training.</li>
<li><b>The {label}s</b> come from re-running the calibration on bootstrap resamples of the held-out campaigns and
households: {level} of the resampled forecasts fall inside. They show how much the answer depends on which past
campaigns the model learned from; they do not cover a campaign unlike any seen before, and with only a few held-out
campaigns they are rough. An interval that includes 0 means the data cannot tell whether the campaign makes or loses
money. The backtest section shows how often past intervals covered what happened.</li>
<li><b>Targeted vs untargeted differences are not effects.</b> Campaigns target the households that already spend
most (2-3x more before any campaign), so a naive comparison of targeted and untargeted households reports that gap as
if the campaign caused it. Every effect in this report is corrected for that selection; the naive difference is
shown only in the backtest, for contrast.</li>
</ul></div>"""


def _kpis(data: ReportData, cur: str) -> str:
    totals = S.plan_totals(data.plan, data.pairs_targeted, data.households_targeted) if len(data.plan) else None
    cells = [_kpi(f"{len(data.forecast):,}", "campaigns forecast")]
    if totals:
        cells += [
            _kpi(f"{totals['campaigns_funded']:,}", "campaigns the plan funds"),
            _kpi(f"{format_value(totals['budget_used'], 'money')}", f"planned spend, {cur}"),
            _kpi(f"{format_value(totals['expected_incremental_profit'], 'money')}",
                 f"expected incremental profit, {cur} (point forecast; see intervals)"),
            _kpi(f"{totals['households_targeted']:,}", "households targeted"),
        ]
    if data.accuracy is not None and len(data.accuracy):
        covers = data.accuracy["interval_covers_realized"].dropna().astype(bool)
        cells.append(_kpi(f"{int(covers.sum())} of {len(covers)}",
                          "backtest forecasts whose interval covered the realized effect"))
    return '<div class="kpis">' + "".join(cells) + "</div>"


def render_html(data: ReportData, currency: str, out: Path) -> dict[str, str]:
    """Writes report.html and its PNGs into ``out``; returns {section: chart file} of the charts written."""
    files: dict[str, str] = {}
    sections = [
        _section_roi(data, currency, files, out), _section_budget(data, currency, files, out),
        _section_uplift(data, currency, files, out), _section_backtest(data, currency, files, out),
    ]
    rendered = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sources = ", ".join(f"{name} v{version}" for name, version in sorted(data.table_versions.items()))
    e = html.escape
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Promotion ROI report, run {e(str(data.run_date))}</title>
<style>{CSS}</style></head>
<body><main>
<h1>Promotion ROI report: run of {e(str(data.run_date))}</h1>
<div class="subtitle">Model {e(data.model.registered_model)} version {e(data.model.version)} &middot; published
{e(format_value(data.published_at, 'datetime'))} UTC &middot; amounts in {e(currency)}</div>
<nav><a href="#about">About this run</a><a href="#roi">1. ROI per campaign</a><a href="#budget">2. Budget
allocation</a><a href="#uplift">3. Uplift curves</a><a href="#backtest">4. Forecast vs realized</a></nav>
{_kpis(data, currency)}
{_reading_note(data)}
{_section_about(data, currency)}
{''.join(sections)}
<footer>Rendered {e(rendered)} from the published gold tables ({e(sources)}); scoring run {e(data.run_id)}.
Re-render with <code>spark-submit jobs/report.py --run-date {e(str(data.run_date))}</code>.</footer>
</main></body></html>
"""
    (out / REPORT_FILE).write_text(page, encoding="utf-8")
    return files


def render_report(data: ReportData, currency: str, out: Path) -> list[str]:
    """report.html, its charts and report.json (the manifest) in ``out``; returns the file names."""
    charts = render_html(data, currency, out)
    manifest = {
        "run_date": data.run_date.isoformat(), "run_id": data.run_id, "model_version": data.model.version,
        "registered_model": data.model.registered_model, "model_mlflow_run_id": data.model.mlflow_run_id,
        "rendered_at": dt.datetime.now(dt.timezone.utc).isoformat(), "charts": charts,
        "missing": {k: v for k, v in (("uplift_curves", data.curves_note if data.curves.empty else None),
                                      ("backtest", None if data.accuracy is not None and len(data.accuracy)
                                       else "no forecast_accuracy rows up to the run date")) if v},
        "table_versions": data.table_versions,
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    return sorted(p.name for p in out.iterdir())


# --- writing -------------------------------------------------------------------------------------


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
    """Renders the report to ``<reports.root>/<run_date>/``, replacing the date's previous report whole."""
    assert reports.root is not None
    return write_atomically(Path(reports.root), data.run_date.isoformat(),
                            lambda out: render_report(data, reports.currency, out))


def log_report(directory: Path, data: ReportData, config: AppConfig) -> str:
    """Logs the report's files to the MLflow run of the scoring run (created on first use), tagged with the run
    date, run id and model version; returns the MLflow run id. A re-render logs into the same run."""
    from mlflow import MlflowClient

    from promo_roi.training.registry import configure_tracking

    reports = require_reports(config)
    mlflow_config = config.require_training()[2]
    experiment_id = configure_tracking(mlflow_config, reports.experiment)
    client = MlflowClient()
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
        totals = S.plan_totals(data.plan, data.pairs_targeted, data.households_targeted)
        metrics = {"campaigns_forecast": float(len(data.forecast)),
                   "plan_budget_used": totals["budget_used"], "plan_campaigns_funded": totals["campaigns_funded"],
                   "plan_expected_incremental_profit": totals["expected_incremental_profit"],
                   "plan_households_targeted": totals["households_targeted"]}
        for key, value in metrics.items():
            if value is not None and not _missing(value):
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
        log.error("report[%s]: FAILED (%s: %s). The run's results ARE published (run %s); %s. Re-render with: "
                  "spark-submit jobs/report.py --run-date %s", run_date, type(exc).__name__, exc, run_id,
                  f"the local report {directory} is complete" if written else "no local report for this date",
                  run_date, exc_info=True)
        return ReportOutcome(str(directory) if written else None, None, f"{type(exc).__name__}: {exc}")
