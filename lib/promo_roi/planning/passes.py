"""The passes: one function per pass, applied to each block by an engine and merged on the driver.

Each returns a dict of small per-block results whose keys say how to merge
them (``sum_*`` add, ``max_*`` take the max, ``cat_*`` concatenate; see
``engines._Merger``): statistics and the sample, moves by grid point, the
moves of the budget window with the dual bound's data terms, the final
choice, and the candidates for minimum budgets. The method is described in
this package's README.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from promo_roi.planning.blocks import _Block
from promo_roi.planning.choice import _household_hash
from promo_roi.planning.paths import _FREES, _GAINS, _LOSES, _Design, _household_moves, _included, _PathParams
from promo_roi.planning.prices import _lagrangian_sum, _Prices


def _pass_stats(block: _Block, rate: float) -> dict[str, Any]:
    """Households, duplicates, the largest pair ROI, and the deterministic sample."""
    ratio = np.where(block.valid, block.profit / np.where(block.valid, block.cost, 1.0), -np.inf)
    out: dict[str, Any] = {
        "sum_households": np.array(block.n),
        "sum_duplicates": np.array(block.duplicates),
        "max_roi": np.array(ratio.max() if ratio.size else -np.inf),
    }
    sampled = _household_hash(block.household) < rate if rate < 1 else np.ones(block.n, bool)
    campaign, house = np.nonzero(block.valid & sampled[None, :])
    out["cat_household_id"] = block.household[house]
    out["cat_campaign"] = campaign.astype(np.int64)
    out["cat_value"] = block.value[campaign, house]
    out["cat_cost"] = block.cost[campaign, house]
    out["cat_redemptions"] = block.red[campaign, house]
    return out


def _pass_grid(block: _Block, path: _PathParams) -> dict[str, Any]:
    """Per grid point and group: cost, positive cost, objective; per capped campaign: usage changes."""
    moves = _household_moves(block, path)
    points = path.points + 1
    out: dict[str, Any] = {}
    for group in (_FREES, _GAINS, _LOSES):
        at = moves.group == group
        out[f"sum_cost_{group}"] = np.bincount(moves.grid[at], moves.dcost[at], points)
        out[f"sum_posc_{group}"] = np.bincount(moves.grid[at], np.maximum(moves.dcost[at], 0.0), points)
        out[f"sum_obj_{group}"] = np.bincount(moves.grid[at], moves.dobj[at], points)
        out[f"sum_count_{group}"] = np.bincount(moves.grid[at], minlength=points).astype(np.float64)
    n_campaigns = block.cost.shape[0]
    frees = moves.group == _FREES
    for name, delta in (("spend", moves.dspend), ("red", moves.dred)):
        net = np.zeros((n_campaigns, points))
        freed = np.zeros((n_campaigns, points))
        added = np.zeros((n_campaigns, points))
        for c in np.flatnonzero(path.capped):
            net[c] = np.bincount(moves.grid, delta[:, c], points)
            freed[c] = np.bincount(moves.grid[frees], -delta[frees, c], points)
            added[c] = np.bincount(moves.grid[~frees], np.maximum(delta[~frees, c], 0.0), points)
        out[f"sum_net_{name}"] = net
        out[f"sum_freed_{name}"] = freed
        out[f"sum_added_{name}"] = added
    return out


def _pass_band(
    block: _Block, path: _PathParams, first: int, last: int, candidates: list[_Prices]
) -> dict[str, Any]:
    """The moves at grid points first..last (for the driver's exact scan) and the dual bound's data terms."""
    out: dict[str, Any] = {
        "sum_bound": np.array([_lagrangian_sum(block, path.floor, prices, path.k) for prices in candidates])
    }
    if first <= last and block.n:
        moves = _household_moves(block, path)
        at = (moves.grid >= first) & (moves.grid <= last)
        out.update(
            cat_household=block.household[moves.house[at]],
            cat_grid=moves.grid[at].astype(np.int64),
            cat_group=moves.group[at].astype(np.int64),
            cat_rank=moves.rank[at],
            cat_cost=moves.dcost[at],
            cat_obj=moves.dobj[at],
        )
    return out


def _final_choice(block: _Block, design: _Design) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The plan for one block: mask [C, n], and per chosen pair the ROI and grid point of its admitting move."""
    moves = _household_moves(block, design.path)
    moves = moves.take(_included(block, moves, design.cut))
    n_campaigns = block.cost.shape[0]
    chosen = np.zeros((n_campaigns, block.n), bool)
    step_roi = np.full((n_campaigns, block.n), np.nan)
    step_grid = np.zeros((n_campaigns, block.n), np.int64)
    if len(moves.house):
        order = np.lexsort((moves.grid, moves.house))
        last = order[np.append(moves.house[order][1:] != moves.house[order][:-1], True)]
        chosen[:, moves.house[last]] = moves.after[last].T
        move_idx, campaign_idx = np.nonzero(moves.after & ~moves.before)
        house = moves.house[move_idx]
        order = np.lexsort((moves.grid[move_idx], house, campaign_idx))
        key = campaign_idx[order] * block.n + house[order]
        last = order[np.append(key[1:] != key[:-1], True)]
        step_roi[campaign_idx[last], house[last]] = moves.roi[move_idx[last]]
        step_grid[campaign_idx[last], house[last]] = moves.grid[move_idx[last]]
    return chosen, np.where(chosen, step_roi, np.nan), np.where(chosen, step_grid, 0)


def _pass_emit_rows(block: _Block, design: _Design) -> dict[str, Any]:
    chosen, step_roi, step_grid = _final_choice(block, design)
    return {"cat_row": block.row[chosen], "cat_step_roi": step_roi[chosen], "cat_step_grid": step_grid[chosen]}


def _emit_frame(block: _Block, design: _Design, campaigns: np.ndarray) -> pd.DataFrame:
    chosen, step_roi, step_grid = _final_choice(block, design)
    campaign, house = np.nonzero(chosen)
    return pd.DataFrame(
        {
            "household_id": block.household[house],
            "campaign_id": campaigns[campaign],
            "value": block.value[campaign, house],
            "cost": block.cost[campaign, house],
            "redemptions": block.red[campaign, house],
            "step_roi": step_roi[campaign, house],
            "step_grid": step_grid[campaign, house],
            "forced": np.zeros(len(house), bool),
        }
    )


def _forced_candidates(
    block: _Block, design: _Design, short: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of short campaigns that the plan left out, in households with a free slot."""
    chosen, _, _ = _final_choice(block, design)
    free = design.path.k - chosen.sum(0)
    candidate = block.valid & ~chosen & short[:, None] & (free > 0)[None, :]
    roi = np.where(candidate, block.profit / np.where(block.valid, block.cost, 1.0), -np.inf)
    return candidate, roi, free


def _roi_code(roi: np.ndarray) -> np.ndarray:
    """Monotone squash of ROI onto (-1, 1) for a fixed histogram of forced candidates."""
    return np.tanh(np.arcsinh(roi) / 8.0)


_FORCED_BINS = 2048


def _forced_bin(roi: np.ndarray) -> np.ndarray:
    return np.clip(((1 - _roi_code(roi)) / 2 * _FORCED_BINS).astype(np.int64), 0, _FORCED_BINS - 1)


def _pass_forced_hist(block: _Block, design: _Design, short: np.ndarray) -> dict[str, Any]:
    candidate, roi, _ = _forced_candidates(block, design, short)
    campaign, house = np.nonzero(candidate)
    hist = np.zeros((len(short), _FORCED_BINS))
    np.add.at(hist, (campaign, _forced_bin(roi[campaign, house])), block.cost[campaign, house])
    return {"sum_hist": hist}


def _pass_forced_collect(block: _Block, design: _Design, short: np.ndarray, last_bin: np.ndarray) -> dict[str, Any]:
    candidate, roi, free = _forced_candidates(block, design, short)
    campaign, house = np.nonzero(candidate)
    keep = _forced_bin(roi[campaign, house]) <= last_bin[campaign]
    campaign, house = campaign[keep], house[keep]
    out = {
        "cat_household": block.household[house],
        "cat_campaign": campaign.astype(np.int64),
        "cat_value": block.value[campaign, house],
        "cat_cost": block.cost[campaign, house],
        "cat_red": block.red[campaign, house],
        "cat_roi": roi[campaign, house],
        "cat_free": free[house].astype(np.int64),
    }
    if block.row is not None:
        out["cat_row"] = block.row[campaign, house]
    return out
