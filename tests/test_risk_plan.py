"""The risk-aware plan (planning.risk: quantile) on tiny inline scores, hand-computed.

Three campaigns of four households each, every pair costing 1 (contact only), margin 0.5, a calibration
line effect = uplift (slope 1, intercept 0) whose four draws differ only by the new campaign's own
deviation u = -2, -1, 1, 2 per household:

- campaign 1, raw uplift 10 per household: ROI per draw (0.5 (4u + 40) - 4) / 4 = 0.5u + 4 =
  3, 3.5, 4.5, 5; at the 0.1 quantile 3 + 0.3 * 0.5 = 3.15: funded.
- campaign 2, raw uplift 2.2: ROI 0.5u + 0.1 = -0.9, -0.4, 0.6, 1.1; at 0.1: -0.9 + 0.3 * 0.5 = -0.75,
  below break-even: left out, although its expected profit (0.1 per pair) is positive.
- campaign 3, as campaign 2 but with a planner's minimum budget of 2: a commitment, kept (campaign 2's
  minimum of 0 is none).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from promo_roi.causal.calibration import LinearCalibration, RatioCalibration, UpliftCalibration
from promo_roi.config import PlanningConfig
from promo_roi.scoring.plan import plan_night

RUN_DATE = dt.date(2017, 7, 1)
MARGIN = 0.5
UPLIFT = {1: 10.0, 2: 2.2, 3: 2.2}
EXPECTED = PlanningConfig(mode="fixed_budget", total_budget=100.0, target_roi=0.0, household_cap=3,
                          price_grid=8, sample_households=1000)
RISKY = dataclasses.replace(EXPECTED, risk="quantile", risk_quantile=0.1)


def _calibration() -> UpliftCalibration:
    line = LinearCalibration(0.0, 1.0, np.array([[0.0, 1.0]] * 4), 1.58, np.array([-2.0, -1.0, 1.0, 2.0]))
    ratio = RatioCalibration(1.0, np.ones(4), 0.0, np.zeros(4))
    return UpliftCalibration(spend=line, coupon_product_spend=line, redemption=ratio, campaigns=(5, 6), rows=100,
                             redemption_count=ratio)


def _scores(spark):
    rows = [{"household_id": h, "campaign_id": c, "incremental_gross_profit": MARGIN * uplift, "expected_cost": 1.0,
             "expected_redemptions": 0.0, "uplift_spend": uplift, "uplift_coupon_product_spend": 0.0,
             "p_redeem_targeted": 0.0, "in_overlap": h != 4}
            for c, uplift in UPLIFT.items() for h in range(1, 5)]
    return spark.createDataFrame(pd.DataFrame(rows))


def _plans() -> pd.DataFrame:
    return pd.DataFrame({
        "campaign_id": [1, 2, 3], "campaign_type": ["TypeA"] * 3, "start_date": [dt.date(2017, 7, 12)] * 3,
        "end_date": [dt.date(2017, 8, 12)] * 3, "contact_cost": [1.0] * 3, "redemption_cost": [0.0] * 3,
        # Campaign 2's minimum of 0 commits nothing: the rule may still leave it out.
        "min_budget": [None, 0.0, 2.0], "max_budget": [None] * 3, "coupon_inventory": [None] * 3,
    })


def _plan(spark, planning):
    night = plan_night(_scores(spark), _plans(), planning, _calibration(), MARGIN, 0.9, RUN_DATE, "run-1", "1",
                       value_outcome="spend")
    chosen = night.targeting.toPandas()
    night.selected.unpersist()
    # Every targeted pair carries its scored pair's overlap flag (household 4 is outside the band in _scores).
    assert (chosen["in_overlap"] == (chosen["household_id"] != 4)).all()
    plan = night.budget_plan.set_index("campaign_id").sort_index()
    return plan, {c: sorted(g["household_id"]) for c, g in chosen.groupby("campaign_id")}


def test_expected_profit_funds_every_campaign_and_reports_no_risk(spark):
    plan, chosen = _plan(spark, EXPECTED)
    assert chosen == {1: [1, 2, 3, 4], 2: [1, 2, 3, 4], 3: [1, 2, 3, 4]}
    assert plan[["risk_quantile", "risk_quantile_roi", "excluded_by_risk"]].isna().all().all()


def test_the_risk_rule_leaves_out_the_campaign_likely_to_lose_and_keeps_a_commitment(spark):
    plan, chosen = _plan(spark, RISKY)
    assert chosen == {1: [1, 2, 3, 4], 3: [1, 2, 3, 4]}
    assert plan["excluded_by_risk"].tolist() == [False, True, False]
    assert (plan["risk_quantile"] == 0.1).all()
    assert plan["risk_quantile_roi"].tolist() == pytest.approx([3.15, -0.75, -0.75])
    assert plan.loc[2, "audience"] == 0 and plan.loc[2, "budget"] == 0.0
    assert plan.loc[1, "budget"] == pytest.approx(4.0) and plan.loc[3, "budget"] == pytest.approx(4.0)
    # The plan's ROI interval (5% to 95% of the same draws) for the funded campaign: 0.5u + 4.
    assert plan.loc[1, "roi_low"] == pytest.approx(3.0 + 0.15 * 0.5) and plan.loc[1, "roi_high"] == pytest.approx(5.0 - 0.15 * 0.5)


def test_the_configured_quantile_is_the_one_judged(spark):
    # At the 0.35 quantile campaign 2 is still below 0 (-0.9 + 1.05 * 0.5 = -0.375); at 0.45,
    # -0.4 + 0.35 * 1.0 = -0.05: still out. Only the median and above would fund it.
    plan, _ = _plan(spark, dataclasses.replace(RISKY, risk_quantile=0.45))
    assert plan.loc[2, "risk_quantile_roi"] == pytest.approx(-0.05)
    assert bool(plan.loc[2, "excluded_by_risk"])
