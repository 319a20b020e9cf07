"""Uplift calibration, the DR effect on the targeted, and the forecast / backtest arithmetic (hand-computed)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from promo_roi.causal.calibration import (
    CalibrationError,
    LinearCalibration,
    RatioCalibration,
    UpliftCalibration,
    fit_linear,
    fit_ratio,
    fit_uplift_calibration,
)
from promo_roi.causal.metrics import dr_att
from promo_roi.scoring.backtest import RealizedEffect, accuracy_rows
from promo_roi.scoring.job import roi_forecast


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


def test_redemption_ratio_is_observed_over_predicted():
    observed = np.array([1, 0, 1, 1, 0, 0])  # 3 redemptions
    predicted = np.ones(6)  # 6 predicted
    cal = fit_ratio(observed, predicted, np.ones(6), n_boot=10, seed=0)
    assert cal.ratio == pytest.approx(3 / 6)
    assert cal.apply([0.4, 3.0]).tolist() == pytest.approx([0.2, 1.0])  # clipped to a probability


def test_calibration_refuses_too_little_data_and_round_trips_through_json():
    with pytest.raises(CalibrationError, match="too few"):
        fit_linear(np.arange(5.0), np.arange(5.0), np.ones(5), n_boot=5, seed=0)
    with pytest.raises(CalibrationError, match="positive predicted redemption"):
        fit_ratio(np.zeros(3), np.zeros(3), np.ones(3), n_boot=5, seed=0)
    n = 30
    rng = np.random.default_rng(1)
    cal = fit_uplift_calibration(
        tau_spend=rng.normal(size=n), phi_spend=rng.normal(size=n), tau_coupon=rng.normal(size=n),
        phi_coupon=rng.normal(size=n), targeted=np.arange(n) % 2, redeemed=(np.arange(n) % 4 == 1),
        p_redeem_targeted=np.full(n, 0.3), campaign=np.array([5] * 15 + [6] * 15), n_boot=20, seed=0)
    back = UpliftCalibration.from_json(cal.to_json())
    assert back.campaigns == (5, 6) and back.rows == n and back.n_draws == 20
    assert back.spend.intercept == cal.spend.intercept
    np.testing.assert_array_equal(back.coupon_product_spend.draws, cal.coupon_product_spend.draws)
    np.testing.assert_array_equal(back.redemption.draws, cal.redemption.draws)


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


def _calibration(a: float, b: float, ratio: float, draws: list[tuple[float, float, float]]) -> UpliftCalibration:
    lin = np.array([(d[0], d[1]) for d in draws])
    return UpliftCalibration(
        spend=LinearCalibration(a, b, lin), coupon_product_spend=LinearCalibration(0.2, 0.0, lin * 0 + [0.2, 0.0]),
        redemption=RatioCalibration(ratio, np.array([d[2] for d in draws])), campaigns=(5, 6), rows=100)


def test_roi_forecast_by_hand():
    totals = pd.DataFrame({
        "campaign_id": [11], "audience_source": ["campaign_target_list"], "audience": [100],
        "sum_uplift_spend": [500.0], "sum_uplift_coupon_product_spend": [50.0], "sum_p_redeem": [20.0],
        "mc": [np.zeros((0, 3))],
    })
    plans = pd.DataFrame({"campaign_id": [11], "campaign_type": ["Type B"], "start_date": [dt.date(2017, 7, 12)],
                          "end_date": [dt.date(2017, 8, 13)], "contact_cost": [0.5], "redemption_cost": [2.0]})
    # Point: revenue 1 * 100 + 0.1 * 500 = 150, gross profit 0.3 * 150 = 45, redemptions 0.5 * 20 = 10,
    # cost 100 * 0.5 + 10 * 2 = 70, ROI (45 - 70) / 70.
    # Draws: (a, b, r) = (0, 0, 0.5) -> gp 0, cost 70, ROI -1; (3, 0.2, 1.0) -> revenue 400, gp 120,
    # cost 50 + 20 * 2 = 90, ROI 30 / 90.
    cal = _calibration(1.0, 0.1, 0.5, [(0.0, 0.0, 0.5), (3.0, 0.2, 1.0)])
    f = roi_forecast(totals, plans, cal, margin=0.3, interval=0.999).iloc[0]
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


def test_accuracy_rows_by_hand():
    forecast = pd.DataFrame({
        "run_id": ["r1"], "campaign_id": [13], "campaign_type": ["Type A"], "start_date": [dt.date(2017, 8, 8)],
        "end_date": [dt.date(2017, 9, 24)], "audience": [200], "incremental_revenue": [400.0],
        "incremental_gross_profit": [120.0], "incremental_gross_profit_low": [-30.0],
        "incremental_gross_profit_high": [210.0], "roi": [0.1], "roi_low": [-0.5], "roi_high": [0.6],
        "model_version": ["3"],
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
    assert row["realized_roi_low"] == pytest.approx((-30.0 - 116.0) / 116.0)
    assert row["realized_roi_high"] == pytest.approx((180.0 - 116.0) / 116.0)
    # A campaign without a realized effect is left out.
    assert accuracy_rows(forecast, {}, {13: 0.5}, {13: 2.0}).empty
