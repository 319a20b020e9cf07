"""What scoring reads: campaign plans and the model's inputs on the run date.

The model was trained on features *as of each campaign's start*; at scoring
time the latest state is the run date, so every (household, planned
campaign) pair gets:

- the household's row of ``silver.user_features`` for the run date (the same
  builder the training examples used);
- spend in the plan's duration before the run date, total and on the plan's
  coupon products (the training pre-period was the duration before the start);
- campaigns that target the household during the plan's window (known target
  lists; other *planned* campaigns' audiences are not decided yet and are not
  counted);
- the plan's facts and text (coupon departments and categories), as the
  campaign feature builder makes them on the run date.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.config import AppConfig, ScoringConfig
from promo_roi.bronze import Bronze
from promo_roi.features import (
    build_campaign_exposures,
    build_campaign_features,
    campaign_calendar,
    transactions_before,
)
from promo_roi.tables import CAMPAIGN_PLANS, CATEGORICAL_COLUMNS, model_numeric_columns, user_features_spec
from promo_roi.training.examples import (
    CampaignSplit,
    concurrent_campaigns,
    examples_from_exposures,
    purchase_history_at,
)
from promo_roi.validation import InputError

log = logging.getLogger(__name__)


class ScoringInputError(InputError):
    """An input of the scoring job fails a quality gate; nothing is published."""


def redemption_cost_estimate(bronze: Bronze, run_date: dt.date) -> float:
    """Mean coupon discount (manufacturer + retailer match) per coupon-discounted line before the run date.

    Complete Journey has no coupon face values; what a redeemed coupon cost is
    visible only as the discount on the basket line.
    """
    row = (
        bronze.transactions.transform(transactions_before(run_date))
        .select((F.col("coupon_disc") + F.col("coupon_match_disc")).alias("d"))
        .filter(F.col("d") > 0)
        .agg(F.avg("d").alias("mean"))
        .first()
    )
    if row is None or row["mean"] is None:
        raise ScoringInputError(f"no coupon-discounted transaction before {run_date}: set scoring.redemption_cost")
    return float(row["mean"])


SEEDED_SOURCE = "completejourney"
# What the night sets on the rows it seeded: the costs follow the configuration (scoring.contact_cost,
# scoring.redemption_cost or its estimate before the run date) instead of keeping the values of the
# night that first seeded them. A planner's row (any other source) is never changed.
SEEDED_COST_COLUMNS = ("contact_cost", "redemption_cost")


def seed_plans_from_calendar(bronze: Bronze, run_date: dt.date, scoring: ScoringConfig,
                             redemption_cost: float) -> DataFrame:
    """The demo's plans: Complete Journey campaigns starting on or after the run date, with their coupons."""
    cal = campaign_calendar(bronze.campaign_descriptions).filter(F.col("start_date") >= F.lit(run_date))
    products = bronze.coupons.groupBy("campaign_id").agg(
        F.sort_array(F.collect_set("product_id")).alias("coupon_product_ids"))
    return (
        cal.join(products, "campaign_id", "left")
        .select(
            "campaign_id", "campaign_type", "start_date", "end_date",
            F.coalesce("coupon_product_ids", F.array().cast("array<bigint>")).alias("coupon_product_ids"),
            F.lit(scoring.contact_cost).alias("contact_cost"), F.lit(redemption_cost).alias("redemption_cost"),
            F.lit(None).cast("double").alias("min_budget"), F.lit(None).cast("double").alias("max_budget"),
            F.lit(None).cast("double").alias("coupon_inventory"), F.lit(SEEDED_SOURCE).alias("source"),
            F.current_timestamp().alias("added_at"),
        )
    )


def seed_plans(spark: SparkSession, plans: DataFrame, config: AppConfig) -> int:
    """Inserts calendar plans whose campaign_id is new and refreshes the costs of rows the night seeded,
    in one commit; returns the table version."""
    changed = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in SEEDED_COST_COLUMNS)
    return delta_io.insert_or_refresh(spark, plans, CAMPAIGN_PLANS, config.warehouse, SEEDED_COST_COLUMNS,
                                      f"t.source = '{SEEDED_SOURCE}' AND ({changed})")


def planned_campaigns(spark: SparkSession, config: AppConfig, run_date: dt.date) -> DataFrame:
    """Plans that have not started by the run date, and those without a start date (refused by the gate)."""
    plans = delta_io.read_table(spark, CAMPAIGN_PLANS, config.warehouse)
    return plans.filter(F.col("start_date").isNull() | (F.col("start_date") >= F.lit(run_date)))


def _as_calendar(plans: DataFrame, start: str, end: str) -> DataFrame:
    """A campaign_descriptions-shaped frame (timestamps) for the feature builders."""
    return plans.select("campaign_id", "campaign_type", F.col(start).cast("timestamp").alias("start_date"),
                        F.col(end).cast("timestamp").alias("end_date"))


def scoring_examples(
    bronze: Bronze,
    user_features: DataFrame,
    plans: DataFrame,
    run_date: dt.date,
    config: AppConfig,
) -> DataFrame:
    """(household, plan) rows with the model's feature columns, on the run date."""
    # A plan's coupons: the real coupon rows where the campaign is in the data,
    # else one coupon per product (what a planner typing product ids means).
    coupons = (
        plans.select("campaign_id", F.explode("coupon_product_ids").alias("product_id"))
        .join(bronze.coupons.select("campaign_id", "product_id", "coupon_upc"), ["campaign_id", "product_id"], "left")
        .withColumn("coupon_upc", F.coalesce("coupon_upc", "product_id"))
    )
    real = _as_calendar(plans, "start_date", "end_date")
    # The pre-period is the plan's duration before the run date: a calendar that
    # starts on the run date, over transactions before it (as_of = the day after,
    # so that the window counts as started; no transaction of the run date exists
    # in the filtered input).
    days = F.datediff("end_date", "start_date")
    shifted = plans.select(
        "campaign_id", "campaign_type", F.lit(run_date).alias("s"),
        F.date_add(F.lit(run_date), days.cast("int")).alias("e"),
    )
    tx = bronze.transactions.transform(transactions_before(run_date))
    exposures = build_campaign_exposures(
        tx, _as_calendar(shifted, "s", "e"), bronze.campaigns, coupons, bronze.coupon_redemptions,
        run_date + dt.timedelta(days=1), config.source,
    )
    households = user_features.filter(F.col("as_of_date") == F.lit(run_date)).withColumn(
        "reference_date", F.lit(run_date))
    campaign_facts = build_campaign_features(real, bronze.campaigns, coupons, bronze.products,
                                             bronze.coupon_redemptions, run_date, config.source)
    concurrent = concurrent_campaigns(campaign_calendar(real), bronze)
    splits = [CampaignSplit(int(r.campaign_id), run_date, "score") for r in plans.select("campaign_id").collect()]
    # As of the run date, as the households' features are (the lines before it).
    history = purchase_history_at(bronze, [run_date], config.features)
    examples = examples_from_exposures(exposures, households, campaign_facts, concurrent, splits, run_date,
                                       config.features, history)
    return (
        examples.drop("start_date", "end_date")
        .join(plans.select("campaign_id", "start_date", "end_date"), "campaign_id")
        .select("household_id", "campaign_id", "start_date", "end_date", "campaign_text", "history_text",
                *model_numeric_columns(config.features), *CATEGORICAL_COLUMNS)
    )


def _null_by_meaning(column: str) -> bool:
    """Null means "none yet": no purchase or redemption, no basket in the window, no spend to share."""
    return (column.startswith(("days_since_", "avg_basket_spend_")) or column.endswith("_spend_share")
            or column == "type_past_redemption_rate")


def check_inputs(user_features: DataFrame, plans: DataFrame, run_date: dt.date, config: AppConfig,
                 scoring: ScoringConfig) -> dict[str, int]:
    """Quality gates before anything is published: freshness, row counts, null shares."""
    spec = user_features_spec(config.features)
    today = user_features.filter(F.col("as_of_date") == F.lit(run_date))
    households = today.count()
    if households == 0:
        latest = user_features.agg(F.max("as_of_date")).first()[0]
        raise ScoringInputError(
            f"{spec.full_name} has no slice for {run_date} (latest: {latest}): features are stale; "
            f"run jobs/build_features.py --as-of {run_date} first")
    if households < scoring.min_households:
        raise ScoringInputError(
            f"{spec.full_name} for {run_date} has {households} households, fewer than scoring.min_households "
            f"= {scoring.min_households}")
    checked = [c for c in spec.columns if not _null_by_meaning(c) and c != "as_of_date"]
    nulls = today.agg(*[F.sum(F.col(c).isNull().cast("long")).alias(c) for c in checked]).first().asDict()
    bad = {c: n / households for c, n in nulls.items() if n / households > scoring.max_null_share}
    if bad:
        raise ScoringInputError(
            f"{spec.full_name} for {run_date}: null share above scoring.max_null_share = "
            f"{scoring.max_null_share}: " + ", ".join(f"{c} {s:.1%}" for c, s in sorted(bad.items())))
    n_plans = plans.count()
    if n_plans == 0:
        raise ScoringInputError(f"{CAMPAIGN_PLANS.full_name} holds no campaign starting on or after {run_date}")
    problems = plans.transform(plan_problems).orderBy("campaign_id", "problem").collect()
    if problems:
        raise ScoringInputError(
            f"{CAMPAIGN_PLANS.full_name}: {len(problems)} problem(s), nothing scored: "
            + "; ".join(f"plan {r.campaign_id}: {r.problem}" for r in problems))
    return {"households": households, "plans": n_plans}


def _bad_amount(column: str, *, positive: bool = False) -> Column:
    """Missing, NaN, infinite or negative (or, with ``positive``, not above 0)."""
    value = F.col(column)
    too_small = value <= 0 if positive else value < 0
    return value.isNull() | F.isnan(value) | (F.abs(value) == float("inf")) | too_small


def _bad_optional_amount(column: str) -> Column:
    """Set, and NaN, infinite or negative (unset means "no bound")."""
    value = F.col(column)
    return value.isNotNull() & (F.isnan(value) | (F.abs(value) == float("inf")) | (value < 0))


def plan_problems(plans: DataFrame) -> DataFrame:
    """(campaign_id, problem) for every plan row the planner cannot use, one row per problem.

    Each is found here, before any household is scored: a NaN cost would turn
    every comparison off, a zero-cost plan has an infinite ROI, a duplicate
    campaign id would be planned twice.
    """
    cost = F.col("contact_cost") + F.col("redemption_cost")
    rules: list[tuple[str, Column]] = [
        ("start_date or end_date missing", F.col("start_date").isNull() | F.col("end_date").isNull()),
        ("end_date before start_date", F.col("end_date") < F.col("start_date")),
        ("contact_cost missing, NaN, infinite or negative", _bad_amount("contact_cost")),
        ("redemption_cost missing, NaN, infinite or negative", _bad_amount("redemption_cost")),
        ("contact_cost and redemption_cost both 0 (a free campaign has no ROI)", cost == 0),
        ("coupon_product_ids missing or empty",
         F.col("coupon_product_ids").isNull() | (F.size("coupon_product_ids") <= 0)),
        ("min_budget NaN, infinite or negative", _bad_optional_amount("min_budget")),
        ("max_budget NaN, infinite or negative", _bad_optional_amount("max_budget")),
        ("min_budget above max_budget", F.col("min_budget") > F.col("max_budget")),
        ("coupon_inventory NaN, infinite or negative", _bad_optional_amount("coupon_inventory")),
    ]
    flagged = plans.select("campaign_id", F.array(*[
        F.when(F.coalesce(rule, F.lit(False)), F.lit(text)) for text, rule in rules]).alias("problems"))
    per_row = flagged.select("campaign_id", F.explode("problems").alias("problem")).filter(F.col("problem").isNotNull())
    duplicates = (
        plans.groupBy("campaign_id").count().filter(F.col("count") > 1)
        .select("campaign_id", F.concat(F.lit("campaign_id appears "), F.col("count").cast("string"),
                                        F.lit(" times")).alias("problem")))
    missing_id = plans.filter(F.col("campaign_id").isNull()).select(
        "campaign_id", F.lit("campaign_id missing").alias("problem")).limit(1)
    return per_row.filter(F.col("campaign_id").isNotNull()).unionByName(duplicates.filter(
        F.col("campaign_id").isNotNull())).unionByName(missing_id)


def plan_ids(plans: DataFrame) -> Sequence[int]:
    return [int(r[0]) for r in plans.select("campaign_id").orderBy("campaign_id").collect()]
