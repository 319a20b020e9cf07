"""Run report: re-render the HTML report of a published scoring run from the gold tables.

    spark-submit jobs/report.py --run-date 2017-07-01 [--profile local|cluster] [--set reports.root=/srv/reports ...]

The scoring job writes the report of each run it publishes; this job renders
it again from what is published for the run date (gold.campaign_roi_forecast,
gold.budget_plan, gold.household_targeting, gold.forecast_accuracy up to the
date, and the run model's uplift calibration, Qini and curves from
gold.model_evaluation and gold.uplift_curves), for instance after a backtest
added forecast accuracy. It replaces <reports.root>/<run date>/ whole
(report.html, its PNG charts, report.json) and logs the files to the scoring
run's MLflow run (experiment reports.experiment). A run date with no
published run exits 2; any other failure exits 1 and leaves the previous
report in place.

    spark-submit jobs/report.py --run-date 2017-07-01 --backfill-curves

first stores the uplift curves of the run's model version when it was trained
before training stored them: its evaluation on the held-out campaigns is
repeated with the registered model (no retraining) and the curves are stored
only if the Qini computed from them equals the Qini the version was judged on.
"""

from __future__ import annotations

import logging

from promo_roi.entrypoint import exit_with, iso_date, job_parser, run_job


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Re-render the run report of a published scoring run.")
    parser.add_argument("--run-date", required=True, type=iso_date, help="the scoring run's date (YYYY-MM-DD)")
    parser.add_argument("--backfill-curves", action="store_true",
                        help="first store the uplift curves of the run's model if training predates them")
    args = parser.parse_args(argv)

    def body(spark, config) -> None:
        from promo_roi.reporting.data import backfill_curves
        from promo_roi.reporting.report import publish_report

        if args.backfill_curves:
            backfill_curves(spark, config, args.run_date)
        outcome = publish_report(spark, config, args.run_date)
        logging.getLogger("promo_roi.job").info("report: %s", outcome.describe())

    return run_job("report", args, body)


if __name__ == "__main__":
    exit_with(main())
