"""Check the latest ingest against bronze.ingest_audit before anything reads bronze.

    spark-submit jobs/check_quality.py [--profile local|cluster] [--set key=value ...]

Reads the audit of the latest ingest back and compares it with what the
warehouse holds now (lib/promo_roi/ingest_checks.py): every source table
ingested in that run, rows read = written + quarantined, quarantined share
within its threshold, the bronze table still at the audited Delta version
and row count, bronze.quarantine matching the audit by reason. Writes
nothing. Exit code 2 names every table and rule that failed.
"""

from __future__ import annotations

from promo_roi.entrypoint import exit_with, job_parser, run_job
from promo_roi.ingest_checks import check_ingest_audit


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Check the latest ingest against its audit.")
    args = parser.parse_args(argv)
    return run_job("check_quality", args, lambda spark, config: check_ingest_audit(spark, config))


if __name__ == "__main__":
    exit_with(main())
