"""The night's budget plan: constraints from the plans and settings, the planner, the plan's tables.

:func:`plan_night` is the whole step on already-scored pairs (gold.household_scores
rows): the scoring job calls it, and a planner's what-if (another budget, the
target-ROI mode) is the same call on the published scores.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from promo_roi.causal.calibration import UpliftCalibration
from promo_roi.config import PlanningConfig
from promo_roi.planning import BudgetConstraints, PlanSummary, SolverSettings, plan_budget_spark
from promo_roi.scoring.forecast import campaign_totals, plan_profit_interval, roi_forecast, roi_quantiles
from promo_roi.scoring.inputs import ScoringInputError
from promo_roi.tables import CAMPAIGN_PLANS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RiskJudgement:
    """What ``planning.risk: quantile`` decided: the quantile, each judged campaign's ROI at it (for one left
    out, when it was left out) and the campaigns it left out."""

    quantile: float
    roi: dict[int, float]
    excluded: frozenset[int]


@dataclass(frozen=True)
class NightPlan:
    budget_plan: pd.DataFrame  # gold.budget_plan rows without run keys
    targeting: DataFrame  # gold.household_targeting rows, from ``selected``
    selected: DataFrame  # the planner's selected pairs (cached: unpersist once written)
    summary: PlanSummary


def budget_constraints(plans: pd.DataFrame, planning: PlanningConfig) -> BudgetConstraints:
    """The plan's constraints from gold.campaign_plans and the planning config; a clear error when inconsistent."""
    def limits(column: str) -> dict[int, float]:
        return {int(r.campaign_id): float(getattr(r, column)) for r in plans.itertuples()
                if getattr(r, column) is not None and not pd.isna(getattr(r, column))}

    try:
        return BudgetConstraints(
            total_budget=planning.total_budget, household_cap=planning.household_cap,
            campaign_min_budget=limits("min_budget"), campaign_max_budget=limits("max_budget"),
            campaign_inventory=limits("coupon_inventory"),
        )
    except ValueError as exc:
        raise ScoringInputError(f"{CAMPAIGN_PLANS.full_name} and planning settings are inconsistent: {exc}") from exc


def plan_rows(summary: PlanSummary, selected: DataFrame, plans: pd.DataFrame, margin: float,
              plan_forecast: pd.DataFrame, risk: RiskJudgement | None = None,
              profit_interval: tuple[float, float] | None = None) -> pd.DataFrame:
    """gold.budget_plan rows (without run keys): one per planned campaign, those the plan leaves out included.

    ``plan_forecast``: :func:`promo_roi.scoring.forecast.roi_forecast` over the chosen pairs, for the intervals.
    ``risk``: what ``planning.risk: quantile`` decided (None on a plan on expected profit).
    ``profit_interval``: the whole plan's profit interval (:func:`promo_roi.scoring.forecast.plan_profit_interval`).
    """
    low, high = profit_interval if profit_interval is not None else (None, None)
    revenue = {int(r["campaign_id"]): float(r["gp"]) / margin if margin > 0 else math.nan
               for r in selected.groupBy("campaign_id").agg(F.sum("value").alias("gp")).collect()}
    by_id = {c.campaign_id: c for c in summary.campaigns}
    intervals = plan_forecast.set_index("campaign_id") if len(plan_forecast) else None
    rows = []
    for plan in plans.itertuples():
        c = by_id.get(int(plan.campaign_id))
        band = {}
        if c and c.audience and intervals is not None and int(plan.campaign_id) in intervals.index:
            f = intervals.loc[int(plan.campaign_id)]
            band = {"roi_low": f["roi_low"], "roi_high": f["roi_high"],
                    "expected_incremental_profit_low": f["incremental_profit_low"],
                    "expected_incremental_profit_high": f["incremental_profit_high"]}
        rows.append({
            "campaign_id": int(plan.campaign_id), "planning_mode": summary.mode, "total_budget": summary.total_budget,
            "target_roi": summary.target_roi if summary.mode == "target_roi" else None,
            "household_cap": summary.household_cap,
            "min_budget": c.min_budget if c else None, "max_budget": c.max_budget if c else None,
            "coupon_inventory": c.inventory if c else None,
            "budget": c.spend if c else 0.0, "audience": c.audience if c else 0,
            "expected_redemptions": c.redemptions if c else 0.0,
            "expected_incremental_revenue": revenue.get(int(plan.campaign_id), 0.0),
            "expected_incremental_gross_profit": revenue.get(int(plan.campaign_id), 0.0) * margin,
            "expected_incremental_profit": c.profit if c else 0.0,
            "roi": c.roi if c else None, "marginal_roi": c.marginal_roi if c else None,
            "forced_households": c.forced_pairs if c else 0,
            "min_budget_shortfall": c.min_budget_shortfall if c else 0.0,
            "plan_budget_used": summary.budget_used, "plan_dual_bound": summary.dual_bound, "plan_gap": summary.gap,
            "risk_quantile": None if risk is None else risk.quantile,
            "risk_quantile_roi": None if risk is None else risk.roi.get(int(plan.campaign_id)),
            "excluded_by_risk": None if risk is None else int(plan.campaign_id) in risk.excluded,
            "plan_profit_low": low, "plan_profit_high": high,
            **band,
        })
    return pd.DataFrame(rows)


def targeting_rows(selected: DataFrame, run_date: dt.date, run_id: str, model_version: str,
                   overlap: DataFrame) -> DataFrame:
    """gold.household_targeting rows from the planner's selected pairs; ``overlap``: household_id,
    campaign_id, in_overlap of the scored pairs (gold.household_scores)."""
    return selected.join(overlap.select("household_id", "campaign_id", "in_overlap"),
                         ["household_id", "campaign_id"], "left").select(
        F.lit(run_date).alias("run_date"), F.lit(run_id).alias("run_id"), "campaign_id", "household_id",
        F.col("value").alias("expected_incremental_gross_profit"), F.col("cost").alias("expected_cost"),
        F.col("redemptions").alias("expected_redemptions"),
        (F.col("value") - F.col("cost")).alias("expected_incremental_profit"),
        F.when(F.isnan("step_roi"), None).otherwise(F.col("step_roi")).alias("step_roi"),
        F.col("forced").cast("boolean").alias("forced"), F.lit(model_version).alias("model_version"),
        "in_overlap",
    )


def raw_outputs(household_scores: DataFrame) -> DataFrame:
    """The network's outputs that the forecast sums, rebuilt from gold.household_scores rows, without Monte
    Carlo dropout draws (what the scorer gives when ``scoring.mc_dropout_samples`` is 0)."""
    empty = F.array().cast("array<double>")
    return household_scores.select(
        "household_id", "campaign_id", "uplift_spend", "uplift_coupon_product_spend",
        F.col("p_redeem_targeted").alias("p_redeem_t1"),
        empty.alias("mc_uplift_spend"), empty.alias("mc_uplift_coupon_product_spend"), empty.alias("mc_p_redeem"))


def risk_bar(planning: PlanningConfig) -> float:
    """The ROI a campaign's risk quantile must reach: the target in target_roi mode, else break-even."""
    return planning.target_roi if planning.mode == "target_roi" else 0.0


def committed_campaigns(constraints: BudgetConstraints) -> set[int]:
    """Campaigns a planner committed a positive minimum budget to (a minimum of 0 commits nothing)."""
    return {c for c, minimum in constraints.campaign_min_budget.items() if minimum > 0}


def campaigns_at_risk(quantiles: dict[int, float], bar: float, committed: set[int]) -> dict[int, float]:
    """The funded campaigns whose ROI at the risk quantile falls below ``bar`` (campaign -> that ROI).

    A campaign with a planner's minimum budget (``committed``) keeps its households: a minimum is a
    commitment the risk rule does not overrule. A NaN quantile (no cost) is not a risk.
    """
    return {c: q for c, q in quantiles.items() if c not in committed and q < bar}


def plan_night(household_scores: DataFrame, plans: pd.DataFrame, planning: PlanningConfig,
               calibration: UpliftCalibration, margin: float, interval: float, run_date: dt.date, run_id: str,
               model_version: str, raw_scores: DataFrame | None = None, *, value_outcome: str) -> NightPlan:
    """Plans the budget on gold.household_scores rows (the pairs the night scored).

    ``value_outcome`` (``scoring.value_outcome``) must be the one ``household_scores`` were valued on: the
    plan's forecast and risk draws use its calibration line.

    The plan's ROI interval is the forecast's arithmetic over the households it
    chose, on ``raw_scores`` (the scorer's outputs with their MC dropout draws);
    without them (a what-if on published scores) on :func:`raw_outputs`.

    ``planning.risk: quantile``: a funded campaign whose ROI at ``planning.risk_quantile`` over the
    forecast draws of its chosen households falls below :func:`risk_bar` loses its households, and the
    budget is planned again without it, until every funded campaign clears the bar.
    """
    pairs = household_scores.select(
        "household_id", "campaign_id", F.col("incremental_gross_profit").alias("value"),
        F.col("expected_cost").alias("cost"), F.col("expected_redemptions").alias("redemptions"))
    constraints = budget_constraints(plans, planning)
    raw = raw_scores if raw_scores is not None else raw_outputs(household_scores)
    excluded: dict[int, float] = {}
    while True:
        selected, summary = plan_budget_spark(
            pairs.filter(~F.col("campaign_id").isin(list(excluded))), constraints, planning.mode,
            planning.target_roi if planning.mode == "target_roi" else None,
            SolverSettings(price_grid=planning.price_grid, sample_households=planning.sample_households))
        chosen = raw.join(selected.select("household_id", "campaign_id"), ["household_id", "campaign_id"])
        totals = campaign_totals(chosen.withColumn("audience_source", F.lit("budget_plan")))
        if planning.risk != "quantile":
            quantiles = None
            break
        quantiles = roi_quantiles(totals, plans, calibration, margin, planning.risk_quantile,
                                  value_outcome=value_outcome)
        at_risk = campaigns_at_risk(quantiles, risk_bar(planning), committed_campaigns(constraints))
        if not at_risk:
            break
        log.info("plan: campaign(s) %s left out, ROI at the %g quantile %s below %g; planning again",
                 sorted(at_risk), planning.risk_quantile, [round(q, 3) for q in at_risk.values()],
                 risk_bar(planning))
        excluded.update(at_risk)
        selected.unpersist()
    plan_forecast = roi_forecast(totals, plans, calibration, margin, interval, value_outcome=value_outcome)
    risk = None if quantiles is None else RiskJudgement(planning.risk_quantile, {**quantiles, **excluded},
                                                        frozenset(excluded))
    profit_interval = plan_profit_interval(totals, plans, calibration, margin, interval, value_outcome=value_outcome)
    budget_plan = plan_rows(summary, selected, plans, margin, plan_forecast, risk, profit_interval)
    targeting = targeting_rows(selected, run_date, run_id, model_version, household_scores)
    return NightPlan(budget_plan, targeting, selected, summary)


def describe_plan(summary: PlanSummary) -> dict[str, Any]:
    return {"budget_used": summary.budget_used, "total_budget": summary.total_budget, "profit": summary.profit,
            "households": summary.households_targeted, "gap": summary.gap}
