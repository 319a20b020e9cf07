"""Cross-fitted nuisance models: selection correction, degenerate folds, out-of-fold."""

from __future__ import annotations

import numpy as np
import pytest

from promo_roi.causal.metrics import dr_average_effect, naive_difference
from promo_roi.causal.nuisance import PropensityModel, TLearner, crossfit_nuisance

# One thread: LightGBM's OpenMP threads spin-wait, so n_jobs=2 on a machine whose
# cores are busy (e.g. a Spark test beside us) runs ~20x slower than n_jobs=1.
ONE_THREAD = {"n_jobs": 1}
# Fewer trees where the test is about structure, not fit quality: keeps the run fast.
FAST = {**ONE_THREAD, "n_estimators": 30}


def confounded_data(n: int = 2000, seed: int = 0):
    """Constant effect +5; targeting follows x0, which also drives the outcome.

    Treated rows have much higher x0, so the naive gap is ~5 + 4 * (gap in x0),
    about 10 here, far from 5.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    t = (rng.random(n) < 1.0 / (1.0 + np.exp(-2.0 * X[:, 0]))).astype(float)
    y = 10.0 + 4.0 * X[:, 0] + 2.0 * X[:, 1] + 5.0 * t + rng.normal(size=n)
    households = np.arange(n) // 2  # two campaigns per household
    return X, t, y, households


def test_dr_effect_recovers_constant_effect() -> None:
    X, t, y, hh = confounded_data()
    assert abs(naive_difference(y, t) - 5.0) > 3.0
    nu = crossfit_nuisance(X, t, y, groups=hh, folds=5, seed=0, params=ONE_THREAD)
    assert list(nu.columns) == ["mu0", "mu1", "e"]
    assert len(nu) == len(y) and np.isfinite(nu.to_numpy()).all()
    res = dr_average_effect(y, t, nu["mu0"], nu["mu1"], nu["e"], cluster=hh, n_boot=100)
    assert res["effect"] == pytest.approx(5.0, abs=1.5)


def test_crossfit_is_deterministic_without_groups() -> None:
    X, t, y, _ = confounded_data(n=300)
    a = crossfit_nuisance(X, t, y, seed=1, params=FAST)
    b = crossfit_nuisance(X, t, y, seed=1, params=FAST)
    assert a.equals(b)


@pytest.mark.parametrize("held_out", [0, 2, 4])
def test_each_group_is_predicted_out_of_fold(held_out: int) -> None:
    # Five groups, five folds: each fold holds out exactly one group. x0 is the
    # group id, so a model that saw the group could memorise it. Only the
    # held-out group has y ~ 100 and is ~95% treated; everyone else has y ~ 0 and
    # is ~5% treated. Out of fold, its predictions must look like the others.
    rng = np.random.default_rng(held_out)
    g = np.repeat(np.arange(5), 60)
    X = np.column_stack([g, rng.normal(size=g.size)])
    special = g == held_out
    y = 100.0 * special + rng.normal(size=g.size)
    t = (rng.random(g.size) < np.where(special, 0.95, 0.05)).astype(float)
    t[:2], t[60:62] = 1.0, 0.0  # both arms present whatever the draw
    params = {**FAST, "min_child_samples": 5}
    nu = crossfit_nuisance(X, t, y, groups=g, folds=5, params=params)
    assert np.abs(nu.loc[special, ["mu0", "mu1"]].to_numpy()).max() < 10.0
    assert nu.loc[special, "e"].mean() < 0.2
    # sanity: fitted in-sample, the same learners do memorise the group
    _, mu1_in = TLearner(params).fit(X, t, y).predict(X[special])
    assert mu1_in.mean() > 50.0
    assert PropensityModel(params).fit(X, t).predict(X[special]).mean() > 0.5


def test_degenerate_folds_give_finite_predictions() -> None:
    # Complete Journey shape: binary redemption, untargeted households never
    # redeem (constant 0 in the control arm), and group 0 is the only one with
    # controls, so when it is held out the training fold is all treated.
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(4), 50)
    X = rng.normal(size=(g.size, 2))
    t = np.where(g == 0, rng.integers(0, 2, g.size), 1).astype(float)
    y = np.where(t == 1, rng.integers(0, 2, g.size), 0).astype(float)
    nu = crossfit_nuisance(X, t, y, groups=g, folds=4, outcome_kind="binary", params=FAST)
    arr = nu.to_numpy()
    assert np.isfinite(arr).all() and (arr >= 0).all() and (arr <= 1).all()
    # group 0 held out: no controls in training -> mu0 = mean y of the training fold,
    # propensity trained on t == 1 only -> e = 1
    train = g != 0
    np.testing.assert_allclose(nu.loc[g == 0, "mu0"], y[train].mean())
    np.testing.assert_allclose(nu.loc[g == 0, "e"], 1.0)
    # other groups: controls in training all have y = 0 -> mu0 = 0 exactly
    np.testing.assert_allclose(nu.loc[g != 0, "mu0"], 0.0)


def test_tlearner_and_propensity_degenerate() -> None:
    X = np.arange(10, dtype=float).reshape(-1, 1)
    t = np.ones(10)
    y = np.arange(10, dtype=float)  # mean 4.5
    mu0, mu1 = TLearner(FAST).fit(X, t, y).predict(X)
    np.testing.assert_allclose(mu0, 4.5)  # empty control arm -> overall mean
    assert np.isfinite(mu1).all()
    np.testing.assert_allclose(PropensityModel(FAST).fit(X, t).predict(X), 1.0)
    # constant outcome in an arm -> that constant
    t2 = np.array([0, 1] * 5, dtype=float)
    y2 = np.where(t2 == 1, 3.0, 7.0)
    mu0, mu1 = TLearner(FAST).fit(X, t2, y2).predict(X)
    np.testing.assert_allclose(mu0, 7.0)
    np.testing.assert_allclose(mu1, 3.0)


def test_input_validation() -> None:
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="t"):
        crossfit_nuisance(X, np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="outcome_kind"):
        crossfit_nuisance(X, np.ones(4), np.ones(4), outcome_kind="poisson")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="groups"):
        crossfit_nuisance(X, np.ones(4), np.ones(4), groups=np.zeros(4))
    with pytest.raises(RuntimeError):
        TLearner().predict(X)


def _out_of_fold(X, t, households, folds, fit_predict) -> np.ndarray:
    """The oracle: each household's rows predicted by a model fitted on the other folds' households."""
    from sklearn.model_selection import GroupKFold

    out = np.full((len(X), 2), np.nan)
    for train, test in GroupKFold(n_splits=folds).split(X, groups=households):
        out[test] = np.column_stack(fit_predict(train, test))
    return out


def test_a_frames_nuisance_fits_the_propensity_once_for_all_its_outcomes(monkeypatch) -> None:
    """evaluate.fit_nuisance: one cross-fitted propensity per frame (targeting does not depend on the outcome) and a
    T-learner per outcome, each the out-of-fold prediction of models fitted on the other households."""
    import pandas as pd

    from promo_roi.training import evaluate

    X, t, y, households = confounded_data(n=240, seed=3)
    frame = pd.DataFrame({"targeted": t, "household_id": households, "spend": y, "coupon_product_spend": y / 4,
                          "redeemed": (y > 12).astype(float)})
    fits = []
    original = PropensityModel.fit
    monkeypatch.setattr(PropensityModel, "fit", lambda self, *a: fits.append(1) or original(self, *a))
    nuisance = evaluate.fit_nuisance(frame, X, folds=3, seed=5)
    assert len(fits) == 3  # one model per fold, not one per fold and outcome

    params = evaluate.NUISANCE_PARAMS
    e = _out_of_fold(X, t, households, 3, lambda train, test: (
        PropensityModel(params, 5).fit(X[train], t[train]).predict(X[test]), np.zeros(len(test))))[:, 0]
    np.testing.assert_array_equal(nuisance.e, e)
    assert set(nuisance.mu) == {"redeemed", "coupon_product_spend", "spend"}
    for outcome, kind in (("redeemed", "binary"), ("coupon_product_spend", "regression"), ("spend", "regression")):
        y_ = frame[outcome].to_numpy()
        mu = _out_of_fold(X, t, households, 3, lambda train, test: TLearner(params, 5).fit(
            X[train], t[train], y_[train], kind).predict(X[test]))
        np.testing.assert_array_equal(nuisance.mu[outcome][0], mu[:, 0])
        np.testing.assert_array_equal(nuisance.mu[outcome][1], mu[:, 1])
