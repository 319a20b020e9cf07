"""Household paths (step 2 of the method): each household's choice along the budget-price grid.

A household walks down the grid of budget prices and takes its Lagrangian
choice at each point; every change is a move. ``_Moves`` holds the moves of
a block, ``_move_order`` is the global, budget-independent order of all
moves, and a ``_Cut`` in that order with the path's prices (a ``_Design``)
defines a plan. The method is described in this package's README.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from promo_roi.planning.blocks import _Block
from promo_roi.planning.choice import select_top_k


@dataclass(frozen=True)
class _PathParams:
    k: int
    floor: float
    grid: np.ndarray  # extra budget prices over the floor, descending, ending with 0 (grid points 1..L)
    cap_price: np.ndarray  # [L, C] mu_c at each grid point
    red_price: np.ndarray  # [L, C] nu_c at each grid point
    capped: np.ndarray  # [C] bool
    closed: np.ndarray  # [C, L + 1] bool: moves into campaign c at grid point l are cut

    @property
    def points(self) -> int:
        return len(self.grid)


# Moves inside one grid point go in three groups: those that only free
# capped capacity first (so a cap is never passed in the middle of a grid
# point because an exit came after an entry), then the ones that gain, then
# the ones that lose objective.
_FREES, _GAINS, _LOSES = 0, 1, 2


@dataclass
class _Moves:
    """Every household move along the path: household ``house`` changes its choice at grid point ``grid``."""

    house: np.ndarray  # [m] household index in the block
    grid: np.ndarray  # [m] grid point (1..L)
    dcost: np.ndarray  # [m]
    dprofit: np.ndarray  # [m]
    dobj: np.ndarray  # [m] dprofit - floor * dcost
    before: np.ndarray  # [m, C] bool
    after: np.ndarray  # [m, C] bool
    dspend: np.ndarray  # [m, C]
    dred: np.ndarray  # [m, C]
    group: np.ndarray  # [m] _FREES, _GAINS or _LOSES
    rank: np.ndarray  # [m] sort key inside its group (ascending)

    def take(self, keep: np.ndarray) -> _Moves:
        return _Moves(**{name: getattr(self, name)[keep] for name in self.__dataclass_fields__})

    @property
    def roi(self) -> np.ndarray:
        """Marginal ROI of the move (incremental profit / incremental cost); NaN if it saves cost."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.dcost > 0, self.dprofit / self.dcost, np.nan)


def _household_moves(block: _Block, params: _PathParams) -> _Moves:
    """Walks every household down the price grid and records each change of its choice.

    At grid point l the household takes ``select_top_k`` of its reduced
    profits at budget price ``floor + grid[l]`` and the cap prices of that
    point. Moves are then cut at the first entry into a campaign closed at
    that grid point (the cap cuts): the household keeps its earlier choice.
    """
    house, grid, dcost, dprofit, before, after = _walk_grid(block, params)
    change = after.astype(np.int8) - before.astype(np.int8)
    dspend = change * block.cost.T[house]
    dred = change * block.red.T[house]
    dobj = dprofit - params.floor * dcost
    group, rank = _order_keys(dcost, dobj, dspend, dred, params.capped)
    moves = _Moves(house, grid, dcost, dprofit, dobj, before, after, dspend, dred, group, rank)
    if params.closed.any() and len(house):
        moves = _cut_closed(moves, params, block.n)
    return moves


def _walk_grid(
    block: _Block, params: _PathParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every change of choice down the grid: household, grid point, cost and profit changes, choice before and after."""
    n_campaigns, n = block.cost.shape
    cost, red = block.cost, block.red
    previous = np.zeros((n_campaigns, n), bool)
    spent = np.zeros(n)
    earned = np.zeros(n)
    parts: list[tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for point in range(1, params.points + 1):
        per_cost = params.floor + params.grid[point - 1] + params.cap_price[point - 1]
        reduced = block.choice_profit - per_cost[:, None] * cost - params.red_price[point - 1][:, None] * red
        current = select_top_k(reduced, params.k)
        moved = np.flatnonzero((current != previous).any(0))
        if len(moved) == 0:
            continue
        now = current[:, moved]
        new_spent = (cost[:, moved] * now).sum(0)
        new_earned = (block.profit[:, moved] * now).sum(0)
        parts.append(
            (moved, point, new_spent - spent[moved], new_earned - earned[moved], previous[:, moved].T, now.T)
        )
        spent[moved] = new_spent
        earned[moved] = new_earned
        previous = current
    if not parts:
        empty_int, empty = np.empty(0, np.int64), np.empty(0)
        none = np.zeros((0, n_campaigns), bool)
        return empty_int, empty_int, empty, empty, none, none
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([np.full(len(p[0]), p[1]) for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
        np.concatenate([p[4] for p in parts]),
        np.concatenate([p[5] for p in parts]),
    )


def _order_keys(
    dcost: np.ndarray, dobj: np.ndarray, dspend: np.ndarray, dred: np.ndarray, capped: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each move's group (_FREES, _GAINS, _LOSES) and its rank inside the group."""
    frees = (dspend[:, capped] < 0).any(1) | (dred[:, capped] < 0).any(1)
    takes = (dspend[:, capped] > 0).any(1) | (dred[:, capped] > 0).any(1)
    group = np.where(frees & ~takes, _FREES, np.where(dobj >= 0, _GAINS, _LOSES))
    with np.errstate(divide="ignore", invalid="ignore"):
        efficiency = np.where(dcost > 0, dobj / dcost, np.inf)
    rank = np.where(group == _FREES, dobj, np.where(group == _GAINS, -efficiency, -dobj))
    return group, rank


def _cut_closed(moves: _Moves, params: _PathParams, n: int) -> _Moves:
    """Drops each household's moves from its first entry into a campaign closed at that grid point."""
    entered = moves.after & ~moves.before
    hit = (entered & params.closed[:, moves.grid].T).any(1)
    if not hit.any():
        return moves
    first = np.full(n, params.points + 1)
    np.minimum.at(first, moves.house[hit], moves.grid[hit])
    return moves.take(moves.grid < first[moves.house])


def _move_order(household_id: np.ndarray, grid: np.ndarray, group: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """The global order of moves: grid point, group, rank, household id (all B-independent)."""
    return np.lexsort((household_id, rank, group, grid))


@dataclass(frozen=True)
class _Cut:
    """Where the plan stops in the global order of moves.

    Every move at grid points before ``point`` is in; at ``point`` itself:
    none (``mode='start'``), the freeing and gaining groups (``'junction'``),
    or the moves of the listed households (``'list'``).
    """

    point: int
    mode: str = "start"
    households: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # sorted


@dataclass(frozen=True)
class _Design:
    path: _PathParams
    cut: _Cut


def _included(block: _Block, moves: _Moves, cut: _Cut) -> np.ndarray:
    """Which moves the plan makes (a prefix of the global order)."""
    keep = moves.grid < cut.point
    at = moves.grid == cut.point
    if cut.mode == "junction":
        keep |= at & (moves.group != _LOSES)
    elif cut.mode == "list" and len(cut.households):
        ids = block.household[moves.house]
        pos = np.minimum(np.searchsorted(cut.households, ids), len(cut.households) - 1)
        keep |= at & (cut.households[pos] == ids)
    return keep
