"""Decisions held against the known truth of a semi-synthetic benchmark.

A model's decisions for a run date (household uplift scores, campaign
forecasts with intervals, a budget plan) are compared with the truth the
generator wrote (``truth_household_campaign``: the expected effect of
targeting each household with each campaign, and the expected cost of its
redemptions). Four figures, each from tables a model published or would
publish, never from its own view of itself:

- **spearman**: rank correlation between predicted and true household uplift,
  per campaign over the households scored for it (the figure is the mean over
  campaigns; a model that ranks every household the same has none);
- **forecast_wape**: sum |forecast - truth| / sum |truth| over campaigns, the
  truth summed over exactly the households the forecast describes;
- **interval_coverage**: the share of campaigns whose forecast interval holds
  the truth;
- **oracle_share**: the plan's true profit divided by the best true profit any
  plan could make at the same true cost and household cap (the oracle is the
  project's own planner run on the true values and costs).

True profit of a pair is ``gross_margin x true incremental revenue - contact
cost - true expected redemption cost``: redemptions on purchases the household
would have made anyway are cost, as they are for the retailer.

Pure pandas/numpy: frames in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

KEYS = ["household_id", "campaign_id"]


@dataclass(frozen=True)
class Economics:
    """What a targeted pair costs and keeps: the same figures the plan used."""

    gross_margin: float
    contact_cost: Mapping[int, float]  # per campaign, per targeted household

    def contact(self, campaign_id: pd.Series) -> np.ndarray:
        missing = sorted(set(campaign_id.astype(int)) - set(self.contact_cost))
        if missing:
            raise ValueError(f"no contact cost for campaign(s) {missing}")
        return campaign_id.astype(int).map(self.contact_cost).to_numpy(float)


def _with_truth(pairs: pd.DataFrame, truth: pd.DataFrame, what: str) -> pd.DataFrame:
    """``pairs`` joined with their truth; a pair without truth is an error (the truth covers every pair)."""
    joined = pairs.merge(truth, on=KEYS, how="left", validate="many_to_one", indicator=True)
    missing = joined["_merge"] != "both"
    if missing.any():
        example = joined.loc[missing, KEYS].head(3).to_dict("records")
        raise ValueError(f"{int(missing.sum())} {what} pair(s) have no truth, e.g. {example}")
    return joined.drop(columns="_merge")


def true_pair_economics(truth: pd.DataFrame, economics: Economics) -> pd.DataFrame:
    """Per pair: true incremental gross profit (value), true cost and true profit if targeted."""
    out = truth[KEYS].copy()
    out["value"] = economics.gross_margin * truth["true_incremental_revenue"].to_numpy(float)
    out["cost"] = economics.contact(truth["campaign_id"]) + truth["true_expected_redemption_cost"].to_numpy(float)
    out["profit"] = out["value"] - out["cost"]
    return out


def uplift_rank_correlation(predicted: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per campaign: Spearman between ``predicted`` (household_id, campaign_id, predicted) and the truth.

    NaN where either side is constant over the campaign's households.
    """
    joined = _with_truth(predicted, truth[[*KEYS, "true_incremental_revenue"]], "scored")
    rows = []
    for campaign_id, part in joined.groupby("campaign_id", sort=True):
        pred = part["predicted"].to_numpy(float)
        true = part["true_incremental_revenue"].to_numpy(float)
        constant = np.ptp(pred) == 0 or np.ptp(true) == 0
        rho = math.nan if constant or len(part) < 3 else float(spearmanr(pred, true).statistic)
        rows.append({"campaign_id": int(campaign_id), "households": len(part), "spearman": rho})
    return pd.DataFrame(rows, columns=["campaign_id", "households", "spearman"])


def forecast_against_truth(forecast: pd.DataFrame, audience: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per campaign: forecast incremental revenue (with ``low``/``high``) against the true total.

    ``forecast``: campaign_id, forecast, low, high. ``audience``: household_id,
    campaign_id of the households each forecast describes; the truth is summed
    over exactly them.
    """
    described = _with_truth(audience[KEYS], truth[[*KEYS, "true_incremental_revenue"]], "forecast audience")
    totals = described.groupby("campaign_id")["true_incremental_revenue"].agg(["sum", "size"])
    out = forecast[["campaign_id", "forecast", "low", "high"]].copy()
    out["truth"] = out["campaign_id"].map(totals["sum"]).fillna(0.0)
    out["audience"] = out["campaign_id"].map(totals["size"]).fillna(0).astype(int)
    out["error"] = out["forecast"] - out["truth"]
    out["covered"] = (out["low"] <= out["truth"]) & (out["truth"] <= out["high"])
    return out.sort_values("campaign_id").reset_index(drop=True)


def wape(errors: pd.DataFrame) -> float:
    """sum |forecast - truth| / sum |truth| (NaN when every truth is 0)."""
    denominator = float(errors["truth"].abs().sum())
    return float(errors["error"].abs().sum()) / denominator if denominator > 0 else math.nan


def plan_outcome(chosen: pd.DataFrame, truth_economics: pd.DataFrame) -> dict[str, float]:
    """True value, cost and profit of the pairs a plan chose (household_id, campaign_id)."""
    joined = _with_truth(chosen[KEYS], truth_economics, "planned")
    return {"pairs": len(joined), "households": int(joined["household_id"].nunique()),
            "true_value": float(joined["value"].sum()), "true_cost": float(joined["cost"].sum()),
            "true_profit": float(joined["profit"].sum())}


def campaign_true_profit(chosen: pd.DataFrame, truth_economics: pd.DataFrame) -> pd.Series:
    """Per campaign (the index): the true profit of the pairs a plan chose (household_id, campaign_id)."""
    joined = _with_truth(chosen[KEYS], truth_economics, "planned")
    return joined.groupby("campaign_id")["profit"].sum()


def paired_profit_difference(a: pd.Series, b: pd.Series, campaigns: Sequence[int], n_boot: int = 2000,
                             seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Plan ``a``'s true profit minus plan ``b``'s (:func:`campaign_true_profit` of each) over the night's
    ``campaigns``, with a percentile interval from resampling campaigns: the campaigns of one night are one draw
    of the campaigns a retailer runs, and both plans are judged on the same resampled campaigns, so the
    interval is of the paired difference. A campaign neither plan funded differs by 0."""
    if n_boot < 1 or not 0 < level < 1:
        raise ValueError(f"n_boot must be >= 1 and level in (0, 1), got {n_boot} and {level}")
    ids = pd.Index(sorted(set(int(c) for c in campaigns)))
    outside = sorted(set(a.index.astype(int)).union(b.index.astype(int)) - set(ids))
    if outside:
        raise ValueError(f"plan profit for campaign(s) {outside} outside the night's campaigns")
    if ids.empty:
        return {"difference": 0.0, "low": 0.0, "high": 0.0, "campaigns": 0}
    per = (a.reindex(ids, fill_value=0.0).to_numpy(float) - b.reindex(ids, fill_value=0.0).to_numpy(float))
    draws = np.random.default_rng(seed).integers(0, len(per), size=(n_boot, len(per)))
    sums = per[draws].sum(axis=1)
    tail = (1 - level) / 2
    return {"difference": float(per.sum()), "low": float(np.quantile(sums, tail)),
            "high": float(np.quantile(sums, 1 - tail)), "campaigns": int(len(per))}


def oracle_profit(truth_economics: pd.DataFrame, budget: float, household_cap: int) -> dict[str, float]:
    """The best true profit at true cost <= ``budget`` with at most ``household_cap`` campaigns per household.

    Solved by the project's planner (:func:`promo_roi.planning.plan_budget`) on
    the true values and costs; its certified gap comes back as ``gap``.
    """
    from promo_roi.planning import BudgetConstraints, plan_budget

    pairs = truth_economics[[*KEYS, "value", "cost"]].assign(redemptions=0.0)
    plan = plan_budget(pairs, BudgetConstraints(total_budget=max(0.0, budget), household_cap=household_cap))
    chosen = truth_economics.loc[plan.selected]
    return {"true_profit": float(chosen["profit"].sum()), "true_cost": float(chosen["cost"].sum()),
            "pairs": int(plan.selected.sum()), "gap": plan.summary.gap}


def scorecard(model: str, predicted: pd.DataFrame, forecast: pd.DataFrame, audience: pd.DataFrame,
              chosen: pd.DataFrame, planned_cost: float, truth: pd.DataFrame, economics: Economics,
              household_cap: int) -> dict[str, float | str | int]:
    """The four figures (and what they rest on) for one model's decisions; one row of the benchmark."""
    ranks = uplift_rank_correlation(predicted, truth)
    errors = forecast_against_truth(forecast, audience, truth)
    scored = predicted[KEYS].drop_duplicates()
    truth_economics = true_pair_economics(_with_truth(scored, truth, "scored"), economics)
    plan = plan_outcome(chosen, truth_economics)
    oracle = oracle_profit(truth_economics, plan["true_cost"], household_cap)
    return {
        "model": model,
        "campaigns": int(len(errors)),
        "spearman_mean": float(ranks["spearman"].mean()) if ranks["spearman"].notna().any() else math.nan,
        "spearman_min": float(ranks["spearman"].min()) if ranks["spearman"].notna().any() else math.nan,
        "forecast_wape": wape(errors),
        "interval_coverage": float(errors["covered"].mean()) if len(errors) else math.nan,
        "forecast_total": float(errors["forecast"].sum()),
        "true_total": float(errors["truth"].sum()),
        "plan_pairs": plan["pairs"],
        "plan_expected_cost": float(planned_cost),
        "plan_true_cost": plan["true_cost"],
        "plan_true_profit": plan["true_profit"],
        "oracle_true_profit": oracle["true_profit"],
        "oracle_share": plan["true_profit"] / oracle["true_profit"] if oracle["true_profit"] > 0 else math.nan,
    }
