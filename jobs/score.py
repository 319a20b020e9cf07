"""Nightly scoring: per-campaign ROI forecasts from the champion model, published all-or-nothing.

    spark-submit jobs/score.py --run-date 2017-07-01 [--budget 2000 | --target-roi 0.2] [--profile local|cluster]
                               [--set scoring.gross_margin=0.3 ...]

Needs bronze, silver.user_features for the run date (jobs/build_features.py)
and a `champion` model (jobs/train.py). Seeds gold.campaign_plans with the
campaigns that start on or after the run date (planners add their own rows),
checks the inputs (freshness, row counts, null shares) before writing
anything, scores every (household, planned campaign) pair in Spark with the
model loaded once per worker, forecasts each campaign's calibrated
incremental revenue and ROI with an interval, plans the budget (which
households each campaign targets), and publishes gold.household_scores,
gold.campaign_roi_forecast, gold.budget_plan and gold.household_targeting for
the run date; the run is recorded in gold.publication_log last, and the
*_published views show only recorded runs.

Planning: `--budget B` maximises expected incremental profit within a total
budget B (default: planning.total_budget); `--target-roi R` switches to
target-ROI mode (every targeted household must return at least R on its
cost; a --budget given as well still caps the spend).
Rerunning a date replaces its run; a failed run leaves the last published one.
"""

from __future__ import annotations

import logging

from promo_roi.entrypoint import exit_with, iso_date, job_parser, run_job


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Score planned campaigns and publish ROI forecasts.")
    parser.add_argument("--run-date", required=True, type=iso_date, help="the night's date (YYYY-MM-DD)")
    parser.add_argument("--budget", type=float, help="total budget of the plan (default: planning.total_budget)")
    parser.add_argument("--target-roi", type=float,
                        help="plan in target-ROI mode: target only where ROI stays above this (e.g. 0.2)")
    args = parser.parse_args(argv)
    # Arguments are overrides of the config, so the job logs one resolved configuration.
    if args.target_roi is not None:
        args.overrides += ["planning.mode=target_roi", f"planning.target_roi={args.target_roi}"]
        if args.budget is None:
            args.overrides.append("planning.total_budget=null")
    if args.budget is not None:
        args.overrides.append(f"planning.total_budget={args.budget}")

    def body(spark, config) -> None:
        from promo_roi.nightly import score_and_report
        from promo_roi.scoring.job import describe

        result, report = score_and_report(spark, config, args.run_date)
        logging.getLogger("promo_roi.job").info("score: published %s; report: %s", describe(result),
                                                report.describe())

    return run_job("score", args, body)


if __name__ == "__main__":
    exit_with(main())
