"""Backtest: what the current champion would have forecast on past run dates, against what then happened.

    spark-submit jobs/backtest.py --run-dates 2017-07-01,2017-08-01,2017-09-01 [--observed-through 2018-01-01]
                                  [--profile local|cluster] [--set key=value ...]

For each run date: builds the features as of that date if they are missing,
runs the night's forecasting step for it with the current champion and
appends the forecasts to gold.backtest_forecast under a new run id (nothing
published that night is replaced), then writes the date's slice of
gold.forecast_accuracy: for every forecast campaign that ended before
--observed-through (default: the end of the source data) and that the
champion never saw in training, the forecast incremental revenue and ROI
against the realized effect on the targeted households (doubly robust, the
same selection correction as training's evaluation, with its own interval and
a pre-period placebo), the error and how the two intervals agree. Then it
re-renders the run report of every date that has a published scoring run
(reports/<run date>/, with its backtest). Rerunning appends a new backtest
run and replaces the date's accuracy slice.
"""

from __future__ import annotations

import argparse
import logging

from promo_roi.entrypoint import exit_with, iso_date, job_parser, run_job


def date_list(value: str):
    try:
        return [iso_date(v.strip()) for v in value.split(",") if v.strip()]
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"--run-dates: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Backtest the forecasts of past run dates against realized effects.")
    parser.add_argument("--run-dates", required=True, type=date_list,
                        help="comma-separated past run dates (YYYY-MM-DD,...)")
    parser.add_argument("--observed-through", type=iso_date,
                        help="outcomes known up to this date (default: the source's data_end)")
    args = parser.parse_args(argv)
    if not args.run_dates:
        parser.error("--run-dates: no date given")

    def body(spark, config) -> None:
        from promo_roi.nightly import backtest_and_report

        log = logging.getLogger("promo_roi.job")
        for r, report in backtest_and_report(spark, config, args.run_dates, args.observed_through):
            log.info("backtest %s: run %s, %d campaigns compared %s, skipped %s; report: %s", r.run_date, r.run_id,
                     r.rows, r.campaigns, r.skipped, "none (nothing published that night)" if report is None
                     else report.describe())

    return run_job("backtest", args, body)


if __name__ == "__main__":
    exit_with(main())
