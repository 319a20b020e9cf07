"""silver.item_store_week: what each product sold in each store in each completed week, and how it was promoted.

One row per product, store and week in which the product sold in that store,
or was placed on display or in the mailer there after its first sale in that
store: a promotion that sold nothing is an observation, while a placement in
a store that never sold the product says nothing about demand (the product
may not be stocked there). Weeks with neither a sale nor a placement are not
rows: the data record no "not promoted, sold nothing" week.

Point in time: a week is a row only once it has ended before the as-of date
(``features.completed_weeks_before``), and a row reads nothing dated after its
own week's end, first sale included. So a row never changes once its week
has ended, and the table is keyed by week rather than sliced by as-of date:
building for an as-of date replaces every week ended before it (rerunning
gives the same rows; a reader at an earlier as-of date filters
``week_end_date < as_of``).

Discount depth is the store's own discount (``retail_disc``, the loyalty
price reduction) as a share of the shelf price (sales value + that discount);
manufacturer coupons are not the store's price and stay out.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.bronze import read_bronze
from promo_roi.config import AppConfig, SourceConfig
from promo_roi.features import completed_weeks_before, transactions_before, week_end_date
from promo_roi.observability import stage
from promo_roi.product_promotions.baseline_features import item_store_week_features
from promo_roi.promotion_codes import DISPLAY_LOCATIONS, MAILER_LOCATIONS
from promo_roi.quality import Transform
from promo_roi.session import driver_max_heap_bytes
from promo_roi.tables import ITEM_STORE_WEEK, ITEM_STORE_WEEK_FEATURES
from promo_roi.validation import InputError

log = logging.getLogger(__name__)

KEY = ["product_id", "store_id", "week"]
NOT_PLACED = "0"  # the data's code for "not on display" and "not in the mailer"


def last_completed_week(as_of: dt.date, source: SourceConfig) -> int:
    """The last week that ended before ``as_of`` (0: none did), within the data's weeks."""
    days = (as_of - source.week_one_end).days
    if days <= 0:
        return 0
    return min(math.ceil(days / 7), source.last_week)


# Each placement code is a bit of a mask, in the codes' sorted order: a week's placements are the bitwise OR of its
# rows' masks, a fixed-width sum Spark aggregates by hashing (collect_set's object aggregate falls back to
# sorting every row of a large partition), and decoding the mask bit by bit lists the codes sorted.
PLACEMENT_CODES = {
    "display_location": sorted(set(DISPLAY_LOCATIONS) - {NOT_PLACED}),
    "mailer_location": sorted(set(MAILER_LOCATIONS) - {NOT_PLACED}),
}


def _placement_mask(column: str):
    """A row's code as its bit (0 for "not placed" or missing); a code outside the vocabulary stops the build
    (ingest quarantines them, so bronze holds none: one here is a source nobody validated)."""
    code = F.col(column)
    mask = F.when(code.isNull() | (code == NOT_PLACED), F.lit(0))
    for bit, value in enumerate(PLACEMENT_CODES[column]):
        mask = mask.when(code == value, F.lit(1 << bit))
    unknown = F.raise_error(F.concat(F.lit(f"unknown {column} code '"), code, F.lit("' (promotion_codes.py)")))
    return mask.otherwise(unknown).cast("int").alias(f"{column}_mask")


def _placement_codes(column: str):
    """The sorted codes of an OR-ed mask column (most weeks are not placed: their empty list is not built bit by
    bit)."""
    mask = F.col(f"{column}_mask")
    bits = [F.when((mask.bitwiseAND(F.lit(1 << bit))) != 0, F.lit(value))
            for bit, value in enumerate(PLACEMENT_CODES[column])]
    codes = F.when(mask == 0, F.array().cast("array<string>")).otherwise(F.array_compact(F.array(*bits)))
    return codes.alias(f"{column}s")


def completed_week_lines(as_of: dt.date, source: SourceConfig) -> Transform:
    """``transactions ->`` the lines dated before ``as_of`` in weeks that ended before it."""
    return lambda transactions: (transactions.transform(transactions_before(as_of))
                                 .transform(completed_weeks_before(as_of, source)))


# Product and store ids below 2**31 pack into one long, ``product_id * 2**31 + store_id``: a hash join on one long key
# probes Spark's map for long keys instead of hashing a two-column row per promotion.
PACKED_ID_LIMIT = 1 << 31


def _product_store_key():
    """The packed key of a row's (product, store); null where either id is outside [0, 2**31), so such a row
    matches nothing (used only where every first sale's ids are inside)."""
    product, store = F.col("product_id"), F.col("store_id")
    inside = product.between(0, PACKED_ID_LIMIT - 1) & store.between(0, PACKED_ID_LIMIT - 1)
    return F.when(inside, product * F.lit(PACKED_ID_LIMIT) + store).alias("product_store")


def _sum_by_week(lines: DataFrame, placements: DataFrame) -> DataFrame:
    """Lines and placements (the key and each code mask) summed per product, store and week in one aggregation:
    a placement adds nothing to the sums, a line no code. The rows of a full join of the two, without sorting
    either side."""
    masks = ("display_location_mask", "mailer_location_mask")
    sold = lines.select(*KEY, F.col("quantity").alias("units"), "sales_value",
                        F.col("retail_disc").alias("discount_value"), F.lit(1).alias("lines"),
                        *(F.lit(0).alias(mask) for mask in masks))
    placed = placements.select(*KEY, F.lit(0).alias("units"), F.lit(0.0).alias("sales_value"),
                               F.lit(0.0).alias("discount_value"), F.lit(0).alias("lines"), *masks)
    return sold.unionByName(placed).groupBy(*KEY).agg(
        F.sum("units").alias("units"),
        F.sum("sales_value").alias("sales_value"),
        F.sum("discount_value").alias("discount_value"),
        F.sum("lines").alias("lines"),
        F.bit_or("display_location_mask").alias("display_location_mask"),
        F.bit_or("mailer_location_mask").alias("mailer_location_mask"),
    )


def item_store_weeks(promotions: DataFrame, as_of: dt.date, source: SourceConfig,
                     broadcast_first_sales: bool = False, packed_key: bool = False) -> Transform:
    """``transactions -> silver.item_store_week`` rows for the weeks ended before ``as_of``.

    ``broadcast_first_sales``: join the promotions to each product-store's first sale by broadcasting the
    first sales (one row per product sold in a store) instead of shuffling every promotion row; most promotion
    rows are of products that never sold in that store and are dropped where they are read. The caller decides
    by the first sales' size (:func:`publish_item_store_weeks`): a broadcast is held whole by every executor.

    ``packed_key``: join on one long packed from the two ids; only where every sold product-store's ids are in
    [0, 2**31) (:class:`SoldProductStores`), else a first sale would match nothing."""

    def _t(transactions: DataFrame) -> DataFrame:
        lines = transactions.transform(completed_week_lines(as_of, source))
        first_sale = lines.groupBy("product_id", "store_id").agg(F.min("week").alias("first_sale_week"))
        join_key = ["product_id", "store_id"]
        if packed_key:
            first_sale = first_sale.select(_product_store_key(), "first_sale_week")
            join_key = ["product_store"]
        if broadcast_first_sales:
            first_sale = F.broadcast(first_sale)

        def with_first_sale(frame: DataFrame) -> DataFrame:
            if packed_key:
                frame = frame.withColumn("product_store", _product_store_key())
            return frame.join(first_sale, join_key)

        # Placements only where the product had sold in the store by then; a key can hold two placements
        # (two display locations in one week): every code is kept.
        placements = (
            promotions.transform(completed_weeks_before(as_of, source))
            .transform(with_first_sale)
            .filter(F.col("week") >= F.col("first_sale_week"))
            .select(*KEY, _placement_mask("display_location"), _placement_mask("mailer_location"))
        )
        rows = (
            _sum_by_week(lines, placements)
            .transform(with_first_sale)
            .select(
                *KEY,
                F.coalesce("units", F.lit(0)).alias("units"),
                F.coalesce("sales_value", F.lit(0.0)).alias("sales_value"),
                F.coalesce("discount_value", F.lit(0.0)).alias("discount_value"),
                "lines",
                _placement_codes("display_location"), _placement_codes("mailer_location"),
                "first_sale_week",
            )
        )
        shelf = F.col("sales_value") + F.col("discount_value")
        return rows.select(
            *KEY,
            week_end_date(source).alias("week_end_date"),
            "units", "sales_value", "discount_value",
            shelf.alias("shelf_value"),
            F.when(shelf > 0, F.col("discount_value") / shelf).alias("discount_depth"),
            "lines",
            (F.size("display_locations") > 0).alias("on_display"),
            (F.size("mailer_locations") > 0).alias("in_mailer"),
            "display_locations", "mailer_locations", "first_sale_week",
        ).select(*ITEM_STORE_WEEK.columns)

    return _t


# The first sales are broadcast while there are at most this many product-stores; more are joined by a shuffle.
BROADCAST_MAX_PRODUCT_STORES = 5_000_000
# What one first sale (product, store, week) takes in the driver while the broadcast is built: the collected rows
# and the hash relation built from them, generously. The broadcast may take an eighth of the driver's heap:
# spark-submit's default driver (1 GB, the demo's) builds it for up to ~1M product-stores.
BROADCAST_BYTES_PER_PRODUCT_STORE = 128
BROADCAST_HEAP_SHARE = 1 / 8


@dataclass(frozen=True)
class SoldProductStores:
    """The (product, store) pairs that sold in the weeks ended before an as-of date: the first sales' rows."""

    count: int
    ids_pack: bool  # every id in [0, 2**31): the joins may use one packed key


def sold_product_stores(transactions: DataFrame, as_of: dt.date, source: SourceConfig) -> SoldProductStores:
    """How many (product, store) pairs sold in the weeks ended before ``as_of``, and whether their ids pack."""
    lines = transactions.transform(completed_week_lines(as_of, source))
    row = lines.select("product_id", "store_id").distinct().agg(
        F.count(F.lit(1)).alias("pairs"),
        *(F.min(c).alias(f"min_{c}") for c in ("product_id", "store_id")),
        *(F.max(c).alias(f"max_{c}") for c in ("product_id", "store_id")),
    ).first()
    ids_pack = row.pairs == 0 or (min(row.min_product_id, row.min_store_id) >= 0
                                  and max(row.max_product_id, row.max_store_id) < PACKED_ID_LIMIT)
    return SoldProductStores(row.pairs, ids_pack)


def broadcast_first_sales(product_stores: int, driver_heap_bytes: int) -> bool:
    """Whether ``product_stores`` first sales are few enough to broadcast from a driver of this heap."""
    fits = product_stores * BROADCAST_BYTES_PER_PRODUCT_STORE <= driver_heap_bytes * BROADCAST_HEAP_SHARE
    return fits and product_stores <= BROADCAST_MAX_PRODUCT_STORES


def completed_weeks(as_of: dt.date, config: AppConfig) -> int:
    """The last week ended before ``as_of``; refuses an as-of date before the first week ended: no week is
    complete, and an empty table would read as "nothing sold"."""
    last_week = last_completed_week(as_of, config.source)
    if last_week < config.source.first_week:
        raise InputError(f"as-of date {as_of}: no week of the data ended before it (week {config.source.first_week} "
                         f"ends {config.source.week_end(config.source.first_week)}; source.week_one_end)")
    return last_week


def build_item_store_weeks(spark: SparkSession, config: AppConfig, as_of: dt.date) -> dict[str, int]:
    """Replaces every week of silver.item_store_week, then of silver.item_store_week_features, that ended before
    ``as_of``, each table in one commit, from bronze's published snapshot; returns the rows of those weeks per
    table (see ``publish_item_store_weeks``)."""
    completed_weeks(as_of, config)  # refused before bronze is read
    bronze = read_bronze(spark, config)
    return publish_item_store_weeks(spark, config, as_of, bronze.transactions, bronze.promotions, bronze.products)


def publish_item_store_weeks(spark: SparkSession, config: AppConfig, as_of: dt.date, transactions: DataFrame,
                             promotions: DataFrame, products: DataFrame) -> dict[str, int]:
    """The two commits of ``build_item_store_weeks`` from these source frames (bronze's, or a benchmark's).

    A run stopped between the two commits leaves the features of the new weeks missing until the rerun, never
    wrong: each commit replaces whole weeks."""
    last_week = completed_weeks(as_of, config)
    weeks = f"week <= {last_week}"

    def first_table() -> DataFrame:
        sold = sold_product_stores(transactions, as_of, config.source)
        heap = driver_max_heap_bytes(spark)
        broadcast = broadcast_first_sales(sold.count, heap)
        log.info("product_promotions: %s products sold in a store before %s: first sales %s, joined on %s",
                 f"{sold.count:,}", as_of, "broadcast to the promotions" if broadcast else
                 f"joined by a shuffle (too many to broadcast from a driver of {heap / 2**30:.1f} GiB)",
                 "one packed key" if sold.ids_pack else "product and store (an id outside [0, 2**31))")
        return transactions.transform(item_store_weeks(promotions, as_of, config.source, broadcast, sold.ids_pack))

    builds = (
        (ITEM_STORE_WEEK, first_table),
        (ITEM_STORE_WEEK_FEATURES, lambda: delta_io.read_table(spark, ITEM_STORE_WEEK, config.warehouse)
         .filter(weeks).transform(item_store_week_features(products))),
    )
    counts: dict[str, int] = {}
    for spec, build in builds:
        with stage(log, f"product_promotions.{spec.name}[{as_of}]") as st:
            version = delta_io.replace_slice(spark, build(), spec, config.warehouse, weeks)
            st.rows = counts[spec.full_name] = delta_io.slice_rows(spark, spec, config.warehouse, version, weeks)
            st.detail = f"{spec.full_name} version {version}, weeks {config.source.first_week}-{last_week}"
    return counts
