"""The night's headline figures, as README's "Headline results" quotes them, from the published tables.

    spark-submit scripts/headline_figures.py --run-date 2017-07-01     # or python scripts/...

Reads what the run report reads (:func:`promo_roi.reporting.data.load_report_data`: the published run of
the date, its plan, the whole plan's profit interval, the spend-profit curve, the backtest up to the date)
and prints Markdown bullets stamped with the run date, run id, model version and when they were read, so
that a figure in README can be traced to the run that produced it and regenerated on another warehouse
(the same --profile / --conf-dir / --set options as every job). Figures differ between trainings of the
same data (docs/tests.md, docs/ground-truth.md): regenerate them rather than edit them.
"""

from __future__ import annotations

import datetime as dt
import sys

from promo_roi.entrypoint import exit_with, iso_date, job_parser, run_job
from promo_roi.reporting.data import load_report_data
from promo_roi.reporting.headline import headline_markdown


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--run-date", type=iso_date, required=True, help="the published run date (YYYY-MM-DD)")
    args = parser.parse_args(argv)

    def body(spark, config) -> None:
        data = load_report_data(spark, config, args.run_date)
        currency = config.reports.currency if config.reports else "USD"
        print(headline_markdown(data, currency, dt.datetime.now(dt.timezone.utc)), flush=True)

    return run_job("headline_figures", args, body)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
