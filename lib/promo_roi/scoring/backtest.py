"""Backtest: score past run dates, then hold each forecast against what happened.

For every run date D given, :func:`backtest`

1. builds the point-in-time features as of D if they are missing (the same
   builder as jobs/build_features.py), and runs the nightly scoring for D
   (:func:`promo_roi.scoring.job.score`): the forecast the current champion
   would have published that night, from what was known that night;
2. picks the forecast's campaigns that have since run to their end (ended
   before ``observed_through``, window inside the data) and that the champion
   never saw in training (its MLflow run's campaign splits), and that had a
   target list (the realized effect is an effect on the households targeted);
3. estimates each campaign's realized incremental revenue on its targeted
   households with the same selection correction as training's evaluation:
   household x campaign rows with features as of the campaign start (the
   training-example builder), cross-fitted LightGBM nuisance models
   (propensity and untargeted outcome, out-of-fold by household) and the
   doubly robust effect on the targeted (:func:`promo_roi.causal.metrics.dr_att`),
   times the audience;
4. replaces D's slice of ``gold.forecast_accuracy`` in one Delta commit:
   forecast against realized, the error, whether the forecast's interval
   covered the realized value, and the ROI both ways;
5. writes D's run report (:mod:`promo_roi.reporting.report`), which now
   includes D's backtest (a report failure is logged, as in scoring).

The realized value is itself an estimate (its interval is stored): a forecast
"error" smaller than that interval is not evidence of anything.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.analyst_views import create_spark_views
from promo_roi.causal import metrics as M
from promo_roi.config import AppConfig
from promo_roi.features import Bronze, build_campaign_exposures, build_features, campaign_calendar, read_bronze
from promo_roi.observability import stage
from promo_roi.tables import CAMPAIGN_PLANS, CAMPAIGN_ROI_FORECAST, FORECAST_ACCURACY, user_features_spec
from promo_roi.training import evaluate as E
from promo_roi.training.examples import (
    CampaignSplit,
    campaign_state_at_start,
    concurrent_campaigns,
    examples_from_exposures,
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
    return examples_from_exposures(exposures, households, camp, concurrent, splits, observed_through, config.features)


def realized_effect(frame: pd.DataFrame, encode: Any, folds: int, n_boot: int, seed: int) -> RealizedEffect:
    """The DR effect on the targeted households of one campaign (total spend), with its interval."""
    nuisance = E.fit_nuisance(frame, E.design_matrix(encode(frame)), folds, seed)
    y, t = frame["spend"].astype(float).to_numpy(), frame["targeted"].astype(float).to_numpy()
    mu0, _mu1 = nuisance.mu["spend"]
    att = M.dr_att(y, t, mu0, nuisance.e, n_boot=n_boot, seed=seed, cluster=frame["household_id"].to_numpy())
    return RealizedEffect(
        campaign_id=int(frame["campaign_id"].iloc[0]), att=att["effect"], att_low=att["ci_low"],
        att_high=att["ci_high"], naive=M.naive_difference(y, t), treated=att["n_treated"],
        redemptions=float(frame.loc[t > 0.5, "redeemed"].astype(float).sum()),
    )


def accuracy_rows(forecast: pd.DataFrame, realized: dict[int, RealizedEffect], contact_cost: dict[int, float],
                  redemption_cost: dict[int, float]) -> pd.DataFrame:
    """gold.forecast_accuracy rows: each forecast (published row) against its campaign's realized effect.

    The forecast's own margin (gross profit / revenue) turns its gross-profit
    interval into a revenue interval and the realized revenue into profit.
    """
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
            "interval_covers_realized": bool(low <= realized_revenue <= high),
            "forecast_roi": f.roi, "forecast_roi_low": f.roi_low, "forecast_roi_high": f.roi_high,
            "realized_roi": roi(realized_revenue), "realized_roi_low": roi(bounds[0]),
            "realized_roi_high": roi(bounds[1]), "estimator": ESTIMATOR, "model_version": f.model_version,
        })
    return pd.DataFrame(rows)


def campaigns_seen_in_training(config: AppConfig, model_version: str) -> set[int]:
    """Campaigns whose outcomes trained, chose or calibrated the model (its MLflow run's splits)."""
    from mlflow import MlflowClient

    training = config.require_training()[0]
    version = MlflowClient().get_model_version(training.registered_model, model_version)
    params = MlflowClient().get_run(version.run_id).data.params
    return {int(c) for c in json.loads(params.get("campaign_splits", "{}"))}


def _ensure_features(spark: SparkSession, config: AppConfig, run_date: dt.date) -> None:
    spec = user_features_spec(config.features)
    if delta_io.table_exists(spark, spec, config.warehouse) and delta_io.read_table(
            spark, spec, config.warehouse).filter(F.col("as_of_date") == F.lit(run_date)).limit(1).count():
        return
    with stage(log, f"backtest.build_features[{run_date}]"):
        build_features(spark, config, run_date)


def backtest(spark: SparkSession, config: AppConfig, run_dates: Sequence[dt.date],
             observed_through: dt.date | None = None) -> list[BacktestResult]:
    from promo_roi.reporting.report import report_after_publication
    from promo_roi.scoring.job import champion, published, score
    from promo_roi.scoring.predict import load_champion

    observed_through = observed_through or config.source.data_end
    late = [d for d in run_dates if d >= observed_through]
    if late:
        raise InputError(f"run date(s) {', '.join(map(str, late))} are not before observed_through "
                         f"{observed_through}: nothing they forecast can have happened yet")
    _, evaluation, _ = config.require_training()
    model = champion(config)
    seen = campaigns_seen_in_training(config, model.version)
    bronze = read_bronze(spark, config)
    encode = load_champion(model.uri, config.require_training()[2].tracking_uri).feature_encoder.encode
    realized: dict[int, RealizedEffect | None] = {}
    results = []
    for run_date in sorted(set(run_dates)):
        _ensure_features(spark, config, run_date)
        with stage(log, f"backtest.score[{run_date}]"):
            scored = score(spark, config, run_date, report=False)
        forecast = published(spark, CAMPAIGN_ROI_FORECAST, config).filter(
            F.col("run_date") == F.lit(run_date)).toPandas()
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
        todo = [c for c in due if c not in realized]
        if todo:
            with stage(log, f"backtest.realized[{len(todo)} campaigns]") as st:
                examples = realized_examples(bronze, todo, observed_through, config)
                frame = examples.toPandas() if examples is not None else pd.DataFrame(columns=["campaign_id"])
                st.rows = len(frame)
                for c in todo:
                    part = frame[frame["campaign_id"] == c].reset_index(drop=True)
                    if part.empty or part["targeted"].astype(float).sum() == 0:
                        realized[c] = None
                        continue
                    realized[c] = realized_effect(part, encode, evaluation.nuisance_folds,
                                                  evaluation.bootstrap_samples, evaluation.seed)
        for c in due:
            if realized.get(c) is None:
                skipped[c] = f"window not fully observed before {observed_through}"
        plans = delta_io.read_table(spark, CAMPAIGN_PLANS, config.warehouse).select(
            "campaign_id", "contact_cost", "redemption_cost").toPandas()
        contact = dict(zip(plans["campaign_id"].astype(int), plans["contact_cost"].astype(float)))
        per_redemption = dict(zip(plans["campaign_id"].astype(int), plans["redemption_cost"].astype(float)))
        rows = accuracy_rows(forecast, {c: r for c, r in realized.items() if r is not None and c in due},
                             contact, per_redemption)
        with stage(log, f"backtest.forecast_accuracy[{run_date}]") as st:
            frame = _accuracy_frame(spark, rows, run_date)
            delta_io.replace_date_slice(spark, frame, FORECAST_ACCURACY, config.warehouse, "run_date", run_date)
            create_spark_views(spark, config)  # gold.forecast_accuracy_over_time appears with the first slice
            st.rows = len(rows)
            st.detail = (f"{len(rows)} campaigns compared; skipped "
                         + (", ".join(f"{c} ({why})" for c, why in sorted(skipped.items())) or "none"))
        report_after_publication(spark, config, run_date, scored.run_id)
        results.append(BacktestResult(run_date, scored.run_id, sorted(int(c) for c in rows.get("campaign_id", [])),
                                      skipped, len(rows)))
    return results


def _accuracy_frame(spark: SparkSession, rows: pd.DataFrame, run_date: dt.date) -> DataFrame:
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return delta_io.frame_of_records(spark, rows.to_dict("records"), FORECAST_ACCURACY,
                                     {"run_date": run_date, "evaluated_at": now})
