"""Where the plan stops (steps 3 and 4 of the method), from the merged moves-by-grid-point statistics.


Caps: the highest usage any prefix of the order of moves can reach, per
campaign and grid point, and the cap cuts that close a campaign where it
would pass. Budget: the window of grid points where the running cost first
passes the budget, and the best cut among the checkpoints the budget
reaches (``_choose_cut``). All of it reads the statistics of
``passes._pass_grid`` (and, for the window, ``passes._pass_band``); none
of it touches households. The method is described in this package's
README.md.
"""

from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np

from promo_roi.planning.paths import _FREES, _GAINS, _LOSES, _Cut, _move_order, _PathParams
from promo_roi.planning.problem import _Problem, _safe

# --------------------------------------------------------------------------
# Caps hold for every prefix
# --------------------------------------------------------------------------


def _cap_limits(problem: _Problem) -> Iterator[tuple[str, int, float]]:
    """(usage, campaign index, limit) of every finite cap: maximum budgets ("spend"), then inventories ("red")."""
    for name, limits in (("spend", problem.max_budget), ("red", problem.inventory)):
        for c in np.flatnonzero(np.isfinite(limits)):
            yield name, c, limits[c]


def _peak_usage(stats: Mapping[str, np.ndarray], name: str, c: int) -> np.ndarray:
    """Per grid point: the most campaign ``c`` can use at any prefix of the point's moves.

    Inside a grid point the freeing moves come first, then the others in any
    order, so the usage never exceeds (usage before the point) - (freed) +
    (every addition at the point).
    """
    net = stats[f"net_{name}"][c]
    return np.cumsum(net) - net - stats[f"freed_{name}"][c] + stats[f"added_{name}"][c]


def _cap_peaks(
    stats: Mapping[str, np.ndarray], problem: _Problem, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per campaign: the highest possible usage along the order of moves, as a share of its cap (times ``scale``)."""
    shares = {"spend": np.zeros(problem.n_campaigns), "red": np.zeros(problem.n_campaigns)}
    for name, c, cap in _cap_limits(problem):
        peak = np.max(_peak_usage(stats, name, c))
        limit = _safe(cap * scale)
        shares[name][c] = peak / limit if limit > 0 else (np.inf if peak > 0 else 0.0)
    return shares["spend"], shares["red"]


def _cap_overflows(stats: Mapping[str, np.ndarray], problem: _Problem) -> np.ndarray:
    """[C, L + 1] bool: grid points where some prefix of the moves could pass a cap."""
    flagged = np.zeros(stats["net_spend"].shape, bool)
    for name, c, cap in _cap_limits(problem):
        flagged[c] |= _peak_usage(stats, name, c) > _safe(cap)
    return flagged


def _cap_closures_by_entries(stats: Mapping[str, np.ndarray], problem: _Problem) -> np.ndarray:
    """[C, L + 1] bool: the safe fallback. Close a campaign from the grid point where
    its entries alone (exits not credited) would pass the cap; cutting moves only
    removes entries, so this can never be undone by another campaign's cut."""
    closed = np.zeros(stats["net_spend"].shape, bool)
    for name, c, cap in _cap_limits(problem):
        over = np.flatnonzero(np.cumsum(stats[f"added_{name}"][c]) > _safe(cap))
        if len(over):
            closed[c, over[0] :] = True
    return closed


# --------------------------------------------------------------------------
# Budget: keep the best plan
# --------------------------------------------------------------------------


def _group_sums(stats: Mapping[str, np.ndarray], prefix: str) -> np.ndarray:
    return sum(stats[f"{prefix}_{group}"] for group in (_FREES, _GAINS, _LOSES))


def _budget_window(stats: Mapping[str, np.ndarray], budget: float) -> tuple[int, int] | None:
    """Grid points first..last between which the running cost first passes the budget (None: never).

    ``first``: the first point where it could (start + every positive cost at
    the point); ``last``: the first point from there whose end is over.
    """
    cost = _group_sums(stats, "cost")
    ends = np.cumsum(cost)
    starts = ends - cost
    could = np.flatnonzero(starts + _group_sums(stats, "posc") > budget)
    could = could[could >= 1]
    if len(could) == 0:
        return None
    first = int(could[0])
    over = np.flatnonzero((ends > budget) & (np.arange(len(ends)) >= first))
    last = int(over[0]) if len(over) else len(ends) - 1
    return first, last


class _BestCut:
    """The best plan seen so far, keyed by (objective, grid point, moves at the point): later wins ties."""

    def __init__(self) -> None:
        self.key: tuple[float, int, int] = (0.0, 0, 0)  # nothing at all
        self.cut = _Cut(point=0)

    def consider(self, value: float, point: int, offset: int, cut: _Cut) -> None:
        key = (value, point, offset)
        if key > self.key:
            self.key, self.cut = key, cut


def _choose_cut(
    stats: Mapping[str, np.ndarray],
    band: Mapping[str, np.ndarray],
    window: tuple[int, int] | None,
    budget: float,
    points: int,
) -> _Cut:
    """The best plan among the checkpoints the budget reaches (keep the best plan).

    Checkpoints are B-independent positions in the global order of moves:
    the start of each grid point and its junction (after the freeing and
    gaining moves). The plan for budget B is the best of the checkpoints
    before the first move that does not fit, and of the prefix that stops
    there. Inside a grid point the objective falls then rises up to the
    junction (freeing moves sorted by objective change, then gaining moves)
    and falls after it, so that stopping prefix is never better than a
    checkpoint the next budget still reaches, or than its own continuation:
    the plan's objective cannot decrease when B grows.
    """
    objective = _group_sums(stats, "obj")
    obj_end = np.cumsum(objective)
    obj_start = obj_end - objective
    rising = stats[f"obj_{_FREES}"] + stats[f"obj_{_GAINS}"]
    rising_count = stats[f"count_{_FREES}"] + stats[f"count_{_GAINS}"]
    best = _BestCut()
    full_until = window[0] if window is not None else points + 1
    for point in range(1, full_until):
        best.consider(float(obj_start[point]), point, 0, _Cut(point))
        best.consider(
            float(obj_start[point] + rising[point]), point, int(rising_count[point]), _Cut(point, "junction")
        )
    if window is None:
        best.consider(float(obj_end[points]), points + 1, 0, _Cut(points + 1))
    else:
        _scan_window(best, stats, band, window, budget, obj_start)
    return best.cut


def _scan_window(
    best: _BestCut,
    stats: Mapping[str, np.ndarray],
    band: Mapping[str, np.ndarray],
    window: tuple[int, int],
    budget: float,
    obj_start: np.ndarray,
) -> None:
    """The checkpoints inside the budget window and the prefix that stops at the first move that does not fit."""
    first, last = window
    order = _move_order(band["household"], band["grid"], band["group"], band["rank"])
    household, grid = band["household"][order], band["grid"][order]
    group, cost, obj = band["group"][order], band["cost"][order], band["obj"][order]
    running = (np.cumsum(_group_sums(stats, "cost")) - _group_sums(stats, "cost"))[first] + np.cumsum(cost)
    over = np.flatnonzero(running > budget)
    stop = int(over[0]) if len(over) else len(cost)
    values = obj_start[first] + np.concatenate([[0.0], np.cumsum(obj)])
    for point in range(first, last + 1):
        start = int(np.searchsorted(grid, point, side="left"))
        if start <= stop:
            best.consider(float(values[start]), point, 0, _Cut(point))
        junction = start + int(((grid == point) & (group != _LOSES)).sum())
        if junction <= stop:
            best.consider(float(values[junction]), point, junction - start, _Cut(point, "junction"))
    if stop < len(cost):
        point = int(grid[stop])
        start = int(np.searchsorted(grid, point, side="left"))
        chosen = np.sort(household[start:stop])
        best.consider(float(values[stop]), point, stop - start, _Cut(point, "list", chosen))
    else:
        best.consider(float(values[stop]), last + 1, 0, _Cut(last + 1))


def _threshold(cut: _Cut, path: _PathParams) -> float | None:
    """Budget price (as an ROI) at which the plan stops; None when it takes every move."""
    if cut.point > path.points or cut.point < 1:
        return None
    return path.floor + float(path.grid[cut.point - 1])
