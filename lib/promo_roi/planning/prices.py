"""Prices: coordinate descent on the Lagrangian dual (step 1 of the method).

``_Prices`` are the budget price lambda and the campaign prices (mu on
spend, nu on redemptions); the reduced profit a household sees and the dual
value follow from them. ``_search_prices`` finds them on the sample,
``_polish_caps`` raises the prices of campaigns still over a cap, and
``_path_prices`` gives the cap prices at every point of the budget-price
grid. The method is described in this package's README.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from promo_roi.planning.blocks import _Block
from promo_roi.planning.choice import _top_values, select_top_k
from promo_roi.planning.problem import _Problem


@dataclass(frozen=True)
class _Prices:
    budget: float  # lambda, per unit of cost, on top of the floor
    spend: np.ndarray  # mu_c, per unit of cost
    redemptions: np.ndarray  # nu_c, per redemption

    def as_dict(self, campaigns: np.ndarray) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "spend": {int(c): float(v) for c, v in zip(campaigns, self.spend) if v > 0},
            "redemptions": {int(c): float(v) for c, v in zip(campaigns, self.redemptions) if v > 0},
        }


def _reduced(block: _Block, floor: float, prices: _Prices) -> np.ndarray:
    per_cost = floor + prices.budget + prices.spend
    return block.choice_profit - per_cost[:, None] * block.cost - prices.redemptions[:, None] * block.red


def _lagrangian_sum(block: _Block, floor: float, prices: _Prices, k: int) -> float:
    """Sum over households of their best positive reduced profit (the dual's data term)."""
    if block.n == 0:
        return 0.0
    tops = _top_values(_reduced(block, floor, prices), min(k, block.cost.shape[0]))
    return float(np.maximum(tops, 0.0).sum())


def _dual_value(data_term: float, prices: _Prices, budget: float, caps: np.ndarray, inventory: np.ndarray) -> float:
    value = data_term
    if math.isfinite(budget):
        value += prices.budget * budget
    value += float(np.dot(prices.spend[np.isfinite(caps)], caps[np.isfinite(caps)]))
    value += float(np.dot(prices.redemptions[np.isfinite(inventory)], inventory[np.isfinite(inventory)]))
    return value


def _campaign_line_minimum(
    reduced: np.ndarray,
    tops: np.ndarray,
    block: _Block,
    weight: np.ndarray,
    campaign: int,
    limit: float,
    current: float,
    k: int,
    lower: float = 0.0,
) -> float:
    """Exact minimiser (>= ``lower``) of the dual along one campaign price, others fixed.

    Pair (h, c) stays chosen while its reduced profit beats the household's
    k-th best other pair (or 0); that gives each pair a threshold price d.
    The campaign's usage at price x is the weight of pairs with d > x, so the
    minimiser is the smallest x whose usage fits the limit. ``tops`` are the
    households' k + 1 best reduced profits (shared by all campaigns).
    """
    n = block.n
    kth = tops[k - 1] if k - 1 < len(tops) else np.full(n, -np.inf)
    next_ = tops[k] if k < len(tops) else np.full(n, -np.inf)
    row = reduced[campaign]
    ok = block.valid[campaign] & (weight[campaign] > 0)
    beat = np.maximum(np.where(row >= kth, next_, kth), 0.0)
    thresholds = current + (row[ok] - beat[ok]) / weight[campaign][ok]
    above = thresholds > lower
    thresholds, weights = thresholds[above], weight[campaign][ok][above]
    if weights.sum() <= limit:
        return max(lower, 0.0)
    order = np.argsort(-thresholds, kind="stable")
    over = np.flatnonzero(np.cumsum(weights[order]) > limit)
    return max(lower, 0.0, float(thresholds[order][over[0]]))


def _household_tops(reduced: np.ndarray, k: int) -> np.ndarray:
    return _top_values(reduced, min(k + 1, reduced.shape[0]))


def _budget_line_minimum(block: _Block, floor: float, prices: _Prices, budget: float, k: int) -> float:
    """Smallest lambda >= 0 whose choices fit the budget: bisection (cost is monotone in lambda)."""

    def spend(lam: float) -> float:
        chosen = select_top_k(_reduced(block, floor, replace(prices, budget=lam)), k)
        return float((block.cost * chosen).sum())

    if spend(0.0) <= budget:
        return 0.0
    base = _reduced(block, floor, replace(prices, budget=0.0))
    ratio = np.where(block.valid, base / np.where(block.valid, block.cost, 1.0), -np.inf)
    lo, hi = 0.0, max(float(ratio.max()), 0.0) * (1 + 1e-12) + 1e-12
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        if spend(mid) <= budget:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-13 * max(1.0, hi):
            break
    return hi


def _search_prices(
    block: _Block,
    problem: _Problem,
    budget: float,
    scale: float,
    rounds: int,
    *,
    start: _Prices | None = None,
    budget_price: float | None = None,
    cap_scale: float | np.ndarray = 1.0,
    red_scale: float | np.ndarray | None = None,
) -> tuple[_Prices, float]:
    """Dual prices on ``block`` (a sample: limits scaled by ``scale``). Returns (prices, dual value).

    Gauss-Seidel coordinate descent with exact line minimisation: the budget
    price by bisection (or held at ``budget_price``), each campaign price by
    its threshold sort. Keeps the best (lowest) dual value seen; any prices
    give a valid bound. ``cap_scale`` < 1 aims a little under the caps (the
    sample's usage is noisy).
    """
    n_campaigns = problem.n_campaigns
    prices = start or _Prices(0.0, np.zeros(n_campaigns), np.zeros(n_campaigns))
    if budget_price is not None:
        prices = replace(prices, budget=budget_price)
    if block.n == 0 or n_campaigns == 0:
        return prices, 0.0
    budget_s = budget * scale
    caps = problem.max_budget * scale * cap_scale
    inventory = problem.inventory * scale * (cap_scale if red_scale is None else red_scale)
    k = problem.k
    best_value = _dual_value(_lagrangian_sum(block, problem.floor, prices, k), prices, budget_s, caps, inventory)
    best = prices
    for _ in range(rounds):
        before = prices
        if budget_price is None and math.isfinite(budget_s):
            prices = replace(prices, budget=_budget_line_minimum(block, problem.floor, prices, budget_s, k))
        prices = _campaign_descent(block, problem, prices, "spend", block.cost, caps)
        prices = _campaign_descent(block, problem, prices, "redemptions", block.red, inventory)
        value = _dual_value(_lagrangian_sum(block, problem.floor, prices, k), prices, budget_s, caps, inventory)
        if value < best_value:
            best_value, best = value, prices
        change = abs(prices.budget - before.budget) + float(np.abs(prices.spend - before.spend).sum())
        change += float(np.abs(prices.redemptions - before.redemptions).sum())
        if change <= 1e-12:
            break
    return best, best_value


def _campaign_descent(
    block: _Block, problem: _Problem, prices: _Prices, which: str, weight: np.ndarray, limits: np.ndarray
) -> _Prices:
    """One Gauss-Seidel sweep over the campaign prices ``which`` ("spend" or "redemptions") with a finite limit."""
    for campaign in np.flatnonzero(np.isfinite(limits)):
        reduced = _reduced(block, problem.floor, prices)
        current = getattr(prices, which).copy()
        current[campaign] = _campaign_line_minimum(
            reduced,
            _household_tops(reduced, problem.k),
            block,
            weight,
            campaign,
            limits[campaign],
            current[campaign],
            problem.k,
        )
        prices = replace(prices, **{which: current})
    return prices


def _polish_caps(
    block: _Block, problem: _Problem, prices: _Prices, caps: np.ndarray, inventory: np.ndarray, rounds: int = 20
) -> _Prices:
    """Raises the prices of campaigns whose choice still passes a cap (only raises).

    Coordinate descent ends near the dual optimum, where the choice can sit
    a little over a cap; each violated campaign's price goes to its exact
    line minimum until the choice respects every cap on the sample.
    """
    for _ in range(rounds):
        chosen = select_top_k(_reduced(block, problem.floor, prices), problem.k)
        over_spend = (block.cost * chosen).sum(1) > caps
        over_red = (block.red * chosen).sum(1) > inventory
        if not (over_spend.any() or over_red.any()):
            break
        spend, per_red = prices.spend.copy(), prices.redemptions.copy()
        reduced = _reduced(block, problem.floor, prices)
        tops = _household_tops(reduced, problem.k)
        # aim a little under the limit: raising one price pushes demand into
        # other capped campaigns, and exact aims make this ping-pong longer
        for c in np.flatnonzero(over_spend):
            spend[c] = _campaign_line_minimum(
                reduced, tops, block, block.cost, c, caps[c] * 0.998, spend[c], problem.k, lower=spend[c]
            )
        for c in np.flatnonzero(over_red):
            per_red[c] = _campaign_line_minimum(
                reduced, tops, block, block.red, c, inventory[c] * 0.998, per_red[c], problem.k, lower=per_red[c]
            )
        prices = replace(prices, spend=spend, redemptions=per_red)
    return prices


def _path_prices(
    block: _Block,
    problem: _Problem,
    grid: np.ndarray,
    scale: float,
    rounds: int,
    spend_target: np.ndarray,
    red_target: np.ndarray,
    every: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Cap prices along the budget-price grid: [grid point, campaign] arrays (mu, nu).

    For a budget price lambda, the best campaign prices are those of the
    problem with the budget priced at lambda and only the caps kept: what the
    Lagrangian optimum looks like at the budget where lambda is the going
    price. They depend on lambda only, never on B. Solved on the sample at
    every ``every``-th grid point (warm-started down the grid), interpolated
    in between, and polished at every point so that the sample's choice
    respects each cap times its target factor (< 1: a margin).
    """
    n_points, n_campaigns = len(grid), problem.n_campaigns
    spend = np.zeros((n_points, n_campaigns))
    red = np.zeros((n_points, n_campaigns))
    if not problem.capped.any() or block.n == 0:
        return spend, red
    caps = problem.max_budget * scale * spend_target
    inventory = problem.inventory * scale * red_target
    anchors = sorted(set(range(0, n_points, every)) | {n_points - 1})
    prices = None
    for point in anchors:
        prices, _ = _search_prices(
            block,
            problem,
            math.inf,
            scale,
            rounds,
            start=prices,
            budget_price=float(grid[point]),
            cap_scale=spend_target,
            red_scale=red_target,
        )
        prices = _polish_caps(block, problem, prices, caps, inventory)
        spend[point] = prices.spend
        red[point] = prices.redemptions
    for left, right in zip(anchors[:-1], anchors[1:]):
        for point in range(left + 1, right):
            share = (point - left) / (right - left)
            mixed = _Prices(
                float(grid[point]),
                (1 - share) * spend[left] + share * spend[right],
                (1 - share) * red[left] + share * red[right],
            )
            mixed = _polish_caps(block, problem, mixed, caps, inventory)
            spend[point] = mixed.spend
            red[point] = mixed.redemptions
    return spend, red
