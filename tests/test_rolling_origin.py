"""The rolling-origin yardstick: folds by hand, the paired comparison on a constructed case, one run on the fixture."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pandas as pd
import pytest

from promo_roi.model_names import HEURISTIC
from promo_roi.training.rolling_origin import Fold, Yardstick, folds, yardstick_rows

D = dt.date


def test_folds_train_only_on_campaigns_that_ended_before_the_start():
    calendar = [
        (1, D(2017, 1, 1), D(2017, 1, 31)),
        (2, D(2017, 1, 10), D(2017, 3, 31)),  # long: still running when 4 and 5 start
        (3, D(2017, 2, 1), D(2017, 2, 20)),
        (4, D(2017, 3, 1), D(2017, 3, 20)),
        (5, D(2017, 3, 10), D(2017, 4, 10)),
        (6, D(2017, 4, 1), D(2017, 4, 30)),
        (7, D(2017, 5, 1), D(2017, 5, 31)),
    ]
    got = folds(calendar, first_held_out=4, validation_campaigns=1, min_train_campaigns=1)
    # 4 starts 03-01: ended before it 1 (01-31), 3 (02-20) -> train [1], validation [3]
    # 5 starts 03-10: same two.
    # 6 starts 04-01: 1, 3, 4 (03-20), 2 (03-31) -> by end date 1, 3, 4, 2: validation [2]
    # 7 starts 05-01: 1, 3, 4, 2, 5 (04-10), 6 (04-30): validation [6]
    assert got == [
        Fold(4, D(2017, 3, 1), (1,), (3,)),
        Fold(5, D(2017, 3, 10), (1,), (3,)),
        Fold(6, D(2017, 4, 1), (1, 3, 4), (2,)),
        Fold(7, D(2017, 5, 1), (1, 3, 4, 2, 5), (6,)),
    ]
    # Too few ended campaigns leave a campaign out instead of training on the future.
    assert [f.held_out for f in folds(calendar, first_held_out=4, min_train_campaigns=3)] == [6, 7]


def _case(seed: int = 0):
    """Two held-out campaigns of 200 households; the heuristic ranks by the true effect, 'worse' against it."""
    rng = np.random.default_rng(seed)
    n = 400
    effect = rng.normal(size=n)
    held = pd.DataFrame({"campaign_id": np.repeat([8, 9], n // 2), "household_id": np.arange(n)})
    phi = {o: effect + 0.1 * rng.normal(size=n) for o in ("redeemed", "coupon_product_spend", "spend")}
    scores = {HEURISTIC: {o: effect for o in phi}, "worse": {o: -effect for o in phi}}
    return held, scores, Yardstick(phi, np.full(n, 0.5))


def test_the_paired_difference_says_who_ranks_better(evaluation_config):
    held, scores, yardstick = _case()
    placebo = Yardstick({"spend": np.zeros(len(held))}, np.full(len(held), 0.5))
    rows = pd.DataFrame(yardstick_rows(held, scores, yardstick, held, scores, placebo, evaluation_config))
    diff = rows[(rows["metric"] == "qini_minus_heuristic_pre_spend") & (rows["scope"] == "overall")]
    assert set(diff["model_name"]) == {"worse"}  # the heuristic is not compared with itself
    assert set(diff["outcome"]) == {"redeemed", "coupon_product_spend", "spend"}
    assert (diff["value"] < 0).all() and (diff["ci_high"] < 0).all() and (diff["share_better"] == 0).all()
    per_campaign = rows[(rows["metric"] == "qini") & rows["campaign_id"].notna()]
    assert set(per_campaign["campaign_id"]) == {8, 9}
    assert (per_campaign["n_rows"] == 200).all()
    # A placebo whose pseudo-outcome is exactly 0 gives a Qini of exactly 0 for every model.
    placebo_rows = rows[rows["metric"] == "placebo_qini"]
    assert set(placebo_rows["outcome"]) == {"spend"} and (placebo_rows["value"] == 0).all()


def test_the_transformer_is_also_compared_with_the_strong_baseline(evaluation_config):
    held, scores, yardstick = _case()
    # The transformer ranks by the truth; the LightGBM baseline by noise: the transformer wins both pairings.
    noise = np.random.default_rng(7).normal(size=len(held))
    # The DR-learner ranks by the truth as well, plus a little noise: it beats the T-learner in every draw.
    scores = {HEURISTIC: {o: noise for o in scores[HEURISTIC]}, "lgbm_t_learner": {o: -noise for o in scores[HEURISTIC]},
              "lgbm_dr_learner": {o: s + 0.1 * noise for o, s in scores[HEURISTIC].items()},
              "transformer": scores[HEURISTIC]}
    placebo = Yardstick({"spend": np.zeros(len(held))}, np.full(len(held), 0.5))
    rows = pd.DataFrame(yardstick_rows(held, scores, yardstick, held, scores, placebo, evaluation_config))
    pooled = rows[rows["campaign_id"].isna() & (rows["scope"] == "overall") & (rows["outcome"] == "spend")]
    pairs = {(model, metric) for model, metric in zip(pooled["model_name"], pooled["metric"])
             if metric.startswith("qini_minus")}
    assert pairs == {("transformer", "qini_minus_heuristic_pre_spend"), ("transformer", "qini_minus_lgbm_t_learner"),
                     ("transformer", "qini_minus_lgbm_dr_learner"),
                     ("lgbm_t_learner", "qini_minus_heuristic_pre_spend"),
                     ("lgbm_dr_learner", "qini_minus_heuristic_pre_spend"),
                     ("lgbm_dr_learner", "qini_minus_lgbm_t_learner")}
    win = pooled[(pooled["model_name"] == "transformer") & (pooled["metric"] == "qini_minus_lgbm_t_learner")]
    assert (win["ci_low"] > 0).all() and (win["share_better"] == 1).all()
    direct = pooled[(pooled["model_name"] == "lgbm_dr_learner") & (pooled["metric"] == "qini_minus_lgbm_t_learner")]
    assert (direct["ci_low"] > 0).all() and (direct["share_better"] == 1).all()


def test_an_ablation_is_compared_with_the_transformer_and_the_heuristic(evaluation_config):
    """The transformer without text (an ablation) ranks by noise, the transformer by the truth: the ablation's
    paired difference with the transformer is below 0 in every draw; the transformer is compared with no
    ablation (the comparison is the ablation's row)."""
    from promo_roi.training.rolling_origin import ablation_label

    held, scores, yardstick = _case()
    noise = np.random.default_rng(3).normal(size=len(held))
    no_text = ablation_label(["text_input=none"])
    assert no_text == "transformer [text_input=none]"
    scores = {HEURISTIC: {o: noise for o in scores[HEURISTIC]}, "transformer": scores[HEURISTIC],
              no_text: {o: -noise for o in scores[HEURISTIC]}}
    placebo = Yardstick({"spend": np.zeros(len(held))}, np.full(len(held), 0.5))
    rows = pd.DataFrame(yardstick_rows(held, scores, yardstick, held, scores, placebo, evaluation_config))
    pooled = rows[rows["campaign_id"].isna() & (rows["scope"] == "overall") & (rows["outcome"] == "spend")]
    pairs = {(m, metric) for m, metric in zip(pooled["model_name"], pooled["metric"]) if metric.startswith("qini_minus")}
    assert pairs == {("transformer", "qini_minus_heuristic_pre_spend"), (no_text, "qini_minus_heuristic_pre_spend"),
                     (no_text, "qini_minus_transformer")}
    loss = pooled[(pooled["model_name"] == no_text) & (pooled["metric"] == "qini_minus_transformer")]
    assert (loss["value"] < 0).all() and (loss["ci_high"] < 0).all() and (loss["share_better"] == 0).all()


@pytest.fixture
def evaluation_config(app_config):
    import dataclasses

    return dataclasses.replace(app_config.evaluation, bootstrap_samples=50)


def _load_job():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("evaluate_job", Path(__file__).parents[1] / "jobs" / "evaluate.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    return job


def test_the_evaluate_job_on_the_fixture(spark, trained, copy_warehouse, job_overrides, monkeypatch):
    """jobs/evaluate.py on a copy of the trained warehouse (the tiny model's settings), read back from Delta."""
    from promo_roi import delta_io
    from promo_roi.tables import ROLLING_ORIGIN_EVALUATION

    config = copy_warehouse(trained[0], "rolling_origin")
    training, evaluation, _ = config.require_training()
    monkeypatch.setattr("promo_roi.entrypoint.configure_logging", lambda level: None)  # keep pytest's handlers
    for name in [n for n in os.environ if n.startswith("PROMO_ROI")]:
        monkeypatch.delenv(name)
    settings = [*job_overrides(config.warehouse.root), f"training.epochs={training.epochs}",
                f"training.hidden_dim={training.hidden_dim}", f"training.top_layers={training.top_layers}",
                f"training.batch_size={training.batch_size}", f"training.ensemble_size={training.ensemble_size}",
                f"evaluation.bootstrap_samples={evaluation.bootstrap_samples}",
                f"evaluation.nuisance_folds={evaluation.nuisance_folds}",
                # As of 2017-07-01 the fixture has nine fully observed campaigns; with two training campaigns
                # and one validation campaign ended before its start, 6, 7 and 8 can each be held out.
                "training.min_train_campaigns=2"]
    args = ["--as-of", "2017-07-01", "--first-held-out", "4", *[a for s in settings for a in ("--set", s)]]
    job = _load_job()
    # An ablation with an impossible setting is refused, named, before any work.
    assert job.main([*args, "--ablation", "text_input=household"]) == 2
    assert (not delta_io.table_exists(spark, ROLLING_ORIGIN_EVALUATION, config.warehouse)
            or delta_io.read_table(spark, ROLLING_ORIGIN_EVALUATION, config.warehouse).count() == 0)
    # The ablation without text and with the doubly robust term: both settings' paths through a fold; and the
    # network that also reads the households' purchase histories.
    assert job.main([*args, "--ablation", "text_input=none,pseudo_outcome_weight=1",
                     "--ablation", "text_input=campaign_and_history"]) == 0
    rows = delta_io.read_table(spark, ROLLING_ORIGIN_EVALUATION, config.warehouse).toPandas()
    assert set(rows["as_of_date"]) == {dt.date(2017, 7, 1)}
    held_out = {int(c) for c in rows["held_out_campaigns"].iloc[0].split(",")}
    # Complete Journey's calendar: three campaigns had ended when 6 (2017-04-19) and 7 (2017-04-24) started,
    # fewer than three when 3, 4 and 5 did.
    assert held_out == {6, 7, 8}
    pooled = rows[rows["campaign_id"].isna()]
    no_text = "transformer [text_input=none, pseudo_outcome_weight=1]"
    history = "transformer [text_input=campaign_and_history]"
    assert set(pooled["model_name"]) == {"transformer", "lgbm_t_learner", "lgbm_dr_learner", HEURISTIC, no_text,
                                         history}
    per_campaign = rows[rows["campaign_id"].notna() & (rows["scope"] == "overall") & (rows["metric"] == "qini")]
    assert set(per_campaign["campaign_id"].astype(int)) == held_out
    assert per_campaign.groupby("model_name")["n_rows"].sum().nunique() == 1  # every model on the same rows
    differences = pooled[pooled["metric"] == "qini_minus_heuristic_pre_spend"]
    assert set(differences["model_name"]) == {"transformer", "lgbm_t_learner", "lgbm_dr_learner", no_text, history}
    assert set(pooled[pooled["metric"] == "qini_minus_lgbm_t_learner"]["model_name"]) == {"transformer",
                                                                                          "lgbm_dr_learner"}
    assert set(pooled[pooled["metric"] == "qini_minus_lgbm_dr_learner"]["model_name"]) == {"transformer"}
    assert set(pooled[pooled["metric"] == "qini_minus_transformer"]["model_name"]) == {no_text, history}
    assert (differences["ci_low"] <= differences["ci_high"]).all()
    assert set(pooled[pooled["metric"] == "placebo_qini"]["outcome"]) <= {"coupon_product_spend", "spend"}
    # An impossible first held-out campaign is refused before any work.
    with pytest.raises(SystemExit) as exit_info:
        job.main(["--as-of", "2017-07-01", "--first-held-out", "1"])
    assert exit_info.value.code == 2
