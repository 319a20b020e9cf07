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
   the views are still right and the next run deletes them).

A run that dies before step 3 leaves the views on the last published run.
Rerunning a date publishes the same row counts and leaves one run per date.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.config import AppConfig, ConfigError
from promo_roi.features import read_bronze
from promo_roi.observability import stage
from promo_roi.scoring import inputs as I
from promo_roi.scoring.predict import SCORE_SCHEMA, scorer
from promo_roi.tables import (
    CAMPAIGN_PLANS,
    CAMPAIGN_ROI_FORECAST,
    HOUSEHOLD_SCORES,
    PUBLICATION_LOG,
    SOURCE_TABLES,
    TableSpec,
    user_features_spec,
)

log = logging.getLogger(__name__)

PUBLISHED_TABLES: tuple[TableSpec, ...] = (HOUSEHOLD_SCORES, CAMPAIGN_ROI_FORECAST)


@dataclass(frozen=True)
class ScoringResult:
    run_id: str
    model_version: str
    rows: dict[str, int]


def champion_uri(config: AppConfig) -> tuple[str, str]:
    """The champion version's artifact location and its version; a clear error when there is none."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    training, _, mlflow_config = config.require_training()
    mlflow.set_tracking_uri(mlflow_config.tracking_uri)
    try:
        version = MlflowClient().get_model_version_by_alias(training.registered_model, training.champion_alias)
    except MlflowException as exc:
        raise I.ScoringInputError(
            f"no '{training.champion_alias}' version of {training.registered_model} in {mlflow_config.tracking_uri}: "
            "run jobs/train.py (a model becomes champion only when it passes its refutation checks)") from exc
    source = MlflowClient().get_model_version_download_uri(training.registered_model, version.version)
    return source, str(version.version)


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


def roi_forecast(scores: DataFrame, plans: DataFrame, bronze_campaigns: DataFrame, margin: float,
                 interval: float) -> DataFrame:
    """Per plan: audience totals, cost, ROI and its MC-dropout interval (shared-mask draws)."""
    chosen = audiences(bronze_campaigns, scores).join(
        F.broadcast(plans.select("campaign_id", "contact_cost", "redemption_cost")), "campaign_id")
    totals = chosen.groupBy("campaign_id", "audience_source").agg(
        F.count(F.lit(1)).alias("audience"),
        F.sum("p_redeem_t1").alias("expected_redemptions"),
        F.sum("uplift_spend").alias("incremental_revenue"),
        F.sum("uplift_coupon_product_spend").alias("incremental_coupon_product_revenue"),
        F.first("contact_cost").alias("unit_contact_cost"),
        F.first("redemption_cost").alias("unit_redemption_cost"),
    )
    draws = (
        chosen.select("campaign_id", F.posexplode(F.arrays_zip("mc_uplift_spend", "mc_p_redeem")).alias("k", "d"))
        .groupBy("campaign_id", "k")
        .agg(F.sum("d.mc_uplift_spend").alias("rev"), F.sum("d.mc_p_redeem").alias("red"))
    )
    lo, hi = (1 - interval) / 2, 1 - (1 - interval) / 2
    unit = totals.select("campaign_id", "audience", "unit_contact_cost", "unit_redemption_cost")
    draw_roi = (
        draws.join(unit, "campaign_id")
        .withColumn("cost", F.col("audience") * F.col("unit_contact_cost") + F.col("red") * F.col("unit_redemption_cost"))
        .withColumn("gp", F.col("rev") * margin)
        .withColumn("roi", (F.col("gp") - F.col("cost")) / F.col("cost"))
        .groupBy("campaign_id")
        .agg(F.percentile_approx("roi", [lo, hi], 10000).alias("roi_q"),
             F.percentile_approx("gp", [lo, hi], 10000).alias("gp_q"))
    )
    out = (
        totals.join(draw_roi, "campaign_id", "left")
        .withColumn("contact_cost", F.col("audience") * F.col("unit_contact_cost"))
        .withColumn("redemption_cost", F.col("expected_redemptions") * F.col("unit_redemption_cost"))
        .withColumn("cost", F.col("contact_cost") + F.col("redemption_cost"))
        .withColumn("incremental_gross_profit", F.col("incremental_revenue") * margin)
        .withColumn("roi", (F.col("incremental_gross_profit") - F.col("cost")) / F.col("cost"))
        .withColumn("roi_low", F.col("roi_q")[0]).withColumn("roi_high", F.col("roi_q")[1])
        .withColumn("incremental_gross_profit_low", F.col("gp_q")[0])
        .withColumn("incremental_gross_profit_high", F.col("gp_q")[1])
    )
    return out.join(F.broadcast(plans.select("campaign_id", "campaign_type", "start_date", "end_date")), "campaign_id")


def _views(spark: SparkSession, config: AppConfig) -> None:
    """The analysts' views: only runs recorded in the publication log, latest forecast per campaign."""
    log_path = delta_io.table_path(config.warehouse, PUBLICATION_LOG)
    for spec in PUBLISHED_TABLES:
        path = delta_io.table_path(config.warehouse, spec)
        spark.sql(
            f"CREATE OR REPLACE VIEW gold.{spec.name}_published AS "
            f"SELECT t.* FROM delta.`{path}` t JOIN delta.`{log_path}` p "
            "ON t.run_date = p.run_date AND t.run_id = p.run_id")
    spark.sql(
        "CREATE OR REPLACE VIEW gold.latest_campaign_roi_forecast AS "
        "SELECT * FROM (SELECT f.*, row_number() OVER (PARTITION BY campaign_id ORDER BY run_date DESC) AS rn "
        "FROM gold.campaign_roi_forecast_published f) WHERE rn = 1")


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
        _views(spark, config)
    return rows


def score(spark: SparkSession, config: AppConfig, run_date: dt.date) -> ScoringResult:
    if config.scoring is None:
        raise ConfigError("configuration section 'scoring' is missing")
    scoring = config.scoring
    bronze = read_bronze(spark, config)
    uf_spec = user_features_spec(config.features)
    if not delta_io.table_exists(spark, uf_spec, config.warehouse):
        raise I.ScoringInputError(f"{uf_spec.full_name} does not exist: run jobs/build_features.py --as-of {run_date}")
    user_features = delta_io.read_table(spark, uf_spec, config.warehouse)
    model_uri, model_version = champion_uri(config)

    with stage(log, f"score.plans[{run_date}]") as st:
        cost = scoring.redemption_cost or I.redemption_cost_estimate(bronze, run_date)
        I.add_new_plans(spark, I.seed_plans_from_calendar(bronze, run_date, scoring, cost), config)
        plans = I.planned_campaigns(spark, config, run_date).cache()
        st.detail = f"redemption cost {cost:.3f} per redemption for seeded plans"
    with stage(log, f"score.quality_gates[{run_date}]") as st:
        checked = I.check_inputs(user_features, plans, run_date, config, scoring)
        st.detail = ", ".join(f"{k} {v:,}" for k, v in checked.items())
    lineage = input_versions(spark, config)
    run_id = uuid.uuid4().hex

    with stage(log, f"score.household_scores[{run_date}]") as st:
        examples = I.scoring_examples(bronze, user_features, plans, run_date, config)
        tracking_uri = config.require_training()[2].tracking_uri
        scores = examples.mapInPandas(scorer(model_uri, tracking_uri, scoring.mc_dropout_samples),
                                      SCORE_SCHEMA).cache()
        st.rows = scores.count()
    unit = plans.select("campaign_id", "contact_cost", "redemption_cost")
    household_scores = (
        scores.join(F.broadcast(unit), "campaign_id")
        .select(
            F.lit(run_date).alias("run_date"), F.lit(run_id).alias("run_id"), "campaign_id", "household_id",
            F.col("p_redeem_t1").alias("p_redeem_targeted"), F.col("p_redeem_t0").alias("p_redeem_untargeted"),
            F.col("coupon_product_spend_t1").alias("coupon_product_spend_targeted"),
            F.col("coupon_product_spend_t0").alias("coupon_product_spend_untargeted"),
            F.col("spend_t1").alias("spend_targeted"), F.col("spend_t0").alias("spend_untargeted"),
            "uplift_redeem", "uplift_coupon_product_spend", "uplift_spend",
            (F.col("uplift_spend") * scoring.gross_margin).alias("incremental_gross_profit"),
            (F.col("contact_cost") + F.col("p_redeem_t1") * F.col("redemption_cost")).alias("expected_cost"),
            F.lit(model_version).alias("model_version"),
        )
    )
    with stage(log, f"score.campaign_roi_forecast[{run_date}]") as st:
        forecast = roi_forecast(scores, plans, bronze.campaigns, scoring.gross_margin, scoring.interval).select(
            F.lit(run_date).alias("run_date"), F.lit(run_id).alias("run_id"), "*",
            F.lit(f"mc_dropout({scoring.mc_dropout_samples} shared-mask draws, {scoring.interval:.0%})")
            .alias("interval_method"),
            F.lit(model_version).alias("model_version"),
            F.create_map(*[x for k, v in sorted(lineage.items()) for x in (F.lit(k), F.lit(v))]).alias("input_versions"),
        ).cache()
        st.rows = forecast.count()
    rows = publish(spark, config, run_date, run_id, model_version,
                   {HOUSEHOLD_SCORES: household_scores, CAMPAIGN_ROI_FORECAST: forecast})
    scores.unpersist()
    forecast.unpersist()
    plans.unpersist()
    return ScoringResult(run_id, model_version, rows)


def describe(result: ScoringResult) -> dict[str, Any]:
    return {"run_id": result.run_id, "model_version": result.model_version, **result.rows}
