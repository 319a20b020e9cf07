"""Point-in-time feature tables for one as-of date.

The as-of date D is the first day *not* observed: every feature uses only
rows dated before D (transactions, redemptions), promotion weeks that ended
before D, and campaigns that started before D. Static descriptions
(products, demographics, campaign calendars and target lists, coupon
product lists) are known in advance and used as they are.

Each builder is a pure function of DataFrames; :func:`build_features` reads
bronze, builds the four tables and replaces their ``as_of_date`` slice.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.bronze import read_bronze
from promo_roi.config import AppConfig, FeatureConfig, SourceConfig
from promo_roi.observability import stage
from promo_roi.quality import Transform, week_end_date
from promo_roi.tables import (
    CAMPAIGN_EXPOSURES,
    CAMPAIGN_FEATURES,
    DEMOGRAPHIC_COLUMNS,
    ITEM_FEATURES,
    column_slug,
    user_features_spec,
)
from promo_roi.validation import InputError, validate_presence_of_columns

log = logging.getLogger(__name__)

UNKNOWN = "unknown"


# --- point-in-time filters ---------------------------------------------------

def with_transaction_date(tx: DataFrame) -> DataFrame:
    return tx.withColumn("transaction_date", F.to_date("transaction_timestamp"))


def transactions_before(as_of: dt.date) -> Transform:
    def _t(tx: DataFrame) -> DataFrame:
        validate_presence_of_columns(tx, ["transaction_timestamp"], "transactions")
        return with_transaction_date(tx).filter(F.col("transaction_date") < F.lit(as_of))

    return _t


def redemptions_before(as_of: dt.date) -> Transform:
    def _t(red: DataFrame) -> DataFrame:
        return red.withColumn("redemption_day", F.to_date("redemption_date")).filter(
            F.col("redemption_day") < F.lit(as_of)
        )

    return _t


def completed_weeks_before(as_of: dt.date, source: SourceConfig) -> Transform:
    def _t(df: DataFrame) -> DataFrame:
        return df.filter(week_end_date(source) < F.lit(as_of))

    return _t


def campaign_calendar(desc: DataFrame) -> DataFrame:
    return desc.select(
        "campaign_id",
        "campaign_type",
        F.to_date("start_date").alias("start_date"),
        F.to_date("end_date").alias("end_date"),
    ).withColumn("duration_days", F.datediff("end_date", "start_date") + 1)


def _days_between(later: Column, earlier: Column) -> Column:
    return F.datediff(later, earlier).cast("int")


# --- silver.user_features ------------------------------------------------------

def reference_dates(spark: SparkSession, dates: Sequence[dt.date]) -> DataFrame:
    """One row per distinct date (column ``as_of_date``): the dates a point-in-time builder is evaluated on."""
    return spark.createDataFrame([(day,) for day in sorted(set(dates))], "as_of_date date")


def build_user_features(
    tx: DataFrame,
    products: DataFrame,
    campaigns: DataFrame,
    desc: DataFrame,
    redemptions: DataFrame,
    demographics: DataFrame,
    as_of: dt.date,
    features: FeatureConfig,
) -> DataFrame:
    """One row per household with a purchase before ``as_of``."""
    return build_user_features_on(tx, products, campaigns, desc, redemptions, demographics, [as_of], features)


def build_user_features_on(
    tx: DataFrame,
    products: DataFrame,
    campaigns: DataFrame,
    desc: DataFrame,
    redemptions: DataFrame,
    demographics: DataFrame,
    dates: Sequence[dt.date],
    features: FeatureConfig,
) -> DataFrame:
    """One row per (household, as-of date in ``dates``) with a purchase before that date.

    One plan for every date: each row joins the dates it precedes (a small
    broadcast), then one aggregation per (household, as_of_date). Training
    examples need the state of every household at every campaign start, and
    one plan per date made Spark's planning, not the data, the cost.
    """
    validate_presence_of_columns(tx, ["transaction_timestamp"], "transactions")
    on = F.broadcast(reference_dates(tx.sparkSession, dates))
    as_of_col = F.col("as_of_date")
    longest = max(features.rfm_windows_weeks)
    in_window = {w: F.col("transaction_date") >= F.date_sub(as_of_col, 7 * w) for w in features.rfm_windows_weeks}
    lines = (
        with_transaction_date(tx)
        .join(F.broadcast(products.select("product_id", "department")), "product_id", "left")
        .join(on, F.col("transaction_date") < as_of_col)
    )
    households = lines.groupBy("household_id", "as_of_date").agg(*_purchase_aggregates(features, in_window, longest))
    for w in features.rfm_windows_weeks:
        households = households.withColumn(
            f"avg_basket_spend_{w}w",
            F.when(F.col(f"baskets_{w}w") > 0, F.col(f"spend_{w}w") / F.col(f"baskets_{w}w")),
        )
    spend_long = F.col(f"spend_{longest}w")
    households = (
        households.withColumn(
            "retail_discount_spend_share", F.when(spend_long > 0, F.col("_retail_disc_spend") / spend_long)
        )
        .withColumn("coupon_discount_spend_share", F.when(spend_long > 0, F.col("_coupon_disc_spend") / spend_long))
        .drop("_retail_disc_spend", "_coupon_disc_spend")
    )

    demo = demographics.select("household_id", *DEMOGRAPHIC_COLUMNS).withColumn("has_demographics", F.lit(True))
    out = (
        households.join(_campaigns_targeted(campaigns, desc, on), ["household_id", "as_of_date"], "left")
        .join(_coupons_redeemed(redemptions, on), ["household_id", "as_of_date"], "left")
        .join(demo, "household_id", "left")
        .fillna(0, subset=["campaigns_targeted", "campaigns_redeemed", "coupons_redeemed"])
        .fillna(False, subset=["has_demographics"])
        # 1,668 of 2,469 households have no demographics: keep them, marked unknown.
        .fillna(UNKNOWN, subset=list(DEMOGRAPHIC_COLUMNS))
    )
    return out.select(*user_features_spec(features).columns)


def _campaigns_targeted(campaigns: DataFrame, desc: DataFrame, on: DataFrame) -> DataFrame:
    """Per (household, as_of_date): campaigns that targeted it and started before the date."""
    started = campaign_calendar(desc).join(on, F.col("start_date") < F.col("as_of_date"))
    return (
        campaigns.join(F.broadcast(started.select("campaign_id", "as_of_date")), "campaign_id")
        .groupBy("household_id", "as_of_date")
        .agg(F.countDistinct("campaign_id").alias("campaigns_targeted"))
    )


def _coupons_redeemed(redemptions: DataFrame, on: DataFrame) -> DataFrame:
    """Per (household, as_of_date): campaigns and coupons redeemed before the date, days since the last."""
    return (
        redemptions.withColumn("redemption_day", F.to_date("redemption_date"))
        .join(on, F.col("redemption_day") < F.col("as_of_date"))
        .groupBy("household_id", "as_of_date")
        .agg(
            F.countDistinct("campaign_id").alias("campaigns_redeemed"),
            F.count(F.lit(1)).alias("coupons_redeemed"),
            _days_between(F.col("as_of_date"), F.max("redemption_day")).alias("days_since_last_redemption"),
        )
    )


def _purchase_aggregates(features: FeatureConfig, in_window: dict[int, Column], longest: int) -> list[Column]:
    """Recency, frequency and spend per window, department spend and discount spend over the longest window."""
    aggs: list[Column] = [
        F.min("transaction_date").alias("first_purchase_date"),
        _days_between(F.col("as_of_date"), F.max("transaction_date")).alias("days_since_last_purchase"),
    ]
    for w in features.rfm_windows_weeks:
        aggs += [
            F.countDistinct(F.when(in_window[w], F.col("basket_id"))).alias(f"baskets_{w}w"),
            F.sum(F.when(in_window[w], F.col("sales_value")).otherwise(0.0)).alias(f"spend_{w}w"),
        ]
    long_window = in_window[longest]
    for dept in features.spend_departments:
        aggs.append(
            F.sum(F.when(long_window & (F.col("department") == dept), F.col("sales_value")).otherwise(0.0))
            .alias(f"dept_spend_{column_slug(dept)}")
        )
    listed = F.col("department").isin(list(features.spend_departments))
    return aggs + [
        F.sum(F.when(long_window & (~listed | F.col("department").isNull()), F.col("sales_value")).otherwise(0.0))
        .alias("dept_spend_other"),
        F.sum(F.when(long_window & (F.col("retail_disc") > 0), F.col("sales_value")).otherwise(0.0))
        .alias("_retail_disc_spend"),
        F.sum(
            F.when(long_window & ((F.col("coupon_disc") > 0) | (F.col("coupon_match_disc") > 0)), F.col("sales_value"))
            .otherwise(0.0)
        ).alias("_coupon_disc_spend"),
    ]


# --- silver.item_features ------------------------------------------------------

def item_text(products: DataFrame) -> Column:
    """What the transformer reads about a product: department / category / type / brand / size."""
    def part(col: str, label: str = "") -> Column:
        value = F.trim(F.col(col))
        return F.when(value.isNotNull() & (value != ""), F.concat(value, F.lit(label)) if label else value)

    return F.lower(
        F.concat_ws(
            " / ",
            part("department"),
            part("product_category"),
            part("product_type"),
            part("brand", " brand"),
            part("package_size"),
        )
    )


def build_item_features(
    tx: DataFrame,
    products: DataFrame,
    promotions: DataFrame,
    as_of: dt.date,
    source: SourceConfig,
) -> DataFrame:
    """One row per product: sales and promotion history before ``as_of``."""
    tx = tx.transform(transactions_before(as_of))
    sales = tx.groupBy("product_id").agg(
        F.sum("quantity").alias("units_sold"),
        F.sum("sales_value").alias("sales_value"),
        F.countDistinct("household_id").alias("households"),
        (
            F.sum(F.when(F.col("quantity") > 0, F.col("sales_value")))
            / F.sum(F.when(F.col("quantity") > 0, F.col("quantity")))
        ).alias("avg_unit_price"),
        F.countDistinct("week").alias("weeks_sold"),
    )
    # '0' means no display / no mailer placement in that store and week. One row per product, store and week:
    # the data hold two placement rows for some (12,785 of 20.9M), and a sale must be counted once.
    promo = (
        promotions.transform(completed_weeks_before(as_of, source))
        .groupBy("product_id", "store_id", "week")
        .agg(
            F.max(F.col("display_location") != "0").alias("on_display"),
            F.max(F.col("mailer_location") != "0").alias("in_mailer"),
        )
        .filter(F.col("on_display") | F.col("in_mailer"))
    )
    promo_weeks = promo.groupBy("product_id").agg(
        F.countDistinct(F.when(F.col("on_display"), F.col("week"))).alias("display_weeks"),
        F.countDistinct(F.when(F.col("in_mailer"), F.col("week"))).alias("mailer_weeks"),
    )
    # Sales split by the placement in the same store and week, over completed weeks only,
    # so both sides of the split see the same calendar.
    placed = (
        tx.transform(completed_weeks_before(as_of, source))
        .select("product_id", "store_id", "week", "sales_value")
        .join(promo, ["product_id", "store_id", "week"], "left")
        .groupBy("product_id")
        .agg(
            F.sum(F.when(F.col("on_display"), F.col("sales_value")).otherwise(0.0)).alias("sales_on_display"),
            F.sum(F.when(F.col("in_mailer"), F.col("sales_value")).otherwise(0.0)).alias("sales_in_mailer"),
            F.sum(
                F.when(F.coalesce(F.col("on_display"), F.lit(False)) | F.coalesce(F.col("in_mailer"), F.lit(False)), 0.0)
                .otherwise(F.col("sales_value"))
            ).alias("sales_unpromoted"),
        )
    )
    out = (
        products.withColumn("item_text", item_text(products))
        .join(sales, "product_id", "left")
        .join(promo_weeks, "product_id", "left")
        .join(placed, "product_id", "left")
        .fillna(0, subset=["units_sold", "households", "weeks_sold", "display_weeks", "mailer_weeks"])
        .fillna(0.0, subset=["sales_value", "sales_on_display", "sales_in_mailer", "sales_unpromoted"])
        .withColumn("as_of_date", F.lit(as_of))
    )
    return out.select(*ITEM_FEATURES.columns)


# --- silver.campaign_features --------------------------------------------------

TOP_COUPON_CATEGORIES = 15


def _ranked_text(coupon_products: DataFrame, column: str, limit: int) -> DataFrame:
    """The campaign's coupon-product departments/categories, most products first."""
    counted = coupon_products.filter(F.col(column).isNotNull()).groupBy("campaign_id", column).agg(
        F.countDistinct("product_id").alias("n")
    )
    ranked = counted.groupBy("campaign_id").agg(
        F.sort_array(F.collect_list(F.struct((-F.col("n")).alias("neg_n"), F.lower(F.col(column)).alias("v"))))
        .alias("items")
    )
    return ranked.select(
        "campaign_id",
        F.array_join(F.slice(F.col("items.v"), 1, limit), ", ").alias(f"coupon_{column}_text"),
    )


def build_campaign_features(
    desc: DataFrame,
    campaigns: DataFrame,
    coupons: DataFrame,
    products: DataFrame,
    redemptions: DataFrame,
    as_of: dt.date,
    source: SourceConfig,
) -> DataFrame:
    """One row per campaign, with what was knowable about its type before ``as_of``."""
    return build_campaign_features_on(desc, campaigns, coupons, products, redemptions, [as_of], source)


def build_campaign_features_on(
    desc: DataFrame,
    campaigns: DataFrame,
    coupons: DataFrame,
    products: DataFrame,
    redemptions: DataFrame,
    dates: Sequence[dt.date],
    source: SourceConfig,
) -> DataFrame:
    """One row per (campaign, as-of date in ``dates``), in one plan (see :func:`build_user_features_on`)."""
    on = F.broadcast(reference_dates(desc.sparkSession, dates))
    as_of_col = F.col("as_of_date")
    cal = campaign_calendar(desc)
    status = (
        F.when(F.col("start_date") >= as_of_col, "planned")
        .when(F.col("end_date") < as_of_col, "ended")
        .otherwise("running")
    )
    targeted = campaigns.groupBy("campaign_id").agg(F.countDistinct("household_id").alias("targeted_households"))
    coupon_counts = coupons.groupBy("campaign_id").agg(
        F.countDistinct("coupon_upc").alias("coupons"),
        F.countDistinct("product_id").alias("coupon_products"),
    )
    coupon_products = coupons.select("campaign_id", "product_id").distinct().join(
        products.select("product_id", "department", "product_category"), "product_id"
    )
    departments = _ranked_text(coupon_products, "department", TOP_COUPON_CATEGORIES).withColumnRenamed(
        "coupon_department_text", "coupon_departments_text"
    )
    categories = _ranked_text(coupon_products, "product_category", TOP_COUPON_CATEGORIES).withColumnRenamed(
        "coupon_product_category_text", "coupon_categories_text"
    )

    # Past redemption rate of each type: redeeming targeted households / targeted
    # households, over campaigns of that type that ended before the as-of date.
    ended = cal.join(on, F.col("end_date") < as_of_col).select("campaign_id", "campaign_type", "as_of_date")
    redeemers = (
        redemptions.withColumn("redemption_day", F.to_date("redemption_date"))
        .join(on, F.col("redemption_day") < as_of_col)
        .select("campaign_id", "household_id", "as_of_date").distinct()
        .withColumn("redeemed", F.lit(1))
    )
    type_history = (
        campaigns.join(F.broadcast(ended), "campaign_id")
        .join(redeemers, ["campaign_id", "household_id", "as_of_date"], "left")
        .groupBy("campaign_type", "as_of_date")
        .agg(
            F.countDistinct("campaign_id").alias("type_past_campaigns"),
            (F.sum(F.coalesce("redeemed", F.lit(0))) / F.count(F.lit(1))).alias("type_past_redemption_rate"),
        )
    )
    out = (
        cal.crossJoin(on).withColumn("status", status)
        .join(targeted, "campaign_id", "left")
        .join(coupon_counts, "campaign_id", "left")
        .join(departments, "campaign_id", "left")
        .join(categories, "campaign_id", "left")
        .join(type_history, ["campaign_type", "as_of_date"], "left")
        .fillna(0, subset=["targeted_households", "coupons", "coupon_products", "type_past_campaigns"])
        .fillna("", subset=["coupon_departments_text", "coupon_categories_text"])
        .withColumn("starts_before_data", F.col("start_date") < F.lit(source.data_start))
        .withColumn("ends_after_data", F.col("end_date") > F.lit(source.data_end))
    )
    return out.select(*CAMPAIGN_FEATURES.columns)


# --- silver.campaign_exposures -------------------------------------------------

def exposure_windows(desc: DataFrame, as_of: dt.date, source: SourceConfig) -> DataFrame:
    """Campaign and pre-campaign windows, clipped to the data and to ``as_of``.

    The pre-period is the ``duration_days`` before the start. A window cut by
    the edge of the data or by ``as_of`` is kept with its observed days and
    flagged censored, never silently shortened.
    """
    as_of_col = F.lit(as_of)
    last_seen = F.least(F.lit(source.data_end), F.date_sub(as_of_col, 1))
    first_seen = F.lit(source.data_start)
    cal = campaign_calendar(desc).filter(F.col("start_date") < as_of_col)
    w = (
        cal.withColumn("obs_start", F.greatest(F.col("start_date"), first_seen))
        .withColumn("obs_end", F.least(F.col("end_date"), last_seen))
        .withColumn("pre_start", F.date_sub(F.col("start_date"), F.col("duration_days")))
        .withColumn("pre_end", F.date_sub(F.col("start_date"), 1))
        .withColumn("pre_obs_start", F.greatest(F.col("pre_start"), first_seen))
        .withColumn("pre_obs_end", F.least(F.col("pre_end"), last_seen))
    )
    span = lambda end, start: F.greatest(F.datediff(F.col(end), F.col(start)) + 1, F.lit(0)).cast("int")  # noqa: E731
    reasons = F.concat_ws(
        ",",
        F.when(F.col("start_date") < first_seen, F.lit("starts_before_data")),
        F.when(F.col("end_date") > F.lit(source.data_end), F.lit("ends_after_data")),
        F.when(F.col("end_date") >= as_of_col, F.lit("ends_after_as_of")),
    )
    return (
        w.withColumn("observed_days", span("obs_end", "obs_start"))
        .withColumn("pre_observed_days", span("pre_obs_end", "pre_obs_start"))
        .withColumn("censored", F.col("observed_days") < F.col("duration_days"))
        .withColumn("censor_reason", F.when(reasons != "", reasons))
    )


def _window_sums(lines: DataFrame, windows: DataFrame, value: str, prefix: str) -> DataFrame:
    """Per (household, campaign): ``value`` summed over the campaign and pre windows."""
    day = F.col("day")
    joined = lines.join(
        F.broadcast(windows.select("campaign_id", "obs_start", "obs_end", "pre_obs_start", "pre_obs_end")),
        (day >= F.col("pre_obs_start")) & (day <= F.col("obs_end")),
    )
    return joined.groupBy("household_id", "campaign_id").agg(
        F.sum(F.when(day.between(F.col("obs_start"), F.col("obs_end")), F.col(value)).otherwise(0.0))
        .alias(f"{prefix}spend"),
        F.sum(F.when(day.between(F.col("pre_obs_start"), F.col("pre_obs_end")), F.col(value)).otherwise(0.0))
        .alias(f"pre_{prefix}spend"),
    )


def build_campaign_exposures(
    tx: DataFrame,
    desc: DataFrame,
    campaigns: DataFrame,
    coupons: DataFrame,
    redemptions: DataFrame,
    as_of: dt.date,
    source: SourceConfig,
) -> DataFrame:
    """Every known household x every campaign started before ``as_of``.

    A household is known when it bought something before ``as_of`` or is on
    the target list of a campaign started before it: a targeted household
    that did not shop is an observation (spend 0), not noise.
    """
    tx = tx.transform(transactions_before(as_of))
    windows = exposure_windows(desc, as_of, source)
    listed = campaigns.join(F.broadcast(windows.select("campaign_id")), "campaign_id").select("household_id")
    households = tx.select("household_id").unionByName(listed).distinct()
    pairs = households.crossJoin(
        F.broadcast(windows.select(
            "campaign_id", "campaign_type", "start_date", "end_date", "duration_days",
            "observed_days", "pre_observed_days", "censored", "censor_reason",
        ))
    )
    daily = tx.groupBy("household_id", F.col("transaction_date").alias("day")).agg(
        F.sum("sales_value").alias("sales_value")
    )
    total = _window_sums(daily, windows, "sales_value", "")

    coupon_products = coupons.select("campaign_id", "product_id").distinct()
    product_lines = tx.select(
        "household_id", "product_id", F.col("transaction_date").alias("day"), "sales_value",
        (F.col("coupon_disc") + F.col("coupon_match_disc")).alias("coupon_discount"),
    ).join(coupon_products, "product_id")
    per_campaign_lines = product_lines.join(
        F.broadcast(windows.select("campaign_id", "pre_obs_start", "obs_start", "obs_end")), "campaign_id"
    )
    day = F.col("day")
    in_campaign = day.between(F.col("obs_start"), F.col("obs_end"))
    coupon_spend = (
        per_campaign_lines.filter(day.between(F.col("pre_obs_start"), F.col("obs_end")))
        .groupBy("household_id", "campaign_id")
        .agg(
            F.sum(F.when(in_campaign, F.col("sales_value")).otherwise(0.0)).alias("coupon_product_spend"),
            F.sum(F.when(~in_campaign, F.col("sales_value")).otherwise(0.0)).alias("pre_coupon_product_spend"),
            # Coupon cost: coupon discounts on the campaign's coupon products in its window.
            F.sum(F.when(in_campaign, F.col("coupon_discount")).otherwise(0.0)).alias("coupon_cost"),
        )
    )
    redeemed = (
        redemptions.transform(redemptions_before(as_of))
        .groupBy("household_id", "campaign_id")
        .agg(F.count(F.lit(1)).alias("redemptions"))
    )
    targeting = campaigns.select("household_id", "campaign_id").distinct().withColumn("targeted", F.lit(True))
    keys = ["household_id", "campaign_id"]
    out = (
        pairs.join(targeting, keys, "left")
        .join(total, keys, "left")
        .join(coupon_spend, keys, "left")
        .join(redeemed, keys, "left")
        .fillna(False, subset=["targeted"])
        .fillna(0.0, subset=["spend", "pre_spend", "coupon_product_spend", "pre_coupon_product_spend", "coupon_cost"])
        .fillna(0, subset=["redemptions"])
        .withColumn("redeemed", F.col("redemptions") > 0)
        .withColumn("as_of_date", F.lit(as_of))
    )
    return out.select(*CAMPAIGN_EXPOSURES.columns)


# --- the job -------------------------------------------------------------------

def build_features(spark: SparkSession, config: AppConfig, as_of: dt.date) -> dict[str, int]:
    """Builds the four silver tables for ``as_of`` and replaces their slice; returns row counts.

    Refuses an as-of date on or before the source's first day: nothing is observed before it, and empty
    slices would read as "no household has any history" downstream."""
    if as_of <= config.source.data_start:
        raise InputError(f"as-of date {as_of} is not after the source's first day {config.source.data_start} "
                         "(source.data_start): nothing is observed before it")
    bronze = read_bronze(spark, config)
    tx = bronze.transactions
    user_spec = user_features_spec(config.features)
    plans = [
        (user_spec, lambda: build_user_features(
            tx, bronze.products, bronze.campaigns, bronze.campaign_descriptions,
            bronze.coupon_redemptions, bronze.demographics, as_of, config.features)),
        (ITEM_FEATURES, lambda: build_item_features(tx, bronze.products, bronze.promotions, as_of, config.source)),
        (CAMPAIGN_FEATURES, lambda: build_campaign_features(
            bronze.campaign_descriptions, bronze.campaigns, bronze.coupons, bronze.products,
            bronze.coupon_redemptions, as_of, config.source)),
        (CAMPAIGN_EXPOSURES, lambda: build_campaign_exposures(
            tx, bronze.campaign_descriptions, bronze.campaigns, bronze.coupons,
            bronze.coupon_redemptions, as_of, config.source)),
    ]
    counts: dict[str, int] = {}
    for spec, build in plans:
        with stage(log, f"features.{spec.name}[{as_of}]") as st:
            version = delta_io.replace_date_slice(spark, build(), spec, config.warehouse, "as_of_date", as_of)
            rows = delta_io.slice_rows(spark, spec, config.warehouse, version, delta_io.date_slice("as_of_date", as_of))
            counts[spec.full_name] = rows
            st.rows = rows
            st.detail = f"{spec.full_name} version {version}"
    return counts
