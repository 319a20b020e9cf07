"""The promotion lift yardstick (lib/promo_roi/product_promotions/lift_yardstick.py and evaluation.py).

The baselines, the rolling origin and the scores on tiny inline frames, every expected value worked out by
hand; the job on the ingested fixture against a pandas recount of the silver tables.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from promo_roi.product_promotions import lift_yardstick
from promo_roi.product_promotions.lift_yardstick import (
    baseline_forecasts, evaluable, poisson_deviance, rolling_origin_forecasts, score,
)


def _rows(records) -> pd.DataFrame:
    """(product, store, week, category, display, mailer, units, baseline, own last lift) -> a yardstick frame."""
    frame = pd.DataFrame(records, columns=["product_id", "store_id", "week", "product_category", "on_display",
                                           "in_mailer", "units", "baseline_units", "last_placement_lift"])
    for column in lift_yardstick.FEATURES:
        if column not in frame:
            frame[column] = 1.0
    return frame


def test_the_three_baselines_by_hand(monkeypatch):
    monkeypatch.setattr(lift_yardstick, "MIN_CATEGORY_ROWS", 2)
    train = evaluable(_rows([
        (1, 1, 1, "SOUP", True, False, 6, 2.0, np.nan), (2, 1, 1, "SOUP", True, False, 4, 2.0, np.nan),
        (3, 1, 1, "PASTA", True, False, 3, 3.0, np.nan),                                 # one row: too few
        (1, 2, 1, "SOUP", False, True, 2, 2.0, np.nan), (2, 2, 1, "SOUP", False, True, 1, 2.0, np.nan),
        (4, 1, 1, "SOUP", False, False, 9, 1.0, np.nan),                                  # not placed: out
        (5, 1, 1, "SOUP", True, False, 9, np.nan, np.nan),                                # no baseline: out
    ]))
    assert len(train) == 5
    test = evaluable(_rows([
        (1, 1, 2, "SOUP", True, False, 0, 2.0, 3.0),
        (3, 1, 2, "PASTA", True, False, 0, 1.0, np.nan),
        (1, 2, 2, "SOUP", False, True, 0, 4.0, np.nan),
        (2, 1, 2, "SOUP", True, True, 0, 1.0, np.nan),
    ]))
    got = baseline_forecasts(train, test)
    display_overall = (6 + 4 + 3) / (2 + 2 + 3)
    np.testing.assert_allclose(got["no_lift"], [2.0, 1.0, 4.0, 1.0])
    # SOUP on display 10 / 4; PASTA falls back to display across categories; SOUP in the mailer 3 / 4; display
    # and mailer together never seen in training: no lift.
    np.testing.assert_allclose(got["category_lift"], [5.0, display_overall, 3.0, 1.0])
    # The product's own last lift where it has one, else the category's.
    np.testing.assert_allclose(got["own_last_lift"], [6.0, display_overall, 3.0, 1.0])


def test_a_held_out_week_is_forecast_from_earlier_weeks_only():
    records = [(p, 1, w, "SOUP", True, p % 2 == 0, 2 * p + w, 1.0 + p, np.nan) for p in range(1, 30)
               for w in (1, 2, 3)]
    frame = _rows(records)
    got = rolling_origin_forecasts(frame, [2, 3])
    # Week 3's units changed: week 2's forecasts do not move, and neither do week 3's (its own units are
    # what is forecast, never an input).
    changed = frame.assign(units=np.where(frame["week"] == 3, frame["units"] * 5, frame["units"]))
    again = rolling_origin_forecasts(changed, [2, 3])
    forecasts = [f"forecast_{m}" for m in lift_yardstick.MODELS]
    pd.testing.assert_frame_equal(got[forecasts], again[forecasts])
    assert sorted(got["week"].unique()) == [2, 3] and len(got) == 2 * 29
    with pytest.raises(ValueError, match="no held-out week"):
        rolling_origin_forecasts(frame, [1])


def test_scores_by_hand():
    # Two products, one week; product 1 in two stores (summed before the error), product 2 in one.
    forecasts = pd.DataFrame({
        "product_id": [1, 1, 2], "store_id": [1, 2, 1], "week": [5, 5, 5],
        "placement_type": ["display", "display", "mailer"],
        "units": [3.0, 1.0, 0.0], "baseline_units": [1.0, 1.0, 2.0],
        "forecast_no_lift": [1.0, 1.0, 2.0], "forecast_category_lift": [2.0, 2.0, 1.0],
        "forecast_own_last_lift": [2.0, 2.0, 1.0], "forecast_lgbm": [3.0, 0.5, 0.0],
    })
    scores = {(s.model, s.placement_type): s for s in score(forecasts, lift_yardstick.MODELS, n_boot=50)}
    # all: product 1 sold 4 against forecasts 2 / 4 / 4 / 3.5, product 2 sold 0 against 2 / 1 / 1 / 0.
    assert scores["no_lift", "all"].wape == pytest.approx((2 + 2) / 4)
    assert scores["category_lift", "all"].wape == pytest.approx((0 + 1) / 4)
    assert scores["lgbm", "all"].wape == pytest.approx(0.5 / 4)
    assert scores["lgbm", "all"].reference_model == "category_lift"  # the first of the tied best baselines
    assert scores["lgbm", "all"].wape_minus_reference == pytest.approx(0.5 / 4 - 1 / 4)
    # lift WAPE: the realized departure from the baseline is |4 - 2| + |0 - 2| = 4.
    assert scores["category_lift", "all"].lift_wape == pytest.approx(1 / 4)
    assert scores["no_lift", "all"].lift_wape == pytest.approx(1.0)
    # bias of the totals: 4 units sold; forecasts sum to 4, 5, 5 and 3.5.
    assert [scores[m, "all"].bias for m in lift_yardstick.MODELS] == pytest.approx([0.0, 0.25, 0.25, -0.125])
    # Draws holding product 1 only: lgbm forecast 3.5 of 4 (-0.125); product 2's draws sold nothing (no bias).
    assert scores["lgbm", "all"].bias_low == scores["lgbm", "all"].bias_high == pytest.approx(-0.125)
    lgbm_rows = poisson_deviance(np.array([3.0, 1.0, 0.0]), np.array([3.0, 0.5, 0.0]))
    # 0 units against 0 forecast: 2 * (0 - (0 - 0.01)) with the floor.
    np.testing.assert_allclose(lgbm_rows, [0.0, 2 * (math.log(2) - 0.5), 0.02])
    assert scores["lgbm", "all"].poisson_deviance == pytest.approx(lgbm_rows.mean())
    assert (scores["lgbm", "display"].rows, scores["lgbm", "display"].product_weeks) == (2, 1)
    assert math.isnan(scores["no_lift", "mailer"].wape)  # nothing sold: no WAPE
    ref = scores["category_lift", "all"]
    assert (ref.wape_minus_reference, ref.difference_low, ref.difference_high) == (0.0, 0.0, 0.0)
    # Draws holding only product 2 sold nothing and have no WAPE: the interval is over the others.
    assert 0.0 <= scores["no_lift", "all"].wape_low <= scores["no_lift", "all"].wape_high <= 1.0


@pytest.mark.parametrize("weeks,message", [("0", "must be >= 1, got 0"), ("two", "not a whole number: 'two'")])
def test_the_job_refuses_a_held_out_week_count_before_any_work(capsys, weeks, message):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "jobs" / "evaluate_promotions.py"
    spec = importlib.util.spec_from_file_location("evaluate_promotions_job", path)
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    with pytest.raises(SystemExit) as exit_info:
        job.main(["--as-of", "2018-01-02", "--held-out-weeks", weeks])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
