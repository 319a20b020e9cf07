"""Doubly robust uplift metrics: expected values are worked out by hand below."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promo_roi.causal.metrics import (
    aipw_pseudo_outcome,
    auuc,
    bootstrap_ci,
    dr_average_effect,
    naive_difference,
    overlap_mask,
    placebo_check,
    positivity_summary,
    qini_coefficient,
    roc_auc,
    stability_check,
    uplift_curve,
    wape,
)

# Three rows used by the AIPW and DR-effect tests.
Y = [10.0, 4.0, 6.0]
T = [1, 0, 1]
MU0 = [2.0, 3.0, 5.0]
MU1 = [8.0, 6.0, 5.0]
E = [0.5, 0.25, 0.8]
# row 0 (treated): (8-2) + (10-8)/0.5         = 6 + 4        = 10
# row 1 (control): (6-3) - (4-3)/(1-0.25)     = 3 - 1/0.75   = 1.666...
# row 2 (treated): (5-5) + (6-5)/0.8          = 0 + 1.25     = 1.25
PHI = [10.0, 3.0 - 1.0 / 0.75, 1.25]


def test_aipw_pseudo_outcome_three_rows() -> None:
    np.testing.assert_allclose(aipw_pseudo_outcome(Y, T, MU0, MU1, E), PHI)


def test_aipw_clips_propensity() -> None:
    # e = 0.001 is clipped to 0.01: 0 - 0 + 1 * (1 - 0) / 0.01 = 100 (not 1000)
    assert aipw_pseudo_outcome([1.0], [1], [0.0], [0.0], [0.001])[0] == pytest.approx(100.0)
    # control with e = 0.999 -> 0.99: -(1 - 0) / (1 - 0.99) = -100
    assert aipw_pseudo_outcome([1.0], [0], [0.0], [0.0], [0.999])[0] == pytest.approx(-100.0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"y": [1.0, 2.0]}, "y"),  # length mismatch names y
        ({"e": [0.5, math.nan, 0.5]}, "e"),  # NaN names e
        ({"t": [1, 2, 0]}, "t"),  # non-binary treatment
    ],
)
def test_aipw_rejects_bad_input(kwargs: dict, name: str) -> None:
    args = {"y": Y, "t": T, "mu0": MU0, "mu1": MU1, "e": E, **kwargs}
    with pytest.raises(ValueError, match=name):
        aipw_pseudo_outcome(**args)


def test_empty_input_raises() -> None:
    with pytest.raises(ValueError, match="y_true"):
        wape([], [])


def test_overlap_mask_inclusive_bounds() -> None:
    mask = overlap_mask([0.05, 0.1, 0.5, 0.9, 0.95])
    assert mask.tolist() == [False, True, True, True, False]


def test_positivity_summary_hand_made() -> None:
    e = [0.05, 0.1, 0.5, 0.9, 0.95, 0.3]
    t = [1, 1, 1, 0, 0, 0]
    s = positivity_summary(e, t)
    assert (s["n"], s["n_treated"], s["n_control"]) == (6, 3, 3)
    # in [0.1, 0.9]: 0.1, 0.5, 0.9, 0.3 -> 4 of 6
    assert s["share_in_overlap"] == pytest.approx(4 / 6)
    # treated e = 0.05, 0.1, 0.5 -> 0.1 and 0.5 inside -> 2/3
    assert s["share_treated_in_overlap"] == pytest.approx(2 / 3)
    # control e = 0.9, 0.95, 0.3 -> 0.9 and 0.3 inside -> 2/3
    assert s["share_control_in_overlap"] == pytest.approx(2 / 3)
    # medians: treated sorted (0.05, 0.1, 0.5) -> 0.1; control (0.3, 0.9, 0.95) -> 0.9
    assert s["treated_p50"] == pytest.approx(0.1)
    assert s["control_p50"] == pytest.approx(0.9)
    # p25 of (0.3, 0.9, 0.95), linear: position 0.25 * 2 = 0.5 -> 0.3 + 0.5 * 0.6 = 0.6
    assert s["control_p25"] == pytest.approx(0.6)
    for arm in ("treated", "control"):
        for q in ("p01", "p05", "p25", "p50", "p75", "p95", "p99"):
            assert f"{arm}_{q}" in s
    # AUC = share of (treated, control) pairs with e_treated > e_control:
    # only 0.5 > 0.3 out of 3 * 3 = 9 pairs -> 1/9
    assert s["auc_propensity"] == pytest.approx(1 / 9)


def test_positivity_summary_one_class() -> None:
    s = positivity_summary([0.2, 0.4], [1, 1])
    assert math.isnan(s["auc_propensity"])
    assert math.isnan(s["share_control_in_overlap"])
    assert math.isnan(s["control_p50"])


def test_roc_auc_and_wape() -> None:
    # pairs (pos, neg): (0.8, 0.1) ok, (0.8, 0.4) ok, (0.35, 0.1) ok, (0.35, 0.4) wrong -> 3/4
    assert roc_auc([1, 0, 1, 0], [0.8, 0.1, 0.35, 0.4]) == pytest.approx(0.75)
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))
    # (|2-1| + |-2-0| + |4-4|) / (2 + 2 + 4) = 3 / 8
    assert wape([2.0, -2.0, 4.0], [1.0, 0.0, 4.0]) == pytest.approx(3 / 8)
    assert math.isnan(wape([0.0, 0.0], [1.0, 2.0]))


# Four rows for the uplift-curve tests.
SCORE = [0.9, 0.1, 0.5, 0.3]
PHI4 = [3.0, -1.0, 2.0, 0.0]
# descending score: rows 0 (phi 3), 2 (2), 3 (0), 1 (-1)
# gain at k = 0..4: 0, 3, 5, 5, 4; fraction: 0, .25, .5, .75, 1
# trapezoid: 0.25 * ((0+3)/2 + (3+5)/2 + (5+5)/2 + (5+4)/2) = 0.25 * 15 = 3.75
# random line (0,0)-(1, 4): area 4 / 2 = 2


def test_uplift_curve_four_rows() -> None:
    fraction, gain = uplift_curve(SCORE, PHI4)
    np.testing.assert_allclose(fraction, [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(gain, [0.0, 3.0, 5.0, 5.0, 4.0])


def test_qini_and_auuc_four_rows() -> None:
    assert qini_coefficient(SCORE, PHI4) == pytest.approx((3.75 - 2.0) / 4)  # 0.4375
    assert auuc(SCORE, PHI4) == pytest.approx(3.75 / 4)  # 0.9375
    # reversed ranking: gain 0, -1, -1, 1, 4 -> 0.25 * (-0.5 - 1 + 0 + 2.5) = 0.25
    reversed_score = [-s for s in SCORE]
    assert qini_coefficient(reversed_score, PHI4) == pytest.approx((0.25 - 2.0) / 4)


def test_uplift_curve_ties_keep_original_order() -> None:
    # scores tie at 1: rows 0 then 1 (original order), then row 2
    _, gain = uplift_curve([1.0, 1.0, 0.0], [5.0, -1.0, 2.0])
    np.testing.assert_allclose(gain, [0.0, 5.0, 4.0, 6.0])


def test_uplift_curve_length_mismatch() -> None:
    with pytest.raises(ValueError, match="phi"):
        uplift_curve([0.1, 0.2], [1.0])


def test_bootstrap_deterministic_and_contains_point() -> None:
    x = np.arange(20, dtype=float)  # mean 9.5
    a = bootstrap_ci(np.mean, (x,), n_boot=200, seed=3)
    b = bootstrap_ci(np.mean, (x,), n_boot=200, seed=3)
    assert a == b
    point, low, high = a
    assert point == pytest.approx(9.5)
    assert low < point < high
    # a constant sample has a zero-width interval at the constant
    assert bootstrap_ci(np.mean, (np.full(5, 2.0),)) == (2.0, 2.0, 2.0)


def test_bootstrap_resamples_whole_clusters() -> None:
    # cluster "a" has 1 row, "b" has 3. Resampling 2 clusters gives 2, 4 or 6 rows
    # (a+a, a+b, b+b with probabilities 1/4, 1/2, 1/4), so the 95% interval of the
    # row count is [2, 6]; resampling rows always gives 4 rows.
    x = np.zeros(4)
    size = lambda v: float(len(v))  # noqa: E731
    assert bootstrap_ci(size, (x,), n_boot=400) == (4.0, 4.0, 4.0)
    assert bootstrap_ci(size, (x,), n_boot=400, cluster=["a", "b", "b", "b"]) == (4.0, 2.0, 6.0)


def test_bootstrap_nan_replicates() -> None:
    always_nan = lambda v: math.nan  # noqa: E731
    point, low, high = bootstrap_ci(always_nan, (np.ones(3),))
    assert math.isnan(point) and math.isnan(low) and math.isnan(high)
    with pytest.raises(ValueError, match="arrays"):
        bootstrap_ci(np.mean, (np.ones(3), np.ones(2)))


def test_dr_average_effect_hand_computed() -> None:
    res = dr_average_effect(Y, T, MU0, MU1, E, n_boot=50)
    # (10 + 1.6667 + 1.25) / 3 = 12.9167 / 3 = 4.30556
    assert res["effect"] == pytest.approx((10.0 + 3.0 - 1.0 / 0.75 + 1.25) / 3)
    assert res["n"] == 3
    assert res["ci_low"] <= res["effect"] <= res["ci_high"]
    masked = dr_average_effect(Y, T, MU0, MU1, E, mask=[True, False, True], n_boot=50)
    assert masked["effect"] == pytest.approx((10.0 + 1.25) / 2)  # 5.625
    assert masked["n"] == 2
    empty = dr_average_effect(Y, T, MU0, MU1, E, mask=[False] * 3)
    assert empty["n"] == 0 and math.isnan(empty["effect"])


def test_naive_difference() -> None:
    # treated mean (10 + 6) / 2 = 8, control mean 4 -> 4
    assert naive_difference(Y, T) == pytest.approx(4.0)


def test_placebo_check_pass_and_fail() -> None:
    real = {"effect": 1.0, "ci_low": 0.8, "ci_high": 1.2}
    # CI contains 0 -> pass
    assert placebo_check({"effect": 0.5, "ci_low": -0.1, "ci_high": 1.1}, real)["passed"]
    # CI excludes 0 but |0.2| <= 0.25 * |1.0| -> pass
    assert placebo_check({"effect": 0.2, "ci_low": 0.1, "ci_high": 0.3}, real)["passed"]
    # CI excludes 0 and |0.5| > 0.25 -> fail, with a reason
    res = placebo_check({"effect": 0.5, "ci_low": 0.4, "ci_high": 0.6}, real)
    assert not res["passed"]
    assert res["ratio"] == pytest.approx(0.5)
    assert "excludes 0" in res["reason"]
    # not computable -> fail
    assert not placebo_check({"effect": math.nan, "ci_low": math.nan, "ci_high": math.nan}, real)["passed"]


def test_stability_check_pass_and_fail() -> None:
    # CI width 0.784 -> se = 0.784 / 3.92 = 0.2 for both halves
    # threshold = 2 * sqrt(0.2^2 + 0.2^2) = 2 * 0.28284 = 0.56569
    a = {"effect": 1.0, "ci_low": 0.608, "ci_high": 1.392}
    b_close = {"effect": 1.5, "ci_low": 1.108, "ci_high": 1.892}  # diff 0.5 <= 0.566
    b_far = {"effect": 2.0, "ci_low": 1.608, "ci_high": 2.392}  # diff 1.0 > 0.566
    ok = stability_check(a, b_close, rank_correlation=0.8)
    assert ok["passed"]
    assert ok["se_a"] == pytest.approx(0.2)
    assert ok["threshold"] == pytest.approx(2 * math.sqrt(0.08))
    assert ok["rank_correlation"] == pytest.approx(0.8)
    assert "rank correlation" in ok["reason"]
    bad = stability_check(a, b_far)
    assert not bad["passed"]
    assert bad["difference"] == pytest.approx(1.0)
    assert math.isnan(bad["rank_correlation"])
