"""Argument checks and label grouping shared by :mod:`.metrics` and :mod:`.bootstrap`.

Private to :mod:`promo_roi.causal`. Both public modules convert their
array-like arguments here (``np.asarray(float)``; ``ValueError`` naming the
argument on empty input, NaNs, a non-0/1 treatment or a length mismatch) and
group rows by campaign or cluster id here, so the two agree on what a valid
input is and on the (sorted-id) order of the groups. Nothing here imports
from the public modules: :mod:`.metrics` imports :mod:`.bootstrap`, and both
import this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np


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


def _labels(name: str, values: Any, n: int) -> np.ndarray:
    """1-D label array of length ``n`` (ids of any dtype); NaN ids raise."""
    labels = np.asarray(values)
    if labels.ndim != 1 or labels.size != n:
        raise ValueError(f"length mismatch: {name}={labels.size}, arrays={n}")
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise ValueError(f"{name} contains NaN")
    return labels


def _csr(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows grouped by integer code 0..G-1: ``(order, starts, sizes)``; group g is
    ``order[starts[g]:starts[g] + sizes[g]]`` (rows in their original order)."""
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    return order, starts, sizes


def _groups(name: str, values: Any, n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sorted distinct ids of ``values`` and the row indices of each."""
    uniques, codes = np.unique(_labels(name, values, n), return_inverse=True)
    order, starts, _sizes = _csr(codes.reshape(-1))
    return uniques, np.split(order, starts[1:])
