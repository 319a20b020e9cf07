"""The decision benchmark end to end on the small fixture: the `tiny` scenario through the real chain.

generate -> ingest -> features -> train (tiny model, 1 process) -> score, in
the scenario's own warehouse, then the champion's published decisions and the
three baselines are scored against the scenario's truth. Expected values are
recomputed here from the published tables and the truth files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.synthetic import load_scenarios, select_scenario
from promo_roi.synthetic.benchmark import ablation_config, ablation_label, run_scenario, scenario_config
from promo_roi.tables import CAMPAIGN_PLANS, HOUSEHOLD_SCORES, HOUSEHOLD_TARGETING, PUBLICATION_LOG
from promo_roi.validation import InputError

REPO = Path(__file__).resolve().parents[1]
RUN_DATE = dt.date(2017, 7, 1)
PLANNED = set(range(11, 24))
# The network trained again without any text (training.text_input: none) and with the doubly robust term
# (training.pseudo_outcome_weight), judged beside the champion's own: both settings' training paths in one.
NO_TEXT = ablation_label(["text_input=none", "pseudo_outcome_weight=1"])


def _champion(run) -> str:
    """The champion's row: named by the score it valued households by (its calibration's, chosen in training)."""
    scored_by = {"heuristic_pre_spend", "transformer"}
    names = [r["model"] for r in run.rows if r["model"].startswith(f"champion (v{run.champion_version}, valued by ")
             and " + " not in r["model"]]
    assert len(names) == 1 and names[0].removeprefix(f"champion (v{run.champion_version}, valued by ")[:-1] in scored_by
    return names[0]


@pytest.fixture(scope="module")
def tiny(spark, tiny_model_config, fixture_source, tmp_path_factory):
    scenario = select_scenario(load_scenarios(REPO / "conf" / "scenarios.yaml"), "tiny")
    root = tmp_path_factory.mktemp("bench_tiny")
    base = tiny_model_config("bench_base")
    # One rank: what this module proves is the benchmark's chain and its figures; two ranks and their DDP
    # gradients are the session chain's `trained` (a second rank costs a process importing torch and MiniLM).
    base = dataclasses.replace(base, training=dataclasses.replace(base.training, num_processes=1))
    # The product's default (the tiny model pins the network for the session chain's planning tests): the
    # scenario's validation campaigns decide what households are valued by.
    base = dataclasses.replace(base, evaluation=dataclasses.replace(base.evaluation, ranking="validated"))
    no_text = dataclasses.replace(base, training=dataclasses.replace(base.training, text_input="none",
                                                                     pseudo_outcome_weight=1.0))
    return base, root, run_scenario(spark, base, scenario, fixture_source, root, RUN_DATE, {NO_TEXT: no_text})


def test_every_model_is_scored_on_the_same_night(tiny):
    base, _, run = tiny
    models = [r["model"] for r in run.rows]
    # Each model three times: the plan on expected profit, the risk-aware plan (planning.risk_quantile 0.1), and
    # the plan on costs priced by the shrunk redemption count (the configured pricing is the ratio).
    assert base.scoring.redemption_model == "ratio"
    names = [_champion(run), "heuristic_pre_spend", "lgbm_t_learner", "lgbm_dr_learner", "random", "transformer_uplift",
             NO_TEXT]
    assert NO_TEXT == "transformer_uplift [text_input=none, pseudo_outcome_weight=1]"
    variants = (" + risk q=0.1", " + shrunk redemptions")
    assert models == [m for name in names for m in (name, *(name + v for v in variants))]
    by_model = {r["model"]: r for r in run.rows}
    for name in names:
        # Same predictions and forecasts, another plan: only the plan's figures may differ.
        expected = by_model[name]
        for variant in variants:
            other = by_model[name + variant]
            for figure in ("spearman_mean", "forecast_wape", "interval_coverage"):
                assert other[figure] == pytest.approx(expected[figure], nan_ok=True)
            assert other["plan_expected_cost"] <= base.planning.total_budget * (1 + 1e-9)
    assert run.champion_gate.startswith(("promoted", "REFUSED"))
    for row in run.rows:
        assert row["scenario"] == "tiny" and row["campaigns"] == len(PLANNED)
        assert -1.0 <= row["spearman_mean"] <= 1.0
        assert row["forecast_wape"] >= 0 and 0.0 <= row["interval_coverage"] <= 1.0
        assert row["plan_true_cost"] >= 0 and row["oracle_true_profit"] >= row["plan_true_profit"] - 1e-6


def test_the_champion_row_is_what_was_published_held_against_the_truth(spark, tiny):
    base, root, run = tiny
    scenario = select_scenario(load_scenarios(REPO / "conf" / "scenarios.yaml"), "tiny")
    config = scenario_config(base, root, scenario)
    run_id = delta_io.read_table(spark, PUBLICATION_LOG, config.warehouse).filter(
        F.col("run_date") == F.lit(RUN_DATE)).first().run_id
    targeting = delta_io.read_table(spark, HOUSEHOLD_TARGETING, config.warehouse).filter(
        (F.col("run_date") == F.lit(RUN_DATE)) & (F.col("run_id") == run_id)).toPandas()
    contact = delta_io.read_table(spark, CAMPAIGN_PLANS, config.warehouse).toPandas().set_index(
        "campaign_id")["contact_cost"]
    truth = pd.read_parquet(root / "source" / "truth_household_campaign.parquet")
    chosen = targeting.merge(truth, on=["household_id", "campaign_id"], validate="one_to_one")
    margin = config.scoring.gross_margin
    true_cost = float((chosen["campaign_id"].map(contact) + chosen["true_expected_redemption_cost"]).sum())
    true_profit = float((margin * chosen["true_incremental_revenue"]).sum()) - true_cost
    row = run.rows[0]
    assert row["plan_pairs"] == len(targeting)
    assert row["plan_expected_cost"] == pytest.approx(targeting["expected_cost"].sum())
    assert row["plan_true_cost"] == pytest.approx(true_cost)
    assert row["plan_true_profit"] == pytest.approx(true_profit)
    # The scenario's redemption cost is the coupon face value the generator used.
    assert config.scoring.redemption_cost == scenario.face_value


def test_plans_are_compared_paired_with_the_difference_of_their_true_profits(tiny):
    _, _, run = tiny
    champion = _champion(run)
    baselines = ["heuristic_pre_spend", "lgbm_t_learner", "lgbm_dr_learner", "random", "transformer_uplift",
             NO_TEXT]
    what_ifs = [(f"{m}{v}", m) for m in [champion, *baselines] for v in (" + risk q=0.1", " + shrunk redemptions")]
    assert [(c["a"], c["b"]) for c in run.comparisons] == (
        what_ifs + [(champion, b) for b in baselines] + [("transformer_uplift", NO_TEXT)]
        + [("lgbm_dr_learner", "lgbm_t_learner")])
    profit = {r["model"]: r["plan_true_profit"] for r in run.rows}
    for c in run.comparisons:
        # The per-campaign sums add up to the scorecard's own plan totals.
        assert c["difference"] == pytest.approx(profit[c["a"]] - profit[c["b"]], abs=1e-6)
        assert c["low"] <= c["high"] and c["campaigns"] == len(PLANNED)


def test_the_pricing_what_if_plans_on_costs_priced_by_the_shrunk_count(spark, tiny):
    """The champion's ``+ shrunk redemptions`` plan: each chosen pair costs its contact plus the shrunk expected
    count (intercept + slope x the published redemption probability, at least 0) times the cost per
    redemption, recomputed here from the published scores, the plans and the champion's stored line."""
    from promo_roi.publication import published
    from promo_roi.scoring.job import champion as champion_model

    base, root, run = tiny
    scenario = select_scenario(load_scenarios(REPO / "conf" / "scenarios.yaml"), "tiny")
    config = scenario_config(base, root, scenario)
    calibration = champion_model(spark, config).calibration
    line = calibration.redemption_count_shrunk
    assert _champion(run) == f"champion (v{run.champion_version}, valued by {calibration.value_score})"
    name = f"{_champion(run)} + shrunk redemptions"
    scores = published(spark, HOUSEHOLD_SCORES, config).filter(F.col("run_date") == F.lit(RUN_DATE)).select(
        "household_id", "campaign_id", "p_redeem_targeted").toPandas()
    units = delta_io.read_table(spark, CAMPAIGN_PLANS, config.warehouse).select(
        "campaign_id", "contact_cost", "redemption_cost").toPandas()
    chosen = run.chosen[name].merge(scores, on=["household_id", "campaign_id"], validate="one_to_one").merge(
        units, on="campaign_id", validate="many_to_one")
    redemptions = (line.intercept + line.slope * chosen["p_redeem_targeted"]).clip(lower=0.0)
    by_hand = float((chosen["contact_cost"] + redemptions * chosen["redemption_cost"]).sum())
    row = {r["model"]: r for r in run.rows}[name]
    assert row["plan_pairs"] == len(chosen)
    assert row["plan_expected_cost"] == pytest.approx(by_hand)


def test_the_ablation_is_a_network_without_text_in_its_own_registered_model_planned_on_the_champions_costs(
        spark, tiny):
    """The no-text network is registered apart (the champion's registered model keeps its one version), reads
    no text (its spec says so and its weights hold no MiniLM), and its plan's expected cost is the published
    expected cost of the pairs it chose, as the champion's own network's is."""
    from promo_roi.mlflow_io import MlflowStore
    from promo_roi.publication import published

    base, root, run = tiny
    scenario = select_scenario(load_scenarios(REPO / "conf" / "scenarios.yaml"), "tiny")
    config = scenario_config(base, root, scenario)
    ablated = ablation_config(config, NO_TEXT)
    assert ablated.training.registered_model == (f"{base.training.registered_model}"
                                                 "__transformer_uplift_text_input_none_pseudo_outcome_weight_1")
    assert ablated.training.experiment != config.training.experiment
    store = MlflowStore.of(config.mlflow)
    assert store.alias_version(config.training.registered_model, config.training.champion_alias) == run.champion_version
    network = store.load_version(ablated.training.registered_model, "1").unwrap_python_model()
    assert network.spec.text_input == "none" and network.spec.ensemble_size == config.training.ensemble_size
    assert not [name for name, _ in network.network.named_parameters() if "encoder." in name]
    params = store.run_params(store.version_run_id(ablated.training.registered_model, "1"))
    assert float(params["training.pseudo_outcome_weight"]) == 1.0
    costs = published(spark, HOUSEHOLD_SCORES, config).filter(F.col("run_date") == F.lit(RUN_DATE)).select(
        "household_id", "campaign_id", "expected_cost").toPandas()
    chosen = run.chosen[NO_TEXT].merge(costs, on=["household_id", "campaign_id"], validate="one_to_one")
    row = {r["model"]: r for r in run.rows}[NO_TEXT]
    assert row["plan_pairs"] == len(chosen)
    assert row["plan_expected_cost"] == pytest.approx(float(chosen["expected_cost"].sum()))


def test_the_benchmark_never_writes_into_the_main_warehouse(tiny, app_config):
    base, root, _ = tiny
    scenario = select_scenario(load_scenarios(REPO / "conf" / "scenarios.yaml"), "tiny")
    assert Path(scenario_config(base, root, scenario).warehouse.root).parent == root.resolve()
    inside = Path(base.warehouse.root) / "bench"
    with pytest.raises(InputError, match="overlaps the configured warehouse"):
        scenario_config(base, inside, scenario)
    assert not (Path(base.warehouse.root) / "gold").exists() or not any((Path(base.warehouse.root) / "gold").iterdir())


def test_stage_seconds_are_recorded(tiny):
    _, _, run = tiny
    assert set(run.seconds) == {"generate", "ingest", "features", "train", "score", "risk_plan", "repriced_plan",
                                f"train {NO_TEXT}", "baselines"}
    assert all(s >= 0 and not math.isnan(s) for s in run.seconds.values())
