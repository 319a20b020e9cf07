"""Bootstrap draws shared between models: resamples, intervals, paired differences.

:func:`bootstrap_resamples` generates the draws (row indices): rows with
replacement, whole clusters (households) with replacement, or two-stage
(campaigns, then households inside each drawn campaign). Everything else
evaluates statistics on those draws: :func:`bootstrap_ci` a percentile
interval of one statistic, :func:`bootstrap_replicates` several models'
metric on the same draws (:class:`Replicates`), and
:func:`paired_bootstrap_difference` the interval of the difference of two.

The draws are shared between models on purpose: much of an uplift metric's
sampling noise (which campaigns and households were drawn) is common to two
models scored on the same rows, so comparing models by the per-draw
difference of their metric is far sharper than asking whether two separately
drawn intervals overlap. Same arguments and seed, same draws: every function
here sees identical resamples for equal ``cluster``/``n_boot``/``seed``.

The metrics themselves (e.g. :func:`promo_roi.causal.metrics.qini_coefficient`,
:func:`promo_roi.causal.metrics.pooled_qini`) live in :mod:`.metrics`, which
imports this module; this module does not import :mod:`.metrics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, NamedTuple

import numpy as np

from promo_roi.causal._validate import _as_float, _csr, _groups, _labels, _same_length

__all__ = [
    "Resample",
    "bootstrap_resamples",
    "bootstrap_ci",
    "Replicates",
    "bootstrap_replicates",
    "paired_bootstrap_difference",
]


def _cluster_index(cluster: Any, n: int) -> list[np.ndarray]:
    """Row indices of each cluster, in sorted order of the cluster id."""
    return _groups("cluster", cluster, n)[1]


def _gather(order: np.ndarray, starts: np.ndarray, sizes: np.ndarray, picked: np.ndarray) -> np.ndarray:
    """``np.concatenate([order[starts[g]:starts[g] + sizes[g]] for g in picked])``, vectorised."""
    lengths = sizes[picked]
    ends = np.cumsum(lengths)
    offsets = np.repeat(starts[picked] - (ends - lengths), lengths)
    return order[offsets + np.arange(int(ends[-1]) if ends.size else 0)]


class Resample(NamedTuple):
    """One bootstrap draw: ``rows`` index the original arrays (with repeats); ``campaign``
    (two-stage draws only) is, per drawn row, which campaign draw ``0..C-1`` it belongs to,
    so a campaign drawn twice appears as two campaigns."""

    rows: np.ndarray
    campaign: np.ndarray | None


def bootstrap_resamples(
    n: int,
    *,
    campaign: Any = None,
    cluster: Any = None,
    n_boot: int = 200,
    seed: int = 0,
) -> Iterator[Resample]:
    """``n_boot`` bootstrap draws of row indices, to evaluate any number of models on the same draws.

    - ``campaign`` given: two-stage. Draw as many campaigns as there are, with
      replacement; inside each drawn campaign draw as many of its clusters
      (``cluster`` ids, e.g. households, else its rows) as it has, with
      replacement. Effects vary by campaign, so the interval has to cover which
      campaigns were run. A household in several campaigns is drawn separately
      in each (the outer stage is the campaign).
    - ``cluster`` only: whole clusters with replacement (rows of one household
      across campaigns are correlated), as :func:`bootstrap_ci` does.
    - neither: rows with replacement.

    Same arguments, same draws: :func:`bootstrap_ci`, :func:`bootstrap_replicates`
    and :func:`paired_bootstrap_difference` with equal ``cluster``/``n_boot``/
    ``seed`` (and no ``campaign``) see identical resamples. Arguments are checked
    on the call; the draws are generated lazily.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    if campaign is None:
        if cluster is None:
            return (Resample(rng.integers(0, n, size=n), None) for _ in range(n_boot))
        _u, codes = np.unique(_labels("cluster", cluster, n), return_inverse=True)
        order, starts, sizes = _csr(codes.reshape(-1))
        g = sizes.size
        return (Resample(_gather(order, starts, sizes, rng.integers(0, g, size=g)), None) for _ in range(n_boot))

    _u, camp = np.unique(_labels("campaign", campaign, n), return_inverse=True)
    camp = camp.reshape(-1).astype(np.int64)
    if cluster is None:
        inner = np.arange(n, dtype=np.int64)
    else:
        _u, inner = np.unique(_labels("cluster", cluster, n), return_inverse=True)
        inner = inner.reshape(-1).astype(np.int64)
    # (campaign, cluster) units, numbered campaign-major: campaign c owns units first[c] .. first[c]+count[c]-1
    width = int(inner.max()) + 1
    units, unit_of_row = np.unique(camp * width + inner, return_inverse=True)
    order, starts, sizes = _csr(unit_of_row.reshape(-1))
    unit_campaign = units // width
    n_campaigns = int(camp.max()) + 1
    count = np.bincount(unit_campaign, minlength=n_campaigns)
    first = np.concatenate(([0], np.cumsum(count)[:-1]))

    def draws() -> Iterator[Resample]:
        for _ in range(n_boot):
            picked = rng.integers(0, n_campaigns, size=n_campaigns)
            per_draw = count[picked]
            high = np.repeat(per_draw, per_draw)
            chosen = np.repeat(first[picked], per_draw) + rng.integers(0, high)
            rows = _gather(order, starts, sizes, chosen)
            draw = np.repeat(np.repeat(np.arange(n_campaigns), per_draw), sizes[chosen])
            yield Resample(rows, draw)

    return draws()


def _percentiles(reps: np.ndarray, alpha: float) -> tuple[float, float]:
    low, high = np.percentile(reps, [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)])
    return float(low), float(high)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


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
    campaigns are correlated and row resampling would understate the width
    (draws from :func:`bootstrap_resamples`). ``low``/``high`` are the
    ``alpha/2`` and ``1 - alpha/2`` percentiles of the non-NaN replicates (all
    NaN -> NaNs). Same seed, same answer.

    To compare models use :func:`paired_bootstrap_difference` (or
    :func:`bootstrap_replicates`), not whether two of these intervals overlap.
    """
    if not arrays:
        raise ValueError("arrays is empty")
    arrs = [np.asarray(a) for a in arrays]
    n = _same_length(**{f"arrays[{i}]": a for i, a in enumerate(arrs)})
    if n == 0:
        raise ValueError("arrays are empty")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    _check_alpha(alpha)

    point = float(statistic(*arrs))
    reps = np.array([float(statistic(*(a[r.rows] for a in arrs)))
                     for r in bootstrap_resamples(n, cluster=cluster, n_boot=n_boot, seed=seed)])
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return point, math.nan, math.nan
    low, high = _percentiles(reps, alpha)
    return point, low, high


@dataclass(frozen=True)
class Replicates:
    """Several models' metric on the full data and on the same bootstrap draws."""

    points: dict[str, float]  # model -> metric on the full data
    draws: dict[str, np.ndarray]  # model -> metric on each draw (length n_boot, NaN where undefined)
    n_boot: int
    n_rows: int
    n_campaigns: int | None  # distinct campaigns (None: no campaign stage)
    n_clusters: int | None  # distinct cluster ids (None: rows were resampled)

    def interval(self, model: str, alpha: float = 0.05) -> tuple[float, float, float]:
        """``(point, low, high)`` of one model, percentile interval of its non-NaN draws."""
        _check_alpha(alpha)
        reps = self.draws[model][~np.isnan(self.draws[model])]
        low, high = _percentiles(reps, alpha) if reps.size else (math.nan, math.nan)
        return self.points[model], low, high

    def difference(self, a: str, b: str, alpha: float = 0.05) -> dict[str, Any]:
        """``metric(a) - metric(b)`` with the percentile interval of the per-draw differences.

        Keys: ``difference`` (on the full data), ``metric_a``, ``metric_b``,
        ``ci_low``, ``ci_high``, ``share_a_better`` (share of draws with a
        strictly higher metric), ``n_boot``, ``n_valid`` (draws where both
        metrics are defined; the others are left out), ``n_rows``,
        ``n_campaigns``, ``n_clusters``. No valid draw -> NaN interval and share.
        """
        _check_alpha(alpha)
        d = self.draws[a] - self.draws[b]
        d = d[~np.isnan(d)]
        low, high = _percentiles(d, alpha) if d.size else (math.nan, math.nan)
        return {
            "difference": self.points[a] - self.points[b],
            "metric_a": self.points[a],
            "metric_b": self.points[b],
            "ci_low": low,
            "ci_high": high,
            "share_a_better": float(np.mean(d > 0.0)) if d.size else math.nan,
            "n_boot": self.n_boot,
            "n_valid": int(d.size),
            "n_rows": self.n_rows,
            "n_campaigns": self.n_campaigns,
            "n_clusters": self.n_clusters,
        }


def bootstrap_replicates(
    metric: Callable[..., float],
    scores: Mapping[str, Any],
    phi: Any,
    *,
    campaign: Any = None,
    cluster: Any = None,
    n_boot: int = 200,
    seed: int = 0,
    per_campaign: bool = False,
) -> Replicates:
    """``metric`` of every model in ``scores`` on the full data and on the same ``n_boot`` draws.

    The draws (:func:`bootstrap_resamples`: two-stage with ``campaign``,
    clusters with ``cluster`` only, else rows) are built once and every model
    is evaluated on each, so :meth:`Replicates.difference` of any two models is
    a paired comparison. ``metric(score, phi)`` by default, e.g.
    :func:`~.metrics.qini_coefficient`; with ``per_campaign=True`` it is called
    ``metric(score, phi, campaign)`` (e.g. :func:`~.metrics.pooled_qini`), on the full
    data with the given labels and on a draw with the draw's labels, where a
    campaign drawn twice counts as two campaigns. A draw on which ``metric``
    returns NaN is kept as NaN.
    """
    if not scores:
        raise ValueError("scores is empty")
    phi_ = _as_float("phi", phi)
    arrays = {name: _as_float(f"scores[{name!r}]", s) for name, s in scores.items()}
    n = _same_length(phi=phi_, **{f"scores[{k!r}]": v for k, v in arrays.items()})
    if per_campaign and campaign is None:
        raise ValueError("per_campaign=True needs campaign")
    labels = None if campaign is None else _labels("campaign", campaign, n)
    clusters = None if cluster is None else _labels("cluster", cluster, n)
    resamples = bootstrap_resamples(n, campaign=labels, cluster=clusters, n_boot=n_boot, seed=seed)

    def evaluate(score: np.ndarray, phi_b: np.ndarray, camp: np.ndarray | None) -> float:
        return float(metric(score, phi_b, camp) if per_campaign else metric(score, phi_b))

    points = {name: evaluate(s, phi_, labels) for name, s in arrays.items()}
    draws = {name: np.empty(n_boot, dtype=float) for name in arrays}
    for b, (rows, draw_campaign) in enumerate(resamples):
        phi_b = phi_[rows]
        for name, s in arrays.items():
            draws[name][b] = evaluate(s[rows], phi_b, draw_campaign)
    return Replicates(
        points=points, draws=draws, n_boot=n_boot, n_rows=n,
        n_campaigns=None if labels is None else int(np.unique(labels).size),
        n_clusters=None if clusters is None else int(np.unique(clusters).size),
    )


def paired_bootstrap_difference(
    metric: Callable[..., float],
    score_a: Any,
    score_b: Any,
    phi: Any,
    *,
    campaign: Any = None,
    cluster: Any = None,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    per_campaign: bool = False,
) -> dict[str, Any]:
    """Is model a better than model b? ``metric(a) - metric(b)`` on the SAME bootstrap draws.

    Both scores are evaluated on each draw of :func:`bootstrap_resamples`
    (two-stage: campaigns, then ``cluster`` ids (households) inside each drawn
    campaign, when ``campaign`` is given; clusters only without it; rows
    without either), and the interval is the ``alpha/2`` .. ``1 - alpha/2``
    percentile range of the per-draw differences. Much of a metric's sampling
    noise is shared by two models scored on the same rows (for AUUC the whole
    ``mean(phi) / 2`` term), so two separate intervals can overlap while the
    paired difference clearly excludes 0. A score against itself gives exactly
    0 and ``[0, 0]``; swapping a and b negates the difference and interval.

    Returns :meth:`Replicates.difference`'s dict: ``difference`` (on the full
    data), ``metric_a``, ``metric_b``, ``ci_low``, ``ci_high``,
    ``share_a_better``, ``n_boot``, ``n_valid``, ``n_rows``, ``n_campaigns``,
    ``n_clusters``. ``per_campaign`` as in :func:`bootstrap_replicates`; for
    more than two models call that once and take differences from its result.
    """
    _check_alpha(alpha)
    reps = bootstrap_replicates(metric, {"a": score_a, "b": score_b}, phi, campaign=campaign, cluster=cluster,
                                n_boot=n_boot, seed=seed, per_campaign=per_campaign)
    return reps.difference("a", "b", alpha)
