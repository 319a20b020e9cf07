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
from promo_roi.synthetic.benchmark import run_scenario, scenario_config
from promo_roi.tables import CAMPAIGN_PLANS, HOUSEHOLD_TARGETING, PUBLICATION_LOG
from promo_roi.validation import InputError

REPO = Path(__file__).resolve().parents[1]
RUN_DATE = dt.date(2017, 7, 1)
PLANNED = set(range(11, 24))


@pytest.fixture(scope="module")
def tiny(spark, tiny_model_config, fixture_source, tmp_path_factory):
    scenario = select_scenario(load_scenarios(REPO / "conf" / "scenarios.yaml"), "tiny")
    root = tmp_path_factory.mktemp("bench_tiny")
    base = tiny_model_config("bench_base")
    # One rank: what this module proves is the benchmark's chain and its figures; two ranks and their DDP
    # gradients are the session chain's `trained` (a second rank costs a process importing torch and MiniLM).
    base = dataclasses.replace(base, training=dataclasses.replace(base.training, num_processes=1))
    return base, root, run_scenario(spark, base, scenario, fixture_source, root, RUN_DATE)


def test_every_model_is_scored_on_the_same_night(tiny):
    base, _, run = tiny
    models = [r["model"] for r in run.rows]
    # Each model twice: the plan on expected profit, and the risk-aware plan (planning.risk_quantile 0.1).
    names = [f"champion (transformer v{run.champion_version})", "heuristic_pre_spend", "lgbm_t_learner", "random"]
    assert models == [m for name in names for m in (name, f"{name} + risk q=0.1")]
    by_model = {r["model"]: r for r in run.rows}
    for name in names:
        # Same predictions and forecasts, another plan: only the plan's figures may differ.
        expected, risky = by_model[name], by_model[f"{name} + risk q=0.1"]
        for figure in ("spearman_mean", "forecast_wape", "interval_coverage"):
            assert risky[figure] == pytest.approx(expected[figure], nan_ok=True)
        assert risky["plan_expected_cost"] <= base.planning.total_budget * (1 + 1e-9)
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
    assert set(run.seconds) == {"generate", "ingest", "features", "train", "score", "risk_plan", "baselines"}
    assert all(s >= 0 and not math.isnan(s) for s in run.seconds.values())
