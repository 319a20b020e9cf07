"""Budget-plan solver: hard constraints, monotonicity, target ROI, exactness checks, Spark = numpy.

Property tests run the numpy core on small random instances (hypothesis);
HiGHS (``solve_exact``) gives the true optimum on 200 households; one Spark
test checks that the Spark path picks exactly the numpy core's pairs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promo_roi.planning import (
    BudgetConstraints,
    SolverSettings,
    plan_budget,
    plan_budget_spark,
    relaxation_bound,
    select_top_k,
    solve_exact,
)
from promo_roi.planning.synthetic import generate_pairs
from promo_roi.validation import MissingColumnError

TOL = 1e-7


# --------------------------------------------------------------------------
# Instances
# --------------------------------------------------------------------------


def random_pairs(rng: np.random.Generator, n_households: int, n_campaigns: int, density: float = 1.0) -> pd.DataFrame:
    """Pairs with heavy-tailed value, some unprofitable, some households missing campaigns."""
    household = np.repeat(np.arange(n_households), n_campaigns)
    campaign = np.tile(np.arange(1, n_campaigns + 1), n_households)
    keep = rng.random(len(household)) < density
    household, campaign = household[keep], campaign[keep]
    n = len(household)
    cost = rng.uniform(0.2, 4.0, n)
    value = cost * rng.lognormal(0.0, 0.7, n) - rng.uniform(0.0, 0.5, n)
    redemptions = rng.uniform(0.0, 1.0, n) * (rng.random(n) < 0.9)
    return pd.DataFrame(
        {"household_id": household, "campaign_id": campaign, "value": value, "cost": cost, "redemptions": redemptions}
    )


@st.composite
def instances(draw: st.DrawFn, with_caps: bool = True) -> tuple[pd.DataFrame, BudgetConstraints]:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    pairs = random_pairs(
        rng, draw(st.integers(1, 30)), draw(st.integers(1, 4)), draw(st.sampled_from([1.0, 0.7]))
    )
    if pairs.empty:
        pairs = random_pairs(rng, 1, 1)
    total = float(pairs["cost"].sum())
    by_campaign = pairs.groupby("campaign_id")
    max_budget, inventory = {}, {}
    if with_caps:
        for campaign, group in by_campaign:
            if draw(st.booleans()):
                max_budget[int(campaign)] = draw(st.floats(0.0, 0.6)) * float(group["cost"].sum())
            if draw(st.booleans()):
                inventory[int(campaign)] = draw(st.floats(0.0, 0.6)) * float(group["redemptions"].sum())
    constraints = BudgetConstraints(
        total_budget=draw(st.floats(0.0, 1.0)) * total,
        household_cap=draw(st.integers(1, 3)),
        campaign_max_budget=max_budget,
        campaign_inventory=inventory,
    )
    return pairs, constraints


def assert_feasible(pairs: pd.DataFrame, selected: np.ndarray, constraints: BudgetConstraints) -> None:
    chosen = pairs.loc[selected]
    if constraints.total_budget is not None:
        assert chosen["cost"].sum() <= constraints.total_budget + TOL * max(1.0, constraints.total_budget)
    spend = chosen.groupby("campaign_id")["cost"].sum()
    for campaign, limit in constraints.campaign_max_budget.items():
        assert spend.get(campaign, 0.0) <= limit + TOL * max(1.0, limit), f"campaign {campaign} over budget"
    redemptions = chosen.groupby("campaign_id")["redemptions"].sum()
    for campaign, limit in constraints.campaign_inventory.items():
        assert redemptions.get(campaign, 0.0) <= limit + TOL * max(1.0, limit), f"campaign {campaign} over inventory"
    if len(chosen):
        assert chosen.groupby("household_id").size().max() <= constraints.household_cap


def objective_of(pairs: pd.DataFrame, selected: np.ndarray, target_roi: float = 0.0) -> float:
    chosen = pairs.loc[selected]
    return float((chosen["value"] - chosen["cost"] - target_roi * chosen["cost"]).sum())


# --------------------------------------------------------------------------
# Properties (numpy core)
# --------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(instances())
def test_plan_respects_every_constraint_and_profit_grows_with_budget(
    instance: tuple[pd.DataFrame, BudgetConstraints],
) -> None:
    pairs, constraints = instance
    plan = plan_budget(pairs, constraints)
    assert_feasible(pairs, plan.selected, constraints)
    summary = plan.summary
    assert summary.objective == pytest.approx(objective_of(pairs, plan.selected), abs=1e-6)
    assert summary.budget_used == pytest.approx(float(pairs.loc[plan.selected, "cost"].sum()), abs=1e-6)
    assert summary.dual_bound is not None and summary.dual_bound >= summary.objective - 1e-6
    assert summary.objective >= -1e-9  # the empty plan is always available

    larger = BudgetConstraints(
        total_budget=constraints.total_budget * 1.5,
        household_cap=constraints.household_cap,
        campaign_max_budget=constraints.campaign_max_budget,
        campaign_inventory=constraints.campaign_inventory,
    )
    bigger = plan_budget(pairs, larger)
    assert_feasible(pairs, bigger.selected, larger)
    assert bigger.summary.objective >= summary.objective - 1e-9 * max(1.0, abs(summary.objective))


@PROPERTY_SETTINGS
@given(instances(), st.floats(0.0, 1.5), st.booleans())
def test_target_roi_selects_only_pairs_at_or_above_the_target(
    instance: tuple[pd.DataFrame, BudgetConstraints], target: float, unlimited: bool
) -> None:
    pairs, constraints = instance
    if unlimited:
        constraints = BudgetConstraints(
            total_budget=None,
            household_cap=constraints.household_cap,
            campaign_max_budget=constraints.campaign_max_budget,
            campaign_inventory=constraints.campaign_inventory,
        )
    plan = plan_budget(pairs, constraints, mode="target_roi", target_roi=target)
    assert_feasible(pairs, plan.selected, constraints)
    chosen = pairs.loc[plan.selected]
    roi = (chosen["value"] - chosen["cost"]) / chosen["cost"]
    assert (roi >= target - 1e-9).all()
    assert plan.summary.objective == pytest.approx(objective_of(pairs, plan.selected, target), abs=1e-6)
    assert plan.summary.objective >= -1e-9
    assert plan.summary.dual_bound >= plan.summary.objective - 1e-6


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.floats(-5, 5, allow_nan=False), min_size=4, max_size=4), min_size=1, max_size=20),
    st.integers(1, 5),
)
def test_select_top_k_takes_the_k_best_positive_pairs(rows: list[list[float]], k: int) -> None:
    reduced = np.array(rows).T  # [campaigns, households]
    chosen = select_top_k(reduced, k)
    for household in range(reduced.shape[1]):
        values = reduced[:, household]
        picked = chosen[:, household]
        assert picked.sum() == min(k, int((values > 0).sum()))
        assert (values[picked] > 0).all()
        if picked.any() and (~picked).any():
            assert values[picked].min() >= values[~picked & (values > 0)].max(initial=-np.inf)


# --------------------------------------------------------------------------
# A hand-computed example
# --------------------------------------------------------------------------


def test_hand_computed_three_households_two_campaigns() -> None:
    # K = 1, budget 5.5. Profit (value - cost) and ROI of each pair:
    #   h1: c1 profit 4 (cost 2, ROI 2.00)   c2 profit 5 (cost 4, ROI 1.25)
    #   h2: c1 profit 1 (cost 2, ROI 0.50)   c2 profit 3 (cost 1, ROI 3.00)
    #   h3: c1 profit 2 (cost 2, ROI 1.00)   c2 profit 0.5 (cost 1, ROI 0.50)
    # Each household takes at most one campaign. Plans that fit 5.5:
    #   {h1c1, h2c2, h3c1}: cost 5, profit 9   <- best
    #   {h1c2, h2c2}:       cost 5, profit 8
    #   {h1c1, h2c2, h3c2}: cost 4, profit 7.5
    #   anything with h1c2 and a third pair costs >= 6.
    # The Lagrangian path: h2c2 enters first (ROI 3), then h1c1 (2), h3c1 (1);
    # h1's swap c1 -> c2 (+2 cost for +1 profit, marginal ROI 0.5) does not fit.
    pairs = pd.DataFrame(
        {
            "household_id": [1, 1, 2, 2, 3, 3],
            "campaign_id": [1, 2, 1, 2, 1, 2],
            "value": [6.0, 9.0, 3.0, 4.0, 4.0, 1.5],
            "cost": [2.0, 4.0, 2.0, 1.0, 2.0, 1.0],
            "redemptions": [0.5, 1.0, 0.5, 0.2, 0.5, 0.2],
        }
    )
    plan = plan_budget(pairs, BudgetConstraints(total_budget=5.5, household_cap=1))
    assert plan.selected.tolist() == [True, False, False, True, True, False]
    summary = plan.summary
    assert summary.objective == pytest.approx(9.0)
    assert summary.budget_used == pytest.approx(5.0)
    assert summary.households_targeted == 3
    assert [c.spend for c in summary.campaigns] == pytest.approx([4.0, 1.0])
    assert [c.audience for c in summary.campaigns] == [2, 1]
    assert summary.campaign(2).roi == pytest.approx(3.0)
    # the LP relaxation can still use the swap fractionally: bound 9 + 0.5 * 0.5
    assert summary.dual_bound == pytest.approx(9.25, abs=1e-6)
    exact = solve_exact(pairs, BudgetConstraints(total_budget=5.5, household_cap=1))
    assert exact.objective == pytest.approx(9.0)
    assert exact.selected.tolist() == plan.selected.tolist()
    assert exact.lp_bound == pytest.approx(9.25, abs=1e-6)
    assert relaxation_bound(pairs, BudgetConstraints(total_budget=5.5, household_cap=1)) == pytest.approx(9.25, abs=1e-6)

    # With no budget limit every household takes its most profitable pair: 5 + 3 + 2.
    unlimited = plan_budget(pairs, BudgetConstraints(total_budget=100.0, household_cap=1))
    assert unlimited.selected.tolist() == [False, True, False, True, True, False]
    assert unlimited.summary.objective == pytest.approx(10.0)

    # Target ROI 1.0 (no budget): pairs with ROI >= 1 only; h1 still prefers c2
    # (5 - 1.0 * 4 = 1 < 4 - 1.0 * 2 = 2, so c1), h2 c2, h3 c1 (2 - 2 = 0 is not worth it).
    targeted = plan_budget(pairs, BudgetConstraints(household_cap=1), mode="target_roi", target_roi=1.0)
    assert targeted.selected.tolist() == [True, False, False, True, False, False]
    assert targeted.summary.objective == pytest.approx((4 - 2) + (3 - 1))


# --------------------------------------------------------------------------
# Against HiGHS
# --------------------------------------------------------------------------


def benchmark_like_pairs(n_households: int, n_campaigns: int, seed: int) -> pd.DataFrame:
    """The benchmark's generator (benchmarks/bench_budget_solver.py), at test size."""
    return generate_pairs(n_households, n_campaigns, seed)


@pytest.mark.parametrize("seed", [0, 4, 5])
def test_gap_to_the_exact_optimum_is_small_on_200_households(seed: int) -> None:
    # Measured over seeds 0-7 of this instance: true gap 0.35%-1.85%, certified
    # (bound) gap <= 2.1%; seeds 0, 4 and 5 are the three worst. At 200
    # households the last move that does not fit and caps that hold ~10 pairs
    # are most of the gap; it shrinks with size (BENCHMARKS.md, Budget solver).
    pairs = benchmark_like_pairs(200, 5, seed)
    total = float(pairs["cost"].sum())
    constraints = BudgetConstraints(
        total_budget=0.15 * total,
        household_cap=2,
        campaign_max_budget={1: 0.03 * total},
        campaign_inventory={2: 6.0},
    )
    plan = plan_budget(pairs, constraints)
    exact = solve_exact(pairs, constraints)
    assert exact.status == "Optimal"
    assert plan.summary.objective <= exact.objective + 1e-6
    assert (exact.objective - plan.summary.objective) / exact.objective <= 0.025
    assert exact.lp_bound >= exact.objective - 1e-6
    assert plan.summary.dual_bound >= exact.objective - 1e-6
    assert plan.summary.gap <= 0.03


def test_gap_without_caps_is_one_household_at_most() -> None:
    pairs = benchmark_like_pairs(200, 5, 1)
    constraints = BudgetConstraints(total_budget=0.1 * float(pairs["cost"].sum()), household_cap=1)
    plan = plan_budget(pairs, constraints)
    exact = solve_exact(pairs, constraints)
    lost = exact.objective - plan.summary.objective
    assert -1e-6 <= lost <= (pairs["value"] - pairs["cost"]).max()
    assert lost / exact.objective <= 0.01


# --------------------------------------------------------------------------
# Minimum budgets, summaries and input errors
# --------------------------------------------------------------------------


def test_minimum_budget_is_met_with_the_least_unprofitable_pairs_and_reported() -> None:
    rng = np.random.default_rng(7)
    pairs = random_pairs(rng, 60, 3)
    # campaign 3 loses money on every pair; the planner must still spend 5 on it
    pairs.loc[pairs["campaign_id"] == 3, "value"] = pairs.loc[pairs["campaign_id"] == 3, "cost"] * 0.5
    constraints = BudgetConstraints(total_budget=40.0, household_cap=2, campaign_min_budget={3: 5.0})
    plan = plan_budget(pairs, constraints)
    assert_feasible(pairs, plan.selected, constraints)
    summary = plan.summary
    campaign = summary.campaign(3)
    assert campaign.spend >= 5.0
    assert campaign.min_budget_shortfall == 0.0
    assert campaign.forced_pairs == summary.forced_pairs > 0
    forced = pairs.loc[plan.forced]
    assert (forced["campaign_id"] == 3).all()
    assert (forced["value"] < forced["cost"]).all()
    assert summary.budget_used <= 40.0 + TOL


def test_unreachable_minimum_budget_reports_the_shortfall() -> None:
    pairs = random_pairs(np.random.default_rng(3), 5, 2)
    available = float(pairs.loc[pairs["campaign_id"] == 2, "cost"].sum())
    constraints = BudgetConstraints(total_budget=1e6, household_cap=2, campaign_min_budget={2: available + 10})
    summary = plan_budget(pairs, constraints).summary
    assert summary.campaign(2).min_budget_shortfall == pytest.approx(10.0)


def test_campaign_summary_reports_spend_roi_and_marginal_roi() -> None:
    pairs = benchmark_like_pairs(300, 4, 2)
    constraints = BudgetConstraints(total_budget=0.2 * float(pairs["cost"].sum()), household_cap=2)
    plan = plan_budget(pairs, constraints)
    chosen = pairs.loc[plan.selected]
    for campaign in plan.summary.campaigns:
        mine = chosen[chosen["campaign_id"] == campaign.campaign_id]
        assert campaign.spend == pytest.approx(mine["cost"].sum())
        assert campaign.audience == len(mine)
        assert campaign.profit == pytest.approx((mine["value"] - mine["cost"]).sum())
        if len(mine):
            assert campaign.roi == pytest.approx(campaign.profit / campaign.spend)
            assert campaign.marginal_roi is not None and campaign.marginal_roi <= campaign.roi + 1e-9
    assert plan.summary.roi_threshold is not None
    assert 0 <= plan.summary.gap < 0.02


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.drop(columns=["cost"]), "cost"),
        (lambda p: p.assign(cost=p["cost"].where(p.index != 0, 0.0)), "cost"),
        (lambda p: p.assign(value=p["value"].where(p.index != 1, np.nan)), "value"),
        (lambda p: p.assign(redemptions=-p["redemptions"] - 1), "redemptions"),
        (lambda p: pd.concat([p, p.iloc[:1]]), "duplicate"),
    ],
)
def test_bad_pairs_are_refused_naming_the_field(change, field: str) -> None:  # type: ignore[no-untyped-def]
    pairs = random_pairs(np.random.default_rng(0), 5, 2)
    with pytest.raises(ValueError, match=field):
        plan_budget(change(pairs), BudgetConstraints(total_budget=10.0))


def test_missing_column_error_names_the_column() -> None:
    pairs = random_pairs(np.random.default_rng(0), 3, 2).drop(columns=["redemptions"])
    with pytest.raises(MissingColumnError, match="redemptions"):
        plan_budget(pairs, BudgetConstraints(total_budget=1.0))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"total_budget": -1.0}, "total_budget"),
        ({"total_budget": math.nan}, "total_budget"),
        ({"household_cap": 0}, "household_cap"),
        ({"campaign_max_budget": {1: -5.0}}, "campaign_max_budget"),
        ({"campaign_inventory": {1: math.nan}}, "campaign_inventory"),
        ({"campaign_min_budget": {1: 5.0}, "campaign_max_budget": {1: 2.0}}, "campaign_min_budget"),
        ({"total_budget": 3.0, "campaign_min_budget": {1: 2.0, 2: 2.0}}, "campaign_min_budget"),
    ],
)
def test_bad_constraints_are_refused_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        BudgetConstraints(**kwargs)


def test_mode_arguments_are_checked() -> None:
    pairs = random_pairs(np.random.default_rng(0), 3, 2)
    with pytest.raises(ValueError, match="total_budget"):
        plan_budget(pairs, BudgetConstraints(), mode="fixed_budget")
    with pytest.raises(ValueError, match="target_roi"):
        plan_budget(pairs, BudgetConstraints(), mode="target_roi")
    with pytest.raises(ValueError, match="mode"):
        plan_budget(pairs, BudgetConstraints(total_budget=1.0), mode="max_reach")  # type: ignore[arg-type]


def test_nothing_profitable_gives_an_empty_plan() -> None:
    pairs = random_pairs(np.random.default_rng(1), 4, 2).assign(value=0.0)
    plan = plan_budget(pairs, BudgetConstraints(total_budget=100.0, household_cap=2))
    assert not plan.selected.any()
    assert plan.summary.objective == 0.0


# --------------------------------------------------------------------------
# Spark = numpy
# --------------------------------------------------------------------------


def test_spark_path_selects_the_same_pairs_as_the_numpy_core(spark) -> None:  # type: ignore[no-untyped-def]
    pairs = benchmark_like_pairs(500, 6, 11)
    total = float(pairs["cost"].sum())
    constraints = BudgetConstraints(
        total_budget=0.15 * total,
        household_cap=2,
        campaign_max_budget={1: 0.02 * total, 4: 0.03 * total},
        campaign_inventory={2: 0.01 * 500},
    )
    # small blocks so that households straddle Arrow batches and blocks
    solver_settings = SolverSettings(chunk_households=64)
    plan = plan_budget(pairs, constraints, settings=solver_settings)
    frame = spark.createDataFrame(pairs.sample(frac=1.0, random_state=0))  # input order must not matter
    selected, summary = plan_budget_spark(frame, constraints, settings=solver_settings)
    try:
        rows = selected.select("household_id", "campaign_id").collect()
        got = {(int(r.household_id), int(r.campaign_id)) for r in rows}
    finally:
        selected.unpersist()
    want = set(map(tuple, pairs.loc[plan.selected, ["household_id", "campaign_id"]].astype(int).to_numpy().tolist()))
    assert got == want
    assert summary.objective == pytest.approx(plan.summary.objective, rel=1e-9)
    assert summary.dual_bound == pytest.approx(plan.summary.dual_bound, rel=1e-9)
    assert [c.spend for c in summary.campaigns] == pytest.approx([c.spend for c in plan.summary.campaigns])
    assert summary.households_targeted == plan.summary.households_targeted

    with pytest.raises(MissingColumnError, match="cost"):
        plan_budget_spark(frame.drop("cost"), constraints)
    with pytest.raises(ValueError, match="cost"):
        plan_budget_spark(frame.withColumn("cost", frame["cost"] * 0), constraints)
