"""The report's first screen: the recommendation in one sentence, its uncertainty, and what to watch.

A pure function of :class:`~promo_roi.reporting.data.ReportData` (HTML out). A manager reads what the
plan funds, for how much, what it is expected to return with the interval of the whole plan, and the
things that should temper it: how the forecasts fared in the backtest, whether more budget would
still pay, what the risk rule left out, and what changed since the previous published run. The sections
below hold the detail. :func:`headline_markdown` gives the same figures as Markdown for README
(``scripts/headline_figures.py``).
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import pandas as pd

from promo_roi.causal.calibration import VALUED_BY_PREFIX
from promo_roi.reporting import summaries
from promo_roi.reporting.data import PreviousRun, ReportData
from promo_roi.reporting.markup import format_value, is_missing

# A plan whose spend is within this share of its total budget is held back by the budget.
BUDGET_BINDING_SHARE = 0.99


def _money(value: Any, cur: str) -> str:
    return f"{format_value(value, 'money')} {cur}"


def _campaign_list(ids: list[int]) -> str:
    if len(ids) == 1:
        return f"campaign {ids[0]}"
    return "campaigns " + ", ".join(map(str, ids[:-1])) + f" and {ids[-1]}"


def _decision(totals: dict[str, Any], plan: pd.DataFrame, cur: str) -> str:
    funded = summaries.funded_campaigns(plan)
    planned = totals["campaigns_planned"]
    budget = ("" if totals["total_budget"] is None
              else f" of the {_money(totals['total_budget'], cur)} budget")
    if not funded:
        why = ("the risk rule left out every campaign that expected profit alone would fund"
               if summaries.left_out_by_risk(plan) else
               "under this plan's rules no household's expected incremental profit covers its cost, so any spend "
               "is expected to lose money")
        return f"<b>Fund no campaign this run</b> ({planned} planned): {why}."
    return (f"<b>Fund {html.escape(_campaign_list(funded))}</b> ({len(funded)} of {planned} planned) with "
            f"<b>{_money(totals['budget_used'], cur)}</b>{budget}, targeting {totals['households_targeted']:,} "
            f"households ({totals['pairs_targeted']:,} household x campaign pairs).")


def _profit(totals: dict[str, Any], label: str, cur: str) -> str:
    text = f"Expected incremental profit: <b>{_money(totals['expected_incremental_profit'], cur)}</b>"
    low, high = totals.get("profit_low"), totals.get("profit_high")
    if is_missing(low) or is_missing(high):
        return text + " (no interval for the whole plan: published before it was computed)."
    text += f" ({html.escape(label)} {_money(low, cur)} to {_money(high, cur)})"
    if low < 0 < high:
        return text + ": the interval includes a loss; the data cannot tell whether this plan makes money."
    if high < 0:
        return text + ": the plan is expected to lose money across the interval."
    return text + "."


def _backtest_watch(accuracy: pd.DataFrame | None) -> str:
    if accuracy is None or not len(accuracy):
        return ("<b>No backtest yet</b>: nothing yet says how close these forecasts come to what happens "
                "(jobs/backtest.py fills gold.forecast_accuracy once campaigns forecast earlier have ended).")
    covered, judged, wape = summaries.backtest_record(accuracy)
    coverage = f"{covered} of {judged}" if judged else "none"
    wape_text = "" if wape is None else f"; their forecasts were off by {format_value(wape, 'pct')} (WAPE)"
    return (f"<b>Backtest</b>: past forecasts' intervals covered {coverage} of the realized effects{wape_text}. "
            "Read every figure here with that record in mind.")


def _peak_text(curve: pd.DataFrame | None, profit: float, cur: str) -> str:
    if curve is None or curve.empty:
        return ""
    peak = curve[curve["point"] == "peak"].iloc[0]
    return (f" The most profit the forecasts allow is {_money(peak['profit'], cur)} (about "
            f"{_money(float(peak['profit']) - profit, cur)} more) at a spend of {_money(peak['spend'], cur)}.")


def _budget_watch(totals: dict[str, Any], plan: pd.DataFrame, cur: str,
                  curve: pd.DataFrame | None = None) -> str | None:
    total, used = totals["total_budget"], totals["budget_used"]
    if total is None or is_missing(used):
        return None
    bar = 0.0 if totals["target_roi"] is None else float(totals["target_roi"])
    marginal = plan.loc[plan["audience"].fillna(0) > 0, "marginal_roi"].dropna()
    if used >= BUDGET_BINDING_SHARE * total and len(marginal) and float(marginal.max()) > bar:
        return (f"<b>More budget would still pay</b>: the plan spends the whole budget and the last households it "
                f"admitted still return up to {format_value(float(marginal.max()), 'ratio')} per 1 of cost (marginal ROI). "
                "Consider raising the budget."
                + _peak_text(curve, float(totals["expected_incremental_profit"]), cur)
                + (" That is on expected profit alone: the interval above reaches a loss, and more budget raises "
                   "the stake." if totals.get("profit_low") is not None and totals["profit_low"] < 0 else ""))
    if used < BUDGET_BINDING_SHARE * total:
        return (f"<b>Budget left unspent</b>: {_money(total - used, cur)} of it, because no other household is "
                "expected to return its cost.")
    return None


def _risk_watch(plan: pd.DataFrame) -> str | None:
    left = summaries.left_out_by_risk(plan)
    if not left:
        return None
    return (f"<b>Left out by the risk rule</b>: {html.escape(_campaign_list(left))}, whose ROI at the "
            f"{format_value(float(plan['risk_quantile'].dropna().iloc[0]), 'pct')} quantile falls short.")


def _previous_watch(previous: PreviousRun | None, plan: pd.DataFrame, model_version: str, cur: str) -> str:
    """What changed since the previous published run: model, campaigns funded, spend, expected profit."""
    if previous is None:
        return "<b>Since the previous run</b>: no earlier published run to compare with."
    model = (f"model version {html.escape(previous.model_version)} → {html.escape(model_version)}"
             if previous.model_version != model_version else f"same model version {html.escape(model_version)}")
    head = f"<b>Since the previous run</b> ({previous.run_date}, {model}): "
    if previous.plan.empty:
        return head + "it published no budget plan."
    before, now = set(summaries.funded_campaigns(previous.plan)), set(summaries.funded_campaigns(plan))
    parts = []
    if now - before:
        parts.append(f"newly funded {_campaign_list(sorted(now - before))}")
    if before - now:
        parts.append(f"no longer funded {_campaign_list(sorted(before - now))}")
    if not parts:
        parts.append("the same campaigns funded" if now else "no campaign funded, as before")
    old_totals = summaries.plan_totals(previous.plan, 0, 0)
    new_totals = summaries.plan_totals(plan, 0, 0)
    parts.append(f"planned spend {_money(old_totals['budget_used'], cur)} → {_money(new_totals['budget_used'], cur)}")
    parts.append(f"expected incremental profit {_money(old_totals['expected_incremental_profit'], cur)} → "
                 f"{_money(new_totals['expected_incremental_profit'], cur)}")
    return head + html.escape("; ".join(parts)) + "."


def recommendation_html(data: ReportData, cur: str) -> str:
    """The recommendation section (``<section id="recommendation">``), first on the page."""
    head = '<section id="recommendation"><h2>Recommendation</h2>'
    if data.plan.empty:
        return (head + '<p class="decision">No budget plan was published for this run: there is no recommendation. '
                "The forecasts per campaign are below.</p>"
                + f"<ul class=\"watch\"><li>{_backtest_watch(data.accuracy)}</li></ul></section>")
    totals = summaries.plan_totals(data.plan, data.pairs_targeted, data.households_targeted)
    watch = [_backtest_watch(data.accuracy), _budget_watch(totals, data.plan, cur, data.budget_curve),
             _risk_watch(data.plan),
             _previous_watch(data.previous, data.plan, data.model.version, cur)]
    return (head + f'<p class="decision">{_decision(totals, data.plan, cur)}</p>'
            + f'<p class="decision">{_profit(totals, data.interval_label, cur)}</p>'
            + '<ul class="watch">' + "".join(f"<li>{w}</li>" for w in watch if w) + "</ul></section>")


def _amount(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def valued_by(interval_method: str | None) -> str | None:
    """What the night valued households by, as the forecast's interval_method ends (causal.calibration.VALUED_BY:
    the network's uplift or pre-period spend, chosen in training); None for a night published before it said."""
    if not interval_method or VALUED_BY_PREFIX not in interval_method:
        return None
    return interval_method.rsplit(VALUED_BY_PREFIX, 1)[1].split(";")[0].strip()


def headline_markdown(data: ReportData, currency: str, read_at: dt.datetime) -> str:
    """The night's headline figures as Markdown bullets stamped with the run, the model and ``read_at``
    (README's "Headline results"; ``scripts/headline_figures.py`` prints them)."""
    lines = [f"Run {data.run_date} (scoring run {data.run_id}), model {data.model.registered_model} version "
             f"{data.model.version}" + (f" trained as of {data.model.trained_as_of}" if data.model.trained_as_of else "")
             + f"; read {read_at:%Y-%m-%d %H:%M} UTC by scripts/headline_figures.py. Amounts in {currency}.", ""]
    if len(data.plan):
        t = summaries.plan_totals(data.plan, data.pairs_targeted, data.households_targeted)
        funded = summaries.funded_campaigns(data.plan)
        interval = ("no whole-plan interval (published before it existed)" if t["profit_low"] is None
                    else f"{data.interval_label} {_amount(t['profit_low'])} to {_amount(t['profit_high'])}")
        lines.append(f"- **The plan**: {t['pairs_targeted']:,} household x campaign pairs "
                     f"({t['households_targeted']:,} households) in {len(funded)} of {t['campaigns_planned']} "
                     f"campaigns ({', '.join(map(str, funded)) or 'none'}), {_amount(t['budget_used'])} of "
                     f"{_amount(t['total_budget'])} planned; expected incremental profit "
                     f"{_amount(t['expected_incremental_profit'])} ({interval}).")
        curve = data.budget_curve
        if curve is not None and len(curve):
            peak = curve[curve["point"] == "peak"].iloc[0]
            lines.append(f"- **More budget**: the most profit the forecasts allow is {_amount(float(peak['profit']))} "
                         f"at a spend of {_amount(float(peak['spend']))} (the same pairs planned with no total "
                         "budget at a target ROI of 0).")
    else:
        lines.append("- **The plan**: none published for this run.")
    valued = valued_by(data.interval_method)
    if valued:
        lines.append(f"- **Households valued by** {valued}.")
    if data.accuracy is not None and len(data.accuracy):
        covered, judged, wape = summaries.backtest_record(data.accuracy)
        dates = sorted(str(d) for d in data.accuracy["run_date"].unique())
        lines.append(f"- **Backtest** (run dates {', '.join(dates)}): intervals covered {covered} of "
                     f"{judged} realized effects; WAPE {'n/a' if wape is None else f'{wape:.1%}'}.")
    else:
        lines.append("- **Backtest**: none up to this run date.")
    return "\n".join(lines)
