"""What households are valued and ranked by: the network's uplift, or pre-period spend where the network did not
rank the validation campaigns better (evaluation.ranking). Tiny inline data, expected values by construction."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import two_campaign_calibration
from promo_roi.causal.calibration import (
    NETWORK_SCORE,
    PRE_SPEND_SCORE,
    CalibrationError,
    UpliftCalibration,
)
from promo_roi.config import EvaluationConfig
from promo_roi.scoring.forecast import interval_method
from promo_roi.scoring.predict import valued_by
from promo_roi.training import evaluate

EVALUATION = EvaluationConfig(overlap_band=(0.1, 0.9), bootstrap_samples=200, nuisance_folds=2,
                              placebo_tolerance=0.25, stability_z=2.0, seed=3, ranking="validated")


def _validation(effect: np.ndarray, pre_spend: np.ndarray) -> tuple[pd.DataFrame, evaluate.Nuisance]:
    """Four campaigns of households whose observed outcome is their arm's mean (untargeted 0, targeted
    ``effect``), so each household's AIPW pseudo-outcome is exactly its effect."""
    n = effect.size
    targeted = (np.arange(n) % 2).astype(float)
    frame = pd.DataFrame({
        "household_id": np.arange(n), "campaign_id": np.arange(n) % 4 + 10, "targeted": targeted,
        "coupon_product_spend": targeted * effect, "spend": targeted * effect,
        "pre_coupon_product_spend": pre_spend, "pre_spend": pre_spend,
        "redeemed": targeted * (np.arange(n) % 4 == 1), "redemptions": targeted * (np.arange(n) % 4 == 1) * 2.0,
    })
    arms = (np.zeros(n), effect)
    return frame, evaluate.Nuisance(e=np.full(n, 0.5), mu={"coupon_product_spend": arms, "spend": arms})


def _network(uplift: np.ndarray, p_redeem: float = 0.25) -> pd.DataFrame:
    return pd.DataFrame({"uplift_spend": uplift, "uplift_coupon_product_spend": uplift, "uplift_redeem": uplift,
                         "p_redeem_t1": np.full(uplift.size, p_redeem)})


def test_pseudo_outcomes_of_the_constructed_frame_are_the_effects():
    effect = np.linspace(-1.0, 3.0, 40)
    frame, nuisance = _validation(effect, np.zeros(40))
    np.testing.assert_allclose(nuisance.phi(frame, "coupon_product_spend"), effect)


def test_the_network_values_households_only_where_it_ranks_them_better_than_pre_period_spend():
    rng = np.random.default_rng(0)
    n = 400
    effect = rng.gamma(2.0, 2.0, n)
    noise = rng.permutation(effect)  # the same values in an order unrelated to the effects
    heuristic_knows, heuristic_blind = _validation(effect, effect * 3 + 1), _validation(effect, noise)

    # The network ranks by the effect itself, the heuristic by noise: the network wins, by an interval above 0.
    frame, nuisance = heuristic_blind
    won = evaluate.paired_validation_comparison(_network(effect), evaluate.heuristic_predictions(frame), frame,
                                                nuisance, EVALUATION)
    assert won["difference"] > 0 and won["ci_low"] > 0
    assert evaluate.chosen_value_score("validated", won) == NETWORK_SCORE

    # Pre-period spend orders households exactly as their effects, the network by noise: the heuristic.
    frame, nuisance = heuristic_knows
    lost = evaluate.paired_validation_comparison(_network(noise), evaluate.heuristic_predictions(frame), frame,
                                                 nuisance, EVALUATION)
    assert lost["difference"] < 0 and lost["ci_high"] < 0
    assert evaluate.chosen_value_score("validated", lost) == PRE_SPEND_SCORE

    # The same ranking ties: a tie goes to the simpler score.
    tie = evaluate.paired_validation_comparison(_network(effect * 3 + 1), evaluate.heuristic_predictions(frame),
                                                frame, nuisance, EVALUATION)
    assert tie["difference"] == pytest.approx(0.0, abs=1e-9)
    assert evaluate.chosen_value_score("validated", tie) == PRE_SPEND_SCORE


def test_the_choice_rule_and_a_forced_choice():
    above, touching, undefined = {"ci_low": 0.01}, {"ci_low": 0.0}, {"ci_low": float("nan")}
    assert evaluate.chosen_value_score("validated", above) == NETWORK_SCORE
    assert evaluate.chosen_value_score("validated", touching) == PRE_SPEND_SCORE
    assert evaluate.chosen_value_score("validated", undefined) == PRE_SPEND_SCORE
    assert evaluate.chosen_value_score("transformer", touching) == NETWORK_SCORE
    assert evaluate.chosen_value_score("heuristic_pre_spend", above) == PRE_SPEND_SCORE
    with pytest.raises(ValueError, match="evaluation.ranking"):
        evaluate.chosen_value_score("best", above)


def test_ranking_rows_say_what_was_compared_and_what_was_chosen():
    frame, _ = _validation(np.arange(8.0), np.arange(8.0))
    rows = evaluate.ranking_rows({"difference": -0.5, "ci_low": -1.0, "ci_high": 0.25}, PRE_SPEND_SCORE, frame)
    base = {"split": "validation", "scope": "ranking", "outcome": "coupon_product_spend", "n_rows": 8,
            "n_campaigns": 4}
    assert rows == [
        {**base, "model_name": "transformer", "metric": "qini_minus_heuristic", "value": -0.5, "ci_low": -1.0,
         "ci_high": 0.25},
        {**base, "model_name": "transformer", "metric": "values_households", "value": 0.0, "ci_low": None,
         "ci_high": None},
        {**base, "model_name": "heuristic_pre_spend", "metric": "values_households", "value": 1.0, "ci_low": None,
         "ci_high": None},
    ]


def test_the_spend_lines_calibrate_the_chosen_score_and_redemptions_stay_the_networks():
    rng = np.random.default_rng(1)
    n = 200
    pre_spend = rng.uniform(0.0, 10.0, n)
    effect = 2.0 + 0.5 * pre_spend  # the effect is exactly a line in pre-period spend
    frame, nuisance = _validation(effect, pre_spend)
    network = _network(rng.normal(size=n), p_redeem=0.25)
    heuristic = evaluate.heuristic_predictions(frame)

    calibration = evaluate.fit_calibration([network], [frame], [nuisance], EVALUATION, value_predictions=[heuristic],
                                           value_score=PRE_SPEND_SCORE)
    assert calibration.value_score == PRE_SPEND_SCORE
    for line in (calibration.spend, calibration.coupon_product_spend):
        assert line.intercept == pytest.approx(2.0) and line.slope == pytest.approx(0.5)
        np.testing.assert_allclose(line.draws, np.tile([2.0, 0.5], (EVALUATION.bootstrap_samples, 1)), atol=1e-9)
    # Redemptions on the network's probability: 1 in 2 targeted households redeems (2 coupons each), each
    # predicted 0.25.
    assert calibration.redemption.ratio == pytest.approx(0.5 / 0.25)
    assert calibration.redemption_count.ratio == pytest.approx(1.0 / 0.25)
    rows = evaluate.calibration_rows(calibration)
    assert {r["model_name"] for r in rows if r["outcome"] in ("spend", "coupon_product_spend")} == {PRE_SPEND_SCORE}
    assert {r["model_name"] for r in rows if r["outcome"] in ("redeemed", "redemptions")} == {NETWORK_SCORE}

    # By default the network's uplift is the score: noise, so the line is flat at the mean effect.
    own = evaluate.fit_calibration([network], [frame], [nuisance], EVALUATION)
    assert own.value_score == NETWORK_SCORE
    assert own.coupon_product_spend.slope == pytest.approx(0.0, abs=0.2)
    assert own.redemption.ratio == calibration.redemption.ratio
    # The same resamples: the redemption draws do not depend on which score the spend lines calibrate.
    np.testing.assert_array_equal(own.redemption.draws, calibration.redemption.draws)


def test_the_value_score_travels_with_the_calibration():
    cal = two_campaign_calibration(seed=2, n_boot=10, value_score=PRE_SPEND_SCORE)
    assert UpliftCalibration.from_json(cal.to_json()).value_score == PRE_SPEND_SCORE
    older = json.loads(cal.to_json())
    del older["value_score"]  # a model calibrated before the choice existed valued by the network
    assert UpliftCalibration.from_dict(older).value_score == NETWORK_SCORE
    with pytest.raises(CalibrationError, match="unknown value_score 'lgbm'"):
        UpliftCalibration.from_dict({**older, "value_score": "lgbm"})
    assert interval_method(cal, 0, 0.9, "coupon_product_spend").endswith(
        "; households valued by their calibrated pre-period coupon-product spend (evaluation.ranking)")
    assert interval_method(UpliftCalibration.from_dict(older), 0, 0.9, "spend").startswith("90% interval")


def test_scores_hold_pre_period_spend_where_households_are_valued_by_it():
    frame = pd.DataFrame({"household_id": [1, 2, 3], "pre_coupon_product_spend": [4.0, 0.0, 7.5]})
    point = pd.DataFrame({"uplift_spend": [9.0, 9.0, 9.0], "uplift_coupon_product_spend": [8.0, 8.0, 8.0],
                          "uplift_redeem": [0.1, 0.2, 0.3], "p_redeem_t1": [0.4, 0.5, 0.6]})
    draw = point.assign(uplift_spend=[1.0, 1.0, 1.0])

    same_point, same_draws = valued_by(NETWORK_SCORE, frame, point, [draw])
    assert same_point is point and same_draws == [draw]

    heuristic_point, heuristic_draws = valued_by(PRE_SPEND_SCORE, frame, point, [draw, draw])
    expected = pd.DataFrame({"uplift_spend": [4.0, 0.0, 7.5], "uplift_coupon_product_spend": [4.0, 0.0, 7.5],
                             "uplift_redeem": [0.1, 0.2, 0.3], "p_redeem_t1": [0.4, 0.5, 0.6]})
    pd.testing.assert_frame_equal(heuristic_point, expected)
    for d in heuristic_draws:  # no dropout in a heuristic: every draw is the score
        pd.testing.assert_frame_equal(d, expected)
    with pytest.raises(ValueError, match="unknown value score"):
        valued_by("lgbm", frame, point, [])
