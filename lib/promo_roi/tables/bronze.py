"""Bronze: the eight Complete Journey source tables as loaded, the quarantine and the ingest audit."""

from __future__ import annotations

from pyspark.sql.types import (
    DoubleType,
    LongType,
    MapType,
    StringType,
    TimestampType,
)

from promo_roi.tables.spec import TableSpec, table_struct

SOURCE_TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("bronze", "products", table_struct(
            ("product_id", LongType()), ("manufacturer_id", LongType()), ("department", StringType()),
            ("brand", StringType()), ("product_category", StringType()), ("product_type", StringType()),
            ("package_size", StringType()),
        ), keys=("product_id",), description="Product master."),
        TableSpec("bronze", "campaign_descriptions", table_struct(
            ("campaign_id", LongType()), ("campaign_type", StringType()),
            ("start_date", TimestampType()), ("end_date", TimestampType()),
        ), keys=("campaign_id",), description="One row per campaign: type and dates."),
        TableSpec("bronze", "transactions", table_struct(
            ("household_id", LongType()), ("store_id", LongType()), ("basket_id", LongType()),
            ("product_id", LongType()), ("quantity", LongType()), ("sales_value", DoubleType()),
            ("retail_disc", DoubleType()), ("coupon_disc", DoubleType()), ("coupon_match_disc", DoubleType()),
            ("week", LongType()), ("transaction_timestamp", TimestampType()),
        ), keys=("household_id", "basket_id", "product_id", "transaction_timestamp"),
            description="Basket lines; discounts are positive amounts taken off the shelf price."),
        TableSpec("bronze", "demographics", table_struct(
            ("household_id", LongType()), ("age", StringType()), ("income", StringType()),
            ("home_ownership", StringType()), ("marital_status", StringType()),
            ("household_size", StringType()), ("household_comp", StringType()), ("kids_count", StringType()),
        ), keys=("household_id",), description="Demographics of the households that shared them."),
        TableSpec("bronze", "campaigns", table_struct(
            ("campaign_id", LongType()), ("household_id", LongType()),
        ), keys=("campaign_id", "household_id"), description="Which households each campaign targeted."),
        TableSpec("bronze", "coupons", table_struct(
            ("coupon_upc", LongType()), ("product_id", LongType()), ("campaign_id", LongType()),
        ), keys=("coupon_upc", "product_id", "campaign_id"), description="Products each campaign coupon applies to."),
        TableSpec("bronze", "coupon_redemptions", table_struct(
            ("household_id", LongType()), ("coupon_upc", LongType()), ("campaign_id", LongType()),
            ("redemption_date", TimestampType()),
        ), keys=("household_id", "coupon_upc", "campaign_id", "redemption_date"),
            description="Coupon redemptions by household."),
        TableSpec("bronze", "promotions", table_struct(
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
    "bronze", "quarantine", table_struct(
        ("source_table", StringType()), ("reason", StringType()), ("record", StringType()),
    ), partition_by=("source_table",),
    description="Rows refused by ingest, with the first rule they broke; record is the row as JSON.",
)

INGEST_AUDIT = TableSpec(
    "bronze", "ingest_audit", table_struct(
        ("source_table", StringType()), ("source_path", StringType()), ("rows_read", LongType()),
        ("rows_written", LongType()), ("rows_quarantined", LongType()),
        ("quarantined_by_reason", MapType(StringType(), LongType())), ("table_version", LongType()),
        ("ingested_at", TimestampType()),
    ), keys=("source_table",),
    description="The latest ingest of each source table: rows read = written + quarantined.",
)
