"""delta_io, the one door to Delta: records in, slices replaced, missing rows inserted, rows deleted."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.sql.types import DateType, DoubleType, LongType, StringType, StructField, StructType, TimestampType

from promo_roi import delta_io
from promo_roi.tables import TableSpec

SPEC = TableSpec(
    "gold", "delta_io_test",
    StructType([StructField("run_date", DateType()), StructField("campaign_id", LongType()),
                StructField("label", StringType()), StructField("value", DoubleType()),
                StructField("written_at", TimestampType())]),
    partition_by=("run_date",), keys=("run_date", "campaign_id"),
)
DAY = dt.date(2017, 7, 1)


@pytest.fixture
def warehouse(config_for):
    return config_for("delta_io").warehouse


def _rows(spark, warehouse) -> list[tuple]:
    frame = delta_io.read_table(spark, SPEC, warehouse).toPandas()
    return sorted(frame[["campaign_id", "label", "value"]].itertuples(index=False, name=None),
                  key=lambda r: r[0])


def test_records_from_pandas_keep_their_values_and_lose_their_pandas_types(spark):
    # DataFrame.to_dict keeps pandas' own types: Timestamp, NaT, numpy scalars, NaN.
    when = dt.datetime(2026, 12, 2, 15, 59, 12, 146706)
    records = pd.DataFrame({"run_date": [DAY, DAY], "campaign_id": np.array([8, 9], dtype="int64"),
                            "value": [1.5, np.nan], "written_at": [pd.Timestamp(when), pd.NaT]}).to_dict("records")
    frame = delta_io.frame_of_records(spark, records, SPEC, {"label": "x"})
    got = [tuple(r) for r in frame.orderBy("campaign_id").collect()]
    assert got == [(DAY, 8, "x", 1.5, when), (DAY, 9, "x", None, None)]


def test_replace_insert_missing_and_delete(spark, warehouse):
    first = delta_io.frame_of_records(spark, [{"run_date": DAY, "campaign_id": 8, "label": "a", "value": 1.0},
                                              {"run_date": DAY, "campaign_id": 9, "label": "a", "value": 2.0}], SPEC)
    delta_io.replace_slice(spark, first, SPEC, warehouse, f"run_date = DATE'{DAY.isoformat()}'")
    assert _rows(spark, warehouse) == [(8, "a", 1.0), (9, "a", 2.0)]

    # Rows whose keys exist stay as they were; only the new key goes in.
    more = delta_io.frame_of_records(spark, [{"run_date": DAY, "campaign_id": 9, "label": "b", "value": 20.0},
                                             {"run_date": DAY, "campaign_id": 10, "label": "b", "value": 3.0}], SPEC)
    delta_io.insert_missing(spark, more, SPEC, warehouse)
    assert _rows(spark, warehouse) == [(8, "a", 1.0), (9, "a", 2.0), (10, "b", 3.0)]

    version = delta_io.delete_where(spark, SPEC, warehouse, "campaign_id = 9")
    assert _rows(spark, warehouse) == [(8, "a", 1.0), (10, "b", 3.0)]
    # Created (0), the slice (1), the insert (2), the delete (3): one commit each.
    assert version == delta_io.table_version(spark, SPEC, warehouse) == 3

    # Replacing the slice again gives exactly the new slice (a rerun of the same date).
    delta_io.replace_slice(spark, first, SPEC, warehouse, f"run_date = DATE'{DAY.isoformat()}'")
    assert _rows(spark, warehouse) == [(8, "a", 1.0), (9, "a", 2.0)]


def test_compare_and_set_lets_one_of_two_concurrent_writers_win(spark, config_for):
    """Two threads insert the same key at once with different owners: exactly one is told it won, the
    table holds its row only; a later writer of the same key loses; an unrelated key is unaffected."""
    import threading

    warehouse = config_for("delta_cas").warehouse

    def row(campaign_id: int, label: str):
        return delta_io.frame_of_records(spark, [{"run_date": DAY, "campaign_id": campaign_id, "label": label,
                                                  "value": 1.0}], SPEC)

    delta_io.insert_missing(spark, row(1, "first"), SPEC, warehouse)  # the table exists before the race
    results: dict[str, bool] = {}
    barrier = threading.Barrier(2)

    def writer(label: str) -> None:
        frame = row(2, label)
        barrier.wait()
        results[label] = delta_io.compare_and_set(spark, frame, SPEC, warehouse, "label")

    threads = [threading.Thread(target=writer, args=(label,)) for label in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == [False, True]
    winner = next(label for label, won in results.items() if won)
    assert _rows(spark, warehouse) == [(1, "first", 1.0), (2, winner, 1.0)]
    assert delta_io.compare_and_set(spark, row(2, "late"), SPEC, warehouse, "label") is False
    assert delta_io.compare_and_set(spark, row(3, "new"), SPEC, warehouse, "label") is True
    assert _rows(spark, warehouse) == [(1, "first", 1.0), (2, winner, 1.0), (3, "new", 1.0)]


def test_the_version_is_the_latest_commit_whoever_made_it(spark, warehouse):
    """table_version reads the DeltaLog brought up to date: a commit by another writer (here delta-rs, outside
    this Spark session) counts, and it agrees with DESCRIBE HISTORY."""
    from deltalake import DeltaTable, write_deltalake

    flat = TableSpec("gold", "delta_io_version_test",
                     StructType([StructField("campaign_id", LongType()), StructField("value", DoubleType())]),
                     keys=("campaign_id",))
    rows = delta_io.frame_of_records(spark, [{"campaign_id": 1, "value": 1.0}], flat)
    delta_io.insert_missing(spark, rows, flat, warehouse)
    path = delta_io.table_path(warehouse, flat)
    assert delta_io.table_version(spark, flat, warehouse) == 1 == delta_io.history_version(spark, path)
    write_deltalake(path, DeltaTable(path).to_pyarrow_table(), mode="append")
    assert delta_io.table_version(spark, flat, warehouse) == 2 == delta_io.history_version(spark, path)
    assert delta_io.latest_version(spark, path) == 2


# Not partitioned: a slice is a predicate on a column, and a file can hold several slices.
SLICES = TableSpec("gold", "delta_io_slices",
                   StructType([StructField("run_id", StringType()), StructField("campaign_id", LongType())]))


def test_a_replaced_slices_rows_come_from_its_commit_and_equal_a_count(spark, config_for):
    """slice_rows reads a replaceWhere write's rows from its own commit (no query): the new rows, not the rows of
    other slices it copied out of a file it rewrote, and 0 for an emptied slice. Any other commit (the table's
    overwrite, another slice's write, one made with Delta's metrics off) is counted at that version."""
    warehouse = config_for("delta_io_slices").warehouse
    path = delta_io.table_path(warehouse, SLICES)

    def frame(run_id: str, n: int):
        return delta_io.frame_of_records(spark, [{"run_id": run_id, "campaign_id": k} for k in range(n)], SLICES)

    # One file holding three runs' rows: a 3, b 5, c 2.
    created = delta_io.overwrite_table(spark, frame("a", 3).unionByName(frame("b", 5)).unionByName(frame("c", 2))
                                       .coalesce(1), SLICES, warehouse)
    a, b, c, d, e = (f"run_id = '{run}'" for run in "abcde")
    b_replaced = delta_io.replace_slice(spark, frame("b", 4), SLICES, warehouse, b)
    c_emptied = delta_io.replace_slice(spark, frame("c", 0), SLICES, warehouse, c)
    d_added = delta_io.replace_slice(spark, frame("d", 6), SLICES, warehouse, d)
    assert [delta_io.written_slice_rows(spark, path, version, predicate)
            for version, predicate in ((b_replaced, b), (c_emptied, c), (d_added, d))] == [4, 0, 6]
    assert delta_io.written_slice_rows(spark, path, created, b) is None  # an overwrite: no predicate
    assert delta_io.written_slice_rows(spark, path, d_added, b) is None  # another slice's write
    assert delta_io.written_slice_rows(spark, path, d_added + 1, d) is None  # no such commit (yet)
    assert delta_io.slice_rows(spark, SLICES, warehouse, created, b) == 5
    assert [delta_io.slice_rows(spark, SLICES, warehouse, d_added, p) for p in (a, b, c, d)] == [3, 4, 0, 6]

    spark.conf.set("spark.databricks.delta.history.metricsEnabled", "false")
    try:
        e_added = delta_io.replace_slice(spark, frame("e", 2), SLICES, warehouse, e)
    finally:
        spark.conf.unset("spark.databricks.delta.history.metricsEnabled")
    assert delta_io.written_slice_rows(spark, path, e_added, e) is None
    assert delta_io.slice_rows(spark, SLICES, warehouse, e_added, e) == 2
