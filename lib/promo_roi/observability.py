"""Logging: every stage logs its name, rows and seconds."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Iterator

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Called once by each job's main(); the library only creates loggers."""
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    for noisy in ("py4j", "pyspark"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class StageReport:
    def __init__(self) -> None:
        self.rows: int | None = None
        self.detail: str = ""


@contextmanager
def stage(log: logging.Logger, name: str) -> Iterator[StageReport]:
    """Logs '<name>: started' and '<name>: done, N rows in S s' (or failed)."""
    report = StageReport()
    started = time.monotonic()
    log.info("%s: started", name)
    try:
        yield report
    except Exception:
        log.error("%s: failed after %.1f s", name, time.monotonic() - started)
        raise
    rows = "" if report.rows is None else f", {report.rows:,} rows"
    detail = f" ({report.detail})" if report.detail else ""
    log.info("%s: done%s in %.1f s%s", name, rows, time.monotonic() - started, detail)
