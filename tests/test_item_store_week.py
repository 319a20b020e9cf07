"""silver.item_store_week (lib/promo_roi/product_promotions/item_store_week.py): sales and placements per product,
store and completed week.

The builder on tiny inline frames with every row worked out by hand, its point-in-time rules (nothing after
the as-of date; a week's rows the same whatever later as-of date builds them), and the job on the ingested
fixture against a pandas recount of bronze.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from conftest import InjectedFault, fail_at
from promo_roi import delta_io
from promo_roi.product_promotions.evaluation import sort_merge_joins_only
from promo_roi.product_promotions.item_store_week import (
    SoldProductStores, broadcast_first_sales, build_item_store_weeks, item_store_weeks, last_completed_week,
    sold_product_stores,
)
from promo_roi.product_promotions.baseline_features import item_store_week_features
from promo_roi.tables import ITEM_STORE_WEEK, ITEM_STORE_WEEK_FEATURES, SOURCE_TABLES

TX_SCHEMA = ("household_id long, store_id long, basket_id long, product_id long, quantity long, sales_value double, "
             "retail_disc double, coupon_disc double, coupon_match_disc double, week long, "
             "transaction_timestamp timestamp")
PROMO_SCHEMA = "product_id long, store_id long, display_location string, mailer_location string, week long"


def _line(source, product, store, week, quantity, sales, discount, basket=1):
    # Dated the day before its week ends, as the data's weeks are.
    stamp = dt.datetime.combine(source.week_end(week) - dt.timedelta(days=1), dt.time(12))
    return (7, store, basket, product, quantity, sales, discount, 0.0, 0.0, week, stamp)


def _frames(spark, source, extra_lines=(), extra_placements=()):
    lines = [
        _line(source, 1, 10, 1, 2, 3.0, 1.0), _line(source, 1, 10, 1, 1, 2.0, 0.0, basket=2),
        _line(source, 1, 10, 3, 1, 2.5, 0.5),
        _line(source, 2, 10, 2, 1, 4.0, 0.0),
        _line(source, 1, 10, 4, 5, 9.0, 0.0),        # week 4 has not ended: not a row
        *extra_lines,
    ]
    placements = [
        (1, 10, "3", "A", 2),                        # placed after its first sale, sold nothing: a row
        (1, 10, "0", "D", 3), (1, 10, "5", "0", 3),  # two placements in one week: both codes
        (2, 10, "7", "0", 1),                        # before product 2 first sold in store 10: not a row
        (1, 20, "9", "0", 2),                        # product 1 never sold in store 20: not a row
        (2, 10, "A", "0", 4),                        # week 4 has not ended
        *extra_placements,
    ]
    return spark.createDataFrame(lines, TX_SCHEMA), spark.createDataFrame(placements, PROMO_SCHEMA)


def _rows(frame) -> list[tuple]:
    return sorted(tuple(r) for r in frame.drop("week_end_date").collect())


def test_last_completed_week_by_hand(app_config):
    source = app_config.source
    assert last_completed_week(source.week_one_end, source) == 0
    assert last_completed_week(source.week_one_end + dt.timedelta(days=1), source) == 1
    assert last_completed_week(source.week_end(3), source) == 2          # week 3 ends that day: not yet
    assert last_completed_week(source.week_end(3) + dt.timedelta(days=1), source) == 3
    assert last_completed_week(dt.date(2030, 1, 1), source) == source.last_week


@pytest.mark.parametrize(("broadcast", "packed"), [(False, False), (True, False), (True, True), (False, True)])
def test_each_row_by_hand(spark, app_config, broadcast, packed):
    """The same rows whether the first sales are shuffled to the promotions or broadcast to them, and whether
    they are joined on the two ids or on one key packed from them."""
    source = app_config.source
    as_of = source.week_end(3) + dt.timedelta(days=1)
    tx, promotions = _frames(spark, source)
    out = tx.transform(item_store_weeks(promotions, as_of, source, broadcast_first_sales=broadcast, packed_key=packed))
    assert out.columns == ITEM_STORE_WEEK.columns
    # product 1 and product 2 in store 10; ids that pack
    assert sold_product_stores(tx, as_of, source) == SoldProductStores(count=2, ids_pack=True)
    with sort_merge_joins_only(spark):  # no broadcast of Spark's own choosing: only the hint's
        plan = out._jdf.queryExecution().executedPlan().toString()
        assert ("BroadcastHashJoin" in plan) == broadcast
        rows = _rows(out)
    # product, store, week, units, sales, discount, shelf, depth, lines, on display, in mailer, display codes,
    # mailer codes, first sale week
    assert rows == [
        (1, 10, 1, 3, 5.0, 1.0, 6.0, 1 / 6, 2, False, False, [], [], 1),
        (1, 10, 2, 0, 0.0, 0.0, 0.0, None, 0, True, True, ["3"], ["A"], 1),
        (1, 10, 3, 1, 2.5, 0.5, 3.0, 0.5 / 3.0, 1, True, True, ["5"], ["D"], 1),
        (2, 10, 2, 1, 4.0, 0.0, 4.0, 0.0, 1, False, False, [], [], 2),
    ]
    ends = {r["week"]: r["week_end_date"] for r in out.select("week", "week_end_date").distinct().collect()}
    assert ends == {w: source.week_end(w) for w in (1, 2, 3)}


def test_a_weeks_codes_are_listed_sorted_and_a_code_outside_the_vocabulary_stops_the_build(spark, app_config):
    source = app_config.source
    as_of = source.week_end(3) + dt.timedelta(days=1)
    # Week 2 of product 1 in store 10 gets two more placements beside ("3", "A"), given out of order.
    tx, promotions = _frames(spark, source, extra_placements=[(1, 10, "A", "Z", 2), (1, 10, "1", "C", 2)])
    week_2 = tx.transform(item_store_weeks(promotions, as_of, source)).filter("product_id = 1 AND week = 2")
    assert [(r["display_locations"], r["mailer_locations"]) for r in week_2.collect()] == [
        (["1", "3", "A"], ["A", "C", "Z"])]
    tx, promotions = _frames(spark, source, extra_placements=[(1, 10, "8", "0", 2)])  # no display location 8
    with pytest.raises(Exception, match="unknown display_location code '8'"):
        tx.transform(item_store_weeks(promotions, as_of, source)).collect()


@pytest.mark.parametrize(("store", "product"), [(2**31, 1), (10, -1)])
def test_ids_outside_the_packed_range_are_joined_on_both_ids(spark, app_config, store, product):
    """An id the packed key cannot hold makes the build join on the two ids: its rows are there as any other's."""
    source = app_config.source
    as_of = source.week_end(3) + dt.timedelta(days=1)
    tx, promotions = _frames(spark, source, extra_lines=[_line(source, product, store, 1, 2, 4.0, 0.0)],
                             extra_placements=[(product, store, "2", "0", 2)])
    assert sold_product_stores(tx, as_of, source) == SoldProductStores(count=3, ids_pack=False)
    out = tx.transform(item_store_weeks(promotions, as_of, source, packed_key=False))
    odd = [r for r in _rows(out) if (r[0], r[1]) == (product, store)]
    assert odd == [(product, store, 1, 2, 4.0, 0.0, 4.0, 0.0, 1, False, False, [], [], 1),
                   (product, store, 2, 0, 0.0, 0.0, 0.0, None, 0, True, False, ["2"], [], 1)]


def test_first_sales_are_broadcast_only_while_they_fit_an_eighth_of_the_driver_heap():
    gib = 2**30
    # 128 bytes each: an eighth of 1 GiB holds 1,048,576 of them.
    assert broadcast_first_sales(1_048_576, gib) and not broadcast_first_sales(1_048_577, gib)
    assert broadcast_first_sales(631_185, gib)  # the full data's, from the demo's 1 GB driver
    assert broadcast_first_sales(3_155_925, 8 * gib)  # five times the data, an 8 GB driver
    assert not broadcast_first_sales(5_000_001, 64 * gib)  # never more than 5M, whatever the heap


def test_nothing_after_the_as_of_date_and_no_later_week_changes_a_row(spark, app_config):
    """Lines dated on or after the as-of date and placements in weeks not ended change nothing; built at a
    later as-of date, the weeks already ended keep their rows (the table is keyed by week, not as-of date),
    even where a later first sale would otherwise reach back to an earlier placement. (A line dated outside
    its own week never reaches bronze: ingest quarantines it, tests/test_ingest.py.)"""
    source = app_config.source
    as_of = source.week_end(3) + dt.timedelta(days=1)
    tx, promotions = _frames(spark, source)
    expected = _rows(tx.transform(item_store_weeks(promotions, as_of, source)))
    late_line = _line(source, 1, 10, 4, 4, 8.0, 2.0, basket=9)
    late_line = (*late_line[:-1], dt.datetime.combine(as_of, dt.time(0)))  # week 4's first day: the as-of date
    future = _frames(spark, source,
                     extra_lines=[late_line, _line(source, 2, 20, 4, 1, 1.0, 0.0), _line(source, 3, 10, 5, 1, 1.0, 0.0)],
                     extra_placements=[(2, 20, "1", "0", 2), (1, 10, "2", "H", 4)])
    assert _rows(future[0].transform(item_store_weeks(future[1], as_of, source))) == expected
    later = future[0].transform(item_store_weeks(future[1], source.week_end(5) + dt.timedelta(days=1), source))
    assert _rows(later.filter(F.col("week") <= 3)) == expected
    # ... and the later weeks are there: product 2 first sold in store 20 in week 4, its week-2 placement stays out.
    assert {(r["product_id"], r["store_id"], r["week"]) for r in later.filter(F.col("week") > 3).collect()} == {
        (1, 10, 4), (2, 10, 4), (2, 20, 4), (3, 10, 5)}


def _week(product, store, week, units, shelf, discount, display=(), mailer=(), first=1):
    return (product, store, week, None, units, shelf - discount, discount, shelf, None, 1, bool(display),
            bool(mailer), list(display), list(mailer), first)


def test_baseline_features_by_hand(spark):
    """Window of 3 weeks. Product 1 in store 10 first sold in week 1; week 2 has no row (unplaced, sold
    nothing); placed in weeks 3 (display) and 5 (mailer). Product 2, same category and store, first sold in
    week 4. Every number below is worked out from these rows."""
    rows = [
        _week(1, 10, 1, 4, 8.0, 0.0),
        _week(1, 10, 3, 10, 15.0, 5.0, display=["3"]),
        _week(1, 10, 4, 2, 4.0, 0.0),
        _week(1, 10, 5, 0, 0.0, 0.0, mailer=["A"]),
        _week(1, 10, 6, 3, 6.0, 0.0),
        _week(2, 10, 4, 6, 6.0, 0.0, first=4),
        _week(3, 20, 6, 1, 1.0, 0.0, first=6),  # another category, another store
    ]
    weeks = spark.createDataFrame(rows, ITEM_STORE_WEEK.struct)
    products = spark.createDataFrame(
        [(1, 100, "GROCERY", "National", "SOUP", "CANNED SOUP", "10 OZ"),
         (2, 100, "GROCERY", "National", "SOUP", "CANNED SOUP", "20 OZ"),
         (3, 100, "GROCERY", "National", "PASTA", "DRY PASTA", "1 LB")], SOURCE_TABLES["products"].struct)
    got = weeks.transform(item_store_week_features(products, window_weeks=3))
    assert got.columns == ITEM_STORE_WEEK_FEATURES.columns
    # product, store, week, category, weeks since first sale, week of year, baseline units, unplaced weeks,
    # placed weeks, shelf price, discount depth, weeks since last placement, its units, its baseline, its lift,
    # category units in the store over the window
    assert sorted(tuple(r) for r in got.collect()) == [
        (1, 10, 1, "SOUP", 0, 1, None, 0, 0, None, None, None, None, None, None, 0),
        # weeks 1-2 open, none placed: 4 units over 2 unplaced weeks
        (1, 10, 3, "SOUP", 2, 3, 2.0, 2, 0, 2.0, 0.0, None, None, None, None, 4),
        # weeks 1-3: week 3 placed; 4 units over weeks 1 and 2
        (1, 10, 4, "SOUP", 3, 4, 2.0, 2, 1, 23 / 14, 5 / 23, 1, 10, 2.0, 5.0, 14),
        # weeks 2-4: week 3 placed; 2 units over weeks 2 and 4
        (1, 10, 5, "SOUP", 4, 5, 1.0, 2, 1, 19 / 12, 5 / 19, 2, 10, 2.0, 5.0, 18),
        # weeks 3-5: weeks 3 and 5 placed; 2 units over week 4; the last placement sold 0 against 1.0
        (1, 10, 6, "SOUP", 5, 6, 2.0, 1, 2, 19 / 12, 5 / 19, 1, 0, 1.0, 0.0, 18),
        (2, 10, 4, "SOUP", 0, 4, None, 0, 0, None, None, None, None, None, None, 14),
        (3, 20, 6, "PASTA", 0, 6, None, 0, 0, None, None, None, None, None, None, 0),
    ]
    # Later weeks change no earlier week's features (the table is keyed by week).
    early = weeks.filter(F.col("week") <= 4).transform(item_store_week_features(products, window_weeks=3))
    assert sorted(tuple(r) for r in early.collect()) == sorted(tuple(r) for r in got.collect() if r["week"] <= 4)


@pytest.fixture(scope="module")
def built(spark, ingested, copy_warehouse):
    config = copy_warehouse(ingested[0], "item_store_week")
    as_of = dt.date(2017, 7, 1)
    return config, as_of, build_item_store_weeks(spark, config, as_of)


def test_the_fixtures_weeks_match_a_recount_of_bronze(spark, built):
    config, as_of, counts = built
    source = config.source
    last = last_completed_week(as_of, source)
    tx = delta_io.read_table(spark, SOURCE_TABLES["transactions"], config.warehouse).toPandas()
    promo = delta_io.read_table(spark, SOURCE_TABLES["promotions"], config.warehouse).toPandas()
    tx = tx[(tx["week"] <= last) & (tx["transaction_timestamp"] < pd.Timestamp(as_of))]
    sales = tx.groupby(["product_id", "store_id", "week"]).agg(
        units=("quantity", "sum"), sales_value=("sales_value", "sum"), discount_value=("retail_disc", "sum"),
        lines=("quantity", "size")).reset_index()
    first = sales.groupby(["product_id", "store_id"])["week"].min().rename("first_sale_week").reset_index()
    promo = promo[promo["week"] <= last].merge(first, on=["product_id", "store_id"])
    promo = promo[promo["week"] >= promo["first_sale_week"]]
    keys = set(map(tuple, sales[["product_id", "store_id", "week"]].to_numpy())) | set(
        map(tuple, promo[["product_id", "store_id", "week"]].to_numpy()))
    got = delta_io.read_table(spark, ITEM_STORE_WEEK, config.warehouse).toPandas()
    assert counts == {"silver.item_store_week": len(keys), "silver.item_store_week_features": len(keys)}
    assert len(got) == len(keys)
    assert set(map(tuple, got[["product_id", "store_id", "week"]].to_numpy())) == keys
    merged = got.merge(sales, on=["product_id", "store_id", "week"], how="left", suffixes=("", "_expected"))
    sold = merged["lines_expected"].notna()
    for column in ("units", "sales_value", "discount_value", "lines"):
        assert (merged.loc[sold, column] - merged.loc[sold, f"{column}_expected"]).abs().max() < 1e-9, column
    assert (merged.loc[~sold, ["units", "lines"]] == 0).all().all()
    displayed = {tuple(k) for k in promo.loc[promo["display_location"] != "0", ["product_id", "store_id", "week"]]
                 .to_numpy()}
    assert {k for k, on in zip(map(tuple, got[["product_id", "store_id", "week"]].to_numpy()), got["on_display"])
            if on} == displayed
    assert got["on_display"].any() and (~sold).any()  # the fixture has both kinds of rows


def test_a_rebuild_replaces_the_same_weeks_with_the_same_rows(spark, built):
    from delta.tables import DeltaTable

    config, as_of, counts = built
    before = delta_io.read_table(spark, ITEM_STORE_WEEK, config.warehouse).toPandas()
    assert build_item_store_weeks(spark, config, as_of) == counts
    after = delta_io.read_table(spark, ITEM_STORE_WEEK, config.warehouse).toPandas()
    key = ["product_id", "store_id", "week"]
    pd.testing.assert_frame_equal(after.sort_values(key).reset_index(drop=True),
                                  before.sort_values(key).reset_index(drop=True))
    last = DeltaTable.forPath(spark, delta_io.table_path(config.warehouse, ITEM_STORE_WEEK)).history(1).first()
    assert (last.operation, last.operationParameters["mode"]) == ("WRITE", "Overwrite")
    assert f"<= {last_completed_week(as_of, config.source)}" in last.operationParameters["predicate"]


def test_a_build_killed_before_either_commit_leaves_no_wrong_row_and_a_rerun_completes(
        spark, built, copy_warehouse):
    """Built through week N, then built four weeks later and killed before its first commit, then before its
    second: the first kill changes nothing; the second leaves the new weeks without features, and every row
    that is there as it was (weeks are replaced whole). The rerun ends with every week and its features, the
    weeks up to N exactly as before."""
    config, as_of, _ = built
    config = copy_warehouse(config, "item_store_week_killed")
    key = ["product_id", "store_id", "week"]

    def table(spec):
        return delta_io.read_table(spark, spec, config.warehouse).toPandas().sort_values(key).reset_index(drop=True)

    before = {spec: table(spec) for spec in (ITEM_STORE_WEEK, ITEM_STORE_WEEK_FEATURES)}
    last = last_completed_week(as_of, config.source)
    later = as_of + dt.timedelta(days=28)
    for kill_at in (1, 2):
        with pytest.raises(InjectedFault), fail_at(kill_at) as commits:
            build_item_store_weeks(spark, config, later)
        assert [table for _, table in commits] == ["silver.item_store_week", "silver.item_store_week_features"][:kill_at]
        features = table(ITEM_STORE_WEEK_FEATURES)
        pd.testing.assert_frame_equal(features, before[ITEM_STORE_WEEK_FEATURES])
        weeks = table(ITEM_STORE_WEEK)
        if kill_at == 1:
            pd.testing.assert_frame_equal(weeks, before[ITEM_STORE_WEEK])
        else:
            assert weeks["week"].max() > last
            pd.testing.assert_frame_equal(weeks[weeks["week"] <= last].reset_index(drop=True), before[ITEM_STORE_WEEK])
    counts = build_item_store_weeks(spark, config, later)
    weeks, features = table(ITEM_STORE_WEEK), table(ITEM_STORE_WEEK_FEATURES)
    assert counts == {"silver.item_store_week": len(weeks), "silver.item_store_week_features": len(features)}
    pd.testing.assert_frame_equal(weeks[key], features[key])
    for spec, frame in ((ITEM_STORE_WEEK, weeks), (ITEM_STORE_WEEK_FEATURES, features)):
        pd.testing.assert_frame_equal(frame[frame["week"] <= last].reset_index(drop=True), before[spec])


def test_an_as_of_date_before_the_first_week_ended_is_refused(spark, built):
    from promo_roi.validation import InputError

    config, _, _ = built
    fresh = dataclasses.replace(config, warehouse=dataclasses.replace(config.warehouse,
                                                                       root=config.warehouse.root + "_none"))
    with pytest.raises(InputError, match="no week of the data ended before it"):
        build_item_store_weeks(spark, fresh, config.source.week_one_end)
    assert not delta_io.table_exists(spark, ITEM_STORE_WEEK, fresh.warehouse)


def test_the_lift_yardstick_on_the_fixture(spark, built):
    """jobs/evaluate_promotions.py's work on the fixture: every model and placement type scored, the no-lift
    baseline's WAPE as recounted here from the two silver tables."""
    from promo_roi.product_promotions.evaluation import evaluate_promotion_lift
    from promo_roi.product_promotions.lift_yardstick import MODELS
    from promo_roi.tables import PROMOTION_LIFT_EVALUATION
    from promo_roi.validation import InputError

    config, as_of, _ = built
    last = last_completed_week(as_of, config.source)
    assert evaluate_promotion_lift(spark, config, as_of, held_out_weeks=4) == {
        "gold.promotion_lift_evaluation": len(MODELS) * 4}
    got = delta_io.read_table(spark, PROMOTION_LIFT_EVALUATION, config.warehouse).toPandas()
    assert set(got["model"]) == set(MODELS)
    assert set(got["placement_type"]) == {"all", "display", "mailer", "display_and_mailer"}
    assert (got["first_held_out_week"] == last - 3).all() and (got["last_held_out_week"] == last).all()
    weeks = delta_io.read_table(spark, ITEM_STORE_WEEK, config.warehouse).toPandas()
    features = delta_io.read_table(spark, ITEM_STORE_WEEK_FEATURES, config.warehouse).toPandas()
    rows = weeks.merge(features, on=["product_id", "store_id", "week"])
    rows = rows[(rows["week"] > last - 4) & (rows["on_display"] | rows["in_mailer"]) & rows["baseline_units"].notna()]
    sums = rows.groupby(["product_id", "week"])[["units", "baseline_units"]].sum()
    expected = (sums["units"] - sums["baseline_units"]).abs().sum() / sums["units"].sum()
    (no_lift,) = got[(got["model"] == "no_lift") & (got["placement_type"] == "all")].itertuples()
    assert no_lift.rows == len(rows) and no_lift.wape == pytest.approx(expected)
    assert no_lift.wape_low <= no_lift.wape_high
    with pytest.raises(InputError, match="leaving no earlier week to fit on"):
        evaluate_promotion_lift(spark, config, as_of, held_out_weeks=last)


def _pull_forward_recount(weeks: pd.DataFrame, last: int, window: int = 8) -> tuple[float, float, int]:
    """The pull-forward of every placement type pooled, recounted in pandas from silver.item_store_week: lift,
    units lost the week after, events compared (lib/promo_roi/product_promotions/side_effects.py's definition)."""
    weeks = weeks[weeks["week"] <= last]
    placed = weeks[weeks["on_display"] | weeks["in_mailer"]][["product_id", "store_id"]].drop_duplicates()
    series = []
    for (product, store), rows in weeks.merge(placed).groupby(["product_id", "store_id"]):
        dense = rows.set_index("week").reindex(range(int(rows["first_sale_week"].iloc[0]), last + 1))
        dense = dense.assign(product_id=product, units=dense["units"].fillna(0),
                             placed=dense["on_display"].eq(True) | dense["in_mailer"].eq(True))
        unplaced = (~dense["placed"]).astype(float)
        weeks_before = unplaced.shift(1).rolling(window, min_periods=1).sum()
        units_before = (dense["units"] * unplaced).shift(1).rolling(window, min_periods=1).sum()
        dense["baseline"] = (units_before / weeks_before).where(weeks_before > 0)
        dense["next_units"], dense["next_placed"] = dense["units"].shift(-1), dense["placed"].shift(-1)
        dense["previous_placed"] = dense["placed"].shift(1)
        series.append(dense.reset_index().rename(columns={"index": "week"}))
    frame = pd.concat(series)
    usable = frame[frame["baseline"].notna() & frame["next_units"].notna() & (frame["next_placed"] == False)]  # noqa: E712
    controls = usable[~usable["placed"] & (usable["previous_placed"] == False)]  # noqa: E712
    ratio = controls.groupby("week")["next_units"].sum() / controls.groupby("week")["baseline"].sum()
    ratio = ratio[np.isfinite(ratio)]  # a week whose controls have no baseline units compares nothing
    events = usable[usable["placed"]].merge(ratio.rename("ratio").reset_index(), on="week")
    lost = (events["baseline"] * events["ratio"] - events["next_units"]).sum()
    return float((events["units"] - events["baseline"]).sum()), float(lost), len(events)


def test_the_side_effects_on_the_fixture(spark, built):
    """jobs/evaluate_promotions.py's second table on the fixture: both effects written for the as-of date, the
    pooled pull-forward as recounted here in pandas from silver.item_store_week."""
    from promo_roi.product_promotions.evaluation import measure_side_effects
    from promo_roi.tables import PROMOTION_SIDE_EFFECTS

    config, as_of, _ = built
    last = last_completed_week(as_of, config.source)
    counts = measure_side_effects(spark, config, as_of)
    got = delta_io.read_table(spark, PROMOTION_SIDE_EFFECTS, config.warehouse).toPandas()
    assert counts == {"gold.promotion_side_effects": len(got)}
    kinds = set(zip(got["effect"], got["placement_type"]))
    assert {("pull_forward", "all"), ("cannibalisation", "all")} <= kinds <= {
        ("pull_forward", t) for t in ("all", "display", "mailer", "display_and_mailer")} | {("cannibalisation", "all")}
    assert (got["as_of_date"] == as_of).all() and (got["last_week"] == last).all()
    (pooled,) = got[(got["effect"] == "pull_forward") & (got["placement_type"] == "all")].itertuples()
    weeks = delta_io.read_table(spark, ITEM_STORE_WEEK, config.warehouse).toPandas()
    categories = delta_io.read_table(spark, ITEM_STORE_WEEK_FEATURES, config.warehouse).select(
        "product_id", "product_category").distinct().toPandas()
    fuel_and_coupons = categories[categories["product_category"].isin(["FUEL", "COUPON/MISC ITEMS"])]["product_id"]
    lift, lost, events = _pull_forward_recount(weeks[~weeks["product_id"].isin(fuel_and_coupons)], last)
    assert events > 0 and pooled.events == events
    assert (pooled.lift_units, pooled.lost_units) == pytest.approx((lift, lost))
    # A share is of a lift: where the placements sold less than their baselines (the fixture's few stores) there
    # is none.
    if lift > 0:
        assert pooled.share == pytest.approx(lost / lift) and pooled.share_low <= pooled.share_high
    else:
        assert np.isnan(pooled.share)


def _plain(value):
    """A DuckDB (pandas) cell as Spark's Row holds it: lists, dates, None for a missing number."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, float) and value != value:
        return None
    return value


def test_the_scale_benchmarks_duckdb_yardstick_gives_the_builders_rows(spark, app_config, tmp_path):
    """benchmarks/bench_item_store_week.py times the builder against the same aggregation in DuckDB SQL, and
    trusts the comparison only where both give the same table: here on the hand-worked rows (two placements
    in a week, a placement that sold nothing, placements before a first sale or in a store that never sold
    the product, lines and placements of a week not yet ended)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_item_store_week.py"
    spec = importlib.util.spec_from_file_location("bench_item_store_week", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    source = app_config.source
    as_of = source.week_end(3) + dt.timedelta(days=1)
    tx, promotions = _frames(spark, source)
    tx.write.parquet(str(tmp_path / "transactions"))
    promotions.write.parquet(str(tmp_path / "promotions"))
    con = bench.duckdb_connection(1, app_config.spark.session_time_zone, tmp_path / "duckdb_tmp")
    duck = con.execute(bench.duckdb_item_store_weeks(tmp_path / "transactions", tmp_path / "promotions", as_of,
                                                     source)).fetchdf()
    assert list(duck.columns) == ITEM_STORE_WEEK.columns
    got = sorted(tuple(_plain(v) for v in row) for row in duck.itertuples(index=False))
    expected = sorted(tuple(r) for r in tx.transform(item_store_weeks(promotions, as_of, source)).collect())
    assert len(got) == len(expected) == 4
    for row, want in zip(got, expected):
        # Sums of doubles may differ in the last bit with the order of addition.
        assert all(g == pytest.approx(w, rel=1e-12) if isinstance(w, float) else g == w
                   for g, w in zip(row, want)), (row, want)
