"""README's first command, `make demo`, down to its last step: where the night's report is.

The jobs the demo runs are tested on their own (tests/test_backtest.py runs the same chain); what only the
Makefile holds is its recipe. Its last line once failed with a shell-quoting NameError after every job had
succeeded, so the demo exited 2 on a fresh machine. The recipe is taken from `make -n demo` (nothing runs)
and its last line run as make would, against a reports root with and without the night's report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUN_DATE = "2017-07-01"


def _last_demo_line() -> str:
    dry = subprocess.run(["make", "-n", "--no-print-directory", "demo", f"AS_OF={RUN_DATE}"], cwd=REPO,
                         capture_output=True, text=True, check=True)
    lines = [line for line in dry.stdout.splitlines() if line.strip()]
    return lines[-1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_demo_ends_by_saying_where_the_report_is_and_exits_0(tmp_path):
    line = _last_demo_line()
    assert "demo_report_path.py" in line and RUN_DATE in line

    def run(root: Path) -> subprocess.CompletedProcess:
        env = {**os.environ, "PROMO_ROI__REPORTS__ROOT": str(root)}
        return subprocess.run(["bash", "-c", line], cwd=REPO, env=env, capture_output=True, text=True)

    missing = run(tmp_path / "reports")
    assert missing.returncode == 0, missing.stderr
    assert missing.stdout.strip() == (f"[demo] no report file for {RUN_DATE}: reports.root in conf/ says where "
                                      "reports go")

    report = tmp_path / "reports" / RUN_DATE / "report.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html></html>")
    found = run(tmp_path / "reports")
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == (f"[demo] the report of the night: {report} (every run: "
                                    f"{tmp_path / 'reports' / 'index.html'})")
