"""Says where `make demo`'s night report is: the last step of `make demo`.

    python scripts/demo_report_path.py 2017-07-01

Asks the configuration where reports go (``reports.root``, read with the
environment as the jobs read it: PROMO_ROI_PROFILE, PROMO_ROI__REPORTS__ROOT, ...)
instead of repeating its reports/-beside-the-warehouse rule. Prints one line
and exits 0 either way: a missing report is news for the reader, not a failed
demo (the jobs before it have already said whether they worked).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from promo_roi.config import load_config


def report_line(run_date: str, env: dict[str, str]) -> str:
    reports = load_config(env=env).reports
    path = Path(reports.root, run_date, "report.html") if reports and reports.root else None
    if path is None or not path.is_file():
        return f"[demo] no report file for {run_date}: reports.root in conf/ says where reports go"
    return f"[demo] the report of the night: {path} (every run: {path.parent.parent / 'index.html'})"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: demo_report_path.py RUN_DATE", file=sys.stderr)
        return 2
    print(report_line(argv[0], dict(os.environ)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
