"""Honest evaluation: three models, the same held-out campaigns, the same yardstick.

Targeting is not random, so there is no observed "uplift" to compare with.
Each held-out split gets its own cross-fitted nuisance models (LightGBM
propensity and per-arm outcomes, out-of-fold by household;
:mod:`promo_roi.causal.nuisance`), independent of every model being compared,
and from them AIPW (doubly robust) pseudo-outcomes ``phi``. Every model's
predicted uplift is then ranked against the same ``phi``:

- Qini coefficient and AUUC (per household, bootstrap 95% interval resampling
  households), overall and inside the overlap band of the propensity, where
  both arms are plausible and ``phi`` is trustworthy;
- redemption AUC on targeted households (untargeted ones never redeem in this
  data) and spend WAPE, each on the arm actually observed;
- the doubly robust average effect next to the naive targeted-vs-untargeted
  difference, to show how much of the raw gap is selection.

Refutation, per model and outcome (stored in gold.refutation_checks):
- placebo_ranking (the promotion gate, on coupon-product spend): the same
  campaigns moved back by their duration (the fake window is the real
  pre-period), where no effect can exist; the model's uplift must not rank the
  households by the fake window's DR pseudo-outcomes: its placebo Qini's
  interval covers 0, or the placebo Qini is at most ``placebo_tolerance`` of
  its Qini on the real window;
- placebo: the DR average effect on the fake window with the model's own
  outcome predictions must be ~0 (interval covers 0, or at most
  ``placebo_tolerance`` of the real effect);
- stability: the DR effect with the model's predictions on two random halves of
  the households must agree within ``stability_z`` combined standard errors.

The last two are stored and reported but gate nothing: the doubly robust
correction leaves little of the average to the outcome model, so every model
finds about the same fake effect (on the full data 7-14 on coupon-product
spend, docs/tables.md). They describe the data (how much selection the
correction leaves), and "the interval covers 0" passed the noisier of two
models with the same fake effect. The ranking is the model's own, and noise
does not help it there: a noisy ranking has a placebo Qini near 0 and a real
Qini near 0 too, which loses the paired comparison with the champion.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from promo_roi.causal import bootstrap, metrics
from promo_roi.causal.calibration import (
    NETWORK_SCORE,
    PRE_SPEND_SCORE,
    VALUE_SCORES,
    UpliftCalibration,
    fit_uplift_calibration,
)
from promo_roi.causal.dr_learner import DRLearner
from promo_roi.causal.nuisance import TLearner, crossfit_outcome, crossfit_propensity
from promo_roi.config import EvaluationConfig
from promo_roi.heuristic import pre_spend_score

log = logging.getLogger(__name__)

UPLIFT_OUTCOMES = {
    # outcome column -> (kind, prediction columns t0/t1, uplift column)
    "redeemed": ("binary", "p_redeem_t0", "p_redeem_t1", "uplift_redeem"),
    "coupon_product_spend": ("regression", "coupon_product_spend_t0", "coupon_product_spend_t1",
                             "uplift_coupon_product_spend"),
    "spend": ("regression", "spend_t0", "spend_t1", "uplift_spend"),
}
PRIMARY_OUTCOME = "coupon_product_spend"
CHAMPION_METRIC = "validation_qini_coupon_product_spend"
# LightGBM threads spin while Spark holds the cores: one thread is faster on a small machine.
NUISANCE_PARAMS = {"n_jobs": 1}

Predictor = Callable[[pd.DataFrame], pd.DataFrame]


def design_matrix(encoded: Mapping[str, np.ndarray]) -> np.ndarray:
    """Gradient-boosting input: the standardised numeric features and the category codes."""
    return np.hstack([encoded["x_num"].astype(np.float64), encoded["x_cat"].astype(np.float64)])


def heuristic_predictions(frame: pd.DataFrame) -> pd.DataFrame:
    """Baseline (a): rank households by their spend on the coupon products before the campaign.

    The same number stands in for every prediction: as a spend forecast it says
    "like the same length of time before"; as an uplift it ranks whoever spent
    most first, which is what targeting by past spend does.
    """
    pre_coupon = pre_spend_score(frame)
    pre_spend = frame["pre_spend"].astype(float).to_numpy()
    out = pd.DataFrame({
        "propensity": np.nan,
        "p_redeem_t0": 0.0, "p_redeem_t1": pre_coupon,
        "coupon_product_spend_t0": pre_coupon, "coupon_product_spend_t1": pre_coupon,
        "spend_t0": pre_spend, "spend_t1": pre_spend,
    }, index=range(len(frame)))
    out["uplift_redeem"] = pre_coupon
    out["uplift_coupon_product_spend"] = pre_coupon
    out["uplift_spend"] = pre_coupon
    return out


@dataclass
class TLearnerBaseline:
    """Baseline (b): LightGBM two-model (T-) learner per outcome on the same features."""

    encode: Callable[[pd.DataFrame], Mapping[str, np.ndarray]]
    seed: int = 0

    def fit(self, train: pd.DataFrame) -> "TLearnerBaseline":
        X = design_matrix(self.encode(train))
        t = train["targeted"].astype(float).to_numpy()
        self.models = {}
        for outcome, (kind, *_rest) in UPLIFT_OUTCOMES.items():
            y = train[outcome].astype(float).to_numpy()
            self.models[outcome] = TLearner(params=NUISANCE_PARAMS, seed=self.seed).fit(X, t, y, outcome_kind=kind)
        return self

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        X = design_matrix(self.encode(frame))
        out = pd.DataFrame({"propensity": np.nan}, index=range(len(frame)))
        for outcome, (_kind, c0, c1, uplift) in UPLIFT_OUTCOMES.items():
            mu0, mu1 = self.models[outcome].predict(X)
            out[c0], out[c1], out[uplift] = mu0, mu1, mu1 - mu0
        return out


@dataclass
class DRLearnerBaseline:
    """Baseline (c): the LightGBM DR-learner per outcome (:class:`promo_roi.causal.dr_learner.DRLearner`):
    the effect regressed directly on cross-fitted doubly robust pseudo-outcomes of the training campaigns
    (nuisance folds by household), the arms' levels from ``levels``, the T-learner fitted on the same rows."""

    encode: Callable[[pd.DataFrame], Mapping[str, np.ndarray]]
    levels: TLearnerBaseline
    folds: int = 5
    seed: int = 0

    def fit(self, train: pd.DataFrame) -> "DRLearnerBaseline":
        X = design_matrix(self.encode(train))
        t = train["targeted"].astype(float).to_numpy()
        groups = train["household_id"].to_numpy()
        folds = min(self.folds, len(np.unique(groups)))
        self.models = {
            outcome: DRLearner(folds=folds, seed=self.seed, params=NUISANCE_PARAMS, effect_params=NUISANCE_PARAMS).fit(
                X, t, train[outcome].astype(float).to_numpy(), groups=groups, outcome_kind=kind,
                levels=self.levels.models[outcome])
            for outcome, (kind, *_rest) in UPLIFT_OUTCOMES.items()
        }
        return self

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        X = design_matrix(self.encode(frame))
        out = pd.DataFrame({"propensity": np.nan}, index=range(len(frame)))
        for outcome, (_kind, c0, c1, uplift) in UPLIFT_OUTCOMES.items():
            out[c0], out[c1], out[uplift] = self.models[outcome].predict(X)
        return out


@dataclass
class Nuisance:
    """Cross-fitted propensity and per-outcome arm means for one evaluation frame."""

    e: np.ndarray
    mu: dict[str, tuple[np.ndarray, np.ndarray]]

    def phi(self, frame: pd.DataFrame, outcome: str) -> np.ndarray:
        mu0, mu1 = self.mu[outcome]
        return metrics.aipw_pseudo_outcome(frame[outcome].astype(float), frame["targeted"].astype(float), mu0, mu1,
                                           self.e)


def fit_nuisance(frame: pd.DataFrame, X: np.ndarray, folds: int, seed: int) -> Nuisance:
    t = frame["targeted"].astype(float).to_numpy()
    groups = frame["household_id"].to_numpy()
    n_groups = len(np.unique(groups))
    folds = min(folds, n_groups)
    # One propensity for every outcome: targeting does not depend on what is measured.
    e = crossfit_propensity(X, t, groups=groups, folds=folds, seed=seed, params=NUISANCE_PARAMS)
    mu = {outcome: crossfit_outcome(X, t, frame[outcome].astype(float).to_numpy(), groups=groups, folds=folds,
                                    seed=seed, outcome_kind=kind, params=NUISANCE_PARAMS)
          for outcome, (kind, *_rest) in UPLIFT_OUTCOMES.items()}
    return Nuisance(e=e, mu=mu)


def _row(model: str, split: str, scope: str, outcome: str, metric: str, value: float,
         low: float = math.nan, high: float = math.nan, n: int = 0, campaigns: int = 0) -> dict[str, Any]:
    as_float = lambda v: None if v is None or not math.isfinite(float(v)) else float(v)  # noqa: E731
    return {"model_name": model, "split": split, "scope": scope, "outcome": outcome, "metric": metric,
            "value": as_float(value), "ci_low": as_float(low), "ci_high": as_float(high),
            "n_rows": int(n), "n_campaigns": int(campaigns)}


def score_model(
    name: str,
    predictions: pd.DataFrame,
    frame: pd.DataFrame,
    nuisance: Nuisance,
    split: str,
    cfg: EvaluationConfig,
) -> list[dict[str, Any]]:
    """Factual accuracy and uplift ranking quality of one model on one split."""
    rows = []
    t = frame["targeted"].astype(bool).to_numpy()
    campaigns = frame["campaign_id"].nunique()
    households = frame["household_id"].to_numpy()
    overlap = metrics.overlap_mask(nuisance.e, cfg.overlap_band)
    # Factual accuracy: the prediction for the arm each household was actually in.
    targeted_rows = t
    rows.append(_row(name, split, "overall", "redeemed", "auc",
                     metrics.roc_auc(frame.loc[targeted_rows, "redeemed"].astype(float),
                                     predictions.loc[targeted_rows, "p_redeem_t1"]),
                     n=int(targeted_rows.sum()), campaigns=campaigns))
    for outcome in ("coupon_product_spend", "spend"):
        _kind, c0, c1, _u = UPLIFT_OUTCOMES[outcome]
        factual = np.where(t, predictions[c1], predictions[c0])
        rows.append(_row(name, split, "overall", outcome, "wape",
                         metrics.wape(frame[outcome].astype(float), factual), n=len(frame), campaigns=campaigns))
    for outcome, (_kind, _c0, _c1, uplift) in UPLIFT_OUTCOMES.items():
        phi = nuisance.phi(frame, outcome)
        score = predictions[uplift].to_numpy(dtype=float)
        for scope, mask in (("overall", np.ones(len(frame), bool)), ("overlap", overlap)):
            if mask.sum() < 2:
                rows.append(_row(name, split, scope, outcome, "qini", math.nan, n=int(mask.sum()), campaigns=campaigns))
                continue
            for metric, fn in (("qini", metrics.qini_coefficient), ("auuc", metrics.auuc)):
                point, low, high = bootstrap.bootstrap_ci(fn, (score[mask], phi[mask]), n_boot=cfg.bootstrap_samples,
                                                          seed=cfg.seed, cluster=households[mask])
                rows.append(_row(name, split, scope, outcome, metric, point, low, high, int(mask.sum()), campaigns))
            rows.append(_row(name, split, scope, outcome, "mean_predicted_uplift", float(score[mask].mean()),
                             n=int(mask.sum()), campaigns=campaigns))
    return rows


CURVE_POINTS = 200
CURVE_DECILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # always stored: the report reads them


def curve_rows(name: str, predictions: pd.DataFrame, frame: pd.DataFrame, nuisance: Nuisance, split: str,
               cfg: EvaluationConfig, points: int = CURVE_POINTS) -> list[dict[str, Any]]:
    """gold.uplift_curves rows: the DR gain curve behind each Qini of :func:`score_model`, at about
    ``points`` evenly spaced numbers of targeted rows and at every decile (``round(q * n)`` rows), next to
    random targeting of as many."""
    rows = []
    overlap = metrics.overlap_mask(nuisance.e, cfg.overlap_band)
    for outcome, (_kind, _c0, _c1, uplift) in UPLIFT_OUTCOMES.items():
        phi = nuisance.phi(frame, outcome)
        score = predictions[uplift].to_numpy(dtype=float)
        for scope, mask in (("overall", np.ones(len(frame), bool)), ("overlap", overlap)):
            n = int(mask.sum())
            if n < 2:
                continue
            _fraction, gain = metrics.uplift_curve(score[mask], phi[mask])
            spaced = np.rint(np.linspace(0, n, min(n, points) + 1))
            for k in np.unique(np.concatenate([spaced, np.rint(np.asarray(CURVE_DECILES) * n)]).astype(int)):
                rows.append({"model_name": name, "split": split, "scope": scope, "outcome": outcome,
                             "point": int(k), "n_rows": n, "fraction_targeted": k / n, "gain": float(gain[k]),
                             "random_gain": k / n * float(gain[-1])})
    return rows


def effect_rows(frame: pd.DataFrame, nuisance: Nuisance, split: str, cfg: EvaluationConfig) -> list[dict[str, Any]]:
    """The doubly robust average effect next to the naive difference, per outcome and scope."""
    rows = []
    overlap = metrics.overlap_mask(nuisance.e, cfg.overlap_band)
    campaigns = frame["campaign_id"].nunique()
    for outcome in UPLIFT_OUTCOMES:
        y, t = frame[outcome].astype(float), frame["targeted"].astype(float)
        mu0, mu1 = nuisance.mu[outcome]
        for scope, mask in (("overall", None), ("overlap", overlap)):
            eff = metrics.dr_average_effect(y, t, mu0, mu1, nuisance.e, mask=mask, n_boot=cfg.bootstrap_samples,
                                            seed=cfg.seed, cluster=frame["household_id"].to_numpy())
            rows.append(_row("doubly_robust", split, scope, outcome, "average_effect", eff["effect"],
                             eff["ci_low"], eff["ci_high"], eff["n"], campaigns))
        rows.append(_row("naive_difference", split, "overall", outcome, "average_effect",
                         metrics.naive_difference(y, t), n=len(frame), campaigns=campaigns))
    return rows


def positivity_rows(frame: pd.DataFrame, propensity: np.ndarray, source: str, split: str,
                    cfg: EvaluationConfig) -> list[dict[str, Any]]:
    """Per campaign: propensity distribution by arm and the share inside the overlap band."""
    rows = []
    t = frame["targeted"].astype(float).to_numpy()
    for campaign_id in sorted(frame["campaign_id"].unique()):
        sel = (frame["campaign_id"] == campaign_id).to_numpy()
        s = metrics.positivity_summary(propensity[sel], t[sel], cfg.overlap_band)
        clean = lambda v: None if v is None or not math.isfinite(float(v)) else float(v)  # noqa: E731
        rows.append({
            "split": split, "campaign_id": int(campaign_id), "propensity_source": source,
            "n": int(s["n"]), "n_targeted": int(s["n_treated"]), "auc_propensity": clean(s["auc_propensity"]),
            "share_in_overlap": clean(s["share_in_overlap"]),
            "share_targeted_in_overlap": clean(s["share_treated_in_overlap"]),
            "share_untargeted_in_overlap": clean(s["share_control_in_overlap"]),
            "targeted_p05": clean(s["treated_p05"]), "targeted_p50": clean(s["treated_p50"]),
            "targeted_p95": clean(s["treated_p95"]),
            "untargeted_p05": clean(s["control_p05"]), "untargeted_p50": clean(s["control_p50"]),
            "untargeted_p95": clean(s["control_p95"]),
        })
    return rows


def household_half(household_ids: Sequence[int], seed: int) -> np.ndarray:
    """A fixed pseudo-random half of the households (stable across runs for a seed)."""
    return np.array([
        int(hashlib.sha256(f"{seed}:{h}".encode()).hexdigest()[:8], 16) % 2 == 0 for h in household_ids
    ])


# The refutation checks that decide promotion (on PRIMARY_OUTCOME); the module docstring says why the
# placebo and stability of the DR average effect are not among them.
GATE_CHECKS = ("placebo_ranking",)
DATA_DIAGNOSTIC = "; describes the data, not the model: not a promotion gate"


def _qini_with_interval(score: np.ndarray, phi: np.ndarray, households: np.ndarray,
                        cfg: EvaluationConfig) -> dict[str, float]:
    """Qini (one ranking over every row, as the champion metric) with its household-bootstrap 95% interval,
    in the dict form :func:`metrics.placebo_check` reads."""
    if score.size < 2:
        return {"effect": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": int(score.size)}
    point, low, high = bootstrap.bootstrap_ci(metrics.qini_coefficient, (score, phi), n_boot=cfg.bootstrap_samples,
                                              seed=cfg.seed, cluster=households)
    return {"effect": point, "ci_low": low, "ci_high": high, "n": int(score.size)}


def _placebo_ranking_row(name: str, outcome: str, test: pd.DataFrame, test_pred: pd.DataFrame,
                        test_nuisance: Nuisance, placebo: pd.DataFrame, placebo_pred: pd.DataFrame,
                        placebo_nuisance: Nuisance, cfg: EvaluationConfig) -> dict[str, Any]:
    """Does the model's uplift rank households by an effect that cannot exist? Its Qini against the fake
    window's DR pseudo-outcomes, next to its Qini on the real test window (every row: the champion metric's
    ranking)."""
    uplift = UPLIFT_OUTCOMES[outcome][3]
    # Only the real Qini's point is compared (its interval is score_model's test row), so no bootstrap here.
    real = {"effect": metrics.qini_coefficient(test_pred[uplift].to_numpy(float), test_nuisance.phi(test, outcome))
            if len(test) >= 2 else math.nan}
    fake = _qini_with_interval(placebo_pred[uplift].to_numpy(float), placebo_nuisance.phi(placebo, outcome),
                               placebo["household_id"].to_numpy(), cfg)
    check = metrics.placebo_check(fake, real, cfg.placebo_tolerance, what="Qini")
    return {
        "model_name": name, "check": "placebo_ranking", "outcome": outcome, "passed": bool(check["passed"]),
        "effect": fake["effect"], "ci_low": fake["ci_low"], "ci_high": fake["ci_high"],
        "reference_effect": real["effect"], "naive_effect": None,
        "detail": check["reason"] + f" (the uplift ranking on n={fake['n']} placebo rows; reference_effect = its "
                                    f"Qini on the {len(test)} test rows)",
    }


def refutation_rows(
    name: str,
    test: pd.DataFrame,
    test_pred: pd.DataFrame,
    test_nuisance: Nuisance,
    placebo: pd.DataFrame,
    placebo_pred: pd.DataFrame,
    placebo_nuisance: Nuisance,
    cfg: EvaluationConfig,
) -> list[dict[str, Any]]:
    """Placebo ranking of the model's uplift (every row), and placebo and stability of its doubly robust
    effect (inside the overlap band)."""
    rows = []
    for outcome in ("coupon_product_spend", "spend"):
        _kind, c0, c1, _u = UPLIFT_OUTCOMES[outcome]
        rows.append(_placebo_ranking_row(name, outcome, test, test_pred, test_nuisance, placebo, placebo_pred,
                                        placebo_nuisance, cfg))

        def effect(frame, pred, nuis, mask):
            return metrics.dr_average_effect(frame[outcome].astype(float), frame["targeted"].astype(float),
                                             pred[c0], pred[c1], nuis.e, mask=mask, n_boot=cfg.bootstrap_samples,
                                             seed=cfg.seed, cluster=frame["household_id"].to_numpy())

        test_overlap = metrics.overlap_mask(test_nuisance.e, cfg.overlap_band)
        real = effect(test, test_pred, test_nuisance, test_overlap)
        fake = effect(placebo, placebo_pred, placebo_nuisance,
                      metrics.overlap_mask(placebo_nuisance.e, cfg.overlap_band))
        check = metrics.placebo_check(fake, real, cfg.placebo_tolerance)
        rows.append({
            "model_name": name, "check": "placebo", "outcome": outcome, "passed": bool(check["passed"]),
            "effect": fake["effect"], "ci_low": fake["ci_low"], "ci_high": fake["ci_high"],
            "reference_effect": real["effect"],
            "naive_effect": metrics.naive_difference(placebo[outcome].astype(float), placebo["targeted"].astype(float)),
            "detail": check["reason"] + f" (n={fake['n']} placebo rows in overlap)" + DATA_DIAGNOSTIC,
        })
        half = household_half(test["household_id"].to_numpy(), cfg.seed)
        a = effect(test, test_pred, test_nuisance, test_overlap & half)
        b = effect(test, test_pred, test_nuisance, test_overlap & ~half)
        check = metrics.stability_check(a, b, cfg.stability_z)
        rows.append({
            "model_name": name, "check": "stability", "outcome": outcome, "passed": bool(check["passed"]),
            "effect": a["effect"], "ci_low": a["ci_low"], "ci_high": a["ci_high"],
            "reference_effect": b["effect"], "naive_effect": None,
            "detail": check["reason"] + f" (halves of n={a['n']} and n={b['n']} rows in overlap; "
                                         "effect = half A, reference_effect = half B)" + DATA_DIAGNOSTIC,
        })
    clean = lambda v: None if v is None or not math.isfinite(float(v)) else float(v)  # noqa: E731
    for r in rows:
        for k in ("effect", "ci_low", "ci_high", "reference_effect", "naive_effect"):
            r[k] = clean(r[k])
        r["gates_promotion"] = r["check"] in GATE_CHECKS and r["outcome"] == PRIMARY_OUTCOME
    return rows


def refutations_passed(rows: Sequence[Mapping[str, Any]], model: str) -> bool:
    """The promotion gate: every check of ``model`` that gates promotion passed (GATE_CHECKS on the primary
    outcome, marked ``gates_promotion``); a model without them fails."""
    mine = [r for r in rows if r["model_name"] == model and r["gates_promotion"]]
    return len(mine) == len(GATE_CHECKS) and all(r["passed"] for r in mine)


def validation_metric(predictions: pd.DataFrame, frame: pd.DataFrame, nuisance: Nuisance) -> float:
    """The champion metric: Qini of coupon-product-spend uplift on the validation campaigns."""
    phi = nuisance.phi(frame, PRIMARY_OUTCOME)
    return float(metrics.qini_coefficient(predictions[UPLIFT_OUTCOMES[PRIMARY_OUTCOME][3]].to_numpy(float), phi))


def paired_validation_comparison(candidate: pd.DataFrame, champion: pd.DataFrame, frame: pd.DataFrame,
                                 nuisance: Nuisance, cfg: EvaluationConfig) -> dict[str, float]:
    """Candidate minus champion on the champion metric, on the same validation rows and the same two-stage
    bootstrap draws (campaigns, then households): the paired difference with its 95% interval."""
    column = UPLIFT_OUTCOMES[PRIMARY_OUTCOME][3]
    d = bootstrap.paired_bootstrap_difference(
        metrics.qini_coefficient, candidate[column].to_numpy(float), champion[column].to_numpy(float),
        nuisance.phi(frame, PRIMARY_OUTCOME), campaign=frame["campaign_id"].to_numpy(),
        cluster=frame["household_id"].to_numpy(), n_boot=cfg.bootstrap_samples, seed=cfg.seed)
    return {"champion_metric": d["metric_b"], "difference": d["difference"], "ci_low": d["ci_low"],
            "ci_high": d["ci_high"], "share_better": d["share_a_better"]}


def chosen_value_score(ranking: str, network_minus_heuristic: Mapping[str, float]) -> str:
    """What households are valued and ranked by (``evaluation.ranking``): with ``validated``, the network's
    uplift only where it ranked the validation campaigns' households better than pre-period spend, the paired
    95% interval of the Qini difference (:func:`paired_validation_comparison`) above 0, the bar a candidate
    clears to replace the champion; otherwise the heuristic. A tie goes to the simpler score."""
    if ranking in VALUE_SCORES:
        return ranking
    if ranking != "validated":
        raise ValueError(f"unknown evaluation.ranking {ranking!r}")
    low = network_minus_heuristic["ci_low"]
    return NETWORK_SCORE if low is not None and math.isfinite(low) and low > 0 else PRE_SPEND_SCORE


def ranking_rows(network_minus_heuristic: Mapping[str, float], chosen: str,
                 frame: pd.DataFrame) -> list[dict[str, Any]]:
    """gold.model_evaluation rows of the choice: the network's validation Qini minus the heuristic's (paired,
    95% interval), and for each score whether households are valued by it (1) or not (0)."""
    n, campaigns = len(frame), int(frame["campaign_id"].nunique())
    d = network_minus_heuristic
    rows = [_row(NETWORK_SCORE, "validation", "ranking", PRIMARY_OUTCOME, "qini_minus_heuristic", d["difference"],
                 d["ci_low"], d["ci_high"], n, campaigns)]
    rows += [_row(score, "validation", "ranking", PRIMARY_OUTCOME, "values_households", float(score == chosen),
                  n=n, campaigns=campaigns) for score in VALUE_SCORES]
    return rows


def ensemble_rows(member_predictions: Sequence[pd.DataFrame], ensemble: pd.DataFrame, frame: pd.DataFrame,
                  nuisance: Nuisance, split: str) -> list[dict[str, Any]]:
    """gold.model_evaluation rows (scope ``ensemble``) of how far an ensemble's members disagree on one split,
    on the champion metric's outcome: each member's Qini (model ``transformer_member_<k>``) and the
    ensemble's; the members' Qini standard deviation; the mean over rows of the members' uplift standard
    deviation, and beside it the mean absolute uplift of the ensemble it is to be read against."""
    column = UPLIFT_OUTCOMES[PRIMARY_OUTCOME][3]
    phi = nuisance.phi(frame, PRIMARY_OUTCOME)
    uplift = np.column_stack([p[column].to_numpy(float) for p in member_predictions])
    qinis = [float(metrics.qini_coefficient(uplift[:, k], phi)) for k in range(uplift.shape[1])]
    n, campaigns = len(frame), int(frame["campaign_id"].nunique())
    rows = [_row(f"{NETWORK_SCORE}_member_{k + 1}", split, "ensemble", PRIMARY_OUTCOME, "qini", q,
                 n=n, campaigns=campaigns) for k, q in enumerate(qinis)]
    own = ensemble[column].to_numpy(float)
    spread = {
        "qini": float(metrics.qini_coefficient(own, phi)),
        "members": float(len(qinis)),
        "member_qini_sd": float(np.std(qinis, ddof=1)),
        "member_uplift_sd": float(np.std(uplift, axis=1, ddof=1).mean()) if n else math.nan,
        "mean_abs_uplift": float(np.abs(own).mean()) if n else math.nan,
    }
    rows += [_row(NETWORK_SCORE, split, "ensemble", PRIMARY_OUTCOME, metric, value, n=n, campaigns=campaigns)
             for metric, value in spread.items()]
    return rows


def fit_calibration(
    predictions: Sequence[pd.DataFrame], frames: Sequence[pd.DataFrame], nuisances: Sequence[Nuisance],
    cfg: EvaluationConfig, value_predictions: Sequence[pd.DataFrame] | None = None,
    value_score: str = NETWORK_SCORE,
) -> UpliftCalibration:
    """Calibration of the transformer's predictions on the held-out campaigns (validation and test pooled);
    the spend lines on ``value_predictions``' uplift (the score ``value_score`` names; default the
    transformer's), the redemptions always on the transformer's probability.

    Neither split trained the network's weights; the validation split chose
    its epoch, the champion and the value score, which a linear recalibration
    does not reuse.
    """
    pred = pd.concat(list(predictions), ignore_index=True)
    value = pred if value_predictions is None else pd.concat(list(value_predictions), ignore_index=True)
    frame = pd.concat(list(frames), ignore_index=True)
    phi = {o: np.concatenate([n.phi(f, o) for n, f in zip(nuisances, frames)]) for o in ("spend", "coupon_product_spend")}
    return fit_uplift_calibration(
        tau_spend=value["uplift_spend"], phi_spend=phi["spend"],
        tau_coupon=value["uplift_coupon_product_spend"], phi_coupon=phi["coupon_product_spend"],
        targeted=frame["targeted"], redeemed=frame["redeemed"], p_redeem_targeted=pred["p_redeem_t1"],
        campaign=frame["campaign_id"].to_numpy(), n_boot=cfg.bootstrap_samples, seed=cfg.seed,
        redemptions=frame["redemptions"], value_score=value_score,
    )


def calibration_rows(calibration: UpliftCalibration, model: str = NETWORK_SCORE) -> list[dict[str, Any]]:
    """gold.model_evaluation rows: the calibration's coefficients with 95% bootstrap intervals, and the
    between-campaign sd of each level (spend per household; the log of the redemption ratio). The spend
    lines are the rows of the score they calibrate (``calibration.value_score``), the redemptions ``model``'s."""
    rows = []
    n, campaigns = calibration.rows, len(calibration.campaigns)
    for outcome, linear in (("spend", calibration.spend), ("coupon_product_spend", calibration.coupon_product_spend)):
        interval = linear.interval(0.95)
        scored = calibration.value_score
        rows.append(_row(scored, "heldout", "calibration", outcome, "calibration_intercept", linear.intercept,
                         *interval["intercept"], n, campaigns))
        rows.append(_row(scored, "heldout", "calibration", outcome, "calibration_slope", linear.slope,
                         *interval["slope"], n, campaigns))
        rows.append(_row(scored, "heldout", "calibration", outcome, "between_campaign_sd",
                         linear.between_campaign_sd, n=n, campaigns=campaigns))
    draws = calibration.redemption.draws
    rows.append(_row(model, "heldout", "calibration", "redeemed", "calibration_ratio", calibration.redemption.ratio,
                     float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975)), n, campaigns))
    counts = calibration.redemptions.draws
    rows.append(_row(model, "heldout", "calibration", "redemptions", "calibration_ratio",
                     calibration.redemptions.ratio, float(np.quantile(counts, 0.025)),
                     float(np.quantile(counts, 0.975)), n, campaigns))
    rows.append(_row(model, "heldout", "calibration", "redemptions", "between_campaign_sd",
                     calibration.redemptions.between_campaign_sd, n=n, campaigns=campaigns))
    shrunk = calibration.redemption_count_shrunk
    if shrunk is not None:
        interval = shrunk.interval(0.95)
        for name in ("intercept", "slope"):
            rows.append(_row(model, "heldout", "calibration", "redemptions", f"shrunk_count_{name}",
                             getattr(shrunk, name), *interval[name], n, campaigns))
    return rows
