"""The nightly scoring job: scores, ROI forecasts, published all-or-nothing.

Publication protocol (readers never see half a run):

1. quality gates on the inputs (:func:`promo_roi.scoring.inputs.check_inputs`);
   a failure stops the job before any write;
2. the run's rows are written under a new ``run_id``: each table's
   ``(run_date, run_id)`` slice in one Delta transaction (replaceWhere), beside
   whatever an earlier run of the same date left;
3. the run is recorded in ``gold.publication_log`` (merge on run_date) as the
   very last step that matters: the ``*_published`` views join on it, so they
   switch from the previous run to this one in that one commit;
4. rows of other runs of the same date are deleted (housekeeping; if it fails,
   the views are still right and the next run deletes them);
5. the run report is written from the published tables
   (:mod:`promo_roi.reporting.report`: ``<reports.root>/<run_date>/report.html``
   and MLflow). A report failure is logged as an ERROR and leaves the
   publication as it is: the job still succeeds, and jobs/report.py renders
   the report again from the tables.

A run that dies before step 3 leaves the views on the last published run.
Rerunning a date publishes the same row counts and leaves one run per date.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.analyst_views import PUBLISHED_TABLES, create_spark_views
from promo_roi.causal.calibration import UpliftCalibration
from promo_roi.config import AppConfig, ConfigError, PlanningConfig
from promo_roi.features import read_bronze
from promo_roi.observability import stage
from promo_roi.planning import BudgetConstraints, PlanSummary, SolverSettings, plan_budget_spark
from promo_roi.scoring import inputs as I
from promo_roi.scoring.predict import SCORE_SCHEMA, scorer
from promo_roi.tables import (
    BUDGET_PLAN,
    CAMPAIGN_PLANS,
    CAMPAIGN_ROI_FORECAST,
    HOUSEHOLD_SCORES,
    HOUSEHOLD_TARGETING,
    PUBLICATION_LOG,
    SOURCE_TABLES,
    TableSpec,
    user_features_spec,
)

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ScoringResult:
    run_id: str
    model_version: str
    rows: dict[str, int]
    report: Any = None  # promo_roi.reporting.report.ReportOutcome: where the run report went, or why it failed


@dataclass(frozen=True)
class Champion:
    uri: str  # the version's artifact location (an alias could move while the job runs)
    version: str
    calibration: UpliftCalibration


def champion(config: AppConfig) -> Champion:
    """The champion version, its artifacts and its uplift calibration; a clear error when unusable."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from promo_roi.scoring.predict import load_champion

    training, _, mlflow_config = config.require_training()
    mlflow.set_tracking_uri(mlflow_config.tracking_uri)
    try:
        version = MlflowClient().get_model_version_by_alias(training.registered_model, training.champion_alias)
    except MlflowException as exc:
        raise I.ScoringInputError(
            f"no '{training.champion_alias}' version of {training.registered_model} in {mlflow_config.tracking_uri}: "
            "run jobs/train.py (a model becomes champion only when it passes its refutation checks)") from exc
    source = MlflowClient().get_model_version_download_uri(training.registered_model, version.version)
    calibration = getattr(load_champion(source, mlflow_config.tracking_uri), "calibration", None)
    if calibration is None:
        raise I.ScoringInputError(
            f"{training.registered_model} version {version.version} ('{training.champion_alias}') carries no uplift "
            "calibration, and its raw uplift is not an effect to forecast with: retrain with jobs/train.py")
    return Champion(source, str(version.version), calibration)


def input_versions(spark: SparkSession, config: AppConfig) -> dict[str, int]:
    """Delta versions of every table the forecast read (lineage)."""
    specs = [*SOURCE_TABLES.values(), user_features_spec(config.features), CAMPAIGN_PLANS]
    return {s.full_name: delta_io.table_version(spark, s, config.warehouse) for s in specs}


def audiences(bronze_campaigns: DataFrame, scores: DataFrame) -> DataFrame:
    """Who a plan targets: its known target list where there is one, else every scored household."""
    listed = bronze_campaigns.select("campaign_id", "household_id").distinct().withColumn("listed", F.lit(True))
    has_list = listed.select("campaign_id").distinct().withColumn("has_list", F.lit(True))
    return (
        scores.join(F.broadcast(has_list), "campaign_id", "left")
        .join(listed, ["campaign_id", "household_id"], "left")
        .filter(F.col("has_list").isNull() | F.col("listed").isNotNull())
        .withColumn("audience_source", F.when(F.col("has_list"), F.lit("campaign_target_list"))
                    .otherwise(F.lit("all_households")))
        .drop("listed", "has_list")
    )


def campaign_totals(chosen: DataFrame) -> pd.DataFrame:
    """Per plan over the chosen pairs (with ``audience_source``): size, sums of raw uplift and redemption
    probability, and the same sums per MC draw."""
    totals = chosen.groupBy("campaign_id", "audience_source").agg(
        F.count(F.lit(1)).alias("audience"),
        F.sum("uplift_spend").alias("sum_uplift_spend"),
        F.sum("uplift_coupon_product_spend").alias("sum_uplift_coupon_product_spend"),
        F.sum("p_redeem_t1").alias("sum_p_redeem"),
    ).toPandas()
    draws = (
        chosen.select("campaign_id", F.posexplode(F.arrays_zip("mc_uplift_spend", "mc_uplift_coupon_product_spend",
                                                              "mc_p_redeem")).alias("k", "d"))
        .groupBy("campaign_id", "k")
        .agg(F.sum("d.mc_uplift_spend").alias("spend"), F.sum("d.mc_uplift_coupon_product_spend").alias("coupon"),
             F.sum("d.mc_p_redeem").alias("redeem"))
        .toPandas()
    )
    totals["mc"] = [draws[draws["campaign_id"] == c].sort_values("k")[["spend", "coupon", "redeem"]].to_numpy()
                    for c in totals["campaign_id"]]
    return totals


def roi_forecast(totals: pd.DataFrame, plans: pd.DataFrame, calibration: UpliftCalibration, margin: float,
                 interval: float) -> pd.DataFrame:
    """Per plan: calibrated incremental revenue, gross profit, cost and ROI, with the calibration's interval.

    Point: ``a * N + b * sum(tau_hat)`` for N households with raw uplifts
    ``tau_hat`` (:mod:`promo_roi.causal.calibration`), redemptions ``r * sum(p)``.
    Interval: the same arithmetic for every bootstrap draw ``(a_k, b_k, r_k)``
    (with Monte Carlo dropout draw ``k mod M`` of the sums when there are M),
    then the draws' quantiles.
    """
    lo, hi = (1 - interval) / 2, 1 - (1 - interval) / 2
    cal = calibration
    units = plans.set_index("campaign_id")
    rows = []
    for t in totals.itertuples(index=False):
        n = float(t.audience)
        contact, per_redemption = float(units.at[t.campaign_id, "contact_cost"]), float(units.at[t.campaign_id, "redemption_cost"])
        revenue = cal.spend.intercept * n + cal.spend.slope * t.sum_uplift_spend
        coupon_revenue = cal.coupon_product_spend.intercept * n + cal.coupon_product_spend.slope * t.sum_uplift_coupon_product_spend
        redemptions = cal.redemption.ratio * t.sum_p_redeem
        contact_cost, redemption_cost = n * contact, redemptions * per_redemption
        cost = contact_cost + redemption_cost
        mc = t.mc if len(t.mc) else np.array([[t.sum_uplift_spend, t.sum_uplift_coupon_product_spend, t.sum_p_redeem]])
        pick = mc[np.arange(cal.n_draws) % len(mc)]
        draw_revenue = cal.spend.draws[:, 0] * n + cal.spend.draws[:, 1] * pick[:, 0]
        draw_cost = n * contact + cal.redemption.draws * pick[:, 2] * per_redemption
        draw_gp = margin * draw_revenue
        draw_roi = (draw_gp - draw_cost) / draw_cost
        gp = margin * revenue
        rows.append({
            "campaign_id": int(t.campaign_id), "audience": int(n), "audience_source": t.audience_source,
            "expected_redemptions": redemptions, "incremental_revenue": revenue,
            "incremental_coupon_product_revenue": coupon_revenue, "incremental_gross_profit": gp,
            "contact_cost": contact_cost, "redemption_cost": redemption_cost, "cost": cost,
            "roi": (gp - cost) / cost if cost > 0 else math.nan,
            "roi_low": float(np.quantile(draw_roi, lo)), "roi_high": float(np.quantile(draw_roi, hi)),
            "incremental_gross_profit_low": float(np.quantile(draw_gp, lo)),
            "incremental_gross_profit_high": float(np.quantile(draw_gp, hi)),
            "incremental_profit_low": float(np.quantile(draw_gp - draw_cost, lo)),
            "incremental_profit_high": float(np.quantile(draw_gp - draw_cost, hi)),
        })
    out = pd.DataFrame(rows)
    facts = plans[["campaign_id", "campaign_type", "start_date", "end_date"]]
    return out.merge(facts, on="campaign_id", how="left")


def interval_method(calibration: UpliftCalibration, mc_samples: int, interval: float) -> str:
    text = (f"{interval:.0%} interval over {calibration.n_draws} two-stage bootstrap draws (held-out campaigns, "
            f"then households) of the uplift calibration on campaigns {list(calibration.campaigns)}")
    return text + (f", each with one of {mc_samples} shared-mask MC dropout draws" if mc_samples else "")


def budget_constraints(plans: pd.DataFrame, planning: PlanningConfig) -> BudgetConstraints:
    """The plan's constraints from gold.campaign_plans and the planning config; a clear error when inconsistent."""
    def limits(column: str) -> dict[int, float]:
        return {int(r.campaign_id): float(getattr(r, column)) for r in plans.itertuples()
                if getattr(r, column) is not None and not pd.isna(getattr(r, column))}

    try:
        return BudgetConstraints(
            total_budget=planning.total_budget, household_cap=planning.household_cap,
            campaign_min_budget=limits("min_budget"), campaign_max_budget=limits("max_budget"),
            campaign_inventory=limits("coupon_inventory"),
        )
    except ValueError as exc:
        raise I.ScoringInputError(f"{CAMPAIGN_PLANS.full_name} and planning settings are inconsistent: {exc}") from exc


def plan_rows(summary: PlanSummary, selected: DataFrame, plans: pd.DataFrame, planning: PlanningConfig,
              margin: float, plan_forecast: pd.DataFrame) -> pd.DataFrame:
    """gold.budget_plan rows (without run keys): one per planned campaign, those the plan leaves out included.

    ``plan_forecast``: :func:`roi_forecast` over the chosen pairs, for the intervals.
    """
    revenue = {int(r["campaign_id"]): float(r["gp"]) / margin if margin > 0 else math.nan
               for r in selected.groupBy("campaign_id").agg(F.sum("value").alias("gp")).collect()}
    by_id = {c.campaign_id: c for c in summary.campaigns}
    intervals = plan_forecast.set_index("campaign_id") if len(plan_forecast) else None
    rows = []
    for plan in plans.itertuples():
        c = by_id.get(int(plan.campaign_id))
        band = {}
        if c and c.audience and intervals is not None and int(plan.campaign_id) in intervals.index:
            f = intervals.loc[int(plan.campaign_id)]
            band = {"roi_low": f["roi_low"], "roi_high": f["roi_high"],
                    "expected_incremental_profit_low": f["incremental_profit_low"],
                    "expected_incremental_profit_high": f["incremental_profit_high"]}
        gp = revenue.get(int(plan.campaign_id), 0.0) * margin
        spend = c.spend if c else 0.0
        rows.append({
            "campaign_id": int(plan.campaign_id), "planning_mode": summary.mode, "total_budget": summary.total_budget,
            "target_roi": summary.target_roi if summary.mode == "target_roi" else None,
            "household_cap": summary.household_cap,
            "min_budget": c.min_budget if c else None, "max_budget": c.max_budget if c else None,
            "coupon_inventory": c.inventory if c else None,
            "budget": spend, "audience": c.audience if c else 0, "expected_redemptions": c.redemptions if c else 0.0,
            "expected_incremental_revenue": revenue.get(int(plan.campaign_id), 0.0),
            "expected_incremental_gross_profit": gp, "expected_incremental_profit": c.profit if c else 0.0,
            "roi": c.roi if c else None, "marginal_roi": c.marginal_roi if c else None,
            "forced_households": c.forced_pairs if c else 0,
            "min_budget_shortfall": c.min_budget_shortfall if c else 0.0,
            "plan_budget_used": summary.budget_used, "plan_dual_bound": summary.dual_bound, "plan_gap": summary.gap,
            **band,
        })
    return pd.DataFrame(rows)


def _keyed(spark: SparkSession, frame: pd.DataFrame, spec: TableSpec, keys: dict[str, Any]) -> DataFrame:
    """A driver-side frame as a DataFrame of ``spec`` with the run's keys."""
    return delta_io.frame_of_records(spark, frame.to_dict("records"), spec, keys)


def published(spark: SparkSession, spec: TableSpec, config: AppConfig) -> DataFrame:
    """What readers see of ``spec``: rows of the runs in the publication log (the views' rule)."""
    if not delta_io.table_exists(spark, PUBLICATION_LOG, config.warehouse):
        return delta_io.read_table(spark, spec, config.warehouse).limit(0)
    runs = delta_io.read_table(spark, PUBLICATION_LOG, config.warehouse).select("run_date", "run_id")
    return delta_io.read_table(spark, spec, config.warehouse).join(runs, ["run_date", "run_id"])


def publish(spark: SparkSession, config: AppConfig, run_date: dt.date, run_id: str, model_version: str,
            frames: dict[TableSpec, DataFrame]) -> dict[str, int]:
    """Steps 2-4 of the protocol in the module docstring."""
    predicate = f"run_date = DATE'{run_date.isoformat()}' AND run_id = '{run_id}'"
    versions, rows = {}, {}
    for spec in PUBLISHED_TABLES:
        with stage(log, f"publish.{spec.name}[{run_date}]") as st:
            versions[spec.full_name] = delta_io.replace_slice(spark, frames[spec], spec, config.warehouse, predicate)
            rows[spec.full_name] = delta_io.read_table(spark, spec, config.warehouse).filter(
                (F.col("run_date") == F.lit(run_date)) & (F.col("run_id") == run_id)).count()
            st.rows = rows[spec.full_name]
    with stage(log, f"publish.publication_log[{run_date}]"):
        entry = spark.createDataFrame(
            [(run_date, run_id, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), model_version, versions, rows)],
            PUBLICATION_LOG.struct)
        delta_io.merge_by_keys(spark, entry, PUBLICATION_LOG, config.warehouse)
    with stage(log, f"publish.housekeeping[{run_date}]"):
        from delta.tables import DeltaTable

        for spec in PUBLISHED_TABLES:
            DeltaTable.forPath(spark, delta_io.table_path(config.warehouse, spec)).delete(
                (F.col("run_date") == F.lit(run_date)) & (F.col("run_id") != run_id))
        create_spark_views(spark, config)
    return rows


def score(spark: SparkSession, config: AppConfig, run_date: dt.date, report: bool = True) -> ScoringResult:
    """Scores, forecasts, plans and publishes ``run_date`` (module docstring); then, unless ``report`` is False
    (the backtest renders it after adding the date's forecast accuracy), writes the run report."""
    if config.scoring is None:
        raise ConfigError("configuration section 'scoring' is missing")
    if config.planning is None:
        raise ConfigError("configuration section 'planning' is missing")
    scoring, planning = config.scoring, config.planning
    bronze = read_bronze(spark, config)
    uf_spec = user_features_spec(config.features)
    if not delta_io.table_exists(spark, uf_spec, config.warehouse):
        raise I.ScoringInputError(f"{uf_spec.full_name} does not exist: run jobs/build_features.py --as-of {run_date}")
    user_features = delta_io.read_table(spark, uf_spec, config.warehouse)
    model = champion(config)

    with stage(log, f"score.plans[{run_date}]") as st:
        cost = scoring.redemption_cost or I.redemption_cost_estimate(bronze, run_date)
        I.add_new_plans(spark, I.seed_plans_from_calendar(bronze, run_date, scoring, cost), config)
        plans = I.planned_campaigns(spark, config, run_date).cache()
        st.detail = f"redemption cost {cost:.3f} per redemption for seeded plans"
    with stage(log, f"score.quality_gates[{run_date}]") as st:
        checked = I.check_inputs(user_features, plans, run_date, config, scoring)
        st.detail = ", ".join(f"{k} {v:,}" for k, v in checked.items())
    plans_pd = plans.toPandas()
    constraints = budget_constraints(plans_pd, planning)
    lineage = input_versions(spark, config)
    run_id = uuid.uuid4().hex
    keys = {"run_date": run_date, "run_id": run_id, "model_version": model.version}
    cal = model.calibration

    with stage(log, f"score.household_scores[{run_date}]") as st:
        examples = I.scoring_examples(bronze, user_features, plans, run_date, config)
        tracking_uri = config.require_training()[2].tracking_uri
        scores = examples.mapInPandas(scorer(model.uri, tracking_uri, scoring.mc_dropout_samples),
                                      SCORE_SCHEMA).cache()
        st.rows = scores.count()
    unit = plans.select("campaign_id", "contact_cost", "redemption_cost")
    calibrated_uplift = F.lit(cal.spend.intercept) + F.lit(cal.spend.slope) * F.col("uplift_spend")
    calibrated_p = F.least(F.lit(1.0), F.greatest(F.lit(0.0), F.lit(cal.redemption.ratio) * F.col("p_redeem_t1")))
    household_scores = (
        scores.join(F.broadcast(unit), "campaign_id")
        .withColumn("calibrated_uplift_spend", calibrated_uplift)
        .withColumn("calibrated_p_redeem", calibrated_p)
        .select(
            F.lit(run_date).alias("run_date"), F.lit(run_id).alias("run_id"), "campaign_id", "household_id",
            F.col("p_redeem_t1").alias("p_redeem_targeted"), F.col("p_redeem_t0").alias("p_redeem_untargeted"),
            F.col("coupon_product_spend_t1").alias("coupon_product_spend_targeted"),
            F.col("coupon_product_spend_t0").alias("coupon_product_spend_untargeted"),
            F.col("spend_t1").alias("spend_targeted"), F.col("spend_t0").alias("spend_untargeted"),
            "uplift_redeem", "uplift_coupon_product_spend", "uplift_spend",
            (F.col("calibrated_uplift_spend") * scoring.gross_margin).alias("incremental_gross_profit"),
            (F.col("contact_cost") + F.col("calibrated_p_redeem") * F.col("redemption_cost")).alias("expected_cost"),
            F.lit(model.version).alias("model_version"), "calibrated_uplift_spend", "calibrated_p_redeem",
        )
        .cache()
    )
    with stage(log, f"score.campaign_roi_forecast[{run_date}]") as st:
        totals = campaign_totals(audiences(bronze.campaigns, scores))
        forecast_pd = roi_forecast(totals, plans_pd, cal, scoring.gross_margin, scoring.interval)
        forecast_pd["interval_method"] = interval_method(cal, scoring.mc_dropout_samples, scoring.interval)
        forecast_pd["input_versions"] = [dict(sorted(lineage.items()))] * len(forecast_pd)
        forecast = _keyed(spark, forecast_pd, CAMPAIGN_ROI_FORECAST, keys)
        st.rows = len(forecast_pd)
    with stage(log, f"score.budget_plan[{run_date}, {planning.mode}]") as st:
        pairs = household_scores.select(
            "household_id", "campaign_id", F.col("incremental_gross_profit").alias("value"),
            F.col("expected_cost").alias("cost"), F.col("calibrated_p_redeem").alias("redemptions"))
        selected, summary = plan_budget_spark(
            pairs, constraints, planning.mode, planning.target_roi if planning.mode == "target_roi" else None,
            SolverSettings(price_grid=planning.price_grid, sample_households=planning.sample_households))
        # The plan's ROI interval: the forecast's arithmetic over the households the plan chose.
        chosen = scores.join(selected.select("household_id", "campaign_id"), ["household_id", "campaign_id"])
        plan_forecast = roi_forecast(campaign_totals(chosen.withColumn("audience_source", F.lit("budget_plan"))),
                                     plans_pd, cal, scoring.gross_margin, scoring.interval)
        budget_plan = _keyed(spark, plan_rows(summary, selected, plans_pd, planning, scoring.gross_margin,
                                              plan_forecast), BUDGET_PLAN, keys)
        targeting = selected.select(
            F.lit(run_date).alias("run_date"), F.lit(run_id).alias("run_id"), "campaign_id", "household_id",
            F.col("value").alias("expected_incremental_gross_profit"), F.col("cost").alias("expected_cost"),
            F.col("redemptions").alias("expected_redemptions"),
            (F.col("value") - F.col("cost")).alias("expected_incremental_profit"),
            F.when(F.isnan("step_roi"), None).otherwise(F.col("step_roi")).alias("step_roi"),
            F.col("forced").cast("boolean").alias("forced"), F.lit(model.version).alias("model_version"),
        )
        st.rows = summary.pairs_selected
        st.detail = (f"budget used {summary.budget_used:,.2f} of {summary.total_budget}, profit {summary.profit:,.2f}, "
                     f"{summary.households_targeted:,} households, gap {summary.gap}")
    rows = publish(spark, config, run_date, run_id, model.version,
                   {HOUSEHOLD_SCORES: household_scores, CAMPAIGN_ROI_FORECAST: forecast,
                    BUDGET_PLAN: budget_plan, HOUSEHOLD_TARGETING: targeting})
    for frame in (scores, household_scores, selected, plans):
        frame.unpersist()
    if not report:
        return ScoringResult(run_id, model.version, rows)
    from promo_roi.reporting.report import report_after_publication

    return ScoringResult(run_id, model.version, rows, report_after_publication(spark, config, run_date, run_id))


def describe(result: ScoringResult) -> dict[str, Any]:
    report = {} if result.report is None else {"report": result.report.describe()}
    return {"run_id": result.run_id, "model_version": result.model_version, **result.rows, **report}
