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

All functions are pure: they take array-likes, convert them with
``np.asarray(float)`` and raise ``ValueError`` naming the argument on empty
input, NaNs or length mismatch, so a bad join upstream fails loudly instead
of producing a plausible number.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

__all__ = [
    "aipw_pseudo_outcome",
    "overlap_mask",
    "positivity_summary",
    "roc_auc",
    "wape",
    "uplift_curve",
    "qini_coefficient",
    "auuc",
    "bootstrap_ci",
    "dr_average_effect",
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
# validation helpers
# --------------------------------------------------------------------------


def _as_float(name: str, values: Any) -> np.ndarray:
    """1-D float array; empty input or NaNs raise ValueError naming ``name``."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN ({int(np.isnan(arr).sum())} values)")
    return arr


def _as_treatment(name: str, values: Any) -> np.ndarray:
    """Float 0/1 array; any other value raises (a 2 or -1 is a join bug)."""
    arr = _as_float(name, values)
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{name} must contain only 0 and 1")
    return arr


def _same_length(**arrays: np.ndarray) -> int:
    """The common length; a mismatch raises ValueError naming every argument."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise ValueError(f"length mismatch: {detail}")
    return next(iter(lengths.values()))


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
    ``fraction_targeted[k] = k / n`` and ``gain[k] = sum(phi over the top-k
    rows)``, so ``gain[0] = 0`` and ``gain[n] = sum(phi)``.

    Tie rule: rows with equal scores keep their original order (stable sort
    on the negated score); no averaging over ties. Shuffle rows beforehand if
    a model emits many ties and the input order is meaningful.
    """
    s_ = _as_float("uplift_score", uplift_score)
    phi_ = _as_float("phi", phi)
    n = _same_length(uplift_score=s_, phi=phi_)
    order = np.argsort(-s_, kind="stable")
    gain = np.concatenate(([0.0], np.cumsum(phi_[order])))
    fraction = np.arange(n + 1, dtype=float) / n
    return fraction, gain


def auuc(uplift_score: Any, phi: Any) -> float:
    """Area under the DR gain curve (trapezoid over fraction targeted) divided by n.

    ``auuc = trapezoid(gain, fraction_targeted) / n``, in units of
    incremental outcome per household.
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
    outcome per household.
    """
    fraction, gain = uplift_curve(uplift_score, phi)
    n = fraction.size - 1
    random_area = gain[-1] / 2.0
    return (_trapezoid(gain, fraction) - random_area) / n


# --------------------------------------------------------------------------
# effects and uncertainty
# --------------------------------------------------------------------------


def _cluster_index(cluster: Any, n: int) -> list[np.ndarray]:
    """Row indices of each cluster, in order of first appearance of the cluster id."""
    labels = np.asarray(cluster)
    if labels.ndim != 1 or labels.size != n:
        raise ValueError(f"length mismatch: cluster={labels.size}, arrays={n}")
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise ValueError("cluster contains NaN")
    _, codes = np.unique(labels, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, bounds)


def bootstrap_ci(
    statistic: Callable[..., float],
    arrays: tuple[Any, ...],
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    cluster: Any = None,
) -> tuple[float, float, float]:
    """Percentile bootstrap ``(point, low, high)`` for ``statistic(*arrays)``.

    ``point`` is the statistic on the full data. Each replicate resamples rows
    with replacement, or, when ``cluster`` (e.g. household ids) is given,
    whole clusters with replacement, because rows of one household across
    campaigns are correlated and row resampling would understate the width.
    ``low``/``high`` are the ``alpha/2`` and ``1 - alpha/2`` percentiles of
    the non-NaN replicates (all NaN -> NaNs). Same seed, same answer.
    """
    if not arrays:
        raise ValueError("arrays is empty")
    arrs = [np.asarray(a) for a in arrays]
    n = _same_length(**{f"arrays[{i}]": a for i, a in enumerate(arrs)})
    if n == 0:
        raise ValueError("arrays are empty")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")

    point = float(statistic(*arrs))
    rng = np.random.default_rng(seed)
    groups = _cluster_index(cluster, n) if cluster is not None else None
    reps = np.empty(n_boot, dtype=float)
    for b in range(n_boot):
        if groups is None:
            idx = rng.integers(0, n, size=n)
        else:
            picked = rng.integers(0, len(groups), size=len(groups))
            idx = np.concatenate([groups[g] for g in picked])
        reps[b] = float(statistic(*(a[idx] for a in arrs)))
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return point, math.nan, math.nan
    low, high = np.percentile(reps, [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)])
    return point, float(low), float(high)


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
) -> dict[str, Any]:
    """Does a placebo treatment (shuffled or fake campaign) show ~no effect?

    Passes when the placebo CI contains 0, or when
    ``|placebo effect| <= tolerance * |real effect|``. Both arguments are
    dicts as returned by :func:`dr_average_effect`. Non-finite numbers fail,
    since a check that could not be computed must not count as passed.
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
        return {**out, "passed": False, "reason": "placebo or real effect is not finite"}
    ci_has_zero = _finite(lo, hi) and lo <= 0.0 <= hi
    small = abs(p) <= tolerance * abs(r)
    ratio = abs(p) / abs(r) if r != 0 else math.inf
    out["ratio"] = ratio
    if ci_has_zero:
        reason = f"placebo CI [{lo:.4g}, {hi:.4g}] contains 0"
    elif small:
        reason = f"|placebo| / |real| = {ratio:.3g} <= tolerance {tolerance:.3g}"
    else:
        reason = (
            f"placebo effect {p:.4g} (CI [{lo:.4g}, {hi:.4g}]) excludes 0 and is "
            f"{ratio:.3g} of the real effect {r:.4g} (> tolerance {tolerance:.3g})"
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
