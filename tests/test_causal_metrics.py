"""Doubly robust uplift metrics: expected values are worked out by hand below."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from promo_roi.causal.bootstrap import (
    bootstrap_ci,
    bootstrap_replicates,
    bootstrap_resamples,
    paired_bootstrap_difference,
)
from promo_roi.causal.metrics import (
    aipw_pseudo_outcome,
    auuc,
    campaign_uplift_metrics,
    dr_average_effect,
    naive_difference,
    overlap_mask,
    placebo_check,
    pooled_auuc,
    pooled_qini,
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


def test_uplift_curve_tie_block_is_interpolated() -> None:
    # scores tie at 1 (phi 5 and -1, sum 4), then row 2: the block's gain runs linearly
    # from 0 to 4 over its two rows -> 0, 2, 4, then + 2 -> 6 (whatever the order of rows 0 and 1)
    _, gain = uplift_curve([1.0, 1.0, 0.0], [5.0, -1.0, 2.0])
    np.testing.assert_allclose(gain, [0.0, 2.0, 4.0, 6.0])
    _, gain = uplift_curve([1.0, 1.0, 0.0], [-1.0, 5.0, 2.0])
    np.testing.assert_allclose(gain, [0.0, 2.0, 4.0, 6.0])


# Five rows with a block of three tied scores.
TIE_SCORE = [3.0, 1.0, 1.0, 1.0, 0.0]
TIE_PHI = [2.0, 4.0, -1.0, 0.0, 1.0]
# descending: row 0 (phi 2), block {rows 1, 2, 3} (phi sum 4 - 1 + 0 = 3), row 4 (phi 1)
# knots: k = 0 -> 0, k = 1 -> 2, k = 4 -> 2 + 3 = 5, k = 5 -> 6
# inside the block: k = 2 -> 2 + 1/3 * 3 = 3, k = 3 -> 2 + 2/3 * 3 = 4
TIE_GAIN = [0.0, 2.0, 3.0, 4.0, 5.0, 6.0]
# trapezoid, step 0.2: 0.2 * ((0+2)/2 + (2+3)/2 + (3+4)/2 + (4+5)/2 + (5+6)/2) = 0.2 * 17 = 3.4
# auuc = 3.4 / 5 = 0.68; random line to (1, 6) has area 3 -> qini = (3.4 - 3) / 5 = 0.08
TIE_AUUC = 3.4 / 5
TIE_QINI = (3.4 - 3.0) / 5


def _plain_area(phi_in_rank_order: list[float]) -> float:
    """Trapezoid area of the cumulative-sum curve for a given full order (no tie handling)."""
    gain = np.concatenate(([0.0], np.cumsum(phi_in_rank_order)))
    n = len(phi_in_rank_order)
    return float(np.sum((gain[1:] + gain[:-1]) / 2.0) / n)


def test_ties_hand_computed() -> None:
    fraction, gain = uplift_curve(TIE_SCORE, TIE_PHI)
    np.testing.assert_allclose(fraction, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(gain, TIE_GAIN)
    assert auuc(TIE_SCORE, TIE_PHI) == pytest.approx(TIE_AUUC)
    assert qini_coefficient(TIE_SCORE, TIE_PHI) == pytest.approx(TIE_QINI)
    # the same number is the mean over the 3! orders of the tied block of the plain Qini
    plain = [(_plain_area([2.0, *block, 1.0]) - 6.0 / 2) / 5 for block in itertools.permutations([4.0, -1.0, 0.0])]
    assert np.mean(plain) == pytest.approx(TIE_QINI)
    assert min(plain) < TIE_QINI < max(plain)  # the old stable-sort rule depended on which came first


def test_ties_do_not_depend_on_row_order() -> None:
    s, phi = np.array(TIE_SCORE), np.array(TIE_PHI)
    for perm in itertools.permutations(range(5)):  # all 120 row orders
        p = list(perm)
        np.testing.assert_allclose(uplift_curve(s[p], phi[p])[1], TIE_GAIN, rtol=0, atol=1e-12)
        assert qini_coefficient(s[p], phi[p]) == pytest.approx(TIE_QINI, abs=1e-12)
        assert auuc(s[p], phi[p]) == pytest.approx(TIE_AUUC, abs=1e-12)
    # larger: 80% of 2000 scores exactly 0 (the heuristic's pre-period spend), the rest in a few values
    rng = np.random.default_rng(7)
    n = 2000
    score = np.where(rng.random(n) < 0.8, 0.0, rng.integers(1, 6, n).astype(float))
    phi = rng.normal(0.5, 3.0, n)
    q0, a0 = qini_coefficient(score, phi), auuc(score, phi)
    for _ in range(25):
        p = rng.permutation(n)
        assert qini_coefficient(score[p], phi[p]) == pytest.approx(q0, abs=1e-10)
        assert auuc(score[p], phi[p]) == pytest.approx(a0, abs=1e-10)
    # a constant score is random targeting: Qini 0, gain on the straight line
    _, gain = uplift_curve(np.zeros(n), phi)
    np.testing.assert_allclose(gain, np.arange(n + 1) / n * phi.sum(), atol=1e-9)
    assert qini_coefficient(np.zeros(n), phi) == pytest.approx(0.0, abs=1e-12)


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


# Paired bootstrap differences --------------------------------------------------


def _simulated(seed: int = 0, n: int = 1200):
    """Six campaigns of 200 rows, 600 households. True effect tau ~ N(1, 1); phi = tau + N(0, 6^2)
    noise; score a = tau + small noise (a good model), score b = pure noise (a useless one)."""
    rng = np.random.default_rng(seed)
    campaign = np.repeat(np.arange(6), n // 6)
    household = rng.integers(0, 600, n)
    tau = rng.normal(1.0, 1.0, n)
    phi = tau + rng.normal(0.0, 6.0, n)
    return tau + rng.normal(0.0, 0.1, n), rng.normal(size=n), phi, campaign, household


def test_paired_difference_with_itself_is_zero_and_swap_negates() -> None:
    a, b, phi, campaign, household = _simulated()
    same = paired_bootstrap_difference(qini_coefficient, a, a, phi, cluster=household, n_boot=50)
    assert (same["difference"], same["ci_low"], same["ci_high"]) == (0.0, 0.0, 0.0)
    assert same["share_a_better"] == 0.0 and same["n_boot"] == 50 and same["n_valid"] == 50
    assert same["n_clusters"] == np.unique(household).size and same["n_campaigns"] is None
    ab = paired_bootstrap_difference(qini_coefficient, a, b, phi, campaign=campaign, cluster=household, n_boot=50)
    ba = paired_bootstrap_difference(qini_coefficient, b, a, phi, campaign=campaign, cluster=household, n_boot=50)
    assert ba["difference"] == -ab["difference"]
    assert ba["ci_low"] == pytest.approx(-ab["ci_high"], abs=1e-12)
    assert ba["ci_high"] == pytest.approx(-ab["ci_low"], abs=1e-12)
    assert ab["share_a_better"] + ba["share_a_better"] == pytest.approx(1.0)  # no exact ties here
    assert ab["n_campaigns"] == 6


def test_paired_difference_detects_what_overlapping_intervals_miss() -> None:
    a, b, phi, _campaign, household = _simulated()
    kw = {"cluster": household, "n_boot": 100, "seed": 1}
    # AUUC = Qini + mean(phi) / 2: the mean(phi) noise is shared by both models on a draw.
    _pa, low_a, high_a = bootstrap_ci(auuc, (a, phi), **kw)
    _pb, low_b, high_b = bootstrap_ci(auuc, (b, phi), **kw)
    assert low_a < high_b and low_b < high_a  # separate intervals overlap: "no difference"
    d = paired_bootstrap_difference(auuc, a, b, phi, **kw)
    assert d["ci_low"] > 0.0  # the paired difference says a is better
    assert d["share_a_better"] == 1.0
    assert d["difference"] == pytest.approx(auuc(a, phi) - auuc(b, phi))
    # auuc - qini = sum(phi) / (2n) for any score, so the paired differences are equal
    dq = paired_bootstrap_difference(qini_coefficient, a, b, phi, **kw)
    assert dq["difference"] == pytest.approx(d["difference"])
    assert (dq["ci_low"], dq["ci_high"]) == pytest.approx((d["ci_low"], d["ci_high"]))


def test_replicates_use_the_draws_of_bootstrap_ci() -> None:
    a, b, phi, _campaign, household = _simulated(n=300)
    reps = bootstrap_replicates(qini_coefficient, {"a": a, "b": b, "c": -a}, phi, cluster=household, n_boot=40, seed=5)
    for name, score in (("a", a), ("b", b), ("c", -a)):
        assert reps.interval(name) == bootstrap_ci(qini_coefficient, (score, phi), n_boot=40, seed=5, cluster=household)
    np.testing.assert_array_equal(reps.difference("a", "c")["share_a_better"], 1.0)


def test_two_stage_draws_whole_campaigns_then_households() -> None:
    # campaign A: household 1 (rows 0, 1), household 2 (row 2); campaign B: household 1 (row 3),
    # households 3 (row 4) and 4 (row 5)
    campaign = np.array(["A", "A", "A", "B", "B", "B"])
    household = np.array([1, 1, 2, 1, 3, 4])
    units = {("A", 1): [0, 1], ("A", 2): [2], ("B", 1): [3], ("B", 3): [4], ("B", 4): [5]}
    households_in = {"A": 2, "B": 3}
    seen_twice = set()
    for rows, draw in bootstrap_resamples(6, campaign=campaign, cluster=household, n_boot=200, seed=2):
        assert sorted(set(draw.tolist())) == [0, 1]  # as many campaign draws as campaigns
        drawn = []
        for d in (0, 1):
            mine = rows[draw == d]
            (c,) = set(campaign[mine].tolist())  # one draw holds one campaign's rows only
            drawn.append(c)
            counts = np.bincount(mine, minlength=6)
            # a union of whole (campaign, household) units, with multiplicity ...
            multiplicity = {u: counts[r] for u, r in units.items() if u[0] == c}
            for u, r in units.items():
                if u[0] == c:
                    assert len(set(counts[r].tolist())) == 1
                else:
                    assert counts[r].sum() == 0
            # ... as many household draws as the campaign has households
            assert sum(m[0] for m in multiplicity.values()) == households_in[c]
        if drawn[0] == drawn[1]:
            seen_twice.add(drawn[0])
    assert seen_twice == {"A", "B"}  # campaigns are drawn with replacement
    # without campaign: whole households across campaigns (rows 0, 1, 3 together)
    for rows, draw in bootstrap_resamples(6, cluster=household, n_boot=50, seed=2):
        assert draw is None
        counts = np.bincount(rows, minlength=6)
        assert counts[0] == counts[1] == counts[3]
        assert counts[[0, 2, 4, 5]].sum() == 4  # four household draws


def test_degenerate_draws_do_not_crash() -> None:
    # campaign 1 has one row, all phi equal: every Qini is 0
    score, phi = [0.3, 0.1, 0.2, 0.9], [1.0, 1.0, 1.0, 1.0]
    campaign, household = [0, 0, 0, 1], [10, 11, 12, 10]
    for metric, per in ((qini_coefficient, False), (pooled_qini, True), (pooled_auuc, True)):
        d = paired_bootstrap_difference(metric, score, [0.0] * 4, phi, campaign=campaign, cluster=household,
                                        n_boot=30, per_campaign=per)
        assert d["n_valid"] == 30 and math.isfinite(d["ci_low"]) and math.isfinite(d["ci_high"])
    d = paired_bootstrap_difference(qini_coefficient, score, [0.0] * 4, phi, n_boot=30)
    assert d["difference"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="campaign"):
        paired_bootstrap_difference(pooled_qini, score, score, phi, per_campaign=True)


def test_per_campaign_and_pooled_hand_computed() -> None:
    # rows interleaved: A, B, A, B, A
    score = [2.0, 5.0, 1.0, 5.0, 0.0]
    phi = [3.0, 4.0, 0.0, 0.0, -1.0]
    campaign = ["A", "B", "A", "B", "A"]
    # A: scores 2, 1, 0 / phi 3, 0, -1 -> gain 0, 3, 3, 2; area (1/3)(1.5 + 3 + 2.5) = 7/3
    #    auuc 7/9; random area 2/2 = 1 -> qini (7/3 - 1) / 3 = 4/9
    # B: tied 5, 5 / phi 4, 0 -> gain 0, 2, 4 (interpolated); area 0.5 (1 + 3) = 2
    #    auuc 2/2 = 1; random area 2 -> qini 0
    res = campaign_uplift_metrics(score, phi, campaign)
    assert res.n == 5 and res.n_campaigns == 2
    assert list(res.per_campaign) == ["A", "B"]
    assert res.per_campaign["A"] == pytest.approx({"n": 3, "qini": 4 / 9, "auuc": 7 / 9})
    assert res.per_campaign["B"] == pytest.approx({"n": 2, "qini": 0.0, "auuc": 1.0})
    # pooled, row-weighted: (3 * 4/9 + 2 * 0) / 5 = 4/15; (3 * 7/9 + 2 * 1) / 5 = 13/15
    assert res.qini == pytest.approx(4 / 15)
    assert res.auuc == pytest.approx(13 / 15)
    assert res.qini_equal_weight() == pytest.approx(2 / 9)
    assert pooled_qini(score, phi, campaign) == pytest.approx(4 / 15)
    assert pooled_auuc(score, phi, campaign) == pytest.approx(13 / 15)
    # one ranking over all rows differs: B's tie block (4) first, then 3, 0, -1 -> gain 0, 2, 4, 7, 7, 6
    # area 0.2 (1 + 3 + 5.5 + 7 + 6.5) = 4.6; random 3 -> qini 1.6 / 5 = 0.32
    assert qini_coefficient(score, phi) == pytest.approx(0.32)


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
