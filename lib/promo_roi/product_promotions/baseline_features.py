"""silver.item_store_week_features: what a merchandiser knows about a product in a store before a week starts.

One row per row of silver.item_store_week, read from the weeks before it
only: the product's usual weekly units in the store when not placed (its
baseline), how often and how recently it was placed, what its last placement
sold against the baseline of that time, its shelf price and discount, and
its category's units in the store. These are the inputs of the promotion
lift baselines and model (issue 14): a placement's lift is read against the
baseline of the weeks before it.

The window is the ``WINDOW_WEEKS`` weeks before the week, from the product's
first sale in the store on. A week of that window with no row was neither a
sale nor a placement (silver.item_store_week keeps every placement after the
first sale), so it counts as an unplaced week that sold nothing: the
baseline is the unplaced weeks' units over the number of unplaced weeks, not
over the weeks that happened to sell.

Point in time: a row reads rows of earlier weeks only, which never change
once ended, so its features never change either, and the table is keyed by
week like silver.item_store_week.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from promo_roi.quality import Transform
from promo_roi.tables import ITEM_STORE_WEEK_FEATURES

WINDOW_WEEKS = 8
WEEKS_PER_YEAR = 52


def _ratio(numerator, denominator):
    return F.when(denominator > 0, numerator / denominator)


def item_store_week_features(products: DataFrame, window_weeks: int = WINDOW_WEEKS) -> Transform:
    """``silver.item_store_week -> silver.item_store_week_features`` (``products``: bronze.products)."""

    def _t(weeks: DataFrame) -> DataFrame:
        pair = Window.partitionBy("product_id", "store_id").orderBy("week")
        window = pair.rangeBetween(-window_weeks, -1)
        earlier = pair.rowsBetween(Window.unboundedPreceding, -1)
        rows = weeks.withColumn("placed", F.col("on_display") | F.col("in_mailer"))
        # Weeks of the window at or after the first sale; those without a row were unplaced and sold nothing.
        open_weeks = F.col("week") - F.greatest(F.col("week") - window_weeks, F.col("first_sale_week"))
        placed_weeks = F.coalesce(F.sum(F.col("placed").cast("long")).over(window), F.lit(0))
        unplaced_units = F.coalesce(F.sum(F.when(~F.col("placed"), F.col("units")).otherwise(0)).over(window),
                                    F.lit(0))
        shelf = F.sum("shelf_value").over(window)
        rows = rows.select(
            "*",
            (open_weeks - placed_weeks).alias("unplaced_weeks"),
            placed_weeks.alias("placed_weeks"),
            unplaced_units.alias("unplaced_units"),
            _ratio(shelf, F.sum("units").over(window)).alias("shelf_price"),
            _ratio(F.sum("discount_value").over(window), shelf).alias("discount_depth_before"),
            F.max(F.when(F.col("placed"), F.col("week"))).over(earlier).alias("last_placement_week"),
        ).withColumn("baseline_units", _ratio(F.col("unplaced_units").cast("double"), F.col("unplaced_weeks")))
        # The last placement's units and the baseline it was placed against.
        rows = rows.select(
            "*",
            F.last(F.when(F.col("placed"), F.col("units")), ignorenulls=True).over(earlier)
            .alias("last_placement_units"),
            F.last(F.when(F.col("placed"), F.col("baseline_units")), ignorenulls=True).over(earlier)
            .alias("last_placement_baseline_units"),
        )
        category = (
            weeks.join(products.select("product_id", "product_category"), "product_id", "left")
            .groupBy("store_id", "product_category", "week").agg(F.sum("units").alias("category_units"))
            .select("store_id", "product_category", "week", F.coalesce(
                F.sum("category_units").over(Window.partitionBy("store_id", "product_category").orderBy("week")
                                             .rangeBetween(-window_weeks, -1)), F.lit(0)).alias("category_units_before"))
        )
        return (
            rows.join(products.select("product_id", "product_category"), "product_id", "left")
            .join(category, ["store_id", "product_category", "week"], "left")
            .select(
                "product_id", "store_id", "week", "product_category",
                (F.col("week") - F.col("first_sale_week")).alias("weeks_since_first_sale"),
                (((F.col("week") - 1) % WEEKS_PER_YEAR) + 1).alias("week_of_year"),
                "baseline_units", "unplaced_weeks", "placed_weeks", "shelf_price", "discount_depth_before",
                (F.col("week") - F.col("last_placement_week")).alias("weeks_since_last_placement"),
                "last_placement_units", "last_placement_baseline_units",
                _ratio(F.col("last_placement_units"), F.col("last_placement_baseline_units"))
                .alias("last_placement_lift"),
                "category_units_before",
            )
            .select(*ITEM_STORE_WEEK_FEATURES.columns)
        )

    return _t
