"""The decision scorecard (promo_roi.synthetic.scorecard) on hand-built truth: every expected value by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from promo_roi.synthetic.scorecard import (
    Economics,
    campaign_true_profit,
    forecast_against_truth,
    oracle_profit,
    paired_profit_difference,
    plan_outcome,
    scorecard,
    true_pair_economics,
    uplift_rank_correlation,
    wape,
)

# Two campaigns, four households. Truth: incremental revenue and expected redemption cost if targeted.
TRUTH = pd.DataFrame({
    "household_id": [1, 2, 3, 4, 1, 2, 3, 4],
    "campaign_id": [10, 10, 10, 10, 20, 20, 20, 20],
    "true_incremental_revenue": [100.0, 50.0, 0.0, -10.0, 20.0, 20.0, 40.0, 0.0],
    "true_expected_redemption_cost": [1.0, 2.0, 0.0, 0.5, 0.0, 1.0, 0.0, 3.0],
})
ECON = Economics(gross_margin=0.5, contact_cost={10: 1.0, 20: 2.0})


def test_true_pair_economics_counts_redemptions_as_cost():
    out = true_pair_economics(TRUTH, ECON)
    # value = 0.5 x revenue; cost = contact + redemption cost
    assert out["value"].tolist() == [50.0, 25.0, 0.0, -5.0, 10.0, 10.0, 20.0, 0.0]
    assert out["cost"].tolist() == [2.0, 3.0, 1.0, 1.5, 2.0, 3.0, 2.0, 5.0]
    assert out["profit"].tolist() == [48.0, 22.0, -1.0, -6.5, 8.0, 7.0, 18.0, -5.0]


def test_rank_correlation_per_campaign():
    predicted = TRUTH[["household_id", "campaign_id"]].assign(predicted=[4.0, 3.0, 2.0, 1.0, 1.0, 2.0, 3.0, 4.0])
    ranks = uplift_rank_correlation(predicted, TRUTH).set_index("campaign_id")
    assert ranks.loc[10, "spearman"] == pytest.approx(1.0)  # same order as the truth
    # campaign 20: truth [20, 20, 40, 0] ranks (2.5, 2.5, 4, 1), predicted ranks (1, 2, 3, 4); deviations
    # from 2.5: (0, 0, 1.5, -1.5) and (-1.5, -0.5, 0.5, 1.5): -1.5 / sqrt(4.5 x 5)
    assert ranks.loc[20, "spearman"] == pytest.approx(-1.5 / math.sqrt(4.5 * 5.0))
    flat = predicted.assign(predicted=1.0)
    assert uplift_rank_correlation(flat, TRUTH)["spearman"].isna().all()


def test_a_scored_pair_without_truth_is_an_error():
    stray = pd.DataFrame({"household_id": [9], "campaign_id": [10], "predicted": [1.0]})
    with pytest.raises(ValueError, match="1 scored pair\\(s\\) have no truth"):
        uplift_rank_correlation(stray, TRUTH)


def test_forecast_truth_is_summed_over_the_audience_it_describes():
    forecast = pd.DataFrame({"campaign_id": [10, 20], "forecast": [120.0, 100.0], "low": [100.0, 90.0],
                             "high": [200.0, 110.0]})
    # Campaign 10 describes households 1, 2 (truth 150); campaign 20 households 2, 3, 4 (truth 60).
    audience = pd.DataFrame({"household_id": [1, 2, 2, 3, 4], "campaign_id": [10, 10, 20, 20, 20]})
    errors = forecast_against_truth(forecast, audience, TRUTH)
    assert errors["truth"].tolist() == [150.0, 60.0]
    assert errors["audience"].tolist() == [2, 3]
    assert errors["error"].tolist() == [-30.0, 40.0]
    assert errors["covered"].tolist() == [True, False]
    assert wape(errors) == pytest.approx(70.0 / 210.0)


def test_plan_outcome_and_the_oracle_at_the_same_cost():
    economics = true_pair_economics(TRUTH, ECON)
    chosen = pd.DataFrame({"household_id": [2, 4], "campaign_id": [10, 20]})
    outcome = plan_outcome(chosen, economics)
    assert outcome == {"pairs": 2, "households": 2, "true_value": 25.0, "true_cost": 8.0, "true_profit": 17.0}
    # Budget 8, one campaign per household. Profitable pairs (profit, cost): h1 (48, 2) / (8, 2),
    # h2 (22, 3) / (7, 3), h3 (18, 2). Best within cost 8: h1-10 + h2-10 + h3-20 = 88 at cost 7.
    oracle = oracle_profit(economics, budget=8.0, household_cap=1)
    assert oracle["true_profit"] == pytest.approx(88.0)
    assert oracle["true_cost"] == pytest.approx(7.0)
    # Budget 4.5: h1-10 (48, 2) + h3-20 (18, 2) = 66; h2-10 (22, 3) no longer fits.
    assert oracle_profit(economics, budget=4.5, household_cap=1)["true_profit"] == pytest.approx(66.0)
    # Budget 2.5: only one pair of cost 2 fits, the best is h1-10.
    assert oracle_profit(economics, budget=2.5, household_cap=1)["true_profit"] == pytest.approx(48.0)


def test_scorecard_row():
    predicted = TRUTH[["household_id", "campaign_id"]].assign(predicted=[4.0, 3.0, 2.0, 1.0, 1.0, 2.0, 3.0, 4.0])
    forecast = pd.DataFrame({"campaign_id": [10, 20], "forecast": [150.0, 50.0], "low": [100.0, 0.0],
                             "high": [200.0, 70.0]})
    audience = pd.DataFrame({"household_id": [1, 2, 2, 3, 4], "campaign_id": [10, 10, 20, 20, 20]})
    chosen = pd.DataFrame({"household_id": [2, 4], "campaign_id": [10, 20]})
    row = scorecard("m", predicted, forecast, audience, chosen, planned_cost=5.0, truth=TRUTH, economics=ECON,
                    household_cap=1)
    assert row["campaigns"] == 2
    assert row["spearman_mean"] == pytest.approx((1.0 - 1.5 / math.sqrt(4.5 * 5.0)) / 2)
    assert row["forecast_wape"] == pytest.approx(10.0 / 210.0)  # errors 0 and -10
    assert row["interval_coverage"] == 1.0
    assert (row["plan_true_profit"], row["plan_true_cost"], row["plan_expected_cost"]) == (17.0, 8.0, 5.0)
    assert row["oracle_true_profit"] == pytest.approx(88.0)
    assert row["oracle_share"] == pytest.approx(17.0 / 88.0)


def test_a_paired_difference_of_two_plans_resamples_the_nights_campaigns():
    economics = true_pair_economics(TRUTH, ECON)
    # Plan a: h1-10 (48) and h3-20 (18); plan b: h2-10 (22) and h4-20 (-5). Per campaign a - b: 10 -> 26,
    # 20 -> 23; the night's third campaign, 30, neither plan funded: 0.
    a = campaign_true_profit(pd.DataFrame({"household_id": [1, 3], "campaign_id": [10, 20]}), economics)
    b = campaign_true_profit(pd.DataFrame({"household_id": [2, 4], "campaign_id": [10, 20]}), economics)
    assert a.to_dict() == {10: 48.0, 20: 18.0} and b.to_dict() == {10: 22.0, 20: -5.0}
    out = paired_profit_difference(a, b, [10, 20, 30], n_boot=4000, seed=1)
    assert (out["difference"], out["campaigns"]) == (49.0, 3)
    # A resampled night of three campaigns holds 0-3 draws of each of (26, 23, 0): its total lies in [0, 78];
    # a night of 0 (three draws of campaign 30) has probability 1/27 > 2.5%, one of 78 (three of 26) 1/27 too.
    assert out["low"] == 0.0 and out["high"] == 78.0
    # The same gain on both campaigns: every resampled night of two gains 2 x 5.
    same = paired_profit_difference(pd.Series({10: 6.0, 20: 5.0}), pd.Series({10: 1.0, 20: 0.0}), [10, 20],
                                    n_boot=50)
    assert (same["difference"], same["low"], same["high"]) == (10.0, 10.0, 10.0)
    nothing = pd.Series(dtype=float)
    assert paired_profit_difference(nothing, nothing, [], n_boot=10) == {
        "difference": 0.0, "low": 0.0, "high": 0.0, "campaigns": 0}
    with pytest.raises(ValueError, match=r"campaign\(s\) \[20\] outside the night's campaigns"):
        paired_profit_difference(a, b, [10], n_boot=10)
    with pytest.raises(ValueError, match="n_boot must be >= 1"):
        paired_profit_difference(a, b, [10, 20], n_boot=0)


def test_a_baseline_is_priced_by_the_t_learners_calibrated_redemptions_not_the_champions():
    """independent_pricing: observed over predicted redemptions of the held-out targeted households (the untargeted
    rows, which never redeem, left out); priced_costs: contact plus that count times the cost per redemption."""
    import numpy as np

    from promo_roi.config import EvaluationConfig
    from promo_roi.synthetic.decisions import independent_pricing, priced_costs

    evaluation = EvaluationConfig(overlap_band=(0.1, 0.9), bootstrap_samples=5, nuisance_folds=2,
                                  placebo_tolerance=0.25, stability_z=2.0, seed=1, ranking="validated")
    frames = [pd.DataFrame({"campaign_id": [1, 1, 1], "targeted": [1.0, 1.0, 0.0], "redemptions": [3.0, 1.0, 0.0]}),
              pd.DataFrame({"campaign_id": [2, 2], "targeted": [1.0, 0.0], "redemptions": [2.0, 0.0]})]
    predictions = [pd.DataFrame({"p_redeem_t1": [0.5, 0.5, 0.9]}), pd.DataFrame({"p_redeem_t1": [1.0, 0.2]})]
    ratio = independent_pricing(predictions, frames, evaluation, "ratio")
    assert ratio.ratio == pytest.approx(6.0 / 2.0)  # (3 + 1 + 2) redemptions over (0.5 + 0.5 + 1.0) predicted
    with pytest.raises(ValueError, match="unknown redemption model 'poisson'"):
        independent_pricing(predictions, frames, evaluation, "poisson")

    pairs = pd.DataFrame({"household_id": [10, 11, 10], "campaign_id": [5, 5, 6]})
    unit_costs = pd.DataFrame({"campaign_id": [5, 6], "contact_cost": [0.5, 1.0], "redemption_cost": [2.0, 0.0]})
    priced = priced_costs(pairs, np.array([0.1, 0.0, 0.4]), unit_costs, ratio)
    assert priced.to_dict("records") == [
        {"household_id": 10, "campaign_id": 5, "cost": pytest.approx(0.5 + 0.3 * 2.0), "redemptions": 0.0},
        {"household_id": 11, "campaign_id": 5, "cost": pytest.approx(0.5), "redemptions": 0.0},
        {"household_id": 10, "campaign_id": 6, "cost": pytest.approx(1.0), "redemptions": 0.0}]
