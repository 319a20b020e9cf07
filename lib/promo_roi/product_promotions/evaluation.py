"""Runs the promotion lift yardstick on the warehouse: reads the item tables, writes
gold.promotion_lift_evaluation (the side effects of :mod:`promo_roi.product_promotions.lift_yardstick`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.config import AppConfig
from promo_roi.observability import stage
from promo_roi.product_promotions import lift_yardstick
from promo_roi.product_promotions.item_store_week import last_completed_week
from promo_roi.tables import ITEM_STORE_WEEK, ITEM_STORE_WEEK_FEATURES, PROMOTION_LIFT_EVALUATION
from promo_roi.validation import InputError

log = logging.getLogger(__name__)

COLUMNS = ("product_id", "store_id", "week", "units", "on_display", "in_mailer")


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
    if not delta_io.table_exists(spark, ITEM_STORE_WEEK_FEATURES, config.warehouse):
        raise InputError(f"{ITEM_STORE_WEEK_FEATURES.full_name} does not exist: run jobs/build_item_store_week.py")
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
