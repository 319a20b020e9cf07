"""Measures product promotions on the warehouse: reads the item tables, writes gold.promotion_lift_evaluation
(:mod:`promo_roi.product_promotions.lift_yardstick`) and gold.promotion_side_effects
(:mod:`promo_roi.product_promotions.side_effects`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from contextlib import contextmanager
from typing import Iterator

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.config import AppConfig
from promo_roi.observability import stage
from promo_roi.product_promotions import lift_yardstick, side_effects
from promo_roi.product_promotions.item_store_week import last_completed_week
from promo_roi.tables import (
    ITEM_STORE_WEEK, ITEM_STORE_WEEK_FEATURES, PROMOTION_LIFT_EVALUATION, PROMOTION_SIDE_EFFECTS,
)
from promo_roi.validation import InputError

log = logging.getLogger(__name__)

COLUMNS = ("product_id", "store_id", "week", "units", "on_display", "in_mailer")


def require_item_tables(spark: SparkSession, config: AppConfig) -> None:
    """Refuses a warehouse without the item tables (their features are written last)."""
    if not delta_io.table_exists(spark, ITEM_STORE_WEEK_FEATURES, config.warehouse):
        raise InputError(f"{ITEM_STORE_WEEK_FEATURES.full_name} does not exist: run jobs/build_item_store_week.py")


def evaluable_rows(spark: SparkSession, config: AppConfig, last_week: int) -> pd.DataFrame:
    """The placed rows of weeks up to ``last_week`` that have a baseline, with their features, as pandas."""
    weeks = delta_io.read_table(spark, ITEM_STORE_WEEK, config.warehouse).select(*COLUMNS)
    features = delta_io.read_table(spark, ITEM_STORE_WEEK_FEATURES, config.warehouse)
    rows = (weeks.filter((F.col("week") <= last_week) & (F.col("on_display") | F.col("in_mailer")))
            .join(features.filter(F.col("baseline_units").isNotNull()), ["product_id", "store_id", "week"]))
    return rows.toPandas()


def evaluate_promotion_lift(spark: SparkSession, config: AppConfig, as_of: dt.date, held_out_weeks: int,
                            with_lgbm: bool = True) -> dict[str, int]:
    """Forecasts the last ``held_out_weeks`` weeks ended before ``as_of`` rolling origin and replaces the
    as_of_date slice of gold.promotion_lift_evaluation; returns its rows."""
    if held_out_weeks < 1:
        raise InputError(f"--held-out-weeks must be >= 1, got {held_out_weeks}")
    last_week = last_completed_week(as_of, config.source)
    first = last_week - held_out_weeks + 1
    if first <= config.source.first_week:
        raise InputError(f"as-of date {as_of}: {held_out_weeks} held-out week(s) end at week {last_week}, "
                         f"leaving no earlier week to fit on")
    require_item_tables(spark, config)
    with stage(log, f"product_promotions.lift_yardstick[{as_of}]") as st:
        rows = evaluable_rows(spark, config, last_week)
        models = list(lift_yardstick.MODELS if with_lgbm else lift_yardstick.BASELINES)
        forecasts = lift_yardstick.rolling_origin_forecasts(rows, range(first, last_week + 1), with_lgbm)
        scores = lift_yardstick.score(forecasts, models)
        st.rows = len(forecasts)
        st.detail = f"weeks {first}-{last_week}, {len(scores)} scores"
    evaluated_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    records = [{"as_of_date": as_of, "first_held_out_week": first, "last_held_out_week": last_week,
                **dataclasses.asdict(s), "evaluated_at": evaluated_at} for s in scores]
    for s in scores:
        if s.placement_type == "all":
            log.info("promotion lift %s: WAPE %.3f [%.3f, %.3f], minus %s %+.3f [%+.3f, %+.3f]; deviance %.4f, "
                     "minus %s %+.4f [%+.4f, %+.4f]", s.model, s.wape, s.wape_low, s.wape_high, s.reference_model,
                     s.wape_minus_reference, s.difference_low, s.difference_high, s.poisson_deviance,
                     s.reference_model, s.deviance_minus_reference, s.deviance_difference_low,
                     s.deviance_difference_high)
    frame = delta_io.frame_of_records(spark, records, PROMOTION_LIFT_EVALUATION)
    delta_io.replace_date_slice(spark, frame, PROMOTION_LIFT_EVALUATION, config.warehouse, "as_of_date", as_of)
    return {PROMOTION_LIFT_EVALUATION.full_name: len(records)}


BROADCAST_THRESHOLDS = ("spark.sql.autoBroadcastJoinThreshold", "spark.sql.adaptive.autoBroadcastJoinThreshold")


@contextmanager
def sort_merge_joins_only(spark: SparkSession) -> Iterator[None]:
    """No broadcast joins while inside: the side effects join frames of millions of rows whose shuffled size
    is small enough for adaptive execution to broadcast them, which a driver of 1 GB (spark-submit's default,
    the demo's) then cannot build (measured on the full data: "Not enough memory to build and broadcast")."""
    before = {key: spark.conf.get(key, None) for key in BROADCAST_THRESHOLDS}
    for key in BROADCAST_THRESHOLDS:
        spark.conf.set(key, "-1")
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def measure_side_effects(spark: SparkSession, config: AppConfig, as_of: dt.date) -> dict[str, int]:
    """Pull-forward and cannibalisation over every week ended before ``as_of``; replaces the as_of_date slice
    of gold.promotion_side_effects and returns its rows."""
    last_week = last_completed_week(as_of, config.source)
    require_item_tables(spark, config)
    first_week = config.source.first_week
    with stage(log, f"product_promotions.side_effects[{as_of}]") as st:
        categories = side_effects.counted_in_items(
            delta_io.read_table(spark, ITEM_STORE_WEEK_FEATURES, config.warehouse)
            .select("product_id", "product_category").distinct())
        weeks = (delta_io.read_table(spark, ITEM_STORE_WEEK, config.warehouse).filter(F.col("week") <= last_week)
                 .join(categories.select("product_id"), "product_id", "left_semi"))
        series = weeks.transform(side_effects.placed_pair_series(last_week)).cache()
        try:
            with sort_merge_joins_only(spark):
                pull_forward = side_effects.pull_forward_sums(series).toPandas()
                cannibalisation = side_effects.cannibalisation_sums(weeks, series, categories, first_week,
                                                                    last_week).toPandas()
        finally:
            series.unpersist()
        effects = side_effects.estimate(pull_forward, cannibalisation)
        st.rows = len(effects)
        st.detail = f"weeks {first_week}-{last_week}"
    evaluated_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    for e in effects:
        log.info("%s (%s): %.0f of %.0f expected units lost, rate %.4f [%.4f, %.4f]; share of %.0f lift units "
                 "%.3f [%.3f, %.3f]; %d events, %d controls", e.effect, e.placement_type, e.lost_units,
                 e.expected_units, e.loss_rate, e.loss_rate_low, e.loss_rate_high, e.lift_units, e.share,
                 e.share_low, e.share_high, e.events, e.controls)
    records = [{"as_of_date": as_of, "first_week": first_week, "last_week": last_week, **dataclasses.asdict(e),
                "evaluated_at": evaluated_at} for e in effects]
    frame = delta_io.frame_of_records(spark, records, PROMOTION_SIDE_EFFECTS)
    delta_io.replace_date_slice(spark, frame, PROMOTION_SIDE_EFFECTS, config.warehouse, "as_of_date", as_of)
    return {PROMOTION_SIDE_EFFECTS.full_name: len(records)}
