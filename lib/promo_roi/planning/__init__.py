"""Budget planning: which households each campaign should target, under budgets and caps.

``promo_roi.planning`` turns scored (household, campaign) pairs (expected
incremental value, expected cost, expected redemptions) into a targeting plan
that maximises incremental profit under a total budget, per-campaign budgets
and coupon inventories, and a per-household cap on overlapping campaigns. It
runs in numpy (``plan_budget``) or on Spark (``plan_budget_spark``) with one
implementation of the per-household choice (``select_top_k``), and checks
small instances exactly with HiGHS (``solve_exact``).

The method, its guarantees and a map of the modules are in README.md, next
to this file.
"""

from promo_roi.planning.api import plan_budget, plan_budget_spark
from promo_roi.planning.choice import select_top_k
from promo_roi.planning.exact import relaxation_bound, solve_exact
from promo_roi.planning.plan_types import (
    PAIR_COLUMNS,
    BudgetConstraints,
    BudgetPlan,
    CampaignSummary,
    ExactSolution,
    PlanningMode,
    PlanSummary,
    SolverSettings,
)


__all__ = [
    "PAIR_COLUMNS",
    "BudgetConstraints",
    "BudgetPlan",
    "CampaignSummary",
    "ExactSolution",
    "PlanSummary",
    "PlanningMode",
    "SolverSettings",
    "plan_budget",
    "plan_budget_spark",
    "relaxation_bound",
    "select_top_k",
    "solve_exact",
]
