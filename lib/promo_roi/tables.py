"""Every table's name, schema, partitioning and keys, declared once.

Bronze holds the source tables as loaded (canonical types, bad rows removed to
``bronze.quarantine``); silver holds point-in-time feature tables keyed by
``as_of_date``; gold holds what the business reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
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

from promo_roi import column_docs
from promo_roi.config import FeatureConfig


@dataclass(frozen=True)
class TableSpec:
    schema: str
    name: str
    struct: StructType
    partition_by: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        # Each column carries its catalogue description (promo_roi.column_docs) as its comment: Delta stores
        # it with the table (delta_io), so DESCRIBE, the SQL endpoint and BI tools show it.
        fields = []
        for f in self.struct.fields:
            text = column_docs.column_description(self.full_name, f.name)
            fields.append(StructField(f.name, f.dataType, f.nullable,
                                      {**f.metadata, "comment": text} if text else f.metadata))
        object.__setattr__(self, "struct", StructType(fields))

    @property
    def full_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def column_description(self, column: str) -> str | None:
        """What the column holds (promo_roi.column_docs); None for one not described."""
        return self.struct[column].metadata.get("comment")

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.struct.fields]


def _struct(*cols: tuple[str, DataType]) -> StructType:
    return StructType([StructField(name, dtype, True) for name, dtype in cols])


# --- source contract: the eight Complete Journey tables ---------------------

SOURCE_TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("bronze", "products", _struct(
            ("product_id", LongType()), ("manufacturer_id", LongType()), ("department", StringType()),
            ("brand", StringType()), ("product_category", StringType()), ("product_type", StringType()),
            ("package_size", StringType()),
        ), keys=("product_id",), description="Product master."),
        TableSpec("bronze", "campaign_descriptions", _struct(
            ("campaign_id", LongType()), ("campaign_type", StringType()),
            ("start_date", TimestampType()), ("end_date", TimestampType()),
        ), keys=("campaign_id",), description="One row per campaign: type and dates."),
        TableSpec("bronze", "transactions", _struct(
            ("household_id", LongType()), ("store_id", LongType()), ("basket_id", LongType()),
            ("product_id", LongType()), ("quantity", LongType()), ("sales_value", DoubleType()),
            ("retail_disc", DoubleType()), ("coupon_disc", DoubleType()), ("coupon_match_disc", DoubleType()),
            ("week", LongType()), ("transaction_timestamp", TimestampType()),
        ), keys=("household_id", "basket_id", "product_id", "transaction_timestamp"),
            description="Basket lines; discounts are positive amounts taken off the shelf price."),
        TableSpec("bronze", "demographics", _struct(
            ("household_id", LongType()), ("age", StringType()), ("income", StringType()),
            ("home_ownership", StringType()), ("marital_status", StringType()),
            ("household_size", StringType()), ("household_comp", StringType()), ("kids_count", StringType()),
        ), keys=("household_id",), description="Demographics of the households that shared them."),
        TableSpec("bronze", "campaigns", _struct(
            ("campaign_id", LongType()), ("household_id", LongType()),
        ), keys=("campaign_id", "household_id"), description="Which households each campaign targeted."),
        TableSpec("bronze", "coupons", _struct(
            ("coupon_upc", LongType()), ("product_id", LongType()), ("campaign_id", LongType()),
        ), keys=("coupon_upc", "product_id", "campaign_id"), description="Products each campaign coupon applies to."),
        TableSpec("bronze", "coupon_redemptions", _struct(
            ("household_id", LongType()), ("coupon_upc", LongType()), ("campaign_id", LongType()),
            ("redemption_date", TimestampType()),
        ), keys=("household_id", "coupon_upc", "campaign_id", "redemption_date"),
            description="Coupon redemptions by household."),
        TableSpec("bronze", "promotions", _struct(
            ("product_id", LongType()), ("store_id", LongType()), ("display_location", StringType()),
            ("mailer_location", StringType()), ("week", LongType()),
        ), keys=("product_id", "store_id", "week"),
            description="In-store display and mailer placement by product, store and week ('0' = none)."),
    )
}

# Order of loading: a table's references are checked against tables earlier in it.
INGEST_ORDER: tuple[str, ...] = (
    "products",
    "campaign_descriptions",
    "transactions",
    "demographics",
    "campaigns",
    "coupons",
    "coupon_redemptions",
    "promotions",
)

QUARANTINE = TableSpec(
    "bronze", "quarantine", _struct(
        ("source_table", StringType()), ("reason", StringType()), ("record", StringType()),
    ), partition_by=("source_table",),
    description="Rows refused by ingest, with the first rule they broke; record is the row as JSON.",
)

INGEST_AUDIT = TableSpec(
    "bronze", "ingest_audit", _struct(
        ("source_table", StringType()), ("source_path", StringType()), ("rows_read", LongType()),
        ("rows_written", LongType()), ("rows_quarantined", LongType()),
        ("quarantined_by_reason", MapType(StringType(), LongType())), ("table_version", LongType()),
        ("ingested_at", TimestampType()),
    ), keys=("source_table",),
    description="The latest ingest of each source table: rows read = written + quarantined.",
)


# --- silver: point-in-time features ------------------------------------------

def column_slug(value: str) -> str:
    """'MEAT-PCKGD' -> 'meat_pckgd': a department name as a column suffix."""
    return re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")


DEMOGRAPHIC_COLUMNS: tuple[str, ...] = (
    "age", "income", "home_ownership", "marital_status", "household_size", "household_comp", "kids_count",
)


def user_features_spec(features: FeatureConfig) -> TableSpec:
    cols: list[tuple[str, DataType]] = [
        ("as_of_date", DateType()), ("household_id", LongType()),
        ("first_purchase_date", DateType()), ("days_since_last_purchase", IntegerType()),
    ]
    for w in features.rfm_windows_weeks:
        cols += [(f"baskets_{w}w", LongType()), (f"spend_{w}w", DoubleType()),
                 (f"avg_basket_spend_{w}w", DoubleType())]
    cols += [(f"dept_spend_{column_slug(d)}", DoubleType()) for d in features.spend_departments]
    cols += [
        ("dept_spend_other", DoubleType()),
        ("retail_discount_spend_share", DoubleType()),
        ("coupon_discount_spend_share", DoubleType()),
        ("campaigns_targeted", LongType()),
        ("campaigns_redeemed", LongType()),
        ("coupons_redeemed", LongType()),
        ("days_since_last_redemption", IntegerType()),
        ("has_demographics", BooleanType()),
    ]
    cols += [(c, StringType()) for c in DEMOGRAPHIC_COLUMNS]
    return TableSpec(
        "silver", "user_features", _struct(*cols), partition_by=("as_of_date",),
        keys=("as_of_date", "household_id"),
        description=(
            "One row per household seen before as_of_date. Windows end the day before as_of_date; "
            f"department spend covers the last {max(features.rfm_windows_weeks)} weeks."
        ),
    )


ITEM_FEATURES = TableSpec(
    "silver", "item_features", _struct(
        ("as_of_date", DateType()), ("product_id", LongType()), ("manufacturer_id", LongType()),
        ("department", StringType()), ("brand", StringType()), ("product_category", StringType()),
        ("product_type", StringType()), ("package_size", StringType()), ("item_text", StringType()),
        ("units_sold", LongType()), ("sales_value", DoubleType()), ("households", LongType()),
        ("avg_unit_price", DoubleType()), ("weeks_sold", LongType()),
        ("display_weeks", LongType()), ("mailer_weeks", LongType()),
        ("sales_on_display", DoubleType()), ("sales_in_mailer", DoubleType()),
        ("sales_unpromoted", DoubleType()),
    ), partition_by=("as_of_date",), keys=("as_of_date", "product_id"),
    description="One row per product; sales and promotion history before as_of_date.",
)

ITEM_STORE_WEEK = TableSpec(
    "silver", "item_store_week", _struct(
        ("product_id", LongType()), ("store_id", LongType()), ("week", LongType()), ("week_end_date", DateType()),
        ("units", LongType()), ("sales_value", DoubleType()), ("discount_value", DoubleType()),
        ("shelf_value", DoubleType()), ("discount_depth", DoubleType()), ("lines", LongType()),
        ("on_display", BooleanType()), ("in_mailer", BooleanType()),
        ("display_locations", ArrayType(StringType())), ("mailer_locations", ArrayType(StringType())),
        ("first_sale_week", LongType()),
    ), keys=("product_id", "store_id", "week"),
    description="One row per product, store and completed week with a sale, or a placement after the "
                "product's first sale there: units, sales, shelf discount, display and mailer codes.",
)

ITEM_STORE_WEEK_FEATURES = TableSpec(
    "silver", "item_store_week_features", _struct(
        ("product_id", LongType()), ("store_id", LongType()), ("week", LongType()),
        ("product_category", StringType()), ("weeks_since_first_sale", LongType()), ("week_of_year", LongType()),
        ("baseline_units", DoubleType()), ("unplaced_weeks", LongType()), ("placed_weeks", LongType()),
        ("shelf_price", DoubleType()), ("discount_depth_before", DoubleType()),
        ("weeks_since_last_placement", LongType()), ("last_placement_units", LongType()),
        ("last_placement_baseline_units", DoubleType()), ("last_placement_lift", DoubleType()),
        ("category_units_before", LongType()),
    ), keys=("product_id", "store_id", "week"),
    description="One row per silver.item_store_week row: the product's baseline, placements, price and "
                "category units in the store over the 8 weeks before the week.",
)

CAMPAIGN_FEATURES = TableSpec(
    "silver", "campaign_features", _struct(
        ("as_of_date", DateType()), ("campaign_id", LongType()), ("campaign_type", StringType()),
        ("start_date", DateType()), ("end_date", DateType()), ("duration_days", IntegerType()),
        ("status", StringType()), ("targeted_households", LongType()),
        ("coupons", LongType()), ("coupon_products", LongType()),
        ("coupon_departments_text", StringType()), ("coupon_categories_text", StringType()),
        ("type_past_campaigns", LongType()), ("type_past_redemption_rate", DoubleType()),
        ("starts_before_data", BooleanType()), ("ends_after_data", BooleanType()),
    ), partition_by=("as_of_date",), keys=("as_of_date", "campaign_id"),
    description=(
        "One row per campaign; status is planned/running/ended relative to as_of_date and the "
        "past redemption rate of its type uses only campaigns of that type ended before it."
    ),
)

CAMPAIGN_EXPOSURES = TableSpec(
    "silver", "campaign_exposures", _struct(
        ("as_of_date", DateType()), ("household_id", LongType()), ("campaign_id", LongType()),
        ("campaign_type", StringType()), ("targeted", BooleanType()),
        ("start_date", DateType()), ("end_date", DateType()), ("duration_days", IntegerType()),
        ("observed_days", IntegerType()), ("pre_observed_days", IntegerType()),
        ("censored", BooleanType()), ("censor_reason", StringType()),
        ("pre_spend", DoubleType()), ("pre_coupon_product_spend", DoubleType()),
        ("spend", DoubleType()), ("coupon_product_spend", DoubleType()),
        ("redemptions", LongType()), ("redeemed", BooleanType()), ("coupon_cost", DoubleType()),
    ), partition_by=("as_of_date",), keys=("as_of_date", "household_id", "campaign_id"),
    description=(
        "Household x campaign for every campaign started before as_of_date: targeted or not, spend "
        "in the campaign window and in the equal-length window before it, redemptions, coupon cost. "
        "Windows are clipped to the data and to as_of_date; censored marks a clipped campaign window."
    ),
)


# --- training examples: what the model reads ----------------------------------

# Household features the model reads, as of the campaign start (training) or
# the run date (scoring): the numeric columns of silver.user_features.
def household_numeric_columns(features: FeatureConfig) -> tuple[str, ...]:
    skip = {"as_of_date", "household_id", "first_purchase_date", "has_demographics", *DEMOGRAPHIC_COLUMNS}
    return tuple(c for c in user_features_spec(features).columns if c not in skip)


# Per (household, campaign): spend before the reference date, and what is
# known of the campaign in advance.
PAIR_NUMERIC_COLUMNS: tuple[str, ...] = (
    "pre_spend", "pre_coupon_product_spend", "pre_observed_share",
    # Other campaigns targeting the same household whose windows overlap this
    # one's, in all and sharing coupon products with it: targeted households get
    # several campaigns at once, and without these the placebo window (full of
    # other campaigns) shows "effects" that are theirs.
    "concurrent_campaigns", "concurrent_shared_product_campaigns",
    # Campaign facts a planner knows before choosing the audience (so not the
    # audience size: that is what the budget plan decides).
    "duration_days", "coupons", "coupon_products", "type_past_redemption_rate",
)
CATEGORICAL_COLUMNS: tuple[str, ...] = (*DEMOGRAPHIC_COLUMNS, "has_demographics", "campaign_type")
OUTCOME_COLUMNS: tuple[str, ...] = ("redeemed", "coupon_product_spend", "spend")


def model_numeric_columns(features: FeatureConfig) -> tuple[str, ...]:
    return household_numeric_columns(features) + PAIR_NUMERIC_COLUMNS


def training_examples_spec(features: FeatureConfig) -> TableSpec:
    user = {f.name: f.dataType for f in user_features_spec(features).struct.fields}
    numeric = [(c, user.get(c, DoubleType())) for c in model_numeric_columns(features)]
    cols: list[tuple[str, DataType]] = [
        ("as_of_date", DateType()), ("household_id", LongType()), ("campaign_id", LongType()),
        ("start_date", DateType()), ("end_date", DateType()), ("split", StringType()),
        ("targeted", BooleanType()), ("redeemed", BooleanType()), ("redemptions", LongType()),
        ("coupon_product_spend", DoubleType()), ("spend", DoubleType()), ("coupon_cost", DoubleType()),
        ("campaign_text", StringType()),
        *numeric,
        *[(c, StringType()) for c in CATEGORICAL_COLUMNS],
    ]
    return TableSpec(
        "silver", "training_examples", _struct(*cols), partition_by=("as_of_date",),
        keys=("as_of_date", "household_id", "campaign_id"),
        description=(
            "Household x fully observed campaign ended before as_of_date: features as of the campaign's "
            "start (household state, pre-period spend, campaign facts), the targeting, the outcomes in "
            "the campaign window, and the time-based split (train/validation/test by start date)."
        ),
    )


# --- gold: what the training step publishes ---------------------------------

MODEL_EVALUATION = TableSpec(
    "gold", "model_evaluation", _struct(
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
    "gold", "promotion_lift_evaluation", _struct(
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
    "gold", "promotion_side_effects", _struct(
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
    "gold", "rolling_origin_evaluation", _struct(
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
    "gold", "positivity_diagnostics", _struct(
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
    "gold", "refutation_checks", _struct(
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
    "gold", "uplift_curves", _struct(
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
    "gold", "campaign_plans", _struct(
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
    "gold", "household_scores", _struct(
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
    "gold", "campaign_roi_forecast", _struct(
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
    "gold", "publication_log", _struct(
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
    "gold", "model_champion", _struct(
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
    "gold", "budget_plan", _struct(
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
    "gold", "household_targeting", _struct(
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
    "gold", "forecast_accuracy", _struct(
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


def silver_specs(features: FeatureConfig) -> list[TableSpec]:
    """The four point-in-time feature tables jobs/build_features.py writes."""
    return [user_features_spec(features), ITEM_FEATURES, CAMPAIGN_FEATURES, CAMPAIGN_EXPOSURES]


GOLD_TRAINING_SPECS: tuple[TableSpec, ...] = (MODEL_EVALUATION, POSITIVITY_DIAGNOSTICS, REFUTATION_CHECKS,
                                              UPLIFT_CURVES, ROLLING_ORIGIN_EVALUATION)
GOLD_SCORING_SPECS: tuple[TableSpec, ...] = (
    CAMPAIGN_PLANS, HOUSEHOLD_SCORES, CAMPAIGN_ROI_FORECAST, BUDGET_PLAN, HOUSEHOLD_TARGETING, PUBLICATION_LOG,
    BACKTEST_FORECAST, FORECAST_ACCURACY,
)


def all_specs(features: FeatureConfig) -> list[TableSpec]:
    return ([SOURCE_TABLES[t] for t in INGEST_ORDER] + [QUARANTINE, INGEST_AUDIT] + silver_specs(features)
            + [ITEM_STORE_WEEK, ITEM_STORE_WEEK_FEATURES, training_examples_spec(features), *GOLD_TRAINING_SPECS,
               PROMOTION_LIFT_EVALUATION, PROMOTION_SIDE_EFFECTS, MODEL_CHAMPION, *GOLD_SCORING_SPECS])


def spec_by_name(specs: Sequence[TableSpec], full_name: str) -> TableSpec:
    for spec in specs:
        if spec.full_name == full_name:
            return spec
    raise KeyError(full_name)
