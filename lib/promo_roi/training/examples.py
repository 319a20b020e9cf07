"""Training examples: household x campaign, features as of the campaign start.

A campaign is a training example only once it is fully observed: it ended
before the as-of date and its window is not censored. Its households' features
are the *same* point-in-time features that scoring reads from
``silver.user_features`` on the run date, here rebuilt as of the campaign's
start with the feature builders of :mod:`promo_roi.features`, so nothing a
household did after the start leaks into its features. Campaign facts
(calendar, coupons, targeted count, past redemption rate of its type) are
likewise taken as of the start.

The split is by time: campaigns ordered by start date, the last ones are test,
the ones before them validation, the rest train (:func:`assign_splits`).

The placebo set for refutation (:func:`placebo_calendar`) shifts every
campaign back by its own duration: its "campaign window" is then the real
pre-period, in which the campaign cannot have had any effect.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from promo_roi.config import AppConfig, FeatureConfig, SourceConfig, TrainingConfig
from promo_roi.bronze import Bronze
from promo_roi.features import (
    build_campaign_exposures,
    build_campaign_features_on,
    build_user_features_on,
    campaign_calendar,
)
from promo_roi.purchase_history import purchase_history_on
from promo_roi.tables import (
    CAMPAIGN_EXPOSURES,
    CATEGORICAL_COLUMNS,
    household_numeric_columns,
    training_examples_spec,
)
from promo_roi.validation import InputError, validate_presence_of_columns

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


class NotEnoughCampaignsError(InputError):
    """Too few fully observed campaigns before the as-of date for a time-based split."""


@dataclass(frozen=True)
class CampaignSplit:
    campaign_id: int
    start_date: dt.date
    split: str


def assign_splits(
    campaigns: Sequence[tuple[int, dt.date]],
    validation_campaigns: int,
    test_campaigns: int,
    min_train_campaigns: int,
) -> list[CampaignSplit]:
    """Orders campaigns by (start date, id); the last ones test, the ones before validation.

    Raises :class:`NotEnoughCampaignsError` when fewer than
    ``min_train_campaigns`` would remain to train on.
    """
    ordered = sorted(campaigns, key=lambda c: (c[1], c[0]))
    held_out = validation_campaigns + test_campaigns
    if len(ordered) - held_out < min_train_campaigns:
        raise NotEnoughCampaignsError(
            f"{len(ordered)} fully observed campaign(s) before the as-of date; a time-based split needs "
            f"{min_train_campaigns} to train + {validation_campaigns} validation + {test_campaigns} test. "
            "Use a later as-of date or fewer held-out campaigns (training.validation_campaigns/test_campaigns)."
        )
    n_train = len(ordered) - held_out
    labels = ["train"] * n_train + ["validation"] * validation_campaigns + ["test"] * test_campaigns
    return [CampaignSplit(cid, start, label) for (cid, start), label in zip(ordered, labels)]


def fully_observed(as_of: dt.date) -> "callable":
    """Exposures of campaigns that ended before ``as_of`` with an uncensored window."""

    def _t(exposures: DataFrame) -> DataFrame:
        validate_presence_of_columns(exposures, CAMPAIGN_EXPOSURES.columns, CAMPAIGN_EXPOSURES.full_name)
        return exposures.filter(
            (F.col("end_date") < F.lit(as_of)) & (F.col("observed_days") == F.col("duration_days"))
        )

    return _t


def campaign_text(prefix: str = "") -> Column:
    """What the transformer reads about a campaign: its type, length and coupon products."""
    c = lambda name: F.col(f"{prefix}{name}")  # noqa: E731
    return F.lower(F.concat_ws(
        " ",
        F.concat(c("campaign_type"), F.lit(" campaign,"), c("duration_days").cast("string"), F.lit(" days.")),
        F.concat(F.lit("coupon departments: "), F.coalesce(c("coupon_departments_text"), F.lit("none")), F.lit(".")),
        F.concat(F.lit("coupon categories: "), F.coalesce(c("coupon_categories_text"), F.lit("none")), F.lit(".")),
    ))


def placebo_calendar(desc: DataFrame) -> DataFrame:
    """Every campaign moved back by its own duration: the fake window is the real pre-period."""
    days = F.datediff(F.to_date("end_date"), F.to_date("start_date")) + 1
    shift = lambda col: (F.col(col) - F.make_interval(days=days)).alias(col)  # noqa: E731
    return desc.select("campaign_id", "campaign_type", shift("start_date"), shift("end_date"))


def household_state_at(bronze: Bronze, dates: Sequence[dt.date], features: FeatureConfig) -> DataFrame:
    """silver.user_features rows as they were on each of ``dates`` (column ``reference_date``)."""
    return build_user_features_on(
        bronze.transactions, bronze.products, bronze.campaigns, bronze.campaign_descriptions,
        bronze.coupon_redemptions, bronze.demographics, dates, features,
    ).withColumn("reference_date", F.col("as_of_date"))


def purchase_history_at(bronze: Bronze, dates: Sequence[dt.date], features: FeatureConfig) -> DataFrame:
    """Each household's purchase history as text (``history_text``) on each of ``dates`` (column
    ``reference_date``), over ``features.history_weeks`` and naming ``features.history_categories``."""
    return purchase_history_on(bronze.transactions, bronze.products, dates, features.history_weeks,
                               features.history_categories).select(
        "household_id", F.col("as_of_date").alias("reference_date"), "history_text")


def no_purchases_text(features: FeatureConfig) -> str:
    """The history text of a household that bought nothing in the window."""
    return f"no purchases in the last {features.history_weeks} weeks."


def campaign_state_at_start(bronze: Bronze, desc: DataFrame, starts: Sequence[dt.date], source: SourceConfig) -> DataFrame:
    """silver.campaign_features of each campaign as of its own start date."""
    return build_campaign_features_on(
        desc, bronze.campaigns, bronze.coupons, bronze.products, bronze.coupon_redemptions, starts, source,
    ).filter(F.col("start_date") == F.col("as_of_date"))


def concurrent_campaigns(windows: DataFrame, bronze: Bronze) -> DataFrame:
    """Per (household, campaign in ``windows``): other campaigns targeting it with overlapping windows.

    ``windows``: campaign_id, start_date, end_date of the campaigns to describe
    (real or placebo dates); the other campaigns keep their real calendar and
    target lists, which are known in advance. Counts all of them and those
    that share at least one coupon product with the campaign.
    """
    others = campaign_calendar(bronze.campaign_descriptions).select(
        F.col("campaign_id").alias("other_id"), F.col("start_date").alias("other_start"),
        F.col("end_date").alias("other_end"))
    targets = bronze.campaigns.select("household_id", F.col("campaign_id").alias("other_id")).distinct()
    products = bronze.coupons.select("campaign_id", "product_id").distinct()
    shared = (
        products.join(products.withColumnRenamed("campaign_id", "other_id"), "product_id")
        .filter(F.col("campaign_id") != F.col("other_id"))
        .select("campaign_id", "other_id").distinct().withColumn("shares_products", F.lit(1))
    )
    overlapping = (
        windows.select("campaign_id", "start_date", "end_date")
        .crossJoin(F.broadcast(others))
        .filter((F.col("campaign_id") != F.col("other_id"))
                & (F.col("other_start") <= F.col("end_date")) & (F.col("other_end") >= F.col("start_date")))
        .join(F.broadcast(shared), ["campaign_id", "other_id"], "left")
    )
    return (
        overlapping.join(targets, "other_id")
        .groupBy("household_id", "campaign_id")
        .agg(F.countDistinct("other_id").alias("concurrent_campaigns"),
             F.countDistinct(F.when(F.col("shares_products") == 1, F.col("other_id")))
             .alias("concurrent_shared_product_campaigns"))
    )


def examples_from_exposures(
    exposures: DataFrame,
    households: DataFrame,
    campaigns: DataFrame,
    concurrent: DataFrame,
    splits: Sequence[CampaignSplit],
    as_of: dt.date,
    features: FeatureConfig,
    history: DataFrame,
) -> DataFrame:
    """Joins exposures with household and campaign state at the start (``history``: :func:`purchase_history_at`
    on the start dates); adds the texts and the split."""
    numeric_household = household_numeric_columns(features)
    split_df = exposures.sparkSession.createDataFrame(
        [(s.campaign_id, s.split) for s in splits], "campaign_id long, split string"
    )
    house = households.select(
        "household_id", F.col("reference_date").alias("start_date"), *numeric_household,
        "has_demographics", *[c for c in CATEGORICAL_COLUMNS if c not in ("has_demographics", "campaign_type")],
    )
    camp = campaigns.select(
        "campaign_id", "coupons", "coupon_products", "type_past_redemption_rate",
        campaign_text().alias("campaign_text"),
    )
    joined = (
        exposures.join(F.broadcast(split_df), "campaign_id")
        .join(house, ["household_id", "start_date"], "left")
        .join(F.broadcast(camp), "campaign_id", "left")
        .join(concurrent, ["household_id", "campaign_id"], "left")
        .join(history.withColumnRenamed("reference_date", "start_date"), ["household_id", "start_date"], "left")
        .fillna(no_purchases_text(features), subset=["history_text"])
        .fillna(0, subset=["concurrent_campaigns", "concurrent_shared_product_campaigns"])
        .withColumn("pre_observed_share", F.col("pre_observed_days") / F.col("duration_days"))
        # A household with no purchase before the start has no state yet: zeros, not missing.
        .fillna(0, subset=[c for c in numeric_household if c not in ("days_since_last_purchase",
                                                                     "days_since_last_redemption")])
        .fillna(False, subset=["has_demographics"])
        .withColumn("has_demographics", F.col("has_demographics").cast("string"))
        .withColumn("as_of_date", F.lit(as_of))
    )
    for c in CATEGORICAL_COLUMNS:
        joined = joined.fillna("unknown", subset=[c])
    return joined.select(*training_examples_spec(features).columns)


def exposures_as_of(spark, config: AppConfig, as_of: dt.date) -> DataFrame:
    """silver.campaign_exposures' slice for ``as_of``; a clear error naming the job to run when it is missing."""
    from promo_roi import delta_io

    if not delta_io.table_exists(spark, CAMPAIGN_EXPOSURES, config.warehouse):
        raise InputError(f"{CAMPAIGN_EXPOSURES.full_name} does not exist: run jobs/build_features.py --as-of {as_of}")
    exposures = delta_io.read_table(spark, CAMPAIGN_EXPOSURES, config.warehouse).filter(
        F.col("as_of_date") == F.lit(as_of))
    if exposures.limit(1).count() == 0:
        raise InputError(f"{CAMPAIGN_EXPOSURES.full_name} has no slice for as_of_date {as_of}: "
                         f"run jobs/build_features.py --as-of {as_of}")
    return exposures


def build_training_examples(
    bronze: Bronze,
    exposures: DataFrame,
    as_of: dt.date,
    config: AppConfig,
    training: TrainingConfig,
) -> tuple[DataFrame, list[CampaignSplit]]:
    """Examples for every fully observed campaign in ``exposures`` (one as_of slice)."""
    eligible = exposures.transform(fully_observed(as_of))
    campaigns = [(int(r.campaign_id), r.start_date) for r in
                 eligible.select("campaign_id", "start_date").distinct().collect()]
    splits = assign_splits(campaigns, training.validation_campaigns, training.test_campaigns,
                           training.min_train_campaigns)
    starts = sorted({s.start_date for s in splits})
    log.info("training examples as of %s: %d campaigns (%s)", as_of, len(splits),
             ", ".join(f"{s.campaign_id}:{s.split}" for s in splits))
    households = household_state_at(bronze, starts, config.features)
    camp = campaign_state_at_start(bronze, bronze.campaign_descriptions, starts, config.source)
    concurrent = concurrent_campaigns(campaign_calendar(bronze.campaign_descriptions), bronze)
    history = purchase_history_at(bronze, starts, config.features)
    return examples_from_exposures(eligible, households, camp, concurrent, splits, as_of, config.features,
                                   history), splits


def build_placebo_examples(
    bronze: Bronze,
    splits: Sequence[CampaignSplit],
    as_of: dt.date,
    config: AppConfig,
    keep: Sequence[str] = ("test",),
) -> DataFrame:
    """The placebo twin of the ``keep`` splits: every campaign moved back by its duration.

    Outcomes are then spend in the real pre-period and features are as of the
    fake start. Campaigns whose fake window falls before the data are dropped
    (censored). Redemption outcomes are meaningless here and are not used.
    """
    chosen = [s for s in splits if s.split in keep]
    ids = [s.campaign_id for s in chosen]
    fake_desc = placebo_calendar(bronze.campaign_descriptions.filter(F.col("campaign_id").isin(ids)))
    fake_exposures = build_campaign_exposures(
        bronze.transactions, fake_desc, bronze.campaigns, bronze.coupons, bronze.coupon_redemptions,
        as_of, config.source,
    ).transform(fully_observed(as_of))
    fake_starts = sorted({r.start_date for r in fake_exposures.select("start_date").distinct().collect()})
    if not fake_starts:
        raise NotEnoughCampaignsError(
            f"no {'/'.join(keep)} campaign has a fully observed placebo window (its pre-period) in the data"
        )
    households = household_state_at(bronze, fake_starts, config.features)
    camp = campaign_state_at_start(bronze, fake_desc, fake_starts, config.source)
    concurrent = concurrent_campaigns(campaign_calendar(fake_desc), bronze)
    history = purchase_history_at(bronze, fake_starts, config.features)
    return examples_from_exposures(fake_exposures, households, camp, concurrent, chosen, as_of, config.features,
                                   history)
