"""Point-in-time feature tables: hand-computed values, the no-leak rule, idempotent reruns."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from conftest import InjectedFault, fail_at
from delta.tables import DeltaTable
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, IntegerType, LongType, StringType, StructField, StructType

from promo_roi import delta_io
from promo_roi.config import FeatureConfig, SourceConfig
from promo_roi.features import (
    build_campaign_exposures,
    build_campaign_features_on,
    build_features,
    build_item_features,
    build_user_features,
    build_user_features_on,
    exposure_windows,
)
from promo_roi.ingest import run_ingest
from promo_roi.tables import SOURCE_TABLES, silver_specs

SOURCE = SourceConfig(
    path=None,
    data_start=dt.date(2017, 1, 1),
    data_end=dt.date(2018, 1, 1),
    first_week=1,
    last_week=53,
    week_one_end=dt.date(2017, 1, 2),
)
AS_OF = dt.date(2017, 7, 1)


def _ts(day: str) -> dt.datetime:
    # Noon, so no time-zone shift can move a row to another day.
    return dt.datetime.fromisoformat(day + "T12:00:00")


def _bronze(spark, table: str, rows: list[tuple]):
    return spark.createDataFrame(rows, SOURCE_TABLES[table].struct)


# --- hand-computed values on tiny inline data -----------------------------------------


def test_exposure_windows_clip_to_data_and_as_of(spark):
    desc = _bronze(spark, "campaign_descriptions", [
        (1, "Type B", _ts("2017-03-01"), _ts("2017-03-10")),  # fully observed
        (2, "Type C", _ts("2016-12-25"), _ts("2017-01-04")),  # starts before the data
        (3, "Type A", _ts("2017-06-25"), _ts("2017-07-05")),  # runs past as_of
        (4, "Type B", _ts("2017-07-01"), _ts("2017-07-20")),  # starts on as_of: not yet
    ])
    got = exposure_windows(desc, AS_OF, SOURCE).select(
        "campaign_id", "duration_days", "observed_days", "pre_observed_days", "censored", "censor_reason"
    )
    schema = StructType([
        StructField("campaign_id", LongType()), StructField("duration_days", IntegerType()),
        StructField("observed_days", IntegerType()), StructField("pre_observed_days", IntegerType()),
        StructField("censored", BooleanType()), StructField("censor_reason", StringType()),
    ])
    expected = spark.createDataFrame([
        (1, 10, 10, 10, False, None),
        (2, 11, 4, 0, True, "starts_before_data"),
        (3, 11, 6, 11, True, "ends_after_as_of"),
    ], schema)
    # Column comments (the catalogue's descriptions, tests/test_catalogue.py) ride along from the declared
    # source schemas; values and types are what is checked here.
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)


def test_exposure_window_past_the_end_of_the_data(spark):
    desc = _bronze(spark, "campaign_descriptions", [(5, "Type C", _ts("2017-12-20"), _ts("2018-01-10"))])
    row = exposure_windows(desc, dt.date(2018, 3, 1), SOURCE).first()
    assert (row.duration_days, row.observed_days, row.pre_observed_days) == (22, 13, 22)
    assert row.censored is True and row.censor_reason == "ends_after_data"


def test_campaign_exposures_hand_computed(spark):
    """As of 2017-07-01: campaign 7 (05-01..06-01, pre-period 03-30..04-30) has started, 8 has not.
    Household 9 is on 7's target list and never shopped: it is kept, with zero spend."""
    tx, _ = _purchases(spark)
    desc = _bronze(spark, "campaign_descriptions", [
        (7, "Type B", _ts("2017-05-01"), _ts("2017-06-01")),
        (8, "Type B", _ts("2017-08-01"), _ts("2017-09-01")),
    ])
    campaigns = _bronze(spark, "campaigns", [(7, 1), (7, 9), (8, 11)])
    coupons = _bronze(spark, "coupons", [(555, 200, 7), (556, 100, 8)])
    redemptions = _bronze(spark, "coupon_redemptions", [
        (1, 555, 7, _ts("2017-05-10")),
        (1, 555, 7, _ts("2017-05-20")),
        (4, 555, 7, _ts("2017-07-05")),  # after as_of: unseen
    ])
    got = build_campaign_exposures(tx, desc, campaigns, coupons, redemptions, AS_OF, SOURCE).select(
        "household_id", "campaign_id", "targeted", "duration_days", "observed_days", "pre_observed_days",
        "censored", "pre_spend", "spend", "pre_coupon_product_spend", "coupon_product_spend", "redemptions",
        "redeemed", "as_of_date")
    columns = ["household_id", "campaign_id", "targeted", "duration_days", "observed_days", "pre_observed_days",
               "censored", "pre_spend", "spend", "pre_coupon_product_spend", "coupon_product_spend",
               "redemptions", "redeemed", "as_of_date"]
    # Household 1 spent 3.0 on product 200 (a coupon product of 7) on 06-01, the window's last day; its
    # 03-15 line is before the pre-period. Household 2 is first seen after as_of, 11 only on 8's list.
    expected = pd.DataFrame([
        (1, 7, True, 32, 32, 32, False, 0.0, 3.0, 0.0, 3.0, 2, True, AS_OF),
        (4, 7, False, 32, 32, 32, False, 0.0, 0.0, 0.0, 0.0, 0, False, AS_OF),
        (9, 7, True, 32, 32, 32, False, 0.0, 0.0, 0.0, 0.0, 0, False, AS_OF),
    ], columns=columns)
    frame = got.toPandas().sort_values("household_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)


def _purchases(spark):
    """Transactions and products shared by the user-feature tests. As of 2017-07-01 they show household 1's
    lines dated before 07-01 and household 4; household 2 is first seen on 07-02."""
    tx = _bronze(spark, "transactions", [
        # household, store, basket, product, qty, sales, retail_disc, coupon_disc, match, week, ts
        (1, 10, 10, 100, 1, 5.0, 0.0, 0.0, 0.0, 26, _ts("2017-06-30")),
        (1, 10, 11, 200, 1, 3.0, 1.0, 0.0, 0.0, 22, _ts("2017-06-01")),
        (1, 10, 12, 100, 1, 100.0, 0.0, 0.0, 0.0, 27, _ts("2017-07-01")),
        (1, 10, 13, 100, 1, 2.0, 0.0, 0.5, 0.0, 11, _ts("2017-03-15")),
        (2, 10, 20, 100, 1, 50.0, 0.0, 0.0, 0.0, 27, _ts("2017-07-02")),
        (4, 10, 40, 200, 2, 4.0, 0.0, 0.0, 0.0, 1, _ts("2017-01-05")),
    ])
    products = _bronze(spark, "products", [
        (100, 1, "GROCERY", "National", "SOUP", "SOUP", "10 OZ"),
        (200, 1, "PRODUCE", "Private", "APPLES", "APPLES", None),
    ])
    return tx, products


def test_user_features_hand_computed(spark):
    tx, products = _purchases(spark)
    desc = _bronze(spark, "campaign_descriptions", [
        (7, "Type B", _ts("2017-05-01"), _ts("2017-06-01")),
        (8, "Type B", _ts("2017-08-01"), _ts("2017-09-01")),
    ])
    campaigns = _bronze(spark, "campaigns", [(7, 1), (8, 1)])
    redemptions = _bronze(spark, "coupon_redemptions", [
        (1, 555, 7, _ts("2017-05-10")),
        (1, 556, 7, _ts("2017-07-05")),  # after as_of: unseen
    ])
    demographics = _bronze(spark, "demographics", [(1, "45-54", "50-74K", None, "Married", "2", "2 Adults No Kids", "0")])
    features = FeatureConfig(rfm_windows_weeks=(4, 13, 26), spend_departments=("GROCERY", "PRODUCE"),
                             history_weeks=26, history_categories=10)

    got = build_user_features(tx, products, campaigns, desc, redemptions, demographics, AS_OF, features).select(
        "household_id", "first_purchase_date", "days_since_last_purchase",
        "baskets_4w", "spend_4w", "baskets_13w", "spend_13w", "baskets_26w", "spend_26w",
        "dept_spend_grocery", "dept_spend_produce", "dept_spend_other",
        "retail_discount_spend_share", "coupon_discount_spend_share",
        "campaigns_targeted", "campaigns_redeemed", "coupons_redeemed", "days_since_last_redemption",
        "has_demographics", "age", "home_ownership",
    )
    expected = spark.createDataFrame(
        [
            (1, dt.date(2017, 3, 15), 1, 1, 5.0, 2, 8.0, 3, 10.0, 7.0, 3.0, 0.0, 0.3, 0.2, 1, 1, 1, 52,
             True, "45-54", "unknown"),
            (4, dt.date(2017, 1, 5), 177, 0, 0.0, 0, 0.0, 1, 4.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0, 0, 0, None,
             False, "unknown", "unknown"),
        ],
        got.schema,
    )
    assert_approx_df_equality(got, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_item_features_hand_computed_and_a_week_with_two_placement_rows_counted_once(spark):
    def line(household, basket, product, quantity, sales, week):
        day = SOURCE.week_end(week) - dt.timedelta(days=1)
        return (household, 10, basket, product, quantity, sales, 0.0, 0.0, 0.0, week, _ts(day.isoformat()))

    tx = _bronze(spark, "transactions", [
        line(7, 1, 1, 2, 5.0, 1), line(8, 2, 1, 1, 3.0, 2), line(7, 3, 2, 4, 4.0, 1),
        line(7, 4, 1, 9, 90.0, 30),                    # dated after AS_OF: unseen
    ])
    products = _bronze(spark, "products", [(p, 100, "GROCERY", "National", "SOUP", "CANNED SOUP", "10 OZ")
                                           for p in (1, 2, 3)])
    promotions = _bronze(spark, "promotions", [
        (1, 10, "3", "A", 1), (1, 10, "0", "D", 1),    # two placement rows for one product, store and week
        (2, 10, "7", "0", 30),                         # a week that ends after AS_OF: unseen
    ])
    got = build_item_features(tx, products, promotions, AS_OF, SOURCE).select(
        "product_id", "units_sold", "sales_value", "households", "avg_unit_price", "weeks_sold", "display_weeks",
        "mailer_weeks", "sales_on_display", "sales_in_mailer", "sales_unpromoted")
    # Product 1: week 1 (5.0) on display and in the mailer, once each; week 2 (3.0) unpromoted.
    assert sorted(tuple(r) for r in got.collect()) == [
        (1, 3, 8.0, 2, 8.0 / 3, 2, 1, 1, 5.0, 5.0, 3.0),
        (2, 4, 4.0, 1, 1.0, 1, 0, 0, 0.0, 0.0, 4.0),
        (3, 0, 0.0, 0, None, 0, 0, 0, 0.0, 0.0, 0.0),
    ]


def test_user_features_on_several_dates_in_one_plan(spark):
    """build_user_features_on: the state of every household on each date, each date seeing only its past."""
    tx, products = _purchases(spark)
    desc = _bronze(spark, "campaign_descriptions", [
        (7, "Type B", _ts("2017-05-01"), _ts("2017-06-01")),
        (8, "Type B", _ts("2017-07-02"), _ts("2017-09-01")),
    ])
    campaigns = _bronze(spark, "campaigns", [(7, 1), (8, 1), (8, 2)])
    redemptions = _bronze(spark, "coupon_redemptions", [
        (1, 555, 7, _ts("2017-05-10")),
        (1, 556, 8, _ts("2017-07-02")),
    ])
    demographics = _bronze(spark, "demographics", [(1, "45-54", "50-74K", None, "Married", "2", "2 Adults No Kids", "0")])
    features = FeatureConfig(rfm_windows_weeks=(4, 13, 26), spend_departments=("GROCERY", "PRODUCE"),
                             history_weeks=26, history_categories=10)
    later = dt.date(2017, 7, 3)

    got = build_user_features_on(tx, products, campaigns, desc, redemptions, demographics, [later, AS_OF, later],
                                 features).select(
        "as_of_date", "household_id", "first_purchase_date", "days_since_last_purchase",
        "baskets_4w", "spend_4w", "baskets_13w", "spend_13w", "baskets_26w", "spend_26w",
        "dept_spend_grocery", "dept_spend_produce", "dept_spend_other",
        "retail_discount_spend_share", "coupon_discount_spend_share",
        "campaigns_targeted", "campaigns_redeemed", "coupons_redeemed", "days_since_last_redemption",
        "has_demographics", "age",
    )
    expected = spark.createDataFrame(
        [
            # As of 2017-07-01: the 07-01 and 07-02 rows, campaign 8 and its redemption are not seen yet.
            (AS_OF, 1, dt.date(2017, 3, 15), 1, 1, 5.0, 2, 8.0, 3, 10.0, 7.0, 3.0, 0.0, 0.3, 0.2, 1, 1, 1, 52,
             True, "45-54"),
            (AS_OF, 4, dt.date(2017, 1, 5), 177, 0, 0.0, 0, 0.0, 1, 4.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0, 0, 0, None,
             False, "unknown"),
            # As of 2017-07-03: both are seen; household 2 appears; the 4-week window starts on 06-05.
            (later, 1, dt.date(2017, 3, 15), 2, 2, 105.0, 3, 108.0, 4, 110.0, 107.0, 3.0, 0.0, 3 / 110, 2 / 110,
             2, 2, 2, 1, True, "45-54"),
            (later, 2, dt.date(2017, 7, 2), 1, 1, 50.0, 1, 50.0, 1, 50.0, 50.0, 0.0, 0.0, 0.0, 0.0, 1, 0, 0, None,
             False, "unknown"),
            (later, 4, dt.date(2017, 1, 5), 179, 0, 0.0, 0, 0.0, 1, 4.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0, 0, 0, None,
             False, "unknown"),
        ],
        got.schema,
    )
    assert_approx_df_equality(got, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_campaign_features_on_several_dates_in_one_plan(spark):
    """build_campaign_features_on: status and the type's past redemption rate as of each date."""
    desc = _bronze(spark, "campaign_descriptions", [
        (7, "Type B", _ts("2017-05-01"), _ts("2017-06-01")),
        (8, "Type B", _ts("2017-08-01"), _ts("2017-09-01")),
        (9, "Type A", _ts("2017-06-20"), _ts("2017-07-10")),
    ])
    campaigns = _bronze(spark, "campaigns", [(7, 1), (7, 2), (8, 1), (9, 1)])
    coupons = _bronze(spark, "coupons", [(1, 100, 7), (2, 200, 7), (3, 100, 8)])
    products = _bronze(spark, "products", [
        (100, 1, "GROCERY", "National", "SOUP", "SOUP", "10 OZ"),
        (200, 1, "PRODUCE", "Private", "APPLES", "APPLES", None),
    ])
    redemptions = _bronze(spark, "coupon_redemptions", [
        (1, 1, 7, _ts("2017-05-10")),
        (1, 3, 8, _ts("2017-08-20")),  # after both dates' type history: campaign 8 has not ended
    ])
    later = dt.date(2017, 8, 15)

    got = build_campaign_features_on(desc, campaigns, coupons, products, redemptions, [AS_OF, later], SOURCE).select(
        "as_of_date", "campaign_id", "status", "targeted_households", "coupons", "coupon_products",
        "coupon_departments_text", "coupon_categories_text", "type_past_campaigns", "type_past_redemption_rate",
    )
    expected = spark.createDataFrame(
        [
            (AS_OF, 7, "ended", 2, 2, 2, "grocery, produce", "apples, soup", 1, 0.5),
            (AS_OF, 8, "planned", 1, 1, 1, "grocery", "soup", 1, 0.5),
            (AS_OF, 9, "running", 1, 0, 0, "", "", 0, None),
            (later, 7, "ended", 2, 2, 2, "grocery, produce", "apples, soup", 1, 0.5),
            (later, 8, "running", 1, 1, 1, "grocery", "soup", 1, 0.5),
            (later, 9, "ended", 1, 0, 0, "", "", 1, 0.0),
        ],
        got.schema,
    )
    assert_approx_df_equality(got, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


# --- the no-leak rule and reruns on the real-data fixture -----------------------------

def _perturb_after(source_dir: Path, target_dir: Path, as_of: dt.date, week_one_end: dt.date) -> None:
    """Copies the fixture, rewriting everything dated on or after ``as_of``."""
    target_dir.mkdir(parents=True)
    cutoff = pd.Timestamp(as_of)
    for table in SOURCE_TABLES:
        df = pd.read_parquet(source_dir / f"{table}.parquet")
        if table == "transactions":
            late = df["transaction_timestamp"] >= cutoff
            df.loc[late, "sales_value"] = df.loc[late, "sales_value"] * 10 + 1
            extra = df[late].copy()
            extra["basket_id"] = extra["basket_id"] + 10**12
            extra["quantity"] = extra["quantity"] + 3
            df = pd.concat([df, extra], ignore_index=True)
        elif table == "coupon_redemptions":
            first = df.iloc[[0]].copy()
            first["redemption_date"] = cutoff + pd.Timedelta(days=3)
            df = pd.concat([df, first], ignore_index=True)
        elif table == "promotions":
            week_end = pd.Timestamp(week_one_end) + pd.to_timedelta((df["week"] - 1) * 7, unit="D")
            late = week_end >= cutoff
            df.loc[late, "display_location"] = df.loc[late, "display_location"].map(lambda v: "7" if v == "0" else "0")
        df.to_parquet(target_dir / f"{table}.parquet", index=False)


def _slice(spark, spec, warehouse, as_of):
    return delta_io.read_table(spark, spec, warehouse).filter(F.col("as_of_date") == F.lit(as_of))


@pytest.fixture(scope="module")
def two_warehouses(spark, app_config, fixture_source, ingested, copy_warehouse, tmp_path_factory):
    """The fixture ingested as it is (a: a copy of the session's ingest) and with everything after AS_OF
    rewritten (b), features built as of AS_OF in both."""
    root = tmp_path_factory.mktemp("no_leak")
    perturbed = root / "source_b"
    _perturb_after(Path(fixture_source), perturbed, AS_OF, app_config.source.week_one_end)
    configs = {"a": copy_warehouse(ingested[0], "no_leak_a"),
               "b": dataclasses.replace(app_config, warehouse=dataclasses.replace(app_config.warehouse,
                                                                                  root=str(root / "wh_b")))}
    run_ingest(spark, configs["b"], str(perturbed))
    for config in configs.values():
        build_features(spark, config, AS_OF)
    return configs


def test_nothing_dated_on_or_after_as_of_changes_any_feature(spark, two_warehouses):
    a, b = two_warehouses["a"], two_warehouses["b"]
    # The perturbation really changed the data after AS_OF ...
    tx_a = delta_io.read_table(spark, SOURCE_TABLES["transactions"], a.warehouse).count()
    tx_b = delta_io.read_table(spark, SOURCE_TABLES["transactions"], b.warehouse).count()
    assert tx_b > tx_a
    # ... and no feature table noticed.
    for spec in silver_specs(a.features):
        got_a = _slice(spark, spec, a.warehouse, AS_OF)
        got_b = _slice(spark, spec, b.warehouse, AS_OF)
        assert got_a.count() > 0, spec.full_name
        assert_approx_df_equality(got_a, got_b, 1e-6, ignore_row_order=True, ignore_nullable=True)


OTHER_DATE = dt.date(2017, 9, 1)


@pytest.fixture(scope="module")
def rebuilt(spark, two_warehouses, copy_warehouse):
    """A copy of warehouse a with OTHER_DATE built, then built again: (config, first counts, second counts,
    AS_OF's slices before either build)."""
    config = copy_warehouse(two_warehouses["a"], "features_rebuilt")
    before = {s.full_name: _rows(spark, config, s, AS_OF) for s in silver_specs(config.features)}
    first = build_features(spark, config, OTHER_DATE)
    again = build_features(spark, config, OTHER_DATE)
    return config, first, again, before


def _rows(spark, config, spec, date) -> pd.DataFrame:
    return _slice(spark, spec, config.warehouse, date).toPandas().sort_values(list(spec.keys)).reset_index(drop=True)


def test_rerun_replaces_the_slice_and_keeps_other_dates(spark, rebuilt):
    config, first, again, before = rebuilt
    assert again == first
    for spec in silver_specs(config.features):
        table = delta_io.read_table(spark, spec, config.warehouse)
        # No duplicates: one row per key.
        assert table.count() == table.select(*spec.keys).distinct().count(), spec.full_name
        # The other date's slice is untouched.
        pd.testing.assert_frame_equal(_rows(spark, config, spec, AS_OF), before[spec.full_name])
        last = DeltaTable.forPath(spark, delta_io.table_path(config.warehouse, spec)).history(1).first()
        assert last.operation == "WRITE"
        assert last.operationParameters["mode"] == "Overwrite"
        assert "2017-09-01" in last.operationParameters["predicate"]


def test_a_build_killed_before_each_commit_leaves_whole_slices_and_a_rerun_completes(
        spark, two_warehouses, copy_warehouse, rebuilt):
    """A build of a new date killed before each of its four commits (one table's slice each) leaves the tables
    it committed with that date's whole slice and the others without one, every other date as it was; the rerun
    ends with the four slices of an uninterrupted build (``rebuilt``'s, made in another copy)."""
    reference, expected, _, before = rebuilt
    killed = copy_warehouse(two_warehouses["a"], "features_killed")
    specs = silver_specs(killed.features)
    for kill_at in range(1, len(specs) + 1):
        with pytest.raises(InjectedFault), fail_at(kill_at) as commits:
            build_features(spark, killed, OTHER_DATE)
        assert [table for _, table in commits] == [spec.full_name for spec in specs][:kill_at]
        for position, spec in enumerate(specs, start=1):
            present = _slice(spark, spec, killed.warehouse, OTHER_DATE).count()
            assert present == (expected[spec.full_name] if position < kill_at else 0), (kill_at, spec.full_name)
            pd.testing.assert_frame_equal(_rows(spark, killed, spec, AS_OF), before[spec.full_name])
    assert build_features(spark, killed, OTHER_DATE) == expected
    for spec in specs:
        pd.testing.assert_frame_equal(_rows(spark, killed, spec, OTHER_DATE), _rows(spark, reference, spec, OTHER_DATE))
        pd.testing.assert_frame_equal(_rows(spark, killed, spec, AS_OF), before[spec.full_name])


def test_features_refuse_a_missing_bronze(spark, app_config, tmp_path):
    from promo_roi.validation import InputError

    empty = dataclasses.replace(app_config, warehouse=dataclasses.replace(app_config.warehouse, root=str(tmp_path)))
    # No ingest has published a bronze snapshot (bronze.ingest_audit, the marker) in an empty warehouse.
    with pytest.raises(InputError, match="bronze.ingest_audit does not exist at .*no ingest has published bronze; "
                                         "run jobs/ingest.py first"):
        build_features(spark, empty, AS_OF)


def test_features_refuse_an_as_of_date_without_data_before_it(spark, ingested):
    from promo_roi.validation import InputError

    config, _ = ingested
    for day in (dt.date(2016, 6, 1), config.source.data_start):
        with pytest.raises(InputError, match=f"as-of date {day} is not after the source's first day"):
            build_features(spark, config, day)
    assert not (Path(config.warehouse.root) / "silver" / "user_features").exists()


def test_tables_command_reports_rows_and_versions(spark, two_warehouses, capsys):
    from promo_roi.cli import main, table_status

    config = two_warehouses["b"]
    for spec in silver_specs(config.features):
        status = table_status(spec, config)
        assert status.rows == delta_io.read_table(spark, spec, config.warehouse).count()
        assert status.version == delta_io.table_version(spark, spec, config.warehouse)
        assert status.last_operation == "WRITE (Overwrite)"
    assert main(["--set", f"warehouse.root={config.warehouse.root}", "tables"]) == 0
    out = capsys.readouterr().out
    transactions = delta_io.read_table(spark, SOURCE_TABLES["transactions"], config.warehouse).count()
    line = next(row for row in out.splitlines() if row.startswith("bronze.transactions "))
    assert f"{transactions:,}" in line
    assert main(["--set", f"warehouse.root={config.warehouse.root}", "history", "no.such_table"]) == 2
