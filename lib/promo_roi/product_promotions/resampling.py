"""Whole-cluster bootstrap on per-cluster sums, shared by the lift yardstick and the side effects.

Both measure ratios of sums (units, errors, forecasts) and resample whole
products or categories: a draw is a count per cluster (how often it was
drawn), so a drawn total is ``weights @ per_cluster_sums``, one matrix
product for every draw, instead of rebuilding rows draw by draw.
(:mod:`promo_roi.causal.bootstrap` draws row indices, which the uplift
metrics need; here only sums are resampled.)
"""

from __future__ import annotations

import numpy as np


def cluster_weights(n_clusters: int, n_boot: int, seed: int) -> np.ndarray:
    """[draw, cluster]: how often each cluster is drawn in each of ``n_boot`` draws of ``n_clusters`` clusters
    with replacement."""
    draws = np.random.default_rng(seed).integers(0, n_clusters, size=(n_boot, n_clusters))
    return np.stack([np.bincount(d, minlength=n_clusters) for d in draws])


def nan_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of ``values`` over draws, leaving out draws without a value
    (nan); nan, nan when no draw has one."""
    if np.isnan(values).all():
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    return float(np.nanquantile(values, alpha)), float(np.nanquantile(values, 1 - alpha))
