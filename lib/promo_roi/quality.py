"""Data-quality rules for ingest: each bad row gets the first reason it breaks.

Every rule is a ``DataFrame -> DataFrame`` transformation that fills the
``_reason`` column only where it is still null, so rules chain with
``df.transform(...)`` and their order decides which reason a row carries.
A row whose ``_reason`` stays null is good.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Iterable, Mapping, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from promo_roi.config import SourceConfig
from promo_roi.promotion_codes import DISPLAY_LOCATIONS, MAILER_LOCATIONS

REASON = "_reason"

Transform = Callable[[DataFrame], DataFrame]


def with_reason_column(df: DataFrame) -> DataFrame:
    return df if REASON in df.columns else df.withColumn(REASON, F.lit(None).cast("string"))


def _flag(df: DataFrame, condition: Column, reason: str | Column) -> DataFrame:
    reason_col = reason if isinstance(reason, Column) else F.lit(reason)
    return with_reason_column(df).withColumn(
        REASON, F.coalesce(F.col(REASON), F.when(condition, reason_col))
    )


def flag_null_keys(columns: Sequence[str]) -> Transform:
    """null_key(<column>) for the first key column that is null."""

    def _t(df: DataFrame) -> DataFrame:
        for c in columns:
            df = _flag(df, F.col(c).isNull(), f"null_key({c})")
        return df

    return _t


def flag_when(condition: Column, reason: str) -> Transform:
    return lambda df: _flag(df, condition, reason)


def flag_unknown_code(column: str, codes: Iterable[str]) -> Transform:
    """A value outside ``codes`` (a missing one too): the code names nothing the data defines."""
    known = F.coalesce(F.col(column).isin(list(codes)), F.lit(False))
    return flag_when(~known, f"unknown_{column}")


def flag_non_finite(columns: Sequence[str]) -> Transform:
    """non_finite(<column>) for the first of ``columns`` that is NaN or infinite: a sum over it would be too."""

    def _t(df: DataFrame) -> DataFrame:
        for c in columns:
            df = _flag(df, F.isnan(F.col(c)) | (F.abs(F.col(c)) == F.lit(float("inf"))), f"non_finite({c})")
        return df

    return _t


def flag_date_outside(column: str, start: dt.date, end: dt.date) -> Transform:
    day = F.to_date(F.col(column))
    outside = (day < F.lit(start)) | (day > F.lit(end))
    return flag_when(outside, f"{column}_outside_data_range")


def week_end_date(source: SourceConfig) -> Column:
    """The date on which a week's data ends (see SourceConfig.week_end)."""
    return F.date_add(F.lit(source.week_one_end), ((F.col("week") - 1) * 7).cast("int"))


def flag_outside_week(column: str, source: SourceConfig) -> Transform:
    """A line dated outside its own week (the 8 days up to the week's end date, both ends included: the data's
    weeks share their boundary day): a week read as complete could otherwise still change."""
    day = F.to_date(F.col(column))
    end = week_end_date(source)
    return flag_when((day > end) | (day < F.date_sub(end, 7)), f"{column}_outside_week")


def flag_unknown_reference(reference: DataFrame, keys: Sequence[str], reason: str) -> Transform:
    """Rows whose ``keys`` match no row of ``reference`` (a left join on distinct keys)."""

    def _t(df: DataFrame) -> DataFrame:
        marker = f"_ref_{reason}"
        known = reference.select(*keys).dropDuplicates().withColumn(marker, F.lit(True))
        # Null keys never match: they already carry null_key from an earlier rule.
        # Reference keys (products, campaigns, coupons, households) are small.
        joined = df.join(F.broadcast(known), list(keys), "left")
        return _flag(joined, F.col(marker).isNull(), reason).drop(marker)

    return _t


def flag_exact_duplicates(columns: Sequence[str]) -> Transform:
    """Keeps the first copy of identical rows among the still-good rows."""

    def _t(df: DataFrame) -> DataFrame:
        df = with_reason_column(df)
        w = Window.partitionBy(F.col(REASON).isNull(), *columns).orderBy(*columns)
        rn = F.row_number().over(w)
        return _flag(df.withColumn("_dup_rn", rn), F.col("_dup_rn") > 1, "exact_duplicate").drop("_dup_rn")

    return _t


def flag_conflicting_keys(keys: Sequence[str]) -> Transform:
    """Several different still-good rows for one key: none can be trusted, all go."""

    def _t(df: DataFrame) -> DataFrame:
        df = with_reason_column(df)
        w = Window.partitionBy(F.col(REASON).isNull(), *keys)
        return _flag(
            df.withColumn("_key_rows", F.count(F.lit(1)).over(w)),
            F.col("_key_rows") > 1,
            "conflicting_duplicate_key",
        ).drop("_key_rows")

    return _t


def source_rules(
    table: str,
    columns: Sequence[str],
    keys: Sequence[str],
    good: Mapping[str, DataFrame],
    source: SourceConfig,
) -> list[Transform]:
    """The ordered rules for one source table; ``good`` holds already-cleaned parents."""
    null_keys = flag_null_keys(keys)
    dup = flag_exact_duplicates(columns)
    weeks_ok = F.col("week").between(source.first_week, source.last_week)
    if table == "products":
        return [null_keys, dup, flag_conflicting_keys(keys)]
    if table == "campaign_descriptions":
        return [
            null_keys,
            flag_null_keys(["start_date", "end_date"]),
            flag_when(F.col("end_date") < F.col("start_date"), "end_before_start"),
            dup,
            flag_conflicting_keys(keys),
        ]
    if table == "transactions":
        return [
            null_keys,
            flag_null_keys(["quantity", "sales_value"]),
            flag_non_finite(["sales_value", "retail_disc", "coupon_disc", "coupon_match_disc"]),
            flag_when((F.col("quantity") <= 0) & (F.col("sales_value") > 0), "nonpositive_quantity_with_sales"),
            flag_when(F.col("sales_value") < 0, "negative_sales_value"),
            flag_date_outside("transaction_timestamp", source.data_start, source.data_end),
            flag_when(~weeks_ok, "week_outside_data_range"),
            flag_outside_week("transaction_timestamp", source),
            flag_unknown_reference(good["products"], ["product_id"], "unknown_product"),
            dup,
        ]
    households = good["transactions"].select("household_id") if "transactions" in good else None
    if table == "demographics":
        return [
            null_keys,
            flag_unknown_reference(households, ["household_id"], "unknown_household"),
            dup,
            flag_conflicting_keys(keys),
        ]
    if table == "campaigns":
        return [
            null_keys,
            flag_unknown_reference(good["campaign_descriptions"], ["campaign_id"], "unknown_campaign"),
            flag_unknown_reference(households, ["household_id"], "unknown_household"),
            dup,
        ]
    if table == "coupons":
        return [
            null_keys,
            flag_unknown_reference(good["campaign_descriptions"], ["campaign_id"], "unknown_campaign"),
            flag_unknown_reference(good["products"], ["product_id"], "unknown_product"),
            dup,
        ]
    if table == "coupon_redemptions":
        return [
            null_keys,
            flag_date_outside("redemption_date", source.data_start, source.data_end),
            flag_unknown_reference(households, ["household_id"], "unknown_household"),
            flag_unknown_reference(good["campaign_descriptions"], ["campaign_id"], "unknown_campaign"),
            flag_unknown_reference(good["coupons"], ["coupon_upc", "campaign_id"], "unknown_coupon"),
            dup,
        ]
    if table == "promotions":
        return [
            null_keys,
            flag_when(~weeks_ok, "week_outside_data_range"),
            flag_unknown_code("display_location", DISPLAY_LOCATIONS),
            flag_unknown_code("mailer_location", MAILER_LOCATIONS),
            flag_unknown_reference(good["products"], ["product_id"], "unknown_product"),
            dup,
        ]
    raise KeyError(f"no data-quality rules for source table {table!r}")


def classify(df: DataFrame, rules: Sequence[Transform]) -> DataFrame:
    """Applies the rules in order; ``_reason`` is null for good rows."""
    out = with_reason_column(df)
    for rule in rules:
        out = out.transform(rule)
    return out


def good_rows(classified: DataFrame) -> DataFrame:
    return classified.filter(F.col(REASON).isNull()).drop(REASON)


def quarantine_rows(classified: DataFrame, table: str, columns: Sequence[str]) -> DataFrame:
    """Bad rows as (source_table, reason, record-as-JSON) so one table holds them all."""
    return classified.filter(F.col(REASON).isNotNull()).select(
        F.lit(table).alias("source_table"),
        F.col(REASON).alias("reason"),
        F.to_json(F.struct(*[F.col(c) for c in columns]), {"ignoreNullFields": "false"}).alias("record"),
    )
