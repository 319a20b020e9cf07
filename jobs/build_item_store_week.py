"""Build silver.item_store_week for the weeks that ended before an as-of date.

    spark-submit jobs/build_item_store_week.py --as-of 2017-07-01 [--profile local|cluster] [--set key=value ...]

Reads bronze (run jobs/ingest.py first) and replaces, in one Delta
transaction, every week of silver.item_store_week that ended before the as-of
date: units, sales and the store's discount per product, store and week, with
the week's display and mailer placements (lib/promo_roi/product_promotions/).
A week's rows read nothing dated after its end, so rerunning, or running for a
later date, gives the same rows for the same weeks.
"""

from __future__ import annotations

from promo_roi.entrypoint import exit_with, iso_date, job_parser, run_job
from promo_roi.product_promotions.item_store_week import build_item_store_weeks


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Build silver.item_store_week for the weeks ended before an as-of date.")
    parser.add_argument("--as-of", required=True, type=iso_date, help="first day not observed (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    return run_job("build_item_store_week", args,
                   lambda spark, config: build_item_store_weeks(spark, config, args.as_of))


if __name__ == "__main__":
    exit_with(main())
