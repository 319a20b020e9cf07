"""What a run report shows, read from the warehouse and the MLflow registry: :class:`ReportData`.

:func:`load_report_data` reads what readers see for one run date: the
published rows of gold.campaign_roi_forecast, gold.budget_plan and
gold.household_targeting (the ``*_published`` rule: runs in
gold.publication_log), the plan of the previous published run date, gold.forecast_accuracy for every backtested run date
up to it, and, for the run's model version (its MLflow training run), the
uplift calibration and Qini from gold.model_evaluation and the DR gain curves
from gold.uplift_curves. :func:`backfill_curves` stores the curves of a model
version trained before training stored them. Nothing here renders or writes a
report (:mod:`promo_roi.reporting.page` renders, :mod:`promo_roi.reporting.report`
writes).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.config import AppConfig
from promo_roi.publication import published, published_run
from promo_roi.reporting.budget_curve import spend_profit_curve
from promo_roi.training.champion_ledger import serving_version
from promo_roi.tables import (
    BUDGET_PLAN,
    CAMPAIGN_ROI_FORECAST,
    FORECAST_ACCURACY,
    HOUSEHOLD_SCORES,
    HOUSEHOLD_TARGETING,
    MODEL_EVALUATION,
    PROMOTION_LIFT_EVALUATION,
    PROMOTION_SIDE_EFFECTS,
    PUBLICATION_LOG,
    UPLIFT_CURVES,
    TableSpec,
)
from promo_roi.validation import InputError

log = logging.getLogger(__name__)

BACKFILL_HINT = "jobs/report.py --run-date D --backfill-curves stores the curves of an older version without retraining"
SOURCE_TABLES = (PUBLICATION_LOG, CAMPAIGN_ROI_FORECAST, BUDGET_PLAN, HOUSEHOLD_TARGETING, FORECAST_ACCURACY,
                 MODEL_EVALUATION, UPLIFT_CURVES, PROMOTION_LIFT_EVALUATION, PROMOTION_SIDE_EFFECTS)


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


@dataclass(frozen=True)
class PreviousRun:
    """The published run of the latest run date before the report's: what the night-over-night lines compare."""

    run_date: dt.date
    run_id: str
    model_version: str
    plan: pd.DataFrame  # its published gold.budget_plan rows


@dataclass
class ReportData:
    run_date: dt.date
    run_id: str
    published_at: dt.datetime | None
    model: ModelInfo
    forecast: pd.DataFrame
    plan: pd.DataFrame
    targeting: pd.DataFrame  # per campaign: households, spend, profit, forced, overlap (summaries.targeting_counts)
    pairs_targeted: int
    households_targeted: int
    accuracy: pd.DataFrame | None  # None: gold.forecast_accuracy does not exist yet
    evaluation: pd.DataFrame  # gold.model_evaluation rows of the model's training run (may be empty)
    curves: pd.DataFrame  # gold.uplift_curves rows of the model's training run (may be empty)
    evaluation_note: str | None = None  # why evaluation/curves are missing
    curves_note: str | None = None
    table_versions: dict[str, int] = field(default_factory=dict)
    previous: PreviousRun | None = None  # None: no earlier published run
    budget_curve: pd.DataFrame | None = None  # budget_curve.spend_profit_curve of the run's pairs; None: none
    # The product promotions' latest measurement on or before the run date (jobs/evaluate_promotions.py):
    # gold.promotion_lift_evaluation's and gold.promotion_side_effects' rows of that as-of date; None: the
    # table does not exist, empty: it holds no as-of date that early.
    promotion_lift: pd.DataFrame | None = None
    promotion_side_effects: pd.DataFrame | None = None

    def _forecast_text(self, column: str) -> str | None:
        """The distinct values of a text column of the forecast, joined; None when it has none."""
        values = sorted(set(self.forecast.get(column, pd.Series(dtype=str)).dropna()))
        return "; ".join(values) if values else None

    @property
    def interval_method(self) -> str | None:
        return self._forecast_text("interval_method")

    @property
    def value_outcome(self) -> str:
        """The outcome the forecast's incremental revenue is on (scoring.value_outcome); rows published before
        the setting existed have none and valued total spend."""
        return self._forecast_text("value_outcome") or "spend"

    @property
    def interval_label(self) -> str:
        method = self.interval_method or ""
        head = method.split(" ", 1)[0]
        return f"{head} interval" if head.endswith("%") else "interval"


def _model_info(spark: SparkSession, config: AppConfig, version: str) -> ModelInfo:
    """The version's training run and as-of date from the MLflow registry, and the champion scoring serves
    today (gold.model_champion's latest promotion, else the alias's)."""
    training, _, mlflow_config = config.require_training()
    info = ModelInfo(training.registered_model, version)
    try:
        from promo_roi.mlflow_io import MlflowStore

        store = MlflowStore.of(mlflow_config)
        run_id = store.version_run_id(training.registered_model, version)
        as_of = store.run_params(run_id).get("as_of_date")
        # No alias is a fact to show, not a failure.
        champion = serving_version(spark, config.warehouse, store, training.registered_model,
                                   training.champion_alias)
        return ModelInfo(training.registered_model, version, run_id,
                         dt.date.fromisoformat(as_of) if as_of else None, champion)
    except Exception as exc:  # noqa: BLE001 - the report says what it could not look up
        log.warning("report: cannot look up %s version %s in MLflow: %s", training.registered_model, version, exc)
        return ModelInfo(info.registered_model, version, lookup_error=f"{type(exc).__name__}: {exc}")


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
    held = (f"it holds the training run(s) {', '.join(others)} as of {model.trained_as_of} instead (written before "
            "each training run kept its own rows: a later training as of the same date replaced them)" if others
            else f"it has no rows as of {model.trained_as_of}")
    return rows, (f"{spec.full_name} has no rows of MLflow run {model.mlflow_run_id} (version {model.version}): "
                  f"{held}{hint}")


def _publication_entry(spark: SparkSession, config: AppConfig, run_date: dt.date) -> Any:
    """gold.publication_log's row for ``run_date``; :class:`ReportInputError` when nothing is published for it."""
    if not delta_io.table_exists(spark, PUBLICATION_LOG, config.warehouse):
        raise ReportInputError(f"{PUBLICATION_LOG.full_name} does not exist: run jobs/score.py --run-date {run_date}")
    entry = published_run(spark, config, run_date)
    if entry is None:
        raise ReportInputError(f"no published scoring run for {run_date} in {PUBLICATION_LOG.full_name}: "
                               f"run jobs/score.py --run-date {run_date}")
    return entry


def _budget_curve(scores: DataFrame, plan: pd.DataFrame, run_date: dt.date) -> pd.DataFrame | None:
    """The run's scored pairs replanned over budgets (:mod:`promo_roi.reporting.budget_curve`); None without a
    plan, or when the planner refuses (logged: the report goes on without the curve)."""
    if plan.empty:
        return None
    pairs = scores.select("household_id", "campaign_id", F.col("incremental_gross_profit").alias("value"),
                          F.col("expected_cost").alias("cost"),
                          F.col("expected_redemptions").alias("redemptions")).toPandas()
    try:
        return spend_profit_curve(pairs, plan)
    except ValueError as exc:
        log.warning("report[%s]: no spend-profit curve: %s", run_date, exc)
        return None


def _previous_run(spark: SparkSession, config: AppConfig, run_date: dt.date) -> PreviousRun | None:
    """The latest published run before ``run_date`` and its plan, or None."""
    entry = (delta_io.read_table(spark, PUBLICATION_LOG, config.warehouse)
             .filter(F.col("run_date") < F.lit(run_date)).orderBy(F.col("run_date").desc()).first())
    if entry is None:
        return None
    plan = published(spark, BUDGET_PLAN, config).filter(F.col("run_date") == F.lit(entry.run_date)).toPandas()
    return PreviousRun(entry.run_date, entry.run_id, str(entry.model_version), plan)


def latest_slice_by(spark: SparkSession, config: AppConfig, spec: TableSpec, run_date: dt.date) -> pd.DataFrame | None:
    """``spec``'s rows of its latest as_of_date on or before ``run_date``; None when the table does not exist,
    empty when it holds no as-of date that early."""
    if not delta_io.table_exists(spark, spec, config.warehouse):
        return None
    rows = delta_io.read_table(spark, spec, config.warehouse).filter(F.col("as_of_date") <= F.lit(run_date))
    latest = rows.agg(F.max("as_of_date")).first()[0]
    if latest is None:
        return pd.DataFrame(columns=spec.columns)
    return rows.filter(F.col("as_of_date") == F.lit(latest)).toPandas()


def load_report_data(spark: SparkSession, config: AppConfig, run_date: dt.date) -> ReportData:
    """Everything the report shows for ``run_date``, read from the published gold tables."""
    entry = _publication_entry(spark, config, run_date)
    on_date = F.col("run_date") == F.lit(run_date)
    forecast = published(spark, CAMPAIGN_ROI_FORECAST, config).filter(on_date).toPandas()
    plan = published(spark, BUDGET_PLAN, config).filter(on_date).toPandas()
    targeting = published(spark, HOUSEHOLD_TARGETING, config).filter(on_date)
    counts = targeting.groupBy("campaign_id").agg(
        F.countDistinct("household_id").alias("households"), F.sum("expected_cost").alias("spend"),
        F.sum("expected_incremental_profit").alias("profit"),
        F.sum(F.col("forced").cast("int")).alias("forced"),
        # summaries.targeting_counts' overlap counts: null (published before the flag) is unknown, not outside.
        F.sum(F.when(F.col("in_overlap") == F.lit(False), 1).otherwise(0)).alias("outside_overlap"),
        F.sum(F.when(F.col("in_overlap") == F.lit(False), F.col("expected_cost")).otherwise(0.0))
        .alias("spend_outside_overlap"),
        F.sum(F.when(F.col("in_overlap").isNull(), 1).otherwise(0)).alias("overlap_unknown"),
    ).toPandas()
    totals = targeting.agg(F.count(F.lit(1)).alias("pairs"), F.countDistinct("household_id").alias("households")).first()
    accuracy = None
    if delta_io.table_exists(spark, FORECAST_ACCURACY, config.warehouse):
        accuracy = delta_io.read_table(spark, FORECAST_ACCURACY, config.warehouse).filter(
            F.col("run_date") <= F.lit(run_date)).toPandas()
    curve = _budget_curve(published(spark, HOUSEHOLD_SCORES, config).filter(on_date), plan, run_date)
    model = _model_info(spark, config, str(entry.model_version))
    evaluation, evaluation_note = _training_rows(spark, config, MODEL_EVALUATION, model)
    curves, curves_note = _training_rows(spark, config, UPLIFT_CURVES, model, BACKFILL_HINT)
    versions = {spec.full_name: delta_io.table_version(spark, spec, config.warehouse)
                for spec in SOURCE_TABLES if delta_io.table_exists(spark, spec, config.warehouse)}
    return ReportData(
        run_date=run_date, run_id=entry.run_id, published_at=entry.published_at, model=model,
        forecast=forecast, plan=plan, targeting=counts, pairs_targeted=int(totals["pairs"]),
        households_targeted=int(totals["households"]), accuracy=accuracy, evaluation=evaluation,
        curves=curves, evaluation_note=evaluation_note, curves_note=curves_note, table_versions=versions,
        previous=_previous_run(spark, config, run_date), budget_curve=curve,
        promotion_lift=latest_slice_by(spark, config, PROMOTION_LIFT_EVALUATION, run_date),
        promotion_side_effects=latest_slice_by(spark, config, PROMOTION_SIDE_EFFECTS, run_date),
    )


def backfill_curves(spark: SparkSession, config: AppConfig, run_date: dt.date) -> int:
    """Stores the uplift curves of the model version that scored ``run_date`` when gold.uplift_curves lacks
    them (a version trained before training stored curves): recomputed without retraining and checked against
    the Qini it was judged on (:mod:`promo_roi.training.curves`). Returns the rows written (0: already there)."""
    from promo_roi.training.curves import backfill_uplift_curves

    model = _model_info(spark, config, str(_publication_entry(spark, config, run_date).model_version))
    if model.lookup_error:
        raise ReportInputError(f"cannot look up version {model.version} in MLflow: {model.lookup_error}")
    stored, _note = _training_rows(spark, config, UPLIFT_CURVES, model)
    if len(stored):
        log.info("report: gold.uplift_curves already holds version %s (run %s)", model.version, model.mlflow_run_id)
        return 0
    return backfill_uplift_curves(spark, config, model.version)
