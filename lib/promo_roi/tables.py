"""Every table's name, schema, partitioning and keys, declared once.

Bronze holds the source tables as loaded (canonical types, bad rows removed to
``bronze.quarantine``); silver holds point-in-time feature tables keyed by
``as_of_date``; gold holds what the business reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from pyspark.sql.types import (
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from promo_roi.config import FeatureConfig


@dataclass(frozen=True)
class TableSpec:
    schema: str
    name: str
    struct: StructType
    partition_by: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    description: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.struct.fields]


def _struct(*cols: tuple[str, DataType]) -> StructType:
    return StructType([StructField(name, dtype, True) for name, dtype in cols])


# --- source contract: the eight Complete Journey tables ---------------------

SOURCE_TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("bronze", "products", _struct(
            ("product_id", LongType()), ("manufacturer_id", LongType()), ("department", StringType()),
            ("brand", StringType()), ("product_category", StringType()), ("product_type", StringType()),
            ("package_size", StringType()),
        ), keys=("product_id",), description="Product master."),
        TableSpec("bronze", "campaign_descriptions", _struct(
            ("campaign_id", LongType()), ("campaign_type", StringType()),
            ("start_date", TimestampType()), ("end_date", TimestampType()),
        ), keys=("campaign_id",), description="One row per campaign: type and dates."),
        TableSpec("bronze", "transactions", _struct(
            ("household_id", LongType()), ("store_id", LongType()), ("basket_id", LongType()),
            ("product_id", LongType()), ("quantity", LongType()), ("sales_value", DoubleType()),
            ("retail_disc", DoubleType()), ("coupon_disc", DoubleType()), ("coupon_match_disc", DoubleType()),
            ("week", LongType()), ("transaction_timestamp", TimestampType()),
        ), keys=("household_id", "basket_id", "product_id", "transaction_timestamp"),
            description="Basket lines; discounts are positive amounts taken off the shelf price."),
        TableSpec("bronze", "demographics", _struct(
            ("household_id", LongType()), ("age", StringType()), ("income", StringType()),
            ("home_ownership", StringType()), ("marital_status", StringType()),
            ("household_size", StringType()), ("household_comp", StringType()), ("kids_count", StringType()),
        ), keys=("household_id",), description="Demographics of the households that shared them."),
        TableSpec("bronze", "campaigns", _struct(
            ("campaign_id", LongType()), ("household_id", LongType()),
        ), keys=("campaign_id", "household_id"), description="Which households each campaign targeted."),
        TableSpec("bronze", "coupons", _struct(
            ("coupon_upc", LongType()), ("product_id", LongType()), ("campaign_id", LongType()),
        ), keys=("coupon_upc", "product_id", "campaign_id"), description="Products each campaign coupon applies to."),
        TableSpec("bronze", "coupon_redemptions", _struct(
            ("household_id", LongType()), ("coupon_upc", LongType()), ("campaign_id", LongType()),
            ("redemption_date", TimestampType()),
        ), keys=("household_id", "coupon_upc", "campaign_id", "redemption_date"),
            description="Coupon redemptions by household."),
        TableSpec("bronze", "promotions", _struct(
            ("product_id", LongType()), ("store_id", LongType()), ("display_location", StringType()),
            ("mailer_location", StringType()), ("week", LongType()),
        ), keys=("product_id", "store_id", "week"),
            description="In-store display and mailer placement by product, store and week ('0' = none)."),
    )
}

# Order of loading: a table's references are checked against tables earlier in it.
INGEST_ORDER: tuple[str, ...] = (
    "products",
    "campaign_descriptions",
    "transactions",
    "demographics",
    "campaigns",
    "coupons",
    "coupon_redemptions",
    "promotions",
)

QUARANTINE = TableSpec(
    "bronze", "quarantine", _struct(
        ("source_table", StringType()), ("reason", StringType()), ("record", StringType()),
    ), partition_by=("source_table",),
    description="Rows refused by ingest, with the first rule they broke; record is the row as JSON.",
)

INGEST_AUDIT = TableSpec(
    "bronze", "ingest_audit", _struct(
        ("source_table", StringType()), ("source_path", StringType()), ("rows_read", LongType()),
        ("rows_written", LongType()), ("rows_quarantined", LongType()),
        ("quarantined_by_reason", MapType(StringType(), LongType())), ("table_version", LongType()),
        ("ingested_at", TimestampType()),
    ), keys=("source_table",),
    description="The latest ingest of each source table: rows read = written + quarantined.",
)


# --- silver: point-in-time features ------------------------------------------

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
        "silver", "user_features", _struct(*cols), partition_by=("as_of_date",),
        keys=("as_of_date", "household_id"),
        description=(
            "One row per household seen before as_of_date. Windows end the day before as_of_date; "
            f"department spend covers the last {max(features.rfm_windows_weeks)} weeks."
        ),
    )


ITEM_FEATURES = TableSpec(
    "silver", "item_features", _struct(
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

CAMPAIGN_FEATURES = TableSpec(
    "silver", "campaign_features", _struct(
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
    "silver", "campaign_exposures", _struct(
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


def silver_specs(features: FeatureConfig) -> list[TableSpec]:
    return [user_features_spec(features), ITEM_FEATURES, CAMPAIGN_FEATURES, CAMPAIGN_EXPOSURES]


def all_specs(features: FeatureConfig) -> list[TableSpec]:
    return [SOURCE_TABLES[t] for t in INGEST_ORDER] + [QUARANTINE, INGEST_AUDIT] + silver_specs(features)


def spec_by_name(specs: Sequence[TableSpec], full_name: str) -> TableSpec:
    for spec in specs:
        if spec.full_name == full_name:
            return spec
    raise KeyError(full_name)
