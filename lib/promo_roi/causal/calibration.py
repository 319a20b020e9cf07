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

Uncertainty is a two-stage bootstrap: campaigns with replacement, then
households within each drawn campaign. With a handful of held-out campaigns
the first stage dominates, and should: how a new campaign will differ from
the ones seen is the largest unknown. The draws travel with the model and
become the forecast's interval.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

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

    def apply(self, tau: Any) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(tau, dtype=float)

    def interval(self, level: float) -> dict[str, tuple[float, float]]:
        lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
        return {name: (float(np.quantile(self.draws[:, j], lo)), float(np.quantile(self.draws[:, j], hi)))
                for j, name in enumerate(("intercept", "slope"))}


@dataclass(frozen=True)
class RatioCalibration:
    ratio: float
    draws: np.ndarray  # [n_draws]

    def apply(self, p: Any) -> np.ndarray:
        """A calibrated probability (kept inside [0, 1])."""
        return np.clip(self.ratio * np.asarray(p, dtype=float), 0.0, 1.0)

    def expected_count(self, p: Any) -> np.ndarray:
        """A calibrated expected count (not bounded by 1)."""
        return np.maximum(self.ratio * np.asarray(p, dtype=float), 0.0)


def fit_linear(tau: Any, phi: Any, campaign: Any, n_boot: int, seed: int) -> LinearCalibration:
    tau_, phi_, camp = (np.asarray(tau, dtype=float), np.asarray(phi, dtype=float), np.asarray(campaign))
    if not (tau_.shape == phi_.shape == camp.shape) or tau_.ndim != 1:
        raise CalibrationError(f"length mismatch: tau={tau_.shape}, phi={phi_.shape}, campaign={camp.shape}")
    keep = np.isfinite(tau_) & np.isfinite(phi_)
    tau_, phi_, camp = tau_[keep], phi_[keep], camp[keep]
    if tau_.size < 10:
        raise CalibrationError(f"{tau_.size} finite held-out rows: too few to calibrate the uplift")
    a, b = _ols(tau_, phi_)
    rng = np.random.default_rng(seed)
    draws = np.empty((n_boot, 2))
    for k in range(n_boot):
        idx = two_stage_indices(camp, rng)
        draws[k] = _ols(tau_[idx], phi_[idx])
    return LinearCalibration(a, b, draws)


def fit_ratio(observed: Any, predicted: Any, campaign: Any, n_boot: int, seed: int) -> RatioCalibration:
    y, p, camp = np.asarray(observed, dtype=float), np.asarray(predicted, dtype=float), np.asarray(campaign)
    if not (y.shape == p.shape == camp.shape):
        raise CalibrationError(f"length mismatch: observed={y.shape}, predicted={p.shape}, campaign={camp.shape}")
    if y.size == 0 or p.sum() <= 0:
        raise CalibrationError("no targeted held-out households with a positive predicted redemption")

    def ratio(idx: np.ndarray) -> float:
        total = p[idx].sum()
        return float(y[idx].sum() / total) if total > 0 else 1.0

    rng = np.random.default_rng(seed)
    draws = np.array([ratio(two_stage_indices(camp, rng)) for _ in range(n_boot)])
    return RatioCalibration(ratio(np.arange(y.size)), draws)


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

    @property
    def redemptions(self) -> RatioCalibration:
        """The expected-number-of-redemptions calibration; a model trained before it existed is refused."""
        if self.redemption_count is None:
            raise CalibrationError("the model's calibration has no redemption-count ratio (trained before expected "
                                   "costs counted redemptions): retrain it with jobs/train.py")
        return self.redemption_count

    @property
    def n_draws(self) -> int:
        return int(self.spend.draws.shape[0])

    def to_dict(self) -> dict[str, Any]:
        def linear(c: LinearCalibration) -> dict[str, Any]:
            return {"intercept": c.intercept, "slope": c.slope, "draws": c.draws.tolist()}

        return {
            "method": self.method, "campaigns": list(self.campaigns), "rows": self.rows,
            "spend": linear(self.spend), "coupon_product_spend": linear(self.coupon_product_spend),
            "redemption": {"ratio": self.redemption.ratio, "draws": self.redemption.draws.tolist()},
            **({"redemption_count": {"ratio": self.redemption_count.ratio,
                                     "draws": self.redemption_count.draws.tolist()}}
               if self.redemption_count is not None else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "UpliftCalibration":
        def linear(x: Mapping[str, Any]) -> LinearCalibration:
            return LinearCalibration(float(x["intercept"]), float(x["slope"]),
                                     np.asarray(x["draws"], dtype=float).reshape(-1, 2))

        def ratio(x: Mapping[str, Any] | None) -> RatioCalibration | None:
            return None if x is None else RatioCalibration(float(x["ratio"]), np.asarray(x["draws"], dtype=float))

        out = cls(linear(d["spend"]), linear(d["coupon_product_spend"]), ratio(d["redemption"]),
                  tuple(int(c) for c in d["campaigns"]), int(d["rows"]), str(d.get("method", METHOD)),
                  ratio(d.get("redemption_count")))
        counts = {out.spend.draws.shape[0], out.coupon_product_spend.draws.shape[0], out.redemption.draws.shape[0]}
        if out.redemption_count is not None:
            counts.add(out.redemption_count.draws.shape[0])
        if len(counts) != 1:
            raise CalibrationError("calibration draws differ in number between outcomes")
        return out

    @classmethod
    def from_json(cls, text: str) -> "UpliftCalibration":
        return cls.from_dict(json.loads(text))


def fit_uplift_calibration(
    tau_spend: Any, phi_spend: Any, tau_coupon: Any, phi_coupon: Any,
    targeted: Any, redeemed: Any, p_redeem_targeted: Any, campaign: Any,
    n_boot: int, seed: int, redemptions: Any,
) -> UpliftCalibration:
    """All four calibrations from the same held-out rows (same bootstrap seed per outcome, so draw k of
    each comes from the same resample). ``redemptions``: redemptions per household (a count)."""
    camp = np.asarray(campaign)
    t = np.asarray(targeted, dtype=float) > 0.5
    p = np.asarray(p_redeem_targeted, dtype=float)[t]
    return UpliftCalibration(
        spend=fit_linear(tau_spend, phi_spend, camp, n_boot, seed),
        coupon_product_spend=fit_linear(tau_coupon, phi_coupon, camp, n_boot, seed),
        redemption=fit_ratio(np.asarray(redeemed, dtype=float)[t], p, camp[t], n_boot, seed),
        campaigns=tuple(sorted(int(c) for c in np.unique(camp))),
        rows=int(camp.size),
        redemption_count=fit_ratio(np.asarray(redemptions, dtype=float)[t], p, camp[t], n_boot, seed),
    )

