"""Build the point-in-time feature tables for one as-of date.

    spark-submit jobs/build_features.py --as-of 2017-07-01 [--profile local|cluster] [--set key=value ...]

Reads bronze (run jobs/ingest.py first) and replaces the as_of_date slice of
silver.user_features, silver.item_features, silver.campaign_features and
silver.campaign_exposures, each in one Delta transaction. Nothing dated on or
after the as-of date is used. Rerunning a date replaces the same rows.
"""

from __future__ import annotations

from promo_roi.entrypoint import exit_with, iso_date, job_parser, run_job
from promo_roi.features import build_features


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Build point-in-time feature tables.")
    parser.add_argument("--as-of", required=True, type=iso_date, help="first day not observed (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    return run_job("build_features", args, lambda spark, config: build_features(spark, config, args.as_of))


if __name__ == "__main__":
    exit_with(main())
