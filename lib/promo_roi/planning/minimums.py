"""Minimum budgets, best effort: replan with the shortfall held back, then force pairs in.

When the plan leaves a campaign under its minimum budget,
``_replan_for_minimums`` redoes the budget cut with the missing amount held
back from the total budget, and ``_forced_plan`` adds the campaign's
least-unprofitable left-out pairs until the minimum is met or a budget, cap
or slot runs out. The method is described in this package's README.md.
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace
from typing import Any, Mapping

import numpy as np

from promo_roi.planning.cuts import _budget_window, _threshold
from promo_roi.planning.driver import _cut_at_budget, _Solved
from promo_roi.planning.passes import _FORCED_BINS, _pass_forced_collect, _pass_forced_hist
from promo_roi.planning.paths import _Design
from promo_roi.planning.problem import _Problem, _safe
from promo_roi.planning.summary import _shortfalls, _Usage

_FORCED_KEYS = ("household", "campaign", "value", "cost", "red", "row")


def _replan_for_minimums(engine: Any, problem: _Problem, solved: _Solved, usage: _Usage) -> _Solved | None:
    """With a total budget, redo the budget cut holding back the minimum budgets' shortfall."""
    shortfall = float(_shortfalls(problem, usage).sum())
    if shortfall <= 0 or not math.isfinite(problem.budget) or solved.grid_stats is None:
        return None
    if float(usage.spend.sum()) + shortfall <= problem.budget_safe:
        return None
    budget = _safe(max(0.0, problem.budget - shortfall))
    path = solved.design.path
    window = _budget_window(solved.grid_stats, budget)
    cut, _ = _cut_at_budget(
        engine, "minimum budgets: budget window at the reduced budget", path, solved.grid_stats, budget, window, []
    )
    return replace(solved, design=_Design(path, cut), roi_threshold=_threshold(cut, path))


def _forced_plan(
    engine: Any, problem: _Problem, design: _Design, usage: _Usage
) -> dict[str, np.ndarray] | None:
    """Adds the least-unprofitable pairs of campaigns below their minimum budget.

    Candidates: a short campaign's pairs that the plan left out, in households
    with a free slot, best ROI first; taken while the total budget, the
    campaign's maximum and inventory, and the household's slots allow, until
    the minimum is met. Two passes: a histogram of candidates' ROI (to gather
    only about three times the shortfall), then the candidates themselves.
    """
    short = _shortfalls(problem, usage) > 0
    if not short.any():
        return None
    hist = engine.aggregate(
        "minimum budgets: candidates histogram", functools.partial(_pass_forced_hist, design=design, short=short)
    )["hist"]
    last_bin = _last_bins(hist, 3.0 * _shortfalls(problem, usage), short)
    cands = engine.aggregate(
        "minimum budgets: candidates",
        functools.partial(_pass_forced_collect, design=design, short=short, last_bin=last_bin),
    )
    if "household" not in cands:
        return {key: np.empty(0) for key in _FORCED_KEYS}
    idx = _take_forced(problem, usage, cands)
    return {key: cands[key][idx] for key in cands if key in _FORCED_KEYS}


def _last_bins(hist: np.ndarray, need: np.ndarray, short: np.ndarray) -> np.ndarray:
    """Per short campaign: the last ROI bin to gather so that the candidates' cost covers ``need``."""
    last_bin = np.full(len(short), -1, np.int64)
    for campaign in np.flatnonzero(short):
        cumulative = np.cumsum(hist[campaign])
        enough = np.flatnonzero(cumulative >= need[campaign])
        last_bin[campaign] = enough[0] if len(enough) else _FORCED_BINS - 1
    return last_bin


def _take_forced(problem: _Problem, usage: _Usage, cands: Mapping[str, np.ndarray]) -> np.ndarray:
    """Indices of the candidates taken, best ROI first per campaign, while every limit allows."""
    order = np.lexsort((cands["household"], -cands["roi"], cands["campaign"]))
    spend = usage.spend.copy()
    red = usage.red.copy()
    total = float(usage.spend.sum())
    budget = problem.budget_safe
    used_slots: dict[int, int] = {}
    taken = []
    for i in order:
        c = int(cands["campaign"][i])
        if spend[c] >= problem.min_budget[c]:
            continue
        h = int(cands["household"][i])
        w, r = float(cands["cost"][i]), float(cands["red"][i])
        if used_slots.get(h, 0) >= cands["free"][i]:
            continue
        if total + w > budget or spend[c] + w > _safe(problem.max_budget[c]):
            continue
        if red[c] + r > _safe(problem.inventory[c]):
            continue
        taken.append(i)
        used_slots[h] = used_slots.get(h, 0) + 1
        spend[c] += w
        red[c] += r
        total += w
    return np.array(taken, dtype=np.int64)
