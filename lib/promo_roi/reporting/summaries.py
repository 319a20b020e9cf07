"""The numbers behind each chart of the run report, as small pandas frames.

Pure functions of frames shaped like the gold tables (only the columns they
use need to be there), so the charts and the HTML tables show the same rows
and both can be tested on a few hand-written rows. Money stays in the data's
currency, ROI stays a ratio (0.25 = 25%); display formats are the HTML
layer's business.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from promo_roi import model_names

DECILES: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# The households a Qini is computed on: all of them, or those in the overlap band (the ensemble's per-member
# rows have their own paragraph, ensemble_summary).
QINI_SCOPES = ("overall", "overlap")


def _campaign_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Calendar order (start date, then id); campaigns without a start date last."""
    keys = [c for c in ("start_date", "campaign_id") if c in frame.columns]
    return frame.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)


def roi_summary(forecast: pd.DataFrame) -> pd.DataFrame:
    """One row per forecast campaign (gold.campaign_roi_forecast): audience, incremental revenue, gross profit,
    cost, incremental profit (gross profit - cost) and ROI with its interval, in calendar order."""
    out = forecast[[
        "campaign_id", "campaign_type", "start_date", "end_date", "audience", "audience_source",
        "expected_redemptions", "incremental_revenue", "incremental_gross_profit", "cost", "roi", "roi_low",
        "roi_high",
    ]].copy()
    out["incremental_profit"] = out["incremental_gross_profit"] - out["cost"]
    out["interval_verdict"] = [interval_verdict(lo, hi) for lo, hi in zip(out["roi_low"], out["roi_high"])]
    return _campaign_order(out)


def interval_verdict(low: float | None, high: float | None) -> str:
    """'above 0', 'below 0' or 'includes 0' for an ROI interval ('no interval' when it is missing)."""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return "no interval"
    if low > 0:
        return "above 0"
    if high < 0:
        return "below 0"
    return "includes 0"


TARGETING_COUNTS = ("campaign_id", "households", "spend", "profit", "forced", "outside_overlap",
                    "spend_outside_overlap", "overlap_unknown")


def targeting_counts(targeting: pd.DataFrame) -> pd.DataFrame:
    """Per campaign over gold.household_targeting rows: households, their expected cost and profit, forced ones,
    and the pairs outside the overlap band (``in_overlap`` False) with their expected cost, and those whose
    flag is unknown (null: published before the flag existed). The same counts as
    :func:`promo_roi.reporting.data.load_report_data` makes in Spark."""
    if targeting.empty:
        return pd.DataFrame(columns=list(TARGETING_COUNTS))
    flag = targeting["in_overlap"] if "in_overlap" in targeting else pd.Series(None, index=targeting.index, dtype=object)
    outside = flag.eq(False) & flag.notna()
    frame = targeting.assign(outside=outside.astype(int), outside_cost=targeting["expected_cost"].where(outside, 0.0),
                             unknown=flag.isna().astype(int))
    grouped = frame.groupby("campaign_id")
    return pd.DataFrame({
        "households": grouped["household_id"].nunique(),
        "spend": grouped["expected_cost"].sum(),
        "profit": grouped["expected_incremental_profit"].sum(),
        "forced": grouped["forced"].sum().astype(int),
        "outside_overlap": grouped["outside"].sum().astype(int),
        "spend_outside_overlap": grouped["outside_cost"].sum(),
        "overlap_unknown": grouped["unknown"].sum().astype(int),
    }).reset_index()


def budget_summary(plan: pd.DataFrame, forecast: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per planned campaign (gold.budget_plan): the budget the plan spends on it, its bounds, households,
    expected incremental profit and ROI with intervals; campaign type and dates from the forecast when given."""
    out = plan.reindex(columns=[
        "campaign_id", "budget", "min_budget", "max_budget", "audience", "expected_redemptions",
        "expected_incremental_revenue", "expected_incremental_profit", "expected_incremental_profit_low",
        "expected_incremental_profit_high", "roi", "roi_low", "roi_high", "marginal_roi", "forced_households",
        "min_budget_shortfall", "risk_quantile_roi", "excluded_by_risk",  # risk columns: null on older plans
    ]).copy()
    out["risk_verdict"] = [None if pd.isna(e) else ("left out" if e else "clears the bar")
                           for e in out["excluded_by_risk"]]
    if forecast is not None and len(forecast):
        facts = forecast[["campaign_id", "campaign_type", "start_date"]].drop_duplicates("campaign_id")
        out = out.merge(facts, on="campaign_id", how="left")
    else:
        out["campaign_type"], out["start_date"] = None, None
    out["funded"] = out["audience"].fillna(0) > 0
    return _campaign_order(out)


def funded_campaigns(plan: pd.DataFrame) -> list[int]:
    """The campaigns a plan (gold.budget_plan rows of one run) gives households, in id order."""
    return sorted(int(c) for c in plan.loc[plan["audience"].fillna(0) > 0, "campaign_id"])


def left_out_by_risk(plan: pd.DataFrame) -> list[int]:
    """The campaigns the risk rule left out (none on a plan on expected profit or an older one)."""
    if "excluded_by_risk" not in plan.columns:
        return []
    return sorted(int(c) for c in plan.loc[plan["excluded_by_risk"].eq(True), "campaign_id"])


def backtest_record(accuracy: pd.DataFrame) -> tuple[int, int, float | None]:
    """Over every gold.forecast_accuracy row given: (intervals that covered, intervals judged, WAPE or None)."""
    covers = accuracy["interval_covers_realized"].dropna().astype(bool)
    realized = float(accuracy["realized_incremental_revenue"].abs().sum())
    wape = float(accuracy["absolute_error"].sum()) / realized if realized else None
    return int(covers.sum()), len(covers), wape


def plan_totals(plan: pd.DataFrame, pairs_targeted: int, households_targeted: int) -> dict[str, object]:
    """The plan as a whole (gold.budget_plan rows of one run): mode, total budget, budget used, optimality gap,
    campaigns funded, expected incremental profit; with the pairs and distinct households that
    gold.household_targeting lists for the run."""
    first = plan.iloc[0] if len(plan) else None

    def value(column: str) -> object:
        if first is None or column not in plan.columns:
            return None
        v = first[column]
        return None if v is None or pd.isna(v) else v

    return {
        "planning_mode": value("planning_mode"),
        "total_budget": value("total_budget"),
        "target_roi": value("target_roi"),
        "household_cap": value("household_cap"),
        "budget_used": value("plan_budget_used"),
        "plan_gap": value("plan_gap"),
        # The whole plan's profit interval (null on runs published before it was computed).
        "profit_low": value("plan_profit_low"),
        "profit_high": value("plan_profit_high"),
        "campaigns_planned": int(len(plan)),
        "campaigns_funded": int((plan["audience"].fillna(0) > 0).sum()) if len(plan) else 0,
        "expected_incremental_profit": float(plan["expected_incremental_profit"].fillna(0).sum()) if len(plan) else 0.0,
        "pairs_targeted": int(pairs_targeted),
        "households_targeted": int(households_targeted),
    }


def plan_mismatches(plan: pd.DataFrame, counts: pd.DataFrame, tolerance: float = 1e-6) -> list[str]:
    """Campaigns where gold.budget_plan and gold.household_targeting disagree (audience or spend): they are
    written together, so any line here is a reason not to trust the plan."""
    merged = plan[["campaign_id", "budget", "audience"]].merge(counts, on="campaign_id", how="outer")
    problems = []
    for r in merged.itertuples(index=False):
        audience = 0 if pd.isna(r.audience) else int(r.audience)
        households = 0 if pd.isna(r.households) else int(r.households)
        budget = 0.0 if pd.isna(r.budget) else float(r.budget)
        spend = 0.0 if pd.isna(r.spend) else float(r.spend)
        if audience != households or abs(budget - spend) > tolerance * max(1.0, abs(budget)):
            problems.append(f"campaign {int(r.campaign_id)}: budget_plan {audience} households / {budget:,.2f}, "
                            f"household_targeting {households} households / {spend:,.2f}")
    return problems


def curve(curves: pd.DataFrame, model: str, split: str, scope: str, outcome: str) -> pd.DataFrame:
    """One stored gain curve (gold.uplift_curves rows), ordered by the number of rows targeted."""
    sel = curves[(curves["model_name"] == model) & (curves["split"] == split) & (curves["scope"] == scope)
                 & (curves["outcome"] == outcome)]
    return sel.sort_values("point").reset_index(drop=True)


def gain_at_deciles(curves: pd.DataFrame, model: str, split: str, scope: str, outcome: str,
                    deciles: Sequence[float] = DECILES) -> pd.DataFrame:
    """The gain curve read at each decile of households targeted: the model's cumulative DR gain, random
    targeting's, and the difference. A decile is the stored point ``round(q * n)`` (training stores every
    decile); a missing one is left out rather than interpolated."""
    c = curve(curves, model, split, scope, outcome)
    if c.empty:
        return pd.DataFrame(columns=["share_targeted", "rows_targeted", "n_rows", "gain", "random_gain",
                                     "gain_over_random"])
    n = int(c["n_rows"].iloc[0])
    by_point = c.set_index("point")
    rows = []
    for q in deciles:
        k = int(np.rint(q * n))
        if k not in by_point.index:
            continue
        r = by_point.loc[k]
        rows.append({"share_targeted": q, "rows_targeted": k, "n_rows": n, "gain": float(r["gain"]),
                     "random_gain": float(r["random_gain"]),
                     "gain_over_random": float(r["gain"]) - float(r["random_gain"])})
    return pd.DataFrame(rows)


def qini_summary(evaluation: pd.DataFrame, split: str, outcomes: Sequence[str]) -> pd.DataFrame:
    """Qini and AUUC with their bootstrap intervals per model, outcome and scope (gold.model_evaluation rows of
    one training run), for ``split``."""
    sel = evaluation[(evaluation["split"] == split) & evaluation["metric"].isin(["qini", "auuc"])
                     & evaluation["outcome"].isin(list(outcomes)) & evaluation["scope"].isin(QINI_SCOPES)]
    if sel.empty:
        return pd.DataFrame(columns=["outcome", "scope", "model_name", "qini", "qini_low", "qini_high", "auuc",
                                     "n_rows"])
    rows = []
    for (outcome, scope, model), g in sel.groupby(["outcome", "scope", "model_name"], sort=False):
        q = g[g["metric"] == "qini"]
        a = g[g["metric"] == "auuc"]
        rows.append({
            "outcome": outcome, "scope": scope, "model_name": model,
            "qini": q["value"].iloc[0] if len(q) else None, "qini_low": q["ci_low"].iloc[0] if len(q) else None,
            "qini_high": q["ci_high"].iloc[0] if len(q) else None, "auuc": a["value"].iloc[0] if len(a) else None,
            "n_rows": int(q["n_rows"].iloc[0]) if len(q) else None,
        })
    out = pd.DataFrame(rows)
    order = {o: i for i, o in enumerate(outcomes)}
    out["_o"] = out["outcome"].map(order)
    out["_s"] = out["scope"].map({"overall": 0, "overlap": 1}).fillna(2)
    return out.sort_values(["_o", "_s", "model_name"]).drop(columns=["_o", "_s"]).reset_index(drop=True)


def ensemble_summary(evaluation: pd.DataFrame, split: str) -> dict[str, float] | None:
    """How far the seed ensemble's members disagree on ``split`` (gold.model_evaluation, scope 'ensemble'): the
    member count, the lowest and highest member Qini, their standard deviation, the ensemble's Qini, the mean
    per-household sd of the members' uplift and the ensemble's mean absolute uplift. None for a single network
    (no such rows)."""
    sel = evaluation[(evaluation["split"] == split) & (evaluation["scope"] == "ensemble")]
    if sel.empty:
        return None
    members = sel[sel["model_name"].str.startswith("transformer_member_") & (sel["metric"] == "qini")]["value"]
    own = sel[sel["model_name"] == model_names.TRANSFORMER].set_index("metric")["value"]
    return {"members": int(own["members"]), "member_qini_min": float(members.min()),
            "member_qini_max": float(members.max()), "member_qini_sd": float(own["member_qini_sd"]),
            "qini": float(own["qini"]), "member_uplift_sd": float(own["member_uplift_sd"]),
            "mean_abs_uplift": float(own["mean_abs_uplift"])}


def calibration_summary(evaluation: pd.DataFrame) -> pd.DataFrame:
    """The uplift calibration the run's model carries (gold.model_evaluation, scope 'calibration'):
    coefficient, the score it calibrates (``model_name``: the network's, or pre-period spend where households are
    valued by it), value and 95% bootstrap interval, held-out rows."""
    sel = evaluation[evaluation["scope"] == "calibration"]
    order = {"spend": 0, "coupon_product_spend": 1, "redeemed": 2, "redemptions": 3}
    out = sel[["outcome", "model_name", "metric", "value", "ci_low", "ci_high", "n_rows", "n_campaigns"]].copy()
    out["_o"] = out["outcome"].map(order).fillna(4)
    return out.sort_values(["_o", "metric"]).drop(columns="_o").reset_index(drop=True)


def accuracy_summary(accuracy: pd.DataFrame) -> pd.DataFrame:
    """gold.forecast_accuracy rows, grouped by campaign (calendar order) then run date: forecast and realized
    incremental revenue with intervals, the naive difference, the error and whether the interval covered."""
    out = accuracy[[
        "run_date", "campaign_id", "campaign_type", "start_date", "end_date", "audience",
        "forecast_incremental_revenue", "forecast_incremental_revenue_low", "forecast_incremental_revenue_high",
        "realized_incremental_revenue", "realized_incremental_revenue_low", "realized_incremental_revenue_high",
        "naive_incremental_revenue", "error", "interval_covers_realized", "forecast_roi", "realized_roi",
    ]].copy()
    return out.sort_values(["start_date", "campaign_id", "run_date"], na_position="last",
                           kind="stable").reset_index(drop=True)


def accuracy_by_run_date(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Per backtested run date, as gold.forecast_accuracy_over_time defines it: campaigns, forecast and realized
    revenue, mean error (bias), mean absolute error, WAPE and interval coverage."""
    rows = []
    for run_date, g in accuracy.groupby("run_date", sort=True):
        realized_abs = float(g["realized_incremental_revenue"].abs().sum())
        covers = g["interval_covers_realized"].dropna()
        rows.append({
            "run_date": run_date, "campaigns": int(len(g)),
            "forecast_incremental_revenue": float(g["forecast_incremental_revenue"].sum()),
            "realized_incremental_revenue": float(g["realized_incremental_revenue"].sum()),
            "mean_error": float(g["error"].mean()), "mean_absolute_error": float(g["absolute_error"].mean()),
            "wape": float(g["absolute_error"].sum()) / realized_abs if realized_abs else None,
            "interval_coverage": float(covers.astype(bool).mean()) if len(covers) else None,
        })
    return pd.DataFrame(rows, columns=["run_date", "campaigns", "forecast_incremental_revenue",
                                       "realized_incremental_revenue", "mean_error", "mean_absolute_error",
                                       "wape", "interval_coverage"])


def largest(frame: pd.DataFrame, column: str, limit: int) -> tuple[pd.DataFrame, int]:
    """At most ``limit`` rows, those with the largest ``|column|``, in their original order; and how many
    were left out (charts stay readable with long campaign lists; the tables keep every row)."""
    if len(frame) <= limit:
        return frame, 0
    keep = frame[column].abs().fillna(-1).sort_values(ascending=False, kind="stable").index[:limit]
    return frame.loc[sorted(keep)], len(frame) - limit
