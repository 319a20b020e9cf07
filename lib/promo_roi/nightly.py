"""The nightly steps as the jobs run them: each Spark step, then the run report from what it published.

Scoring and the backtest never import the reporting package; this module,
above both, puts them in order (jobs/score.py, jobs/backtest.py). A report that
fails is logged and returned, never raised: the results are published, and
jobs/report.py renders the report again from the tables.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Sequence

from pyspark.sql import SparkSession

from promo_roi.config import AppConfig
from promo_roi.publication import published_run
from promo_roi.reporting.report import ReportOutcome, report_after_publication
from promo_roi.scoring.backtest import BacktestResult, backtest
from promo_roi.scoring.job import ScoringResult, score

log = logging.getLogger(__name__)


def score_and_report(spark: SparkSession, config: AppConfig, run_date: dt.date) -> tuple[ScoringResult, ReportOutcome]:
    """Scores and publishes ``run_date``, then writes its run report."""
    result = score(spark, config, run_date)
    return result, report_after_publication(spark, config, run_date, result.run_id)


def backtest_and_report(spark: SparkSession, config: AppConfig, run_dates: Sequence[dt.date],
                        observed_through: dt.date | None = None) -> list[tuple[BacktestResult, ReportOutcome | None]]:
    """Backtests ``run_dates``, then re-renders the report of each date that has a published scoring run (it
    now shows the backtest); a date nobody published has no report (None)."""
    out = []
    for result in backtest(spark, config, run_dates, observed_through):
        entry = published_run(spark, config, result.run_date)
        if entry is None:
            log.info("backtest %s: no published scoring run that night, no report to re-render", result.run_date)
            out.append((result, None))
            continue
        out.append((result, report_after_publication(spark, config, result.run_date, entry.run_id)))
    return out
