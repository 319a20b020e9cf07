"""The DR-learner (Kennedy, 2023): the effect learned directly, not as a difference of two outcome models.

A two-model (T-) learner fits spend per arm and subtracts; a 10% error in
either arm's level is an effect as large as the real one, and nothing pulls
the difference toward 0. The DR-learner instead regresses each row's doubly
robust (AIPW) pseudo-outcome on the features:

1. cross-fitted nuisance (:func:`promo_roi.causal.nuisance.crossfit_nuisance`):
   ``mu0``, ``mu1`` and the propensity ``e`` for every training row from
   models that never saw its household;
2. ``phi = mu1 - mu0 + t (y - mu1) / e - (1 - t)(y - mu0) / (1 - e)``, with
   ``e`` clipped (:func:`promo_roi.causal.metrics.aipw_pseudo_outcome`): its
   conditional mean is the effect wherever either nuisance model is right;
3. a second-stage regression of ``phi`` on the features: the effect.

``phi`` is noisy (inverse propensity weights up to 1/clip), so the second
stage is a smaller, more regularised booster than the nuisance models
(:data:`EFFECT_PARAMS`, chosen once from the estimator's usual practice, not
tuned on any benchmark). The arms' levels, which forecasts and spend errors
need, come from a T-learner fitted on all training rows: ``mu0`` as it
predicts, ``mu1 = mu0 + effect``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from promo_roi.causal.metrics import aipw_pseudo_outcome
from promo_roi.causal.nuisance import (
    DEFAULT_LGBM_PARAMS,
    OutcomeKind,
    TLearner,
    _as_matrix,
    _as_vector,
    _check_kind,
    _fit_or_constant,
    crossfit_nuisance,
)

__all__ = ["EFFECT_PARAMS", "DRLearner", "effect_leaf_rows"]

# The second stage fits a target whose noise is several times its signal: shallow trees, large leaves and
# fewer rounds keep it from fitting the noise of the inverse weights. A leaf holds at least
# LEAF_SHARE of the rows, between LEAF_ROWS (the nuisance models' 20) and EFFECT_PARAMS' 200: on a few
# hundred rows, 200 would leave one leaf and a constant effect.
EFFECT_PARAMS: dict[str, Any] = {**DEFAULT_LGBM_PARAMS, "num_leaves": 7, "min_child_samples": 200,
                                 "n_estimators": 100}
LEAF_SHARE = 0.05
LEAF_ROWS = 20


def effect_leaf_rows(n_rows: int, largest: int = EFFECT_PARAMS["min_child_samples"]) -> int:
    """The second stage's smallest leaf for ``n_rows`` training rows."""
    return max(LEAF_ROWS, min(largest, int(LEAF_SHARE * n_rows)))


class DRLearner:
    """``fit(X, t, y, groups)`` then ``predict(X) -> (mu0, mu1, effect)``, as :class:`TLearner` predicts arms.

    ``groups`` (household ids) keep a household's rows on one side of every
    cross-fitting split. ``levels``: an already fitted :class:`TLearner` on the
    same rows to take the arms' levels from (else one is fitted here). For a
    binary outcome ``mu1`` is held to [0, 1]; the effect is not.
    """

    def __init__(self, folds: int = 5, seed: int = 0, params: dict[str, Any] | None = None,
                 effect_params: dict[str, Any] | None = None, clip: tuple[float, float] = (0.01, 0.99)) -> None:
        self.folds = folds
        self.seed = seed
        self.params = params
        self.effect_params = {**EFFECT_PARAMS, **(effect_params or {})}
        self.clip = clip
        self._effect = None
        self._levels: TLearner | None = None
        self._kind: OutcomeKind = "regression"

    def pseudo_outcomes(self, X: Any, t: Any, y: Any, groups: Any = None,
                        outcome_kind: OutcomeKind = "regression") -> np.ndarray:
        """The cross-fitted AIPW pseudo-outcome of every row (step 1 and 2)."""
        nuisance = crossfit_nuisance(X, t, y, groups=groups, folds=self.folds, seed=self.seed,
                                     outcome_kind=outcome_kind, params=self.params)
        return aipw_pseudo_outcome(y, t, nuisance["mu0"], nuisance["mu1"], nuisance["e"], clip=self.clip)

    def fit(self, X: Any, t: Any, y: Any, groups: Any = None, outcome_kind: OutcomeKind = "regression",
            levels: TLearner | None = None) -> "DRLearner":
        _check_kind(outcome_kind)
        X_ = _as_matrix(X)
        t_ = _as_vector("t", t, len(X_), binary=True)
        y_ = _as_vector("y", y, len(X_), binary=outcome_kind == "binary")
        phi = self.pseudo_outcomes(X_, t_, y_, groups, outcome_kind)
        # The second stage is a regression whatever the outcome: an effect on a probability is a difference.
        params = {**self.effect_params,
                  "min_child_samples": effect_leaf_rows(len(X_), self.effect_params["min_child_samples"])}
        self._effect = _fit_or_constant(X_, phi, "regression", params, self.seed, float(phi.mean()))
        self._levels = levels if levels is not None else TLearner(self.params, self.seed).fit(X_, t_, y_, outcome_kind)
        self._kind = outcome_kind
        return self

    def predict(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._effect is None or self._levels is None:
            raise RuntimeError("DRLearner.predict called before fit")
        X_ = _as_matrix(X)
        mu0, _ = self._levels.predict(X_)
        effect = self._effect.predict(X_)
        mu1 = mu0 + effect
        return mu0, (np.clip(mu1, 0.0, 1.0) if self._kind == "binary" else mu1), effect
