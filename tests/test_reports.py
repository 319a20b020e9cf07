"""Run reports: the summaries and charts on hand-written rows, then a scored and backtested fixture run.

The end-to-end tests read the report back (HTML tables, images, manifest,
MLflow artifacts) and compare every number with what the gold tables hold,
computed here from the tables themselves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.reporting import charts
from promo_roi.reporting import data as report_data
from promo_roi.reporting import markup
from promo_roi.reporting import report
from promo_roi.reporting import sections
from promo_roi.reporting import summaries
from promo_roi.reporting.page import DIAGNOSTICS_FILE
from promo_roi.tables import (
    BUDGET_PLAN,
    CAMPAIGN_ROI_FORECAST,
    FORECAST_ACCURACY,
    HOUSEHOLD_TARGETING,
    MODEL_EVALUATION,
    PUBLICATION_LOG,
    UPLIFT_CURVES,
)

RUN_DATE = dt.date(2017, 7, 1)
REPO = Path(__file__).resolve().parents[1]


# --- reading a report back -----------------------------------------------------------------------


class _Page(HTMLParser):
    """Tables by id (rows of {data-col: text}, the tfoot row apart), images, section ids, text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, str]]] = {}
        self.footers: dict[str, dict[str, str]] = {}
        self.images: list[str] = []
        self.sections: list[str] = []
        self.text: list[str] = []
        self._table = self._row = self._col = None
        self._in_foot = False
        self._cell: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tfoot":
            self._in_foot = True
        elif tag == "tr" and self._table:
            self._row = {}
        elif tag in ("td", "th") and self._row is not None:
            self._col, self._cell = a.get("data-col"), []
        elif tag == "img":
            self.images.append(a["src"])
        elif tag == "section":
            self.sections.append(a.get("id"))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._col:
            self._row[self._col] = "".join(self._cell).strip()
            self._col = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                if self._in_foot:
                    self.footers[self._table] = self._row
                else:
                    self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "tfoot":
            self._in_foot = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._col is not None:
            self._cell.append(data)
        self.text.append(data)


def page(directory: Path, name: str = report.REPORT_FILE) -> _Page:
    p = _Page()
    p.feed((directory / name).read_text(encoding="utf-8"))
    p.full_text = " ".join(" ".join(p.text).split())
    return p


def number(text: str) -> float | None:
    if text == "n/a":
        return None
    return float(text.replace(",", "").rstrip("%"))


def money(text: str, expected) -> bool:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return text == "n/a"
    return abs(number(text) - float(expected)) <= 0.005 + 1e-9 * abs(float(expected))


def ratio(text: str, expected) -> bool:
    """An ROI cell: the stored ratio with 2 decimals, no percent sign (one ROI unit across report and SQL)."""
    return not text.endswith("%") and money(text, expected)


def pct(text: str, expected) -> bool:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return text == "n/a"
    return text.endswith("%") and abs(number(text) - 100 * float(expected)) <= 0.05 + 1e-9 * abs(100 * float(expected))


def num4(text: str, expected) -> bool:
    return abs(number(text) - float(expected)) <= 0.00005 + 1e-12


# --- summaries, on hand-written rows ---------------------------------------------------------------


def _forecast_rows() -> pd.DataFrame:
    return pd.DataFrame([
        {"campaign_id": 2, "campaign_type": "Type A", "start_date": dt.date(2017, 8, 1), "end_date": dt.date(2017, 9, 1),
         "audience": 100, "audience_source": "campaign_target_list", "expected_redemptions": 5.0,
         "incremental_revenue": 1000.0, "incremental_gross_profit": 300.0, "cost": 60.0, "roi": 4.0,
         "roi_low": 0.5, "roi_high": 6.0},
        {"campaign_id": 1, "campaign_type": "Type B", "start_date": dt.date(2017, 7, 15), "end_date": dt.date(2017, 8, 1),
         "audience": 50, "audience_source": "all_households", "expected_redemptions": 1.0,
         "incremental_revenue": -100.0, "incremental_gross_profit": -30.0, "cost": 26.0, "roi": -2.1538461538,
         "roi_low": -3.0, "roi_high": 1.0},
        {"campaign_id": 3, "campaign_type": "Type C", "start_date": dt.date(2017, 9, 1), "end_date": dt.date(2017, 10, 1),
         "audience": 10, "audience_source": "campaign_target_list", "expected_redemptions": 0.0,
         "incremental_revenue": -50.0, "incremental_gross_profit": -15.0, "cost": 5.0, "roi": -4.0,
         "roi_low": -5.0, "roi_high": -1.0},
    ])


def test_roi_summary_orders_by_start_and_says_where_the_interval_lies():
    s = summaries.roi_summary(_forecast_rows())
    assert list(s["campaign_id"]) == [1, 2, 3]
    assert list(s["incremental_profit"]) == [-56.0, 240.0, -20.0]
    assert list(s["interval_verdict"]) == ["includes 0", "above 0", "below 0"]
    assert summaries.interval_verdict(None, 1.0) == "no interval"
    assert summaries.interval_verdict(float("nan"), 1.0) == "no interval"
    assert summaries.interval_verdict(0.0, 1.0) == "includes 0"


def test_budget_summary_totals_and_the_targeting_cross_check():
    plan = pd.DataFrame([
        {"campaign_id": 1, "planning_mode": "fixed_budget", "total_budget": 100.0, "target_roi": None,
         "household_cap": 2, "budget": 30.0, "min_budget": None, "max_budget": 50.0, "audience": 3,
         "expected_redemptions": 1.5, "expected_incremental_revenue": 200.0, "expected_incremental_profit": 30.0,
         "expected_incremental_profit_low": -5.0, "expected_incremental_profit_high": 60.0, "roi": 1.0,
         "roi_low": -0.2, "roi_high": 2.0, "marginal_roi": 0.4, "forced_households": 0, "min_budget_shortfall": 0.0,
         "plan_budget_used": 30.0, "plan_gap": 0.0},
        {"campaign_id": 2, "planning_mode": "fixed_budget", "total_budget": 100.0, "target_roi": None,
         "household_cap": 2, "budget": 0.0, "min_budget": None, "max_budget": None, "audience": 0,
         "expected_redemptions": 0.0, "expected_incremental_revenue": 0.0, "expected_incremental_profit": 0.0,
         "expected_incremental_profit_low": None, "expected_incremental_profit_high": None, "roi": None,
         "roi_low": None, "roi_high": None, "marginal_roi": None, "forced_households": 0, "min_budget_shortfall": 0.0,
         "plan_budget_used": 30.0, "plan_gap": 0.0},
    ])
    targeting = pd.DataFrame({"campaign_id": [1, 1, 1], "household_id": [10, 11, 12],
                              "expected_cost": [10.0, 12.0, 8.0], "expected_incremental_profit": [20.0, 4.0, 6.0],
                              "forced": [False, False, True], "in_overlap": [True, False, None]})
    counts = summaries.targeting_counts(targeting)
    assert counts.to_dict("records") == [{"campaign_id": 1, "households": 3, "spend": 30.0, "profit": 30.0, "forced": 1,
                                          "outside_overlap": 1, "spend_outside_overlap": 12.0, "overlap_unknown": 1}]
    assert summaries.plan_mismatches(plan, counts) == []
    totals = summaries.plan_totals(plan, pairs_targeted=3, households_targeted=3)
    assert totals["budget_used"] == 30.0 and totals["total_budget"] == 100.0 and totals["target_roi"] is None
    assert (totals["campaigns_planned"], totals["campaigns_funded"]) == (2, 1)
    assert totals["expected_incremental_profit"] == 30.0
    summary = summaries.budget_summary(plan, _forecast_rows())
    assert list(summary["campaign_id"]) == [1, 2]  # both start dates known: 07-15, 08-01
    assert list(summary["funded"]) == [True, False]
    assert list(summary["campaign_type"]) == ["Type B", "Type A"]
    # One household less in the targeting list than the plan says: flagged.
    problems = summaries.plan_mismatches(plan, summaries.targeting_counts(targeting.iloc[:2]))
    assert problems == ["campaign 1: budget_plan 3 households / 30.00, household_targeting 2 households / 22.00"]


def _curves() -> pd.DataFrame:
    # 10 held-out rows; targeting the top k gains these (sum of phi); random gains k/10 of the total 4.0.
    gains = [0.0, 3.0, 5.0, 6.0, 6.5, 6.0, 5.5, 5.0, 4.5, 4.2, 4.0]
    rows = [{"model_name": "transformer", "split": "test", "scope": "overall", "outcome": "spend", "point": k,
             "n_rows": 10, "fraction_targeted": k / 10, "gain": g, "random_gain": 0.4 * k} for k, g in enumerate(gains)]
    rows += [{**r, "model_name": "lgbm_t_learner", "gain": r["random_gain"]} for r in rows]
    return pd.DataFrame(rows)


def test_gain_at_deciles_reads_the_stored_points():
    g = summaries.gain_at_deciles(_curves(), "transformer", "test", "overall", "spend", deciles=(0.1, 0.5, 1.0))
    assert g["rows_targeted"].tolist() == [1, 5, 10]
    assert g["gain"].tolist() == [3.0, 6.0, 4.0]
    assert g["random_gain"].tolist() == pytest.approx([0.4, 2.0, 4.0])
    assert g["gain_over_random"].tolist() == pytest.approx([2.6, 4.0, 0.0])
    assert summaries.gain_at_deciles(_curves(), "transformer", "test", "overlap", "spend").empty


def test_qini_and_calibration_summaries():
    ev = pd.DataFrame([
        {"model_name": "transformer", "split": "test", "scope": "overall", "outcome": "spend", "metric": "qini",
         "value": 0.5, "ci_low": -0.1, "ci_high": 1.0, "n_rows": 100, "n_campaigns": 2},
        {"model_name": "transformer", "split": "test", "scope": "overall", "outcome": "spend", "metric": "auuc",
         "value": 2.5, "ci_low": 1.0, "ci_high": 3.0, "n_rows": 100, "n_campaigns": 2},
        {"model_name": "transformer", "split": "validation", "scope": "overall", "outcome": "spend", "metric": "qini",
         "value": 9.0, "ci_low": 8.0, "ci_high": 10.0, "n_rows": 50, "n_campaigns": 2},
        {"model_name": "transformer", "split": "heldout", "scope": "calibration", "outcome": "spend",
         "metric": "calibration_slope", "value": 0.3, "ci_low": 0.1, "ci_high": 0.6, "n_rows": 150, "n_campaigns": 4},
    ])
    q = summaries.qini_summary(ev, "test", ["spend"])
    assert q.to_dict("records") == [{"outcome": "spend", "scope": "overall", "model_name": "transformer", "qini": 0.5,
                                     "qini_low": -0.1, "qini_high": 1.0, "auuc": 2.5, "n_rows": 100}]
    cal = summaries.calibration_summary(ev)
    assert cal[["metric", "value", "ci_low", "ci_high"]].to_dict("records") == [
        {"metric": "calibration_slope", "value": 0.3, "ci_low": 0.1, "ci_high": 0.6}]


def _ensemble_rows() -> pd.DataFrame:
    base = {"split": "test", "scope": "ensemble", "outcome": "coupon_product_spend", "ci_low": None,
            "ci_high": None, "n_rows": 40, "n_campaigns": 2}
    rows = [{**base, "model_name": f"transformer_member_{k}", "metric": "qini", "value": v}
            for k, v in ((1, 0.4), (2, -0.2), (3, 0.1))]
    rows += [{**base, "model_name": "transformer", "metric": m, "value": v}
             for m, v in (("qini", 0.25), ("members", 3.0), ("member_qini_sd", 0.3), ("member_uplift_sd", 1.5),
                          ("mean_abs_uplift", 4.0))]
    rows.append({**base, "split": "validation", "model_name": "transformer", "metric": "members", "value": 3.0})
    return pd.DataFrame(rows)


def test_the_ensemble_summary_reads_how_far_the_members_disagree_and_stays_out_of_the_qini_table():
    from promo_roi.reporting import sections

    ev = _ensemble_rows()
    assert summaries.ensemble_summary(ev, "test") == {
        "members": 3, "member_qini_min": -0.2, "member_qini_max": 0.4, "member_qini_sd": 0.3, "qini": 0.25,
        "member_uplift_sd": 1.5, "mean_abs_uplift": 4.0}
    assert summaries.ensemble_summary(ev[ev.scope != "ensemble"], "test") is None
    assert summaries.qini_summary(ev, "test", ["coupon_product_spend"]).empty
    note = sections._ensemble_note(ev, "7", "USD")
    assert "Version 7 is the average of 3 networks" in note
    assert "ranged from -0.20 to 0.40 (standard deviation 0.30; the average's 0.25)" in note
    assert "differed by 1.50 USD" in note and "mean absolute uplift of 4.00" in note
    assert sections._ensemble_note(ev[ev.scope != "ensemble"], "7", "USD") == ""


def _accuracy_rows() -> pd.DataFrame:
    base = {"campaign_type": "Type B", "start_date": dt.date(2017, 8, 1), "end_date": dt.date(2017, 9, 1),
            "naive_incremental_revenue": 900.0, "forecast_roi": 0.1, "realized_roi": 0.2}
    return pd.DataFrame([
        {**base, "run_date": dt.date(2017, 7, 1), "campaign_id": 5, "audience": 10,
         "forecast_incremental_revenue": 100.0, "forecast_incremental_revenue_low": 50.0,
         "forecast_incremental_revenue_high": 150.0, "realized_incremental_revenue": 80.0,
         "realized_incremental_revenue_low": 0.0, "realized_incremental_revenue_high": 160.0,
         "error": 20.0, "absolute_error": 20.0, "interval_covers_realized": True},
        {**base, "run_date": dt.date(2017, 7, 1), "campaign_id": 6, "audience": 20,
         "forecast_incremental_revenue": 200.0, "forecast_incremental_revenue_low": 150.0,
         "forecast_incremental_revenue_high": 250.0, "realized_incremental_revenue": -40.0,
         "realized_incremental_revenue_low": -100.0, "realized_incremental_revenue_high": 20.0,
         "error": 240.0, "absolute_error": 240.0, "interval_covers_realized": False},
        {**base, "run_date": dt.date(2017, 6, 1), "campaign_id": 5, "audience": 10,
         "forecast_incremental_revenue": 60.0, "forecast_incremental_revenue_low": 10.0,
         "forecast_incremental_revenue_high": 90.0, "realized_incremental_revenue": 80.0,
         "realized_incremental_revenue_low": 0.0, "realized_incremental_revenue_high": 160.0,
         "error": -20.0, "absolute_error": 20.0, "interval_covers_realized": False},
    ])


def test_accuracy_by_run_date_follows_the_analyst_view():
    by_date = summaries.accuracy_by_run_date(_accuracy_rows())
    assert by_date.to_dict("records") == [
        {"run_date": dt.date(2017, 6, 1), "campaigns": 1, "forecast_incremental_revenue": 60.0,
         "realized_incremental_revenue": 80.0, "mean_error": -20.0, "mean_absolute_error": 20.0, "wape": 0.25,
         "interval_coverage": 0.0},
        {"run_date": dt.date(2017, 7, 1), "campaigns": 2, "forecast_incremental_revenue": 300.0,
         "realized_incremental_revenue": 40.0, "mean_error": 130.0, "mean_absolute_error": 130.0,
         "wape": 260.0 / 120.0, "interval_coverage": 0.5},
    ]
    detail = summaries.accuracy_summary(_accuracy_rows())
    assert list(zip(detail["campaign_id"], detail["run_date"])) == [
        (5, dt.date(2017, 6, 1)), (5, dt.date(2017, 7, 1)), (6, dt.date(2017, 7, 1))]


def test_cell_formats_and_table_markup():
    assert markup.format_value(1234.567, "money") == "1,234.57"
    assert markup.format_value(-0.05432, "pct") == "-5.4%"
    assert markup.format_value(13.5678, "ratio") == "13.57"
    assert markup.format_value(-1234.5, "ratio") == "-1,234.50"
    assert markup.format_value(1234.0, "int") == "1,234"
    assert markup.format_value(float("nan"), "money") == "n/a"
    assert markup.format_value(None, "pct") == "n/a"
    assert markup.format_value(dt.date(2017, 7, 1), "date") == "2017-07-01"
    assert markup.format_value(True, "bool") == "yes"
    frame = pd.DataFrame([{"campaign_id": 7, "cost": -2.5, "roi_low": -1.0, "roi": None}])
    html = markup.html_table(frame, [markup.Column("campaign_id", "Campaign"),
                                     markup.Column("cost", "Cost (USD)", "money"),
                                     markup.Column("roi_low", "ROI low", "ratio"), markup.Column("roi", "ROI", "ratio")],
                             "t", totals={"cost": -2.5})
    p = _Page()
    p.feed(html)
    assert p.tables["t"] == [{"campaign_id": "7", "cost": "-2.50", "roi_low": "-1.00", "roi": "n/a"}]
    assert p.footers["t"] == {"campaign_id": "total", "cost": "-2.50"}
    assert 'class="num neg" data-col="cost"' in html  # a loss is red
    assert 'class="num" data-col="roi_low"' in html  # an interval bound is not
    assert "<th class=\"num\">Cost (USD)</th>" in html


# --- charts, on hand-written rows -----------------------------------------------------------------


def _png_ok(fig, path: Path) -> tuple[int, int]:
    charts.save_png(fig, path)
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def _zero_line(ax) -> bool:
    return any(list(line.get_xdata()) == [0, 0] for line in ax.get_lines())


def test_roi_chart_shows_each_campaign_with_its_interval_and_a_zero_line(tmp_path):
    fig = charts.roi_chart(summaries.roi_summary(_forecast_rows()), "90% interval")
    ax, text_ax = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["#1 (Type B)", "#2 (Type A)", "#3 (Type C)"]
    assert _zero_line(ax)
    # One error-bar series per verdict; points as the stored ratio, first campaign at the top (y = 2).
    points = {}
    for container in ax.containers:
        line = container.lines[0]
        for x, y in zip(line.get_xdata(), line.get_ydata()):
            points[int(y)] = x
    assert points == pytest.approx({2: -2.1538461538, 1: 4.0, 0: -4.0})
    bars = {}
    for container in ax.containers:
        for segment in container.lines[2][0].get_segments():
            bars[int(segment[0][1])] = (segment[0][0], segment[1][0])
    assert bars == {2: pytest.approx((-3.0, 1.0)), 1: pytest.approx((0.5, 6.0)), 0: pytest.approx((-5.0, -1.0))}
    assert [t.get_text() for t in text_ax.texts] == ["-2.15  [-3.00, 1.00]", "4.00  [0.50, 6.00]", "-4.00  [-5.00, -1.00]"]
    assert "break-even" in ax.get_xlabel() and "%" not in ax.get_xlabel()
    assert "90% interval" in ax.get_title(loc="left")
    width, height = _png_ok(fig, tmp_path / "roi.png")
    assert width == int(charts.WIDTH_IN * charts.DPI)


def test_roi_chart_keeps_long_campaign_lists_legible(tmp_path):
    many = pd.DataFrame([{**_forecast_rows().iloc[0].to_dict(), "campaign_id": i, "cost": float(i)} for i in range(1, 61)])
    fig = charts.roi_chart(summaries.roi_summary(many), max_rows=40)
    ax, text_ax = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 40 and labels[0] == "#21 (Type A)" and labels[-1] == "#60 (Type A)"  # the 40 costliest
    assert any("20 more campaigns in the table below" in t.get_text() for t in text_ax.texts)
    _w, height = _png_ok(fig, tmp_path / "many.png")
    assert height >= 40 * charts.ROW_IN * charts.DPI  # a fixed height per row, not squeezed


def test_budget_chart_spend_and_households(tmp_path):
    plan = pd.DataFrame([
        {"campaign_id": 1, "campaign_type": "Type B", "start_date": dt.date(2017, 7, 1), "budget": 30.0,
         "min_budget": 20.0, "max_budget": None, "audience": 3},
        {"campaign_id": 2, "campaign_type": "Type A", "start_date": dt.date(2017, 8, 1), "budget": 0.0,
         "min_budget": None, "max_budget": None, "audience": 0},
    ])
    fig = charts.budget_chart(plan, "USD", "Budget allocation: 30.00 of 100.00 USD planned")
    spend_ax, people_ax = fig.axes
    assert [p.get_width() for p in spend_ax.patches] == [30.0, 0.0]
    assert [p.get_width() for p in people_ax.patches] == [3.0, 0.0]
    assert [t.get_text() for t in spend_ax.texts] == ["30", "not funded"]
    assert [t.get_text() for t in people_ax.texts] == ["3", "not funded"]
    assert spend_ax.collections[0].get_label() == "min budget"
    assert spend_ax.collections[0].get_offsets()[0].tolist() == [20.0, 1.0]  # on campaign 1's row (the top one)
    assert "USD" in spend_ax.get_xlabel() and people_ax.get_xlabel() == "households targeted"
    assert spend_ax.get_title(loc="left") == "Budget allocation: 30.00 of 100.00 USD planned"
    _png_ok(fig, tmp_path / "budget.png")


def test_uplift_chart_champion_against_random(tmp_path):
    fig = charts.uplift_chart(_curves(), "transformer", "test", "overall", [("spend", "Total spend")], "USD",
                         baselines=("lgbm_t_learner",))
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert lines["champion (transformer)"].get_ydata().tolist() == [0.0, 3.0, 5.0, 6.0, 6.5, 6.0, 5.5, 5.0, 4.5, 4.2, 4.0]
    assert lines["random targeting"].get_ydata().tolist() == pytest.approx([0.4 * k for k in range(11)])
    assert lines["champion (transformer)"].get_xdata().tolist() == pytest.approx([10.0 * k for k in range(11)])
    assert ax.xaxis.get_major_formatter()(50.0, 0) == "50%"  # the share of households targeted
    assert "LightGBM T-learner" in lines
    assert ax.get_title(loc="left") == "Total spend (n = 10)"
    assert "USD" in ax.get_ylabel()
    _png_ok(fig, tmp_path / "uplift.png")


def test_accuracy_chart_forecast_and_realized_per_row(tmp_path):
    fig = charts.accuracy_chart(summaries.accuracy_summary(_accuracy_rows()), "USD")
    (ax,) = fig.axes
    labels = ax.get_yticklabels()
    assert [t.get_text() for t in labels] == ["#5 (Type B), run 2017-06-01", "#5 (Type B), run 2017-07-01",
                                              "#6 (Type B), run 2017-07-01"]
    # The interval missed for the first and last rows: their labels are red.
    assert [t.get_color() for t in labels] == ["#b2182b", "black", "#b2182b"]
    forecast, realized = ax.containers
    assert forecast.lines[0].get_xdata().tolist() == [60.0, 100.0, 200.0]
    assert realized.lines[0].get_xdata().tolist() == [80.0, 80.0, -40.0]
    segments = [(s[0][0], s[1][0]) for s in realized.lines[2][0].get_segments()]
    assert segments == [(0.0, 160.0), (0.0, 160.0), (-100.0, 20.0)]
    assert _zero_line(ax)
    _png_ok(fig, tmp_path / "accuracy.png")


def test_write_atomically_replaces_whole_and_a_failure_leaves_the_old_report(tmp_path):
    def fill(text):
        def _fill(out: Path):
            (out / "report.html").write_text(text)
        return _fill

    report.write_atomically(tmp_path, "2017-07-01", fill("first"))
    (tmp_path / "2017-07-01" / "extra.png").write_text("stale")

    def broken(out: Path):
        (out / "report.html").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        report.write_atomically(tmp_path, "2017-07-01", broken)
    assert (tmp_path / "2017-07-01" / "report.html").read_text() == "first"
    report.write_atomically(tmp_path, "2017-07-01", fill("second"))
    assert sorted(p.name for p in (tmp_path / "2017-07-01").iterdir()) == ["report.html"]  # replaced whole
    assert (tmp_path / "2017-07-01" / "report.html").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2017-07-01"]  # no temporary directories left


# --- end to end on the fixture ---------------------------------------------------------------------


class _MlflowDown(RuntimeError):
    pass


@pytest.fixture(scope="module")
def reported(spark, scored, copy_warehouse):
    """Scores RUN_DATE as jobs/score.py does, with the MLflow step of its report failing, keeps that report's
    text, then backtests RUN_DATE as jobs/backtest.py does (forecasts it without publishing, adds its forecast
    accuracy, renders the published run's report again)."""
    from promo_roi.nightly import backtest_and_report, score_and_report

    config = copy_warehouse(scored[0], "reports")
    root = Path(config.reports.root)
    config = dataclasses.replace(config, reports=dataclasses.replace(
        config.reports, experiment="promo-roi-scoring-tests"))

    def mlflow_down(*_args, **_kwargs):
        raise _MlflowDown("tracking server unavailable")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(report, "log_report", mlflow_down)
        scored_run = score_and_report(spark, config, RUN_DATE)
    directory = root / RUN_DATE.isoformat()
    first = {"html": (directory / report.REPORT_FILE).read_text(),
             "manifest": json.loads((directory / report.MANIFEST_FILE).read_text()),
             "log_run_id": _log_entry(spark, config).run_id}
    ((backtested, _report),) = backtest_and_report(spark, config, [RUN_DATE])
    return config, scored_run, first, backtested


def _log_entry(spark, config):
    return delta_io.read_table(spark, PUBLICATION_LOG, config.warehouse).filter(
        F.col("run_date") == F.lit(RUN_DATE)).first()


def _published(spark, spec, config) -> pd.DataFrame:
    """The publication rule, written out here: rows of the run in gold.publication_log for RUN_DATE."""
    run_id = _log_entry(spark, config).run_id
    return delta_io.read_table(spark, spec, config.warehouse).filter(
        (F.col("run_date") == F.lit(RUN_DATE)) & (F.col("run_id") == run_id)).toPandas()


def _directory(config) -> Path:
    return Path(config.reports.root) / RUN_DATE.isoformat()


def _model_run(config, version: str) -> str:
    from mlflow import MlflowClient

    training, _, mlflow_config = config.require_training()
    import mlflow

    mlflow.set_tracking_uri(mlflow_config.tracking_uri)
    return MlflowClient().get_model_version(training.registered_model, version).run_id


def test_the_scoring_job_writes_the_report_and_an_mlflow_failure_unpublishes_nothing(spark, reported):
    config, (scored, report), first, _ = reported
    # MLflow failed after the local report was written: logged, the run stays published, the report stays.
    assert report.error and "tracking server unavailable" in report.error
    assert report.directory == str(_directory(config))
    assert first["log_run_id"] == scored.run_id
    assert first["manifest"]["run_id"] == scored.run_id
    assert "No backtest yet" in first["html"]  # nothing backtested up to RUN_DATE when it was scored
    assert f"Promotion ROI report: run of {RUN_DATE}" in first["html"]


def test_the_report_has_every_section_and_valid_charts(spark, reported):
    config, _, _, backtested = reported
    directory = _directory(config)
    p = page(directory)
    assert p.sections == ["recommendation", "about", "roi", "budget", "backtest", "promotions"]
    version = _log_entry(spark, config).model_version
    assert f"run of {RUN_DATE}" in p.full_text and f"version {version}" in p.full_text
    assert "Calibration used" in p.full_text and "bootstrap draws" in p.full_text
    assert "Targeted vs untargeted differences are not effects" in p.full_text
    assert "90% intervals" in p.full_text
    assert "No backtest yet" not in p.full_text
    diagnostics = page(directory, DIAGNOSTICS_FILE)
    assert diagnostics.sections == ["calibration", "uplift"] and "No uplift curves" not in diagnostics.full_text
    assert 'href="diagnostics.html"' in (directory / report.REPORT_FILE).read_text()
    assert diagnostics.images == [sections.CHART_FILES["uplift"]]
    assert sorted(p.images + diagnostics.images) == sorted(sections.CHART_FILES.values())
    for name in p.images + diagnostics.images:
        with Image.open(directory / name) as im:
            im.verify()
        with Image.open(directory / name) as im:
            assert im.format == "PNG" and im.size[0] >= 800 and im.size[1] >= 300
    manifest = json.loads((directory / report.MANIFEST_FILE).read_text())
    # The re-rendered report is still the published run's: the backtest forecast beside it, it published nothing.
    assert manifest["run_id"] == reported[1][0].run_id == _log_entry(spark, config).run_id != backtested.run_id
    # The fixture's chain measures no product promotion: the section says so and how to, the manifest too.
    assert manifest["missing"] == {"product_promotions": "no promotion_lift_evaluation as of the run date or before"}
    assert "Not measured yet. gold.promotion_lift_evaluation does not exist yet." in p.full_text
    assert sorted(os.listdir(directory)) == sorted([*sections.CHART_FILES.values(), report.REPORT_FILE, DIAGNOSTICS_FILE,
                                                report.MANIFEST_FILE])
    assert [n for n in os.listdir(directory.parent) if n.startswith(".")] == []
    # The index of reports beside it lists this run and links its report.
    runs = _index_rows((directory.parent / "index.html").read_text())
    assert [(r["run_date"], r["run_id"]) for r in runs] == [(RUN_DATE.isoformat(), manifest["run_id"])]
    assert manifest["summary"]["campaigns_forecast"] == len(_published(spark, CAMPAIGN_ROI_FORECAST, config))


def test_roi_table_is_the_published_forecast(spark, reported):
    config = reported[0]
    forecast = _published(spark, CAMPAIGN_ROI_FORECAST, config).set_index("campaign_id")
    rows = {int(r["campaign_id"]): r for r in page(_directory(config)).tables["roi-table"]}
    assert set(rows) == set(forecast.index) and len(rows) >= 5
    for cid, r in rows.items():
        f = forecast.loc[cid]
        assert number(r["audience"]) == f.audience
        assert r["start_date"] == str(f.start_date) and r["campaign_type"] == f.campaign_type
        for key in ("expected_redemptions", "incremental_revenue", "incremental_gross_profit", "cost"):
            assert money(r[key], f[key]), (cid, key, r[key], f[key])
        assert money(r["incremental_profit"], f.incremental_gross_profit - f.cost)
        for key in ("roi", "roi_low", "roi_high"):
            assert ratio(r[key], f[key]), (cid, key, r[key], f[key])
        assert r["interval_verdict"] == ("above 0" if f.roi_low > 0 else "below 0" if f.roi_high < 0 else "includes 0")


def test_budget_table_is_the_published_plan_and_its_targeting(spark, reported):
    config = reported[0]
    plan = _published(spark, BUDGET_PLAN, config).set_index("campaign_id")
    targeting = _published(spark, HOUSEHOLD_TARGETING, config)
    p = page(_directory(config))
    rows = {int(r["campaign_id"]): r for r in p.tables["budget-table"]}
    assert set(rows) == set(plan.index)
    per_campaign = targeting.groupby("campaign_id").agg(n=("household_id", "size"), spend=("expected_cost", "sum"))
    assert len(per_campaign) >= 1, "the fixture's plan funds nothing"
    for cid, r in rows.items():
        b = plan.loc[cid]
        households = int(per_campaign.loc[cid, "n"]) if cid in per_campaign.index else 0
        spend = float(per_campaign.loc[cid, "spend"]) if cid in per_campaign.index else 0.0
        assert number(r["audience"]) == b.audience == households
        assert money(r["budget"], b.budget) and money(r["budget"], spend)
        for key in ("expected_redemptions", "expected_incremental_profit", "expected_incremental_profit_low",
                    "expected_incremental_profit_high"):
            assert money(r[key], b[key]), (cid, key)
        for key in ("roi", "roi_low", "roi_high", "marginal_roi"):
            assert ratio(r[key], b[key]), (cid, key, r[key], b[key])
    foot = p.footers["budget-table"]
    assert money(foot["budget"], targeting["expected_cost"].sum())
    assert number(foot["audience"]) == len(targeting)
    used = plan["plan_budget_used"].iloc[0]
    assert f"spends {used:,.2f} USD" in p.full_text
    assert f"({targeting['household_id'].nunique():,} distinct households)" in p.full_text


def test_uplift_tables_are_the_champions_stored_curves_and_evaluation(spark, reported):
    config = reported[0]
    version = _log_entry(spark, config).model_version
    run = _model_run(config, version)
    curves = delta_io.read_table(spark, UPLIFT_CURVES, config.warehouse).filter(
        F.col("mlflow_run_id") == run).toPandas()
    evaluation = delta_io.read_table(spark, MODEL_EVALUATION, config.warehouse).filter(
        F.col("mlflow_run_id") == run).toPandas()
    p = page(_directory(config), DIAGNOSTICS_FILE)  # the model-diagnostics appendix
    gains = p.tables["gain-table"]
    labels = {"coupon-product spend": "coupon_product_spend", "total spend": "spend"}
    assert len(gains) == 20  # ten deciles of two outcomes
    for r in gains:
        c = curves[(curves["model_name"] == "transformer") & (curves["split"] == "test")
                   & (curves["scope"] == "overall") & (curves["outcome"] == labels[r["outcome"]])]
        share = number(r["share_targeted"]) / 100
        point = c.iloc[(c["fraction_targeted"] - share).abs().argmin()]
        assert number(r["rows_targeted"]) == point.point
        assert money(r["gain"], point.gain) and money(r["random_gain"], point.random_gain)
        assert money(r["gain_over_random"], point.gain - point.random_gain)
    # The stored curve is the one behind the published Qini: its trapezoid matches up to the thinning.
    c = curves[(curves["model_name"] == "transformer") & (curves["split"] == "test") & (curves["scope"] == "overall")
               & (curves["outcome"] == "spend")].sort_values("point")
    x, g = c["fraction_targeted"].to_numpy(), c["gain"].to_numpy()
    area = float(np.sum(np.diff(x) * (g[1:] + g[:-1]) / 2))
    qini = evaluation[(evaluation["model_name"] == "transformer") & (evaluation["split"] == "test")
                      & (evaluation["scope"] == "overall") & (evaluation["outcome"] == "spend")
                      & (evaluation["metric"] == "qini")]["value"].iloc[0]
    n = c["n_rows"].iloc[0]
    assert (area - g[-1] / 2) / n == pytest.approx(qini, abs=0.05 * max(1.0, abs(qini)))
    models = {"champion (transformer)": "transformer", "LightGBM T-learner": "lgbm_t_learner",
              "heuristic: pre-period spend": "heuristic_pre_spend"}
    scopes = {"all": "overall", "overlap band": "overlap"}
    outcomes = {**labels, "redemptions": "redeemed"}
    qini_rows = p.tables["qini-table"]
    assert len(qini_rows) >= 9
    for r in qini_rows:
        e = evaluation[(evaluation["split"] == "test") & (evaluation["model_name"] == models[r["model_name"]])
                       & (evaluation["scope"] == scopes[r["scope"]]) & (evaluation["outcome"] == outcomes[r["outcome"]])]
        q = e[e["metric"] == "qini"].iloc[0]
        assert num4(r["qini"], q.value) and num4(r["qini_low"], q.ci_low) and num4(r["qini_high"], q.ci_high)
        assert num4(r["auuc"], e[e["metric"] == "auuc"]["value"].iloc[0])
        assert number(r["n_rows"]) == q.n_rows
    calibration = p.tables["calibration-table"]
    stored = evaluation[evaluation["scope"] == "calibration"]
    # Intercept, slope and between-campaign sd per spend outcome; two redemption ratios and the count's sd;
    # the shrunk count's intercept and slope.
    assert len(calibration) == len(stored) == 11
    assert {r["metric"] for r in calibration} >= {"shrunk count: intercept (redemptions per household)",
                                                   "shrunk count: slope (x predicted redemption probability)"}
    assert sorted(number(r["value"]) for r in calibration) == pytest.approx(sorted(stored["value"]), abs=0.00005)


def test_backtest_tables_are_the_forecast_accuracy_up_to_the_run_date(spark, reported):
    config = reported[0]
    accuracy = delta_io.read_table(spark, FORECAST_ACCURACY, config.warehouse).filter(
        F.col("run_date") <= F.lit(RUN_DATE)).toPandas()
    assert len(accuracy) >= 1
    p = page(_directory(config))
    rows = {(int(r["campaign_id"]), r["run_date"]): r for r in p.tables["accuracy-table"]}
    assert set(rows) == {(int(a.campaign_id), str(a.run_date)) for a in accuracy.itertuples()}
    for a in accuracy.itertuples():
        r = rows[(int(a.campaign_id), str(a.run_date))]
        for key in ("forecast_incremental_revenue", "forecast_incremental_revenue_low",
                    "forecast_incremental_revenue_high", "realized_incremental_revenue",
                    "realized_incremental_revenue_low", "realized_incremental_revenue_high", "error",
                    "naive_incremental_revenue"):
            assert money(r[key], getattr(a, key)), (a.campaign_id, key)
        assert r["interval_covers_realized"] == ("yes" if a.interval_covers_realized else "no")
    (by_date,) = p.tables["accuracy-by-date-table"]
    assert by_date["run_date"] == str(RUN_DATE) and number(by_date["campaigns"]) == len(accuracy)
    assert money(by_date["mean_error"], accuracy["error"].mean())
    assert money(by_date["mean_absolute_error"], accuracy["absolute_error"].mean())
    assert pct(by_date["wape"], accuracy["absolute_error"].sum() / accuracy["realized_incremental_revenue"].abs().sum())
    assert pct(by_date["interval_coverage"], accuracy["interval_covers_realized"].mean())


def _mlflow_runs(config, run_id: str):
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(config.require_training().mlflow.tracking_uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(config.reports.experiment)
    return client, client.search_runs([experiment.experiment_id], filter_string=f"tags.`promo_roi.run_id` = '{run_id}'")


def test_the_scoring_run_in_mlflow_has_the_report(spark, reported):
    config, (scored, _), _, _ = reported
    client, runs = _mlflow_runs(config, scored.run_id)
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["promo_roi.run_date"] == RUN_DATE.isoformat()
    assert run.data.tags["promo_roi.model_version"] == _log_entry(spark, config).model_version
    assert run.info.status == "FINISHED"
    logged = sorted(Path(a.path).name for a in client.list_artifacts(run.info.run_id, report.MLFLOW_ARTIFACT_DIR))
    assert logged == sorted(os.listdir(_directory(config)))
    assert run.data.metrics["campaigns_forecast"] == len(_published(spark, CAMPAIGN_ROI_FORECAST, config))


def test_the_report_job_rerenders_and_replaces_the_report(spark, reported, job_overrides, monkeypatch):
    import importlib.util

    config, (scored, _), _, _ = reported
    directory = _directory(config)
    before = json.loads((directory / report.MANIFEST_FILE).read_text())
    spec = importlib.util.spec_from_file_location("report_job", REPO / "jobs" / "report.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    monkeypatch.setattr("promo_roi.entrypoint.configure_logging", lambda level: None)  # keep pytest's handlers
    for name in [n for n in os.environ if n.startswith("PROMO_ROI")]:
        monkeypatch.delenv(name)
    args = ["--run-date", RUN_DATE.isoformat()]
    for item in [*job_overrides(config.warehouse.root), f"mlflow.tracking_uri={config.mlflow.tracking_uri}",
                 f"reports.root={config.reports.root}", f"reports.experiment={config.reports.experiment}"]:
        args += ["--set", item]
    assert job.main(args) == 0
    after = json.loads((directory / report.MANIFEST_FILE).read_text())
    assert after["run_id"] == before["run_id"] and after["rendered_at"] > before["rendered_at"]
    assert sorted(os.listdir(directory)) == sorted([*sections.CHART_FILES.values(), report.REPORT_FILE, DIAGNOSTICS_FILE,
                                                report.MANIFEST_FILE])
    assert [n for n in os.listdir(directory.parent) if n.startswith(".")] == []
    _client, runs = _mlflow_runs(config, scored.run_id)
    assert len(runs) == 1  # the re-render logged into the scoring run's MLflow run
    assert runs[0].data.tags["promo_roi.report_rendered_at"] >= after["rendered_at"][:19]
    # A date with nothing published is refused (exit 2).
    assert job.main(["--run-date", "2016-01-01", *args[2:]]) == 2


def test_a_render_failure_keeps_the_publication_and_removes_a_superseded_report(spark, reported, monkeypatch, caplog):
    config = reported[0]
    directory = _directory(config)
    published_run = _log_entry(spark, config).run_id
    html_before = (directory / report.REPORT_FILE).read_text()

    def broken(*_args, **_kwargs):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(report, "render_html", broken)
    # The failing render is of the run the report already shows: that complete report stays.
    outcome = report.report_after_publication(spark, config, RUN_DATE, published_run)
    assert "renderer crashed" in outcome.error and outcome.directory == str(directory)
    assert (directory / report.REPORT_FILE).read_text() == html_before
    assert "The run's results ARE published" in caplog.text and "jobs/report.py --run-date 2017-07-01" in caplog.text
    # A newer run was published but its report failed: the old run's report must not pass for it.
    outcome = report.report_after_publication(spark, config, RUN_DATE, "a-newer-run")
    assert outcome.directory is None and not directory.exists()
    assert [n for n in os.listdir(directory.parent) if n.startswith(".")] == []
    assert _index_rows((directory.parent / "index.html").read_text()) == []  # nor does the index link it
    assert _log_entry(spark, config).run_id == published_run  # the publication is untouched
    monkeypatch.undo()
    assert report.publish_report(spark, config, RUN_DATE).directory == str(directory)
    assert [r["run_date"] for r in _index_rows((directory.parent / "index.html").read_text())] == [str(RUN_DATE)]


def test_a_report_says_what_is_missing_instead_of_failing(tmp_path):
    forecast = _forecast_rows().assign(
        interval_method="90% interval over 200 two-stage bootstrap draws (held-out campaigns, then households) "
                        "of the uplift calibration on campaigns [5, 6]")
    data = report_data.ReportData(
        run_date=RUN_DATE, run_id="run-1", published_at=dt.datetime(2017, 7, 1, 3, 0), forecast=forecast,
        model=report_data.ModelInfo("promo_roi_household_response", "4", "abc", dt.date(2017, 6, 1)),
        plan=pd.DataFrame(), targeting=summaries.targeting_counts(pd.DataFrame()), pairs_targeted=0, households_targeted=0,
        accuracy=None, evaluation=pd.DataFrame(columns=MODEL_EVALUATION.columns),
        curves=pd.DataFrame(columns=UPLIFT_CURVES.columns),
        evaluation_note="gold.model_evaluation has no rows of MLflow run abc",
        curves_note="gold.uplift_curves does not exist yet: version 4 was trained before training stored it")
    files = report.render_report(data, "USD", tmp_path)
    assert files == ["diagnostics.html", "report.html", "report.json", "roi_per_campaign.png"]
    p = page(tmp_path)
    diagnostics = page(tmp_path, DIAGNOSTICS_FILE)
    assert p.sections == ["recommendation", "about", "roi", "budget", "backtest", "promotions"]
    assert "No uplift curves stored for this model. gold.uplift_curves does not exist yet" in diagnostics.full_text
    assert "The calibration coefficients are not in gold.model_evaluation for this model" in diagnostics.full_text
    assert "No backtest yet. gold.forecast_accuracy does not exist yet" in p.full_text
    assert "This run published no budget plan" in p.full_text
    assert "No budget plan was published for this run: there is no recommendation." in p.full_text
    assert "version 4, trained as of 2017-06-01" in p.full_text
    assert [r["campaign_id"] for r in p.tables["roi-table"]] == ["1", "2", "3"]
    manifest = json.loads((tmp_path / report.MANIFEST_FILE).read_text())
    assert set(manifest["missing"]) == {"uplift_curves", "backtest", "product_promotions"} and manifest["charts"] == {"roi": "roi_per_campaign.png"}


def _lift_row(placement: str, model: str, wape: float, reference: str, difference: tuple[float, float, float],
              bias: float = 0.0) -> dict:
    return {"as_of_date": dt.date(2017, 7, 1), "first_held_out_week": 19, "last_held_out_week": 26, "model": model,
            "placement_type": placement, "rows": 100, "product_weeks": 40, "units": 500.0, "wape": wape,
            "wape_low": wape - 0.05, "wape_high": wape + 0.05, "reference_model": reference,
            "wape_minus_reference": difference[0], "difference_low": difference[1],
            "difference_high": difference[2], "bias": bias}


def test_the_product_promotions_section_says_which_forecast_wins_per_placement(tmp_path):
    """Hand-written yardstick rows: per placement type the lowest WAPE and LightGBM's paired difference from the
    best baseline in words (beats it, loses to it, not shown to differ), the table in placement order, and the
    side effects as loss rates."""
    lift = pd.DataFrame([
        _lift_row("mailer", "lgbm", 0.75, "category_lift", (0.05, 0.01, 0.09)),
        _lift_row("mailer", "category_lift", 0.70, "category_lift", (0.0, 0.0, 0.0)),
        _lift_row("display", "own_last_lift", 0.60, "own_last_lift", (0.0, 0.0, 0.0)),
        _lift_row("display", "lgbm", 0.55, "own_last_lift", (-0.05, -0.08, -0.02)),
        _lift_row("all", "no_lift", 0.926, "own_last_lift", (0.256, 0.202, 0.301), bias=-0.2),
        _lift_row("all", "lgbm", 0.680, "own_last_lift", (0.010, -0.006, 0.027), bias=0.144),
        _lift_row("all", "own_last_lift", 0.670, "own_last_lift", (0.0, 0.0, 0.0)),
    ])
    effects = pd.DataFrame([
        {"as_of_date": dt.date(2017, 7, 1), "effect": "pull_forward", "placement_type": "all", "events": 100,
         "expected_units": 50.0, "lost_units": -7.0, "loss_rate": -0.14, "loss_rate_low": -0.2, "loss_rate_high": -0.1},
        {"as_of_date": dt.date(2017, 7, 1), "effect": "cannibalisation", "placement_type": "all", "events": 40,
         "expected_units": 1000.0, "lost_units": 83.0, "loss_rate": 0.083, "loss_rate_low": 0.054,
         "loss_rate_high": 0.103},
    ])
    data = report_data.ReportData(
        run_date=RUN_DATE, run_id="run-1", published_at=dt.datetime(2017, 7, 1, 3, 0), forecast=_forecast_rows(),
        model=report_data.ModelInfo("promo_roi_household_response", "4", "abc", dt.date(2017, 6, 1)),
        plan=pd.DataFrame(), targeting=summaries.targeting_counts(pd.DataFrame()), pairs_targeted=0,
        households_targeted=0, accuracy=None, evaluation=pd.DataFrame(columns=MODEL_EVALUATION.columns),
        curves=pd.DataFrame(columns=UPLIFT_CURVES.columns), evaluation_note="none", curves_note="none",
        promotion_lift=lift, promotion_side_effects=effects)
    report.render_report(data, "USD", tmp_path)
    p = page(tmp_path)
    assert p.sections[-1] == "promotions"
    assert "As of 2017-07-01: the units of placed product-store-weeks in weeks 19-26" in p.full_text
    for verdict in (
        "every placement: the lowest WAPE is the product's own last lift's, 67.0%; LightGBM minus the best "
        "baseline (the product's own last lift): 1.0% [-0.6%, 2.7%], LightGBM is not shown to differ.",
        "display: the lowest WAPE is LightGBM's, 55.0%; LightGBM minus the best baseline (the product's own last "
        "lift): -5.0% [-8.0%, -2.0%], LightGBM beats it.",
        "mailer: the lowest WAPE is the category's lift's, 70.0%; LightGBM minus the best baseline (the "
        "category's lift): 5.0% [1.0%, 9.0%], LightGBM loses to it.",
    ):
        assert verdict in p.full_text
    rows = p.tables["promotion-lift-table"]
    assert [(r["placement"], r["model_label"], r["wape"]) for r in rows] == [
        ("every placement", "the product's own last lift", "67.0%"), ("every placement", "LightGBM", "68.0%"),
        ("every placement", "no lift (the baseline)", "92.6%"), ("display", "LightGBM", "55.0%"),
        ("display", "the product's own last lift", "60.0%"), ("mailer", "the category's lift", "70.0%"),
        ("mailer", "LightGBM", "75.0%")]
    assert (rows[1]["bias"], rows[1]["difference_low"], rows[1]["difference_high"]) == ("14.4%", "-0.6%", "2.7%")
    side = p.tables["promotion-side-effects-table"]
    assert [(r["effect_label"], r["lost_units"], r["loss_rate"], r["loss_rate_low"], r["loss_rate_high"])
            for r in side] == [("pull-forward (the week after)", "-7", "-14.0%", "-20.0%", "-10.0%"),
                               ("cannibalisation (the category's other products)", "83", "8.3%", "5.4%", "10.3%")]
    assert "product_promotions" not in json.loads((tmp_path / report.MANIFEST_FILE).read_text())["missing"]


def test_a_risk_aware_plan_says_what_the_rule_left_out(tmp_path):
    risk = {"risk_quantile": 0.1, "target_roi": None}
    plan = pd.DataFrame([
        {"campaign_id": 1, "planning_mode": "fixed_budget", "total_budget": 100.0, "household_cap": 2,
         "budget": 30.0, "min_budget": None, "max_budget": None, "audience": 3, "expected_redemptions": 1.5,
         "expected_incremental_revenue": 200.0, "expected_incremental_profit": 30.0,
         "expected_incremental_profit_low": 5.0, "expected_incremental_profit_high": 60.0, "roi": 1.0,
         "roi_low": 0.2, "roi_high": 2.0, "marginal_roi": 0.4, "forced_households": 0, "min_budget_shortfall": 0.0,
         "plan_budget_used": 30.0, "plan_gap": 0.0, **risk, "risk_quantile_roi": 0.31, "excluded_by_risk": False},
        {"campaign_id": 2, "planning_mode": "fixed_budget", "total_budget": 100.0, "household_cap": 2,
         "budget": 0.0, "min_budget": None, "max_budget": None, "audience": 0, "expected_redemptions": 0.0,
         "expected_incremental_revenue": 0.0, "expected_incremental_profit": 0.0,
         "expected_incremental_profit_low": None, "expected_incremental_profit_high": None, "roi": None,
         "roi_low": None, "roi_high": None, "marginal_roi": None, "forced_households": 0, "min_budget_shortfall": 0.0,
         "plan_budget_used": 30.0, "plan_gap": 0.0, **risk, "risk_quantile_roi": -0.75, "excluded_by_risk": True},
    ])
    targeting = pd.DataFrame({"campaign_id": [1, 1, 1], "household_id": [10, 11, 12],
                              "expected_cost": [10.0, 12.0, 8.0], "expected_incremental_profit": [20.0, 4.0, 6.0],
                              "forced": [False, False, False]})
    data = report_data.ReportData(
        run_date=RUN_DATE, run_id="run-1", published_at=dt.datetime(2017, 7, 1, 3, 0), forecast=_forecast_rows(),
        model=report_data.ModelInfo("promo_roi_household_response", "4", "abc", dt.date(2017, 6, 1)),
        plan=plan, targeting=summaries.targeting_counts(targeting), pairs_targeted=3, households_targeted=3,
        accuracy=None, evaluation=pd.DataFrame(columns=MODEL_EVALUATION.columns),
        curves=pd.DataFrame(columns=UPLIFT_CURVES.columns), evaluation_note="none", curves_note="none")
    report.render_report(data, "USD", tmp_path)
    p = page(tmp_path)
    rows = {r["campaign_id"]: r for r in p.tables["budget-table"] if r["campaign_id"] in ("1", "2")}
    assert rows["1"]["risk_quantile_roi"] == "0.31" and rows["1"]["risk_verdict"] == "clears the bar"
    assert rows["2"]["risk_quantile_roi"] == "-0.75" and rows["2"]["risk_verdict"] == "left out"
    assert ("Risk-aware plan. A campaign keeps its households only where its ROI at the 10.0% quantile"
            in p.full_text)
    assert "reaches break-even" in p.full_text
    assert "It left out campaign 2: a chance above 10.0% of falling short of it." in p.full_text
    # First on the page, the recommendation says the same (no whole-plan interval on these rows).
    assert "Fund campaign 1 (1 of 2 planned) with 30.00 USD of the 100.00 USD budget, targeting 3 households" in p.full_text
    assert "Left out by the risk rule : campaign 2, whose ROI at the 10.0% quantile falls short." in p.full_text
    assert "Budget left unspent : 70.00 USD of it" in p.full_text
    # A plan on expected profit has neither the columns nor the paragraph.
    expected = plan.assign(risk_quantile=None, risk_quantile_roi=None, excluded_by_risk=None)
    (tmp_path / "expected").mkdir()
    report.render_report(dataclasses.replace(data, plan=expected), "USD", tmp_path / "expected")
    q = page(tmp_path / "expected")
    assert "risk_verdict" not in q.tables["budget-table"][0] and "Risk-aware plan" not in q.full_text
    assert "or a risk judgement (the plan is on expected profit, planning.risk: expected) in this plan" in q.full_text


def _plan_row(campaign_id: int, **values) -> dict:
    base = {"campaign_id": campaign_id, "planning_mode": "fixed_budget", "total_budget": 100.0, "target_roi": None,
            "household_cap": 2, "budget": 0.0, "min_budget": None, "max_budget": None, "audience": 0,
            "expected_redemptions": 0.0, "expected_incremental_revenue": 0.0, "expected_incremental_profit": 0.0,
            "expected_incremental_profit_low": None, "expected_incremental_profit_high": None, "roi": None,
            "roi_low": None, "roi_high": None, "marginal_roi": None, "forced_households": 0,
            "min_budget_shortfall": 0.0, "plan_budget_used": 100.0, "plan_gap": 0.0, "risk_quantile": None,
            "risk_quantile_roi": None, "excluded_by_risk": None, "plan_profit_low": -20.0, "plan_profit_high": 80.0}
    return {**base, **values}


def test_the_recommendation_comes_first_with_the_plans_interval_and_what_to_watch(tmp_path):
    plan = pd.DataFrame([
        _plan_row(1, budget=60.0, audience=3, expected_incremental_profit=20.0, roi=0.33, marginal_roi=0.4),
        _plan_row(2, budget=40.0, audience=2, expected_incremental_profit=10.0, roi=0.25, marginal_roi=0.1),
        _plan_row(3),
    ])
    targeting = pd.DataFrame({"campaign_id": [1, 1, 1, 2, 2], "household_id": [10, 11, 12, 10, 13],
                              "expected_cost": [20.0, 20.0, 20.0, 20.0, 20.0],
                              "expected_incremental_profit": [10.0, 5.0, 5.0, 5.0, 5.0], "forced": [False] * 5})
    forecast = _forecast_rows().assign(
        interval_method="90% interval over 200 two-stage bootstrap draws (held-out campaigns, then households)")
    data = report_data.ReportData(
        run_date=RUN_DATE, run_id="run-1", published_at=dt.datetime(2017, 7, 1, 3, 0), forecast=forecast,
        model=report_data.ModelInfo("promo_roi_household_response", "4", "abc", dt.date(2017, 6, 1)),
        plan=plan, targeting=summaries.targeting_counts(targeting), pairs_targeted=5, households_targeted=4,
        accuracy=_accuracy_rows(), evaluation=pd.DataFrame(columns=MODEL_EVALUATION.columns),
        curves=pd.DataFrame(columns=UPLIFT_CURVES.columns), evaluation_note="none", curves_note="none")
    report.render_report(data, "USD", tmp_path)
    p = page(tmp_path)
    assert p.sections[0] == "recommendation"
    first = p.full_text[p.full_text.index("Recommendation Fund"):p.full_text.index("campaigns forecast")]
    assert ("Fund campaigns 1 and 2 (2 of 3 planned) with 100.00 USD of the 100.00 USD budget, targeting 4 "
            "households (5 household x campaign pairs).") in first
    assert ("Expected incremental profit: 30.00 USD (90% interval -20.00 USD to 80.00 USD): the interval includes "
            "a loss") in first
    # The backtest rows up to the run date: 1 of 3 covered; WAPE (20 + 240 + 20) / (80 + 40 + 80) = 140%.
    assert "past forecasts' intervals covered 1 of 3 of the realized effects; their forecasts were off by 140.0%" in first
    assert "the last households it admitted still return up to 0.40 per 1 of cost (marginal ROI). Consider raising the budget." in first
    assert "Left out by the risk rule" not in first
    assert "Since the previous run : no earlier published run to compare with." in first
    # The KPI tile carries the same interval.
    assert "expected incremental profit, USD (90% interval -20.00 to 80.00)" in p.full_text
    assert "Expected profit against spend" not in p.full_text  # no curve in this data
    assert "Overlap." not in p.full_text  # targeting published before the overlap flag: nothing to say

    # Two of the five pairs outside the overlap band (40.00 of 100.00 USD planned): the budget section says so.
    flagged = targeting.assign(in_overlap=[True, False, True, False, True])
    (tmp_path / "overlap").mkdir()
    report.render_report(dataclasses.replace(data, targeting=summaries.targeting_counts(flagged)), "USD",
                         tmp_path / "overlap")
    assert ("Overlap. 2 of 5 targeted pairs (40.0% of the planned spend, 40.00 USD) lie outside the overlap band "
            "(evaluation.overlap_band)") in page(tmp_path / "overlap").full_text
    assert "(gold.household_targeting.in_overlap; campaign 1: 1, campaign 2: 1)." in page(tmp_path / "overlap").full_text
    (tmp_path / "inside").mkdir()
    report.render_report(dataclasses.replace(data, targeting=summaries.targeting_counts(
        targeting.assign(in_overlap=True))), "USD", tmp_path / "inside")
    assert "Overlap. Every targeted pair lies in the overlap band" in page(tmp_path / "inside").full_text

    # With the curve: the peak in the recommendation and in the budget section, and its chart.
    curve = pd.DataFrame({"budget": [50.0, 100.0, None], "spend": [50.0, 100.0, 150.0],
                          "profit": [20.0, 30.0, 45.0], "point": ["grid", "grid", "peak"]})
    (tmp_path / "curve").mkdir()
    files = report.render_report(dataclasses.replace(data, budget_curve=curve), "USD", tmp_path / "curve")
    assert "spend_profit_curve.png" in files
    c = page(tmp_path / "curve")
    assert ("Consider raising the budget. The most profit the forecasts allow is 45.00 USD (about 15.00 USD more) at "
            "a spend of 150.00 USD.") in c.full_text
    assert ("The night's scored pairs planned again at 2 budgets up to the peak, with the same caps and campaign "
            "bounds") in c.full_text
    assert "Spending up to 150.00 USD would add about 15.00 USD of expected profit." in c.full_text
    assert "spend_profit_curve.png" in c.images

    # A plan that leaves budget unspent, with no interval stored (published before it existed), no backtest.
    older = plan.assign(plan_profit_low=None, plan_profit_high=None, plan_budget_used=70.0,
                        budget=[40.0, 30.0, 0.0])
    (tmp_path / "older").mkdir()
    report.render_report(dataclasses.replace(data, plan=older, accuracy=None), "USD", tmp_path / "older")
    q = page(tmp_path / "older").full_text
    assert "with 70.00 USD of the 100.00 USD budget" in q
    assert "30.00 USD of it, because no other household is expected to return its cost." in q
    assert "Expected incremental profit: 30.00 USD (no interval for the whole plan" in q
    assert "nothing yet says how close these forecasts come to what happens" in q
    assert "Consider raising the budget" not in q

    # Night over night: the previous published run funded campaigns 1 and 3 with another model.
    previous = report_data.PreviousRun(dt.date(2017, 6, 30), "run-0", "3", pd.DataFrame([
        _plan_row(1, budget=50.0, audience=2, expected_incremental_profit=10.0, plan_budget_used=80.0),
        _plan_row(3, budget=30.0, audience=1, expected_incremental_profit=-2.0, plan_budget_used=80.0)]))
    (tmp_path / "nightly").mkdir()
    report.render_report(dataclasses.replace(data, previous=previous), "USD", tmp_path / "nightly")
    n = page(tmp_path / "nightly").full_text
    assert ("Since the previous run (2017-06-30, model version 3 → 4): newly funded campaign 2; no longer funded "
            "campaign 3; planned spend 80.00 USD → 100.00 USD; expected incremental profit 8.00 USD → 30.00 USD.") in n
    same = dataclasses.replace(previous, model_version="4", plan=plan)
    report.render_report(dataclasses.replace(data, previous=same), "USD", tmp_path / "nightly")
    assert ("(2017-06-30, same model version 4): the same campaigns funded; planned spend 100.00 USD → 100.00 USD"
            in page(tmp_path / "nightly").full_text)

    # Nothing funded.
    (tmp_path / "none").mkdir()
    nothing = pd.DataFrame([_plan_row(1, plan_budget_used=0.0, plan_profit_low=0.0, plan_profit_high=0.0),
                            _plan_row(2, plan_budget_used=0.0, plan_profit_low=0.0, plan_profit_high=0.0)])
    report.render_report(dataclasses.replace(data, plan=nothing, targeting=summaries.targeting_counts(pd.DataFrame()),
                                             pairs_targeted=0, households_targeted=0), "USD", tmp_path / "none")
    r = page(tmp_path / "none").full_text
    assert "Fund no campaign this run (2 planned): under this plan's rules no household's expected" in r
    assert "the plan is expected to lose money" not in r
    risky = nothing.assign(risk_quantile=0.1, excluded_by_risk=[True, False])
    report.render_report(dataclasses.replace(data, plan=risky, targeting=summaries.targeting_counts(pd.DataFrame()),
                                             pairs_targeted=0, households_targeted=0), "USD", tmp_path / "none")
    r = page(tmp_path / "none").full_text
    assert "Fund no campaign this run (2 planned): the risk rule left out every campaign that expected profit" in r
    assert "Left out by the risk rule : campaign 1, whose ROI at the 10.0% quantile falls short." in r


def test_headline_figures_as_markdown_are_stamped_with_their_run():
    from promo_roi.reporting.headline import headline_markdown

    plan = pd.DataFrame([
        _plan_row(1, budget=60.0, audience=3, expected_incremental_profit=20.0),
        _plan_row(2, budget=40.0, audience=2, expected_incremental_profit=10.0), _plan_row(3)])
    curve = pd.DataFrame({"budget": [50.0, None], "spend": [50.0, 150.0], "profit": [20.0, 45.0],
                          "point": ["grid", "peak"]})
    data = report_data.ReportData(
        run_date=RUN_DATE, run_id="run-1", published_at=dt.datetime(2017, 7, 1, 3, 0),
        forecast=_forecast_rows().assign(interval_method="90% interval over 200 draws"),
        model=report_data.ModelInfo("promo_roi_household_response", "4", "abc", dt.date(2017, 6, 1)),
        plan=plan, targeting=summaries.targeting_counts(pd.DataFrame()), pairs_targeted=5, households_targeted=4,
        accuracy=_accuracy_rows(), evaluation=pd.DataFrame(columns=MODEL_EVALUATION.columns),
        curves=pd.DataFrame(columns=UPLIFT_CURVES.columns), budget_curve=curve)
    text = headline_markdown(data, "USD", dt.datetime(2026, 12, 3, 19, 0, tzinfo=dt.timezone.utc))
    assert text.splitlines() == [
        "Run 2017-07-01 (scoring run run-1), model promo_roi_household_response version 4 trained as of 2017-06-01; "
        "read 2026-12-03 19:00 UTC by scripts/headline_figures.py. Amounts in USD.",
        "",
        "- **The plan**: 5 household x campaign pairs (4 households) in 2 of 3 campaigns (1, 2), 100.00 of 100.00 "
        "planned; expected incremental profit 30.00 (90% interval -20.00 to 80.00).",
        "- **More budget**: the most profit the forecasts allow is 45.00 at a spend of 150.00 (the same pairs planned "
        "with no total budget at a target ROI of 0).",
        "- **Backtest** (run dates 2017-06-01, 2017-07-01): intervals covered 1 of 3 realized effects; WAPE 140.0%.",
    ]
    # A night that says what it valued households by (the end of its interval_method) says it here too.
    said = dataclasses.replace(data, forecast=_forecast_rows().assign(
        interval_method="90% interval over 200 draws; households valued by their calibrated pre-period "
                        "coupon-product spend (evaluation.ranking)"))
    lines = headline_markdown(said, "USD", dt.datetime(2026, 12, 3, 19, 0, tzinfo=dt.timezone.utc)).splitlines()
    assert lines[4] == ("- **Households valued by** their calibrated pre-period coupon-product spend "
                        "(evaluation.ranking).")
    assert lines[5].startswith("- **Backtest**")


def test_the_spend_profit_curve_replans_the_pairs_at_each_budget():
    from promo_roi.reporting import budget_curve

    # One campaign, three households, one campaign each: profits 8, 3 and -1 at a cost of 2 each.
    pairs = pd.DataFrame({"household_id": [1, 2, 3], "campaign_id": [7, 7, 7], "value": [10.0, 5.0, 1.0],
                          "cost": [2.0, 2.0, 2.0], "redemptions": [0.5, 0.5, 0.5]})
    plan = pd.DataFrame([_plan_row(7, total_budget=3.0, household_cap=1, coupon_inventory=None)])
    curve = budget_curve.spend_profit_curve(pairs, plan, points=5)
    # The peak funds every pair that pays for itself: households 1 and 2, spend 4, profit 11. Between 0 and 4 the
    # inner budgets 0.8, 1.6, 2.4, 3.2 afford nothing, nothing, household 1, household 1.
    assert curve["budget"].iloc[:4].tolist() == pytest.approx([0.8, 1.6, 2.4, 3.2])
    assert pd.isna(curve["budget"].iloc[4])
    assert curve[["spend", "profit", "point"]].to_dict("list") == {
        "spend": [0.0, 0.0, 2.0, 2.0, 4.0], "profit": [0.0, 0.0, 8.0, 8.0, 11.0],
        "point": ["grid", "grid", "grid", "grid", "peak"]}
    bounded = pd.DataFrame([_plan_row(7, total_budget=3.0, household_cap=2, min_budget=1.0, max_budget=5.0,
                                      coupon_inventory=40.0), _plan_row(8, household_cap=2)])
    constraints = budget_curve.constraints_of(bounded)
    assert (constraints.total_budget, constraints.household_cap) == (3.0, 2)
    assert (dict(constraints.campaign_min_budget), dict(constraints.campaign_max_budget),
            dict(constraints.campaign_inventory)) == ({7: 1.0}, {7: 5.0}, {7: 40.0})
    assert budget_curve.spend_profit_curve(pairs.iloc[:0], plan).empty


def _index_rows(text: str) -> list[dict[str, str]]:
    parsed = _Page()
    parsed.feed(text)
    return parsed.tables["runs"]


def test_the_index_lists_every_report_newest_first(tmp_path):
    from promo_roi.reporting import index

    def manifest(run_date: str, run_id: str, version: str, summary: dict | None = None) -> dict:
        return {"run_date": run_date, "run_id": run_id, "model_version": version,
                **({"summary": summary} if summary is not None else {})}

    root = tmp_path / "reports"
    for name, content in (
        ("2017-07-01", manifest("2017-07-01", "r-1", "3")),  # rendered before manifests had a summary
        ("2017-07-08", manifest("2017-07-08", "r-<2>", "4", {
            "campaigns_forecast": 13, "campaigns_funded_ids": [12, 14], "budget_used": 61.82,
            "total_budget": 2000.0, "expected_incremental_profit": 1815.0, "profit_low": -9954.29,
            "profit_high": 6797.21})),
        ("2017-07-15", manifest("2017-07-15", "r-3", "4", {
            "campaigns_forecast": 12, "campaigns_funded_ids": [], "budget_used": 0.0, "total_budget": 2000.0,
            "expected_incremental_profit": 0.0, "profit_low": 0.0, "profit_high": 0.0})),
    ):
        (root / name).mkdir(parents=True)
        (root / name / report.MANIFEST_FILE).write_text(json.dumps(content))
    (root / "2017-07-22").mkdir()  # no manifest (a render in progress elsewhere): not listed
    (root / ".2017-07-29.tmp-abc").mkdir()  # a hidden render directory: not listed
    (root / ".2017-07-29.tmp-abc" / report.MANIFEST_FILE).write_text(json.dumps(manifest("2017-07-29", "x", "5")))
    (root / ".index.html.tmp-dead").write_text("left by a killed writer")

    written = index.write_index(root, "USD", report.REPORT_FILE, report.MANIFEST_FILE)
    assert written == root / "index.html" and not list(root.glob(".index.html.tmp-*"))
    text = written.read_text()
    rows = _index_rows(text)
    assert [r["run_date"] for r in rows] == ["2017-07-15", "2017-07-08", "2017-07-01"]
    assert rows[1] == {"run_date": "2017-07-08", "model_version": "4", "campaigns_forecast": "13",
                       "campaigns_funded": "12, 14", "budget_used": "61.82", "total_budget": "2,000.00",
                       "expected_incremental_profit": "1,815.00", "profit_interval": "-9,954.29 to 6,797.21",
                       "run_id": "r-<2>"}
    assert rows[0]["campaigns_funded"] == "none" and rows[0]["profit_interval"] == "0.00 to 0.00"
    assert rows[2] == {"run_date": "2017-07-01", "model_version": "3", "campaigns_forecast": "n/a",
                       "campaigns_funded": "n/a", "budget_used": "n/a", "total_budget": "n/a",
                       "expected_incremental_profit": "n/a", "profit_interval": "n/a", "run_id": "r-1"}
    assert '<a href="2017-07-08/report.html">2017-07-08</a>' in text and "r-&lt;2&gt;" in text
    assert "3 published runs, newest first" in " ".join(text.split())
    empty = index.index_html([], "USD", report.REPORT_FILE, dt.datetime(2017, 7, 1, 3, 0))
    assert "No run report yet." in empty and "0 published runs" in " ".join(empty.split())


def test_backfill_reproduces_the_curves_training_stored(spark, reported):
    from delta.tables import DeltaTable

    config = reported[0]
    run = _model_run(config, _log_entry(spark, config).model_version)

    def stored() -> pd.DataFrame:
        rows = delta_io.read_table(spark, UPLIFT_CURVES, config.warehouse).filter(F.col("mlflow_run_id") == run)
        return rows.toPandas().sort_values(["model_name", "split", "scope", "outcome", "point"]).reset_index(drop=True)

    trained = stored()
    assert len(trained) > 0
    DeltaTable.forPath(spark, delta_io.table_path(config.warehouse, UPLIFT_CURVES)).delete(F.col("mlflow_run_id") == run)
    assert stored().empty
    assert report_data.backfill_curves(spark, config, RUN_DATE) == len(trained)
    again = stored()
    pd.testing.assert_frame_equal(again.drop(columns=["gain", "random_gain"]), trained.drop(columns=["gain", "random_gain"]))
    assert np.allclose(again["gain"], trained["gain"], rtol=1e-9, atol=1e-9)
    assert np.allclose(again["random_gain"], trained["random_gain"], rtol=1e-9, atol=1e-9)
    assert report_data.backfill_curves(spark, config, RUN_DATE) == 0  # already stored: nothing to do
