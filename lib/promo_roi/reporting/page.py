"""The report pages: :func:`render_html` turns a :class:`~promo_roi.reporting.data.ReportData` into the HTML
text of report.html, of its appendix diagnostics.html and the charts they show, writing nothing.

report.html is for the people who decide: the recommendation (:mod:`promo_roi.reporting.headline`), the
header (KPI tiles, how to read the numbers, the run), then the numbered sections of
:mod:`promo_roi.reporting.sections`. diagnostics.html is for whoever judges the model: its calibration and
its uplift curves with the Qini table. The style sheet is ``report.css`` beside this module, inlined so
that each page stays one self-contained file.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from importlib import resources

import pandas as pd

from promo_roi.reporting import summaries
from promo_roi.reporting.data import ReportData
from promo_roi.reporting.headline import recommendation_html
from promo_roi.reporting.markup import Column, format_value, html_table, kpi
from promo_roi.reporting.sections import APPENDIX_SECTIONS, MODEL_LABELS, OUTCOME_LABELS, ROI_UNIT, SECTIONS, Chart

STYLESHEET = "report.css"
CALIBRATION_COLUMNS = (
    Column("outcome", "Outcome"), Column("model_name", "Score calibrated"), Column("metric", "Coefficient"),
    Column("value", "Value", "num"),
    Column("ci_low", "95% low", "num"), Column("ci_high", "95% high", "num"),
    Column("n_rows", "Held-out rows", "int"), Column("n_campaigns", "Held-out campaigns", "int"),
)
CALIBRATION_METRICS = {"calibration_intercept": "intercept ({unit} per household)",
                       "calibration_slope": "slope (x predicted uplift)",
                       "calibration_ratio": "ratio (observed / predicted redemption probability)",
                       # A new campaign's own deviation from the line (DerSimonian-Laird; in every interval).
                       "between_campaign_sd": "between-campaign sd ({unit} per household)",
                       # scoring.redemption_model: shrunk (causal/calibration.py).
                       "shrunk_count_intercept": "shrunk count: intercept (redemptions per household)",
                       "shrunk_count_slope": "shrunk count: slope (x predicted redemption probability)"}
# The redemption ratio's campaign effect is on the log scale.
LOG_SCALE_UNIT = "log of the ratio"

# The two redemption ratios: redeemers scale the probability, redemptions (several per redeemer) the cost.
CALIBRATION_OUTCOMES = {"redeemed": "redeemers (probability)", "redemptions": "redemptions (count, for the cost)"}


DIAGNOSTICS_FILE = "diagnostics.html"  # the appendix: how the model was judged, beside report.html


@dataclass(frozen=True)
class Page:
    html: str  # the text of report.html
    charts: tuple[Chart, ...]  # the PNGs both pages show, in page order
    diagnostics_html: str = ""  # the text of diagnostics.html, the model-diagnostics appendix


def stylesheet() -> str:
    """The page's CSS (``report.css``, packaged with this module)."""
    return resources.files(__package__).joinpath(STYLESHEET).read_text(encoding="utf-8")


def _model_text(data: ReportData) -> str:
    m = data.model
    text = f"{m.registered_model} version {m.version}"
    if m.trained_as_of:
        text += f", trained as of {m.trained_as_of}"
    if m.mlflow_run_id:
        text += f" (MLflow run {m.mlflow_run_id})"
    if m.current_champion and m.current_champion != m.version:
        text += f"; the champion is now version {m.current_champion}"
    elif m.lookup_error:
        text += f"; MLflow lookup failed: {m.lookup_error}"
    return text


def _calibration(data: ReportData, cur: str) -> str:
    calibration = summaries.calibration_summary(data.evaluation) if not data.evaluation.empty else pd.DataFrame()
    if not len(calibration):
        return (f'<div class="notice">The calibration coefficients are not in gold.model_evaluation for this '
                f"model: {html.escape(data.evaluation_note or 'no rows')}. The forecast still used the calibration "
                "stored with the model, described above.</div>")
    units = {"spend": cur, "coupon_product_spend": cur, "redemptions": LOG_SCALE_UNIT, "redeemed": LOG_SCALE_UNIT}
    calibration["metric"] = [CALIBRATION_METRICS[m].format(unit=units.get(o, "")) if m in CALIBRATION_METRICS else m
                             for o, m in zip(calibration["outcome"], calibration["metric"])]
    calibration["outcome"] = calibration["outcome"].map(lambda o: CALIBRATION_OUTCOMES.get(o, OUTCOME_LABELS.get(o, o)))
    calibration["model_name"] = calibration["model_name"].map(lambda m: MODEL_LABELS.get(m, m))
    return (
        "<p>The model's raw uplift is not used as an effect: it is calibrated on held-out campaigns as "
        "effect = intercept + slope x predicted uplift (redemptions: scaled by a ratio), fitted against doubly "
        "robust effects. Where the network did not rank the validation campaigns' households better than their "
        "pre-period coupon-product spend, that spend is the score the spend lines calibrate, and households are "
        "valued and ranked by it (evaluation.ranking). A slope near 0 means little of the predicted variation "
        "between households is real; the forecast then rests mostly on the intercept, the average effect seen "
        "on the held-out campaigns. The between-campaign sd is how far a new campaign's own level is estimated "
        "to lie from that average; every forecast interval includes it.</p>"
        + html_table(calibration, CALIBRATION_COLUMNS, "calibration-table",
                     caption="Uplift calibration of this model (gold.model_evaluation, 95% bootstrap "
                             "intervals: campaigns, then households)"))


def _about(data: ReportData, cur: str) -> str:
    e = html.escape
    rows = [
        ("Run date", str(data.run_date)), ("Scoring run id", data.run_id),
        ("Published", format_value(data.published_at, "datetime") + " UTC"),
        ("Model", _model_text(data)),
        ("Calibration used", data.interval_method or "n/a"),
        ("Amounts", f"{cur}; {ROI_UNIT}"),
    ]
    return ('<section id="about"><h2>About this run</h2><dl class="meta">'
            + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows) + "</dl>"
            + f'<p>How the model was judged (its calibration, uplift curves and Qini against the baselines) is on '
              f'the <a href="{DIAGNOSTICS_FILE}">model diagnostics page</a>.</p></section>')


def _reading_note(data: ReportData) -> str:
    label = html.escape(data.interval_label)
    level = html.escape(data.interval_label.split(" ")[0]) if "%" in data.interval_label else "most"
    return f"""<div class="note"><b>How to read these numbers</b><ul>
<li><b>Incremental</b> means caused by the campaign: what its households spend because they were targeted, beyond
what they would have spent anyway. It is estimated, not observed: the model's predicted uplift, calibrated against
doubly robust effects on campaigns held out from training.</li>
<li><b>The {label}s</b> come from re-running the calibration on bootstrap resamples of the held-out campaigns and
households: {level} of the resampled forecasts fall inside. They show how much the answer depends on which past
campaigns the model learned from; they do not cover a campaign unlike any seen before, and with only a few held-out
campaigns they are rough. An interval that includes 0 means the data cannot tell whether the campaign makes or loses
money. The backtest section shows how often past intervals covered what happened.</li>
<li><b>Targeted vs untargeted differences are not effects.</b> Campaigns target the households that already spend
most (2-3x more before any campaign), so a naive comparison of targeted and untargeted households reports that gap as
if the campaign caused it. Every effect in this report is corrected for that selection; the naive difference is
shown only in the backtest, for contrast.</li>
</ul></div>"""


def _kpis(data: ReportData, cur: str) -> str:
    totals = (summaries.plan_totals(data.plan, data.pairs_targeted, data.households_targeted)
              if len(data.plan) else None)
    cells = [kpi(f"{len(data.forecast):,}", "campaigns forecast")]
    if totals:
        cells += [
            kpi(f"{totals['campaigns_funded']:,}", "campaigns the plan funds"),
            kpi(f"{format_value(totals['budget_used'], 'money')}", f"planned spend, {cur}"),
            kpi(f"{format_value(totals['expected_incremental_profit'], 'money')}",
                f"expected incremental profit, {cur}" + (
                    f" ({data.interval_label} {format_value(totals['profit_low'], 'money')} to "
                    f"{format_value(totals['profit_high'], 'money')})"
                    if totals["profit_low"] is not None and totals["profit_high"] is not None
                    else " (point forecast; see intervals)")),
            kpi(f"{totals['households_targeted']:,}", "households targeted"),
        ]
    if data.accuracy is not None and len(data.accuracy):
        covers = data.accuracy["interval_covers_realized"].dropna().astype(bool)
        cells.append(kpi(f"{int(covers.sum())} of {len(covers)}",
                         "backtest forecasts whose interval covered the realized effect"))
    return '<div class="kpis">' + "".join(cells) + "</div>"


def _diagnostics_html(data: ReportData, currency: str, sections: list, footer: str) -> str:
    e = html.escape
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Model diagnostics, run {e(str(data.run_date))}</title>
<style>
{stylesheet()}</style></head>
<body><main>
<h1>Model diagnostics: run of {e(str(data.run_date))}</h1>
<div class="subtitle">Model {e(data.model.registered_model)} version {e(data.model.version)} &middot; amounts in
{e(currency)} &middot; the appendix of the <a href="report.html">run report</a></div>
<section id="calibration"><h2>Calibration of the model's uplift</h2>{_calibration(data, currency)}</section>
{''.join(section.html for section in sections)}
{footer}
</main></body></html>
"""


def render_html(data: ReportData, currency: str, rendered_at: dt.datetime) -> Page:
    """report.html's and diagnostics.html's text and their charts; ``rendered_at`` (UTC) is the time the
    footers state."""
    sections = [render(data, currency) for render in SECTIONS]
    appendix = [render(data, currency) for render in APPENDIX_SECTIONS]
    rendered = rendered_at.strftime("%Y-%m-%d %H:%M UTC")
    sources = ", ".join(f"{name} v{version}" for name, version in sorted(data.table_versions.items()))
    e = html.escape
    footer = (f"<footer>Rendered {e(rendered)} from the published gold tables ({e(sources)}); scoring run "
              f"{e(data.run_id)}.\nRe-render with <code>spark-submit jobs/report.py --run-date "
              f"{e(str(data.run_date))}</code>.</footer>")
    text = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Promotion ROI report, run {e(str(data.run_date))}</title>
<style>
{stylesheet()}</style></head>
<body><main>
<h1>Promotion ROI report: run of {e(str(data.run_date))}</h1>
<div class="subtitle">Model {e(data.model.registered_model)} version {e(data.model.version)} &middot; published
{e(format_value(data.published_at, 'datetime'))} UTC &middot; amounts in {e(currency)}</div>
<nav><a href="#recommendation">Recommendation</a><a href="#about">About this run</a><a href="#roi">1. ROI per campaign</a><a href="#budget">2. Budget
allocation</a><a href="#backtest">3. Forecast vs realized</a><a href="{DIAGNOSTICS_FILE}">Model diagnostics (appendix)</a></nav>
{recommendation_html(data, currency)}
{_kpis(data, currency)}
{_reading_note(data)}
{_about(data, currency)}
{''.join(section.html for section in sections)}
{footer}
</main></body></html>
"""
    charts = tuple(chart for section in (*sections, *appendix) for chart in section.charts)
    return Page(text, charts, _diagnostics_html(data, currency, appendix, footer))
