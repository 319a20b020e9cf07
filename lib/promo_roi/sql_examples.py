"""A small, fixed example of the gold tables, for the SQL examples in docs/sql.md and their tests.

    python -m promo_roi.sql_examples --set warehouse.root=/tmp/promo-roi-sql-example

writes, through the same Delta writers and catalog registration as the jobs,
a handful of rows with the declared schemas: three planned campaigns (13 and
14 from the calendar, 101 added by a planner with budget bounds), two
published scoring runs (2017-07-01 and 2017-08-01) and one run of 2017-08-01
that died before its publication-log entry (its rows are in the tables, the
views must not show them), a budget plan for 2017-08-01, and a backtest of two
earlier run dates, and a promotion lift yardstick of two as-of dates. Then it creates the analyst views. The example
outputs in docs/sql.md are what ``promo-roi sql`` answers on this warehouse; a test checks
them, through ``promo-roi sql`` and through the SQL endpoint.

It refuses a warehouse that already holds gold tables it did not write.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from pyspark.sql import SparkSession

from promo_roi import delta_io
from promo_roi.analyst_views import create_spark_views
from promo_roi.config import AppConfig, ConfigError
from promo_roi.entrypoint import exit_with, job_parser, run_job
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

MARKER = ".promo_roi_sql_example"
EXAMPLE_TABLES: tuple[TableSpec, ...] = (
    CAMPAIGN_PLANS, HOUSEHOLD_SCORES, CAMPAIGN_ROI_FORECAST, BUDGET_PLAN, HOUSEHOLD_TARGETING, PUBLICATION_LOG,
    FORECAST_ACCURACY, PROMOTION_LIFT_EVALUATION,
)

MARGIN = 0.30
JUL, AUG = dt.date(2017, 7, 1), dt.date(2017, 8, 1)
RUN_JUL, RUN_AUG, RUN_AUG_DIED = "example-0701", "example-0801", "example-0801-died"
MODEL = "3"
AT = dt.datetime(2017, 7, 1, 5, 0, 0)

# campaign_id, type, start, end, coupon products, contact cost, redemption cost, min, max budget, inventory,
# source, added_at
PLANS = [
    (13, "Type A", dt.date(2017, 7, 20), dt.date(2017, 9, 3), [1029743, 1106523], 0.50, 1.22, None, None, None,
     "completejourney", AT),
    (14, "Type C", dt.date(2017, 9, 4), dt.date(2017, 10, 31), [9677202], 0.50, 1.22, None, None, None,
     "completejourney", AT),
    (101, "Type A", dt.date(2017, 9, 1), dt.date(2017, 10, 15), [1029743, 1106523], 0.50, 1.25, 500.0, 3000.0,
     5000.0, "planner", dt.datetime(2017, 7, 15, 9, 30, 0)),
]
_PLAN = {p[0]: p for p in PLANS}

# run_date, run_id, campaign, audience, expected redemptions, incremental revenue, coupon-product revenue,
# interval of the gross profit as a share of its point value (low, high)
FORECASTS = [
    (JUL, RUN_JUL, 13, 1200, 96.0, 2600.0, 610.0, (0.40, 1.70)),
    (JUL, RUN_JUL, 14, 800, 40.0, 1000.0, 220.0, (-0.20, 2.10)),
    (AUG, RUN_AUG, 14, 800, 44.0, 1160.0, 240.0, (0.10, 1.80)),
    (AUG, RUN_AUG, 101, 2000, 150.0, 5200.0, 1400.0, (0.55, 1.45)),
    # the run that died before its publication-log entry: readers must never see it
    (AUG, RUN_AUG_DIED, 14, 800, 400.0, 90000.0, 9000.0, (0.90, 1.10)),
    (AUG, RUN_AUG_DIED, 101, 2000, 900.0, 250000.0, 40000.0, (0.90, 1.10)),
]

# run_date, run_id, campaign, budget, audience, expected redemptions, incremental revenue, marginal roi
BUDGETS = [
    (AUG, RUN_AUG, 14, 180.0, 330, 20.0, 760.0, 0.05),
    (AUG, RUN_AUG, 101, 820.0, 1450, 118.0, 4300.0, 0.12),
    (AUG, RUN_AUG_DIED, 101, 5000.0, 2000, 900.0, 250000.0, 9.0),
]
TOTAL_BUDGET = 1000.0

# run_date, campaign, type, start, end, audience, forecast revenue (low, high), realized (low, high), naive,
# forecast roi (low, high), realized roi (low, high)
BACKTEST = [
    (dt.date(2017, 4, 1), 5, "Type B", dt.date(2017, 4, 26), dt.date(2017, 6, 8), 900,
     (1500.0, 700.0, 2300.0), (900.0, -300.0, 2100.0), 6400.0, (0.21, -0.44, 0.86), (-0.27, -1.24, 0.69)),
    (dt.date(2017, 4, 1), 6, "Type C", dt.date(2017, 5, 3), dt.date(2017, 6, 22), 600,
     (700.0, 100.0, 1300.0), (1100.0, 200.0, 2000.0), 4100.0, (-0.16, -0.88, 0.56), (0.32, -0.76, 1.40)),
    (dt.date(2017, 5, 1), 7, "Type B", dt.date(2017, 5, 24), dt.date(2017, 7, 2), 1100,
     (2600.0, 1500.0, 3700.0), (400.0, -900.0, 1700.0), 9800.0, (0.73, 0.00, 1.47), (-0.73, -1.60, 0.13)),
    (dt.date(2017, 5, 1), 8, "Type A", dt.date(2017, 6, 7), dt.date(2017, 7, 27), 1500,
     (3300.0, 2100.0, 4500.0), (2900.0, 1300.0, 4500.0), 11800.0, (0.32, -0.16, 0.80), (0.16, -0.48, 0.80)),
    (dt.date(2017, 5, 1), 6, "Type C", dt.date(2017, 5, 3), dt.date(2017, 6, 22), 600,
     (900.0, 300.0, 1500.0), (1100.0, 200.0, 2000.0), 4100.0, (0.08, -0.64, 0.80), (0.32, -0.76, 1.40)),
]


def _forecast_rows() -> list[dict]:
    rows = []
    for run_date, run_id, campaign, audience, redemptions, revenue, coupon_revenue, (lo, hi) in FORECASTS:
        plan = _PLAN[campaign]
        contact = audience * plan[5]
        redemption = redemptions * plan[6]
        cost = contact + redemption
        gp = revenue * MARGIN
        rows.append(dict(
            run_date=run_date, run_id=run_id, campaign_id=campaign, campaign_type=plan[1], start_date=plan[2],
            end_date=plan[3], audience=audience,
            audience_source="campaign_target_list" if campaign != 101 else "all_households",
            expected_redemptions=redemptions, incremental_revenue=revenue,
            incremental_coupon_product_revenue=coupon_revenue, incremental_gross_profit=gp, contact_cost=contact,
            redemption_cost=redemption, cost=cost, roi=(gp - cost) / cost, roi_low=(gp * lo - cost) / cost,
            roi_high=(gp * hi - cost) / cost, incremental_gross_profit_low=gp * lo,
            incremental_gross_profit_high=gp * hi, interval_method="mc_dropout(20 shared-mask draws, 90%)",
            model_version=MODEL, input_versions={"gold.campaign_plans": 1, "silver.user_features": 4},
        ))
    return rows


def _score_rows() -> list[dict]:
    rows = []
    for run_date, run_id, campaign, *_ in FORECASTS:
        plan = _PLAN[campaign]
        for household, p_t, p_u, spend_t, spend_u in ((1029743, 0.12, 0.02, 61.0, 55.0),
                                                       (1106523, 0.05, 0.01, 33.0, 31.5)):
            rows.append(dict(
                run_date=run_date, run_id=run_id, campaign_id=campaign, household_id=household,
                p_redeem_targeted=p_t, p_redeem_untargeted=p_u, coupon_product_spend_targeted=spend_t / 4,
                coupon_product_spend_untargeted=spend_u / 4, spend_targeted=spend_t, spend_untargeted=spend_u,
                uplift_redeem=p_t - p_u, uplift_coupon_product_spend=(spend_t - spend_u) / 4,
                uplift_spend=spend_t - spend_u, incremental_gross_profit=(spend_t - spend_u) * MARGIN,
                expected_cost=plan[5] + p_t * plan[6], model_version=MODEL,
            ))
    return rows


def _budget_rows() -> list[dict]:
    rows = []
    for run_date, run_id, campaign, budget, audience, redemptions, revenue, marginal in BUDGETS:
        plan = _PLAN[campaign]
        gp = revenue * MARGIN
        rows.append(dict(
            run_date=run_date, run_id=run_id, campaign_id=campaign, planning_mode="total_budget",
            total_budget=TOTAL_BUDGET, min_budget=plan[7], max_budget=plan[8], coupon_inventory=plan[9],
            budget=budget, audience=audience, expected_redemptions=redemptions,
            expected_incremental_revenue=revenue, expected_incremental_gross_profit=gp,
            expected_incremental_profit=gp - budget, roi=(gp - budget) / budget, marginal_roi=marginal,
            forced_households=1 if campaign == 101 else 0, min_budget_shortfall=0.0, plan_budget_used=1000.0,
            plan_dual_bound=1003.5,
            plan_gap=0.0035, model_version=MODEL,
        ))
    return rows


def _targeting_rows() -> list[dict]:
    keys = ("run_date", "run_id", "campaign_id", "household_id", "expected_incremental_gross_profit", "expected_cost",
            "expected_redemptions", "expected_incremental_profit", "step_roi", "forced", "model_version")
    return [dict(zip(keys, row)) for row in (
        (AUG, RUN_AUG, 101, 1029743, 1.95, 0.65, 0.12, 1.30, 2.0, False, MODEL),
        (AUG, RUN_AUG, 101, 1106523, 0.47, 0.56, 0.05, -0.09, -0.16, True, MODEL),
        (AUG, RUN_AUG_DIED, 101, 1029743, 99.0, 0.65, 0.9, 98.35, 151.3, False, MODEL),
    )]


def _accuracy_rows() -> list[dict]:
    rows = []
    for run_date, campaign, ctype, start, end, audience, fc, real, naive, froi, rroi in BACKTEST:
        error = fc[0] - real[0]
        rows.append(dict(
            run_date=run_date, run_id=f"example-{run_date:%m%d}", campaign_id=campaign, campaign_type=ctype,
            start_date=start, end_date=end, audience=audience,
            forecast_incremental_revenue=fc[0], forecast_incremental_revenue_low=fc[1],
            forecast_incremental_revenue_high=fc[2], realized_incremental_revenue=real[0],
            realized_incremental_revenue_low=real[1], realized_incremental_revenue_high=real[2],
            naive_incremental_revenue=naive, error=error, absolute_error=abs(error),
            interval_covers_realized=fc[1] <= real[0] <= fc[2],
            forecast_roi=froi[0], forecast_roi_low=froi[1], forecast_roi_high=froi[2],
            realized_roi=rroi[0], realized_roi_low=rroi[1], realized_roi_high=rroi[2],
            estimator="aipw_crossfit", model_version=MODEL, evaluated_at=dt.datetime(2017, 8, 2, 6, 0, 0),
        ))
    return rows


# The promotion lift yardstick (the demo's figures as of 2017-07-01, rounded, and one row of an older as-of
# date that the latest scorecard leaves out): as_of, placement, model, product-weeks, WAPE (low, high),
# reference model, WAPE minus the reference's (low, high), bias.
PROMOTION_LIFT = [
    (dt.date(2017, 6, 1), "all", "own_last_lift", 30000, (0.71, 0.65, 0.77), "own_last_lift", (0.0, 0.0, 0.0), -0.25),
    (JUL, "all", "own_last_lift", 33961, (0.670, 0.605, 0.730), "own_last_lift", (0.0, 0.0, 0.0), -0.269),
    (JUL, "all", "lgbm", 33961, (0.680, 0.618, 0.747), "own_last_lift", (0.010, -0.006, 0.027), 0.054),
    (JUL, "mailer", "own_last_lift", 10200, (0.612, 0.538, 0.714), "own_last_lift", (0.0, 0.0, 0.0), -0.182),
    (JUL, "mailer", "lgbm", 10200, (0.636, 0.555, 0.741), "own_last_lift", (0.024, 0.002, 0.044), 0.084),
    (JUL, "display_and_mailer", "own_last_lift", 4979, (0.752, 0.718, 0.790), "own_last_lift", (0.0, 0.0, 0.0),
     -0.486),
    (JUL, "display_and_mailer", "lgbm", 4979, (0.690, 0.656, 0.726), "own_last_lift", (-0.063, -0.090, -0.032),
     -0.068),
]


def _promotion_lift_rows() -> list[dict]:
    return [dict(as_of_date=as_of, first_held_out_week=19, last_held_out_week=26, model=model,
                 placement_type=placement, product_weeks=weeks, wape=wape[0], wape_low=wape[1], wape_high=wape[2],
                 reference_model=reference, wape_minus_reference=difference[0], difference_low=difference[1],
                 difference_high=difference[2], bias=bias, evaluated_at=dt.datetime(2017, 7, 1, 4, 0, 0))
            for as_of, placement, model, weeks, wape, reference, difference, bias in PROMOTION_LIFT]


def _publication_rows() -> list[dict]:
    def counts(run_date: dt.date, run_id: str) -> dict[str, int]:
        return {
            CAMPAIGN_ROI_FORECAST.full_name: sum(1 for f in FORECASTS if f[:2] == (run_date, run_id)),
            BUDGET_PLAN.full_name: sum(1 for b in BUDGETS if b[:2] == (run_date, run_id)),
        }
    return [
        dict(run_date=JUL, run_id=RUN_JUL, published_at=dt.datetime(2017, 7, 1, 6, 12, 0), model_version=MODEL,
             table_versions={"gold.campaign_roi_forecast": 1}, rows=counts(JUL, RUN_JUL)),
        dict(run_date=AUG, run_id=RUN_AUG, published_at=dt.datetime(2017, 8, 1, 6, 9, 0), model_version=MODEL,
             table_versions={"gold.campaign_roi_forecast": 2}, rows=counts(AUG, RUN_AUG)),
    ]


def _plan_rows() -> list[dict]:
    keys = ("campaign_id", "campaign_type", "start_date", "end_date", "coupon_product_ids", "contact_cost",
            "redemption_cost", "min_budget", "max_budget", "coupon_inventory", "source", "added_at")
    return [dict(zip(keys, p)) for p in PLANS]


def _in_declared_order(spec: TableSpec, rows: list[dict]) -> list[tuple]:
    """Rows as tuples in ``spec``'s column order; a declared column the example does not set is null."""
    for row in rows:
        unknown = set(row) - set(spec.columns)
        if unknown:
            raise KeyError(f"{spec.full_name} declares no column(s) {', '.join(sorted(unknown))}")
    return [tuple(row.get(c) for c in spec.columns) for row in rows]


def example_rows() -> dict[TableSpec, list[tuple]]:
    """The example's rows per table, in the declared column order."""
    rows = {
        CAMPAIGN_PLANS: _plan_rows(),
        HOUSEHOLD_SCORES: _score_rows(),
        CAMPAIGN_ROI_FORECAST: _forecast_rows(),
        BUDGET_PLAN: _budget_rows(),
        HOUSEHOLD_TARGETING: _targeting_rows(),
        PUBLICATION_LOG: _publication_rows(),
        FORECAST_ACCURACY: _accuracy_rows(),
        PROMOTION_LIFT_EVALUATION: _promotion_lift_rows(),
    }
    return {spec: _in_declared_order(spec, r) for spec, r in rows.items()}


def _local(root: str) -> Path | None:
    return None if "://" in root and not root.startswith("file:") else Path(root.removeprefix("file:"))


def write_example_warehouse(spark: SparkSession, config: AppConfig) -> dict[str, int]:
    """Writes the example tables (one Delta commit each), registers them, creates the views."""
    root = _local(config.warehouse.root)
    if root is None:
        raise ConfigError("the SQL example is written to a local warehouse only (warehouse.root)")
    if not (root / MARKER).exists():
        existing = [s.full_name for s in EXAMPLE_TABLES if delta_io.table_exists(spark, s, config.warehouse)]
        if existing:
            raise ConfigError(
                f"{config.warehouse.root} already holds {', '.join(existing)}: the SQL example writes only to "
                "an empty warehouse or its own (use --set warehouse.root=/tmp/promo-roi-sql-example)")
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("written by python -m promo_roi.sql_examples\n")
    versions = {}
    for spec, rows in example_rows().items():
        df = spark.createDataFrame(rows, spec.struct)
        versions[spec.full_name] = delta_io.overwrite_table(spark, df, spec, config.warehouse)
    report = create_spark_views(spark, config)
    log.info("example warehouse at %s: %s; views %s", config.warehouse.root, versions, ", ".join(report.created))
    return versions


def main() -> None:
    parser = job_parser(__doc__.split("\n\n")[0])
    args = parser.parse_args()
    exit_with(run_job("sql-examples", args, lambda spark, config: write_example_warehouse(spark, config)))


if __name__ == "__main__":
    main()
