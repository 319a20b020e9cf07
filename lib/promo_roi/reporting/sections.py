"""The report's numbered sections and the diagnostics page's, each a pure function of :class:`~promo_roi.reporting.data.ReportData`.

A section returns a :class:`Section`: its HTML and the charts its ``<img>``
tags show (:class:`Chart`: the figure and the file name it is to be written
under). Nothing here writes a file: :func:`promo_roi.reporting.report.render_report`
writes the page and its charts.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from promo_roi import model_names
from promo_roi.reporting import charts, summaries
from promo_roi.reporting.data import ReportData
from promo_roi.reporting.markup import Column, figure_html, format_value, html_table, is_missing, with_currency

CHART_FILES = {
    "roi": "roi_per_campaign.png",
    "budget": "budget_allocation.png",
    "curve": "spend_profit_curve.png",
    "uplift": "uplift_curves.png",
    "backtest": "forecast_vs_realized.png",
}
CHAMPION_MODEL = model_names.TRANSFORMER  # the model_name training gives the network that becomes champion
CURVE_SPLIT, CURVE_SCOPE = "test", "overall"  # held-out campaigns that chose nothing (validation chose the champion)
CURVE_OUTCOMES = (("coupon_product_spend", "Coupon-product spend"), ("spend", "Total spend"))
QINI_OUTCOMES = ("coupon_product_spend", "spend", "redeemed")
OUTCOME_LABELS = {"coupon_product_spend": "coupon-product spend", "spend": "total spend", "redeemed": "redemptions"}
MODEL_LABELS = {**charts.MODEL_LABELS, model_names.TRANSFORMER: "champion (transformer)"}


@dataclass(frozen=True)
class Chart:
    key: str  # the section it belongs to, as the manifest names it (a key of CHART_FILES)
    figure: Figure

    @property
    def file_name(self) -> str:
        return CHART_FILES[self.key]


@dataclass(frozen=True)
class Section:
    html: str
    charts: tuple[Chart, ...] = ()


# How every ROI on the page reads: the ratio the tables and SQL views store (one unit everywhere).
ROI_UNIT = ("ROI as a ratio, incremental profit per 1 of cost, the unit of the roi columns in the tables and SQL "
            "views (0 = break-even; 1.00 = the campaign returns twice its cost in gross profit)")

ROI_COLUMNS = (
    Column("campaign_id", "Campaign", "text"), Column("campaign_type", "Type"), Column("start_date", "Starts", "date"),
    Column("end_date", "Ends", "date"), Column("audience", "Households", "int"),
    Column("expected_redemptions", "Expected redemptions", "money"),
    Column("incremental_revenue", "Incremental revenue ({cur})", "money"),
    Column("incremental_gross_profit", "Incremental gross profit ({cur})", "money"),
    Column("cost", "Cost ({cur})", "money"), Column("incremental_profit", "Incremental profit ({cur})", "money"),
    Column("roi", "ROI", "ratio"), Column("roi_low", "ROI low", "ratio"), Column("roi_high", "ROI high", "ratio"),
    Column("interval_verdict", "Interval"),
)
BUDGET_COLUMNS = (
    Column("campaign_id", "Campaign", "text"), Column("campaign_type", "Type"),
    Column("budget", "Planned spend ({cur})", "money"), Column("min_budget", "Min budget ({cur})", "money"),
    Column("max_budget", "Max budget ({cur})", "money"), Column("audience", "Households", "int"),
    Column("expected_redemptions", "Expected redemptions", "money"),
    Column("expected_incremental_profit", "Expected incremental profit ({cur})", "money"),
    Column("expected_incremental_profit_low", "Profit low ({cur})", "money"),
    Column("expected_incremental_profit_high", "Profit high ({cur})", "money"),
    Column("roi", "ROI", "ratio"), Column("roi_low", "ROI low", "ratio"), Column("roi_high", "ROI high", "ratio"),
    Column("marginal_roi", "Marginal ROI", "ratio"), Column("forced_households", "Forced households", "int"),
    Column("risk_quantile_roi", "ROI at the risk quantile", "ratio"), Column("risk_verdict", "Risk rule"),
)
COLUMN_NOTES = {"min_budget": "a minimum budget", "max_budget": "a maximum budget",
                "forced_households": "households forced in to meet a minimum budget",
                "risk_quantile_roi": "a risk judgement (the plan is on expected profit, planning.risk: expected)"}
QINI_COLUMNS = (
    Column("outcome", "Outcome"), Column("scope", "Households"), Column("model_name", "Model"),
    Column("qini", "Qini per household", "num"), Column("qini_low", "95% low", "num"),
    Column("qini_high", "95% high", "num"), Column("auuc", "AUUC per household", "num"),
    Column("n_rows", "Rows", "int"),
)
GAIN_COLUMNS = (
    Column("outcome", "Outcome"), Column("share_targeted", "Households targeted", "pct"),
    Column("rows_targeted", "Rows targeted", "int"), Column("gain", "Champion gain ({cur})", "money"),
    Column("random_gain", "Random gain ({cur})", "money"),
    Column("gain_over_random", "Champion - random ({cur})", "money"),
)
ACCURACY_BY_DATE_COLUMNS = (
    Column("run_date", "Forecast run date", "date"), Column("campaigns", "Campaigns", "int"),
    Column("forecast_incremental_revenue", "Forecast revenue ({cur})", "money"),
    Column("realized_incremental_revenue", "Realized revenue ({cur})", "money"),
    Column("mean_error", "Mean error, bias ({cur})", "money"),
    Column("mean_absolute_error", "Mean absolute error ({cur})", "money"), Column("wape", "WAPE", "pct"),
    Column("interval_coverage", "Intervals covering realized", "pct"),
)
ACCURACY_COLUMNS = (
    Column("campaign_id", "Campaign", "text"), Column("run_date", "Forecast run date", "date"),
    Column("audience", "Households", "int"),
    Column("forecast_incremental_revenue", "Forecast ({cur})", "money"),
    Column("forecast_incremental_revenue_low", "Forecast low", "money"),
    Column("forecast_incremental_revenue_high", "Forecast high", "money"),
    Column("realized_incremental_revenue", "Realized ({cur})", "money"),
    Column("realized_incremental_revenue_low", "Realized low", "money"),
    Column("realized_incremental_revenue_high", "Realized high", "money"),
    Column("error", "Error ({cur})", "money"), Column("interval_covers_realized", "Covered", "bool"),
    Column("naive_incremental_revenue", "Naive difference ({cur}), not an effect", "money"),
)


def _gap_text(gap: Any) -> str:
    """The plan's certified optimality gap, (bound - objective) / |bound|, as a percentage."""
    return "an unknown share" if is_missing(gap) else f"{100 * float(gap):.2f}%"


def _money(value: Any, currency: str) -> str:
    return "n/a" if is_missing(value) else f"{float(value):,.2f} {currency}"


def section_roi(data: ReportData, cur: str) -> Section:
    head = '<section id="roi"><h2>1. Forecast ROI per campaign</h2>'
    if data.forecast.empty:
        return Section(head + '<div class="notice">No campaign was forecast in this run.</div></section>')
    summary = summaries.roi_summary(data.forecast)
    chart = Chart("roi", charts.roi_chart(summary, data.interval_label))
    parts = [head]
    parts.append(
        f"<p>Each planned campaign, forecast for its whole audience (its target list where it has one, else every "
        f"scored household): incremental revenue (on {html.escape(OUTCOME_LABELS.get(data.value_outcome, data.value_outcome))}, "
        f"scoring.value_outcome) and gross profit caused by the campaign, its cost (contact cost per "
        f"household plus expected redemptions times the cost per redemption) and ROI = (incremental gross profit - "
        f"cost) / cost, with the {html.escape(data.interval_label)}. Amounts in {html.escape(cur)}; {ROI_UNIT}.</p>")
    parts.append(figure_html(chart.file_name, "Forecast ROI per campaign with intervals",
                             f"Dot: forecast ROI; bar: {data.interval_label}; vertical line: ROI 0 (break-even). "
                             "Green: the whole interval is above 0; red: below 0; grey: it includes 0, so the data "
                             "cannot tell whether the campaign pays back."))
    parts.append(html_table(summary, with_currency(ROI_COLUMNS, cur), "roi-table",
                            caption=f"Forecast per campaign, run {data.run_date} (gold.campaign_roi_forecast)"))
    return Section("".join(parts) + "</section>", (chart,))


def _plan_text(totals: dict[str, Any], cur: str) -> str:
    budget_text = ("no total budget" if totals["total_budget"] is None
                   else f"a total budget of {_money(totals['total_budget'], cur)}")
    target = "" if totals["target_roi"] is None else f", target ROI {format_value(totals['target_roi'], 'ratio')}"
    return (
        f"<p>The plan ({html.escape(str(totals['planning_mode']))} mode, {budget_text}{target}, at most "
        f"{format_value(totals['household_cap'], 'int')} campaigns per household) spends "
        f"<b>{_money(totals['budget_used'], cur)}</b> on {totals['campaigns_funded']} of "
        f"{totals['campaigns_planned']} planned campaigns, targeting {totals['pairs_targeted']:,} household x "
        f"campaign pairs ({totals['households_targeted']:,} distinct households), for an expected incremental profit "
        f"of <b>{_money(totals['expected_incremental_profit'], cur)}</b> (gross profit minus cost; the solver "
        f"certifies it is within {_gap_text(totals['plan_gap'])} of the best plan the forecasts allow). A campaign's "
        f"ROI here is "
        f"over the households the plan chose, not its whole audience, so it differs from the forecast above. Marginal ROI "
        f"is the return of the last households admitted: where it stays above 0 more budget would still pay.</p>")


def _overlap_text(counts: pd.DataFrame, cur: str) -> str:
    """How much of the plan rests on pairs outside the overlap band (summaries.targeting_counts per campaign);
    nothing for a plan that targets no one or was published before the flag existed."""
    if counts.empty:
        return ""
    pairs = int(counts["households"].sum())
    if pairs == 0 or int(counts["overlap_unknown"].sum()) == pairs:
        return ""
    outside, spend = int(counts["outside_overlap"].sum()), float(counts["spend_outside_overlap"].sum())
    total_spend = float(counts["spend"].sum())
    share = format_value(spend / total_spend, "pct") if total_spend > 0 else "n/a"
    head = "<p><b>Overlap.</b> "
    if outside == 0:
        return (head + "Every targeted pair lies in the overlap band (evaluation.overlap_band): households like "
                "each were both targeted and not by campaigns like it, so no effect in the plan is extrapolated "
                "from one arm alone.</p>")
    by = counts[counts["outside_overlap"] > 0].sort_values(["spend_outside_overlap", "campaign_id"],
                                                         ascending=[False, True])
    where = ", ".join(f"campaign {int(r.campaign_id)}: {int(r.outside_overlap):,}" for r in by.itertuples())
    return (head + f"<b>{outside:,} of {pairs:,} targeted pairs ({share} of the planned spend, "
            f"{_money(spend, cur)}) lie outside the overlap band</b> (evaluation.overlap_band): households like "
            f"them were almost always, or almost never, targeted by campaigns like it, so their effects are "
            f"extrapolated from one arm and rest on the model more than on the data "
            f"(gold.household_targeting.in_overlap; {html.escape(where)}).</p>")


def _risk_text(plan: pd.DataFrame) -> str:
    """What the risk rule (planning.risk: quantile) decided, or nothing for a plan on expected profit."""
    if "risk_quantile" not in plan.columns or plan["risk_quantile"].isna().all():
        return ""
    quantile = float(plan["risk_quantile"].dropna().iloc[0])
    bar = plan["target_roi"].dropna()
    bar_text = f"the target ROI ({format_value(float(bar.iloc[0]), 'ratio')})" if len(bar) else "break-even"
    left = summaries.left_out_by_risk(plan)
    chance = format_value(quantile, "pct")
    left_text = (f"It left out campaign{'s' if len(left) > 1 else ''} {', '.join(map(str, left))}: a chance above "
                 f"{chance} of falling short of it." if left else "It left no campaign out.")
    return (f"<p><b>Risk-aware plan.</b> A campaign keeps its households only where its ROI at the {chance} "
            f"quantile of the forecast draws (the interval's draws, over the households chosen) reaches {bar_text}; "
            f"a campaign below it loses its households and the budget is planned again without it. "
            f"{html.escape(left_text)}</p>")


def _budget_table(data: ReportData, summary: pd.DataFrame, cur: str, agrees: bool) -> str:
    """The plan's table with a total row; bound and forced columns no campaign uses are left out (and said so)."""
    foot = {"budget": summary["budget"].fillna(0).sum(), "audience": summary["audience"].fillna(0).sum(),
            "expected_redemptions": summary["expected_redemptions"].fillna(0).sum(),
            "expected_incremental_profit": summary["expected_incremental_profit"].fillna(0).sum(),
            "forced_households": summary["forced_households"].fillna(0).sum()}
    # Columns that say nothing for this plan (no planner set a bound, nobody forced in) are left out.
    unused = [c for c in ("min_budget", "max_budget") if summary[c].isna().all()]
    unused += ["forced_households"] if summary["forced_households"].fillna(0).eq(0).all() else []
    unused += ["risk_quantile_roi"] if summary["risk_quantile_roi"].isna().all() else []
    parts = []
    if unused:
        notes = [COLUMN_NOTES[c] for c in unused]
        listed = notes[0] if len(notes) == 1 else ", ".join(notes[:-1]) + " or " + notes[-1]
        parts.append(f"<p>No campaign has {listed} in this plan; those columns are left out.</p>")
    hidden = unused + (["risk_verdict"] if "risk_quantile_roi" in unused else [])
    columns = [c for c in BUDGET_COLUMNS if c.key not in hidden]
    parts.append(html_table(summary, with_currency(columns, cur), "budget-table",
                            caption=f"Budget plan, run {data.run_date} (gold.budget_plan"
                                    + ("; gold.household_targeting lists the same households and spend" if agrees
                                       else "") + "). Intervals do not add up, so the total row has none.",
                            totals=foot))
    return "".join(parts)


def _curve_part(data: ReportData, totals: dict[str, Any], cur: str) -> tuple[str, Chart | None]:
    """The spend-profit curve's paragraph and chart (nothing when the report has no curve)."""
    curve = data.budget_curve
    if curve is None or curve.empty:
        return "", None
    peak = curve[curve["point"] == "peak"].iloc[0]
    spend, profit = float(totals["budget_used"] or 0.0), float(totals["expected_incremental_profit"])
    chart = Chart("curve", charts.spend_profit_chart(curve, spend, profit, cur))
    more = float(peak["profit"]) - profit
    verdict = (f"Spending up to {_money(peak['spend'], cur)} would add about {_money(more, cur)} of expected profit."
               if more > 0.005 * max(abs(profit), 1.0) else "Tonight's plan is at or near that peak.")
    text = (f"<p><b>Expected profit against spend.</b> The night's scored pairs planned again at "
            f"{int((curve['point'] == 'grid').sum())} budgets up to the peak, with the same caps and campaign bounds "
            f"(on expected profit: the risk rule is not applied here). The most profit the forecasts allow is "
            f"<b>{_money(peak['profit'], cur)}</b> at a spend of {_money(peak['spend'], cur)}: past it the next "
            f"households cost more than they are expected to return (marginal ROI below 0). "
            f"{html.escape(verdict)}</p>")
    return text + figure_html(chart.file_name, "Expected incremental profit against planned spend",
                              "Each point is the plan at one budget (the same pairs, caps and bounds); the star is "
                              "tonight's plan, the dashed line the spend of the most profitable plan."), chart


def section_budget(data: ReportData, cur: str) -> Section:
    head = '<section id="budget"><h2>2. Budget allocation</h2>'
    if data.plan.empty:
        return Section(head + '<div class="notice">This run published no budget plan.</div></section>')
    summary = summaries.budget_summary(data.plan, data.forecast)
    totals = summaries.plan_totals(data.plan, data.pairs_targeted, data.households_targeted)
    parts = [head, _plan_text(totals, cur), _risk_text(data.plan), _overlap_text(data.targeting, cur)]
    problems = summaries.plan_mismatches(data.plan, data.targeting)
    if problems:
        parts.append('<div class="warning"><b>gold.budget_plan and gold.household_targeting disagree</b> for this '
                     "run; do not act on this plan before it is explained:<ul>"
                     + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul></div>")
    title = (f"Budget allocation: {format_value(totals['budget_used'], 'money')} of "
             f"{format_value(totals['total_budget'], 'money')} {cur} planned")
    chart = Chart("budget", charts.budget_chart(summary, cur, title))
    parts.append(figure_html(chart.file_name, "Planned spend and households per campaign",
                             "Left: planned spend per campaign (contact plus expected redemption cost of the "
                             "households chosen); right: households targeted. 'Not funded': the plan gives the "
                             "campaign nothing."))
    parts.append(_budget_table(data, summary, cur, agrees=not problems))
    curve_html, curve_chart = _curve_part(data, totals, cur)
    parts.append(curve_html)
    return Section("".join(parts) + "</section>", (chart,) if curve_chart is None else (chart, curve_chart))


def _gain_table(curves: pd.DataFrame, cur: str) -> str:
    gains = []
    for outcome, _label in CURVE_OUTCOMES:
        g = summaries.gain_at_deciles(curves, CHAMPION_MODEL, CURVE_SPLIT, CURVE_SCOPE, outcome)
        g.insert(0, "outcome", OUTCOME_LABELS.get(outcome, outcome))
        gains.append(g)
    return html_table(pd.concat(gains, ignore_index=True), with_currency(GAIN_COLUMNS, cur),
                      "gain-table", caption="The champion's curve at each decile of the held-out "
                      "households (gold.uplift_curves, test split, all households)")


def _qini_table(evaluation: pd.DataFrame, cur: str) -> str:
    qini = summaries.qini_summary(evaluation, CURVE_SPLIT, QINI_OUTCOMES)
    qini["outcome"] = qini["outcome"].map(lambda o: OUTCOME_LABELS.get(o, o))
    qini["scope"] = qini["scope"].map({"overall": "all", "overlap": "overlap band"}).fillna(qini["scope"])
    qini["model_name"] = qini["model_name"].map(lambda m: MODEL_LABELS.get(m, m))
    return html_table(qini, QINI_COLUMNS, "qini-table", caption=(
        "Qini coefficient and AUUC per household with 95% bootstrap intervals (households resampled), test "
        f"campaigns, from gold.model_evaluation; units: {cur} of incremental spend per household for the spend "
        "outcomes, redemptions per household for redemptions. 'Overlap band': households whose propensity of "
        "being targeted is in the band where both arms are plausible. An interval that includes 0 means the "
        "ranking is not shown to beat random targeting."))


def section_uplift(data: ReportData, cur: str) -> Section:
    parts = ['<section id="uplift"><h2>Uplift (Qini) curves of the model</h2>']
    parts.append(
        f"<p>How well version {html.escape(data.model.version)} ranks households by the effect a campaign has on "
        "them, on the held-out test campaigns of its training (campaigns it was neither trained nor chosen on). "
        "Targeting the households with the highest predicted uplift first, the curve adds up their doubly robust "
        "(AIPW) effect estimates; random targeting gains in proportion (the dashed line). The area between the two, "
        "per household, is the Qini coefficient. These are effects estimated with a selection correction, not the "
        "targeted-minus-untargeted gap.</p>")
    chart_list: tuple[Chart, ...] = ()
    if data.curves.empty:
        parts.append(f'<div class="notice"><b>No uplift curves stored for this model.</b> '
                     f"{html.escape(data.curves_note or 'gold.uplift_curves has no rows for it.')}</div>")
    else:
        fig = charts.uplift_chart(data.curves, CHAMPION_MODEL, CURVE_SPLIT, CURVE_SCOPE, CURVE_OUTCOMES, cur)
        chart_list = (Chart("uplift", fig),)
        parts.append(figure_html(chart_list[0].file_name, "DR gain curves of the champion against random targeting",
                                 "Solid blue: the model of this run; dashed: random targeting; thin lines: the two "
                                 "baselines trained beside it. Shaded: the area that makes the Qini coefficient. A "
                                 "curve under the dashed line ranks worse than chance."))
        parts.append(_gain_table(data.curves, cur))
    if data.evaluation.empty:
        parts.append(f'<div class="notice"><b>No evaluation rows for this model.</b> '
                     f"{html.escape(data.evaluation_note or '')}</div>")
    else:
        parts.append(_qini_table(data.evaluation, cur))
        parts.append(_ensemble_note(data.evaluation, data.model.version, cur))
    return Section("".join(parts) + "</section>", chart_list)


def _ensemble_note(evaluation: pd.DataFrame, version: str, cur: str) -> str:
    """How far the seeds of an ensemble disagree on the test campaigns ('' for a single network)."""
    spread = summaries.ensemble_summary(evaluation, CURVE_SPLIT)
    if spread is None:
        return ""
    return (f"<p>Version {html.escape(version)} is the average of {spread['members']} networks, each trained from "
            "its own seed on the same rows. Alone, their Qini of coupon-product-spend uplift on the test campaigns "
            f"ranged from {spread['member_qini_min']:.2f} to {spread['member_qini_max']:.2f} (standard deviation "
            f"{spread['member_qini_sd']:.2f}; the average's {spread['qini']:.2f}); per household their uplift "
            f"differed by {spread['member_uplift_sd']:.2f} {html.escape(cur)} (standard deviation, mean over "
            f"households) against a mean absolute uplift of {spread['mean_abs_uplift']:.2f}.</p>")


def section_backtest(data: ReportData, cur: str) -> Section:
    head = '<section id="backtest"><h2>3. Forecast vs realized (backtest)</h2>'
    if data.accuracy is None or data.accuracy.empty:
        where = ("gold.forecast_accuracy does not exist yet" if data.accuracy is None
                 else f"gold.forecast_accuracy has no rows for run dates up to {data.run_date}")
        return Section(
            f'{head}<div class="notice"><b>No backtest yet.</b> {where}: no forecast published on or before '
            f"{data.run_date} has been compared with what happened. Run <code>spark-submit jobs/backtest.py "
            f"--run-dates D1,D2,...</code> for past run dates whose campaigns have ended, then "
            f"<code>spark-submit jobs/report.py --run-date {data.run_date}</code> to add this section.</div>"
            "</section>")
    by_date = summaries.accuracy_by_run_date(data.accuracy)
    detail = summaries.accuracy_summary(data.accuracy)
    dates = by_date["run_date"]
    when = (f"on {format_value(dates.min(), 'date')}" if len(dates) == 1 else
            f"on {len(dates)} run dates from {format_value(dates.min(), 'date')} to {format_value(dates.max(), 'date')}")
    parts = [head]
    parts.append(
        f"<p>Forecasts published {when}, held against what happened "
        "once their campaigns ended: the realized incremental revenue of the campaign's audience, estimated doubly "
        "robustly (AIPW effect on the targeted households, with cross-fitted propensity and outcome models). The "
        "realized value is an estimate too, with its own 95% interval: an error smaller than that interval is not "
        "evidence of anything. The naive column is what a targeted-minus-untargeted comparison reports; it is "
        "mostly who was chosen, not what the campaign did.</p>")
    parts.append(html_table(by_date, with_currency(ACCURACY_BY_DATE_COLUMNS, cur), "accuracy-by-date-table",
                            caption="Per forecast run date (as gold.forecast_accuracy_over_time): bias = mean "
                                    "forecast - realized"))
    chart = Chart("backtest", charts.accuracy_chart(detail, cur))
    parts.append(figure_html(chart.file_name, "Forecast against realized incremental revenue",
                             "Blue dot: forecast with its interval; orange diamond: realized (doubly robust) with "
                             "its 95% interval; a red label marks a forecast whose interval missed the realized "
                             "value."))
    parts.append(html_table(detail, with_currency(ACCURACY_COLUMNS, cur), "accuracy-table",
                            caption="Per campaign and forecast run date (gold.forecast_accuracy)"))
    return Section("".join(parts) + "</section>", (chart,))


PLACEMENT_LABELS = {"all": "every placement", "display": "display", "mailer": "mailer",
                    "display_and_mailer": "display and mailer"}
PROMOTION_MODEL_LABELS = {"no_lift": "no lift (the baseline)", "category_lift": "the category's lift",
                          "own_last_lift": "the product's own last lift", "lgbm": "LightGBM"}
PROMOTION_LIFT_COLUMNS = (
    Column("placement", "Placement"), Column("model_label", "Forecast"), Column("product_weeks", "Product-weeks", "int"),
    Column("wape", "WAPE of units", "pct"), Column("wape_low", "low", "pct"), Column("wape_high", "high", "pct"),
    Column("wape_minus_reference", "WAPE - best baseline's", "pct"), Column("difference_low", "low", "pct"),
    Column("difference_high", "high", "pct"), Column("bias", "Bias of the total", "pct"),
)
SIDE_EFFECT_LABELS = {"pull_forward": "pull-forward (the week after)",
                      "cannibalisation": "cannibalisation (the category's other products)"}
SIDE_EFFECT_COLUMNS = (
    Column("effect_label", "Effect"), Column("placement", "Placement"), Column("events", "Events", "int"),
    Column("expected_units", "Units expected", "int"), Column("lost_units", "Units lost", "int"),
    Column("loss_rate", "Loss rate", "pct"), Column("loss_rate_low", "low", "pct"),
    Column("loss_rate_high", "high", "pct"),
)
PROMOTIONS_HINT = ("<code>spark-submit jobs/build_item_store_week.py --as-of D</code>, then "
                   "<code>spark-submit jobs/evaluate_promotions.py --as-of D</code>")


def promotion_verdicts(lift: pd.DataFrame) -> list[str]:
    """Per placement type (all first), which forecast has the lowest WAPE and whether LightGBM's paired
    difference from the best baseline excludes 0 (its 90% interval), in words."""
    out = []
    order = [p for p in PLACEMENT_LABELS if p in set(lift["placement_type"])]
    for placement in order:
        rows = lift[lift["placement_type"] == placement]
        best = rows.loc[rows["wape"].idxmin()]
        learned = rows[rows["model"] == "lgbm"]
        text = (f"{PLACEMENT_LABELS[placement]}: the lowest WAPE is "
                f"{PROMOTION_MODEL_LABELS.get(best['model'], best['model'])}'s, {format_value(best['wape'], 'pct')}")
        if len(learned):
            row = learned.iloc[0]
            low, high = row["difference_low"], row["difference_high"]
            reference = PROMOTION_MODEL_LABELS.get(row["reference_model"], row["reference_model"])
            if is_missing(low) or is_missing(high):
                verdict = "no interval"
            elif high < 0:
                verdict = "LightGBM beats it"
            elif low > 0:
                verdict = "LightGBM loses to it"
            else:
                verdict = "LightGBM is not shown to differ"
            text += (f"; LightGBM minus the best baseline ({reference}): "
                     f"{format_value(row['wape_minus_reference'], 'pct')} [{format_value(low, 'pct')}, "
                     f"{format_value(high, 'pct')}], {verdict}")
        out.append(text + ".")
    return out


def section_promotions(data: ReportData, cur: str) -> Section:
    head = '<section id="promotions"><h2>4. Product promotions: how well their lift is forecast</h2>'
    lift, effects = data.promotion_lift, data.promotion_side_effects
    if lift is None or lift.empty:
        where = ("gold.promotion_lift_evaluation does not exist yet" if lift is None
                 else f"gold.promotion_lift_evaluation holds no as-of date on or before {data.run_date}")
        return Section(f'{head}<div class="notice"><b>Not measured yet.</b> {where}. Run {PROMOTIONS_HINT} '
                       f"for an as-of date D on or before {data.run_date}.</div></section>")
    first = lift.iloc[0]
    parts = [head, (
        f"<p>As of {format_value(first['as_of_date'], 'date')}: the units of placed product-store-weeks in weeks "
        f"{int(first['first_held_out_week'])}-{int(first['last_held_out_week'])}, each week forecast by models "
        "fitted on the weeks before it, summed per product and week. WAPE is the absolute error over the units "
        "sold; the differences are paired over the same products, with 90% intervals from resampling whole "
        "products; the bias is the forecast total over the units sold, minus 1. A forecast that is not shown "
        "to beat the best baseline is no reason to plan on it.</p>")]
    parts.append("<ul>" + "".join(f"<li>{html.escape(v)}</li>" for v in promotion_verdicts(lift)) + "</ul>")
    table = lift.assign(
        placement=lift["placement_type"].map(PLACEMENT_LABELS).fillna(lift["placement_type"]),
        model_label=lift["model"].map(PROMOTION_MODEL_LABELS).fillna(lift["model"]),
        order=lift["placement_type"].map({p: i for i, p in enumerate(PLACEMENT_LABELS)}),
    ).sort_values(["order", "wape"])
    parts.append(html_table(table, PROMOTION_LIFT_COLUMNS, "promotion-lift-table",
                            caption="Per placement type and forecast (gold.promotion_lift_evaluation)"))
    if effects is not None and not effects.empty:
        rows = effects.assign(
            effect_label=effects["effect"].map(SIDE_EFFECT_LABELS).fillna(effects["effect"]),
            placement=effects["placement_type"].map(PLACEMENT_LABELS).fillna(effects["placement_type"]),
        )
        parts.append(
            "<p>What a placement costs beyond its own week, over every week before "
            f"{format_value(effects.iloc[0]['as_of_date'], 'date')}: the share of the units expected that were "
            "not sold (negative: more sold than expected), in the week after a placement and among the "
            "category's unplaced products in the same store and week. These are associations with each week's "
            "movement removed, not randomised effects.</p>")
        parts.append(html_table(rows, SIDE_EFFECT_COLUMNS, "promotion-side-effects-table",
                                caption="gold.promotion_side_effects (90% intervals from resampling products or "
                                        "categories)"))
    return Section("".join(parts) + "</section>")


SECTIONS = (section_roi, section_budget, section_backtest, section_promotions)  # the report's sections, in page order
APPENDIX_SECTIONS = (section_uplift,)  # the model diagnostics page's, after its calibration table
