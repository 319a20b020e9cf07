"""The product promotion tables on the full data and on scale-ups, against the same aggregation in DuckDB.

    # needs bronze (jobs/ingest.py on the embedded default: the real Complete Journey data)
    .venv/bin/python benchmarks/bench_item_store_week.py [--scales 1,2,5] [--cores 2] [--work DIR]

Data: bronze.transactions and bronze.promotions of the configured warehouse
(1.46M transaction lines and 20.9M promotion rows, weeks 1-53), copied
``scale`` times. Copy k sells in new stores (store id + k x 10^6) and runs
13 k weeks later (timestamps shifted by 91 k days): more stores and more
weeks, each new store's history that of a real store, so the rows grow
exactly ``scale``-fold with the same distribution per store. At 5x the
calendar is 105 weeks and the stores five times as many.

Measured per scale, in one process, after the scaled copy is written to
parquet (not timed):

1. ``spark``: ``publish_item_store_weeks``, the job's own code (the two
   commits of ``jobs/build_item_store_week.py``: silver.item_store_week, then
   silver.item_store_week_features, each with the count that the job logs),
   into a scratch warehouse under ``--work``, every week up to the last;
   each stage's seconds as its log line reports them.
2. ``duckdb``: the first stage's aggregation (lines to product x store x
   week, first sale, placements after it, their full join) as one SQL
   statement over the same parquet files, written to a parquet file, on as
   many threads as Spark has cores.

The two first-stage results are compared (rows, units, sales, placed rows,
placement codes): the benchmark fails when they differ. Prints a JSON
document and a markdown table (paste into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))
sys.path.insert(0, str(REPO / "benchmarks"))

from machine import describe_machine  # noqa: E402

STORE_STRIDE = 1_000_000
WEEK_SHIFT = 13

DUCKDB_ITEM_STORE_WEEK = """
WITH lines AS (
    SELECT product_id, store_id, week, quantity, sales_value, retail_disc
    FROM read_parquet('{transactions}/*.parquet')
    WHERE CAST(transaction_timestamp AS DATE) < DATE '{as_of}'
      AND DATE '{week_one_end}' + CAST((week - 1) * 7 AS INTEGER) < DATE '{as_of}'
), sales AS (
    SELECT product_id, store_id, week, SUM(quantity) AS units, SUM(sales_value) AS sales_value,
           SUM(retail_disc) AS discount_value, COUNT(*) AS lines
    FROM lines GROUP BY product_id, store_id, week
), first_sale AS (
    SELECT product_id, store_id, MIN(week) AS first_sale_week FROM sales GROUP BY product_id, store_id
), placements AS (
    SELECT p.product_id, p.store_id, p.week,
           list_sort(list_distinct(list(p.display_location) FILTER (WHERE p.display_location <> '0')))
               AS display_locations,
           list_sort(list_distinct(list(p.mailer_location) FILTER (WHERE p.mailer_location <> '0')))
               AS mailer_locations
    FROM read_parquet('{promotions}/*.parquet') p
    JOIN first_sale f ON p.product_id = f.product_id AND p.store_id = f.store_id
    WHERE DATE '{week_one_end}' + CAST((p.week - 1) * 7 AS INTEGER) < DATE '{as_of}'
      AND p.week >= f.first_sale_week
    GROUP BY p.product_id, p.store_id, p.week
), joined AS (
    SELECT COALESCE(s.product_id, p.product_id) AS product_id, COALESCE(s.store_id, p.store_id) AS store_id,
           COALESCE(s.week, p.week) AS week,
           COALESCE(s.units, 0) AS units, COALESCE(s.sales_value, 0.0) AS sales_value,
           COALESCE(s.discount_value, 0.0) AS discount_value, COALESCE(s.lines, 0) AS lines,
           COALESCE(p.display_locations, []::VARCHAR[]) AS display_locations,
           COALESCE(p.mailer_locations, []::VARCHAR[]) AS mailer_locations
    FROM sales s FULL JOIN placements p
      ON s.product_id = p.product_id AND s.store_id = p.store_id AND s.week = p.week
)
SELECT j.product_id, j.store_id, j.week,
       DATE '{week_one_end}' + CAST((j.week - 1) * 7 AS INTEGER) AS week_end_date,
       j.units, j.sales_value, j.discount_value, j.sales_value + j.discount_value AS shelf_value,
       CASE WHEN j.sales_value + j.discount_value > 0
            THEN j.discount_value / (j.sales_value + j.discount_value) END AS discount_depth,
       j.lines, len(j.display_locations) > 0 AS on_display, len(j.mailer_locations) > 0 AS in_mailer,
       j.display_locations, j.mailer_locations, f.first_sale_week
FROM joined j JOIN first_sale f ON j.product_id = f.product_id AND j.store_id = f.store_id
"""

# What the two engines' first-stage tables are compared on (the same query text for both).
SUMMARY = """
SELECT COUNT(*) AS rows, SUM(units) AS units, ROUND(SUM(sales_value), 2) AS sales_value,
       SUM(CASE WHEN on_display OR in_mailer THEN 1 ELSE 0 END) AS placed_rows,
       SUM(len(display_locations) + len(mailer_locations)) AS placement_codes, MAX(week) AS last_week
FROM {table}
"""


class StageSeconds(logging.Handler):
    """Collects '<stage>: done, N rows in S s' records of ``observability.stage`` (name, rows, seconds)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.done: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("%s: done") and isinstance(record.args, tuple):
            self.done[str(record.args[0])] = float(record.args[2])


def write_scaled_copy(spark, bronze, scale: int, out: Path) -> dict[str, int]:
    """bronze.transactions and bronze.promotions, ``scale`` copies in new stores and later weeks, as parquet."""
    from pyspark.sql import functions as F

    copies = spark.range(scale).withColumnRenamed("id", "copy")
    shifted = {
        "transactions": bronze.transactions.select(
            "product_id", "store_id", "week", "quantity", "sales_value", "retail_disc", "transaction_timestamp"),
        "promotions": bronze.promotions.select(
            "product_id", "store_id", "week", "display_location", "mailer_location"),
    }
    rows = {}
    for name, frame in shifted.items():
        scaled = frame.crossJoin(copies).withColumns({
            "store_id": F.col("store_id") + F.col("copy") * STORE_STRIDE,
            "week": F.col("week") + F.col("copy") * WEEK_SHIFT,
        })
        if "transaction_timestamp" in frame.columns:
            scaled = scaled.withColumn(
                "transaction_timestamp",
                F.col("transaction_timestamp") + F.make_dt_interval(F.col("copy") * WEEK_SHIFT * 7))
        scaled.drop("copy").write.mode("overwrite").parquet(str(out / name))
        rows[name] = spark.read.parquet(str(out / name)).count()
    return rows


def run_spark(spark, config, as_of: dt.date, data: Path, products) -> tuple[dict[str, float], dict[str, int]]:
    from promo_roi.product_promotions.item_store_week import publish_item_store_weeks

    stages = StageSeconds()
    logger = logging.getLogger("promo_roi.product_promotions.item_store_week")
    logger.addHandler(stages)
    logger.setLevel(logging.INFO)
    try:
        counts = publish_item_store_weeks(spark, config, as_of, spark.read.parquet(str(data / "transactions")),
                                          spark.read.parquet(str(data / "promotions")), products)
    finally:
        logger.removeHandler(stages)
    return {name.split(".")[1].split("[")[0]: seconds for name, seconds in stages.done.items()}, counts


def duckdb_item_store_weeks(transactions: Path, promotions: Path, as_of: dt.date, source) -> str:
    """The SQL of silver.item_store_week's rows for ``as_of`` over parquet directories of bronze's columns."""
    return DUCKDB_ITEM_STORE_WEEK.format(transactions=transactions, promotions=promotions, as_of=as_of.isoformat(),
                                         week_one_end=source.week_one_end.isoformat())


def duckdb_connection(threads: int, time_zone: str, temp_directory: Path):
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {threads}")
    # Dates of timestamps as Spark's session reads them.
    con.execute(f"SET TimeZone = '{time_zone}'")
    con.execute(f"SET temp_directory = '{temp_directory}'")
    return con


def run_duckdb(config, as_of: dt.date, data: Path, threads: int) -> tuple[float, dict]:
    out = data / "duckdb_item_store_week.parquet"
    con = duckdb_connection(threads, config.spark.session_time_zone, data / "duckdb_tmp")
    query = duckdb_item_store_weeks(data / "transactions", data / "promotions", as_of, config.source)
    started = time.perf_counter()
    con.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet)")
    seconds = time.perf_counter() - started
    summary = con.execute(SUMMARY.format(table=f"read_parquet('{out}')")).fetchdf().iloc[0].to_dict()
    con.close()
    return seconds, {k: (float(v) if k == "sales_value" else int(v)) for k, v in summary.items()}


def spark_summary(spark, config) -> dict:
    from promo_roi import delta_io
    from promo_roi.tables import ITEM_STORE_WEEK

    delta_io.read_table(spark, ITEM_STORE_WEEK, config.warehouse).createOrReplaceTempView("bench_item_store_week")
    row = spark.sql(SUMMARY.replace("len(", "size(").format(table="bench_item_store_week")).collect()[0].asDict()
    return {k: (float(v) if k == "sales_value" else int(v)) for k, v in row.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="1,2,5", help="comma-separated copy counts")
    parser.add_argument("--work", default="/tmp/bench-item-store-week", help="scratch directory (emptied)")
    parser.add_argument("--cores", type=int, default=2, help="Spark local[N] and DuckDB threads")
    parser.add_argument("--keep", action="store_true", help="leave the scratch directory behind")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    from promo_roi.bronze import read_bronze
    from promo_roi.config import load_config
    from promo_roi.session import build_spark_session
    from promo_roi.tables import ITEM_STORE_WEEK, ITEM_STORE_WEEK_FEATURES

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    source_config = load_config(env=os.environ)
    config = load_config(overrides=[f"warehouse.root={work / 'warehouse'}", f"spark.master=local[{args.cores}]"],
                         env=os.environ)
    spark = build_spark_session(config, app_name="promo-roi-bench-item-store-week")
    cores = args.cores
    bronze = read_bronze(spark, source_config)
    results = []
    for scale in scales:
        data = work / f"scale_{scale}x"
        started = time.perf_counter()
        input_rows = write_scaled_copy(spark, bronze, scale, data)
        generated = time.perf_counter() - started
        last_week = source_config.source.last_week + WEEK_SHIFT * (scale - 1)
        scaled = dataclasses.replace(
            config, source=dataclasses.replace(config.source, last_week=last_week),
            warehouse=dataclasses.replace(config.warehouse, root=str(work / f"warehouse_{scale}x")))
        as_of = scaled.source.week_end(last_week) + dt.timedelta(days=1)
        seconds, counts = run_spark(spark, scaled, as_of, data, bronze.products)
        spark_result = spark_summary(spark, scaled)
        duck_seconds, duck_result = run_duckdb(scaled, as_of, data, cores)
        if spark_result != duck_result:
            raise AssertionError(f"scale {scale}: Spark and DuckDB differ: {spark_result} against {duck_result}")
        results.append({"scale": scale, "input_rows": input_rows, "weeks": last_week, "as_of": as_of.isoformat(),
                        "generate_seconds": generated, "spark_seconds": seconds, "duckdb_seconds": duck_seconds,
                        "output_rows": counts, "summary": spark_result})
        print(json.dumps(results[-1], default=str), flush=True)
        # The next scale writes another warehouse: its tables take the names (the catalog keeps no data).
        for spec in (ITEM_STORE_WEEK, ITEM_STORE_WEEK_FEATURES):
            spark.sql(f"DROP TABLE IF EXISTS {spec.full_name}")
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(work / f"warehouse_{scale}x", ignore_errors=True)
    spark.stop()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    report = {"cores": cores, "shuffle_partitions": config.spark.shuffle_partitions, "machine": describe_machine(),
              "results": results}
    print(json.dumps(report, indent=2, default=str))
    print()
    base = results[0]
    base_rows = base["summary"]["rows"]
    print("| scale | input rows (lines + promotions) | item_store_week rows | Spark item_store_week (s) | "
          "Spark features (s) | DuckDB item_store_week (s) | Spark / DuckDB | Spark s per row vs first |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        s = r["spark_seconds"]
        rows = r["summary"]["rows"]
        per_row = (s["item_store_week"] / rows) / (base["spark_seconds"]["item_store_week"] / base_rows)
        print(f"| {r['scale']}x | {r['input_rows']['transactions']:,} + {r['input_rows']['promotions']:,} | "
              f"{rows:,} | {s['item_store_week']:.1f} | {s['item_store_week_features']:.1f} | "
              f"{r['duckdb_seconds']:.1f} | {s['item_store_week'] / r['duckdb_seconds']:.1f} | {per_row:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
