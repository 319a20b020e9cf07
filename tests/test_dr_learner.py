"""The DR-learner: a heterogeneous effect recovered under confounded targeting, where a naive gap invents one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from promo_roi.causal.dr_learner import DRLearner, effect_leaf_rows
from promo_roi.causal.metrics import naive_difference
from promo_roi.training.evaluate import UPLIFT_OUTCOMES, DRLearnerBaseline, TLearnerBaseline

# One thread: LightGBM's OpenMP threads spin-wait on a busy 2-core machine (tests/test_causal_nuisance.py).
ONE_THREAD = {"n_jobs": 1}


def targeted_by_spend(n: int, effect, seed: int):
    """Targeting follows x0, which also drives spend: the targeted would spend ~3 more anyway.

    Spend = 5 + 3 x0 + noise, plus ``effect(X)`` for the targeted. Two campaigns per household.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    t = (rng.random(n) < 1.0 / (1.0 + np.exp(-1.2 * X[:, 0]))).astype(float)
    true_effect = effect(X)
    y = 5.0 + 3.0 * X[:, 0] + t * true_effect + rng.normal(size=n)
    return X, t, y, true_effect, np.arange(n) // 2


def test_recovers_a_heterogeneous_effect_under_confounding() -> None:
    # The effect is 1 + x1: it does not depend on x0, which decides both targeting and spend.
    X, t, y, true_effect, households = targeted_by_spend(4000, lambda X: 1.0 + X[:, 1], seed=3)
    assert naive_difference(y, t) - true_effect.mean() > 2.0  # the selection a naive gap reports as effect
    learner = DRLearner(folds=5, seed=0, params=ONE_THREAD, effect_params=ONE_THREAD).fit(X, t, y, groups=households)
    mu0, mu1, effect = learner.predict(X)
    assert np.allclose(mu1 - mu0, effect)
    assert effect.mean() == pytest.approx(1.0, abs=0.25)
    assert spearmanr(effect, true_effect).statistic > 0.7
    # Ranked by x0 (pre-period spend's stand-in) the households are not ranked by their effect.
    assert abs(spearmanr(X[:, 0], true_effect).statistic) < 0.1


def test_no_effect_stays_near_zero_where_targeting_follows_spend() -> None:
    X, t, y, _true, households = targeted_by_spend(4000, lambda X: np.zeros(len(X)), seed=4)
    naive = naive_difference(y, t)
    assert naive > 2.0
    _mu0, _mu1, effect = DRLearner(folds=5, seed=0, params=ONE_THREAD, effect_params=ONE_THREAD).fit(
        X, t, y, groups=households).predict(X)
    assert abs(effect.mean()) < 0.25
    # Nine households in ten are within a quarter of the naive gap of no effect. (Not all: where targeting is
    # near certain, the inverse weights leave the second stage noisy, up to the gap's size in a few households.)
    assert np.quantile(np.abs(effect), 0.9) < naive / 4


def test_redemptions_that_only_the_targeted_can_make() -> None:
    # Untargeted households cannot redeem (as in Complete Journey): control's label is all 0. The chance to
    # redeem is 0.5 where x1 > 0 and 0.2 elsewhere.
    rng = np.random.default_rng(5)
    n = 4000
    X = rng.normal(size=(n, 3))
    t = (rng.random(n) < 1.0 / (1.0 + np.exp(-X[:, 0]))).astype(float)
    chance = np.where(X[:, 1] > 0, 0.5, 0.2)
    y = t * (rng.random(n) < chance)
    learner = DRLearner(folds=5, seed=0, params=ONE_THREAD, effect_params=ONE_THREAD).fit(
        X, t, y, groups=np.arange(n), outcome_kind="binary")
    mu0, mu1, effect = learner.predict(X)
    assert np.all(mu0 == 0.0) and np.all((mu1 >= 0.0) & (mu1 <= 1.0))
    high, low = effect[X[:, 1] > 0].mean(), effect[X[:, 1] <= 0].mean()
    assert high == pytest.approx(0.5, abs=0.08) and low == pytest.approx(0.2, abs=0.08)


def test_the_smallest_leaf_grows_with_the_rows() -> None:
    assert [effect_leaf_rows(n) for n in (100, 600, 1000, 4000, 40_000)] == [20, 30, 50, 200, 200]


def test_predict_before_fit_is_refused() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        DRLearner().predict(np.zeros((2, 3)))


def test_the_baseline_takes_levels_from_the_t_learner() -> None:
    X, t, y, _true, households = targeted_by_spend(600, lambda X: 1.0 + X[:, 1], seed=6)
    frame = pd.DataFrame({"household_id": households, "targeted": t, "spend": y, "coupon_product_spend": y / 2,
                          "redeemed": t * (y > 6), "x0": X[:, 0], "x1": X[:, 1], "x2": X[:, 2]})

    def encode(f: pd.DataFrame) -> dict[str, np.ndarray]:
        return {"x_num": f[["x0", "x1", "x2"]].to_numpy(), "x_cat": np.zeros((len(f), 0))}

    levels = TLearnerBaseline(encode=encode, seed=0).fit(frame)
    baseline = DRLearnerBaseline(encode=encode, levels=levels, folds=3, seed=0).fit(frame)
    predicted, t_learner = baseline(frame), levels(frame)
    assert list(predicted.columns) == ["propensity", *[c for cols in UPLIFT_OUTCOMES.values() for c in cols[1:]]]
    for _kind, t0, t1, uplift in UPLIFT_OUTCOMES.values():
        assert np.array_equal(predicted[t0], t_learner[t0])  # the levels are the T-learner's
    assert np.allclose(predicted["spend_t1"] - predicted["spend_t0"], predicted["uplift_spend"])
    # Its own second stage on the same rows, fitted here directly, gives the same effects.
    own = DRLearner(folds=3, seed=0, params={"n_jobs": 1}, effect_params={"n_jobs": 1}).fit(
        X, t, y, groups=households, levels=levels.models["spend"])
    assert np.allclose(own.predict(X)[2], predicted["uplift_spend"])
