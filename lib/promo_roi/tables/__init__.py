"""Every table's name, schema, partitioning and keys, declared once.

Bronze holds the source tables as loaded (canonical types, bad rows removed to
``bronze.quarantine``); silver holds point-in-time feature tables keyed by
``as_of_date``; gold holds what the business reads. One module per layer
(``bronze``, ``silver``, ``gold``, as in ``promo_roi.column_docs``), and what a
table is in ``spec``; callers import every name from here.
"""

from __future__ import annotations

from typing import Sequence

from promo_roi.config_sections import FeatureConfig
from promo_roi.tables.bronze import (
    SOURCE_TABLES,
    INGEST_ORDER,
    QUARANTINE,
    INGEST_AUDIT,
)
from promo_roi.tables.gold import (
    MODEL_EVALUATION,
    PROMOTION_LIFT_EVALUATION,
    PROMOTION_SIDE_EFFECTS,
    ROLLING_ORIGIN_EVALUATION,
    POSITIVITY_DIAGNOSTICS,
    REFUTATION_CHECKS,
    UPLIFT_CURVES,
    CAMPAIGN_PLANS,
    HOUSEHOLD_SCORES,
    CAMPAIGN_ROI_FORECAST,
    PUBLICATION_LOG,
    MODEL_CHAMPION,
    BUDGET_PLAN,
    HOUSEHOLD_TARGETING,
    BACKTEST_FORECAST,
    FORECAST_ACCURACY,
)
from promo_roi.tables.silver import (
    column_slug,
    DEMOGRAPHIC_COLUMNS,
    user_features_spec,
    ITEM_FEATURES,
    ITEM_STORE_WEEK,
    ITEM_STORE_WEEK_FEATURES,
    CAMPAIGN_FEATURES,
    CAMPAIGN_EXPOSURES,
    household_numeric_columns,
    PAIR_NUMERIC_COLUMNS,
    CATEGORICAL_COLUMNS,
    OUTCOME_COLUMNS,
    model_numeric_columns,
    training_examples_spec,
)
from promo_roi.tables.spec import TableSpec, table_struct

__all__ = [
    "TableSpec",
    "table_struct",
    "SOURCE_TABLES",
    "INGEST_ORDER",
    "QUARANTINE",
    "INGEST_AUDIT",
    "column_slug",
    "DEMOGRAPHIC_COLUMNS",
    "user_features_spec",
    "ITEM_FEATURES",
    "ITEM_STORE_WEEK",
    "ITEM_STORE_WEEK_FEATURES",
    "CAMPAIGN_FEATURES",
    "CAMPAIGN_EXPOSURES",
    "household_numeric_columns",
    "PAIR_NUMERIC_COLUMNS",
    "CATEGORICAL_COLUMNS",
    "OUTCOME_COLUMNS",
    "model_numeric_columns",
    "training_examples_spec",
    "MODEL_EVALUATION",
    "PROMOTION_LIFT_EVALUATION",
    "PROMOTION_SIDE_EFFECTS",
    "ROLLING_ORIGIN_EVALUATION",
    "POSITIVITY_DIAGNOSTICS",
    "REFUTATION_CHECKS",
    "UPLIFT_CURVES",
    "CAMPAIGN_PLANS",
    "HOUSEHOLD_SCORES",
    "CAMPAIGN_ROI_FORECAST",
    "PUBLICATION_LOG",
    "MODEL_CHAMPION",
    "BUDGET_PLAN",
    "HOUSEHOLD_TARGETING",
    "BACKTEST_FORECAST",
    "FORECAST_ACCURACY",
    "GOLD_TRAINING_SPECS",
    "GOLD_SCORING_SPECS",
    "silver_specs",
    "all_specs",
    "spec_by_name",
]


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
