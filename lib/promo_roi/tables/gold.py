"""Gold: what the business reads, from the training step, the promotion evaluation and the nightly
scoring job."""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from promo_roi.tables.spec import TableSpec, table_struct

# --- gold: what the training step publishes ---------------------------------

MODEL_EVALUATION = TableSpec(
    "gold", "model_evaluation", table_struct(
        ("as_of_date", DateType()), ("mlflow_run_id", StringType()), ("model_name", StringType()),
        ("split", StringType()), ("scope", StringType()), ("outcome", StringType()),
        ("metric", StringType()), ("value", DoubleType()), ("ci_low", DoubleType()),
        ("ci_high", DoubleType()), ("n_rows", LongType()), ("n_campaigns", LongType()),
        ("evaluated_at", TimestampType()),
    ), partition_by=("as_of_date",),
    keys=("as_of_date", "mlflow_run_id", "model_name", "split", "scope", "outcome", "metric"),
    description=(
        "Heuristic, gradient-boosting T-learner and transformer scored on the same held-out campaigns: "
        "redemption AUC, spend WAPE (observed arm), uplift Qini and AUUC on doubly-robust pseudo-outcomes "
        "with bootstrap intervals (households resampled), overall and inside the propensity overlap band."
    ),
)

PROMOTION_LIFT_EVALUATION = TableSpec(
    "gold", "promotion_lift_evaluation", table_struct(
        ("as_of_date", DateType()), ("first_held_out_week", LongType()), ("last_held_out_week", LongType()),
        ("model", StringType()), ("placement_type", StringType()), ("rows", LongType()),
        ("product_weeks", LongType()), ("units", DoubleType()),
        ("wape", DoubleType()), ("wape_low", DoubleType()), ("wape_high", DoubleType()), ("lift_wape", DoubleType()),
        ("bias", DoubleType()), ("bias_low", DoubleType()), ("bias_high", DoubleType()),
        ("poisson_deviance", DoubleType()), ("deviance_low", DoubleType()), ("deviance_high", DoubleType()),
        ("reference_model", StringType()), ("wape_minus_reference", DoubleType()),
        ("difference_low", DoubleType()), ("difference_high", DoubleType()),
        ("deviance_minus_reference", DoubleType()), ("deviance_difference_low", DoubleType()),
        ("deviance_difference_high", DoubleType()), ("evaluated_at", TimestampType()),
    ), partition_by=("as_of_date",), keys=("as_of_date", "model", "placement_type"),
    description=(
        "The promotion lift yardstick: units of placed product-store-weeks forecast rolling origin over "
        "held-out weeks by merchandiser baselines and LightGBM; WAPE and Poisson deviance, product-resampled "
        "intervals."
    ),
)

PROMOTION_SIDE_EFFECTS = TableSpec(
    "gold", "promotion_side_effects", table_struct(
        ("as_of_date", DateType()), ("first_week", LongType()), ("last_week", LongType()), ("effect", StringType()),
        ("placement_type", StringType()), ("events", LongType()), ("controls", LongType()),
        ("lift_units", DoubleType()), ("expected_units", DoubleType()), ("lost_units", DoubleType()),
        ("loss_rate", DoubleType()), ("loss_rate_low", DoubleType()), ("loss_rate_high", DoubleType()),
        ("share", DoubleType()), ("share_low", DoubleType()), ("share_high", DoubleType()),
        ("evaluated_at", TimestampType()),
    ), partition_by=("as_of_date",), keys=("as_of_date", "effect", "placement_type"),
    description=(
        "What placements cost beyond their own units, from the weeks before as_of_date: the next week's dip "
        "(pull-forward) and the category's other products' loss (cannibalisation), as rates of the expected "
        "units and shares of the lift."
    ),
)

ROLLING_ORIGIN_EVALUATION = TableSpec(
    "gold", "rolling_origin_evaluation", table_struct(
        ("as_of_date", DateType()), ("model_name", StringType()), ("campaign_id", LongType()),
        ("outcome", StringType()), ("scope", StringType()), ("metric", StringType()), ("value", DoubleType()),
        ("ci_low", DoubleType()), ("ci_high", DoubleType()), ("share_better", DoubleType()),
        ("n_rows", LongType()), ("n_campaigns", LongType()), ("held_out_campaigns", StringType()),
        ("evaluated_at", TimestampType()),
    ), partition_by=("as_of_date",),
    keys=("as_of_date", "model_name", "campaign_id", "outcome", "scope", "metric"),
    description=(
        "Rolling-origin yardstick (jobs/evaluate.py): every fully observed campaign from the sixth on held out "
        "in turn, its models trained only on campaigns that ended before it started, all judged on the same "
        "doubly robust pseudo-outcomes. Per held-out campaign (campaign_id) and pooled (campaign_id null): "
        "tie-averaged Qini and AUUC overall and in the overlap band, the placebo Qini on the pre-period, and "
        "qini_minus_<reference>, the paired two-stage bootstrap difference of pooled Qini against the heuristic "
        "(every learned model) and against the LightGBM T-learner (the transformer) on the same resamples "
        "(95% interval, share_better = share of draws where the model wins)."
    ),
)

POSITIVITY_DIAGNOSTICS = TableSpec(
    "gold", "positivity_diagnostics", table_struct(
        ("as_of_date", DateType()), ("mlflow_run_id", StringType()), ("split", StringType()),
        ("campaign_id", LongType()), ("propensity_source", StringType()),
        ("n", LongType()), ("n_targeted", LongType()), ("auc_propensity", DoubleType()),
        ("share_in_overlap", DoubleType()), ("share_targeted_in_overlap", DoubleType()),
        ("share_untargeted_in_overlap", DoubleType()),
        ("targeted_p05", DoubleType()), ("targeted_p50", DoubleType()), ("targeted_p95", DoubleType()),
        ("untargeted_p05", DoubleType()), ("untargeted_p50", DoubleType()), ("untargeted_p95", DoubleType()),
    ), partition_by=("as_of_date",), keys=("as_of_date", "mlflow_run_id", "split", "campaign_id", "propensity_source"),
    description="Per campaign: how well targeting is predictable and how many households sit where both arms are plausible.",
)

REFUTATION_CHECKS = TableSpec(
    "gold", "refutation_checks", table_struct(
        ("as_of_date", DateType()), ("mlflow_run_id", StringType()), ("model_name", StringType()),
        ("check", StringType()), ("outcome", StringType()), ("passed", BooleanType()),
        ("effect", DoubleType()), ("ci_low", DoubleType()), ("ci_high", DoubleType()),
        ("reference_effect", DoubleType()), ("naive_effect", DoubleType()), ("detail", StringType()),
        ("gates_promotion", BooleanType()),
    ), partition_by=("as_of_date",), keys=("as_of_date", "mlflow_run_id", "model_name", "check", "outcome"),
    description=(
        "Refutations of each model, in a fake window one campaign length before the real one where no effect "
        "can exist: its uplift ranking must not order households by the fake effects (placebo_ranking, the "
        "promotion gate: a transformer that fails it is not promoted), and its doubly robust average effect "
        "must be about 0 there (placebo) and agree between two random halves of the households (stability); "
        "the last two describe the data more than the model and gate nothing."
    ),
)

UPLIFT_CURVES = TableSpec(
    "gold", "uplift_curves", table_struct(
        ("as_of_date", DateType()), ("mlflow_run_id", StringType()), ("model_name", StringType()),
        ("split", StringType()), ("scope", StringType()), ("outcome", StringType()),
        ("point", LongType()), ("n_rows", LongType()), ("fraction_targeted", DoubleType()),
        ("gain", DoubleType()), ("random_gain", DoubleType()),
    ), partition_by=("as_of_date",),
    keys=("as_of_date", "mlflow_run_id", "model_name", "split", "scope", "outcome", "point"),
    description=(
        "The doubly robust gain curves behind gold.model_evaluation's Qini: per model, held-out split, scope "
        "and outcome, targeting the `point` highest-uplift rows of `n_rows` gains `gain` (the sum of their AIPW "
        "pseudo-outcomes, in the outcome's units) against `random_gain` for a random choice of as many; about "
        "200 points per curve, every decile among them."
    ),
)


# --- gold: what the nightly scoring job publishes -------------------------------

CAMPAIGN_PLANS = TableSpec(
    "gold", "campaign_plans", table_struct(
        ("campaign_id", LongType()), ("campaign_type", StringType()),
        ("start_date", DateType()), ("end_date", DateType()),
        ("coupon_product_ids", ArrayType(LongType())),
        ("contact_cost", DoubleType()), ("redemption_cost", DoubleType()),
        ("min_budget", DoubleType()), ("max_budget", DoubleType()), ("coupon_inventory", DoubleType()),
        ("source", StringType()), ("added_at", TimestampType()),
    ), keys=("campaign_id",),
    description=(
        "The campaigns to plan for: dates, coupon products, contact cost per targeted household, expected "
        "cost per redemption, optional budget bounds and coupon inventory. Seeded with the Complete Journey "
        "campaigns that start after the run date; planners add rows with SQL."
    ),
)

HOUSEHOLD_SCORES = TableSpec(
    "gold", "household_scores", table_struct(
        ("run_date", DateType()), ("run_id", StringType()), ("campaign_id", LongType()),
        ("household_id", LongType()),
        ("p_redeem_targeted", DoubleType()), ("p_redeem_untargeted", DoubleType()),
        ("coupon_product_spend_targeted", DoubleType()), ("coupon_product_spend_untargeted", DoubleType()),
        ("spend_targeted", DoubleType()), ("spend_untargeted", DoubleType()),
        ("uplift_redeem", DoubleType()), ("uplift_coupon_product_spend", DoubleType()),
        ("uplift_spend", DoubleType()), ("incremental_gross_profit", DoubleType()),
        ("expected_cost", DoubleType()), ("model_version", StringType()),
        ("calibrated_uplift_spend", DoubleType()), ("calibrated_p_redeem", DoubleType()),
        ("expected_redemptions", DoubleType()), ("calibrated_uplift_coupon_product_spend", DoubleType()),
        ("value_outcome", StringType()), ("propensity", DoubleType()), ("in_overlap", BooleanType()),
    ), partition_by=("run_date",), keys=("run_date", "run_id", "campaign_id", "household_id"),
    description=(
        "Champion-model predictions per (household, planned campaign) on the run date: the network's raw "
        "per-arm predictions and uplifts, the calibrated uplifts, redemption probability and expected number of "
        "redemptions, and from them the incremental gross profit (on the outcome value_outcome names) and "
        "expected cost (contact + expected redemptions x cost per redemption) the budget plan uses."
    ),
)

CAMPAIGN_ROI_FORECAST = TableSpec(
    "gold", "campaign_roi_forecast", table_struct(
        ("run_date", DateType()), ("run_id", StringType()), ("campaign_id", LongType()),
        ("campaign_type", StringType()), ("start_date", DateType()), ("end_date", DateType()),
        ("audience", LongType()), ("audience_source", StringType()),
        ("expected_redemptions", DoubleType()), ("incremental_revenue", DoubleType()),
        ("incremental_coupon_product_revenue", DoubleType()), ("incremental_gross_profit", DoubleType()),
        ("contact_cost", DoubleType()), ("redemption_cost", DoubleType()), ("cost", DoubleType()),
        ("roi", DoubleType()), ("roi_low", DoubleType()), ("roi_high", DoubleType()),
        ("incremental_gross_profit_low", DoubleType()), ("incremental_gross_profit_high", DoubleType()),
        ("interval_method", StringType()), ("model_version", StringType()),
        ("input_versions", MapType(StringType(), LongType())), ("value_outcome", StringType()),
    ), partition_by=("run_date",), keys=("run_date", "run_id", "campaign_id"),
    description=(
        "Per run date and planned campaign: audience, expected redemptions, incremental revenue (of the outcome "
        "value_outcome names) and gross profit, cost, ROI = (incremental gross profit - cost) / cost with an interval, the model version and "
        "the Delta versions of the inputs."
    ),
)

PUBLICATION_LOG = TableSpec(
    "gold", "publication_log", table_struct(
        ("run_date", DateType()), ("run_id", StringType()), ("published_at", TimestampType()),
        ("model_version", StringType()), ("table_versions", MapType(StringType(), LongType())),
        ("rows", MapType(StringType(), LongType())),
    ), keys=("run_date",),
    description=(
        "One row per run date: the run whose results readers see. Written as the last step of a scoring run; "
        "the gold views show only the run recorded here."
    ),
)


MODEL_CHAMPION = TableSpec(
    "gold", "model_champion", table_struct(
        ("registered_model", StringType()), ("alias", StringType()), ("sequence", LongType()),
        ("version", StringType()), ("previous_version", StringType()), ("mlflow_run_id", StringType()),
        ("reason", StringType()), ("decided_at", TimestampType()),
    ), keys=("registered_model", "alias", "sequence"),
    description=(
        "Every champion promotion, in order: the latest sequence per registered model and alias is the "
        "champion, and the MLflow alias follows it. A training run claims sequence n+1 only while n is the "
        "champion it compared against (an insert-if-absent merge), so of two concurrent trainings one wins."
    ),
)


BUDGET_PLAN = TableSpec(
    "gold", "budget_plan", table_struct(
        ("run_date", DateType()), ("run_id", StringType()), ("campaign_id", LongType()),
        ("planning_mode", StringType()), ("total_budget", DoubleType()), ("target_roi", DoubleType()),
        ("household_cap", IntegerType()), ("min_budget", DoubleType()), ("max_budget", DoubleType()),
        ("coupon_inventory", DoubleType()),
        ("budget", DoubleType()), ("audience", LongType()), ("expected_redemptions", DoubleType()),
        ("expected_incremental_revenue", DoubleType()), ("expected_incremental_gross_profit", DoubleType()),
        ("expected_incremental_profit", DoubleType()), ("roi", DoubleType()), ("marginal_roi", DoubleType()),
        ("forced_households", LongType()), ("min_budget_shortfall", DoubleType()),
        ("plan_budget_used", DoubleType()), ("plan_dual_bound", DoubleType()), ("plan_gap", DoubleType()),
        ("model_version", StringType()), ("roi_low", DoubleType()), ("roi_high", DoubleType()),
        ("expected_incremental_profit_low", DoubleType()), ("expected_incremental_profit_high", DoubleType()),
        ("risk_quantile", DoubleType()), ("risk_quantile_roi", DoubleType()), ("excluded_by_risk", BooleanType()),
        ("plan_profit_low", DoubleType()), ("plan_profit_high", DoubleType()),
    ), partition_by=("run_date",), keys=("run_date", "run_id", "campaign_id"),
    description=(
        "Per run date and planned campaign: the budget the plan gives it, the audience, expected incremental "
        "profit (calibrated incremental gross profit - cost), ROI with the forecast's interval over the chosen "
        "households, and the marginal ROI of the last households admitted; the plan's mode, total budget, caps "
        "and certified optimality gap, and the interval of the whole plan's profit. With planning.risk = quantile: the quantile, each campaign's ROI at it "
        "and whether the risk rule left it out (all null with planning.risk = expected)."
    ),
)

HOUSEHOLD_TARGETING = TableSpec(
    "gold", "household_targeting", table_struct(
        ("run_date", DateType()), ("run_id", StringType()), ("campaign_id", LongType()),
        ("household_id", LongType()), ("expected_incremental_gross_profit", DoubleType()),
        ("expected_cost", DoubleType()), ("expected_redemptions", DoubleType()),
        ("expected_incremental_profit", DoubleType()), ("step_roi", DoubleType()), ("forced", BooleanType()),
        ("model_version", StringType()), ("in_overlap", BooleanType()),
    ), partition_by=("run_date",), keys=("run_date", "run_id", "campaign_id", "household_id"),
    description=(
        "The (household, campaign) pairs the budget plan targets: calibrated expected incremental gross profit "
        "and cost, the marginal ROI of the step that admitted the pair, whether it was forced in to meet a "
        "campaign's minimum budget, and whether its propensity lies in the overlap band (its effect is "
        "estimated from households both targeted and not, rather than extrapolated)."
    ),
)

BACKTEST_FORECAST = TableSpec(
    "gold", "backtest_forecast", StructType([
        *CAMPAIGN_ROI_FORECAST.struct.fields, StructField("backtested_at", TimestampType(), True),
    ]), partition_by=("run_date",), keys=("run_date", "run_id", "campaign_id"),
    description=(
        "Backtest history: what the champion of the backtest (model_version) would have forecast on a past run "
        "date, from what was known that night; one run_id per backtest run, appended and never replaced. The "
        "forecast, plan and targeting published on that night stay as they were."
    ),
)

FORECAST_ACCURACY = TableSpec(
    "gold", "forecast_accuracy", table_struct(
        ("run_date", DateType()), ("run_id", StringType()), ("campaign_id", LongType()),
        ("campaign_type", StringType()), ("start_date", DateType()), ("end_date", DateType()),
        ("audience", LongType()),
        ("forecast_incremental_revenue", DoubleType()), ("forecast_incremental_revenue_low", DoubleType()),
        ("forecast_incremental_revenue_high", DoubleType()),
        ("realized_incremental_revenue", DoubleType()), ("realized_incremental_revenue_low", DoubleType()),
        ("realized_incremental_revenue_high", DoubleType()), ("naive_incremental_revenue", DoubleType()),
        ("error", DoubleType()), ("absolute_error", DoubleType()), ("interval_covers_realized", BooleanType()),
        ("forecast_roi", DoubleType()), ("forecast_roi_low", DoubleType()), ("forecast_roi_high", DoubleType()),
        ("realized_roi", DoubleType()), ("realized_roi_low", DoubleType()), ("realized_roi_high", DoubleType()),
        ("estimator", StringType()), ("model_version", StringType()), ("evaluated_at", TimestampType()),
        ("realized_covers_forecast", BooleanType()), ("intervals_overlap", BooleanType()),
        ("error_z", DoubleType()), ("consistent_at_90", BooleanType()),
        ("placebo_incremental_revenue", DoubleType()), ("placebo_incremental_revenue_low", DoubleType()),
        ("placebo_incremental_revenue_high", DoubleType()),
        ("forecast_redemptions", DoubleType()), ("realized_redemptions", DoubleType()),
        ("forecast_cost", DoubleType()), ("realized_cost", DoubleType()),
    ), partition_by=("run_date",), keys=("run_date", "campaign_id"),
    description=(
        "Backtest: per past run date and campaign that has since run to its end, the champion's backtest "
        "forecast (gold.backtest_forecast, run_id) of incremental revenue and ROI against the realized effect "
        "on the targeted households (doubly robust, the same selection correction), which is itself an "
        "estimate: whether each interval holds the other's point, whether they overlap, the error in combined "
        "standard errors, the same estimator on the campaign's pre-period (placebo, ~0 when unbiased), and "
        "the forecast's redemptions and cost against those the campaign paid."
    ),
)
