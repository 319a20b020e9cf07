"""The driver: one solve, the same for the numpy and the Spark engine.

``_solve`` checks the statistics of the first pass, finds the prices on the
sample, calibrates the caps along the price grid (on the sample, then on
all the data), and cuts the global order of moves at the budget with a
certified dual bound. The method is described in this package's README.md.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np

from promo_roi.observability import stage
from promo_roi.planning.blocks import _Block, _block_from_pairs
from promo_roi.planning.cuts import (
    _budget_window,
    _cap_closures_by_entries,
    _cap_overflows,
    _cap_peaks,
    _choose_cut,
    _threshold,
)
from promo_roi.planning.engines import _Merger
from promo_roi.planning.passes import _pass_band, _pass_grid
from promo_roi.planning.paths import _Cut, _Design, _PathParams
from promo_roi.planning.prices import _dual_value, _path_prices, _Prices, _search_prices
from promo_roi.planning.problem import _Problem, _raise_on_bad_values
from promo_roi.planning.plan_types import SolverSettings

log = logging.getLogger(__name__)

_CAP_MARGIN = 0.995  # the price search aims this close to each cap (sampling noise, grid steps)


@dataclass
class _Solved:
    design: _Design
    households: int
    pairs: int
    dual_bound: float | None
    roi_threshold: float | None
    prices: dict[str, Any]
    grid_stats: dict[str, np.ndarray] | None = None


def _solve(engine: Any, problem: _Problem, settings: SolverSettings, pairs: int) -> _Solved:
    """Sample and prices, path moves, cap cuts, the budget cut and the dual bound."""
    n_campaigns = problem.n_campaigns
    households_estimate = max(1.0, pairs / max(1, n_campaigns))
    stats = engine.statistics(min(1.0, settings.sample_households / households_estimate))
    households, max_roi = _checked_statistics(stats)
    engine.households = households
    if households == 0 or n_campaigns == 0 or not max_roi > problem.floor:
        return _Solved(_empty_design(problem), households, pairs, 0.0, None, {})

    sample = _block_from_pairs(
        {key: stats[key] for key in ("household_id", "campaign", "value", "cost", "redemptions")},
        problem.campaigns,
    )
    scale = sample.n / households
    top = max_roi - problem.floor
    grid = np.concatenate([top * np.geomspace(1.0, settings.price_span, settings.price_grid - 1), [0.0]])
    path, grid_stats, cap_targets = _capped_path(engine, sample, problem, grid, scale, settings)

    with stage(log, "budget solver: budget prices on the sample (dual bound)") as report:
        bound_prices, sample_bound = _search_prices(sample, problem, problem.budget, scale, settings.search_rounds)
        report.rows = sample.n
    window = _budget_window(grid_stats, problem.budget_safe)
    threshold_hint = None if window is None else problem.floor + float(grid[window[0] - 1])
    candidates = _bound_candidates(bound_prices, problem, threshold_hint)
    cut, band = _cut_at_budget(
        engine, "budget window moves and dual bound", path, grid_stats, problem.budget_safe, window, candidates
    )
    bounds = [
        _dual_value(float(term), prices, problem.budget, problem.max_budget, problem.inventory)
        for term, prices in zip(band["bound"], candidates)
    ]
    best = int(np.argmin(bounds))
    dual_bound = bounds[best]
    if scale == 1.0:
        dual_bound = min(dual_bound, sample_bound)
    prices = {
        "grid_points": path.points,
        "cap_cuts": int(path.closed.sum()),
        "cap_targets": cap_targets,
        "bound_prices": candidates[best].as_dict(problem.campaigns),
    }
    return _Solved(_Design(path, cut), households, pairs, dual_bound, _threshold(cut, path), prices, grid_stats)


def _checked_statistics(stats: Mapping[str, Any]) -> tuple[int, float]:
    """Raises on bad values or duplicate pairs; returns (households, the largest pair ROI)."""
    _raise_on_bad_values(stats)
    duplicates = int(stats.get("duplicates", 0))
    if duplicates:
        raise ValueError(f"pairs: {duplicates} duplicate (household_id, campaign_id) pair(s)")
    return int(stats.get("households", 0)), float(stats.get("max_roi", -np.inf))


def _empty_design(problem: _Problem) -> _Design:
    n_campaigns = problem.n_campaigns
    path = _PathParams(
        k=problem.k,
        floor=problem.floor,
        grid=np.array([0.0]),
        cap_price=np.zeros((1, n_campaigns)),
        red_price=np.zeros((1, n_campaigns)),
        capped=problem.capped,
        closed=np.zeros((n_campaigns, 2), bool),
    )
    return _Design(path, _Cut(point=0))


def _capped_path(
    engine: Any, sample: _Block, problem: _Problem, grid: np.ndarray, scale: float, settings: SolverSettings
) -> tuple[_PathParams, dict[str, np.ndarray], dict[int, float]]:
    """The path whose moves keep every cap on all the data; its moves by grid point; the cap targets.

    Each round calibrates the path on the sample, then checks it on all the
    data and lowers the targets of the campaigns that pass. After
    ``cap_rounds`` corrections the moves into a campaign that would still
    pass are cut, and if that is not enough, cut by entries alone (which
    cannot fail).
    """
    spend_target = np.full(problem.n_campaigns, _CAP_MARGIN)
    red_target = np.full(problem.n_campaigns, _CAP_MARGIN)
    for attempt in range(settings.cap_rounds + 1):
        path, spend_target, red_target = _sample_path(
            sample, problem, grid, scale, settings, spend_target, red_target, attempt
        )
        grid_stats = engine.aggregate("moves by grid point", functools.partial(_pass_grid, path=path))
        if not problem.capped.any():
            break
        spend_peak, red_peak = _cap_peaks(grid_stats, problem)
        if _within_caps(spend_peak, red_peak):
            break
        if attempt == settings.cap_rounds:
            # Safety net: cut the moves into campaigns that would still pass a cap.
            path = replace(path, closed=_cap_overflows(grid_stats, problem))
            grid_stats = engine.aggregate("moves by grid point, cap cuts", functools.partial(_pass_grid, path=path))
            if _cap_overflows(grid_stats, problem).any():
                path = replace(path, closed=path.closed | _cap_closures_by_entries(grid_stats, problem))
                grid_stats = engine.aggregate(
                    "moves by grid point, safe cap cuts", functools.partial(_pass_grid, path=path)
                )
            break
        spend_target, red_target = _lowered(spend_target, spend_peak), _lowered(red_target, red_peak)
    cap_targets = {
        int(c): round(float(min(spend_target[i], red_target[i])), 4)
        for i, c in enumerate(problem.campaigns)
        if problem.capped[i]
    }
    return path, grid_stats, cap_targets


def _sample_path(
    sample: _Block,
    problem: _Problem,
    grid: np.ndarray,
    scale: float,
    settings: SolverSettings,
    spend_target: np.ndarray,
    red_target: np.ndarray,
    attempt: int,
) -> tuple[_PathParams, np.ndarray, np.ndarray]:
    """Path prices from the sample, calibrated on the sample until its own moves keep every cap.

    A full pass costs a scan of all households; a sample round costs a price
    search on the sample, so the caps' margins are first tuned here (the
    within-grid-point peaks are the same statistics, scaled), and the full
    data only corrects what the sample could not see.
    """
    n_campaigns = problem.n_campaigns
    for sample_round in range(settings.cap_rounds + 1):
        name = f"budget solver: cap prices along the price grid (sample, round {attempt + 1}.{sample_round + 1})"
        with stage(log, name) as report:
            cap_price, red_price = _path_prices(
                sample, problem, grid, scale, settings.search_rounds, spend_target, red_target
            )
            report.rows = sample.n
        path = _PathParams(
            k=problem.k,
            floor=problem.floor,
            grid=grid,
            cap_price=cap_price,
            red_price=red_price,
            capped=problem.capped,
            closed=np.zeros((n_campaigns, len(grid) + 1), bool),
        )
        if not problem.capped.any():
            break
        merger = _Merger()
        merger.add(_pass_grid(sample, path))
        spend_peak, red_peak = _cap_peaks(merger.result(), problem, scale)
        if _within_caps(spend_peak, red_peak):
            break
        spend_target, red_target = _lowered(spend_target, spend_peak), _lowered(red_target, red_peak)
    return path, spend_target, red_target


def _within_caps(spend_peak: np.ndarray, red_peak: np.ndarray) -> bool:
    return not ((spend_peak > 1).any() or (red_peak > 1).any())


def _lowered(target: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """Cap targets lowered by each campaign's excess over the margin."""
    return target / np.maximum(peak / _CAP_MARGIN, 1.0)


def _cut_at_budget(
    engine: Any,
    name: str,
    path: _PathParams,
    grid_stats: Mapping[str, np.ndarray],
    budget: float,
    window: tuple[int, int] | None,
    candidates: list[_Prices],
) -> tuple[_Cut, dict[str, Any]]:
    """The best cut for ``budget`` (one pass gathers the moves of its window) and that pass's results."""
    first, last = window if window is not None else (1, 0)
    band = engine.aggregate(
        name, functools.partial(_pass_band, path=path, first=first, last=last, candidates=candidates)
    )
    return _choose_cut(grid_stats, band, window, budget, path.points), band


def _bound_candidates(prices: _Prices, problem: _Problem, threshold: float | None) -> list[_Prices]:
    """Prices to evaluate the dual at on all the data: the sample's, nudged (sampling error)."""
    lambdas = {prices.budget}
    if math.isfinite(problem.budget):
        bases = [prices.budget]
        if threshold is not None:
            bases.append(max(threshold - problem.floor, 0.0))
        for base in bases:
            for step in (-0.02, -0.01, -0.005, -0.002, 0.0, 0.002, 0.005, 0.01, 0.02):
                lambdas.add(max(0.0, base * (1.0 + step)))
    scales = (0.98, 1.0, 1.02) if problem.capped.any() else (1.0,)
    return [_Prices(lam, prices.spend * s, prices.redemptions * s) for lam in sorted(lambdas) for s in scales]
