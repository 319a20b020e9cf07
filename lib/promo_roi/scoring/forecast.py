"""From raw model outputs to calibrated household scores and per-campaign ROI forecasts.

Transforms only (DataFrames or pandas in, out); the scoring job and the
backtest both call them, so a backtest forecasts exactly what the night would
have published.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from promo_roi.causal.calibration import VALUED_BY, LinearCalibration, UpliftCalibration, campaign_effect_order
from promo_roi.config import VALUE_OUTCOMES

# The sums :func:`campaign_totals` takes per plan, in the column order of its per-draw array ``mc``:
# (what is summed, the score column, its sum's column, the score's Monte Carlo draw column).
_SUMS = (
    ("spend", "uplift_spend", "sum_uplift_spend", "mc_uplift_spend"),
    ("coupon_product_spend", "uplift_coupon_product_spend", "sum_uplift_coupon_product_spend",
     "mc_uplift_coupon_product_spend"),
    ("redeem", "p_redeem_t1", "sum_p_redeem", "mc_p_redeem"),
)
# Where each sum sits in a row's per-draw array (the value outcomes' uplift sums and the redemption sum).
_DRAW_COLUMN = {name: j for j, (name, *_) in enumerate(_SUMS)}


def audiences(bronze_campaigns: DataFrame, scores: DataFrame) -> DataFrame:
    """Who a plan targets: its known target list where there is one, else every scored household."""
    listed = bronze_campaigns.select("campaign_id", "household_id").distinct().withColumn("listed", F.lit(True))
    has_list = listed.select("campaign_id").distinct().withColumn("has_list", F.lit(True))
    return (
        scores.join(F.broadcast(has_list), "campaign_id", "left")
        .join(listed, ["campaign_id", "household_id"], "left")
        .filter(F.col("has_list").isNull() | F.col("listed").isNotNull())
        .withColumn("audience_source", F.when(F.col("has_list"), F.lit("campaign_target_list"))
                    .otherwise(F.lit("all_households")))
        .drop("listed", "has_list")
    )


def value_line(calibration: UpliftCalibration, value_outcome: str) -> LinearCalibration:
    """The calibration line of the outcome a household is valued on (``scoring.value_outcome``)."""
    if value_outcome not in VALUE_OUTCOMES:
        raise ValueError(f"value_outcome must be one of {', '.join(VALUE_OUTCOMES)}, got {value_outcome!r}")
    return getattr(calibration, value_outcome)


def calibrated_uplift(calibration: UpliftCalibration, outcome: str) -> Column:
    """The champion's calibrated uplift of a scored pair on ``outcome``: ``a + b * uplift_<outcome>``."""
    line = value_line(calibration, outcome)
    return F.lit(line.intercept) + F.lit(line.slope) * F.col(f"uplift_{outcome}")


def calibrated_redemption(calibration: UpliftCalibration) -> Column:
    """The calibrated probability of a redemption, kept inside [0, 1]."""
    return F.least(F.lit(1.0), F.greatest(F.lit(0.0), F.lit(calibration.redemption.ratio) * F.col("p_redeem_t1")))


def expected_redemptions(calibration: UpliftCalibration) -> Column:
    """The calibrated expected number of redemptions of a targeted pair (several coupons per household):
    ``intercept + slope * p`` of the calibration ``scoring.redemption_model`` names (the ratio: 0 and r)."""
    intercept, slope = calibration.redemptions.coefficients()
    return F.greatest(F.lit(0.0), F.lit(intercept) + F.lit(slope) * F.col("p_redeem_t1"))


def expected_cost() -> Column:
    """A pair's expected cost: its contact cost plus its expected redemptions times the cost per redemption (on
    rows with ``contact_cost``, ``redemption_cost`` and ``expected_redemptions``)."""
    return F.col("contact_cost") + F.col("expected_redemptions") * F.col("redemption_cost")


def in_overlap(overlap_band: tuple[float, float]) -> Column:
    """Whether a pair's propensity lies in the overlap band (evaluation.overlap_band), where households like
    it were both targeted and not by campaigns like this one, so its effect is estimated from both arms
    rather than extrapolated from one. Null when the propensity is."""
    low, high = overlap_band
    return F.col("propensity").between(F.lit(low), F.lit(high))


def household_scores(unit_costs: DataFrame, calibration: UpliftCalibration, gross_margin: float,
                     run_date: dt.date, run_id: str, model_version: str, *, value_outcome: str,
                     overlap_band: tuple[float, float]):
    """``df.transform`` factory: the network's outputs per pair -> gold.household_scores rows.

    ``unit_costs``: campaign_id, contact_cost, redemption_cost (gold.campaign_plans).
    Incremental gross profit = calibrated uplift of ``value_outcome`` x gross margin.
    Expected cost = contact + calibrated expected number of redemptions x cost per redemption.
    ``in_overlap``: :func:`in_overlap` of the network's propensity.
    """
    value_line(calibration, value_outcome)  # refuses an unknown outcome before any Spark work

    def _t(df: DataFrame) -> DataFrame:
        return (
            df.join(F.broadcast(unit_costs.select("campaign_id", "contact_cost", "redemption_cost")), "campaign_id")
            .withColumn("calibrated_uplift_spend", calibrated_uplift(calibration, "spend"))
            .withColumn("calibrated_uplift_coupon_product_spend", calibrated_uplift(calibration, "coupon_product_spend"))
            .withColumn("calibrated_p_redeem", calibrated_redemption(calibration))
            .withColumn("expected_redemptions", expected_redemptions(calibration))
            .select(
                F.lit(run_date).alias("run_date"), F.lit(run_id).alias("run_id"), "campaign_id", "household_id",
                F.col("p_redeem_t1").alias("p_redeem_targeted"), F.col("p_redeem_t0").alias("p_redeem_untargeted"),
                F.col("coupon_product_spend_t1").alias("coupon_product_spend_targeted"),
                F.col("coupon_product_spend_t0").alias("coupon_product_spend_untargeted"),
                F.col("spend_t1").alias("spend_targeted"), F.col("spend_t0").alias("spend_untargeted"),
                "uplift_redeem", "uplift_coupon_product_spend", "uplift_spend",
                (F.col(f"calibrated_uplift_{value_outcome}") * gross_margin).alias("incremental_gross_profit"),
                expected_cost().alias("expected_cost"),
                F.lit(model_version).alias("model_version"), "calibrated_uplift_spend", "calibrated_p_redeem",
                "expected_redemptions", "calibrated_uplift_coupon_product_spend",
                F.lit(value_outcome).alias("value_outcome"), "propensity",
                in_overlap(overlap_band).alias("in_overlap"),
            )
        )

    return _t


def repriced(unit_costs: DataFrame, calibration: UpliftCalibration):
    """``df.transform`` factory: gold.household_scores rows with their expected redemptions and expected cost
    priced again by ``calibration``'s redemption model (``calibration.redemption_model``), from the published
    redemption probability and ``unit_costs`` (campaign_id, contact_cost, redemption_cost). A what-if: the
    value, the probabilities and every other column stay as published."""

    def _t(scores: DataFrame) -> DataFrame:
        columns = scores.columns
        priced = (
            scores.join(F.broadcast(unit_costs.select("campaign_id", "contact_cost", "redemption_cost")),
                        "campaign_id")
            .withColumn("p_redeem_t1", F.col("p_redeem_targeted"))
            .withColumn("expected_redemptions", expected_redemptions(calibration))
            .withColumn("expected_cost", expected_cost())
        )
        return priced.select(*columns)

    return _t


def campaign_totals(chosen: DataFrame) -> pd.DataFrame:
    """Per plan over the chosen pairs (with ``audience_source``): size, sums of raw uplift and redemption
    probability, and the same sums per MC draw."""
    totals = chosen.groupBy("campaign_id", "audience_source").agg(
        F.count(F.lit(1)).alias("audience"),
        *(F.sum(score).alias(total) for _, score, total, _ in _SUMS),
    ).toPandas()
    names = [name for name, *_ in _SUMS]
    draws = (
        chosen.select("campaign_id", F.posexplode(F.arrays_zip(*(mc for *_, mc in _SUMS))).alias("k", "d"))
        .groupBy("campaign_id", "k")
        .agg(*(F.sum(f"d.{mc}").alias(name) for name, _, _, mc in _SUMS))
        .toPandas()
    )
    totals["mc"] = [draws[draws["campaign_id"] == c].sort_values("k")[names].to_numpy() for c in totals["campaign_id"]]
    return totals


FORECAST_COLUMNS = (
    "campaign_id", "audience", "audience_source", "expected_redemptions", "incremental_revenue",
    "incremental_coupon_product_revenue", "incremental_gross_profit", "contact_cost", "redemption_cost", "cost",
    "roi", "roi_low", "roi_high", "incremental_gross_profit_low", "incremental_gross_profit_high",
    "incremental_profit_low", "incremental_profit_high", "value_outcome",
)


def _draws(t: Any, contact: float, per_redemption: float, calibration: UpliftCalibration,
           margin: float, value_outcome: str, own_deviation: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(gross profit, cost) of one plan row of :func:`campaign_totals` in every calibration draw, the
    gross profit on ``value_outcome``.

    ``own_deviation``: the campaign's deviation draws in its own order (:func:`campaign_effect_order`), for
    sums over campaigns; a campaign alone uses the stored order."""
    n = float(t.audience)
    mc = t.mc if len(t.mc) else np.array([[getattr(t, total) for _, _, total, _ in _SUMS]])
    pick = mc[np.arange(calibration.n_draws) % len(mc)]
    order = campaign_effect_order(calibration.n_draws, t.campaign_id) if own_deviation else None
    draw_revenue = value_line(calibration, value_outcome).total_draws(n, pick[:, _DRAW_COLUMN[value_outcome]], order)
    redemption_sums = pick[:, _DRAW_COLUMN["redeem"]]
    draw_cost = n * contact + calibration.redemptions.total_draws(n, redemption_sums, order) * per_redemption
    return margin * draw_revenue, draw_cost


def plan_profit_draws(totals: pd.DataFrame, plans: pd.DataFrame, calibration: UpliftCalibration,
                      margin: float, *, value_outcome: str) -> np.ndarray:
    """The incremental profit of the whole plan (every row of :func:`campaign_totals`) in every calibration
    draw: the bootstrap line shared by all campaigns, each campaign's own deviation independent of the
    others' (a sum of campaigns that all deviated together would be far wider than the plan's real risk).
    A plan that funds nothing has a profit of 0 in every draw."""
    units = plans.set_index("campaign_id")
    total = np.zeros(calibration.n_draws)
    for t in totals.itertuples(index=False):
        draw_gp, draw_cost = _draws(t, float(units.at[t.campaign_id, "contact_cost"]),
                                    float(units.at[t.campaign_id, "redemption_cost"]), calibration, margin,
                                    value_outcome, own_deviation=True)
        total += draw_gp - draw_cost
    return total


def plan_profit_interval(totals: pd.DataFrame, plans: pd.DataFrame, calibration: UpliftCalibration,
                         margin: float, interval: float, *, value_outcome: str) -> tuple[float, float]:
    """The ``interval`` band of :func:`plan_profit_draws` (equal tails)."""
    draws = plan_profit_draws(totals, plans, calibration, margin, value_outcome=value_outcome)
    lo, hi = (1 - interval) / 2, 1 - (1 - interval) / 2
    return float(np.quantile(draws, lo)), float(np.quantile(draws, hi))


def roi_forecast(totals: pd.DataFrame, plans: pd.DataFrame, calibration: UpliftCalibration, margin: float,
                 interval: float, *, value_outcome: str) -> pd.DataFrame:
    """Per plan: calibrated incremental revenue, gross profit, cost and ROI, with the calibration's interval.

    Incremental revenue is that of ``value_outcome`` (``scoring.value_outcome``: coupon-product or total
    spend); ``incremental_coupon_product_revenue`` is always the coupon products'.
    Point: ``a * N + b * sum(tau_hat)`` for N households with raw uplifts
    ``tau_hat`` (:mod:`promo_roi.causal.calibration`), redemptions ``r * sum(p)`` with ``r`` the
    redemption-count ratio (redemptions, not redeemers: cost is paid per redemption), or ``c * N + d * sum(p)``
    with the shrunk expected count (``scoring.redemption_model: shrunk``).
    Interval: the same arithmetic for every bootstrap draw ``(a_k, b_k, r_k)``, each with the
    new campaign's own deviation (``a_k + u_k``, ``r_k exp(v_k)``: the calibration's campaign effects)
    and with Monte Carlo dropout draw ``k mod M`` of the sums when there are M, then the draws' quantiles.
    """
    lo, hi = (1 - interval) / 2, 1 - (1 - interval) / 2
    cal = calibration
    units = plans.set_index("campaign_id")
    rows = []
    for t in totals.itertuples(index=False):
        n = float(t.audience)
        contact, per_redemption = float(units.at[t.campaign_id, "contact_cost"]), float(units.at[t.campaign_id, "redemption_cost"])
        coupon_revenue = cal.coupon_product_spend.total(n, t.sum_uplift_coupon_product_spend)
        revenue = value_line(cal, value_outcome).total(n, getattr(t, f"sum_uplift_{value_outcome}"))
        redemptions = cal.redemptions.total(n, t.sum_p_redeem)
        contact_cost, redemption_cost = n * contact, redemptions * per_redemption
        cost = contact_cost + redemption_cost
        draw_gp, draw_cost = _draws(t, contact, per_redemption, cal, margin, value_outcome)
        draw_roi = (draw_gp - draw_cost) / draw_cost
        gp = margin * revenue
        rows.append({
            "campaign_id": int(t.campaign_id), "audience": int(n), "audience_source": t.audience_source,
            "expected_redemptions": redemptions, "incremental_revenue": revenue,
            "incremental_coupon_product_revenue": coupon_revenue, "incremental_gross_profit": gp,
            "contact_cost": contact_cost, "redemption_cost": redemption_cost, "cost": cost,
            "roi": (gp - cost) / cost if cost > 0 else math.nan,
            "roi_low": float(np.quantile(draw_roi, lo)), "roi_high": float(np.quantile(draw_roi, hi)),
            "incremental_gross_profit_low": float(np.quantile(draw_gp, lo)),
            "incremental_gross_profit_high": float(np.quantile(draw_gp, hi)),
            "incremental_profit_low": float(np.quantile(draw_gp - draw_cost, lo)),
            "incremental_profit_high": float(np.quantile(draw_gp - draw_cost, hi)),
            "value_outcome": value_outcome,
        })
    # Declared columns even without a row: a plan that funds nothing (no pair worth its cost) is a result.
    out = pd.DataFrame(rows, columns=FORECAST_COLUMNS)
    facts = plans[["campaign_id", "campaign_type", "start_date", "end_date"]]
    return out.merge(facts, on="campaign_id", how="left")


def roi_quantiles(totals: pd.DataFrame, plans: pd.DataFrame, calibration: UpliftCalibration, margin: float,
                  quantile: float, *, value_outcome: str) -> dict[int, float]:
    """Per plan row of :func:`campaign_totals`: the ``quantile`` of its ROI over the calibration draws (the
    same draws as :func:`roi_forecast`'s interval)."""
    units = plans.set_index("campaign_id")
    out = {}
    for t in totals.itertuples(index=False):
        draw_gp, draw_cost = _draws(t, float(units.at[t.campaign_id, "contact_cost"]),
                                    float(units.at[t.campaign_id, "redemption_cost"]), calibration, margin,
                                    value_outcome)
        out[int(t.campaign_id)] = float(np.quantile((draw_gp - draw_cost) / draw_cost, quantile))
    return out


def interval_method(calibration: UpliftCalibration, mc_samples: int, interval: float, value_outcome: str) -> str:
    text = (f"{interval:.0%} interval over {calibration.n_draws} two-stage bootstrap draws (held-out campaigns, "
            f"then households) of the uplift calibration on campaigns {list(calibration.campaigns)}")
    if calibration.has_campaign_effects:
        text += (f", each with a new campaign's own deviation (between-campaign sd "
                 f"{value_line(calibration, value_outcome).between_campaign_sd:.3g} of "
                 f"{value_outcome.replace('_', '-')} per household, "
                 f"{calibration.redemptions.between_campaign_sd:.3g} on the log redemption ratio)")
    else:
        text += ", without a new campaign's own deviation (the model was calibrated before it was estimated)"
    text += f", each with one of {mc_samples} shared-mask MC dropout draws" if mc_samples else ""
    if calibration.redemption_model == "shrunk":
        text += "; redemptions from the shrunk expected count (scoring.redemption_model)"
    # Last: readers take the interval's level from the text's first word (reporting.data.interval_label).
    return f"{text}; {VALUED_BY[calibration.value_score]}"
