"""The nightly scoring job: scores, ROI forecasts and the budget plan, published all-or-nothing.

:func:`score` is a short sequence of named steps:

1. :func:`prepare_night`: the champion, the plans (seeded from the calendar)
   and the quality gates on the inputs; a failure stops the job before any
   write;
2. :func:`forecast_night`: every (household, planned campaign) pair scored by
   the champion (loaded once per worker), calibrated household scores and the
   per-campaign ROI forecast with its interval
   (:mod:`promo_roi.scoring.forecast`); the backtest runs this same step for
   past dates without publishing it;
3. the budget plan on those scores (:func:`promo_roi.scoring.plan.plan_night`);
4. publication (:func:`promo_roi.publication.publish`): readers switch to the
   run in one commit of gold.publication_log, or keep the last published run.

The run report is written after publication by the job (jobs/score.py), from
the published tables (:mod:`promo_roi.reporting`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from promo_roi import delta_io
from promo_roi.causal.calibration import UpliftCalibration
from promo_roi.config import AppConfig, ConfigError
from promo_roi.bronze import Bronze, read_bronze
from promo_roi.observability import stage
from promo_roi.publication import new_run_id, publish
from promo_roi.scoring import forecast as forecasting
from promo_roi.scoring import inputs
from promo_roi.scoring.plan import describe_plan, plan_night
from promo_roi.scoring.predict import SCORE_SCHEMA, score_on_driver, scorer
from promo_roi.training.champion_ledger import serving_version
from promo_roi.tables import (
    BUDGET_PLAN,
    CAMPAIGN_PLANS,
    CAMPAIGN_ROI_FORECAST,
    HOUSEHOLD_SCORES,
    HOUSEHOLD_TARGETING,
    SOURCE_TABLES,
    TableSpec,
    user_features_spec,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoringResult:
    run_id: str
    model_version: str
    rows: dict[str, int]


@dataclass(frozen=True)
class Champion:
    uri: str  # the version's artifact location (an alias could move while the job runs)
    version: str
    calibration: UpliftCalibration
    trained_as_of: dt.date | None = None  # the as-of date of its training run (None: not logged)


@dataclass(frozen=True)
class Night:
    """What a run date's scoring knows before it writes anything."""

    run_date: dt.date
    bronze: Bronze
    user_features: DataFrame
    model: Champion
    plans: DataFrame  # gold.campaign_plans not started by the run date (cached)
    plans_pd: pd.DataFrame
    lineage: dict[str, int]
    households: int  # in silver.user_features on the run date: pairs <= households x plans

    @property
    def pair_bound(self) -> int:
        return self.households * len(self.plans_pd)


@dataclass(frozen=True)
class NightForecast:
    raw_scores: DataFrame  # the scorer's outputs per pair (cached)
    household_scores: DataFrame  # gold.household_scores rows (cached)
    forecast: pd.DataFrame  # gold.campaign_roi_forecast rows without run keys

    def unpersist(self) -> None:
        for frame in (self.raw_scores, self.household_scores):
            frame.unpersist()


def champion(spark: SparkSession, config: AppConfig) -> Champion:
    """The champion version (gold.model_champion's latest promotion, else the MLflow alias's), its artifacts
    and its uplift calibration; a clear error when unusable."""
    from promo_roi.mlflow_io import MlflowStore
    from promo_roi.scoring.predict import load_champion

    training, _, mlflow_config = config.require_training()
    store = MlflowStore.of(mlflow_config)
    version = serving_version(spark, config.warehouse, store, training.registered_model, training.champion_alias)
    if version is None:
        raise inputs.ScoringInputError(
            f"no '{training.champion_alias}' version of {training.registered_model} in {mlflow_config.tracking_uri}: "
            "run jobs/train.py (a model becomes champion only when it passes its refutation checks)")
    source = store.version_artifacts(training.registered_model, version)
    calibration = getattr(load_champion(source, mlflow_config.tracking_uri), "calibration", None)
    if calibration is None:
        raise inputs.ScoringInputError(
            f"{training.registered_model} version {version} ('{training.champion_alias}') carries no uplift "
            "calibration, and its raw uplift is not an effect to forecast with: retrain with jobs/train.py")
    if calibration.redemption_count is None:
        raise inputs.ScoringInputError(
            f"{training.registered_model} version {version} ('{training.champion_alias}') predates the expected "
            "number of redemptions (its costs would count redeemers, not redemptions): retrain with jobs/train.py")
    model_choice = config.scoring.redemption_model if config.scoring is not None else "ratio"
    if model_choice == "shrunk" and calibration.redemption_count_shrunk is None:
        raise inputs.ScoringInputError(
            f"{training.registered_model} version {version} ('{training.champion_alias}') predates the shrunk "
            "redemption count that scoring.redemption_model: shrunk asks for: retrain with jobs/train.py or "
            "score with redemption_model ratio")
    calibration = replace(calibration, redemption_model=model_choice)
    as_of = store.run_params(store.version_run_id(training.registered_model, version)).get("as_of_date")
    return Champion(source, version, calibration, dt.date.fromisoformat(as_of) if as_of else None)


def input_versions(spark: SparkSession, config: AppConfig, bronze: Bronze) -> dict[str, int]:
    """Delta versions of every table the forecast read (lineage): bronze at the snapshot ``bronze`` was read at."""
    read = {SOURCE_TABLES[t].full_name: v for t, v in bronze.versions.items()}
    specs = [user_features_spec(config.features), CAMPAIGN_PLANS]
    return {**read, **{s.full_name: delta_io.table_version(spark, s, config.warehouse) for s in specs}}


def _require_sections(config: AppConfig) -> None:
    for section in ("scoring", "planning"):
        if getattr(config, section) is None:
            raise ConfigError(f"configuration section '{section}' is missing")


def prepare_night(spark: SparkSession, config: AppConfig, run_date: dt.date, model: Champion | None = None) -> Night:
    """Step 1: inputs, the champion (``model``, else the registry's), plans (calendar campaigns added where
    missing) and the quality gates."""
    _require_sections(config)
    bronze = read_bronze(spark, config)
    uf_spec = user_features_spec(config.features)
    if not delta_io.table_exists(spark, uf_spec, config.warehouse):
        raise inputs.ScoringInputError(
            f"{uf_spec.full_name} does not exist: run jobs/build_features.py --as-of {run_date}")
    user_features = delta_io.read_table(spark, uf_spec, config.warehouse)
    model = model or champion(spark, config)
    with stage(log, f"score.plans[{run_date}]") as st:
        cost = config.scoring.redemption_cost  # 0 is a cost too (a manufacturer-funded coupon)
        if cost is None:
            cost = inputs.redemption_cost_estimate(bronze, run_date)
        inputs.seed_plans(spark, inputs.seed_plans_from_calendar(bronze, run_date, config.scoring, cost), config)
        plans = inputs.planned_campaigns(spark, config, run_date).cache()
        st.detail = f"redemption cost {cost:.3f} per redemption for seeded plans"
    with stage(log, f"score.quality_gates[{run_date}]") as st:
        checked = inputs.check_inputs(user_features, plans, run_date, config, config.scoring)
        st.detail = ", ".join(f"{k} {v:,}" for k, v in checked.items())
    lineage = input_versions(spark, config, bronze)
    return Night(run_date, bronze, user_features, model, plans, plans.toPandas(), lineage, checked["households"])


def forecast_night(night: Night, config: AppConfig, run_id: str) -> NightForecast:
    """Step 2: the champion's scores of every planned pair and the per-campaign forecast (nothing written)."""
    scoring, run_date, model = config.scoring, night.run_date, night.model
    with stage(log, f"score.household_scores[{run_date}]") as st:
        examples = inputs.scoring_examples(night.bronze, night.user_features, night.plans, run_date, config)
        tracking_uri = config.require_training().mlflow.tracking_uri
        if night.pair_bound <= scoring.driver_max_pairs:
            raw = score_on_driver(examples, model.uri, tracking_uri, scoring.mc_dropout_samples).cache()
            st.detail = "on the driver"
        else:
            raw = examples.mapInPandas(scorer(model.uri, tracking_uri, scoring.mc_dropout_samples),
                                       SCORE_SCHEMA).cache()
            st.detail = "on the executors"
        st.rows = raw.count()
    household_scores = raw.transform(forecasting.household_scores(
        night.plans, model.calibration, scoring.gross_margin, run_date, run_id, model.version,
        value_outcome=scoring.value_outcome,
        overlap_band=config.require_training().evaluation.overlap_band)).cache()
    with stage(log, f"score.campaign_roi_forecast[{run_date}]") as st:
        totals = forecasting.campaign_totals(forecasting.audiences(night.bronze.campaigns, raw))
        forecast = forecasting.roi_forecast(totals, night.plans_pd, model.calibration, scoring.gross_margin,
                                            scoring.interval, value_outcome=scoring.value_outcome)
        forecast["interval_method"] = forecasting.interval_method(model.calibration, scoring.mc_dropout_samples,
                                                                  scoring.interval, scoring.value_outcome)
        forecast["input_versions"] = [dict(sorted(night.lineage.items()))] * len(forecast)
        st.rows = len(forecast)
    return NightForecast(raw, household_scores, forecast)


def keyed(spark: SparkSession, frame: pd.DataFrame, spec: TableSpec, keys: dict[str, Any]) -> DataFrame:
    """A driver-side frame as a DataFrame of ``spec`` with the run's keys."""
    return delta_io.frame_of_records(spark, frame.to_dict("records"), spec, keys)


def score(spark: SparkSession, config: AppConfig, run_date: dt.date) -> ScoringResult:
    """Scores, forecasts, plans and publishes ``run_date`` (steps in the module docstring)."""
    _require_sections(config)
    model = champion(spark, config)
    trained = model.trained_as_of
    if trained is not None and trained > run_date:
        # Its examples include campaigns that ended after the run date: a forecast for that date would use them.
        raise inputs.ScoringInputError(
            f"the champion (version {model.version}) was trained as of {trained}, after the run date "
            f"{run_date}: it has seen outcomes the night of {run_date} could not know. Publish {run_date} with a "
            f"model trained as of {run_date} or earlier, or judge past forecasts with jobs/backtest.py")
    night = prepare_night(spark, config, run_date, model)
    run_id = new_run_id()
    version = night.model.version
    keys = {"run_date": run_date, "run_id": run_id, "model_version": version}
    forecast = forecast_night(night, config, run_id)
    with stage(log, f"score.budget_plan[{run_date}, {config.planning.mode}]") as st:
        plan = plan_night(forecast.household_scores, night.plans_pd, config.planning, night.model.calibration,
                          config.scoring.gross_margin, config.scoring.interval, run_date, run_id, version,
                          raw_scores=forecast.raw_scores, value_outcome=config.scoring.value_outcome)
        st.rows = plan.summary.pairs_selected
        st.detail = ", ".join(f"{k} {v}" for k, v in describe_plan(plan.summary).items())
    rows = publish(spark, config, run_date, run_id, version, {
        HOUSEHOLD_SCORES: forecast.household_scores,
        CAMPAIGN_ROI_FORECAST: keyed(spark, forecast.forecast, CAMPAIGN_ROI_FORECAST, keys),
        BUDGET_PLAN: keyed(spark, plan.budget_plan, BUDGET_PLAN, keys),
        HOUSEHOLD_TARGETING: plan.targeting,
    })
    forecast.unpersist()
    plan.selected.unpersist()
    night.plans.unpersist()
    return ScoringResult(run_id, version, rows)


def describe(result: ScoringResult) -> dict[str, Any]:
    return {"run_id": result.run_id, "model_version": result.model_version, **result.rows}
