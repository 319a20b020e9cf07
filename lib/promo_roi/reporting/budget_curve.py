"""Expected profit against spend: the night's plan traced over budgets, for the report's budget section.

:func:`spend_profit_curve` replans a run's scored pairs (gold.household_scores: the calibrated value and
expected cost of every household x campaign pair) with the numpy planner at budgets from the campaigns'
minimums up to the spend where the last households stop paying for themselves (the plan with no total
budget and a target ROI of 0: the most profit the forecasts allow), under the published plan's caps and
campaign bounds. Pure: pairs and plan rows in, a frame out; nothing is read or written.

The curve is the plan on expected profit: it ignores the risk rule (``planning.risk: quantile``), which
the report states next to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging

import numpy as np
import pandas as pd

from promo_roi.observability import stage
from promo_roi.planning import BudgetConstraints, plan_budget

log = logging.getLogger(__name__)

CURVE_POINTS = 10  # intervals between the minimums and the peak (its inner points are planned)
CURVE_COLUMNS = ("budget", "spend", "profit", "point")  # point: "grid" or "peak"


def _limits(plan: pd.DataFrame, column: str) -> dict[int, float]:
    if column not in plan.columns:
        return {}
    return {int(c): float(v) for c, v in zip(plan["campaign_id"], plan[column]) if v is not None and not pd.isna(v)}


def constraints_of(plan: pd.DataFrame) -> BudgetConstraints:
    """The published plan's constraints (gold.budget_plan rows of one run: cap, campaign bounds, budget)."""
    first = plan.iloc[0]
    total = first["total_budget"]
    return BudgetConstraints(
        total_budget=None if total is None or pd.isna(total) else float(total),
        household_cap=int(first["household_cap"]),
        campaign_min_budget=_limits(plan, "min_budget"), campaign_max_budget=_limits(plan, "max_budget"),
        campaign_inventory=_limits(plan, "coupon_inventory"),
    )


def spend_profit_curve(pairs: pd.DataFrame, plan: pd.DataFrame, points: int = CURVE_POINTS) -> pd.DataFrame:
    """Expected profit and spend of the plan at ``points`` budgets up to the peak, and the peak itself.

    ``pairs``: household_id, campaign_id, value (incremental gross profit), cost, redemptions.
    """
    if pairs.empty or plan.empty:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    with stage(log, "report.spend_profit_curve") as st, _quiet(logging.getLogger("promo_roi.planning")):
        curve = _trace(pairs, constraints_of(plan), points)
        st.rows = len(curve)
        st.detail = f"{points - 1} budgets and the peak over {len(pairs):,} pairs"
    return curve


@contextlib.contextmanager
def _quiet(logger: logging.Logger):
    """The planner's per-pass INFO lines, a dozen per plan, once per curve point, say nothing here."""
    level = logger.level
    logger.setLevel(max(logging.WARNING, level))
    try:
        yield
    finally:
        logger.setLevel(level)


def _trace(pairs: pd.DataFrame, base: BudgetConstraints, points: int) -> pd.DataFrame:
    peak = plan_budget(pairs, dataclasses.replace(base, total_budget=None), "target_roi", 0.0).summary
    floor = float(sum(base.campaign_min_budget.values()))
    rows = []
    # The peak closes the curve: a budget of exactly its spend can leave its last household out (the planner
    # is within one household of the optimum), which would draw a dip just before it.
    for budget in np.linspace(floor, max(peak.budget_used, floor), points + 1)[1:-1]:
        summary = plan_budget(pairs, dataclasses.replace(base, total_budget=float(budget)), "fixed_budget").summary
        rows.append({"budget": float(budget), "spend": summary.budget_used, "profit": summary.profit, "point": "grid"})
    rows.append({"budget": None, "spend": peak.budget_used, "profit": peak.profit, "point": "peak"})
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)
