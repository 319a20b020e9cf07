"""Backtest: what the current champion would have forecast on past run dates, held against what happened.

For every run date D given, :func:`backtest`

1. builds the point-in-time features as of D if they are missing (the same
   builder as jobs/build_features.py), and runs the night's forecasting step
   for D (:func:`promo_roi.scoring.job.forecast_night`: the same inputs, gates,
   model and arithmetic as the nightly job) WITHOUT publishing it: the
   forecasts go to ``gold.backtest_forecast`` under a new run_id (history,
   appended), and the forecast, plan and targeting published on night D are
   never touched;
2. picks the forecast's campaigns that have since run to their end (ended
   before ``observed_through``, window inside the data) and that the champion
   never saw in training (its MLflow run's campaign splits), and that had a
   target list (the realized effect is an effect on the households targeted);
3. estimates each campaign's realized incremental revenue (of the outcome the
   forecast values, ``scoring.value_outcome``) on its targeted
   households with the same selection correction as training's evaluation:
   household x campaign rows with features as of the campaign start (the
   training-example builder), cross-fitted LightGBM nuisance models
   (propensity and untargeted outcome, out-of-fold by household) and the
   doubly robust effect on the targeted (:func:`promo_roi.causal.metrics.dr_att`),
   times the audience; and the same estimator on the campaign's pre-period
   (the campaign moved back by its duration: a placebo that should be ~0);
4. replaces D's slice of ``gold.forecast_accuracy`` in one Delta commit:
   forecast against realized, the error, and how the two intervals relate.

The realized value is itself an estimate: coverage is judged both ways
(forecast interval holds the realized point; realized interval holds the
forecast), by overlap, and by the error in combined standard errors
(``error_z``). jobs/backtest.py re-renders the run report of each date that
has a published run, so the report shows the backtest.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.analyst_views import create_spark_views
from promo_roi.causal import metrics
from promo_roi.config import AppConfig
from promo_roi.bronze import Bronze, read_bronze
from promo_roi.features import build_campaign_exposures, build_features, campaign_calendar
from promo_roi.observability import stage
from promo_roi.tables import BACKTEST_FORECAST, CAMPAIGN_PLANS, FORECAST_ACCURACY, user_features_spec
from promo_roi.training import evaluate
from promo_roi.training.examples import (
    CampaignSplit,
    NotEnoughCampaignsError,
    build_placebo_examples,
    campaign_state_at_start,
    concurrent_campaigns,
    examples_from_exposures,
    purchase_history_at,
    fully_observed,
    household_state_at,
)
from promo_roi.validation import InputError

log = logging.getLogger(__name__)

ESTIMATOR = ("AIPW effect on the targeted (cross-fitted LightGBM propensity and untargeted outcome, folds by "
             "household, propensity clipped to [0.01, 0.99]) x audience; 95% household bootstrap")


@dataclass(frozen=True)
class RealizedEffect:
    campaign_id: int
    att: float
    att_low: float
    att_high: float
    naive: float
    treated: int
    redemptions: float


@dataclass(frozen=True)
class BacktestResult:
    run_date: dt.date
    run_id: str
    campaigns: list[int]
    skipped: dict[int, str]
    rows: int


def realized_examples(bronze: Bronze, campaign_ids: Sequence[int], observed_through: dt.date,
                      config: AppConfig) -> DataFrame | None:
    """Household x campaign rows with outcomes for campaigns fully observed before ``observed_through``
    (None when none of them is)."""
    desc = bronze.campaign_descriptions.filter(F.col("campaign_id").isin(list(campaign_ids)))
    exposures = build_campaign_exposures(
        bronze.transactions, desc, bronze.campaigns, bronze.coupons, bronze.coupon_redemptions,
        observed_through, config.source,
    ).transform(fully_observed(observed_through))
    found = [(int(r.campaign_id), r.start_date) for r in
             exposures.select("campaign_id", "start_date").distinct().collect()]
    if not found:
        return None
    starts = sorted({start for _, start in found})
    households = household_state_at(bronze, starts, config.features)
    camp = campaign_state_at_start(bronze, desc, starts, config.source)
    concurrent = concurrent_campaigns(campaign_calendar(bronze.campaign_descriptions), bronze)
    splits = [CampaignSplit(c, start, "backtest") for c, start in found]
    history = purchase_history_at(bronze, starts, config.features)
    return examples_from_exposures(exposures, households, camp, concurrent, splits, observed_through, config.features,
                                   history)


def realized_effect(frame: pd.DataFrame, encode: Any, folds: int, n_boot: int, seed: int,
                    outcome: str) -> RealizedEffect:
    """The DR effect on the targeted households of one campaign on ``outcome`` (coupon-product or total
    spend: the one its forecast values), with its interval."""
    nuisance = evaluate.fit_nuisance(frame, evaluate.design_matrix(encode(frame)), folds, seed)
    y, t = frame[outcome].astype(float).to_numpy(), frame["targeted"].astype(float).to_numpy()
    mu0, _mu1 = nuisance.mu[outcome]
    att = metrics.dr_att(y, t, mu0, nuisance.e, n_boot=n_boot, seed=seed, cluster=frame["household_id"].to_numpy())
    return RealizedEffect(
        campaign_id=int(frame["campaign_id"].iloc[0]), att=att["effect"], att_low=att["ci_low"],
        att_high=att["ci_high"], naive=metrics.naive_difference(y, t), treated=att["n_treated"],
        redemptions=float(frame.loc[t > 0.5, "redemptions"].astype(float).sum()),  # paid per redemption
    )


# z of the central interval of each side: the forecast's is scoring.interval (90% by default), the
# realized effect's is the 95% household bootstrap of dr_att.
REALIZED_Z = 1.959964


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def agreement(forecast: float, low: float, high: float, realized: float, r_low: float, r_high: float,
              forecast_level: float) -> dict[str, Any]:
    """How a forecast and a realized estimate, each with its interval, agree: each interval holding the other's
    point, overlap, and the error in combined standard errors (interval half-widths / z), consistent at 90%
    when |z| <= 1.645."""
    se_f = (high - low) / (2 * _z(forecast_level))
    se_r = (r_high - r_low) / (2 * REALIZED_Z)
    scale = math.hypot(se_f, se_r)
    z = (forecast - realized) / scale if scale > 0 else math.nan
    return {
        "interval_covers_realized": bool(low <= realized <= high),
        "realized_covers_forecast": bool(r_low <= forecast <= r_high),
        "intervals_overlap": bool(low <= r_high and r_low <= high),
        "error_z": z,
        "consistent_at_90": bool(abs(z) <= _z(0.90)) if not math.isnan(z) else None,
    }


def accuracy_rows(forecast: pd.DataFrame, realized: dict[int, RealizedEffect], contact_cost: dict[int, float],
                  redemption_cost: dict[int, float], placebo: dict[int, RealizedEffect] | None = None,
                  forecast_level: float = 0.90) -> pd.DataFrame:
    """gold.forecast_accuracy rows: each forecast (a gold.backtest_forecast row) against its campaign's realized
    effect and, where it has one, the realized estimator's pre-period placebo.

    The forecast's own margin (gross profit / revenue) turns its gross-profit
    interval into a revenue interval and the realized revenue into profit.
    """
    placebo = placebo or {}
    rows = []
    for f in forecast.itertuples(index=False):
        r = realized.get(int(f.campaign_id))
        if r is None:
            continue
        margin = f.incremental_gross_profit / f.incremental_revenue if f.incremental_revenue else math.nan
        audience = float(f.audience)
        realized_revenue = r.att * audience
        bounds = (r.att_low * audience, r.att_high * audience)
        low = f.incremental_gross_profit_low / margin if margin else math.nan
        high = f.incremental_gross_profit_high / margin if margin else math.nan
        low, high = min(low, high), max(low, high)  # a negative margin would swap them
        cost = audience * contact_cost[int(f.campaign_id)] + r.redemptions * redemption_cost[int(f.campaign_id)]
        p = placebo.get(int(f.campaign_id))

        def roi(revenue: float) -> float:
            return (margin * revenue - cost) / cost if cost > 0 else math.nan

        rows.append({
            "run_id": f.run_id, "campaign_id": int(f.campaign_id), "campaign_type": f.campaign_type,
            "start_date": f.start_date, "end_date": f.end_date, "audience": int(f.audience),
            "forecast_incremental_revenue": f.incremental_revenue,
            "forecast_incremental_revenue_low": low, "forecast_incremental_revenue_high": high,
            "realized_incremental_revenue": realized_revenue,
            "realized_incremental_revenue_low": bounds[0], "realized_incremental_revenue_high": bounds[1],
            "naive_incremental_revenue": r.naive * audience,
            "error": f.incremental_revenue - realized_revenue,
            "absolute_error": abs(f.incremental_revenue - realized_revenue),
            **agreement(f.incremental_revenue, low, high, realized_revenue, *bounds, forecast_level),
            "forecast_roi": f.roi, "forecast_roi_low": f.roi_low, "forecast_roi_high": f.roi_high,
            "realized_roi": roi(realized_revenue), "realized_roi_low": roi(bounds[0]),
            "realized_roi_high": roi(bounds[1]), "estimator": ESTIMATOR, "model_version": f.model_version,
            # What the campaign was forecast to cost against what it cost (contact + redemptions paid).
            "forecast_redemptions": f.expected_redemptions, "realized_redemptions": r.redemptions,
            "forecast_cost": f.cost, "realized_cost": cost,
            "placebo_incremental_revenue": None if p is None else p.att * audience,
            "placebo_incremental_revenue_low": None if p is None else p.att_low * audience,
            "placebo_incremental_revenue_high": None if p is None else p.att_high * audience,
        })
    return pd.DataFrame(rows)


def campaigns_seen_in_training(config: AppConfig, model_version: str) -> set[int]:
    """Campaigns whose outcomes trained, chose or calibrated the model (its MLflow run's splits)."""
    from promo_roi.mlflow_io import MlflowStore

    training, _, mlflow_config = config.require_training()
    store = MlflowStore.of(mlflow_config)
    params = store.run_params(store.version_run_id(training.registered_model, model_version))
    return {int(c) for c in json.loads(params.get("campaign_splits", "{}"))}


def _ensure_features(spark: SparkSession, config: AppConfig, run_date: dt.date) -> None:
    spec = user_features_spec(config.features)
    if delta_io.table_exists(spark, spec, config.warehouse) and delta_io.read_table(
            spark, spec, config.warehouse).filter(F.col("as_of_date") == F.lit(run_date)).limit(1).count():
        return
    with stage(log, f"backtest.build_features[{run_date}]"):
        build_features(spark, config, run_date)


def due_campaigns(forecast: pd.DataFrame, seen: set[int], observed_through: dt.date) -> tuple[list[int], dict[int, str]]:
    """(campaigns whose realized effect can be compared, {skipped campaign: why})."""
    skipped: dict[int, str] = {}
    due = []
    for f in forecast.itertuples(index=False):
        if int(f.campaign_id) in seen:
            skipped[int(f.campaign_id)] = "seen by the champion in training"
        elif f.audience_source != "campaign_target_list":
            skipped[int(f.campaign_id)] = "no target list: no realized effect on targeted households"
        elif f.end_date is None or f.end_date >= observed_through:
            skipped[int(f.campaign_id)] = f"not over by {observed_through}"
        else:
            due.append(int(f.campaign_id))
    return due, skipped


def forecast_backtest(spark: SparkSession, config: AppConfig, run_date: dt.date, model) -> tuple[str, pd.DataFrame]:
    """The night's forecast for ``run_date`` by ``model``, appended to gold.backtest_forecast under a new run id;
    nothing published is touched. Returns (run_id, the rows written)."""
    from promo_roi.scoring.job import forecast_night, prepare_night

    run_id = uuid.uuid4().hex
    with stage(log, f"backtest.forecast[{run_date}]") as st:
        night = prepare_night(spark, config, run_date, model=model)
        scored = forecast_night(night, config, run_id)
        rows = scored.forecast.assign(run_id=run_id, run_date=run_date, model_version=model.version,
                                      backtested_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
        frame = delta_io.frame_of_records(spark, rows.to_dict("records"), BACKTEST_FORECAST)
        delta_io.replace_slice(spark, frame, BACKTEST_FORECAST, config.warehouse,
                               f"run_date = DATE'{run_date.isoformat()}' AND run_id = '{run_id}'")
        scored.unpersist()
        night.plans.unpersist()
        st.rows = len(rows)
    return run_id, rows


def _estimate(examples: DataFrame | None, campaigns: Sequence[int], encode: Any, evaluation,
              outcome: str) -> dict[int, RealizedEffect | None]:
    frame = examples.toPandas() if examples is not None else pd.DataFrame(columns=["campaign_id"])
    out: dict[int, RealizedEffect | None] = {}
    for c in campaigns:
        part = frame[frame["campaign_id"] == c].reset_index(drop=True)
        if part.empty or part["targeted"].astype(float).sum() == 0:
            out[c] = None
            continue
        out[c] = realized_effect(part, encode, evaluation.nuisance_folds, evaluation.bootstrap_samples,
                                 evaluation.seed, outcome)
    return out


def placebo_examples(bronze: Bronze, campaign_ids: Sequence[int], observed_through: dt.date,
                     config: AppConfig) -> DataFrame | None:
    """The realized estimator's inputs on each campaign's pre-period (moved back by its duration)."""
    starts = bronze.campaign_descriptions.filter(F.col("campaign_id").isin(list(campaign_ids))).select(
        "campaign_id", F.to_date("start_date").alias("start")).collect()
    splits = [CampaignSplit(int(r.campaign_id), r.start, "backtest") for r in starts]
    try:
        return build_placebo_examples(bronze, splits, observed_through, config, keep=("backtest",))
    except NotEnoughCampaignsError:
        return None


def backtest(spark: SparkSession, config: AppConfig, run_dates: Sequence[dt.date],
             observed_through: dt.date | None = None) -> list[BacktestResult]:
    from promo_roi.scoring.job import champion
    from promo_roi.scoring.predict import load_champion

    observed_through = observed_through or config.source.data_end
    late = [d for d in run_dates if d >= observed_through]
    if late:
        raise InputError(f"run date(s) {', '.join(map(str, late))} are not before observed_through "
                         f"{observed_through}: nothing they forecast can have happened yet")
    _, evaluation, mlflow_config = config.require_training()
    model = champion(spark, config)
    seen = campaigns_seen_in_training(config, model.version)
    bronze = read_bronze(spark, config)
    encode = load_champion(model.uri, mlflow_config.tracking_uri).feature_encoder.encode
    realized: dict[int, RealizedEffect | None] = {}
    placebo: dict[int, RealizedEffect | None] = {}
    results = []
    for run_date in sorted(set(run_dates)):
        _ensure_features(spark, config, run_date)
        run_id, forecast = forecast_backtest(spark, config, run_date, model)
        due, skipped = due_campaigns(forecast, seen, observed_through)
        todo = [c for c in due if c not in realized]
        if todo:
            with stage(log, f"backtest.realized[{len(todo)} campaigns]") as st:
                outcome = config.scoring.value_outcome
                realized.update(_estimate(realized_examples(bronze, todo, observed_through, config), todo, encode,
                                          evaluation, outcome))
                placebo.update(_estimate(placebo_examples(bronze, todo, observed_through, config), todo, encode,
                                         evaluation, outcome))
                st.detail = f"placebo for {sum(placebo.get(c) is not None for c in todo)} of {len(todo)}"
        for c in due:
            if realized.get(c) is None:
                skipped[c] = f"window not fully observed before {observed_through}"
        plans = delta_io.read_table(spark, CAMPAIGN_PLANS, config.warehouse).select(
            "campaign_id", "contact_cost", "redemption_cost").toPandas()
        contact = dict(zip(plans["campaign_id"].astype(int), plans["contact_cost"].astype(float)))
        per_redemption = dict(zip(plans["campaign_id"].astype(int), plans["redemption_cost"].astype(float)))
        rows = accuracy_rows(forecast, {c: r for c, r in realized.items() if r is not None and c in due},
                             contact, per_redemption, {c: p for c, p in placebo.items() if p is not None},
                             config.scoring.interval)
        with stage(log, f"backtest.forecast_accuracy[{run_date}]") as st:
            frame = _accuracy_frame(spark, rows, run_date)
            delta_io.replace_date_slice(spark, frame, FORECAST_ACCURACY, config.warehouse, "run_date", run_date)
            create_spark_views(spark, config)  # gold.forecast_accuracy_over_time appears with the first slice
            st.rows = len(rows)
            st.detail = (f"{len(rows)} campaigns compared; skipped "
                         + (", ".join(f"{c} ({why})" for c, why in sorted(skipped.items())) or "none"))
        results.append(BacktestResult(run_date, run_id, sorted(int(c) for c in rows.get("campaign_id", [])),
                                      skipped, len(rows)))
    return results


def _accuracy_frame(spark: SparkSession, rows: pd.DataFrame, run_date: dt.date) -> DataFrame:
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return delta_io.frame_of_records(spark, rows.to_dict("records"), FORECAST_ACCURACY,
                                     {"run_date": run_date, "evaluated_at": now})
