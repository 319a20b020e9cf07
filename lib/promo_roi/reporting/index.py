"""The index of run reports: ``<reports.root>/index.html``, one row per run date, newest first.

:func:`index_html` is pure (manifests in, HTML out); :func:`write_index`
reads the ``report.json`` manifest of every report directory under the root
and replaces ``index.html`` atomically (a temporary file renamed over it).
Reports written before manifests carried a plan summary are listed with
their run id and model version and "n/a" for the rest. Two reports finishing
at once each write a complete index; the later one may miss the other's
row until the next report writes the index again.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from promo_roi.reporting.markup import format_value
from promo_roi.reporting.page import stylesheet

INDEX_FILE = "index.html"
RUN_DIRECTORY = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # report directories are named by run date


def _cell(value: Any, kind: str) -> str:
    return html.escape(format_value(value, kind))


def _row(manifest: dict[str, Any], report_file: str) -> str:
    e = html.escape
    summary = manifest.get("summary") or {}
    run_date = str(manifest.get("run_date", "?"))
    funded = summary.get("campaigns_funded_ids")
    funded_text = "n/a" if funded is None else (", ".join(map(str, funded)) or "none")
    low, high = summary.get("profit_low"), summary.get("profit_high")
    interval = "n/a" if low is None or high is None else f"{_cell(low, 'money')} to {_cell(high, 'money')}"
    cells = [
        ("run_date", "txt", f'<a href="{e(run_date)}/{e(report_file)}">{e(run_date)}</a>'),
        ("model_version", "txt", e(str(manifest.get("model_version", "n/a")))),
        ("campaigns_forecast", "num", _cell(summary.get("campaigns_forecast"), "int")),
        ("campaigns_funded", "txt", e(funded_text)),
        ("budget_used", "num", _cell(summary.get("budget_used"), "money")),
        ("total_budget", "num", _cell(summary.get("total_budget"), "money")),
        ("expected_incremental_profit", "num", _cell(summary.get("expected_incremental_profit"), "money")),
        ("profit_interval", "num", interval),
        ("run_id", "txt", e(str(manifest.get("run_id", "n/a")))),
    ]
    return "<tr>" + "".join(f'<td class="{kind}" data-col="{key}">{text}</td>' for key, kind, text in cells) + "</tr>"


def index_html(manifests: list[dict[str, Any]], currency: str, report_file: str, written_at: dt.datetime) -> str:
    """The index page over ``manifests`` (``report.json`` contents), newest run date first."""
    rows = sorted(manifests, key=lambda m: str(m.get("run_date", "")), reverse=True)
    body = "".join(_row(m, report_file) for m in rows) if rows else (
        '<tr><td class="txt" colspan="9">No run report yet.</td></tr>')
    e = html.escape
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Promotion ROI reports</title>
<style>
{stylesheet()}</style></head>
<body><main>
<h1>Promotion ROI reports</h1>
<div class="subtitle">{len(rows)} published run{'s' if len(rows) != 1 else ''}, newest first &middot; amounts in
{e(currency)} &middot; each run date links to its report</div>
<div class="table-wrap"><table id="runs">
<thead><tr><th class="txt">Run date</th><th class="txt">Model version</th><th class="num">Campaigns forecast</th>
<th class="txt">Campaigns funded</th><th class="num">Planned spend ({e(currency)})</th>
<th class="num">Total budget ({e(currency)})</th><th class="num">Expected incremental profit ({e(currency)})</th>
<th class="num">Its interval</th><th class="txt">Scoring run id</th></tr></thead>
<tbody>{body}</tbody></table></div>
<footer>Written {e(written_at.strftime('%Y-%m-%d %H:%M UTC'))} from the reports' report.json files.</footer>
</main></body></html>
"""


def read_manifests(root: Path, manifest_file: str) -> list[dict[str, Any]]:
    """The manifests of the report directories under ``root`` (hidden and unreadable ones left out)."""
    out = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and RUN_DIRECTORY.match(p.name)):
        try:
            out.append(json.loads((directory / manifest_file).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # a report without a readable manifest is not listed
    return out


def write_index(root: Path, currency: str, report_file: str, manifest_file: str) -> Path:
    """Replaces ``root/index.html`` with the index of the reports under ``root``."""
    text = index_html(read_manifests(root, manifest_file), currency, report_file,
                      dt.datetime.now(dt.timezone.utc))
    final = root / INDEX_FILE
    for leftover in root.glob(f".{INDEX_FILE}.tmp-*"):  # of a writer killed before its rename
        leftover.unlink(missing_ok=True)
    tmp = root / f".{INDEX_FILE}.tmp-{uuid.uuid4().hex}"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, final)
    return final
