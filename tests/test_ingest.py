"""Ingest on real Spark + Delta: reconciliation, quarantine reasons, refused input, reruns.

Expected values are computed here, independently, with pyarrow/pandas from
the fixture files; the code under test only produces the actual values.
Bronze tables are read back by path (<warehouse>/bronze/<table>): the
session's catalog names point at the session warehouse only.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from promo_roi.ingest import run_ingest
from promo_roi.validation import (
    MissingColumnError,
    MissingTableError,
    QuarantineThresholdError,
    VolumeError,
    WrongTypeError,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
TABLES = (
    "products", "campaign_descriptions", "transactions", "demographics",
    "campaigns", "coupons", "coupon_redemptions", "promotions",
)
DATA_START = pd.Timestamp("2017-01-01")
DATA_END_EXCLUSIVE = pd.Timestamp("2018-01-02")   # data_end 2018-01-01 is inclusive
UNKNOWN_PRODUCT = 999_999_999
UNKNOWN_HOUSEHOLD = 990_000
UNKNOWN_CAMPAIGN = 99
QUARANTINE_SCHEMA = StructType([
    StructField("source_table", StringType()), StructField("reason", StringType()),
    StructField("count", LongType()),
])


# --- independent expectations ------------------------------------------------------

def read_source(source: Path | str, table: str) -> pd.DataFrame:
    return pd.read_parquet(Path(source) / f"{table}.parquet")


def expected_fixture_quarantine(source: Path | str) -> Counter:
    """(table, reason) -> rows the ingest must refuse, for the undamaged fixture.

    Only three defects occur in the fixture (checked by
    ``test_fixture_has_only_known_defects``): real transaction lines for
    products missing from the product master, real lines with a nonpositive
    quantity but positive sales, and real exact duplicate coupon rows.
    """
    products = read_source(source, "products")
    tx = read_source(source, "transactions")
    coupons = read_source(source, "coupons")
    nonpositive = (tx["quantity"] <= 0) & (tx["sales_value"] > 0)
    unknown = ~tx["product_id"].isin(products["product_id"]) & ~nonpositive
    expected = Counter({
        ("transactions", "nonpositive_quantity_with_sales"): int(nonpositive.sum()),
        ("transactions", "unknown_product"): int(unknown.sum()),
        ("coupons", "exact_duplicate"): int(coupons.duplicated().sum()),
    })
    return +expected   # drops zero counts


def quarantine_counts(spark, warehouse_root: str) -> Counter:
    rows = (
        spark.read.format("delta").load(f"{warehouse_root}/bronze/quarantine")
        .groupBy("source_table", "reason").count().collect()
    )
    return Counter({(r["source_table"], r["reason"]): r["count"] for r in rows})


def bronze_path(config, table: str) -> str:
    return f"{config.warehouse.root}/bronze/{table}"


def bronze_count(spark, config, table: str) -> int:
    return spark.read.format("delta").load(bronze_path(config, table)).count()


def last_commit(spark, config, table: str):
    return spark.sql(f"DESCRIBE HISTORY delta.`{bronze_path(config, table)}` LIMIT 1").first()


def bronze_state(spark, config) -> dict[str, object]:
    """Every bronze table's latest Delta version, and every file under <warehouse>/bronze.

    Read from the file system, so taking it is cheap: equal states before and
    after a run mean the run committed nothing and wrote no data file.
    """
    bronze = Path(config.warehouse.root) / "bronze"
    versions = {
        table: max(int(p.stem) for p in (bronze / table / "_delta_log").glob("*.json"))
        for table in (*TABLES, "quarantine", "ingest_audit")
    }
    files = {str(p.relative_to(bronze)): (p.stat().st_size, p.stat().st_mtime_ns)
             for p in bronze.rglob("*") if p.is_file()}
    return {"versions": versions, "files": files}


def assert_quarantine_equals(spark, warehouse_root: str, expected: Counter) -> None:
    actual = (
        spark.read.format("delta").load(f"{warehouse_root}/bronze/quarantine")
        .groupBy("source_table", "reason").count()
    )
    expected_df = spark.createDataFrame(
        [(t, r, n) for (t, r), n in sorted(expected.items())], QUARANTINE_SCHEMA
    )
    # bronze.quarantine's columns carry their catalogue descriptions as comments (tests/test_catalogue.py).
    assert_df_equality(actual, expected_df, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)


# --- the shared ingest of the good fixture -------------------------------------------

@pytest.fixture(scope="module")
def good_ingest(ingested, copy_warehouse):
    """The session's one ingest of the fixture (conftest ``ingested``), in a copy this module may write to."""
    config, results = ingested
    return copy_warehouse(config, "good_ingest"), results


def test_fixture_has_only_known_defects(fixture_source: Path) -> None:
    """The preconditions of expected_fixture_quarantine, checked on the files."""
    src = {t: read_source(fixture_source, t) for t in TABLES}
    keys = {
        "products": ["product_id"], "campaign_descriptions": ["campaign_id", "start_date", "end_date"],
        "transactions": ["household_id", "basket_id", "product_id", "transaction_timestamp",
                         "quantity", "sales_value"],
        "demographics": ["household_id"], "campaigns": ["campaign_id", "household_id"],
        "coupons": ["coupon_upc", "product_id", "campaign_id"],
        "coupon_redemptions": ["household_id", "coupon_upc", "campaign_id", "redemption_date"],
        "promotions": ["product_id", "store_id", "week"],
    }
    for table, cols in keys.items():
        assert not src[table][cols].isna().any().any(), table
    tx, cd = src["transactions"], src["campaign_descriptions"]
    assert (tx["sales_value"] >= 0).all()
    assert tx["transaction_timestamp"].between(DATA_START, DATA_END_EXCLUSIVE, inclusive="left").all()
    assert tx["week"].between(1, 53).all() and src["promotions"]["week"].between(1, 53).all()
    rd = src["coupon_redemptions"]["redemption_date"]
    assert rd.between(DATA_START, DATA_END_EXCLUSIVE, inclusive="left").all()
    assert (cd["end_date"] >= cd["start_date"]).all()
    for table in ("products", "campaign_descriptions", "transactions", "demographics",
                  "campaigns", "coupon_redemptions", "promotions"):
        assert not src[table].duplicated().any(), table
    assert not src["products"]["product_id"].duplicated().any()
    assert not src["demographics"]["household_id"].duplicated().any()
    assert len(cd) == 27
    households = set(tx["household_id"])
    products = set(src["products"]["product_id"])
    campaigns = set(cd["campaign_id"])
    assert set(src["demographics"]["household_id"]) <= households
    assert set(src["campaigns"]["household_id"]) <= households
    assert set(src["campaigns"]["campaign_id"]) <= campaigns
    assert set(src["coupons"]["campaign_id"]) == campaigns
    assert set(src["coupons"]["product_id"]) <= products
    assert set(src["promotions"]["product_id"]) <= products
    assert set(src["coupon_redemptions"]["household_id"]) <= households
    coupon_keys = set(zip(src["coupons"]["coupon_upc"], src["coupons"]["campaign_id"]))
    assert set(zip(src["coupon_redemptions"]["coupon_upc"], src["coupon_redemptions"]["campaign_id"])) <= coupon_keys
    # the real defects the fixture is meant to carry
    expected = expected_fixture_quarantine(fixture_source)
    assert expected[("transactions", "unknown_product")] > 0
    assert expected[("transactions", "nonpositive_quantity_with_sales")] > 0
    assert expected[("coupons", "exact_duplicate")] > 0
    # the fixture's households: targeted by the Type A campaigns, redeemers, with/without demographics
    targeted = src["campaigns"]
    for campaign in (8, 13, 18):
        assert (targeted["campaign_id"] == campaign).sum() >= 4
    assert len(households) >= 50
    assert 0 < len(src["demographics"]) < len(households)
    assert len(households - set(targeted["household_id"])) >= 10
    assert src["coupon_redemptions"]["household_id"].nunique() >= 5


# --- (a) reconciliation of the good fixture ------------------------------------------

def test_good_fixture_reconciles_per_table(spark, good_ingest, fixture_source) -> None:
    config, results = good_ingest
    expected_q = expected_fixture_quarantine(fixture_source)
    assert_quarantine_equals(spark, config.warehouse.root, expected_q)
    for table in TABLES:
        rows = pq.read_metadata(fixture_source / f"{table}.parquet").num_rows
        quarantined = sum(n for (t, _), n in expected_q.items() if t == table)
        assert bronze_count(spark, config, table) == rows - quarantined, table
        r = results[table]
        assert (r.rows_read, r.rows_written, r.rows_quarantined) == (rows, rows - quarantined, quarantined)
        assert r.quarantined_by_reason == {reason: n for (t, reason), n in expected_q.items() if t == table}


def test_good_fixture_within_default_thresholds(app_config, fixture_source) -> None:
    expected_q = expected_fixture_quarantine(fixture_source)
    for table in TABLES:
        rows = pq.read_metadata(fixture_source / f"{table}.parquet").num_rows
        quarantined = sum(n for (t, _), n in expected_q.items() if t == table)
        assert quarantined / rows <= app_config.quality.threshold_for(table), table


def test_bronze_transactions_hold_exactly_the_good_rows(spark, good_ingest, fixture_source) -> None:
    config, _ = good_ingest
    products = read_source(fixture_source, "products")
    tx = read_source(fixture_source, "transactions")
    good = tx[~((tx["quantity"] <= 0) & (tx["sales_value"] > 0)) & tx["product_id"].isin(products["product_id"])]
    bronze = spark.read.format("delta").load(bronze_path(config, "transactions")).toPandas()
    order = ["household_id", "basket_id", "product_id", "transaction_timestamp"]
    pd.testing.assert_frame_equal(
        bronze[list(tx.columns)].sort_values(order).reset_index(drop=True),
        good.sort_values(order).reset_index(drop=True),
        check_dtype=False,
    )


def test_bronze_schema_and_timestamps(spark, good_ingest, fixture_source) -> None:
    config, _ = good_ingest
    cd = spark.read.format("delta").load(bronze_path(config, "campaign_descriptions"))
    assert dict(cd.dtypes) == {
        "campaign_id": "bigint", "campaign_type": "string", "start_date": "timestamp", "end_date": "timestamp",
    }
    # wall-clock times survive parquet INT96 -> Spark -> Delta unchanged (session time zone UTC)
    row = cd.filter(F.col("campaign_id") == 8).first()
    assert (row["start_date"], row["end_date"]) == (dt.datetime(2017, 5, 8), dt.datetime(2017, 6, 25))
    audit = spark.read.format("delta").load(bronze_path(config, "ingest_audit"))
    assert sorted(r["source_table"] for r in audit.collect()) == sorted(TABLES)


def test_quarantine_records_are_the_source_rows(spark, good_ingest, fixture_source) -> None:
    config, _ = good_ingest
    q = spark.read.format("delta").load(f"{config.warehouse.root}/bronze/quarantine")
    coupons = read_source(fixture_source, "coupons")
    # each coupon row with k copies in the source leaves k - 1 copies in the quarantine
    copies = coupons.value_counts()
    expected = Counter({tuple(int(v) for v in key): n - 1 for key, n in copies.items() if n > 1})
    records = [json.loads(r["record"]) for r in q.filter("source_table = 'coupons'").collect()]
    actual = Counter((r["coupon_upc"], r["product_id"], r["campaign_id"]) for r in records)
    assert actual == expected


# --- (b) every bad-input case lands in the quarantine with its reason ------------------

# (table, reason) -> rows injected into the damaged copy below
INJECTED = Counter({
    ("products", "null_key(product_id)"): 1,
    ("products", "exact_duplicate"): 1,
    ("products", "conflicting_duplicate_key"): 2,
    ("campaign_descriptions", "end_before_start"): 1,
    ("campaign_descriptions", "null_key(start_date)"): 1,
    ("transactions", "null_key(household_id)"): 1,
    ("transactions", "null_key(basket_id)"): 1,
    ("transactions", "null_key(quantity)"): 1,
    ("transactions", "non_finite(sales_value)"): 2,
    ("transactions", "non_finite(coupon_disc)"): 1,
    ("transactions", "nonpositive_quantity_with_sales"): 2,
    ("transactions", "negative_sales_value"): 1,
    ("transactions", "transaction_timestamp_outside_data_range"): 2,
    ("transactions", "week_outside_data_range"): 1,
    ("transactions", "transaction_timestamp_outside_week"): 1,
    ("transactions", "unknown_product"): 2,
    ("transactions", "exact_duplicate"): 2,
    ("demographics", "null_key(household_id)"): 1,
    ("demographics", "unknown_household"): 1,
    ("demographics", "exact_duplicate"): 1,
    ("demographics", "conflicting_duplicate_key"): 2,
    ("campaigns", "null_key(campaign_id)"): 1,
    ("campaigns", "unknown_campaign"): 2,
    ("campaigns", "unknown_household"): 1,
    ("campaigns", "exact_duplicate"): 1,
    ("coupons", "null_key(coupon_upc)"): 1,
    ("coupons", "unknown_campaign"): 1,
    ("coupons", "unknown_product"): 1,
    ("coupon_redemptions", "redemption_date_outside_data_range"): 1,
    ("coupon_redemptions", "unknown_household"): 1,
    ("coupon_redemptions", "unknown_campaign"): 1,
    ("coupon_redemptions", "unknown_coupon"): 1,
    ("coupon_redemptions", "exact_duplicate"): 1,
    ("promotions", "null_key(product_id)"): 1,
    ("promotions", "week_outside_data_range"): 1,
    ("promotions", "unknown_display_location"): 2,
    ("promotions", "unknown_mailer_location"): 2,
    ("promotions", "unknown_product"): 1,
    ("promotions", "exact_duplicate"): 1,
})
BAD_PRODUCT = 990_000_001          # injected twice with different brands: conflicting
BAD_CAMPAIGN = 98                  # injected with end before start: not a good campaign
BOUNDARY_BASKET = 88_000_000_002   # a line on the last second of the data: good


def damage_everything(src) -> None:
    """Injects rows whose reasons are known by construction (see INJECTED)."""
    products = src.read("products").to_pylist()
    p0 = products[0]
    src.append("products", [
        {**p0, "product_id": None},
        dict(p0),
        {**p0, "product_id": BAD_PRODUCT, "brand": "National"},
        {**p0, "product_id": BAD_PRODUCT, "brand": "Private"},
    ])
    src.append("campaign_descriptions", [
        {"campaign_id": BAD_CAMPAIGN, "campaign_type": "Type B",
         "start_date": dt.datetime(2017, 5, 1), "end_date": dt.datetime(2017, 4, 1)},
        {"campaign_id": 97, "campaign_type": "Type B", "start_date": None, "end_date": dt.datetime(2017, 4, 1)},
    ])
    known_products = {p["product_id"] for p in products}
    tx = [t for t in src.read("transactions").to_pylist()
          if t["product_id"] in known_products and t["quantity"] > 0]
    t0 = {**tx[0], "basket_id": 88_000_000_001}
    src.append("transactions", [
        {**t0, "household_id": None},
        {**t0, "basket_id": None},
        {**t0, "quantity": None},
        {**t0, "sales_value": float("nan")},
        {**t0, "sales_value": float("inf")},
        {**t0, "coupon_disc": float("-inf")},
        {**t0, "quantity": 0, "sales_value": 2.5},
        {**t0, "quantity": -1, "sales_value": 0.5},
        {**t0, "quantity": 1, "sales_value": -1.0},
        {**t0, "transaction_timestamp": dt.datetime(2016, 12, 31, 23, 59, 59), "week": 1},
        {**t0, "transaction_timestamp": dt.datetime(2018, 1, 2, 0, 0, 1), "week": 53},
        {**t0, "basket_id": BOUNDARY_BASKET, "transaction_timestamp": dt.datetime(2018, 1, 1, 23, 59, 59),
         "week": 53},
        {**t0, "week": 54},
        {**t0, "week": t0["week"] + 2},              # dated two weeks before the week it names
        {**t0, "product_id": UNKNOWN_PRODUCT},
        {**t0, "product_id": BAD_PRODUCT},           # the conflicting product is not a good one
        dict(tx[1]), dict(tx[1]),                    # two more copies of a good line
    ])
    demographics = src.read("demographics").to_pylist()
    d0, d1 = demographics[0], demographics[1]
    src.append("demographics", [
        {**d0, "household_id": None},
        {**d0, "household_id": UNKNOWN_HOUSEHOLD},
        dict(d0),
        {**d1, "income": "250K+" if d1["income"] != "250K+" else "Under 15K"},  # conflicts with d1
    ])
    c0 = src.read("campaigns").to_pylist()[0]
    src.append("campaigns", [
        {**c0, "campaign_id": None},
        {**c0, "campaign_id": UNKNOWN_CAMPAIGN},
        {**c0, "campaign_id": BAD_CAMPAIGN},
        {**c0, "household_id": UNKNOWN_HOUSEHOLD},
        dict(c0),
    ])
    k0 = src.read("coupons").to_pylist()[0]
    src.append("coupons", [
        {**k0, "coupon_upc": None},
        {**k0, "campaign_id": UNKNOWN_CAMPAIGN},
        {**k0, "product_id": UNKNOWN_PRODUCT},
    ])
    r0 = src.read("coupon_redemptions").to_pylist()[0]
    src.append("coupon_redemptions", [
        {**r0, "redemption_date": dt.datetime(2018, 2, 1)},
        {**r0, "household_id": UNKNOWN_HOUSEHOLD},
        {**r0, "campaign_id": UNKNOWN_CAMPAIGN},
        {**r0, "coupon_upc": 1},
        dict(r0),
    ])
    m0 = src.read("promotions").to_pylist()[0]
    src.append("promotions", [
        {**m0, "product_id": None},
        {**m0, "week": 0},
        {**m0, "display_location": "B"},      # no such display location
        {**m0, "display_location": None},
        {**m0, "display_location": "0", "mailer_location": "Q"},  # no such mailer location
        {**m0, "display_location": "0", "mailer_location": "a"},  # codes are upper case
        {**m0, "product_id": UNKNOWN_PRODUCT},
        dict(m0),
    ])


@pytest.fixture(scope="module")
def damaged_ingest(spark, config_for, fixture_copy):
    src = fixture_copy("damaged")
    damage_everything(src)
    # Thresholds out of the way: this ingest is about reasons, not shares.
    config = config_for("damaged", quality={"max_quarantine_share": 0.5, "max_quarantine_share_by_table": {}})
    results = run_ingest(spark, config, str(src))
    return src, config, results


def test_promotion_codes_outside_the_datas_vocabulary_are_flagged_by_column(spark) -> None:
    from promo_roi.promotion_codes import DISPLAY_LOCATIONS, MAILER_LOCATIONS
    from promo_roi.quality import REASON, flag_unknown_code

    rows = [("0", "A"), ("A", "0"), ("B", "A"), (None, "A"), ("0", "a"), ("9", "P"), ("8", "Q")]
    frame = spark.createDataFrame(rows, "display_location string, mailer_location string")
    flagged = (frame.transform(flag_unknown_code("display_location", DISPLAY_LOCATIONS))
               .transform(flag_unknown_code("mailer_location", MAILER_LOCATIONS)))
    # The first rule broken names the row's reason ("8": the data define no display location 8).
    assert [r[REASON] for r in flagged.collect()] == [
        None, None, "unknown_display_location", "unknown_display_location", "unknown_mailer_location", None,
        "unknown_display_location"]


def test_a_line_dated_outside_its_week_is_flagged(spark, app_config) -> None:
    """A week's lines are dated in the 8 days up to its end date (the data's weeks share their boundary day)."""
    from promo_roi.quality import REASON, flag_outside_week

    end = app_config.source.week_end(3)
    days = [end - dt.timedelta(days=8), end - dt.timedelta(days=7), end, end + dt.timedelta(days=1)]
    rows = [(3, dt.datetime.combine(day, dt.time(23, 59, 59))) for day in days]
    frame = spark.createDataFrame(rows, "week long, transaction_timestamp timestamp")
    flagged = frame.transform(flag_outside_week("transaction_timestamp", app_config.source))
    outside = "transaction_timestamp_outside_week"
    assert [r[REASON] for r in flagged.collect()] == [outside, None, None, outside]


def test_bad_rows_quarantined_with_reason(spark, damaged_ingest, fixture_source) -> None:
    src, config, _ = damaged_ingest
    expected = expected_fixture_quarantine(fixture_source) + INJECTED
    assert_quarantine_equals(spark, config.warehouse.root, expected)


def test_damaged_input_reconciles(spark, damaged_ingest, fixture_source) -> None:
    src, config, results = damaged_ingest
    expected = expected_fixture_quarantine(fixture_source) + INJECTED
    for table in TABLES:
        rows = src.read(table).num_rows
        quarantined = sum(n for (t, _), n in expected.items() if t == table)
        assert bronze_count(spark, config, table) == rows - quarantined, table
        assert (results[table].rows_read, results[table].rows_quarantined) == (rows, quarantined)
    # a second warehouse in the same session gets every table of its own, the audit included
    audit = spark.read.format("delta").load(bronze_path(config, "ingest_audit"))
    assert {r["source_table"]: r["rows_read"] for r in audit.collect()} == {
        t: src.read(t).num_rows for t in TABLES
    }


def test_quarantine_record_keeps_nulls_and_values(spark, damaged_ingest) -> None:
    _, config, _ = damaged_ingest
    q = spark.read.format("delta").load(f"{config.warehouse.root}/bronze/quarantine")
    (neg,) = q.filter("reason = 'negative_sales_value'").collect()
    record = json.loads(neg["record"])
    assert (record["basket_id"], record["quantity"], record["sales_value"]) == (88_000_000_001, 1, -1.0)
    (null_hh,) = q.filter("source_table = 'transactions' AND reason = 'null_key(household_id)'").collect()
    record = json.loads(null_hh["record"])
    assert "household_id" in record and record["household_id"] is None
    (late,) = q.filter("reason = 'redemption_date_outside_data_range'").collect()
    assert json.loads(late["record"])["redemption_date"].startswith("2018-02-01T00:00:00")


def test_boundary_rows_are_kept(spark, damaged_ingest) -> None:
    _, config, _ = damaged_ingest
    tx = spark.read.format("delta").load(bronze_path(config, "transactions"))
    (row,) = tx.filter(F.col("basket_id") == BOUNDARY_BASKET).collect()
    assert row["transaction_timestamp"] == dt.datetime(2018, 1, 1, 23, 59, 59)
    products = spark.read.format("delta").load(bronze_path(config, "products"))
    assert products.filter(F.col("product_id") == BAD_PRODUCT).count() == 0


# --- (c) refused input: specific error, nothing written ---------------------------------

def _drop_table(src):
    src.drop_table("coupons")


def _drop_column(src):
    src.drop_column("promotions", "week")


def _wrong_type(src):
    src.cast_column("transactions", "quantity", pa.string())


def _wrong_timestamp_type(src):
    src.cast_column("coupon_redemptions", "redemption_date", pa.string())


@pytest.mark.parametrize(
    ("damage", "error", "names"),
    [
        (_drop_table, MissingTableError, ["coupons", "coupons.parquet"]),
        (_drop_column, MissingColumnError, ["promotions", "week"]),
        (_wrong_type, WrongTypeError, ["transactions", "quantity", "string", "bigint"]),
        (_wrong_timestamp_type, WrongTypeError, ["coupon_redemptions", "redemption_date", "timestamp"]),
    ],
    ids=["missing_table", "missing_column", "wrong_type", "wrong_timestamp_type"],
)
def test_refused_input_writes_nothing(spark, good_ingest, fixture_copy, damage, error, names) -> None:
    config, _ = good_ingest
    src = fixture_copy(damage.__name__.strip("_"))
    damage(src)
    before = bronze_state(spark, config)
    with pytest.raises(error) as info:
        run_ingest(spark, config, str(src))
    for name in names:
        assert name in str(info.value)
    assert bronze_state(spark, config) == before


# --- (d) quarantine share above the threshold -------------------------------------------

def test_quarantine_threshold_refuses_and_writes_nothing(spark, good_ingest, fixture_copy, fixture_source) -> None:
    config, _ = good_ingest
    src = fixture_copy("threshold")
    tx = src.read("transactions")
    rows = tx.num_rows
    late = 600
    template = tx.slice(0, 1).to_pylist()[0]
    src.append("transactions", [
        {**template, "basket_id": 77_000_000_000 + i, "transaction_timestamp": dt.datetime(2018, 3, 1)}
        for i in range(late)
    ])
    baseline = sum(n for (t, _), n in expected_fixture_quarantine(fixture_source).items() if t == "transactions")
    share = (baseline + late) / (rows + late)
    assert share > config.quality.threshold_for("transactions")   # the case is really above 2%
    before = bronze_state(spark, config)
    with pytest.raises(QuarantineThresholdError) as info:
        run_ingest(spark, config, str(src))
    message = str(info.value)
    assert "source table transactions" in message
    assert f"transaction_timestamp_outside_data_range: {late:,}" in message
    assert f"{baseline + late:,} of {rows + late:,} rows" in message
    assert bronze_state(spark, config) == before


# --- (d') volume: an empty file, a truncated export -------------------------------------

def test_an_empty_source_table_is_refused_and_writes_nothing(spark, good_ingest, fixture_copy) -> None:
    config, _ = good_ingest
    src = fixture_copy("empty_promotions")
    src.write("promotions", src.read("promotions").slice(0, 0))
    before = bronze_state(spark, config)
    with pytest.raises(VolumeError, match="source table promotions is empty: refusing to replace bronze.promotions"):
        run_ingest(spark, config, str(src))
    assert bronze_state(spark, config) == before


def test_a_truncated_source_table_is_refused_against_the_previous_ingest(spark, good_ingest, fixture_copy) -> None:
    config, results = good_ingest
    src = fixture_copy("half_transactions")
    tx = src.read("transactions")
    kept = tx.num_rows // 2
    src.write("transactions", tx.slice(0, kept))
    previous = results["transactions"].rows_read
    before = bronze_state(spark, config)
    with pytest.raises(VolumeError) as info:
        run_ingest(spark, config, str(src))
    assert f"source table transactions: {kept:,} rows, {1 - kept / previous:.1%} fewer than the {previous:,}" \
        in str(info.value)
    assert bronze_state(spark, config) == before


# --- (e)+(f) the job: rerun is idempotent, bad input exits 2 -----------------------------

def load_job_main():
    spec = importlib.util.spec_from_file_location("jobs_ingest", REPO_ROOT / "jobs" / "ingest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def job_args(config, source, overrides) -> list[str]:
    """Arguments that give main() the test session's own settings (so getOrCreate reuses it)."""
    args = ["--profile", "local", "--source", str(source), "--log-level", "WARNING"]
    for override in overrides(config.warehouse.root):
        args += ["--set", override]
    return args


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("PROMO_ROI"):
            monkeypatch.delenv(name)


def test_rerun_through_the_job_is_idempotent(spark, good_ingest, fixture_source, clean_env, job_overrides) -> None:
    config, _ = good_ingest
    q_path = f"{config.warehouse.root}/bronze/quarantine"
    quarantine_before = sorted(tuple(r) for r in spark.read.format("delta").load(q_path).collect())
    counts_before = {t: bronze_count(spark, config, t) for t in TABLES}
    versions_before = {t: last_commit(spark, config, t)["version"] for t in (*TABLES, "quarantine")}

    assert load_job_main()(job_args(config, fixture_source, job_overrides)) == 0

    assert {t: bronze_count(spark, config, t) for t in TABLES} == counts_before
    for table in (*TABLES, "quarantine"):
        commit = last_commit(spark, config, table)
        assert commit["version"] == versions_before[table] + 1, table
        assert commit["operation"] == "WRITE", table
        assert commit["operationParameters"]["mode"] == "Overwrite", table
    quarantine_after = sorted(tuple(r) for r in spark.read.format("delta").load(q_path).collect())
    assert quarantine_after == quarantine_before          # same rows, not doubled
    assert_quarantine_equals(spark, config.warehouse.root, expected_fixture_quarantine(fixture_source))
    audit = spark.read.format("delta").load(bronze_path(config, "ingest_audit"))
    assert audit.count() == len(TABLES)                   # merged on source_table, not appended


@pytest.mark.parametrize("damage", [_drop_column], ids=["missing_column"])
def test_job_exits_2_on_bad_input(spark, good_ingest, fixture_copy, clean_env, job_overrides, damage) -> None:
    config, _ = good_ingest
    src = fixture_copy(f"job{damage.__name__}")
    damage(src)
    before = bronze_state(spark, config)
    assert load_job_main()(job_args(config, src, job_overrides)) == 2
    assert bronze_state(spark, config) == before


def test_job_exits_2_on_threshold(spark, good_ingest, fixture_copy, clean_env, job_overrides) -> None:
    config, _ = good_ingest
    src = fixture_copy("job_threshold")
    d0 = src.read("demographics").to_pylist()[0]
    src.append("demographics", [{**d0, "household_id": UNKNOWN_HOUSEHOLD}])   # 1 of 27 rows > 2%
    before = bronze_state(spark, config)
    assert load_job_main()(job_args(config, src, job_overrides)) == 2
    assert bronze_state(spark, config) == before


def test_job_exits_2_on_bad_config(clean_env, fixture_source) -> None:
    assert load_job_main()(["--profile", "no-such-profile", "--source", str(fixture_source)]) == 2


def test_readers_see_only_the_published_bronze_snapshot(spark, ingested, copy_warehouse) -> None:
    """bronze.ingest_audit is bronze's commit point: an ingest killed after rewriting some tables, or a
    write behind ingest's back, changes nothing downstream jobs read (check_quality reports it); an
    audit that is missing, incomplete or mixes two ingests is refused (exit 2)."""
    import shutil

    from promo_roi import delta_io
    from promo_roi.bronze import UnpublishedBronzeError, read_bronze
    from promo_roi.ingest_checks import IngestAuditError, check_ingest_audit
    from promo_roi.tables import INGEST_AUDIT, SOURCE_TABLES

    config, results = ingested
    config = copy_warehouse(config, "bronze_snapshot")
    written = {table: result.rows_written for table, result in results.items()}

    def seen() -> dict[str, int]:
        bronze = read_bronze(spark, config)
        return {table: getattr(bronze, table).count() for table in SOURCE_TABLES}

    assert seen() == written
    transactions, campaigns = SOURCE_TABLES["transactions"], SOURCE_TABLES["campaigns"]
    # A killed ingest: transactions rewritten with 10 rows, then nothing more (no audit).
    partial = delta_io.read_table(spark, transactions, config.warehouse).limit(10)
    delta_io.overwrite_table(spark, partial.localCheckpoint(), transactions, config.warehouse)
    # A planner's stray INSERT into a bronze table.
    stray = delta_io.read_table(spark, campaigns, config.warehouse).limit(1)
    stray.write.format("delta").mode("append").save(delta_io.table_path(config.warehouse, campaigns))
    assert seen() == written
    with pytest.raises(IngestAuditError, match="transactions is at Delta version .* something wrote to it"):
        check_ingest_audit(spark, config)

    audit = delta_io.read_table(spark, INGEST_AUDIT, config.warehouse)
    later = audit.filter(F.col("source_table") == "coupons").withColumn(
        "ingested_at", F.col("ingested_at") + F.expr("INTERVAL 1 HOUR"))
    delta_io.merge_by_keys(spark, later.localCheckpoint(), INGEST_AUDIT, config.warehouse)
    with pytest.raises(UnpublishedBronzeError, match="mixes ingests"):
        read_bronze(spark, config)
    delta_io.delete_where(spark, INGEST_AUDIT, config.warehouse, F.col("source_table") == "coupons")
    with pytest.raises(UnpublishedBronzeError, match="no published version of coupons"):
        read_bronze(spark, config)
    shutil.rmtree(delta_io.table_path(config.warehouse, INGEST_AUDIT))
    with pytest.raises(UnpublishedBronzeError, match="no ingest has published bronze; run jobs/ingest.py"):
        read_bronze(spark, config)
