"""Pull-forward and cannibalisation (lib/promo_roi/product_promotions/side_effects.py): the Spark sums on tiny
inline weeks and the shares from sums, every number worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from promo_roi.product_promotions.side_effects import (
    cannibalisation_sums, estimate, placed_pair_series, pull_forward_sums,
)

WEEK_SCHEMA = ("product_id long, store_id long, week long, units long, on_display boolean, in_mailer boolean, "
               "first_sale_week long")


def _weeks(spark):
    # Product 1 in store 10: sold 2 in week 1, nothing in week 2 (no row), 6 on display in week 3, 1 in week 4.
    # Product 2, same category and store, never placed. Product 3 placed in store 20 only, in week 1 (its
    # first sale): no baseline before it. Product 4, product 3's category, placed in store 20 in its first week.
    rows = [
        (1, 10, 1, 2, False, False, 1), (1, 10, 3, 6, True, False, 1), (1, 10, 4, 1, False, False, 1),
        (2, 10, 1, 1, False, False, 1), (2, 10, 2, 3, False, False, 1), (2, 10, 3, 2, False, False, 1),
        (2, 10, 4, 4, False, False, 1),
        (3, 20, 1, 5, False, True, 1), (3, 20, 2, 1, False, False, 1),
        (4, 20, 3, 2, True, False, 3),  # placed in its first week in the store: no baseline
    ]
    return spark.createDataFrame(rows, WEEK_SCHEMA)


def test_the_series_of_placed_product_stores_by_hand(spark):
    series = _weeks(spark).transform(placed_pair_series(last_week=4, window_weeks=2))
    got = sorted(tuple(r) for r in series.collect())
    # product, store, week, units, type, baseline (unplaced units over unplaced weeks of the 2 before),
    # units of the 2 weeks before, next week's units and type, previous week's type
    assert got == [
        (1, 10, 1, 2, "none", None, 0, 0, "none", None),
        (1, 10, 2, 0, "none", 2.0, 2, 6, "display", "none"),
        (1, 10, 3, 6, "display", 1.0, 2, 1, "none", "none"),
        (1, 10, 4, 1, "none", 0.0, 6, None, None, "display"),
        (3, 20, 1, 5, "mailer", None, 0, 1, "none", None),
        (3, 20, 2, 1, "none", None, 5, 0, "none", "mailer"),
        (3, 20, 3, 0, "none", 1.0, 6, 0, "none", "none"),
        (3, 20, 4, 0, "none", 0.5, 1, None, None, "none"),
        (4, 20, 3, 2, "display", None, 0, 0, "none", None),
        (4, 20, 4, 0, "none", None, 2, None, None, "display"),
    ]
    sums = sorted(tuple(r) for r in pull_forward_sums(series).collect())
    # Week 3 of product 1 is placed and followed by an unplaced week: an event. Week 3 of product 3 is unplaced
    # between unplaced weeks with a baseline: a control. No other week has a next week, a baseline and the roles'
    # neighbours.
    assert sums == [(1, 3, "event", "display", 1, 6.0, 1.0, 1.0), (3, 3, "control", "none", 1, 0.0, 1.0, 0.0)]


def test_the_category_sums_by_hand(spark):
    weeks = _weeks(spark)
    products = spark.createDataFrame([(1, "C"), (2, "C"), (3, "D"), (4, "D")],
                                     "product_id long, product_category string")
    series = weeks.transform(placed_pair_series(last_week=4, window_weeks=2))
    sums = sorted(tuple(r) for r in cannibalisation_sums(weeks, series, products, first_week=1, last_week=4,
                                                           window_weeks=2).collect())
    # Category C in store 10 sold 3, 3, 8, 5 in weeks 1-4. Week 3: product 1 placed (6 units, 2 in the two weeks
    # before, baseline 1); the other, product 2, never placed, sold 8 - 6 = 2 against its window's mean
    # (3 + 3 - 2) / 2 = 2; lift 6 - 1 = 5. Week 4: no placement; product 1's baseline is 0 (week 2, unplaced,
    # sold nothing: its week-3 display sales are not what it sells unplaced) and product 2's mean
    # (3 + 8 - 6) / 2 = 2.5, against 5 units. Category D in store 20 sold 5, 1, 2, 0: week 3 holds product 4's
    # placement without a baseline (left out); week 4 is a control: product 3's baseline 0.5 and product 4's
    # window mean 2 / 2 = 1 (no unplaced week in its window), against 0 units.
    assert sums == [
        ("C", 3, "event", 1, 2.0, 2.0, 5.0), ("C", 4, "control", 1, 5.0, 2.5, 0.0),
        ("D", 4, "control", 1, 0.0, 1.5, 0.0),
    ]


def test_shares_from_sums_by_hand():
    # Week 10: the controls' next-week units over baselines are (2 + 6) / (4 + 6) = 0.8. Product 1's display
    # event: baseline 5, 10 units, 3 the week after; expected 5 x 0.8 = 4, so 1 unit lost: a rate of 0.25 of
    # the expected, a share of 0.2 of the lift of 5.
    # Product 3's mailer event in week 11 has no control that week: it is left out.
    pull_forward = pd.DataFrame([
        (1, 10, "control", "none", 1, 4.0, 4.0, 2.0), (2, 10, "control", "none", 1, 6.0, 6.0, 6.0),
        (1, 10, "event", "display", 1, 10.0, 5.0, 3.0), (3, 11, "event", "mailer", 1, 8.0, 2.0, 1.0),
    ], columns=["product_id", "week", "role", "placement_type", "rows", "units", "baseline_units", "next_units"])
    # Week 10: the control shelf sold 9 against 10 (0.9); the event shelf's others 8 against 10, expected 9: 1
    # unit lost, 1/9 of the expected and 0.25 of the placed products' lift of 4.
    cannibalisation = pd.DataFrame([
        ("A", 10, "control", 1, 9.0, 10.0, 0.0), ("B", 10, "event", 2, 8.0, 10.0, 4.0),
    ], columns=["product_category", "week", "role", "rows", "other_units", "other_baseline_units", "lift_units"])
    effects = {(e.effect, e.placement_type): e for e in estimate(pull_forward, cannibalisation, n_boot=50)}
    assert set(effects) == {("pull_forward", "all"), ("pull_forward", "display"), ("pull_forward", "mailer"),
                            ("cannibalisation", "all")}
    for kind in ("all", "display"):
        e = effects[("pull_forward", kind)]
        assert (e.lift_units, e.expected_units, e.lost_units, e.loss_rate, e.share) == pytest.approx(
            (5.0, 4.0, 1.0, 0.25, 0.2))
    assert effects[("pull_forward", "all")].events == 1 and effects[("pull_forward", "all")].controls == 2
    assert np.isnan(effects[("pull_forward", "mailer")].share)  # no control in its week: nothing to compare
    c = effects[("cannibalisation", "all")]
    assert (c.events, c.controls, c.lift_units) == (2, 1, 4.0)
    assert (c.expected_units, c.lost_units, c.loss_rate, c.share) == pytest.approx((9.0, 1.0, 1 / 9, 0.25))
    # Resampling the two categories: a draw with B only has no control (no share), with A only no event.
    assert c.share_low == c.share_high == pytest.approx(0.25)
    assert c.loss_rate_low == c.loss_rate_high == pytest.approx(1 / 9)


def test_fuel_and_coupon_lines_are_not_counted_as_items(spark):
    from promo_roi.product_promotions.side_effects import counted_in_items

    categories = spark.createDataFrame([(1, "FUEL"), (2, "COUPON/MISC ITEMS"), (3, "CHEESE"), (4, None)],
                                       "product_id long, product_category string")
    assert sorted(r.product_id for r in counted_in_items(categories).collect()) == [3, 4]
