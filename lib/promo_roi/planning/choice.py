"""The per-household choice: the one implementation that numpy and every Spark pass call.

``select_top_k`` is the Lagrangian subproblem (each household's k best
pairs with positive reduced profit); ``_household_hash`` draws the
deterministic household sample. The method is described in this package's
README.md.
"""

from __future__ import annotations

import numpy as np


def _top_values(reduced: np.ndarray, k: int) -> np.ndarray:
    """[k, n]: each household's k largest reduced profits, descending, -inf padded.

    ``reduced`` is [campaigns, households]; a sweep over the few campaign rows
    keeps k running maxima per household, all households at once (much faster
    than sorting short rows).
    """
    n = reduced.shape[1]
    tops = [np.full(n, -np.inf) for _ in range(k)]
    spare = np.empty(n)
    for row in reduced:
        x = row.copy()
        for j in range(k):
            np.maximum(tops[j], x, out=spare)
            np.minimum(tops[j], x, out=x)
            tops[j], spare = spare, tops[j]
    return np.stack(tops) if tops else np.empty((0, n))


def select_top_k(reduced: np.ndarray, k: int) -> np.ndarray:
    """Each household's choice: its k best pairs with positive reduced profit.

    ``reduced`` is [campaigns, households] (-inf where a household has no pair
    for a campaign). Returns a bool mask of the same shape. Ties at the k-th
    value go to the lower campaign index, so the choice is deterministic.
    This is the Lagrangian subproblem; every pass in numpy and on Spark calls it.
    """
    n_campaigns = reduced.shape[0]
    if k >= n_campaigns:
        return reduced > 0
    kth = _top_values(reduced, k)[k - 1]
    threshold = np.maximum(kth, 0.0)
    chosen = reduced > threshold
    tied = (reduced == threshold) & (threshold > 0)
    if tied.any():
        chosen |= tied
        over = chosen.sum(0) > k
        if over.any():
            cols = np.flatnonzero(over)
            sub_gt = reduced[:, cols] > threshold[cols]
            sub_eq = reduced[:, cols] == threshold[cols]
            need = k - sub_gt.sum(0)
            chosen[:, cols] = sub_gt | (sub_eq & (np.cumsum(sub_eq, axis=0) <= need))
    return chosen


def _household_hash(ids: np.ndarray) -> np.ndarray:
    """Deterministic uniform [0, 1) per household id (splitmix64), the same everywhere."""
    x = ids.astype(np.int64).view(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)
