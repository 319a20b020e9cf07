"""What every job's main() shares: common flags, config, session, exit codes."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
from typing import Callable

from pyspark.sql import SparkSession

from promo_roi.config import AppConfig, ConfigError, load_config
from promo_roi.observability import configure_logging
from promo_roi.validation import InputError

log = logging.getLogger("promo_roi.job")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def iso_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {value!r}") from exc


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from exc
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {number}")
    return number


def job_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--profile", help="configuration profile in conf/ (default: $PROMO_ROI_PROFILE or local)")
    parser.add_argument("--conf-dir", help="directory holding base.yaml and the profiles")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one setting, e.g. --set warehouse.root=/data/wh (repeatable)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def config_from_args(args: argparse.Namespace) -> AppConfig:
    return load_config(
        profile=args.profile, conf_dir=args.conf_dir, overrides=args.overrides, env=os.environ
    )


def run_job(
    name: str,
    args: argparse.Namespace,
    body: Callable[[SparkSession, AppConfig], None],
) -> int:
    """Builds config and session, runs ``body``, maps failures to exit codes."""
    from promo_roi.session import build_spark_session

    configure_logging(args.log_level)
    started = time.monotonic()
    try:
        config = config_from_args(args)
        spark = build_spark_session(config, app_name=f"promo-roi-{name}")
        body(spark, config)
    except (InputError, ConfigError) as exc:
        log.error("%s refused its input: %s", name, exc)
        return EXIT_BAD_INPUT
    except Exception:
        log.exception("%s failed", name)
        return EXIT_FAILED
    log.info("%s finished in %.1f s", name, time.monotonic() - started)
    return EXIT_OK


def exit_with(code: int) -> None:
    sys.stdout.flush()
    sys.exit(code)


