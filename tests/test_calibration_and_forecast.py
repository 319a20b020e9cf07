"""Uplift calibration, the DR effect on the targeted, and the forecast / backtest arithmetic (hand-computed)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from conftest import two_campaign_calibration
from promo_roi.causal.calibration import (
    CalibrationError,
    LinearCalibration,
    RatioCalibration,
    ShrunkCountCalibration,
    UpliftCalibration,
    between_campaign_variance,
    fit_linear,
    fit_ratio,
    fit_shrunk_count,
    fit_uplift_calibration,
)
from promo_roi.causal.metrics import dr_att
from promo_roi.scoring.backtest import RealizedEffect, accuracy_rows
from promo_roi.scoring.forecast import (
    interval_method,
    plan_profit_draws,
    plan_profit_interval,
    roi_forecast,
    roi_quantiles,
)
from promo_roi.scoring.plan import campaigns_at_risk


def test_linear_calibration_recovers_an_exact_line_in_every_draw():
    tau = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0])
    phi = 2.0 + 0.5 * tau
    campaign = np.array([1] * 6 + [2] * 6)
    cal = fit_linear(tau, phi, campaign, n_boot=50, seed=3)
    assert cal.intercept == pytest.approx(2.0)
    assert cal.slope == pytest.approx(0.5)
    # A bootstrap sample with a single distinct tau has no slope to fit; every other one is the line.
    spread = [d for d in cal.draws if not np.isclose(d[1], 0.0)]
    assert len(spread) > 40
    for intercept, slope in spread:
        assert intercept == pytest.approx(2.0) and slope == pytest.approx(0.5)
    assert cal.apply([0.0, 4.0]).tolist() == pytest.approx([2.0, 4.0])


def test_two_stage_bootstrap_carries_the_difference_between_campaigns():
    # Campaign 1's households gained nothing, campaign 2's gained 10 each; the
    # model predicts the same for all. Pooled: 5. A new campaign could be like
    # either, so the draws must range from about 0 to about 10.
    phi = np.array([0.0] * 20 + [10.0] * 20)
    tau = np.zeros(40)
    campaign = np.array([1] * 20 + [2] * 20)
    cal = fit_linear(tau, phi, campaign, n_boot=200, seed=0)
    assert cal.intercept == pytest.approx(5.0)
    assert cal.slope == 0.0
    assert cal.draws[:, 0].min() == pytest.approx(0.0)
    assert cal.draws[:, 0].max() == pytest.approx(10.0)
    low, high = cal.interval(0.9)["intercept"]
    assert low == pytest.approx(0.0) and high == pytest.approx(10.0)


def test_between_campaign_variance_by_hand():
    # Equal weights: mean 10, Q = 100 + 0 + 100 = 200, C - 1 = 2, scale = 3 - 3 / 3 = 2 -> (200 - 2) / 2.
    assert between_campaign_variance([0.0, 10.0, 20.0], [1.0, 1.0, 1.0]) == pytest.approx(99.0)
    # w = 1, 0.25: mean 2.5 / 1.25 = 2, Q = 4 + 0.25 * 64 = 20, scale = 1.25 - 1.0625 / 1.25 = 0.4.
    assert between_campaign_variance([0.0, 10.0], [1.0, 4.0]) == pytest.approx(19.0 / 0.4)
    # Differences no larger than the sampling noise: no spread between campaigns.
    assert between_campaign_variance([0.0, 1.0, 2.0], [4.0, 4.0, 4.0]) == 0.0
    # Unusable campaigns are left out; fewer than two left: 0.
    assert between_campaign_variance([0.0, 10.0, 20.0, math.nan], [1.0, 1.0, 1.0, 1.0]) == pytest.approx(99.0)
    assert between_campaign_variance([0.0, 10.0], [1.0, 0.0]) == 0.0


def test_the_campaign_effect_is_the_spread_of_the_campaigns_around_the_line():
    # Four campaigns at -6, -2, 2, 6 per household, each household +-1 around its campaign (100 each).
    # The line is flat at 0 (the prediction has no spread); each campaign mean's sampling variance is
    # (100 / 99) / 100 = 1 / 99, so the between-campaign variance is 80 / 3 - 1 / 99.
    offsets = np.repeat([-6.0, -2.0, 2.0, 6.0], 100)
    phi = offsets + np.tile([1.0, -1.0], 200)
    campaign = np.repeat([1, 2, 3, 4], 100)
    cal = fit_linear(np.zeros(400), phi, campaign, n_boot=400, seed=0)
    assert cal.intercept == pytest.approx(0.0, abs=1e-12) and cal.slope == 0.0
    assert cal.between_campaign_sd == pytest.approx(math.sqrt(80 / 3 - 1 / 99))
    # The bootstrap alone averages four resampled campaigns: never past the extreme ones (+-6, +-1).
    assert -7.0 <= cal.draws[:, 0].min() and cal.draws[:, 0].max() <= 7.0
    # A new campaign is one campaign, not an average of four: its interval reaches well past them.
    totals = cal.total_draws(1.0, 0.0)
    assert np.quantile(totals, 0.05) < -8.0 and np.quantile(totals, 0.95) > 8.0
    assert cal.total(100.0, 0.0) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(cal.total_draws(100.0, 0.0), 100.0 * totals)


def test_intervals_hold_a_new_campaign_about_as_often_as_they_say():
    # 200 worlds: campaign levels ~ N(0, 5^2), households +-20 around them; four held-out campaigns are
    # calibrated on, a fifth from the same worlds is the one forecast. The bootstrap of the line alone
    # held it in about half of its 90% intervals (0.46 in this simulation before the campaign effect; 0.815 with it).
    rng = np.random.default_rng(0)
    held = line_only = 0
    worlds = 200
    for world in range(worlds):
        levels = rng.normal(0.0, 5.0, 5)
        campaign = np.repeat(np.arange(4), 100)
        phi = levels[campaign] + rng.normal(0.0, 20.0, campaign.size)
        cal = fit_linear(rng.normal(size=campaign.size), phi, campaign, n_boot=200, seed=world)
        totals = cal.total_draws(1.0, 0.0)
        held += np.quantile(totals, 0.05) <= levels[4] <= np.quantile(totals, 0.95)
        line_only += np.quantile(cal.draws[:, 0], 0.05) <= levels[4] <= np.quantile(cal.draws[:, 0], 0.95)
    assert 0.75 <= held / worlds <= 0.97
    assert line_only / worlds < 0.6


def test_every_outcome_of_a_draw_comes_from_the_same_resample():
    # Campaign 1: nothing gained, 1 redemption per predicted; campaign 2: +10, 3 per predicted. Every row
    # of a campaign is alike, so a draw's campaigns decide both: two of campaign 1 -> (0, 1), two of
    # campaign 2 -> (10, 3), one of each -> (5, between 1 and 3). Half the rows are untargeted, so the
    # redemption ratios see other rows than the spend line: drawn apart, the pairs would not match.
    campaign = np.repeat([1, 2], 20)
    targeted = np.tile([1, 0], 20)
    phi = np.where(campaign == 1, 0.0, 10.0)
    per_predicted = np.where(campaign == 1, 1.0, 3.0)
    cal = fit_uplift_calibration(
        tau_spend=np.zeros(40), phi_spend=phi, tau_coupon=np.zeros(40), phi_coupon=phi, targeted=targeted,
        redeemed=0.5 * per_predicted * targeted, p_redeem_targeted=np.full(40, 0.5), campaign=campaign,
        n_boot=200, seed=4, redemptions=0.5 * per_predicted * targeted)
    level, ratio = cal.spend.draws[:, 0], cal.redemptions.draws
    assert set(np.round(level, 9)) == {0.0, 5.0, 10.0}
    np.testing.assert_allclose(ratio[np.isclose(level, 0.0)], 1.0)
    np.testing.assert_allclose(ratio[np.isclose(level, 10.0)], 3.0)
    mixed = ratio[np.isclose(level, 5.0)]
    assert ((mixed > 1.0) & (mixed < 3.0)).all()
    np.testing.assert_array_equal(cal.coupon_product_spend.draws, cal.spend.draws)


def test_redemption_ratio_is_observed_over_predicted():
    observed = np.array([1, 0, 1, 1, 0, 0])  # 3 redemptions
    predicted = np.ones(6)  # 6 predicted
    cal = fit_ratio(observed, predicted, np.ones(6), n_boot=10, seed=0)
    assert cal.ratio == pytest.approx(3 / 6)
    assert cal.apply([0.4, 3.0]).tolist() == pytest.approx([0.2, 1.0])  # clipped to a probability
    counts = fit_ratio(np.array([2, 0, 3, 1, 0, 0]), predicted, np.ones(6), n_boot=10, seed=0)  # 6 redemptions
    assert counts.ratio == pytest.approx(1.0)
    assert counts.expected_count([0.4, 3.0, -1.0]).tolist() == pytest.approx([0.4, 3.0, 0.0])  # a count: no cap


def test_the_shrunk_count_pulls_the_ratios_prediction_toward_the_mean_by_hand():
    # Predicted 0.1 for three households, 0.5 for three; counts 1, 0, 2 and 1, 2, 0: 6 redemptions over 1.8
    # predicted, ratio r = 10/3; the ratio predicts 1/3 and 5/3, the observed means are 1 and 1 (no
    # difference: beta 0), so every household's expected count is the mean, 1.
    p = np.array([0.1, 0.1, 0.1, 0.5, 0.5, 0.5])
    flat = fit_shrunk_count(np.array([1, 0, 2, 1, 2, 0]), p, np.ones(6), n_boot=10, seed=0)
    assert (flat.intercept, flat.slope) == pytest.approx((1.0, 0.0))
    assert flat.expected_count([0.1, 0.5]).tolist() == pytest.approx([1.0, 1.0])
    # Counts 0, 0, 0 and 2, 2, 2 (r = 6/1.8 again, its prediction 1/3 and 5/3): the counts differ by more
    # than the ratio predicts (beta = cov 2/3 over var 4/9 = 1.5, capped at 1): the ratio itself.
    steep = fit_shrunk_count(np.array([0, 0, 0, 2, 2, 2]), p, np.ones(6), n_boot=10, seed=0)
    assert (steep.intercept, steep.slope) == pytest.approx((0.0, 6 / 1.8))
    # Counts 0, 1, 1 and 1, 1, 2 (r = 6/1.8): the ratio's prediction goes 1/3 -> 5/3, the counts' means
    # 2/3 -> 4/3, half as far: beta 0.5 (cov 2/9 over var 4/9), so 0.5 * mean 1 + 0.5 * r * p.
    half = fit_shrunk_count(np.array([0, 1, 1, 1, 1, 2]), p, np.ones(6), n_boot=10, seed=0)
    assert (half.intercept, half.slope) == pytest.approx((0.5, 0.5 * 6 / 1.8))
    assert half.total(6, p.sum()) == pytest.approx(6.0)  # the held-out total is kept
    # Every draw keeps the intercept and slope >= 0 (beta in [0, 1]).
    assert (half.draws >= 0).all() and half.draws.shape == (10, 2)


def test_a_plan_priced_with_the_shrunk_count_by_hand():
    totals = _totals((11, 100, 500.0, 50.0, 20.0))
    plans = _plans(11)
    cal = _calibration(1.0, 0.1, 0.5, [(0.0, 0.0, 0.5), (3.0, 0.2, 1.0)])
    shrunk = ShrunkCountCalibration(0.05, 0.25, np.array([[0.05, 0.25], [0.1, 0.5]]))
    cal = dataclasses.replace(cal, redemption_count_shrunk=shrunk, redemption_model="shrunk")
    # Redemptions 0.05 * 100 + 0.25 * 20 = 10 (the ratio's 0.5 * 20 is 10 too), cost 50 + 10 * 2 = 70; the
    # second draw: 0.1 * 100 + 0.5 * 20 = 20 redemptions, cost 50 + 40 = 90 (as the ratio's 1.0 * 20).
    f = roi_forecast(totals, plans, cal, margin=0.3, interval=0.999, value_outcome="spend").iloc[0]
    assert f["expected_redemptions"] == pytest.approx(10.0) and f["cost"] == pytest.approx(70.0)
    assert f["roi_high"] == pytest.approx(30.0 / 90.0, abs=2e-3)
    assert "shrunk expected count" in interval_method(cal, 0, 0.9, "spend")
    assert "shrunk" not in interval_method(dataclasses.replace(cal, redemption_model="ratio"), 0, 0.9, "spend")
    # Another audience: 10 households with p summing to 1: the ratio prices 0.5 redemptions, the shrunk
    # count 0.05 * 10 + 0.25 * 1 = 0.75 (a low prediction is pulled up toward the mean).
    small = roi_forecast(_totals((11, 10, 0.0, 0.0, 1.0)), plans, cal, margin=0.3, interval=0.9,
                         value_outcome="spend").iloc[0]
    assert small["expected_redemptions"] == pytest.approx(0.75)
    ratio_priced = roi_forecast(_totals((11, 10, 0.0, 0.0, 1.0)), plans, dataclasses.replace(
        cal, redemption_model="ratio"), margin=0.3, interval=0.9, value_outcome="spend").iloc[0]
    assert ratio_priced["expected_redemptions"] == pytest.approx(0.5)
    # A model calibrated before the shrunk count existed refuses to give one.
    older = _calibration(1.0, 0.1, 0.5, [(0.0, 0.0, 0.5)])
    with pytest.raises(CalibrationError, match="no shrunk redemption count.*retrain"):
        dataclasses.replace(older, redemption_model="shrunk").redemptions


def test_calibration_refuses_too_little_data_and_round_trips_through_json():
    with pytest.raises(CalibrationError, match="too few"):
        fit_linear(np.arange(5.0), np.arange(5.0), np.ones(5), n_boot=5, seed=0)
    with pytest.raises(CalibrationError, match="positive predicted redemption"):
        fit_ratio(np.zeros(3), np.zeros(3), np.ones(3), n_boot=5, seed=0)
    n = 30
    cal = two_campaign_calibration(seed=1, n_boot=20)
    back = UpliftCalibration.from_json(cal.to_json())
    assert back.campaigns == (5, 6) and back.rows == n and back.n_draws == 20
    assert back.spend.intercept == cal.spend.intercept
    np.testing.assert_array_equal(back.coupon_product_spend.draws, cal.coupon_product_spend.draws)
    np.testing.assert_array_equal(back.redemption.draws, cal.redemption.draws)
    np.testing.assert_array_equal(back.redemptions.draws, cal.redemptions.draws)
    np.testing.assert_array_equal(back.redemption_count_shrunk.draws, cal.redemption_count_shrunk.draws)
    assert back.redemption_count_shrunk.intercept == cal.redemption_count_shrunk.intercept
    # Fitted on the same targeted rows and resamples as the count ratio: the same campaign deviation draws.
    np.testing.assert_array_equal(cal.redemption_count_shrunk.campaign_effects, cal.redemptions.campaign_effects)
    # Every redeemer redeemed 3 coupons: on the same resamples, 3 redemptions per redeemer in every draw.
    assert cal.redemptions.ratio == pytest.approx(3 * cal.redemption.ratio)
    np.testing.assert_allclose(cal.redemptions.draws, 3 * cal.redemption.draws)
    # A model calibrated before the count existed loads, and refuses to give an expected count.
    older = json.loads(cal.to_json())
    del older["redemption_count"]
    with pytest.raises(CalibrationError, match="no redemption-count ratio.*retrain"):
        UpliftCalibration.from_dict(older).redemptions


def test_dr_att_by_hand():
    # Targeted: 10 - 8 = 2 and 12 - 9 = 3; untargeted, odds e/(1-e) = 1: -(5 - 5) = 0 and -(6 - 4) = -2.
    # ATT = (2 + 3 + 0 - 2) / 2 targeted = 1.5.
    out = dr_att([10, 12, 5, 6], [1, 1, 0, 0], [8, 9, 5, 4], [0.5, 0.5, 0.5, 0.5], n_boot=20)
    assert out["effect"] == pytest.approx(1.5)
    assert out["n_treated"] == 2
    assert out["ci_low"] <= out["ci_high"]
    # Odds clipped at 0.99 -> 99: one untargeted household that looks targeted weighs 99.
    out = dr_att([10, 5], [1, 0], [8, 4], [0.5, 0.999], n_boot=5)
    assert out["effect"] == pytest.approx((2 - 99 * 1) / 1)
    assert np.isnan(dr_att([1.0], [0], [1.0], [0.5], n_boot=5)["effect"])


def _calibration(a: float, b: float, count_ratio: float, draws: list[tuple[float, float, float]],
                 redeemer_ratio: float | None = None) -> UpliftCalibration:
    """Draws are (intercept, slope, redemption-count ratio); the redeemer (probability) ratio is
    ``redeemer_ratio`` (default: half the count ratio, as if every redeemer redeemed two coupons)."""
    lin = np.array([(d[0], d[1]) for d in draws])
    counts = np.array([d[2] for d in draws])
    redeemer = count_ratio / 2 if redeemer_ratio is None else redeemer_ratio
    return UpliftCalibration(
        spend=LinearCalibration(a, b, lin), coupon_product_spend=LinearCalibration(0.2, 0.0, lin * 0 + [0.2, 0.0]),
        redemption=RatioCalibration(redeemer, counts / 2), campaigns=(5, 6), rows=100,
        redemption_count=RatioCalibration(count_ratio, counts))


def _totals(*campaigns: tuple[int, int, float, float, float], source: str = "campaign_target_list") -> pd.DataFrame:
    """campaign_totals rows without MC dropout draws, one per (campaign_id, audience, sum of spend uplift,
    sum of coupon-product uplift, sum of redemption probability); none: the empty frame with its columns."""
    return pd.DataFrame(
        [(c, source, n, spend, coupon, redeem, np.zeros((0, 3))) for c, n, spend, coupon, redeem in campaigns],
        columns=["campaign_id", "audience_source", "audience", "sum_uplift_spend", "sum_uplift_coupon_product_spend",
                 "sum_p_redeem", "mc"])


def _plans(*campaign_ids: int) -> pd.DataFrame:
    """gold.campaign_plans rows: Type B, 2017-07-12 to 2017-08-13, contact 0.5, 2.0 per redemption."""
    n = len(campaign_ids)
    return pd.DataFrame({"campaign_id": list(campaign_ids), "campaign_type": ["Type B"] * n,
                         "start_date": [dt.date(2017, 7, 12)] * n, "end_date": [dt.date(2017, 8, 13)] * n,
                         "contact_cost": [0.5] * n, "redemption_cost": [2.0] * n})


def test_roi_forecast_by_hand():
    totals = _totals((11, 100, 500.0, 50.0, 20.0))
    plans = _plans(11)
    # Point: revenue 1 * 100 + 0.1 * 500 = 150, gross profit 0.3 * 150 = 45, redemptions (the count ratio,
    # not the redeemer ratio 0.25) 0.5 * 20 = 10,
    # cost 100 * 0.5 + 10 * 2 = 70, ROI (45 - 70) / 70.
    # Draws: (a, b, r) = (0, 0, 0.5) -> gp 0, cost 70, ROI -1; (3, 0.2, 1.0) -> revenue 400, gp 120,
    # cost 50 + 20 * 2 = 90, ROI 30 / 90.
    cal = _calibration(1.0, 0.1, 0.5, [(0.0, 0.0, 0.5), (3.0, 0.2, 1.0)])
    f = roi_forecast(totals, plans, cal, margin=0.3, interval=0.999, value_outcome="spend").iloc[0]
    assert f["incremental_revenue"] == pytest.approx(150.0)
    assert f["incremental_coupon_product_revenue"] == pytest.approx(0.2 * 100)
    assert f["incremental_gross_profit"] == pytest.approx(45.0)
    assert f["expected_redemptions"] == pytest.approx(10.0)
    assert f["cost"] == pytest.approx(70.0)
    assert f["roi"] == pytest.approx(-25.0 / 70.0)
    assert f["roi_low"] == pytest.approx(-1.0, abs=2e-3)
    assert f["roi_high"] == pytest.approx(30.0 / 90.0, abs=2e-3)
    assert f["incremental_gross_profit_low"] == pytest.approx(0.0, abs=0.2)
    assert f["incremental_gross_profit_high"] == pytest.approx(120.0, abs=0.2)
    assert f["incremental_profit_low"] == pytest.approx(0.0 - 70.0, abs=0.2)
    assert f["incremental_profit_high"] == pytest.approx(120.0 - 90.0, abs=0.2)
    assert f["campaign_type"] == "Type B"
    assert f["value_outcome"] == "spend"


def test_the_value_outcome_chooses_the_line_that_prices_the_audience():
    totals = _totals((11, 100, 500.0, 50.0, 20.0))
    plans = _plans(11)
    # _calibration's coupon-product line: level 0.2 per household, slope 0, in both draws. Valued on coupon
    # products: revenue 0.2 * 100 + 0 * 50 = 20, gross profit 6; cost as in test_roi_forecast_by_hand, 70
    # (draws: 70 and 90). ROI (6 - 70) / 70; draws (6 - 70) / 70 and (6 - 90) / 90.
    cal = _calibration(1.0, 0.1, 0.5, [(0.0, 0.0, 0.5), (3.0, 0.2, 1.0)])
    f = roi_forecast(totals, plans, cal, margin=0.3, interval=0.999, value_outcome="coupon_product_spend").iloc[0]
    assert (f["incremental_revenue"], f["incremental_coupon_product_revenue"]) == pytest.approx((20.0, 20.0))
    assert f["incremental_gross_profit"] == pytest.approx(6.0) and f["cost"] == pytest.approx(70.0)
    assert f["roi"] == pytest.approx(-64.0 / 70.0)
    assert (f["roi_low"], f["roi_high"]) == pytest.approx((-84.0 / 90.0, -64.0 / 70.0), abs=2e-3)
    assert (f["incremental_gross_profit_low"], f["incremental_gross_profit_high"]) == pytest.approx((6.0, 6.0))
    assert f["value_outcome"] == "coupon_product_spend"
    # The plan's profit draws and risk quantiles price the same line: 6 - 70 and 6 - 90.
    np.testing.assert_allclose(plan_profit_draws(totals, plans, cal, margin=0.3, value_outcome="coupon_product_spend"),
                               [-64.0, -84.0])
    assert roi_quantiles(totals, plans, cal, margin=0.3, quantile=0.0, value_outcome="coupon_product_spend") == \
        pytest.approx({11: -84.0 / 90.0})
    with pytest.raises(ValueError, match="value_outcome must be one of coupon_product_spend, spend, got 'redeem'"):
        roi_forecast(totals, plans, cal, margin=0.3, interval=0.9, value_outcome="redeem")


def test_roi_forecast_draws_carry_the_new_campaigns_own_deviation():
    totals = _totals((11, 100, 500.0, 50.0, 20.0))
    plans = _plans(11)
    line = _calibration(1.0, 0.1, 0.5, [(0.0, 0.0, 0.5), (3.0, 0.2, 1.0)])
    # Draw 1: level 0 + 1 per household, ratio 0.5 x e^0; draw 2: level 3 - 1, ratio 1.0 x e^(log 1.5).
    cal = UpliftCalibration(
        spend=LinearCalibration(1.0, 0.1, line.spend.draws, 1.0, np.array([1.0, -1.0])),
        coupon_product_spend=line.coupon_product_spend, redemption=line.redemption, campaigns=(5, 6), rows=100,
        redemption_count=RatioCalibration(0.5, line.redemptions.draws, 0.7, np.array([0.0, math.log(1.5)])))
    f = roi_forecast(totals, plans, cal, margin=0.3, interval=0.999, value_outcome="spend").iloc[0]
    # The point is the line's (as in test_roi_forecast_by_hand): the deviations have no direction.
    assert f["incremental_gross_profit"] == pytest.approx(45.0) and f["cost"] == pytest.approx(70.0)
    # Draw 1: revenue 1 * 100 = 100, gp 30, cost 50 + 0.5 * 20 * 2 = 70, ROI -40 / 70.
    # Draw 2: revenue 2 * 100 + 0.2 * 500 = 300, gp 90, cost 50 + 1.5 * 20 * 2 = 110, ROI -20 / 110.
    assert f["roi_low"] == pytest.approx(-40.0 / 70.0, abs=2e-3)
    assert f["roi_high"] == pytest.approx(-20.0 / 110.0, abs=2e-3)
    assert f["incremental_gross_profit_low"] == pytest.approx(30.0, abs=0.2)
    assert f["incremental_gross_profit_high"] == pytest.approx(90.0, abs=0.2)
    assert f["incremental_profit_low"] == pytest.approx(-40.0, abs=0.2)
    assert f["incremental_profit_high"] == pytest.approx(-20.0, abs=0.2)
    back = UpliftCalibration.from_json(cal.to_json())
    np.testing.assert_array_equal(back.spend.campaign_effects, [1.0, -1.0])
    assert back.redemptions.between_campaign_sd == 0.7 and back.has_campaign_effects
    assert "own deviation (between-campaign sd 1 of spend per household" in interval_method(cal, 0, 0.9, "spend")
    assert "without a new campaign's own deviation" in interval_method(line, 0, 0.9, "spend")


def test_the_risk_quantile_of_roi_and_the_campaigns_it_leaves_out():
    totals = _totals((11, 100, 500.0, 50.0, 20.0), (12, 10, 0.0, 0.0, 2.0), source="budget_plan")
    plans = _plans(11, 12)
    cal = _calibration(1.0, 0.1, 0.5, [(0.0, 0.0, 0.5), (3.0, 0.2, 1.0)])
    # Campaign 11, as in test_roi_forecast_by_hand: ROI -1 and 30 / 90 in the two draws; the 0.25
    # quantile lies a quarter of the way: -1 + 0.25 * (1 + 1 / 3).
    # Campaign 12: revenue 0 and 30, gp 0 and 9; cost 5 + 0.5 * 2 * 2 = 7 and 5 + 1 * 2 * 2 = 9: ROI -1 and 0.
    quantiles = roi_quantiles(totals, plans, cal, margin=0.3, quantile=0.25, value_outcome="spend")
    assert quantiles == pytest.approx({11: -1.0 + 0.25 * (4.0 / 3.0), 12: -1.0 + 0.25 * 1.0})
    # Below the bar and not committed by a minimum budget: left out.
    assert campaigns_at_risk(quantiles, 0.0, committed=set()) == pytest.approx(quantiles)
    assert campaigns_at_risk(quantiles, 0.0, committed={12}) == pytest.approx({11: quantiles[11]})
    assert campaigns_at_risk(quantiles, -0.7, committed=set()) == pytest.approx({12: quantiles[12]})
    assert campaigns_at_risk({13: math.nan}, 0.0, committed=set()) == {}


def test_the_plans_profit_shares_the_line_and_sums_campaigns_that_deviate_independently():
    totals = _totals((11, 100, 500.0, 50.0, 20.0), (12, 10, 0.0, 0.0, 2.0), source="budget_plan")
    plans = _plans(11, 12)
    cal = _calibration(1.0, 0.1, 0.5, [(0.0, 0.0, 0.5), (3.0, 0.2, 1.0)])
    # No campaign effect: draw by draw the sum of the campaigns' profits (test_the_risk_quantile_of_roi_...):
    # draw 1: (0 - 70) + (0 - 7) = -77; draw 2: (120 - 90) + (9 - 9) = 30.
    np.testing.assert_allclose(plan_profit_draws(totals, plans, cal, margin=0.3, value_outcome="spend"), [-77.0, 30.0])
    assert plan_profit_interval(totals, plans, cal, 0.3, 0.999, value_outcome="spend") == pytest.approx(
        (-77.0, 30.0), abs=0.2)
    assert list(plan_profit_draws(_totals(), plans, cal, margin=0.3, value_outcome="spend")) == [0.0, 0.0]  # funds nothing

    # With a campaign effect: 40 campaigns of one household each, a fixed line (level 1, no slope, no
    # redemptions) and 4,000 stored deviations of sd 2. Gross profit per campaign 0.3 * (1 + u), contact 0.5.
    rng = np.random.default_rng(7)
    effects = rng.normal(0.0, 2.0, 4000)
    k = len(effects)
    flat = UpliftCalibration(
        spend=LinearCalibration(1.0, 0.0, np.tile([1.0, 0.0], (k, 1)), 2.0, effects),
        coupon_product_spend=LinearCalibration(0.0, 0.0, np.zeros((k, 2))),
        redemption=RatioCalibration(0.0, np.zeros(k)), campaigns=(5, 6), rows=100,
        redemption_count=RatioCalibration(0.0, np.zeros(k), 0.0, np.zeros(k)))
    many = _totals(*[(c, 1, 0.0, 0.0, 0.0) for c in range(100, 140)], source="budget_plan")
    total = plan_profit_draws(many, _plans(*range(100, 140)), flat, margin=0.3, value_outcome="spend")
    # The mean is the line's: every campaign uses every stored deviation once.
    assert total.mean() == pytest.approx(40 * (0.3 * (1.0 + effects.mean()) - 0.5))
    # Independent deviations: variance 40 x 0.3^2 x var(u), not the 40^2 x of campaigns that all deviate together.
    ratio = total.var() / (40 * 0.09 * effects.var())
    assert 0.8 < ratio < 1.25, ratio
    # A campaign alone has the distribution of its own interval (the stored deviations); the total is reproducible.
    alone = plan_profit_draws(many.iloc[:1], _plans(100), flat, margin=0.3, value_outcome="spend")
    np.testing.assert_allclose(np.sort(alone), np.sort(0.3 * (1.0 + effects) - 0.5))
    np.testing.assert_array_equal(total, plan_profit_draws(many, _plans(*range(100, 140)), flat, margin=0.3, value_outcome="spend"))


def test_roi_forecast_of_a_plan_that_funds_nothing_is_empty_with_its_columns():
    """No pair worth its cost (as on the semi-synthetic random_null_heavy scenario): no row, not a crash."""
    totals = _totals()
    plans = _plans(11)
    f = roi_forecast(totals, plans, _calibration(1.0, 0.1, 0.5, [(0.0, 0.0, 0.5)]), margin=0.3, interval=0.9,
                     value_outcome="spend")
    assert f.empty
    assert {"campaign_id", "roi", "cost", "expected_redemptions", "campaign_type", "start_date"} <= set(f.columns)


def test_accuracy_rows_by_hand():
    forecast = pd.DataFrame({
        "run_id": ["r1"], "campaign_id": [13], "campaign_type": ["Type A"], "start_date": [dt.date(2017, 8, 8)],
        "end_date": [dt.date(2017, 9, 24)], "audience": [200], "incremental_revenue": [400.0],
        "incremental_gross_profit": [120.0], "incremental_gross_profit_low": [-30.0],
        "incremental_gross_profit_high": [210.0], "roi": [0.1], "roi_low": [-0.5], "roi_high": [0.6],
        "model_version": ["3"], "expected_redemptions": [5.0], "cost": [110.0],
    })
    realized = {13: RealizedEffect(13, att=1.5, att_low=-0.5, att_high=3.0, naive=40.0, treated=200, redemptions=8)}
    row = accuracy_rows(forecast, realized, contact_cost={13: 0.5}, redemption_cost={13: 2.0}).iloc[0]
    # Margin 120 / 400 = 0.3; forecast revenue interval [-30 / 0.3, 210 / 0.3] = [-100, 700].
    # Realized revenue 1.5 * 200 = 300 in [-100, 600]; naive 40 * 200 = 8000.
    # Realized cost 200 * 0.5 + 8 * 2 = 116; ROI (0.3 * 300 - 116) / 116.
    assert row["forecast_incremental_revenue_low"] == pytest.approx(-100.0)
    assert row["forecast_incremental_revenue_high"] == pytest.approx(700.0)
    assert row["realized_incremental_revenue"] == pytest.approx(300.0)
    assert row["realized_incremental_revenue_low"] == pytest.approx(-100.0)
    assert row["realized_incremental_revenue_high"] == pytest.approx(600.0)
    assert row["naive_incremental_revenue"] == pytest.approx(8000.0)
    assert row["error"] == pytest.approx(100.0) and row["absolute_error"] == pytest.approx(100.0)
    assert bool(row["interval_covers_realized"]) is True
    assert row["realized_roi"] == pytest.approx((90.0 - 116.0) / 116.0)
    assert (row["forecast_redemptions"], row["realized_redemptions"]) == (5.0, 8.0)
    assert (row["forecast_cost"], row["realized_cost"]) == (110.0, pytest.approx(116.0))
    assert row["realized_roi_low"] == pytest.approx((-30.0 - 116.0) / 116.0)
    assert row["realized_roi_high"] == pytest.approx((180.0 - 116.0) / 116.0)
    # A campaign without a realized effect is left out.
    assert accuracy_rows(forecast, {}, {13: 0.5}, {13: 2.0}).empty


def test_accuracy_judges_both_intervals_and_reports_the_placebo():
    forecast = pd.DataFrame({
        "run_id": ["r1"], "campaign_id": [13], "campaign_type": ["Type A"], "start_date": [dt.date(2017, 8, 8)],
        "end_date": [dt.date(2017, 9, 24)], "audience": [100], "incremental_revenue": [500.0],
        "incremental_gross_profit": [150.0], "incremental_gross_profit_low": [120.0],
        "incremental_gross_profit_high": [180.0], "roi": [0.1], "roi_low": [-0.5], "roi_high": [0.6],
        "model_version": ["3"], "expected_redemptions": [0.0], "cost": [50.0],
    })
    realized = {13: RealizedEffect(13, att=2.0, att_low=-1.0, att_high=6.0, naive=40.0, treated=100, redemptions=0)}
    placebo = {13: RealizedEffect(13, att=0.5, att_low=-1.5, att_high=2.5, naive=9.0, treated=100, redemptions=0)}
    row = accuracy_rows(forecast, realized, {13: 0.5}, {13: 2.0}, placebo, forecast_level=0.90).iloc[0]
    # Forecast 500 in [400, 600] (90%); realized 200 in [-100, 600] (95%).
    assert bool(row["interval_covers_realized"]) is False  # 200 is not in [400, 600]
    assert bool(row["realized_covers_forecast"]) is True  # 500 is in [-100, 600]
    assert bool(row["intervals_overlap"]) is True
    # SEs: forecast 200 / (2 x 1.644854) = 60.795; realized 700 / (2 x 1.959964) = 178.575;
    # z = 300 / sqrt(60.795^2 + 178.575^2) = 300 / 188.640 = 1.5903.
    assert row["error_z"] == pytest.approx(300.0 / math.hypot(200 / (2 * 1.644854), 700 / (2 * 1.959964)), rel=1e-5)
    assert bool(row["consistent_at_90"]) is True
    assert (row["placebo_incremental_revenue"], row["placebo_incremental_revenue_low"],
            row["placebo_incremental_revenue_high"]) == pytest.approx((50.0, -150.0, 250.0))
    # Without a placebo estimate the columns are empty.
    assert accuracy_rows(forecast, realized, {13: 0.5}, {13: 2.0}).iloc[0]["placebo_incremental_revenue"] is None


def test_household_scores_transform_by_hand(spark):
    from promo_roi.scoring.forecast import household_scores

    raw = spark.createDataFrame(
        [(11, 1, 0.4, 0.1, 20.0, 15.0, 200.0, 180.0, 0.3, 5.0, 20.0, 0.5),
         (12, 2, 0.9, 0.2, 10.0, 10.0, 90.0, 100.0, 0.7, 0.0, -10.0, 0.95)],
        "campaign_id long, household_id long, p_redeem_t1 double, p_redeem_t0 double, "
        "coupon_product_spend_t1 double, coupon_product_spend_t0 double, spend_t1 double, spend_t0 double, "
        "uplift_redeem double, uplift_coupon_product_spend double, uplift_spend double, propensity double")
    units = spark.createDataFrame([(11, 0.5, 2.0, "x"), (12, 1.0, 3.0, "y")],
                                  "campaign_id long, contact_cost double, redemption_cost double, other string")
    cal = _calibration(4.0, 0.5, 2.0, [(4.0, 0.5, 2.0)], redeemer_ratio=1.5)
    rows = {r.household_id: r for r in raw.transform(
        household_scores(units, cal, 0.3, dt.date(2017, 7, 1), "run-1", "7", value_outcome="spend",
                         overlap_band=(0.1, 0.9))).collect()}
    # Household 1: calibrated uplift 4 + 0.5 * 20 = 14, gross profit 0.3 * 14 = 4.2; redemption
    # probability 1.5 * 0.4 = 0.6, expected redemptions 2 * 0.4 = 0.8, expected cost 0.5 + 0.8 * 2 = 2.1.
    assert rows[1].calibrated_uplift_spend == pytest.approx(14.0)
    assert rows[1].incremental_gross_profit == pytest.approx(4.2)
    assert rows[1].calibrated_p_redeem == pytest.approx(0.6)
    assert rows[1].expected_redemptions == pytest.approx(0.8)
    assert rows[1].expected_cost == pytest.approx(2.1)
    # Household 2: uplift 4 + 0.5 * -10 = -1, gross profit -0.3; probability 1.5 * 0.9 = 1.35 capped at 1,
    # expected redemptions 2 * 0.9 = 1.8 (a count, not capped), expected cost 1 + 1.8 * 3 = 6.4.
    assert rows[2].calibrated_uplift_spend == pytest.approx(-1.0)
    assert rows[2].incremental_gross_profit == pytest.approx(-0.3)
    assert rows[2].calibrated_p_redeem == pytest.approx(1.0)
    assert rows[2].expected_redemptions == pytest.approx(1.8)
    assert rows[2].expected_cost == pytest.approx(6.4)
    assert (rows[1].run_date, rows[1].run_id, rows[1].model_version) == (dt.date(2017, 7, 1), "run-1", "7")
    assert (rows[1].p_redeem_targeted, rows[1].spend_untargeted) == (0.4, 180.0)
    assert {r.value_outcome for r in rows.values()} == {"spend"}
    # Propensity 0.5 lies in the band [0.1, 0.9], 0.95 does not (its effect is extrapolated from one arm).
    assert [(r.propensity, r.in_overlap) for _, r in sorted(rows.items())] == [(0.5, True), (0.95, False)]
    # Valued on coupon products: the coupon line, 0.2 + 0 x uplift, for both households; gross profit 0.06.
    # Costs do not depend on what a household is valued on.
    coupon = {r.household_id: r for r in raw.transform(household_scores(
        units, cal, 0.3, dt.date(2017, 7, 1), "run-1", "7", value_outcome="coupon_product_spend",
        overlap_band=(0.1, 0.9))).collect()}
    assert [(r.calibrated_uplift_coupon_product_spend, r.incremental_gross_profit, r.expected_cost)
            for _, r in sorted(coupon.items())] == [pytest.approx((0.2, 0.06, 2.1)), pytest.approx((0.2, 0.06, 6.4))]
    assert {r.value_outcome for r in coupon.values()} == {"coupon_product_spend"}
    assert coupon[1].calibrated_uplift_spend == pytest.approx(14.0)


def test_campaign_totals_sums_each_plan_and_each_monte_carlo_draw_by_hand(spark):
    from promo_roi.scoring.forecast import campaign_totals

    chosen = spark.createDataFrame(
        [(11, "target_list", 10.0, 1.0, 0.5, [8.0, 12.0], [0.5, 1.5], [0.4, 0.6]),
         (11, "target_list", -2.0, 3.0, 0.25, [-1.0, -3.0], [2.0, 4.0], [0.2, 0.3]),
         (12, "scored", 5.0, 0.0, 1.0, [5.0, 6.0], [0.0, 1.0], [0.9, 1.0])],
        "campaign_id long, audience_source string, uplift_spend double, uplift_coupon_product_spend double, "
        "p_redeem_t1 double, mc_uplift_spend array<double>, mc_uplift_coupon_product_spend array<double>, "
        "mc_p_redeem array<double>")
    totals = campaign_totals(chosen).set_index("campaign_id")
    # Campaign 11: two households; spend uplift 10 - 2 = 8, coupon 1 + 3 = 4, redemption probability 0.75.
    assert (totals.at[11, "audience"], totals.at[11, "audience_source"]) == (2, "target_list")
    assert (totals.at[11, "sum_uplift_spend"], totals.at[11, "sum_uplift_coupon_product_spend"],
            totals.at[11, "sum_p_redeem"]) == pytest.approx((8.0, 4.0, 0.75))
    # Per draw k, a row (spend, coupon, redeem): draw 0 is (8 - 1, 0.5 + 2, 0.4 + 0.2), draw 1 (12 - 3, 1.5 + 4,
    # 0.6 + 0.3).
    np.testing.assert_allclose(totals.at[11, "mc"], [[7.0, 2.5, 0.6], [9.0, 5.5, 0.9]])
    assert totals.at[12, "audience"] == 1
    np.testing.assert_allclose(totals.at[12, "mc"], [[5.0, 0.0, 0.9], [6.0, 1.0, 1.0]])


def test_published_scores_priced_again_by_the_other_redemption_model_by_hand(spark):
    from promo_roi.scoring.forecast import repriced

    scores = spark.createDataFrame(
        [(11, 1, 0.4, 0.8, 2.1, 4.2), (12, 2, 0.0, 0.0, 1.0, -0.3)],
        "campaign_id long, household_id long, p_redeem_targeted double, expected_redemptions double, "
        "expected_cost double, incremental_gross_profit double")
    units = spark.createDataFrame([(11, 0.5, 2.0), (12, 1.0, 3.0)],
                                  "campaign_id long, contact_cost double, redemption_cost double")
    cal = _calibration(4.0, 0.5, 2.0, [(4.0, 0.5, 2.0)])
    shrunk = dataclasses.replace(cal, redemption_model="shrunk", redemption_count_shrunk=ShrunkCountCalibration(
        0.3, 1.5, np.array([[0.3, 1.5]])))
    out = scores.transform(repriced(units, shrunk))
    assert out.columns == scores.columns
    rows = {r.household_id: r for r in out.collect()}
    # Household 1: 0.3 + 1.5 * 0.4 = 0.9 redemptions (the ratio's 2 * 0.4 = 0.8), cost 0.5 + 0.9 * 2 = 2.3.
    # Household 2: p = 0, still 0.3 expected redemptions, cost 1 + 0.3 * 3 = 1.9. The value is untouched.
    assert [(r.expected_redemptions, r.expected_cost, r.incremental_gross_profit, r.p_redeem_targeted)
            for _, r in sorted(rows.items())] == [pytest.approx((0.9, 2.3, 4.2, 0.4)),
                                                   pytest.approx((0.3, 1.9, -0.3, 0.0))]
    # Priced by the ratio the published numbers come back.
    ratio = {r.household_id: (r.expected_redemptions, r.expected_cost) for r in scores.transform(
        repriced(units, cal)).collect()}
    assert ratio == {1: pytest.approx((0.8, 2.1)), 2: pytest.approx((0.0, 1.0))}
