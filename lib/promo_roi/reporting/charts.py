"""The run report's charts: matplotlib figures on the Agg canvas, no pyplot and no global state.

Each function takes a frame from :mod:`promo_roi.reporting.summaries` and
returns a :class:`matplotlib.figure.Figure` sized for its rows (one row per
campaign gets a fixed height, so long campaign lists stay legible; past
``max_rows`` a chart keeps the rows with the most money at stake and says how
many it left out, while the report's tables keep every row).
:func:`save_png` writes one. Money is in ``currency``, ROI as a ratio (profit per 1 of cost, as in the tables).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from promo_roi import model_names
from promo_roi.reporting.markup import format_value
from promo_roi.reporting.summaries import curve, largest

MAX_ROWS = 40
WIDTH_IN = 10.0
DPI = 110
ROW_IN = 0.36  # height per campaign row
STYLE = {
    "font.size": 11, "axes.titlesize": 13, "axes.labelsize": 11, "xtick.labelsize": 10.5,
    "ytick.labelsize": 10.5, "legend.fontsize": 10, "axes.spines.top": False, "axes.spines.right": False,
    "font.family": "DejaVu Sans",
}
VERDICT_COLORS = {"above 0": "#1b7837", "below 0": "#b2182b", "includes 0": "#5a5a5a", "no interval": "#9e9e9e"}
VERDICT_LABELS = {
    "above 0": "interval above 0 (pays back)", "below 0": "interval below 0 (loses money)",
    "includes 0": "interval includes 0 (undecided)", "no interval": "no interval",
}
FORECAST_COLOR, REALIZED_COLOR = "#2166ac", "#d95f02"
MODEL_LABELS = {
    model_names.TRANSFORMER: "champion (transformer)", model_names.HEURISTIC: "heuristic: pre-period spend",
    model_names.T_LEARNER: "LightGBM T-learner", model_names.DR_LEARNER: "LightGBM DR-learner",
}


def _figure(rows: int, min_height: float = 3.0, extra: float = 1.9, width: float = WIDTH_IN) -> Figure:
    fig = Figure(figsize=(width, max(min_height, extra + ROW_IN * rows)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _thousands(decimals: int = 0, suffix: str = "") -> FuncFormatter:
    return FuncFormatter(lambda v, _pos: f"{v:,.{decimals}f}{suffix}")


def _left_out(ax, hidden: int, what: str) -> None:
    if hidden:
        ax.annotate(f"{hidden} more {what} in the table below", xy=(1.0, 1.0), xycoords="axes fraction",
                    ha="right", va="bottom", fontsize=9.5, color="#5a5a5a")


def campaign_label(campaign_id, campaign_type=None) -> str:
    kind = "" if campaign_type is None or pd.isna(campaign_type) else f" ({campaign_type})"
    return f"#{int(campaign_id)}{kind}"


def roi_text(roi: float, low: float, high: float) -> str:
    """'5.30  [-58.34, 18.34]': a ROI (a ratio) and its interval as the chart prints them beside each row."""
    if pd.isna(roi):
        return "no cost, no ROI"
    point = format_value(roi, "ratio")
    if pd.isna(low) or pd.isna(high):
        return point
    return f"{point}  [{format_value(low, 'ratio')}, {format_value(high, 'ratio')}]"


def _campaign_panels(summary: pd.DataFrame, by: str, max_rows: int,
                     width_ratios: Sequence[float]) -> tuple[pd.DataFrame, int, Figure, np.ndarray, np.ndarray]:
    """The rows of a per-campaign chart (at most ``max_rows``, the largest ``|by|``), how many it left out, its
    figure, two panels side by side that share the campaign axis, and each row's y (the first row at the top).
    Call it inside ``matplotlib.rc_context(STYLE)``."""
    rows, hidden = largest(summary, by, max_rows)
    rows = rows.reset_index(drop=True)
    fig = _figure(len(rows))
    axes = fig.subplots(1, 2, sharey=True, width_ratios=width_ratios)
    y = np.arange(len(rows))[::-1].astype(float)
    return rows, hidden, fig, axes, y


def _campaign_axis(ax, rows: pd.DataFrame, y: np.ndarray) -> None:
    """One tick per campaign row, labelled '#id (type)', with half a row of margin."""
    ax.set_yticks(y, [campaign_label(c, t) for c, t in zip(rows["campaign_id"], rows["campaign_type"])])
    ax.set_ylim(-0.7, len(rows) - 0.3)


def roi_chart(summary: pd.DataFrame, interval_label: str = "90% interval", max_rows: int = MAX_ROWS) -> Figure:
    """Forecast ROI per campaign (a ratio of cost) with its interval as an error bar, a line at 0, and each
    row's numbers printed beside it (wide intervals squeeze the points together).

    ``summary``: :func:`promo_roi.reporting.summaries.roi_summary`. Points and bars are coloured by where the
    interval lies (above 0, below 0, across 0); the first row is at the top.
    """
    with matplotlib.rc_context(STYLE):
        rows, hidden, fig, (ax, text_ax), y = _campaign_panels(summary, "cost", max_rows, [3.2, 1])
        for verdict, color in VERDICT_COLORS.items():
            sel = (rows["interval_verdict"] == verdict).to_numpy() & rows["roi"].notna().to_numpy()
            if not sel.any():
                continue
            roi = rows.loc[sel, "roi"].astype(float).to_numpy()
            low = rows.loc[sel, "roi_low"].astype(float).to_numpy()
            high = rows.loc[sel, "roi_high"].astype(float).to_numpy()
            xerr = None if verdict == "no interval" else np.vstack([roi - low, high - roi])
            ax.errorbar(roi, y[sel], xerr=xerr, fmt="o", color=color, ecolor=color, elinewidth=2, capsize=4,
                        markersize=7, label=VERDICT_LABELS[verdict])
        ax.axvline(0, color="black", linewidth=1.2, zorder=0)
        _campaign_axis(ax, rows, y)
        ax.set_xlabel("ROI = (incremental gross profit - cost) / cost (0 = break-even)")
        ax.set_title(f"Forecast ROI per campaign: point and {interval_label}", loc="left")
        ax.grid(axis="x", alpha=0.3)
        text_ax.set_axis_off()
        text_ax.set_xlim(0, 1)
        text_ax.set_title(f"ROI  [{interval_label}]", loc="left", fontsize=10.5)
        for yi, r in zip(y, rows.itertuples(index=False)):
            text_ax.text(0.0, yi, roi_text(r.roi, r.roi_low, r.roi_high), va="center", ha="left", fontsize=10,
                         color=VERDICT_COLORS.get(r.interval_verdict, "black"))
        if len(rows):
            fig.legend(loc="outside lower center", ncol=3, frameon=False)
        _left_out(text_ax, hidden, "campaigns")
    return fig


def budget_chart(summary: pd.DataFrame, currency: str, title: str = "", max_rows: int = MAX_ROWS) -> Figure:
    """Budget allocation per campaign: the plan's spend (with min/max budget marks where a planner set them)
    and the households it targets, side by side. ``summary``: :func:`~promo_roi.reporting.summaries.budget_summary`."""
    with matplotlib.rc_context(STYLE):
        rows, hidden, fig, (spend_ax, people_ax), y = _campaign_panels(summary, "budget", max_rows, [3, 2])
        budget = rows["budget"].fillna(0).astype(float).to_numpy()
        households = rows["audience"].fillna(0).astype(float).to_numpy()
        spend_ax.barh(y, budget, color=FORECAST_COLOR, height=0.6, label="planned spend")
        for column, marker, label in (("min_budget", "|", "min budget"), ("max_budget", "|", "max budget")):
            bound = rows[column].astype(float)
            if bound.notna().any():
                spend_ax.scatter(bound, y, marker=marker, s=260, linewidths=2.5,
                                 color="#1b7837" if column == "min_budget" else "#b2182b", label=label, zorder=3)
        people_ax.barh(y, households, color="#7b3294", height=0.6)
        for ax, values, fmt in ((spend_ax, budget, "{:,.0f}"), (people_ax, households, "{:,.0f}")):
            top = float(values.max()) if len(values) else 0.0
            for yi, v in zip(y, values):
                ax.annotate("not funded" if v == 0 else fmt.format(v), xy=(v, yi), xytext=(4, 0),
                            textcoords="offset points", va="center", fontsize=9.5,
                            color="#5a5a5a" if v == 0 else "black")
            ax.set_xlim(0, top * 1.18 if top > 0 else 1)
            ax.grid(axis="x", alpha=0.3)
            ax.xaxis.set_major_formatter(_thousands())
        _campaign_axis(spend_ax, rows, y)
        spend_ax.set_xlabel(f"planned spend (contact + expected redemption cost), {currency}")
        people_ax.set_xlabel("households targeted")
        spend_ax.set_title(title or "Budget allocation per campaign", loc="left")
        if rows[["min_budget", "max_budget"]].notna().any().any():
            spend_ax.legend(loc="lower right", frameon=False)
        _left_out(people_ax, hidden, "campaigns")
    return fig


def spend_profit_chart(curve: pd.DataFrame, chosen_spend: float, chosen_profit: float, currency: str) -> Figure:
    """Expected incremental profit against spend (:func:`~promo_roi.reporting.budget_curve.spend_profit_curve`),
    the night's plan marked, and the peak past which more spend loses money."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(0, min_height=4.2)
        ax = fig.add_subplot(1, 1, 1)
        points = curve.sort_values("spend", kind="stable")
        ax.plot(points["spend"], points["profit"], marker="o", color=FORECAST_COLOR, label="plan at each budget")
        peak = curve[curve["point"] == "peak"]
        if len(peak):
            spend, profit = float(peak["spend"].iloc[0]), float(peak["profit"].iloc[0])
            ax.axvline(spend, color="#5a5a5a", linestyle="--", linewidth=1)
            ax.annotate(f"most profit: {profit:,.0f} at a spend of {spend:,.0f}\n(past it, more spend loses money)",
                        xy=(spend, profit), xytext=(-10, -46), textcoords="offset points", ha="right", fontsize=9.5,
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85})
        ax.scatter([chosen_spend], [chosen_profit], marker="*", s=260, color=REALIZED_COLOR, zorder=3,
                   label="tonight's plan")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xlabel(f"planned spend (contact + expected redemption cost), {currency}")
        ax.set_ylabel(f"expected incremental profit, {currency}")
        ax.xaxis.set_major_formatter(_thousands())
        ax.yaxis.set_major_formatter(_thousands())
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", frameon=False)
        ax.set_title("Expected profit against spend: the same pairs planned at other budgets", loc="left")
    return fig


def uplift_chart(curves: pd.DataFrame, champion: str, split: str, scope: str,
                 outcomes: Sequence[tuple[str, str]], currency: str,
                 baselines: Sequence[str] = (model_names.HEURISTIC, model_names.T_LEARNER)) -> Figure:
    """DR gain (uplift/Qini) curves: cumulative incremental outcome when the households of the held-out
    campaigns are targeted in order of predicted uplift, for the champion, the baselines and random
    targeting (the straight line), one panel per ``(outcome, label)``. ``curves``: gold.uplift_curves rows."""
    with matplotlib.rc_context(STYLE):
        panels = [(o, label) for o, label in outcomes if not curve(curves, champion, split, scope, o).empty]
        fig = _figure(0, min_height=4.6, width=WIDTH_IN)
        axes = np.atleast_1d(fig.subplots(1, max(len(panels), 1)))
        for ax, (outcome, label) in zip(axes, panels):
            for model in baselines:
                c = curve(curves, model, split, scope, outcome)
                if len(c):
                    ax.plot(c["fraction_targeted"] * 100, c["gain"], linewidth=1.2, alpha=0.75,
                            color="#a6611a" if model == model_names.HEURISTIC else "#80cdc1",
                            label=MODEL_LABELS.get(model, model))
            c = curve(curves, champion, split, scope, outcome)
            x = c["fraction_targeted"].to_numpy() * 100
            ax.fill_between(x, c["gain"], c["random_gain"], color=FORECAST_COLOR, alpha=0.12, linewidth=0)
            ax.plot(x, c["random_gain"], linestyle="--", color="black", linewidth=1.2, label="random targeting")
            ax.plot(x, c["gain"], color=FORECAST_COLOR, linewidth=2.4, label=MODEL_LABELS.get(champion, champion))
            ax.axhline(0, color="#5a5a5a", linewidth=0.8)
            ax.set_title(f"{label} (n = {int(c['n_rows'].iloc[0]):,})", loc="left")
            ax.set_xlim(0, 100)
            ax.xaxis.set_major_formatter(_thousands(suffix="%"))
            ax.yaxis.set_major_formatter(_thousands())
            ax.set_xlabel("households targeted, highest predicted uplift first")
            ax.set_ylabel(f"cumulative incremental {label.lower()}, {currency}")
            ax.grid(alpha=0.3)
        if panels:
            handles, labels = axes[0].get_legend_handles_labels()
            fig.legend(handles[::-1], labels[::-1], loc="outside lower center", ncol=len(labels), frameon=False)
        else:
            axes[0].text(0.5, 0.5, "no stored curves", ha="center", va="center", transform=axes[0].transAxes)
            axes[0].set_axis_off()
    return fig


def accuracy_chart(summary: pd.DataFrame, currency: str, max_rows: int = MAX_ROWS) -> Figure:
    """Backtest: per campaign and forecast run date, the forecast incremental revenue and its interval above
    the realized (doubly robust) one and its interval, with a line at 0. Past ``max_rows`` the rows of the
    latest run dates are kept. ``summary``: :func:`~promo_roi.reporting.summaries.accuracy_summary`."""
    with matplotlib.rc_context(STYLE):
        rows, hidden = summary, 0
        if len(summary) > max_rows:
            latest = summary.sort_values("run_date", ascending=False, kind="stable").index[:max_rows]
            rows, hidden = summary.loc[sorted(latest)], len(summary) - max_rows
        rows = rows.reset_index(drop=True)
        fig = _figure(len(rows), extra=2.1)
        ax = fig.add_subplot()
        y = np.arange(len(rows))[::-1].astype(float)
        for prefix, color, marker, offset, label in (
                ("forecast", FORECAST_COLOR, "o", 0.17, "forecast (its interval)"),
                ("realized", REALIZED_COLOR, "D", -0.17, "realized, doubly robust (its 95% interval)")):
            point = rows[f"{prefix}_incremental_revenue"].astype(float).to_numpy()
            low = rows[f"{prefix}_incremental_revenue_low"].astype(float).to_numpy()
            high = rows[f"{prefix}_incremental_revenue_high"].astype(float).to_numpy()
            ax.errorbar(point, y + offset, xerr=np.vstack([point - low, high - point]), fmt=marker, color=color,
                        ecolor=color, elinewidth=2, capsize=3, markersize=6, label=label)
        ax.axvline(0, color="black", linewidth=1.2, zorder=0)
        labels = [f"{campaign_label(c, t)}, run {pd.Timestamp(d).date()}"
                  for c, t, d in zip(rows["campaign_id"], rows["campaign_type"], rows["run_date"])]
        ax.set_yticks(y, labels)
        for tick, covered in zip(ax.get_yticklabels(), rows["interval_covers_realized"]):
            if covered is not None and not pd.isna(covered) and not bool(covered):
                tick.set_color("#b2182b")
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.xaxis.set_major_formatter(_thousands())
        ax.set_xlabel(f"incremental revenue of the campaign's audience, {currency}")
        ax.set_title("Backtest: forecast vs realized incremental revenue (red label: interval missed)", loc="left")
        ax.grid(axis="x", alpha=0.3)
        if len(rows):
            fig.legend(loc="outside lower center", ncol=2, frameon=False)
        _left_out(ax, hidden, "rows")
    return fig


def save_png(fig: Figure, path: Path) -> Path:
    """Writes ``fig`` as a PNG (Agg) and returns the path."""
    with matplotlib.rc_context(STYLE):
        fig.savefig(path, format="png", dpi=DPI, facecolor="white")
    return path
