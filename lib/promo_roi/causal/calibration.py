"""Calibrating predicted uplift against doubly robust effects on held-out campaigns.

A network's uplift (its targeted head minus its untargeted head) is not an
effect estimate one can put money on: where targeting was near-deterministic
the untargeted head extrapolates, and on Complete Journey the transformer's
mean predicted spend uplift is tens of times the doubly robust estimate. So
the forecast does not sum raw uplifts. It uses the *best linear predictor*
of the effect given the prediction, fitted on campaigns the network was not
trained on:

    phi_i = a + b * tau_hat_i + e_i

with ``phi`` the AIPW pseudo-outcome of household i (its conditional mean is
the effect, under the usual no-unmeasured-confounding assumption) and
``tau_hat`` the model's uplift. ``a + b * tau_hat`` is then the calibrated
uplift: ``b`` says how much of the predicted heterogeneity is real (1: all
of it, 0: none), ``a`` carries the level. (Chernozhukov, Demirer, Duflo and
Fernandez-Val's BLP of the CATE, on pseudo-outcomes.)

Redemptions are levels, not effects (untargeted households cannot redeem the
campaign's coupons): the targeted head's redemption probability is scaled by
``observed / predicted`` redeemers of the targeted held-out households. What a
campaign pays is per redemption, and a household that redeems redeems several
coupons per campaign (Complete Journey: about 2.5 per redeeming household), so
the expected NUMBER of redemptions gets its own ratio: observed redemptions
over the predicted probability, on the same rows and bootstrap draws.

A plan that picks pairs partly for their low predicted cost picks the pairs
whose cost the network under-predicts most (a winner's curse): the ratio
scales every prediction alike and keeps its noise. ``scoring.redemption_model:
shrunk`` uses instead the expected count given the prediction,
``(1 - beta) * m + beta * r * p``: the ratio's prediction shrunk toward the
held-out mean ``m`` by ``beta``, the slope of the observed counts on ``r * p``
(kept in [0, 1]; 1 is the ratio, 0 one expected count for everyone). It is
fitted beside the ratio on the same rows and resamples, and its campaign
deviation is the ratio's (the same draws on the same log scale).

Uncertainty has two parts, and a forecast is for a campaign not yet seen:

- how well the held-out campaigns pin the line down: a two-stage bootstrap,
  campaigns with replacement, then households within each drawn campaign
  (with a handful of held-out campaigns the first stage dominates). Every
  outcome is fitted on the SAME resample in draw k (spend on all its rows,
  redemptions on its targeted rows), so a forecast that combines draw k of
  the value with draw k of the cost combines one world, not two;
- how far a new campaign's level lies from the line: a campaign random
  effect. The bootstrap's spread of the mean level shrinks like 1/sqrt(C)
  with C campaigns; a new campaign's own deviation does not. Its variance is
  estimated from the held-out campaigns' deviations from the fitted line,
  less what their household sampling explains (DerSimonian and Laird's
  moment estimator), and draw k adds ``sd * z_k`` per household: on the
  level for spend, on the log of the ratio for redemptions. ``z_k`` is
  Student's t with C - 1 degrees of freedom (seeded), not normal: with a
  handful of campaigns the sd itself is uncertain, and normal draws fall
  short of the nominal coverage more. In the simulation of
  tests/test_calibration_and_forecast.py (four campaigns, 200 worlds) the
  90% interval holds a new campaign's level 81.5% of the time (the line's
  bootstrap alone: 46%). Value and cost deviations are drawn independently (a handful of
  campaigns cannot estimate their correlation).

The draws travel with the model and become the forecast's interval.

What the spend lines calibrate is a choice (``value_score``): the network's
uplift, or the pre-period coupon-product spend (the heuristic), whichever
ranked the validation campaigns' households better (``evaluation.ranking``,
:func:`promo_roi.training.evaluate.chosen_value_score`). A household is then
valued, and the plan ranks it, by ``a + b * score`` of that score, with the
same resamples and campaign effects; what a pair costs (its redemptions) is
always the network's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from promo_roi import model_names

# The scores a calibration's spend lines can be fitted on (``UpliftCalibration.value_score``): the network's
# uplift, or the pre-period coupon-product spend households are ranked by where the network did not beat it.
NETWORK_SCORE = model_names.TRANSFORMER
PRE_SPEND_SCORE = model_names.HEURISTIC
VALUE_SCORES = (NETWORK_SCORE, PRE_SPEND_SCORE)
# Each in words, as the forecast's interval_method ends and the headline figures read it back.
VALUED_BY_PREFIX = "households valued by "
VALUED_BY = {
    NETWORK_SCORE: f"{VALUED_BY_PREFIX}the network's calibrated uplift (evaluation.ranking)",
    PRE_SPEND_SCORE: f"{VALUED_BY_PREFIX}their calibrated pre-period coupon-product spend (evaluation.ranking)",
}

METHOD = ("best linear predictor of the AIPW pseudo-outcome on the predicted uplift, held-out campaigns; "
          "two-stage bootstrap (campaigns, then households)")


class CalibrationError(ValueError):
    """The held-out data cannot support a calibration (too few rows, no spread in the predictions)."""


def _ols(tau: np.ndarray, phi: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of phi on tau; slope 0 when tau has no spread."""
    tau_mean = float(tau.mean())
    centred = tau - tau_mean
    denom = float(centred @ centred)
    slope = float(centred @ (phi - phi.mean()) / denom) if denom > 0 else 0.0
    return float(phi.mean()) - slope * tau_mean, slope


def between_campaign_variance(estimates: Any, variances: Any) -> float:
    """DerSimonian-Laird moment estimate of the variance between campaigns' true levels.

    ``estimates``: one level per campaign; ``variances``: each estimate's sampling variance. Campaigns
    with a non-finite estimate or a non-positive variance are left out; fewer than two left: 0.
    ``tau^2 = max(0, (Q - (C - 1)) / (sum w - sum w^2 / sum w))``, ``w = 1 / variance``,
    ``Q = sum w (estimate - weighted mean)^2``.
    """
    y, v = np.asarray(estimates, dtype=float), np.asarray(variances, dtype=float)
    keep = np.isfinite(y) & np.isfinite(v) & (v > 0)
    y, v = y[keep], v[keep]
    if y.size < 2:
        return 0.0
    w = 1.0 / v
    mean = float((w * y).sum() / w.sum())
    q = float((w * (y - mean) ** 2).sum())
    scale = float(w.sum() - (w ** 2).sum() / w.sum())
    return max(0.0, (q - (y.size - 1)) / scale) if scale > 0 else 0.0


def _campaign_level_variance(residual: np.ndarray, campaign: np.ndarray) -> tuple[float, int]:
    """Between-campaign variance of the mean residual per campaign (household sampling removed), and
    the number of campaigns it rests on."""
    means, variances = [], []
    for c in np.unique(campaign):
        r = residual[campaign == c]
        means.append(float(r.mean()))
        variances.append(float(r.var(ddof=1)) / r.size if r.size > 1 else math.nan)
    return between_campaign_variance(means, variances), len(means)


def _campaign_log_ratio_variance(observed: np.ndarray, predicted: np.ndarray,
                                 campaign: np.ndarray) -> tuple[float, int]:
    """Between-campaign variance of log(observed / predicted) per campaign; each campaign's sampling
    variance by the delta method, ``sum (y - R p)^2 / (sum y)^2``. Campaigns with nothing observed or
    predicted are left out (their log is undefined)."""
    logs, variances = [], []
    for c in np.unique(campaign):
        y, p = observed[campaign == c], predicted[campaign == c]
        if y.sum() <= 0 or p.sum() <= 0:
            continue
        ratio = y.sum() / p.sum()
        logs.append(math.log(ratio))
        variances.append(float(((y - ratio * p) ** 2).sum() / y.sum() ** 2))
    return between_campaign_variance(logs, variances), len(logs)


# The z_k streams of the campaign effects, seeded apart from the resamples (which use ``seed`` itself):
# both spend outcomes share one (a campaign that lifts spend lifts its coupon products' spend), both
# redemption ratios another; a third orders them per campaign in sums over a plan's campaigns.
LEVEL_STREAM, REDEMPTION_STREAM, PLAN_TOTAL_STREAM = 1, 2, 3


def _campaign_effects(variance_and_campaigns: tuple[float, int], n: int, seed: int,
                      stream: int) -> tuple[float, np.ndarray]:
    """(sd, its n draws ``sd * z_k``), z_k ~ Student's t with campaigns - 1 degrees of freedom."""
    variance, campaigns = variance_and_campaigns
    sd = math.sqrt(variance)
    if sd == 0.0 or campaigns < 2:
        return 0.0, np.zeros(n)
    return sd, sd * np.random.default_rng([seed, stream]).standard_t(campaigns - 1, n)


def campaign_effect_order(n_draws: int, campaign_id: int) -> np.ndarray:
    """A permutation of the draws keyed by ``campaign_id``: campaign c's own deviation in draw k is the
    stored deviation ``u[order_c[k]]``.

    The stored deviations are one sample of a new campaign's level; every campaign taken alone uses them in
    stored order (its interval). Summed over the campaigns of a plan, they must not move together: the
    random-effects model has each campaign deviate independently of the others, while the bootstrap line
    ``(a_k, b_k)`` is shared. Each campaign's own order gives it the same distribution, paired with the
    shared line independently of the other campaigns (the deviations were drawn independently of the line).
    """
    return np.random.default_rng([PLAN_TOTAL_STREAM, int(campaign_id)]).permutation(n_draws)


def _ordered(effects: np.ndarray | None, order: np.ndarray | None) -> np.ndarray | float:
    if effects is None:
        return 0.0
    return effects if order is None else effects[order]


def two_stage_indices(campaign: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one bootstrap sample: campaigns with replacement, then rows within each."""
    labels, codes = np.unique(campaign, return_inverse=True)
    groups = [np.flatnonzero(codes == g) for g in range(len(labels))]
    picked = rng.integers(0, len(groups), len(groups))
    return np.concatenate([groups[g][rng.integers(0, len(groups[g]), len(groups[g]))] for g in picked])


@dataclass(frozen=True)
class LinearCalibration:
    intercept: float
    slope: float
    draws: np.ndarray  # [n_draws, 2]: (intercept, slope) per bootstrap sample
    between_campaign_sd: float = 0.0           # sd of a new campaign's level per household
    campaign_effects: np.ndarray | None = None  # [n_draws]: sd * z_k; None: fitted before it existed

    def apply(self, tau: Any) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(tau, dtype=float)

    def total(self, households: float, uplift_sum: float) -> float:
        """The calibrated effect summed over ``households`` whose raw uplifts sum to ``uplift_sum``."""
        return self.intercept * households + self.slope * uplift_sum

    def total_draws(self, households: float, uplift_sums: Any, effect_order: np.ndarray | None = None) -> np.ndarray:
        """:meth:`total` in every draw k: the bootstrap line ``(a_k, b_k)`` plus the new campaign's level
        ``u_k`` per household. ``uplift_sums``: one sum, or one per draw (Monte Carlo dropout).
        ``effect_order``: a permutation of the draws giving this campaign its own ``u`` (see
        :func:`campaign_effect_order`), for sums over campaigns whose deviations are independent."""
        effects = _ordered(self.campaign_effects, effect_order)
        return (self.draws[:, 0] + effects) * households + self.draws[:, 1] * np.asarray(uplift_sums, dtype=float)

    def interval(self, level: float) -> dict[str, tuple[float, float]]:
        lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
        return {name: (float(np.quantile(self.draws[:, j], lo)), float(np.quantile(self.draws[:, j], hi)))
                for j, name in enumerate(("intercept", "slope"))}


@dataclass(frozen=True)
class RatioCalibration:
    ratio: float
    draws: np.ndarray  # [n_draws]
    between_campaign_sd: float = 0.0           # sd of a new campaign's log ratio
    campaign_effects: np.ndarray | None = None  # [n_draws]: sd * z_k on the log scale; None: older model

    def ratio_draws(self, effect_order: np.ndarray | None = None) -> np.ndarray:
        """The ratio in every draw k: the bootstrap's, times the new campaign's ``exp(u_k)`` (``effect_order``:
        as for :meth:`LinearCalibration.total_draws`)."""
        return self.draws * np.exp(_ordered(self.campaign_effects, effect_order))

    def apply(self, p: Any) -> np.ndarray:
        """A calibrated probability (kept inside [0, 1])."""
        return np.clip(self.ratio * np.asarray(p, dtype=float), 0.0, 1.0)

    def expected_count(self, p: Any) -> np.ndarray:
        """A calibrated expected count (not bounded by 1)."""
        return np.maximum(self.ratio * np.asarray(p, dtype=float), 0.0)

    def coefficients(self) -> tuple[float, float]:
        """(intercept, slope) of the expected count in the predicted probability: (0, ratio)."""
        return 0.0, self.ratio

    def total(self, households: float, p_sum: float) -> float:
        """The expected count summed over ``households`` whose predicted probabilities sum to ``p_sum``."""
        return self.ratio * p_sum

    def total_draws(self, households: float, p_sums: Any, effect_order: np.ndarray | None = None) -> np.ndarray:
        """:meth:`total` in every draw (``p_sums``: one sum, or one per draw; ``effect_order`` as for
        :meth:`ratio_draws`)."""
        return self.ratio_draws(effect_order) * np.asarray(p_sums, dtype=float)


@dataclass(frozen=True)
class ShrunkCountCalibration(LinearCalibration):
    """The expected number of redemptions given the predicted probability ``p``: the line ``intercept + slope *
    p`` with ``intercept = (1 - beta) * m`` and ``slope = beta * r`` (module docstring), both >= 0. Its
    ``campaign_effects`` are the redemption ratio's, on the log scale: a new campaign scales the count."""

    def expected_count(self, p: Any) -> np.ndarray:
        return self.apply(p)

    def coefficients(self) -> tuple[float, float]:
        return self.intercept, self.slope

    def total_draws(self, households: float, p_sums: Any, effect_order: np.ndarray | None = None) -> np.ndarray:
        """:meth:`total` in every draw k, times the new campaign's ``exp(u_k)`` (as the ratio's draws)."""
        level = self.draws[:, 0] * households + self.draws[:, 1] * np.asarray(p_sums, dtype=float)
        return level * np.exp(_ordered(self.campaign_effects, effect_order))


def _resamples(campaign: np.ndarray, n_boot: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [two_stage_indices(campaign, rng) for _ in range(n_boot)]


def fit_linear(tau: Any, phi: Any, campaign: Any, n_boot: int, seed: int,
               resamples: list[np.ndarray] | None = None) -> LinearCalibration:
    """The line, its bootstrap draws and the campaign effect. ``resamples``: row indices of each draw
    (shared with the other outcomes); by default drawn here from ``seed``."""
    tau_, phi_, camp = (np.asarray(tau, dtype=float), np.asarray(phi, dtype=float), np.asarray(campaign))
    if not (tau_.shape == phi_.shape == camp.shape) or tau_.ndim != 1:
        raise CalibrationError(f"length mismatch: tau={tau_.shape}, phi={phi_.shape}, campaign={camp.shape}")
    keep = np.isfinite(tau_) & np.isfinite(phi_)
    if keep.sum() < 10:
        raise CalibrationError(f"{int(keep.sum())} finite held-out rows: too few to calibrate the uplift")
    resamples = _resamples(camp, n_boot, seed) if resamples is None else resamples
    a, b = _ols(tau_[keep], phi_[keep])
    draws = np.empty((len(resamples), 2))
    for k, idx in enumerate(resamples):
        idx = idx[keep[idx]]
        draws[k] = _ols(tau_[idx], phi_[idx])
    residual = phi_[keep] - (a + b * tau_[keep])
    sd, effects = _campaign_effects(_campaign_level_variance(residual, camp[keep]), len(resamples), seed,
                                    LEVEL_STREAM)
    return LinearCalibration(a, b, draws, sd, effects)


def _count_ratio(y: np.ndarray, p: np.ndarray) -> float:
    """Observed over predicted (1 where nothing is predicted)."""
    total = p.sum()
    return float(y.sum() / total) if total > 0 else 1.0


def _count_rows(observed: Any, predicted: Any, campaign: Any, n_boot: int, seed: int,
                resamples: list[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], float, np.ndarray]:
    """What both redemption calibrations rest on: the targeted rows (observed, predicted), checked, their
    resamples and the campaign effect on the log ratio, (sd, draws)."""
    y, p, camp = np.asarray(observed, dtype=float), np.asarray(predicted, dtype=float), np.asarray(campaign)
    if not (y.shape == p.shape == camp.shape):
        raise CalibrationError(f"length mismatch: observed={y.shape}, predicted={p.shape}, campaign={camp.shape}")
    if y.size == 0 or p.sum() <= 0:
        raise CalibrationError("no targeted held-out households with a positive predicted redemption")
    resamples = _resamples(camp, n_boot, seed) if resamples is None else resamples
    sd, effects = _campaign_effects(_campaign_log_ratio_variance(y, p, camp), len(resamples), seed,
                                    REDEMPTION_STREAM)
    return y, p, resamples, sd, effects


def fit_ratio(observed: Any, predicted: Any, campaign: Any, n_boot: int, seed: int,
              resamples: list[np.ndarray] | None = None) -> RatioCalibration:
    """Observed over predicted, its bootstrap draws and the campaign effect on the log ratio. Every row
    counts; ``resamples`` as for :func:`fit_linear`."""
    y, p, resamples, sd, effects = _count_rows(observed, predicted, campaign, n_boot, seed, resamples)
    draws = np.array([_count_ratio(y[idx], p[idx]) for idx in resamples])
    return RatioCalibration(_count_ratio(y, p), draws, sd, effects)


def _shrunk_line(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(intercept, slope) of ``(1 - beta) * m + beta * r * p`` on rows (y, p) (module docstring)."""
    r = _count_ratio(y, p)
    x = r * p
    spread = float(x.var())
    beta = float(np.clip(np.mean((x - x.mean()) * (y - y.mean())) / spread, 0.0, 1.0)) if spread > 0 else 0.0
    return (1.0 - beta) * float(y.mean()), beta * r


def fit_shrunk_count(observed: Any, predicted: Any, campaign: Any, n_boot: int, seed: int,
                     resamples: list[np.ndarray] | None = None) -> ShrunkCountCalibration:
    """The shrunk expected count, its bootstrap draws and the ratio's campaign effect; arguments as for
    :func:`fit_ratio` (the same rows and resamples give the same campaign-effect draws)."""
    y, p, resamples, sd, effects = _count_rows(observed, predicted, campaign, n_boot, seed, resamples)
    draws = np.array([_shrunk_line(y[idx], p[idx]) if idx.size else (0.0, 1.0) for idx in resamples]).reshape(-1, 2)
    return ShrunkCountCalibration(*_shrunk_line(y, p), draws, sd, effects)


@dataclass(frozen=True)
class UpliftCalibration:
    """What scoring applies to the champion's raw predictions (saved beside its weights)."""

    spend: LinearCalibration
    coupon_product_spend: LinearCalibration
    redemption: RatioCalibration              # redeemers per predicted redemption probability
    campaigns: tuple[int, ...]
    rows: int
    method: str = METHOD
    redemption_count: RatioCalibration | None = None  # redemptions per predicted probability (None: older model)
    # The expected count given the prediction (None: a model calibrated before it existed).
    redemption_count_shrunk: ShrunkCountCalibration | None = None
    # Which of the two prices a pair's redemptions (scoring.redemption_model; set by scoring, not stored).
    redemption_model: str = "ratio"
    # The score the spend lines were fitted on, and so what households are valued and ranked by (VALUE_SCORES;
    # chosen on the validation campaigns, evaluation.ranking). Redemptions are always the network's.
    value_score: str = NETWORK_SCORE

    def __post_init__(self) -> None:
        if self.value_score not in VALUE_SCORES:
            raise CalibrationError(f"unknown value_score {self.value_score!r} (one of {', '.join(VALUE_SCORES)})")

    @property
    def redemptions(self) -> RatioCalibration | ShrunkCountCalibration:
        """The expected-number-of-redemptions calibration ``redemption_model`` names; a model trained before
        it existed is refused."""
        if self.redemption_model == "shrunk":
            if self.redemption_count_shrunk is None:
                raise CalibrationError("the model's calibration has no shrunk redemption count (trained before "
                                       "scoring.redemption_model: shrunk existed): retrain it with jobs/train.py "
                                       "or score with redemption_model ratio")
            return self.redemption_count_shrunk
        if self.redemption_count is None:
            raise CalibrationError("the model's calibration has no redemption-count ratio (trained before expected "
                                   "costs counted redemptions): retrain it with jobs/train.py")
        return self.redemption_count

    @property
    def n_draws(self) -> int:
        return int(self.spend.draws.shape[0])

    def to_dict(self) -> dict[str, Any]:
        def effects(c: LinearCalibration | RatioCalibration) -> dict[str, Any]:
            if c.campaign_effects is None:
                return {}
            return {"between_campaign_sd": c.between_campaign_sd, "campaign_effects": c.campaign_effects.tolist()}

        def linear(c: LinearCalibration) -> dict[str, Any]:
            return {"intercept": c.intercept, "slope": c.slope, "draws": c.draws.tolist(), **effects(c)}

        def ratio(c: RatioCalibration) -> dict[str, Any]:
            return {"ratio": c.ratio, "draws": c.draws.tolist(), **effects(c)}

        return {
            "method": self.method, "campaigns": list(self.campaigns), "rows": self.rows,
            "value_score": self.value_score,
            "spend": linear(self.spend), "coupon_product_spend": linear(self.coupon_product_spend),
            "redemption": ratio(self.redemption),
            **({"redemption_count": ratio(self.redemption_count)} if self.redemption_count is not None else {}),
            **({"redemption_count_shrunk": linear(self.redemption_count_shrunk)}
               if self.redemption_count_shrunk is not None else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "UpliftCalibration":
        def effects(x: Mapping[str, Any]) -> tuple[float, np.ndarray | None]:
            # A model calibrated before the campaign effect existed: its intervals hold the line only.
            if "campaign_effects" not in x:
                return 0.0, None
            return float(x["between_campaign_sd"]), np.asarray(x["campaign_effects"], dtype=float)

        def linear(x: Mapping[str, Any], kind: type[LinearCalibration] = LinearCalibration) -> LinearCalibration:
            return kind(float(x["intercept"]), float(x["slope"]), np.asarray(x["draws"], dtype=float).reshape(-1, 2),
                        *effects(x))

        def ratio(x: Mapping[str, Any] | None) -> RatioCalibration | None:
            return None if x is None else RatioCalibration(float(x["ratio"]), np.asarray(x["draws"], dtype=float),
                                                           *effects(x))

        def shrunk(x: Mapping[str, Any] | None) -> LinearCalibration | None:
            return None if x is None else linear(x, ShrunkCountCalibration)

        out = cls(linear(d["spend"]), linear(d["coupon_product_spend"]), ratio(d["redemption"]),
                  tuple(int(c) for c in d["campaigns"]), int(d["rows"]), str(d.get("method", METHOD)),
                  ratio(d.get("redemption_count")), shrunk(d.get("redemption_count_shrunk")),
                  # A model calibrated before the choice existed valued households by the network's uplift.
                  value_score=str(d.get("value_score", NETWORK_SCORE)))
        parts = [out.spend, out.coupon_product_spend, out.redemption]
        parts += [c for c in (out.redemption_count, out.redemption_count_shrunk) if c is not None]
        counts = {len(c.draws) for c in parts} | {len(c.campaign_effects) for c in parts
                                                  if c.campaign_effects is not None}
        if len(counts) != 1:
            raise CalibrationError("calibration draws differ in number between outcomes")
        return out

    @property
    def has_campaign_effects(self) -> bool:
        """Whether the intervals hold a new campaign's own deviation (models calibrated since 2026-12-03)."""
        return self.spend.campaign_effects is not None

    @classmethod
    def from_json(cls, text: str) -> "UpliftCalibration":
        return cls.from_dict(json.loads(text))


def fit_uplift_calibration(
    tau_spend: Any, phi_spend: Any, tau_coupon: Any, phi_coupon: Any,
    targeted: Any, redeemed: Any, p_redeem_targeted: Any, campaign: Any,
    n_boot: int, seed: int, redemptions: Any, value_score: str = NETWORK_SCORE,
) -> UpliftCalibration:
    """All four calibrations from the same held-out rows and the same resamples: draw k of every outcome
    comes from resample k (the redemption ratios from its targeted rows). ``redemptions``: redemptions
    per household (a count). ``tau_spend`` and ``tau_coupon`` are the scores of ``value_score``."""
    camp = np.asarray(campaign)
    t = np.asarray(targeted, dtype=float) > 0.5
    p = np.asarray(p_redeem_targeted, dtype=float)[t]
    resamples = _resamples(camp, n_boot, seed)
    # Row i of the targeted subset is row targeted_rows[i] of the whole; -1: an untargeted row.
    position = np.full(camp.size, -1)
    position[np.flatnonzero(t)] = np.arange(int(t.sum()))
    targeted_resamples = [position[idx][position[idx] >= 0] for idx in resamples]

    def linear(tau: Any, phi: Any) -> LinearCalibration:
        return fit_linear(tau, phi, camp, n_boot, seed, resamples)

    def ratio(observed: Any) -> RatioCalibration:
        return fit_ratio(np.asarray(observed, dtype=float)[t], p, camp[t], n_boot, seed, targeted_resamples)

    return UpliftCalibration(
        spend=linear(tau_spend, phi_spend), coupon_product_spend=linear(tau_coupon, phi_coupon),
        redemption=ratio(redeemed), campaigns=tuple(sorted(int(c) for c in np.unique(camp))),
        rows=int(camp.size), redemption_count=ratio(redemptions),
        redemption_count_shrunk=fit_shrunk_count(np.asarray(redemptions, dtype=float)[t], p, camp[t], n_boot, seed,
                                                 targeted_resamples),
        value_score=value_score,
    )
