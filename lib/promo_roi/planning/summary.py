"""What a selection uses, checked against the hard constraints, and the plan's summary.

``_Usage`` is a selection's per-campaign totals, built from numpy arrays
or from the cached Spark selection; ``_check_feasible`` refuses a plan that
breaks a budget, a cap or the household cap (a bug must not ship a plan);
``_summary`` turns the usage and the solve into a ``PlanSummary``. The
method is described in this package's README.md.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

import numpy as np

from promo_roi.planning.driver import _Solved
from promo_roi.planning.problem import _Problem
from promo_roi.planning.plan_types import CampaignSummary, PlanSummary

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class _Usage:
    """Per-campaign totals of a selection."""

    spend: np.ndarray
    audience: np.ndarray
    profit: np.ndarray
    red: np.ndarray
    marginal: np.ndarray  # ROI of the move that admitted the campaign's latest pair (nan: none)
    forced: np.ndarray
    forced_spend: np.ndarray
    households: int
    most_per_household: int = 0

    @classmethod
    def from_arrays(
        cls,
        n_campaigns: int,
        campaign: np.ndarray,
        household: np.ndarray,
        value: np.ndarray,
        cost: np.ndarray,
        red: np.ndarray,
        step_roi: np.ndarray,
        step_grid: np.ndarray,
        forced: np.ndarray,
    ) -> _Usage:
        def total(weights: np.ndarray) -> np.ndarray:
            return np.bincount(campaign, weights, n_campaigns)

        return cls(
            spend=total(cost),
            audience=np.bincount(campaign, minlength=n_campaigns),
            profit=total(value - cost),
            red=total(red),
            marginal=_latest_roi(n_campaigns, campaign, step_roi, step_grid, forced),
            forced=np.bincount(campaign[forced], minlength=n_campaigns),
            forced_spend=np.bincount(campaign[forced], cost[forced], n_campaigns),
            households=len(np.unique(household)),
            most_per_household=int(np.unique(household, return_counts=True)[1].max()) if len(household) else 0,
        )


def _latest_roi(
    n_campaigns: int, campaign: np.ndarray, step_roi: np.ndarray, step_grid: np.ndarray, forced: np.ndarray
) -> np.ndarray:
    """Per campaign: the marginal ROI of the move that admitted its latest pair (the lowest one at that grid point)."""
    out = np.full(n_campaigns, np.nan)
    use = ~forced & np.isfinite(step_roi)
    latest = np.full(n_campaigns, -1)
    np.maximum.at(latest, campaign[use], step_grid[use])
    last = use & (step_grid == latest[campaign])
    low = np.full(n_campaigns, np.inf)
    np.minimum.at(low, campaign[last], step_roi[last])
    return np.where(np.isfinite(low), low, out)


def _shortfalls(problem: _Problem, usage: _Usage) -> np.ndarray:
    return np.maximum(problem.min_budget - usage.spend, 0.0)


def _numpy_usage(
    problem: _Problem,
    arrays: Mapping[str, np.ndarray],
    selected: np.ndarray,
    step_roi: np.ndarray,
    step_grid: np.ndarray,
    forced: np.ndarray,
) -> _Usage:
    campaign = np.searchsorted(problem.campaigns, arrays["campaign_id"][selected])
    return _Usage.from_arrays(
        problem.n_campaigns,
        campaign,
        arrays["household_id"][selected],
        arrays["value"][selected],
        arrays["cost"][selected],
        arrays["redemptions"][selected],
        step_roi[selected],
        step_grid[selected],
        forced[selected],
    )


def _spark_usage(selected: DataFrame, problem: _Problem) -> _Usage:
    """Per-campaign totals of the cached selection (small: one row per campaign)."""
    from pyspark.sql import functions as F

    rows = (
        selected.groupBy("campaign_id")
        .agg(
            F.sum("cost").alias("spend"),
            F.count(F.lit(1)).alias("audience"),
            F.sum(F.col("value") - F.col("cost")).alias("profit"),
            F.sum("redemptions").alias("red"),
            F.max(
                F.when(
                    ~F.col("forced") & ~F.isnan("step_roi"),
                    F.struct(F.col("step_grid").alias("g"), (-F.col("step_roi")).alias("r")),
                )
            ).alias("marginal"),
            F.sum(F.when(F.col("forced"), 1).otherwise(0)).alias("forced"),
            F.sum(F.when(F.col("forced"), F.col("cost")).otherwise(0.0)).alias("forced_spend"),
        )
        .collect()
    )
    per_household = selected.groupBy("household_id").count().agg(
        F.count(F.lit(1)).alias("households"), F.max("count").alias("most")
    ).collect()[0]
    households = int(per_household["households"] or 0)
    n_campaigns = problem.n_campaigns
    arrays = {name: np.zeros(n_campaigns) for name in ("spend", "audience", "profit", "red", "forced", "forced_spend")}
    marginal = np.full(n_campaigns, np.nan)
    for row in rows:
        i = int(np.searchsorted(problem.campaigns, row["campaign_id"]))
        for name in arrays:
            arrays[name][i] = row[name] or 0
        marginal[i] = np.nan if row["marginal"] is None else -row["marginal"]["r"]
    return _Usage(
        spend=arrays["spend"],
        audience=arrays["audience"].astype(np.int64),
        profit=arrays["profit"],
        red=arrays["red"],
        marginal=marginal,
        forced=arrays["forced"].astype(np.int64),
        forced_spend=arrays["forced_spend"],
        households=households,
        most_per_household=int(per_household["most"] or 0),
    )


def _check_feasible(problem: _Problem, usage: _Usage) -> None:
    """The hard constraints, checked on the final selection's totals (a bug here must not ship a plan)."""
    tol = 1e-7
    if usage.spend.sum() > problem.budget + tol * max(1.0, problem.budget):
        raise RuntimeError(f"budget solver bug: spend {usage.spend.sum()} exceeds the budget {problem.budget}")
    over = usage.spend > problem.max_budget + tol * np.maximum(1.0, problem.max_budget)
    over |= usage.red > problem.inventory + tol * np.maximum(1.0, problem.inventory)
    if over.any():
        raise RuntimeError(f"budget solver bug: campaign(s) {problem.campaigns[over].tolist()} over a cap")
    if usage.most_per_household > problem.k:
        raise RuntimeError("budget solver bug: a household exceeds the household cap")


def _summary(
    problem: _Problem,
    solved: _Solved,
    usage: _Usage,
    started: float,
    passes: int,
) -> PlanSummary:
    campaigns = []
    shortfall = _shortfalls(problem, usage)
    for i, campaign in enumerate(problem.campaigns):
        spend = float(usage.spend[i])
        campaigns.append(
            CampaignSummary(
                campaign_id=int(campaign),
                spend=spend,
                audience=int(usage.audience[i]),
                profit=float(usage.profit[i]),
                roi=float(usage.profit[i]) / spend if spend > 0 else None,
                redemptions=float(usage.red[i]),
                marginal_roi=None if math.isnan(usage.marginal[i]) else float(usage.marginal[i]),
                min_budget=float(problem.min_budget[i]) if problem.min_budget[i] > 0 else None,
                max_budget=float(problem.max_budget[i]) if math.isfinite(problem.max_budget[i]) else None,
                inventory=float(problem.inventory[i]) if math.isfinite(problem.inventory[i]) else None,
                forced_pairs=int(usage.forced[i]),
                forced_spend=float(usage.forced_spend[i]),
                min_budget_shortfall=float(shortfall[i]),
            )
        )
    spend = float(usage.spend.sum())
    profit = float(usage.profit.sum())
    objective = profit - problem.floor * spend
    bound = solved.dual_bound
    gap = None
    if bound is not None:
        gap = 0.0 if abs(bound) < 1e-12 and abs(objective) < 1e-12 else (bound - objective) / max(abs(bound), 1e-12)
    return PlanSummary(
        mode=problem.mode,
        target_roi=problem.target_roi,
        total_budget=None if math.isinf(problem.budget) else problem.budget,
        household_cap=problem.k,
        objective=objective,
        profit=profit,
        budget_used=spend,
        dual_bound=bound,
        gap=gap,
        pairs=solved.pairs,
        pairs_selected=int(usage.audience.sum()),
        households=solved.households,
        households_targeted=usage.households,
        forced_pairs=int(usage.forced.sum()),
        roi_threshold=solved.roi_threshold,
        campaigns=tuple(campaigns),
        prices=MappingProxyType(solved.prices),
        seconds=time.monotonic() - started,
        passes=passes,
    )


def _describe(summary: PlanSummary) -> str:
    gap = "n/a" if summary.gap is None else f"{summary.gap:.4%}"
    return (
        f"objective {summary.objective:,.2f}, spend {summary.budget_used:,.2f}, "
        f"{summary.pairs_selected:,} pairs, bound {summary.dual_bound}, gap {gap}"
    )
