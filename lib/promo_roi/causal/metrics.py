"""Doubly robust uplift metrics for observational (non-randomised) targeting.

Each example is a (household, campaign) pair with ``t = 1`` when the
household was targeted. Targeting in the source data is far from random
(targeted households already spent 2-3x more before the campaign) and close
to deterministic, so a naive treated-minus-control comparison mostly measures
who was chosen, not what the campaign did. Every effect and uplift-curve
number here is therefore computed on AIPW (augmented inverse propensity
weighted) pseudo-outcomes ``phi``, whose mean is a doubly robust estimate of
the average treatment effect, and is meant to be reported both overall and
inside an overlap band of the propensity, where the weights are tame.

Ranking metrics are tie-aware (:func:`uplift_curve`): a block of equal scores
counts as randomly ordered inside itself, so a score that is 0 for most
households gets one Qini whatever the row order. Models are compared by the
bootstrap distribution of their difference on the same resamples
(:mod:`promo_roi.causal.bootstrap`: :func:`~.bootstrap.paired_bootstrap_difference`,
:func:`~.bootstrap.bootstrap_replicates`; two-stage over campaigns then
households), not by whether separate intervals overlap.
Per-campaign and pooled Qini/AUUC: :func:`campaign_uplift_metrics`. A placebo
Qini is :func:`qini_coefficient` with the pre-period pseudo-outcome as ``phi``.

All functions are pure: they take array-likes, convert them with
``np.asarray(float)`` and raise ``ValueError`` naming the argument on empty
input, NaNs or length mismatch, so a bad join upstream fails loudly instead
of producing a plausible number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from promo_roi.causal._validate import _as_float, _as_treatment, _groups, _same_length
from promo_roi.causal.bootstrap import bootstrap_ci

__all__ = [
    "aipw_pseudo_outcome",
    "overlap_mask",
    "positivity_summary",
    "roc_auc",
    "wape",
    "uplift_curve",
    "qini_coefficient",
    "auuc",
    "CampaignUplift",
    "campaign_uplift_metrics",
    "pooled_qini",
    "pooled_auuc",
    "dr_average_effect",
    "dr_att",
    "naive_difference",
    "placebo_check",
    "stability_check",
]

QUANTILES: tuple[tuple[str, float], ...] = (
    ("p01", 0.01),
    ("p05", 0.05),
    ("p25", 0.25),
    ("p50", 0.50),
    ("p75", 0.75),
    ("p95", 0.95),
    ("p99", 0.99),
)

# z of a two-sided 95% normal interval: turns a bootstrap CI width into an SE.
Z95 = 1.96


# --------------------------------------------------------------------------
# local helpers (argument checks shared with bootstrap.py are in _validate.py)
# --------------------------------------------------------------------------


def _check_band(name: str, band: Sequence[float]) -> tuple[float, float]:
    low, high = (float(b) for b in band)
    if not (0.0 <= low < high <= 1.0):
        raise ValueError(f"{name} must satisfy 0 <= low < high <= 1, got {band!r}")
    return low, high


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """Trapezoid rule sum((x[i+1]-x[i]) * (y[i]+y[i+1]) / 2).

    Written out because numpy renamed ``trapz`` to ``trapezoid`` in 2.0.
    """
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


# --------------------------------------------------------------------------
# pseudo-outcomes, overlap, positivity
# --------------------------------------------------------------------------


def aipw_pseudo_outcome(
    y: Any,
    t: Any,
    mu0: Any,
    mu1: Any,
    e: Any,
    clip: tuple[float, float] = (0.01, 0.99),
) -> np.ndarray:
    """AIPW (doubly robust) pseudo-outcome per row.

    ``phi = mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)``
    with ``e`` clipped to ``clip``. ``mean(phi)`` is consistent for the
    average treatment effect when either the outcome models (mu0, mu1) or the
    propensity ``e`` is right; clipping bounds the inverse weights, which
    near-deterministic targeting would otherwise blow up.
    """
    y_ = _as_float("y", y)
    t_ = _as_treatment("t", t)
    mu0_ = _as_float("mu0", mu0)
    mu1_ = _as_float("mu1", mu1)
    e_ = _as_float("e", e)
    _same_length(y=y_, t=t_, mu0=mu0_, mu1=mu1_, e=e_)
    low, high = float(clip[0]), float(clip[1])
    if not (0.0 < low < high < 1.0):
        raise ValueError(f"clip must satisfy 0 < low < high < 1, got {clip!r}")
    e_c = np.clip(e_, low, high)
    return mu1_ - mu0_ + t_ * (y_ - mu1_) / e_c - (1.0 - t_) * (y_ - mu0_) / (1.0 - e_c)


def overlap_mask(e: Any, band: tuple[float, float] = (0.1, 0.9)) -> np.ndarray:
    """Rows whose propensity lies in ``band`` (both bounds inclusive).

    Inside the band both arms are plausible for the row, so effects there
    rely less on extrapolation and on huge inverse weights.
    """
    e_ = _as_float("e", e)
    low, high = _check_band("band", band)
    return (e_ >= low) & (e_ <= high)


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else math.nan


def _quantiles(prefix: str, values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {f"{prefix}_{key}": math.nan for key, _ in QUANTILES}
    qs = np.quantile(values, [q for _, q in QUANTILES])
    return {f"{prefix}_{key}": float(v) for (key, _), v in zip(QUANTILES, qs)}


def positivity_summary(
    e: Any, t: Any, band: tuple[float, float] = (0.1, 0.9)
) -> dict[str, float]:
    """How far the data is from positivity (every row could have had either arm).

    Returns counts, the share of all / treated / control rows inside
    ``band`` (inclusive; NaN for an empty arm), the propensity quantiles
    ``p01 .. p99`` per arm (keys ``treated_p50``, ``control_p05`` ...; numpy's
    default linear interpolation) and ``auc_propensity``, the ROC AUC of ``e``
    for ``t``: near 1 means targeting is almost deterministic given the
    features and the overall effect leans on extrapolation.
    """
    e_ = _as_float("e", e)
    t_ = _as_treatment("t", t)
    _same_length(e=e_, t=t_)
    inside = overlap_mask(e_, band)
    treated = t_ == 1.0
    out: dict[str, float] = {
        "n": int(t_.size),
        "n_treated": int(treated.sum()),
        "n_control": int((~treated).sum()),
        "share_in_overlap": _share(inside),
        "share_treated_in_overlap": _share(inside[treated]),
        "share_control_in_overlap": _share(inside[~treated]),
    }
    out.update(_quantiles("treated", e_[treated]))
    out.update(_quantiles("control", e_[~treated]))
    out["auc_propensity"] = roc_auc(t_, e_)
    return out


# --------------------------------------------------------------------------
# plain prediction metrics
# --------------------------------------------------------------------------


def roc_auc(y_true: Any, score: Any) -> float:
    """ROC AUC via sklearn; NaN (not an exception) when only one class is present.

    A fold or campaign with one class is common in sparse redemption data and
    should show up as a missing number, not stop a nightly job.
    """
    y_ = _as_float("y_true", y_true)
    s_ = _as_float("score", score)
    _same_length(y_true=y_, score=s_)
    if np.unique(y_).size < 2:
        return math.nan
    return float(roc_auc_score(y_, s_))


def wape(y_true: Any, y_pred: Any) -> float:
    """Weighted absolute percentage error ``sum|y - y_hat| / sum|y|``; NaN when ``sum|y| = 0``."""
    y_ = _as_float("y_true", y_true)
    p_ = _as_float("y_pred", y_pred)
    _same_length(y_true=y_, y_pred=p_)
    denom = float(np.abs(y_).sum())
    if denom == 0.0:
        return math.nan
    return float(np.abs(y_ - p_).sum() / denom)


# --------------------------------------------------------------------------
# uplift curves on pseudo-outcomes
# --------------------------------------------------------------------------


def uplift_curve(uplift_score: Any, phi: Any) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative DR gain when targeting households in descending score order.

    Returns ``(fraction_targeted, gain)``, both of length ``n + 1``:
    ``fraction_targeted[k] = k / n`` and ``gain[k]`` the DR gain of targeting
    the top ``k`` rows, so ``gain[0] = 0`` and ``gain[n] = sum(phi)``.

    Ties: a block of rows with equal scores has no order of its own, so
    inside it the gain is interpolated linearly from the block's start to its
    end. For a block occupying sorted positions ``s < k <= s + m`` with
    ``G(s) = sum(phi over the rows ranked above the block)`` and block sum
    ``B``, ``gain[k] = G(s) + (k - s) / m * B``: the expected cumulative gain
    over all orders of the rows inside the block (each of its rows is among
    the first ``k - s`` with probability ``(k - s) / m``). The curve, and
    :func:`auuc` and :func:`qini_coefficient` computed from it, therefore
    depend only on the (score, phi) pairs, not on row order (up to
    floating-point rounding of the sums). Without ties every block has one row
    and ``gain[k] = sum(phi over the top-k rows)`` exactly, as before.

    Vectorised: one stable sort, block ends from adjacent score changes,
    ``np.interp`` of the cumulative sum between block ends.
    """
    s_ = _as_float("uplift_score", uplift_score)
    phi_ = _as_float("phi", phi)
    n = _same_length(uplift_score=s_, phi=phi_)
    order = np.argsort(-s_, kind="stable")
    cum = np.empty(n + 1, dtype=float)
    cum[0] = 0.0
    np.cumsum(phi_[order], out=cum[1:])
    ranked = s_[order]
    # knots: 0 and every k after which the score changes (end of a tie block), and n.
    # (a != b rather than np.diff(ranked) != 0, so that +-inf scores tie with themselves.)
    knots = np.concatenate(([0], np.flatnonzero(ranked[1:] != ranked[:-1]) + 1, [n]))
    fraction = np.arange(n + 1, dtype=float) / n
    if knots.size == n + 1:  # no ties: the plain cumulative sum
        return fraction, cum
    # np.interp returns cum at the knots exactly and interpolates inside the blocks.
    gain = np.interp(np.arange(n + 1, dtype=float), knots.astype(float), cum[knots])
    return fraction, gain


def auuc(uplift_score: Any, phi: Any) -> float:
    """Area under the DR gain curve (trapezoid over fraction targeted) divided by n.

    ``auuc = trapezoid(gain, fraction_targeted) / n``, in units of
    incremental outcome per household. Tie-aware through :func:`uplift_curve`:
    with tied scores it is the expected AUUC over random orders inside each tie
    block, independent of row order. ``auuc - qini_coefficient = sum(phi) / (2 n)``
    for every score, so differences of two models' AUUC on the same rows equal
    differences of their Qini.
    """
    fraction, gain = uplift_curve(uplift_score, phi)
    n = fraction.size - 1
    return _trapezoid(gain, fraction) / n


def qini_coefficient(uplift_score: Any, phi: Any) -> float:
    """Area between the model's DR gain curve and random targeting, divided by n.

    Random targeting is the straight line from ``(0, 0)`` to
    ``(1, sum(phi))``, whose area is ``sum(phi) / 2``, so
    ``qini = (trapezoid(gain, fraction_targeted) - sum(phi) / 2) / n``.
    Positive means the ranking beats random targeting; units are incremental
    outcome per household. Tie-aware through :func:`uplift_curve`: a block of
    tied scores counts as randomly ordered inside itself (the expected Qini over
    those orders), so a score that is 0 for most households gets one Qini
    whatever the row order; a constant score has Qini 0.

    The rows are ranked together: on rows from several campaigns this also
    judges how the score ranks one campaign's households against another's;
    :func:`campaign_uplift_metrics` / :func:`pooled_qini` rank within campaigns.

    Placebo Qini: pass the pseudo-outcome of a window in which the campaign
    cannot have acted (e.g. the pre-period, computed like ``phi`` with the
    pre-period outcome, for the same rows and scores) as ``phi``:
    ``qini_coefficient(score, phi_pre)`` should be ~0. Its interval comes from
    :func:`~.bootstrap.bootstrap_ci` or :func:`~.bootstrap.bootstrap_replicates` and its per-campaign
    form from :func:`campaign_uplift_metrics`, all without further code.
    """
    fraction, gain = uplift_curve(uplift_score, phi)
    n = fraction.size - 1
    random_area = gain[-1] / 2.0
    return (_trapezoid(gain, fraction) - random_area) / n


@dataclass(frozen=True)
class CampaignUplift:
    """Qini and AUUC per campaign and pooled over campaigns (see :func:`campaign_uplift_metrics`)."""

    qini: float  # pooled: row-weighted mean of the per-campaign Qinis
    auuc: float  # pooled: row-weighted mean of the per-campaign AUUCs
    n: int  # rows
    n_campaigns: int
    per_campaign: dict[Any, dict[str, float]]  # campaign -> {"n", "qini", "auuc"}, sorted by campaign

    def qini_equal_weight(self) -> float:
        """The alternative pooling: every campaign weighs the same, whatever its size."""
        return float(np.mean([c["qini"] for c in self.per_campaign.values()]))


def campaign_uplift_metrics(uplift_score: Any, phi: Any, campaign: Any) -> CampaignUplift:
    """Qini and AUUC (tie-aware, per household) inside each campaign, and pooled.

    Each campaign's rows are ranked only against each other, because scores
    need not be comparable across campaigns (a campaign with larger baskets
    would otherwise fill the top of a pooled ranking). Pooled is the
    row-weighted mean ``sum_c n_c * qini_c / sum_c n_c``: the summed
    per-campaign areas between gain curve and random targeting, per household
    of all campaigns; likewise for AUUC. A one-row campaign has Qini 0 and AUUC
    ``phi / 2``. Alternatives, not used here: the equal-weight mean over
    campaigns (:meth:`CampaignUplift.qini_equal_weight`: small campaigns count
    as much as large ones, noisier), and one ranking over all rows
    (:func:`qini_coefficient` on the concatenation, which also credits ranking
    whole campaigns against each other).
    """
    s_ = _as_float("uplift_score", uplift_score)
    phi_ = _as_float("phi", phi)
    n = _same_length(uplift_score=s_, phi=phi_)
    labels, groups = _groups("campaign", campaign, n)
    per: dict[Any, dict[str, float]] = {}
    qini_sum = auuc_sum = 0.0
    for label, rows in zip(labels, groups):
        q, a = _qini_auuc(s_[rows], phi_[rows])
        per[label.item() if hasattr(label, "item") else label] = {"n": int(rows.size), "qini": q, "auuc": a}
        qini_sum += rows.size * q
        auuc_sum += rows.size * a
    return CampaignUplift(qini=qini_sum / n, auuc=auuc_sum / n, n=n, n_campaigns=len(groups), per_campaign=per)


def pooled_qini(uplift_score: Any, phi: Any, campaign: Any) -> float:
    """``campaign_uplift_metrics(...).qini``: per-campaign Qinis, row-weighted; a metric for
    :func:`~.bootstrap.paired_bootstrap_difference` / :func:`~.bootstrap.bootstrap_replicates` with
    ``per_campaign=True``."""
    return campaign_uplift_metrics(uplift_score, phi, campaign).qini


def pooled_auuc(uplift_score: Any, phi: Any, campaign: Any) -> float:
    """``campaign_uplift_metrics(...).auuc``: per-campaign AUUCs, row-weighted (see :func:`pooled_qini`)."""
    return campaign_uplift_metrics(uplift_score, phi, campaign).auuc


def _qini_auuc(score: np.ndarray, phi: np.ndarray) -> tuple[float, float]:
    """(qini, auuc) from one curve."""
    fraction, gain = uplift_curve(score, phi)
    n = fraction.size - 1
    area = _trapezoid(gain, fraction)
    return (area - gain[-1] / 2.0) / n, area / n


# --------------------------------------------------------------------------
# doubly robust effects
# --------------------------------------------------------------------------


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def dr_average_effect(
    y: Any,
    t: Any,
    mu0: Any,
    mu1: Any,
    e: Any,
    mask: Any = None,
    n_boot: int = 200,
    seed: int = 0,
    cluster: Any = None,
) -> dict[str, float]:
    """Doubly robust average effect ``mean(phi)`` with a bootstrap 95% CI.

    ``phi`` is :func:`aipw_pseudo_outcome` (default clipping). ``mask``
    (bool, e.g. :func:`overlap_mask`) restricts the average, and the
    bootstrap, to those rows. An empty mask returns NaNs with ``n = 0``
    rather than raising: an empty overlap band is a finding to report.
    """
    phi = aipw_pseudo_outcome(y, t, mu0, mu1, e)
    keep = np.ones(phi.size, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    _same_length(y=phi, mask=keep)
    clusters = None
    if cluster is not None:
        cluster_arr = np.asarray(cluster)
        _same_length(y=phi, cluster=cluster_arr)
        clusters = cluster_arr[keep]
    phi = phi[keep]
    if phi.size == 0:
        return {"effect": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    point, low, high = bootstrap_ci(
        _mean_or_nan, (phi,), n_boot=n_boot, seed=seed, cluster=clusters
    )
    return {"effect": point, "ci_low": low, "ci_high": high, "n": int(phi.size)}


def dr_att(
    y: Any,
    t: Any,
    mu0: Any,
    e: Any,
    clip: tuple[float, float] = (0.01, 0.99),
    n_boot: int = 200,
    seed: int = 0,
    cluster: Any = None,
) -> dict[str, float]:
    """Doubly robust effect on the targeted (ATT) with a bootstrap 95% CI.

    ``psi = t * (y - mu0) - (1 - t) * e / (1 - e) * (y - mu0)`` and
    ``ATT = sum(psi) / sum(t)``: each targeted household's outcome against its
    predicted untargeted outcome, with the untargeted households reweighted by
    the odds of targeting to correct ``mu0`` where it is off. ``e`` is clipped
    to ``clip`` (near-deterministic targeting would blow the odds up). This is
    the realized counterpart of a forecast summed over a target list.
    """
    y_, t_, mu0_, e_ = _as_float("y", y), _as_treatment("t", t), _as_float("mu0", mu0), _as_float("e", e)
    _same_length(y=y_, t=t_, mu0=mu0_, e=e_)
    low, high = float(clip[0]), float(clip[1])
    if not (0.0 < low < high < 1.0):
        raise ValueError(f"clip must satisfy 0 < low < high < 1, got {clip!r}")
    n_treated = int(t_.sum())
    if n_treated == 0:
        return {"effect": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n_treated": 0}
    e_c = np.clip(e_, low, high)
    psi = (t_ - (1.0 - t_) * e_c / (1.0 - e_c)) * (y_ - mu0_)

    def att(psi_: np.ndarray, t__: np.ndarray) -> float:
        treated = t__.sum()
        return float(psi_.sum() / treated) if treated > 0 else math.nan

    point, lo, hi = bootstrap_ci(att, (psi, t_), n_boot=n_boot, seed=seed, cluster=cluster)
    return {"effect": point, "ci_low": lo, "ci_high": hi, "n_treated": n_treated}


def naive_difference(y: Any, t: Any) -> float:
    """``mean(y | t=1) - mean(y | t=0)``: what a naive comparison reports.

    Kept next to the DR effect to show how much of the raw gap is selection.
    NaN when one arm is empty.
    """
    y_ = _as_float("y", y)
    t_ = _as_treatment("t", t)
    _same_length(y=y_, t=t_)
    return _mean_or_nan(y_[t_ == 1.0]) - _mean_or_nan(y_[t_ == 0.0])


# --------------------------------------------------------------------------
# refutation decisions
# --------------------------------------------------------------------------


def _finite(*values: float) -> bool:
    return all(v is not None and math.isfinite(float(v)) for v in values)


def placebo_check(
    placebo_effect: Mapping[str, float],
    real_effect: Mapping[str, float],
    tolerance: float = 0.25,
    what: str = "effect",
) -> dict[str, Any]:
    """Does a placebo treatment (shuffled or fake campaign) show ~no effect?

    Passes when the placebo CI contains 0, or when
    ``|placebo effect| <= tolerance * |real effect|``. Both arguments are
    dicts as returned by :func:`dr_average_effect` (``effect``, ``ci_low``,
    ``ci_high``); the same test applies to any statistic in that form, e.g. a
    placebo Qini against the real Qini, and ``what`` names it in the reason.
    Non-finite numbers fail, since a check that could not be computed must
    not count as passed.
    """
    p, lo, hi = (placebo_effect.get(k, math.nan) for k in ("effect", "ci_low", "ci_high"))
    r = real_effect.get("effect", math.nan)
    out: dict[str, Any] = {
        "placebo_effect": p,
        "placebo_ci_low": lo,
        "placebo_ci_high": hi,
        "real_effect": r,
        "tolerance": tolerance,
        "ratio": math.nan,
    }
    if not _finite(p, r):
        return {**out, "passed": False, "reason": f"placebo or real {what} is not finite"}
    ci_has_zero = _finite(lo, hi) and lo <= 0.0 <= hi
    small = abs(p) <= tolerance * abs(r)
    ratio = abs(p) / abs(r) if r != 0 else math.inf
    out["ratio"] = ratio
    if ci_has_zero:
        reason = f"placebo {what} {p:.4g}: its CI [{lo:.4g}, {hi:.4g}] contains 0"
    elif small:
        reason = f"|placebo {what}| / |real {what}| = {ratio:.3g} <= tolerance {tolerance:.3g}"
    else:
        reason = (
            f"placebo {what} {p:.4g} (CI [{lo:.4g}, {hi:.4g}]) excludes 0 and is "
            f"{ratio:.3g} of the real {what} {r:.4g} (> tolerance {tolerance:.3g})"
        )
    return {**out, "passed": bool(ci_has_zero or small), "reason": reason}


def _se_from_ci(effect: Mapping[str, float]) -> float:
    return (float(effect["ci_high"]) - float(effect["ci_low"])) / (2.0 * Z95)


def stability_check(
    half_a: Mapping[str, float],
    half_b: Mapping[str, float],
    z: float = 2.0,
    rank_correlation: float | None = None,
) -> dict[str, Any]:
    """Do two disjoint halves of the data (e.g. split by household) agree?

    Passes when ``|effect_a - effect_b| <= z * sqrt(se_a^2 + se_b^2)`` with
    ``se = (ci_high - ci_low) / (2 * 1.96)`` recovered from each half's CI.
    ``rank_correlation`` (Spearman of per-campaign or per-row uplift between
    the halves, e.g. ``scipy.stats.spearmanr``) is only reported, not used in
    the decision. Non-finite numbers fail.
    """
    a, b = float(half_a.get("effect", math.nan)), float(half_b.get("effect", math.nan))
    se_a = _se_from_ci(half_a) if _finite(half_a.get("ci_low"), half_a.get("ci_high")) else math.nan
    se_b = _se_from_ci(half_b) if _finite(half_b.get("ci_low"), half_b.get("ci_high")) else math.nan
    diff = abs(a - b)
    threshold = z * math.sqrt(se_a**2 + se_b**2)
    out: dict[str, Any] = {
        "effect_a": a,
        "effect_b": b,
        "se_a": se_a,
        "se_b": se_b,
        "difference": diff,
        "threshold": threshold,
        "z": z,
        "rank_correlation": math.nan if rank_correlation is None else float(rank_correlation),
    }
    if not _finite(diff, threshold):
        return {**out, "passed": False, "reason": "an effect or its CI is not finite"}
    passed = diff <= threshold
    verb = "<=" if passed else ">"
    reason = f"|{a:.4g} - {b:.4g}| = {diff:.4g} {verb} {z:g} * combined SE = {threshold:.4g}"
    if rank_correlation is not None:
        reason += f"; rank correlation {float(rank_correlation):.3g}"
    return {**out, "passed": bool(passed), "reason": reason}
