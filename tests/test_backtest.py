"""Backtest on the fixture: three past run dates forecast by the champion and held against realized DR effects,
without touching anything published."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.analyst_views import PUBLISHED_TABLES
from promo_roi.scoring.backtest import backtest
from promo_roi.tables import BACKTEST_FORECAST, CAMPAIGN_PLANS, FORECAST_ACCURACY, PUBLICATION_LOG
from promo_roi.validation import InputError

RUN_DATES = [dt.date(2017, 8, 1), dt.date(2017, 9, 1), dt.date(2017, 10, 1)]
# From campaign_descriptions: campaigns starting on or after each date that end before the data does
# (2018-01-01). 15 (to 2018-02-28), 20 (2018-02-05), 21/22 (2018-01-07) and 23 (2018-02-04) never finish;
# campaigns 1-8 and 27 trained the champion but all start before these dates.
DUE = {
    dt.date(2017, 8, 1): {13, 14, 16, 17, 18, 19},
    dt.date(2017, 9, 1): {14, 16, 17, 18, 19},
    dt.date(2017, 10, 1): {16, 17, 18, 19},
}
UNFINISHED = {15, 20, 21, 22, 23}


def _snapshot(spark, config) -> dict:
    """Every published table's rows and the publication log, as sorted tuples."""
    out = {}
    for spec in (*PUBLISHED_TABLES, PUBLICATION_LOG):
        rows = delta_io.read_table(spark, spec, config.warehouse).collect()
        out[spec.full_name] = sorted(map(repr, rows))
    return out


@pytest.fixture(scope="module")
def backtested(spark, scored, copy_warehouse):
    config = copy_warehouse(scored[0], "backtest")
    before = _snapshot(spark, config)
    results = backtest(spark, config, RUN_DATES)
    return config, results, before


def _backtest_forecast(spark, config, run_id):
    return delta_io.read_table(spark, BACKTEST_FORECAST, config.warehouse).filter(
        F.col("run_id") == run_id).toPandas().set_index("campaign_id")


def _accuracy(spark, config):
    return delta_io.read_table(spark, FORECAST_ACCURACY, config.warehouse).toPandas()


def test_forecast_accuracy_for_three_past_run_dates(spark, backtested):
    config, results, _ = backtested
    acc = _accuracy(spark, config)
    assert sorted(set(acc["run_date"])) == RUN_DATES
    for result in results:
        rows = acc[acc["run_date"] == result.run_date]
        assert set(rows["campaign_id"]) == DUE[result.run_date]
        assert (rows["run_id"] == result.run_id).all()
        # The forecast side is the backtest's own forecast of that night (gold.backtest_forecast), unchanged.
        forecast = _backtest_forecast(spark, config, result.run_id)
        assert set(forecast["run_date"]) == {result.run_date}
        assert set(forecast.index) == DUE[result.run_date] | set(result.skipped)
        assert UNFINISHED & set(forecast.index) <= set(result.skipped)
        for r in rows.itertuples():
            f = forecast.loc[r.campaign_id]
            assert r.forecast_incremental_revenue == pytest.approx(f.incremental_revenue)
            assert r.forecast_roi == pytest.approx(f.roi)
            assert r.audience == f.audience
            assert r.error == pytest.approx(r.forecast_incremental_revenue - r.realized_incremental_revenue)
            assert r.absolute_error == pytest.approx(abs(r.error))
            assert r.interval_covers_realized == (
                r.forecast_incremental_revenue_low <= r.realized_incremental_revenue
                <= r.forecast_incremental_revenue_high)
            assert r.realized_covers_forecast == (
                r.realized_incremental_revenue_low <= r.forecast_incremental_revenue
                <= r.realized_incremental_revenue_high)
            assert r.realized_incremental_revenue_low <= r.realized_incremental_revenue_high
            assert r.model_version == f.model_version
            if r.placebo_incremental_revenue is not None and not pd.isna(r.placebo_incremental_revenue):
                assert r.placebo_incremental_revenue_low <= r.placebo_incremental_revenue_high


def test_the_backtest_changes_no_published_run(spark, backtested):
    config, _, before = backtested
    assert _snapshot(spark, config) == before
    # It did forecast: one backtest run per date, kept beside the published ones.
    history = delta_io.read_table(spark, BACKTEST_FORECAST, config.warehouse).toPandas()
    assert sorted(set(history["run_date"])) == RUN_DATES


def test_the_same_campaign_has_the_same_realized_effect_whichever_night_forecast_it(spark, backtested):
    config, _, _ = backtested
    acc = _accuracy(spark, config)
    per_household = acc.assign(att=acc["realized_incremental_revenue"] / acc["audience"])
    spread = per_household.groupby("campaign_id")["att"].agg(lambda s: s.max() - s.min())
    assert (spread.abs() < 1e-9).all()


def test_a_backtest_killed_before_each_commit_leaves_the_last_accuracy_and_a_rerun_replaces_its_slice(
        spark, backtested):
    """The last date backtested again, killed before each of its three commits (the calendar's plans seeded into
    gold.campaign_plans, as the night does; its forecast, appended to gold.backtest_forecast; its slice of
    gold.forecast_accuracy): readers keep the last backtest's accuracy for every date, a killed run's forecast is
    whole (the same as the first run's) or absent, and a clean rerun replaces the date's slice."""
    from conftest import InjectedFault, fail_at

    config, results, _ = backtested
    ordered = lambda frame: frame.sort_values(["run_date", "campaign_id"]).reset_index(drop=True)  # noqa: E731
    accuracy_before = ordered(_accuracy(spark, config))
    before = accuracy_before.groupby("run_date").size().to_dict()
    first = _backtest_forecast(spark, config, results[-1].run_id)
    forecast_runs = lambda: set(delta_io.read_table(spark, BACKTEST_FORECAST, config.warehouse).select(  # noqa: E731
        "run_id").distinct().toPandas()["run_id"])
    runs_before = forecast_runs()
    order = [CAMPAIGN_PLANS.full_name, BACKTEST_FORECAST.full_name, FORECAST_ACCURACY.full_name]
    for kill_at in range(1, len(order) + 1):
        with pytest.raises(InjectedFault), fail_at(kill_at) as commits:
            backtest(spark, config, [RUN_DATES[-1]])
        assert [table for _, table in commits] == order[:kill_at]
        pd.testing.assert_frame_equal(ordered(_accuracy(spark, config)), accuracy_before)
        killed = forecast_runs() - runs_before
        assert len(killed) == max(0, kill_at - 2), killed
        for run in killed:
            pd.testing.assert_frame_equal(_backtest_forecast(spark, config, run)[["incremental_revenue"]].sort_index(),
                                          first[["incremental_revenue"]].sort_index())
    again = backtest(spark, config, [RUN_DATES[-1]])
    after = _accuracy(spark, config)
    assert after.groupby("run_date").size().to_dict() == before
    assert set(after.loc[after["run_date"] == RUN_DATES[-1], "run_id"]) == {again[0].run_id}
    # History is appended, never replaced: both backtest runs of the date are kept, with the same forecast.
    second = _backtest_forecast(spark, config, again[0].run_id)
    assert len(_backtest_forecast(spark, config, results[-1].run_id)) == len(first)
    pd.testing.assert_series_equal(second["incremental_revenue"].sort_index(),
                                   first["incremental_revenue"].sort_index())


def test_a_run_date_with_nothing_observed_yet_is_refused(spark, champion):
    with pytest.raises(InputError, match="not before observed_through"):
        backtest(spark, champion, [dt.date(2017, 12, 1)], observed_through=dt.date(2017, 11, 1))


def test_the_sql_doc_examples_run_on_a_nightly_warehouse(capsys, backtested):
    """docs/sql.md's checked examples come from a fixed example warehouse; on a warehouse the night wrote
    (scored, published, backtested: what `make demo` leaves) every one of them runs too, with the same
    columns; its numbers are the night's own."""
    from test_sql_endpoint import parse_table, promo_roi_sql, sql_doc_examples

    from promo_roi.analyst_views import LATEST_PROMOTION_LIFT_SCORECARD

    config, _, _ = backtested
    # The chain measures no product promotion (jobs/evaluate_promotions.py; `make demo` runs it): the
    # scorecard's query is refused, naming the view, instead of answering with nothing.
    unmeasured = LATEST_PROMOTION_LIFT_SCORECARD.full_name
    examples = sql_doc_examples()
    assert sum(unmeasured in sql for sql, _ in examples) == 1
    for sql, expected in examples:
        code, out, err = promo_roi_sql(capsys, Path(config.warehouse.root), sql)
        if unmeasured in sql:
            assert code != 0 and LATEST_PROMOTION_LIFT_SCORECARD.name in err, (code, err)
            continue
        assert code == 0, f"{sql}\n{err}"
        assert parse_table(out)[0] == parse_table(expected)[0], sql
