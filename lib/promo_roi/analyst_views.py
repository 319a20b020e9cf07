"""The analysts' views, declared once for Spark SQL and for DuckDB.

Each view is one SELECT written in the SQL that both engines accept (plain
joins, GROUP BY, CASE, CAST, NULLIF; no QUALIFY, no ``* EXCEPT``, no
engine-specific functions). Relations are written as placeholders,
``{gold.campaign_roi_forecast}``, and each engine renders them:

- Spark (:func:`create_spark_views`, called by the scoring job's publish step
  and by the SQL endpoint at start): a declared table becomes
  ``delta.`<warehouse>/<schema>/<table>``` (the path the jobs write, the same
  rule as :mod:`promo_roi.delta_io`), a view becomes its catalog name
  ``gold.<view>``; the views are persistent (``CREATE OR REPLACE VIEW``) in the
  Hive catalog that the SQL endpoint shares with the jobs.
- DuckDB (:mod:`promo_roi.sql_local`, ``promo-roi sql``): every name renders
  as itself; declared tables are DuckDB views over the Delta tables' active
  parquet files.

The publication rule is the scoring job's: rows of a scored table are visible
only when their ``(run_date, run_id)`` is in ``gold.publication_log``. A view
whose tables do not exist yet is skipped (with the reason), never created
half-way.
"""

from __future__ import annotations

import logging
import re
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from promo_roi.tables import (
    BUDGET_PLAN,
    CAMPAIGN_PLANS,
    CAMPAIGN_ROI_FORECAST,
    FORECAST_ACCURACY,
    HOUSEHOLD_SCORES,
    HOUSEHOLD_TARGETING,
    PROMOTION_LIFT_EVALUATION,
    PUBLICATION_LOG,
    TableSpec,
)

log = logging.getLogger(__name__)

# Tables written per (run_date, run_id) slice and shown through <table>_published.
PUBLISHED_TABLES: tuple[TableSpec, ...] = (HOUSEHOLD_SCORES, CAMPAIGN_ROI_FORECAST, BUDGET_PLAN, HOUSEHOLD_TARGETING)

# Declared tables the views read (the rest of the warehouse is not needed by any view).
VIEW_SOURCE_TABLES: tuple[TableSpec, ...] = (
    *PUBLISHED_TABLES, PUBLICATION_LOG, CAMPAIGN_PLANS, FORECAST_ACCURACY, PROMOTION_LIFT_EVALUATION,
)

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\}")


@dataclass(frozen=True)
class AnalystView:
    schema: str
    name: str
    sql: str
    description: str

    @property
    def full_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def sources(self) -> tuple[str, ...]:
        """The relations (tables or views) the SQL names, in order of appearance, once each."""
        seen: dict[str, None] = {}
        for schema, name in _PLACEHOLDER.findall(self.sql):
            seen.setdefault(f"{schema}.{name}", None)
        return tuple(seen)

    def render(self, relation: Callable[[str], str]) -> str:
        """The SQL with each ``{schema.name}`` replaced by ``relation("schema.name")``."""
        return _PLACEHOLDER.sub(lambda m: relation(f"{m.group(1)}.{m.group(2)}"), self.sql)


def _published_view(spec: TableSpec) -> AnalystView:
    return AnalystView(
        spec.schema, f"{spec.name}_published",
        f"SELECT t.* FROM {{{spec.full_name}}} t "
        f"JOIN {{{PUBLICATION_LOG.full_name}}} p ON t.run_date = p.run_date AND t.run_id = p.run_id",
        f"{spec.full_name} restricted to the runs recorded in {PUBLICATION_LOG.full_name} "
        "(what readers may use; a run that died before its log entry is not shown).",
    )


def _latest_view(name: str, published: str, description: str) -> AnalystView:
    return AnalystView(
        "gold", name,
        f"SELECT f.* FROM {{{published}}} f "
        f"JOIN (SELECT campaign_id, max(run_date) AS run_date FROM {{{published}}} GROUP BY campaign_id) l "
        "ON f.campaign_id = l.campaign_id AND f.run_date = l.run_date",
        description,
    )


LATEST_CAMPAIGN_ROI_FORECAST = _latest_view(
    "latest_campaign_roi_forecast", "gold.campaign_roi_forecast_published",
    "Per campaign, its forecast from the latest published run that planned it (one row per campaign).",
)

LATEST_BUDGET_PLAN = _latest_view(
    "latest_budget_plan", "gold.budget_plan_published",
    "Per campaign, its budget from the latest published budget plan that included it.",
)

PLAN_VS_BUDGET = AnalystView(
    "gold", "plan_vs_budget",
    """SELECT p.campaign_id, p.campaign_type, p.start_date, p.end_date, p.source AS plan_source,
       round(p.min_budget, 2) AS min_budget, round(p.max_budget, 2) AS max_budget, b.run_date, b.planning_mode,
       round(b.budget, 2) AS budget, round(b.budget / NULLIF(p.max_budget, 0), 4) AS share_of_max_budget,
       b.audience, round(b.expected_incremental_profit, 2) AS expected_incremental_profit,
       round(b.roi, 4) AS planned_roi, round(b.marginal_roi, 4) AS marginal_roi,
       round(b.min_budget_shortfall, 2) AS min_budget_shortfall, f.audience AS forecast_audience,
       round(f.cost, 2) AS forecast_cost, round(f.roi, 4) AS forecast_roi,
       CASE WHEN b.campaign_id IS NULL THEN 'no budget plan'
            WHEN p.min_budget IS NOT NULL AND b.budget < p.min_budget THEN 'below min_budget'
            WHEN p.max_budget IS NOT NULL AND b.budget > p.max_budget THEN 'above max_budget'
            WHEN b.budget = 0 THEN 'not funded'
            WHEN p.min_budget IS NULL AND p.max_budget IS NULL THEN 'no bounds set'
            ELSE 'within bounds' END AS budget_status
FROM {gold.campaign_plans} p
LEFT JOIN {gold.latest_budget_plan} b ON b.campaign_id = p.campaign_id
LEFT JOIN {gold.campaign_roi_forecast_published} f ON f.campaign_id = b.campaign_id AND f.run_date = b.run_date""",
    "Every planned campaign: the planner's budget bounds next to the budget the latest published plan gives it, "
    "its planned audience, profit and ROI, and the unconstrained forecast of the same run (whole audience); "
    "budget_status says whether the budget respects the bounds ('no bounds set' when the plan has none). "
    "Money is rounded to cents, ROI (a ratio: profit per 1 of cost) and shares to 4 decimals; the tables keep "
    "full precision.",
)

FORECAST_ACCURACY_OVER_TIME = AnalystView(
    "gold", "forecast_accuracy_over_time",
    """SELECT run_date, count(*) AS campaigns,
       round(sum(forecast_incremental_revenue), 2) AS forecast_incremental_revenue,
       round(sum(realized_incremental_revenue), 2) AS realized_incremental_revenue,
       round(avg(error), 2) AS mean_error,
       round(avg(absolute_error), 2) AS mean_absolute_error,
       round(sum(absolute_error) / NULLIF(sum(abs(realized_incremental_revenue)), 0), 4) AS wape,
       round(CAST(count(CASE WHEN interval_covers_realized THEN 1 END) AS DOUBLE)
         / NULLIF(count(interval_covers_realized), 0), 4) AS interval_coverage
FROM {gold.forecast_accuracy}
GROUP BY run_date""",
    "The backtest per forecast run date: campaigns evaluated, forecast and realized incremental revenue, mean "
    "error (bias), mean absolute error, WAPE and the share of campaigns whose forecast interval covered the "
    "realized effect. Money rounded to cents, WAPE and coverage (shares) to 4 decimals.",
)

# The latest as-of date through a window, not a join to max(as_of_date): Spark turns that join into a scalar
# subquery on the partition column, which the SQL endpoint (java.time dates) fails on with a ClassCastException.
LATEST_PROMOTION_LIFT_SCORECARD = AnalystView(
    "gold", "latest_promotion_lift_scorecard",
    """SELECT e.as_of_date, e.first_held_out_week, e.last_held_out_week, e.placement_type, e.model, e.product_weeks,
       round(e.wape, 4) AS wape, round(e.wape_low, 4) AS wape_low, round(e.wape_high, 4) AS wape_high,
       e.reference_model, round(e.wape_minus_reference, 4) AS wape_minus_reference,
       round(e.difference_low, 4) AS difference_low, round(e.difference_high, 4) AS difference_high,
       round(e.bias, 4) AS bias,
       CASE WHEN e.model = e.reference_model THEN 'best baseline'
            WHEN e.difference_low IS NULL OR e.difference_high IS NULL THEN 'no interval'
            WHEN e.difference_high < 0 THEN 'beats the best baseline'
            WHEN e.difference_low > 0 THEN 'loses to the best baseline'
            ELSE 'not shown to differ' END AS verdict
FROM (SELECT *, max(as_of_date) OVER () AS latest_as_of_date FROM {gold.promotion_lift_evaluation}) e
WHERE e.as_of_date = e.latest_as_of_date""",
    "The promotion lift yardstick of the latest as-of date: per placement type and forecast, the WAPE of placed "
    "product-week units with its 90% interval, the paired difference from the best merchandiser baseline "
    "(reference_model) with its interval, the bias of the total, and the verdict the interval allows. WAPE, "
    "differences and bias are shares rounded to 4 decimals.",
)

# In dependency order: a view comes after the views it reads.
ANALYST_VIEWS: tuple[AnalystView, ...] = (
    *(_published_view(s) for s in PUBLISHED_TABLES),
    LATEST_CAMPAIGN_ROI_FORECAST,
    LATEST_BUDGET_PLAN,
    PLAN_VS_BUDGET,
    FORECAST_ACCURACY_OVER_TIME,
    LATEST_PROMOTION_LIFT_SCORECARD,
)

VIEW_NAMES: frozenset[str] = frozenset(v.full_name for v in ANALYST_VIEWS)


@dataclass
class ViewsReport:
    created: list[str] = field(default_factory=list)
    # view -> why it was not created (the missing tables it needs)
    skipped: dict[str, str] = field(default_factory=dict)


def plan_views(available_tables: Iterable[str],
               views: Iterable[AnalystView] = ANALYST_VIEWS) -> tuple[list[AnalystView], dict[str, str]]:
    """Which views can be created given the tables that exist: (creatable in order, skipped -> reason)."""
    available = set(available_tables)
    creatable: list[AnalystView] = []
    skipped: dict[str, str] = {}
    for view in views:
        missing = sorted(s for s in view_dependencies([view.full_name])
                         if s != view.full_name and s not in VIEW_NAMES and s not in available)
        if missing:
            verb = "does" if len(missing) == 1 else "do"
            skipped[view.full_name] = f"it reads {', '.join(missing)}, which {verb} not exist yet"
            continue
        unavailable_views = [s for s in view.sources if s in VIEW_NAMES and s not in available]
        if unavailable_views:  # a view it reads was not offered for creation
            skipped[view.full_name] = f"it reads {', '.join(unavailable_views)}, which was not created"
            continue
        creatable.append(view)
        available.add(view.full_name)
    return creatable, skipped


def view_dependencies(names: Iterable[str]) -> set[str]:
    """The names plus every view and table they read, transitively."""
    by_name = {v.full_name: v for v in ANALYST_VIEWS}
    out: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.add(name)
        if name in by_name:
            todo.extend(by_name[name].sources)
    return out


# The statement each view was last created with, per session. A job publishes several times (a backtest
# once per date) and re-creating an unchanged view costs an analysis of its query and a catalog write
# each time (~0.5 s per view); a view whose statement changed (another warehouse, another definition) is
# created again. Views are never dropped by this project; a new job process creates them afresh.
_ISSUED: "weakref.WeakKeyDictionary[Any, dict[str, str]]" = weakref.WeakKeyDictionary()


def create_spark_views(spark, config, views: Iterable[AnalystView] = ANALYST_VIEWS) -> ViewsReport:
    """(Re)creates the analyst views in the Spark catalog over the config's warehouse.

    Call it after a run is recorded in gold.publication_log (the scoring job's
    publish step) and whenever a table the views read is first created. Views
    whose tables do not exist yet are skipped and logged, not created.
    """
    from promo_roi import delta_io

    specs: Mapping[str, TableSpec] = {s.full_name: s for s in VIEW_SOURCE_TABLES}
    existing = [name for name, spec in specs.items() if delta_io.table_exists(spark, spec, config.warehouse)]

    def relation(name: str) -> str:
        if name in specs:
            return f"delta.`{delta_io.table_path(config.warehouse, specs[name])}`"
        return name

    creatable, skipped = plan_views(existing, views)
    report = ViewsReport(skipped=skipped)
    issued = _ISSUED.setdefault(spark, {})
    for view in creatable:
        comment = view.description.replace("\\", "\\\\").replace("'", "\\'")
        statement = f"CREATE OR REPLACE VIEW {view.full_name} COMMENT '{comment}' AS {view.render(relation)}"
        if issued.get(view.full_name) != statement:
            spark.sql(statement)
            issued[view.full_name] = statement
        report.created.append(view.full_name)
    for name, reason in skipped.items():
        log.info("view %s not created: %s", name, reason)
    log.info("analyst views created: %s", ", ".join(report.created) or "none")
    return report
