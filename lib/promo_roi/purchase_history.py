"""What a household buys, as text: its spend-weighted product categories before a date.

Issue 11 asks the transformer to read the household, not only the campaign: "build each household's purchase
history as text ... (spend-weighted products or categories before the as-of date)". This module builds that
text, point in time, the way :mod:`promo_roi.features` builds the numeric features: for each reference date
``d`` only the lines dated in the ``weeks`` weeks before ``d`` (``[d - 7 * weeks, d)``) count, so nothing a
household did on or after ``d`` can reach it (tests/test_purchase_history.py perturbs the future and checks).

The text names the household's ``categories`` largest product categories by its spend in the window, largest
first, each with its share of the household's spend there (a percentage rounded to the unit):

    bought in the last 26 weeks: soft drinks 12%, beef 8%, cheese 6%.

The category is the product's ``product_category`` (its ``department`` where that is blank, "unknown" where
both are), in lower case as :func:`promo_roi.features.item_text` writes it. Returns and categories whose spend
in the window is not positive are left out. A household with no positive spend in the window has no row: the
caller says what such a household's text is. Ties in spend are ordered by the category's name, so the text is
the same on every run.

Pure: DataFrames in, a DataFrame out; the caller reads bronze and writes wherever the text is kept.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from promo_roi.features import reference_dates, with_transaction_date
from promo_roi.validation import validate_presence_of_columns

HISTORY_COLUMNS = ("household_id", "as_of_date", "history_text", "history_spend", "history_categories")


def category_label(products: DataFrame) -> Column:
    """The category a product's spend counts toward: product_category, else department, else "unknown"."""
    def present(column: str) -> Column:
        value = F.trim(F.col(column))
        return F.when(value.isNotNull() & (value != ""), value)

    return F.lower(F.coalesce(present("product_category"), present("department"), F.lit("unknown")))


def purchase_history_on(transactions: DataFrame, products: DataFrame, dates: Sequence[dt.date], weeks: int,
                        categories: int) -> DataFrame:
    """One row per household with positive spend in the window before each of ``dates``:
    ``household_id, as_of_date, history_text, history_spend`` (its spend in the window) and
    ``history_categories`` (how many categories the text names)."""
    if weeks < 1 or categories < 1:
        raise ValueError(f"weeks and categories must be at least 1, got {weeks} and {categories}")
    validate_presence_of_columns(transactions, ["household_id", "product_id", "sales_value", "transaction_timestamp"],
                                 "transactions")
    validate_presence_of_columns(products, ["product_id", "department", "product_category"], "products")
    days = F.lit(7 * weeks)
    lines = with_transaction_date(transactions).select("household_id", "product_id", "sales_value", "transaction_date")
    on = reference_dates(transactions.sparkSession, dates)
    windowed = lines.join(
        F.broadcast(on),
        (F.col("transaction_date") < F.col("as_of_date"))
        & (F.col("transaction_date") >= F.date_sub(F.col("as_of_date"), days)),
    )
    labelled = products.select("product_id", category_label(products).alias("category"))
    by_category = (
        windowed.join(labelled, "product_id", "left")
        .fillna("unknown", subset=["category"])
        .groupBy("household_id", "as_of_date", "category")
        .agg(F.sum("sales_value").alias("spend"))
        .filter(F.col("spend") > 0)
    )
    household = Window.partitionBy("household_id", "as_of_date")
    ranked = (
        by_category
        .withColumn("total", F.sum("spend").over(household))
        .withColumn("rank", F.row_number().over(household.orderBy(F.col("spend").desc(), F.col("category"))))
        .filter(F.col("rank") <= categories)
        .withColumn("part", F.concat(F.col("category"), F.lit(" "),
                                     F.round(F.col("spend") / F.col("total") * 100).cast("int").cast("string"),
                                     F.lit("%")))
    )
    return (
        ranked.groupBy("household_id", "as_of_date")
        .agg(F.sort_array(F.collect_list(F.struct("rank", "part"))).alias("parts"),
             F.max("total").alias("history_spend"), F.count("*").cast("int").alias("history_categories"))
        .withColumn("history_text", F.concat(
            F.lit(f"bought in the last {weeks} weeks: "),
            F.array_join(F.transform("parts", lambda p: p["part"]), ", "), F.lit(".")))
        .select(*HISTORY_COLUMNS)
    )
