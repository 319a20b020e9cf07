"""Silver: the point-in-time feature tables, keyed by as_of_date (or by completed week), and the
training examples the model reads."""

from __future__ import annotations

import re

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
)

from promo_roi.config_sections import FeatureConfig
from promo_roi.tables.spec import TableSpec, table_struct


def column_slug(value: str) -> str:
    """'MEAT-PCKGD' -> 'meat_pckgd': a department name as a column suffix."""
    return re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")


DEMOGRAPHIC_COLUMNS: tuple[str, ...] = (
    "age", "income", "home_ownership", "marital_status", "household_size", "household_comp", "kids_count",
)


def user_features_spec(features: FeatureConfig) -> TableSpec:
    cols: list[tuple[str, DataType]] = [
        ("as_of_date", DateType()), ("household_id", LongType()),
        ("first_purchase_date", DateType()), ("days_since_last_purchase", IntegerType()),
    ]
    for w in features.rfm_windows_weeks:
        cols += [(f"baskets_{w}w", LongType()), (f"spend_{w}w", DoubleType()),
                 (f"avg_basket_spend_{w}w", DoubleType())]
    cols += [(f"dept_spend_{column_slug(d)}", DoubleType()) for d in features.spend_departments]
    cols += [
        ("dept_spend_other", DoubleType()),
        ("retail_discount_spend_share", DoubleType()),
        ("coupon_discount_spend_share", DoubleType()),
        ("campaigns_targeted", LongType()),
        ("campaigns_redeemed", LongType()),
        ("coupons_redeemed", LongType()),
        ("days_since_last_redemption", IntegerType()),
        ("has_demographics", BooleanType()),
    ]
    cols += [(c, StringType()) for c in DEMOGRAPHIC_COLUMNS]
    return TableSpec(
        "silver", "user_features", table_struct(*cols), partition_by=("as_of_date",),
        keys=("as_of_date", "household_id"),
        description=(
            "One row per household seen before as_of_date. Windows end the day before as_of_date; "
            f"department spend covers the last {max(features.rfm_windows_weeks)} weeks."
        ),
    )


ITEM_FEATURES = TableSpec(
    "silver", "item_features", table_struct(
        ("as_of_date", DateType()), ("product_id", LongType()), ("manufacturer_id", LongType()),
        ("department", StringType()), ("brand", StringType()), ("product_category", StringType()),
        ("product_type", StringType()), ("package_size", StringType()), ("item_text", StringType()),
        ("units_sold", LongType()), ("sales_value", DoubleType()), ("households", LongType()),
        ("avg_unit_price", DoubleType()), ("weeks_sold", LongType()),
        ("display_weeks", LongType()), ("mailer_weeks", LongType()),
        ("sales_on_display", DoubleType()), ("sales_in_mailer", DoubleType()),
        ("sales_unpromoted", DoubleType()),
    ), partition_by=("as_of_date",), keys=("as_of_date", "product_id"),
    description="One row per product; sales and promotion history before as_of_date.",
)

ITEM_STORE_WEEK = TableSpec(
    "silver", "item_store_week", table_struct(
        ("product_id", LongType()), ("store_id", LongType()), ("week", LongType()), ("week_end_date", DateType()),
        ("units", LongType()), ("sales_value", DoubleType()), ("discount_value", DoubleType()),
        ("shelf_value", DoubleType()), ("discount_depth", DoubleType()), ("lines", LongType()),
        ("on_display", BooleanType()), ("in_mailer", BooleanType()),
        ("display_locations", ArrayType(StringType())), ("mailer_locations", ArrayType(StringType())),
        ("first_sale_week", LongType()),
    ), keys=("product_id", "store_id", "week"),
    description="One row per product, store and completed week with a sale, or a placement after the "
                "product's first sale there: units, sales, shelf discount, display and mailer codes.",
)

ITEM_STORE_WEEK_FEATURES = TableSpec(
    "silver", "item_store_week_features", table_struct(
        ("product_id", LongType()), ("store_id", LongType()), ("week", LongType()),
        ("product_category", StringType()), ("weeks_since_first_sale", LongType()), ("week_of_year", LongType()),
        ("baseline_units", DoubleType()), ("unplaced_weeks", LongType()), ("placed_weeks", LongType()),
        ("shelf_price", DoubleType()), ("discount_depth_before", DoubleType()),
        ("weeks_since_last_placement", LongType()), ("last_placement_units", LongType()),
        ("last_placement_baseline_units", DoubleType()), ("last_placement_lift", DoubleType()),
        ("category_units_before", LongType()),
    ), keys=("product_id", "store_id", "week"),
    description="One row per silver.item_store_week row: the product's baseline, placements, price and "
                "category units in the store over the 8 weeks before the week.",
)

CAMPAIGN_FEATURES = TableSpec(
    "silver", "campaign_features", table_struct(
        ("as_of_date", DateType()), ("campaign_id", LongType()), ("campaign_type", StringType()),
        ("start_date", DateType()), ("end_date", DateType()), ("duration_days", IntegerType()),
        ("status", StringType()), ("targeted_households", LongType()),
        ("coupons", LongType()), ("coupon_products", LongType()),
        ("coupon_departments_text", StringType()), ("coupon_categories_text", StringType()),
        ("type_past_campaigns", LongType()), ("type_past_redemption_rate", DoubleType()),
        ("starts_before_data", BooleanType()), ("ends_after_data", BooleanType()),
    ), partition_by=("as_of_date",), keys=("as_of_date", "campaign_id"),
    description=(
        "One row per campaign; status is planned/running/ended relative to as_of_date and the "
        "past redemption rate of its type uses only campaigns of that type ended before it."
    ),
)

CAMPAIGN_EXPOSURES = TableSpec(
    "silver", "campaign_exposures", table_struct(
        ("as_of_date", DateType()), ("household_id", LongType()), ("campaign_id", LongType()),
        ("campaign_type", StringType()), ("targeted", BooleanType()),
        ("start_date", DateType()), ("end_date", DateType()), ("duration_days", IntegerType()),
        ("observed_days", IntegerType()), ("pre_observed_days", IntegerType()),
        ("censored", BooleanType()), ("censor_reason", StringType()),
        ("pre_spend", DoubleType()), ("pre_coupon_product_spend", DoubleType()),
        ("spend", DoubleType()), ("coupon_product_spend", DoubleType()),
        ("redemptions", LongType()), ("redeemed", BooleanType()), ("coupon_cost", DoubleType()),
    ), partition_by=("as_of_date",), keys=("as_of_date", "household_id", "campaign_id"),
    description=(
        "Household x campaign for every campaign started before as_of_date: targeted or not, spend "
        "in the campaign window and in the equal-length window before it, redemptions, coupon cost. "
        "Windows are clipped to the data and to as_of_date; censored marks a clipped campaign window."
    ),
)


# --- training examples: what the model reads ---------------------------------

# Household features the model reads, as of the campaign start (training) or
# the run date (scoring): the numeric columns of silver.user_features.
def household_numeric_columns(features: FeatureConfig) -> tuple[str, ...]:
    skip = {"as_of_date", "household_id", "first_purchase_date", "has_demographics", *DEMOGRAPHIC_COLUMNS}
    return tuple(c for c in user_features_spec(features).columns if c not in skip)


# Per (household, campaign): spend before the reference date, and what is
# known of the campaign in advance.
PAIR_NUMERIC_COLUMNS: tuple[str, ...] = (
    "pre_spend", "pre_coupon_product_spend", "pre_observed_share",
    # Other campaigns targeting the same household whose windows overlap this
    # one's, in all and sharing coupon products with it: targeted households get
    # several campaigns at once, and without these the placebo window (full of
    # other campaigns) shows "effects" that are theirs.
    "concurrent_campaigns", "concurrent_shared_product_campaigns",
    # Campaign facts a planner knows before choosing the audience (so not the
    # audience size: that is what the budget plan decides).
    "duration_days", "coupons", "coupon_products", "type_past_redemption_rate",
)
CATEGORICAL_COLUMNS: tuple[str, ...] = (*DEMOGRAPHIC_COLUMNS, "has_demographics", "campaign_type")
OUTCOME_COLUMNS: tuple[str, ...] = ("redeemed", "coupon_product_spend", "spend")


def model_numeric_columns(features: FeatureConfig) -> tuple[str, ...]:
    return household_numeric_columns(features) + PAIR_NUMERIC_COLUMNS


def training_examples_spec(features: FeatureConfig) -> TableSpec:
    user = {f.name: f.dataType for f in user_features_spec(features).struct.fields}
    numeric = [(c, user.get(c, DoubleType())) for c in model_numeric_columns(features)]
    cols: list[tuple[str, DataType]] = [
        ("as_of_date", DateType()), ("household_id", LongType()), ("campaign_id", LongType()),
        ("start_date", DateType()), ("end_date", DateType()), ("split", StringType()),
        ("targeted", BooleanType()), ("redeemed", BooleanType()), ("redemptions", LongType()),
        ("coupon_product_spend", DoubleType()), ("spend", DoubleType()), ("coupon_cost", DoubleType()),
        ("campaign_text", StringType()), ("history_text", StringType()),
        *numeric,
        *[(c, StringType()) for c in CATEGORICAL_COLUMNS],
    ]
    return TableSpec(
        "silver", "training_examples", table_struct(*cols), partition_by=("as_of_date",),
        keys=("as_of_date", "household_id", "campaign_id"),
        description=(
            "Household x fully observed campaign ended before as_of_date: features as of the campaign's "
            "start (household state, pre-period spend, campaign facts), the targeting, the outcomes in "
            "the campaign window, and the time-based split (train/validation/test by start date)."
        ),
    )
