"""Cross-fitted nuisance models for doubly robust (AIPW) uplift evaluation.

Competing uplift models are scored on the SAME pseudo-outcomes, built from
the nuisance predictions here (outcome per arm ``mu0``, ``mu1`` and
propensity ``e``), so the yardstick does not depend on the model being
measured. The predictions are out-of-fold: each row is predicted by models
that never saw its household (``GroupKFold`` on household ids), because
in-sample nuisance fits overfit the very residuals AIPW corrects with.

Degenerate training sets are expected, not exceptional. In Complete Journey
untargeted households can almost never redeem a campaign's coupons, so the
control arm's redemption label is often constant (all 0), and a fold may
have no control rows at all when targeting is near deterministic. Those cases
get a constant prediction instead of a crash:

* an arm with no rows -> the mean outcome of the whole training fold;
* an arm whose label is constant -> that constant (the arm's mean);
* a constant treatment -> a constant propensity equal to it.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.model_selection import GroupKFold, KFold

__all__ = [
    "DEFAULT_LGBM_PARAMS",
    "OutcomeKind",
    "PropensityModel",
    "TLearner",
    "crossfit_nuisance",
    "crossfit_outcome",
    "crossfit_propensity",
]

OutcomeKind = Literal["regression", "binary"]

# Small, deterministic boosters: nuisance fits are many (folds x 3) and only
# need to be decent, not tuned. force_row_wise makes `deterministic` hold
# (LightGBM otherwise picks row/col-wise histograms by timing).
DEFAULT_LGBM_PARAMS: dict[str, Any] = {
    "num_leaves": 15,
    "n_estimators": 200,
    "learning_rate": 0.05,
    "min_child_samples": 20,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
    "n_jobs": 2,
}


class _Predictor(Protocol):
    def predict(self, X: np.ndarray) -> np.ndarray: ...


class _Constant:
    """Predicts one value for every row (the degenerate-case fallback)."""

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.value, dtype=float)


class _Booster:
    """A fitted LightGBM model; classifiers predict P(label = 1)."""

    def __init__(self, model: LGBMClassifier | LGBMRegressor) -> None:
        self.model = model

    def predict(self, X: np.ndarray) -> np.ndarray:
        if isinstance(self.model, LGBMClassifier):
            return np.asarray(self.model.predict_proba(X)[:, 1], dtype=float)
        return np.asarray(self.model.predict(X), dtype=float)


def _lgbm_params(params: dict[str, Any] | None, seed: int) -> dict[str, Any]:
    return {**DEFAULT_LGBM_PARAMS, "random_state": seed, **(params or {})}


def _as_matrix(X: Any) -> np.ndarray:
    arr = np.asarray(X, dtype=float)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"X must be a non-empty 2-D array, got shape {arr.shape}")
    return arr


def _as_vector(name: str, values: Any, n: int, binary: bool = False) -> np.ndarray:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size != n:
        raise ValueError(f"length mismatch: X has {n} rows, {name} has {arr.size}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if binary and not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{name} must contain only 0 and 1")
    return arr


def _check_kind(outcome_kind: str) -> None:
    if outcome_kind not in ("regression", "binary"):
        raise ValueError(f"outcome_kind must be 'regression' or 'binary', got {outcome_kind!r}")


def _fit_or_constant(
    X: np.ndarray,
    y: np.ndarray,
    kind: OutcomeKind,
    params: dict[str, Any] | None,
    seed: int,
    fallback: float,
) -> _Predictor:
    """LightGBM on (X, y), or a constant when there is nothing to learn.

    No rows -> ``fallback``; a constant label -> that label. Both happen in
    real folds (see the module docstring) and LightGBM cannot fit a
    classifier on one class.
    """
    if y.size == 0:
        return _Constant(fallback)
    if np.unique(y).size < 2:
        return _Constant(y[0])
    model_cls = LGBMClassifier if kind == "binary" else LGBMRegressor
    model = model_cls(**_lgbm_params(params, seed))
    model.fit(X, y.astype(int) if kind == "binary" else y)
    return _Booster(model)


class PropensityModel:
    """``e(x) = P(t = 1 | x)`` with a small LightGBM classifier.

    A constant ``t`` in the training data gives a constant ``e`` (0 or 1);
    AIPW clips it, and the positivity summary will flag it.
    """

    def __init__(self, params: dict[str, Any] | None = None, seed: int = 0) -> None:
        self.params = params
        self.seed = seed
        self._model: _Predictor | None = None

    def fit(self, X: Any, t: Any) -> PropensityModel:
        X_ = _as_matrix(X)
        t_ = _as_vector("t", t, len(X_), binary=True)
        self._model = _fit_or_constant(X_, t_, "binary", self.params, self.seed, float(t_.mean()))
        return self

    def predict(self, X: Any) -> np.ndarray:
        if self._model is None:
            raise RuntimeError("PropensityModel.predict called before fit")
        return self._model.predict(_as_matrix(X))


class TLearner:
    """One outcome model per arm: ``mu0`` fitted on controls, ``mu1`` on treated.

    An arm with no rows predicts the mean outcome over all training rows; an
    arm with a constant label predicts that label (e.g. untargeted households
    that never redeem -> ``mu0 = 0``). For ``outcome_kind="binary"`` the
    predictions are probabilities.
    """

    def __init__(self, params: dict[str, Any] | None = None, seed: int = 0) -> None:
        self.params = params
        self.seed = seed
        self._arms: tuple[_Predictor, _Predictor] | None = None

    def fit(self, X: Any, t: Any, y: Any, outcome_kind: OutcomeKind = "regression") -> TLearner:
        _check_kind(outcome_kind)
        X_ = _as_matrix(X)
        t_ = _as_vector("t", t, len(X_), binary=True)
        y_ = _as_vector("y", y, len(X_), binary=outcome_kind == "binary")
        overall = float(y_.mean())

        def fit_arm(arm: float) -> _Predictor:
            rows = t_ == arm
            return _fit_or_constant(X_[rows], y_[rows], outcome_kind, self.params, self.seed, overall)

        self._arms = (fit_arm(0.0), fit_arm(1.0))
        return self

    def predict(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        if self._arms is None:
            raise RuntimeError("TLearner.predict called before fit")
        X_ = _as_matrix(X)
        return self._arms[0].predict(X_), self._arms[1].predict(X_)


def _splits(
    n: int, groups: Any, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/test index pairs: GroupKFold on ``groups`` or a seeded shuffled KFold.

    ``folds`` is capped at the number of groups (rows); fewer than 2 raises,
    since out-of-fold prediction is then impossible.
    """
    if groups is not None:
        g = np.asarray(groups).reshape(-1)
        if g.size != n:
            raise ValueError(f"length mismatch: X has {n} rows, groups has {g.size}")
        k = min(folds, np.unique(g).size)
        if k < 2:
            raise ValueError(f"need at least 2 distinct groups for cross-fitting, got {k}")
        return list(GroupKFold(n_splits=k).split(np.zeros(n), groups=g))
    k = min(folds, n)
    if k < 2:
        raise ValueError(f"need at least 2 rows and folds >= 2 for cross-fitting, got {k}")
    return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n)))


def crossfit_outcome(
    X: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None = None,
    folds: int = 5,
    seed: int = 0,
    outcome_kind: OutcomeKind = "regression",
    params: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold ``mu0`` and ``mu1`` (a :class:`TLearner` per fold) for every row, in the input row order;
    the folds as in :func:`crossfit_nuisance`."""
    _check_kind(outcome_kind)
    X_ = _as_matrix(X)
    n = len(X_)
    t_ = _as_vector("t", t, n, binary=True)
    y_ = _as_vector("y", y, n, binary=outcome_kind == "binary")
    mu0, mu1 = np.full(n, np.nan), np.full(n, np.nan)
    for train, test in _splits(n, groups, folds, seed):
        mu0[test], mu1[test] = TLearner(params, seed).fit(X_[train], t_[train], y_[train], outcome_kind).predict(
            X_[test])
    return mu0, mu1


def crossfit_propensity(
    X: np.ndarray,
    t: np.ndarray,
    groups: np.ndarray | None = None,
    folds: int = 5,
    seed: int = 0,
    params: dict[str, Any] | None = None,
) -> np.ndarray:
    """Out-of-fold ``e`` (a :class:`PropensityModel` per fold) for every row, in the input row order; the
    folds as in :func:`crossfit_nuisance`. It does not depend on an outcome: fit it once for all of a
    frame's outcomes."""
    X_ = _as_matrix(X)
    n = len(X_)
    t_ = _as_vector("t", t, n, binary=True)
    e = np.full(n, np.nan)
    for train, test in _splits(n, groups, folds, seed):
        e[test] = PropensityModel(params, seed).fit(X_[train], t_[train]).predict(X_[test])
    return e


def crossfit_nuisance(
    X: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None = None,
    folds: int = 5,
    seed: int = 0,
    outcome_kind: OutcomeKind = "regression",
    params: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Out-of-fold ``mu0``, ``mu1`` (T-learner) and ``e`` (propensity) for every row.

    Rows are split with ``GroupKFold`` by ``groups`` (household ids: a
    household's rows across campaigns must not be on both sides) or, without
    groups, a ``KFold`` shuffled with ``seed``. In each fold a
    :class:`TLearner` and a :class:`PropensityModel` are fitted on the
    training part and predict the held-out part. ``params`` overrides
    :data:`DEFAULT_LGBM_PARAMS` for all three models. Returns a DataFrame
    with columns ``mu0, mu1, e`` in the input row order (RangeIndex).
    """
    mu0, mu1 = crossfit_outcome(X, t, y, groups, folds, seed, outcome_kind, params)
    return pd.DataFrame({"mu0": mu0, "mu1": mu1, "e": crossfit_propensity(X, t, groups, folds, seed, params)})
