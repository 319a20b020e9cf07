"""Nightly scoring on the fixture: what it publishes, reruns, quality gates, and a run killed mid-publish."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.scoring.inputs import ScoringInputError
from promo_roi.scoring.job import published, score
from promo_roi.tables import CAMPAIGN_PLANS, CAMPAIGN_ROI_FORECAST, HOUSEHOLD_SCORES, PUBLICATION_LOG, user_features_spec

RUN_DATE = dt.date(2017, 7, 1)
REPO = Path(__file__).resolve().parents[1]
# Complete Journey campaigns starting on or after 2017-07-01 (campaign_descriptions):
# 11 and 12 (07-12), 13 (08-08), 14 (09-04), 15 (09-20), 16 (10-04), 17 (10-18),
# 18 (10-30), 19 (11-15), 20 (11-27), 21 and 22 (12-06), 23 (12-28).
PLANNED = {11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}


@pytest.fixture(scope="module")
def champion(trained):
    """The tiny trained model, made champion by hand (its refutation verdict on 60 households is noise)."""
    import mlflow
    from mlflow import MlflowClient

    config, result = trained
    training, _, mlflow_config = config.require_training()
    mlflow.set_tracking_uri(mlflow_config.tracking_uri)
    MlflowClient().set_registered_model_alias(training.registered_model, training.champion_alias,
                                              result.model_version)
    return config


@pytest.fixture(scope="module")
def first_run(spark, champion):
    return score(spark, champion, RUN_DATE)


def _published(spark, spec, config):
    return published(spark, spec, config).filter(F.col("run_date") == F.lit(RUN_DATE))


def test_publishes_every_household_for_every_planned_campaign(spark, champion, first_run):
    config = champion
    households = delta_io.read_table(spark, user_features_spec(config.features), config.warehouse).filter(
        F.col("as_of_date") == F.lit(RUN_DATE)).count()
    plans = {r.campaign_id for r in delta_io.read_table(spark, CAMPAIGN_PLANS, config.warehouse).collect()}
    assert plans == PLANNED
    scores = _published(spark, HOUSEHOLD_SCORES, config)
    assert scores.count() == households * len(PLANNED)
    assert scores.select("household_id", "campaign_id").distinct().count() == households * len(PLANNED)
    forecast = _published(spark, CAMPAIGN_ROI_FORECAST, config).toPandas()
    assert set(forecast["campaign_id"]) == PLANNED
    assert (forecast["run_id"] == first_run.run_id).all()


def test_forecast_arithmetic_and_interval(spark, champion, first_run):
    f = _published(spark, CAMPAIGN_ROI_FORECAST, champion).toPandas()
    margin = champion.scoring.gross_margin
    for r in f.itertuples():
        assert r.cost == pytest.approx(r.contact_cost + r.redemption_cost)
        assert r.contact_cost == pytest.approx(r.audience * champion.scoring.contact_cost)
        assert r.incremental_gross_profit == pytest.approx(r.incremental_revenue * margin)
        assert r.roi == pytest.approx((r.incremental_gross_profit - r.cost) / r.cost)
        assert r.roi_low <= r.roi_high
        assert r.incremental_gross_profit_low <= r.incremental_gross_profit_high
        assert r.interval_method.startswith("mc_dropout(20")
        assert r.input_versions["silver.user_features"] >= 0
    # Campaigns with a target list are forecast for it; the scores cover every household.
    assert set(f["audience_source"]) <= {"campaign_target_list", "all_households"}


def test_rerun_publishes_the_same_counts_and_keeps_one_run(spark, champion, first_run):
    config = champion
    before = {s.name: _published(spark, s, config).count() for s in (HOUSEHOLD_SCORES, CAMPAIGN_ROI_FORECAST)}
    again = score(spark, config, RUN_DATE)
    assert again.run_id != first_run.run_id
    after = {s.name: _published(spark, s, config).count() for s in (HOUSEHOLD_SCORES, CAMPAIGN_ROI_FORECAST)}
    assert after == before
    for spec in (HOUSEHOLD_SCORES, CAMPAIGN_ROI_FORECAST):
        table = delta_io.read_table(spark, spec, config.warehouse).filter(F.col("run_date") == F.lit(RUN_DATE))
        assert {r.run_id for r in table.select("run_id").distinct().collect()} == {again.run_id}
    entries = delta_io.read_table(spark, PUBLICATION_LOG, config.warehouse).filter(
        F.col("run_date") == F.lit(RUN_DATE)).collect()
    assert [e.run_id for e in entries] == [again.run_id]


def test_stale_features_refused_before_any_write(spark, champion, first_run):
    config = champion
    versions = {s.name: delta_io.table_version(spark, s, config.warehouse)
                for s in (HOUSEHOLD_SCORES, CAMPAIGN_ROI_FORECAST, PUBLICATION_LOG)}
    with pytest.raises(ScoringInputError, match="no slice for 2017-08-01.*build_features"):
        score(spark, config, dt.date(2017, 8, 1))
    assert versions == {s.name: delta_io.table_version(spark, s, config.warehouse)
                        for s in (HOUSEHOLD_SCORES, CAMPAIGN_ROI_FORECAST, PUBLICATION_LOG)}


def test_a_run_killed_mid_publish_leaves_the_last_forecast(spark, champion, first_run, job_overrides):
    config = champion
    _, _, mlflow_config = config.require_training()
    log_before = delta_io.read_table(spark, PUBLICATION_LOG, config.warehouse).filter(
        F.col("run_date") == F.lit(RUN_DATE)).first().run_id
    forecast_before = sorted(tuple(r) for r in _published(spark, CAMPAIGN_ROI_FORECAST, config).select(
        "campaign_id", "roi", "run_id").collect())
    args = [sys.executable, str(REPO / "jobs" / "score.py"), "--run-date", RUN_DATE.isoformat()]
    for item in [*job_overrides(config.warehouse.root), f"mlflow.tracking_uri={mlflow_config.tracking_uri}",
                 "scoring.mc_dropout_samples=2"]:
        args += ["--set", item]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMO_ROI")}
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
                            cwd=str(REPO), start_new_session=True)
    killed = False
    deadline = time.monotonic() + 600
    for line in proc.stderr:
        # The first table of the new run is committed; the publication log is not yet.
        if "publish.household_scores" in line and ": done" in line:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        assert time.monotonic() < deadline, "the scoring job did not reach publication"
    proc.wait()
    assert killed, "the job ended before publishing"
    # The new run's rows are in the table, but readers still see the previous run.
    table_runs = {r.run_id for r in delta_io.read_table(spark, HOUSEHOLD_SCORES, config.warehouse).filter(
        F.col("run_date") == F.lit(RUN_DATE)).select("run_id").distinct().collect()}
    assert len(table_runs) == 2 and log_before in table_runs
    assert delta_io.read_table(spark, PUBLICATION_LOG, config.warehouse).filter(
        F.col("run_date") == F.lit(RUN_DATE)).first().run_id == log_before
    assert sorted(tuple(r) for r in _published(spark, CAMPAIGN_ROI_FORECAST, config).select(
        "campaign_id", "roi", "run_id").collect()) == forecast_before
    # The next run publishes and clears the dead run's rows.
    again = score(spark, config, RUN_DATE)
    runs = {r.run_id for r in delta_io.read_table(spark, HOUSEHOLD_SCORES, config.warehouse).filter(
        F.col("run_date") == F.lit(RUN_DATE)).select("run_id").distinct().collect()}
    assert runs == {again.run_id}
