"""The generator: real tables + scenario -> synthetic tables + truth (frames in, frames out)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from promo_roi.config import SourceConfig
from promo_roi.observability import stage
from promo_roi.synthetic.assignment import auc, draw_targeting, propensities, target_size
from promo_roi.synthetic.draws import draw_baseline_redemptions, draw_incremental_lines, draw_removals
from promo_roi.synthetic.effects import (
    STREAM_CAMPAIGN,
    Effect,
    baseline_in_window,
    baseline_redemption_probability,
    campaign_multipliers,
    effect_rates,
    expected_effect,
    household_noise,
    product_mix,
)
from promo_roi.synthetic.scenarios import Scenario
from promo_roi.synthetic.world import World, campaign_facts, prepare_world
from promo_roi.validation import InputError

log = logging.getLogger(__name__)

# What the generator rewrites; the other source tables are copied unchanged.
GENERATED_TABLES: tuple[str, ...] = ("transactions", "campaigns", "coupon_redemptions")
HOUSEHOLD_TRUTH_COLUMNS: tuple[str, ...] = (
    "household_id", "campaign_id", "targeted", "propensity", "true_incremental_revenue",
    "true_expected_redemptions", "true_expected_redemption_cost", "baseline_coupon_product_spend",
    "campaign_multiplier", "expected_incremental_lines", "removal_probability",
)


@dataclass(frozen=True)
class CampaignResult:
    truth: pd.DataFrame        # one row per household (HOUSEHOLD_TRUTH_COLUMNS)
    summary: dict              # one row of truth_campaign
    injected: pd.DataFrame     # draws.INCREMENTAL_COLUMNS
    removed: np.ndarray        # positions of removed real lines in the input transactions
    redeemed: pd.DataFrame     # real lines redeemed: row, household_id, product_id, day


@dataclass(frozen=True)
class Simulation:
    tables: dict[str, pd.DataFrame]          # transactions, campaigns, coupon_redemptions
    truth_household_campaign: pd.DataFrame
    truth_campaign: pd.DataFrame
    stats: dict[str, int] = field(default_factory=dict)


def _household_truth(world: World, cid: int, targeted: np.ndarray, propensity: np.ndarray,
                     multiplier: float, effect: Effect, face_value: float) -> pd.DataFrame:
    n = len(world.households)
    return pd.DataFrame({
        "household_id": world.households, "campaign_id": np.full(n, cid, dtype="int64"),
        "targeted": targeted, "propensity": propensity,
        "true_incremental_revenue": effect.revenue,
        "true_expected_redemptions": effect.redemptions,
        "true_expected_redemption_cost": face_value * effect.redemptions,
        "baseline_coupon_product_spend": effect.baseline_spend,
        "campaign_multiplier": np.full(n, multiplier),
        "expected_incremental_lines": effect.incremental_lines,
        "removal_probability": effect.removal,
    })


def _campaign_summary(campaign: pd.Series, kind: str, expected_size: float, truth: pd.DataFrame) -> dict:
    on = truth[truth["targeted"]]
    return {
        "campaign_id": int(campaign["campaign_id"]),
        "start_date": campaign["start_date"].normalize(), "end_date": campaign["end_date"].normalize(),
        "window_start": campaign["window_start"], "window_end": campaign["window_end"],
        "campaign_multiplier": float(truth["campaign_multiplier"].iloc[0]), "effect_kind": kind,
        "expected_audience": expected_size, "audience": len(on),
        "true_incremental_revenue": float(on["true_incremental_revenue"].sum()),
        "true_expected_redemption_cost": float(on["true_expected_redemption_cost"].sum()),
        "true_att": float(on["true_incremental_revenue"].mean()) if len(on) else float("nan"),
        "true_ate": float(truth["true_incremental_revenue"].mean()),
        "propensity_auc": auc(truth["propensity"].to_numpy(), truth["targeted"].to_numpy()),
    }


def simulate_campaign(world: World, campaign: pd.Series, kind: str, multiplier: float,
                      noise: np.ndarray, scenario: Scenario) -> CampaignResult:
    """Targeting, exact truth and draws of one campaign, against the real data only."""
    facts = campaign_facts(world, campaign, scenario.pre_period_weeks)
    cid = facts.campaign_id
    streams = np.random.SeedSequence([scenario.seed, STREAM_CAMPAIGN, cid]).spawn(4)
    r_target, r_lines, r_remove, r_redeem = (np.random.default_rng(s) for s in streams)
    expected_size = target_size(int(campaign["real_audience"]), scenario.min_audience, len(world.households))
    propensity = propensities(facts.z, scenario.selectivity, expected_size)
    targeted = draw_targeting(propensity, r_target)
    rate = effect_rates(facts.z, noise, scenario, multiplier)
    mix = product_mix(facts.pre, world.households, facts.prices)
    q = baseline_redemption_probability(facts.z, scenario)
    effect = expected_effect(kind, rate, mix, len(facts.window), baseline_in_window(facts.in_window, world.households),
                             q, scenario)
    injected = draw_incremental_lines(cid, world.households, targeted, effect.incremental_lines, mix, facts.window,
                                      world.day_week, world.home_store, scenario.incremental_redemption_rate, r_lines)
    removed = draw_removals(facts.in_window, world.households, targeted, effect.removal, r_remove)
    redeemed = draw_baseline_redemptions(facts.in_window, world.households, targeted, q, removed, r_redeem)
    truth = _household_truth(world, cid, targeted, propensity, multiplier, effect, scenario.face_value)
    summary = _campaign_summary(campaign, kind, expected_size, truth)
    summary.update(injected_lines=len(injected), removed_lines=len(removed),
                   redeemed_lines=int(injected["redeemed"].sum()) + len(redeemed))
    return CampaignResult(truth, summary, injected, removed, redeemed)


def _removals(world: World, results: list[CampaignResult]) -> tuple[np.ndarray, dict[str, int]]:
    """Union of removed lines; a household never loses its last ingest-valid line (it would vanish)."""
    rows, times = np.unique(np.concatenate([r.removed for r in results] + [np.zeros(0, "int64")]),
                            return_counts=True)
    lines = world.lines[["row", "household_id"]]
    gone = lines[lines["row"].isin(rows)]
    left = lines.groupby("household_id").size().sub(gone.groupby("household_id").size(), fill_value=0)
    emptied = left[left <= 0].index
    restore = gone[gone["household_id"].isin(emptied)].sort_values("row").drop_duplicates("household_id")["row"]
    rows = np.setdiff1d(rows, restore.to_numpy())
    return rows, {"removed_lines": len(rows), "lines_removed_by_several_campaigns": int((times > 1).sum()),
                  "removed_lines_restored": len(restore)}


def _injected_rows(injected: pd.DataFrame, first_basket: int, face_value: float) -> pd.DataFrame:
    lines = injected.sort_values(["household_id", "transaction_timestamp", "campaign_id", "product_id"],
                                 kind="mergesort").reset_index(drop=True)
    n = len(lines)
    return pd.DataFrame({
        "household_id": lines["household_id"], "store_id": lines["store_id"],
        "basket_id": np.arange(first_basket, first_basket + n, dtype="int64"),
        "product_id": lines["product_id"], "quantity": np.ones(n, dtype="int64"),
        "sales_value": lines["sales_value"], "retail_disc": np.zeros(n),
        "coupon_disc": np.where(lines["redeemed"], face_value, 0.0), "coupon_match_disc": np.zeros(n),
        "week": lines["week"], "transaction_timestamp": lines["transaction_timestamp"],
    })


def assemble_transactions(tx: pd.DataFrame, world: World, results: list[CampaignResult],
                          face_value: float) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Real lines minus removals, redeemed real lines with coupon_disc, plus the incremental lines.

    A real line redeemed for k campaigns (k coupons) gets coupon_disc = k x face_value.
    Returns the transactions, the redeemed real lines that were kept, and counts.
    """
    removed, stats = _removals(world, results)
    redeemed = pd.concat([r.redeemed.assign(campaign_id=r.summary["campaign_id"]) for r in results],
                         ignore_index=True)
    lost = redeemed["row"].isin(removed)
    redeemed = redeemed[~lost]
    per_line = redeemed.groupby("row").size()
    out = tx.reset_index(drop=True).copy()
    out.loc[per_line.index, "coupon_disc"] = face_value * per_line.to_numpy(dtype="float64")
    keep = np.ones(len(out), dtype=bool)
    keep[removed] = False
    injected = pd.concat([r.injected for r in results], ignore_index=True)
    new = _injected_rows(injected, world.next_basket_id, face_value)
    out = pd.concat([out[keep], new.astype(out.dtypes.to_dict())], ignore_index=True)
    out = out.sort_values(["household_id", "transaction_timestamp", "basket_id", "product_id"], kind="mergesort")
    stats.update(injected_lines=len(new), injected_lines_redeemed=int(injected["redeemed"].sum()),
                 real_lines_redeemed=len(per_line), real_line_redemptions=len(redeemed),
                 real_lines_redeemed_by_several_campaigns=int((per_line > 1).sum()),
                 real_line_redemptions_lost_to_removal=int(lost.sum()))
    return out.reset_index(drop=True), redeemed, stats


def assemble_redemptions(world: World, results: list[CampaignResult],
                         real_redeemed: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """coupon_redemptions rows; redemptions with the same key collapse into one row."""
    parts = [real_redeemed.rename(columns={"day": "redemption_date"})[
        ["household_id", "product_id", "campaign_id", "redemption_date"]]]
    for r in results:
        on = r.injected[r.injected["redeemed"]]
        parts.append(pd.DataFrame({"household_id": on["household_id"], "product_id": on["product_id"],
                                   "campaign_id": on["campaign_id"],
                                   "redemption_date": on["transaction_timestamp"].dt.normalize()}))
    events = pd.concat(parts, ignore_index=True)
    # A coupon product's redemption goes to the campaign's smallest coupon_upc covering it.
    events = events.merge(world.coupon_upc.rename("coupon_upc").reset_index(), on=["campaign_id", "product_id"],
                          how="left", validate="many_to_one")
    keys = ["household_id", "coupon_upc", "campaign_id", "redemption_date"]
    rows = events[keys].drop_duplicates().sort_values(keys).reset_index(drop=True)
    return rows, {"redemption_events": len(events), "redemption_rows": len(rows)}


def simulate(tables: Mapping[str, pd.DataFrame], scenario: Scenario, calendar: SourceConfig) -> Simulation:
    """The synthetic transactions, campaigns and coupon_redemptions with their truth tables.

    ``tables`` holds the real source tables (at least transactions, products,
    campaign_descriptions, campaigns, coupons) as pandas frames.
    """
    with stage(log, "simulate.prepare") as st:
        world = prepare_world(tables, calendar)
        st.rows, st.detail = len(world.lines), f"{len(world.households):,} households, {len(world.campaigns)} campaigns"
    if len(world.households) < 2:
        raise InputError(f"transactions: {len(world.households)} household(s) with a valid line; need at least 2")
    kinds = campaign_multipliers(world.campaigns["campaign_id"], scenario).set_index("campaign_id")
    noise = household_noise(world.households, scenario)
    results: list[CampaignResult] = []
    with stage(log, "simulate.campaigns") as st:
        for _, campaign in world.campaigns.iterrows():
            kind = kinds.loc[campaign["campaign_id"]]
            results.append(simulate_campaign(world, campaign, str(kind["effect_kind"]),
                                             float(kind["campaign_multiplier"]), noise, scenario))
        st.rows = len(results) * len(world.households)
    with stage(log, "simulate.assemble") as st:
        transactions, real_redeemed, stats = assemble_transactions(tables["transactions"], world, results,
                                                                   scenario.face_value)
        redemptions, more = assemble_redemptions(world, results, real_redeemed)
        truth = pd.concat([r.truth for r in results], ignore_index=True)
        targets = truth.loc[truth["targeted"], ["campaign_id", "household_id"]]
        st.rows = len(transactions)
    stats.update(more)
    return Simulation(
        tables={"transactions": transactions, "campaigns": targets.reset_index(drop=True),
                "coupon_redemptions": redemptions},
        truth_household_campaign=truth.sort_values(["household_id", "campaign_id"]).reset_index(drop=True),
        truth_campaign=pd.DataFrame([r.summary for r in results]).sort_values("campaign_id").reset_index(drop=True),
        stats=stats,
    )
