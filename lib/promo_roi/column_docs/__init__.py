"""The catalogue's column descriptions: what every column of every warehouse table means, in plain words.

Declared once per table, beside the schemas of :mod:`promo_roi.tables` (which
imports this package, so it imports nothing else of the project), one module per
layer (:mod:`.bronze`, :mod:`.silver`, :mod:`.gold`, with :mod:`.shared` for what
the feature tables repeat);
``promo-roi describe TABLE`` shows them and they become the Delta column
comments. Each description says what the value is, its unit, the time window
it covers and where it comes from, in the terms of docs/glossary.md.

Conventions the descriptions rely on:

- an as-of date or run date D is the first day *not* observed: data dated
  before D may be used, nothing on or after it;
- spend is sales value (``bronze.transactions.sales_value``), in the source
  currency; money in the gold tables is in the currency of the costs (both US
  dollars for Complete Journey);
- ROI, marginal ROI and other ratios are stored as ratios, never percent:
  ``roi`` 0.09 is 9%;
- "per household" means per (household, campaign) pair.

Columns generated from the configuration (``features.rfm_windows_weeks``,
``features.spend_departments``) are described by the regular expressions of
:data:`PATTERNS`, so a configuration with other windows or departments is
described too.
"""

from __future__ import annotations

import re

from promo_roi.column_docs import bronze, gold, silver
from promo_roi.column_docs.shared import household_patterns

# Columns that mean the same in every table that has them (a table's own entry overrides).
COMMON: dict[str, str] = {
    "household_id": "Complete Journey household identifier (the id in bronze.transactions).",
    "campaign_id": "Campaign identifier (1-27 in Complete Journey; planners may add others in gold.campaign_plans).",
    "product_id": "Product identifier (bronze.products).",
    "store_id": "Store identifier.",
    "as_of_date": (
        "The as-of date: the first day not observed. The row uses only data dated before it (point in time)."
    ),
    "run_date": (
        "The scoring night's run date: the first day not observed. The night used silver.user_features as of it "
        "and only data dated before it."
    ),
    "run_id": (
        "The scoring run that wrote the row: 'r', its UTC start time, then 12 hex digits (ids sort by start). "
        "Readers see only the run in gold.publication_log."
    ),
    "model_version": (
        "Version of the registered model (training.registered_model) that made the predictions: the champion the "
        "run scored with."
    ),
    "mlflow_run_id": (
        "The MLflow run of the training (jobs/train.py) that wrote the row; each training run keeps its own rows. "
        "Not a scoring run_id."
    ),
}

# table full name -> column -> description
TABLES: dict[str, dict[str, str]] = {**bronze.TABLES, **silver.TABLES, **gold.TABLES}

# Household features generated from the configuration; silver.user_features and silver.training_examples
# carry the same columns, counted before as_of_date and before each campaign's start respectively.
_USER_FEATURE_PATTERNS = household_patterns("as_of_date", "null")
_TRAINING_EXAMPLE_PATTERNS = household_patterns("the campaign's start_date", "0")

# table full name -> [(regex matching a generated column name, description template using the regex groups as
# {0}, {1}, ...; {0.words} is group 0 in upper case with spaces for '_', e.g. a department's name)]
PATTERNS: dict[str, tuple[tuple[str, str], ...]] = {
    "silver.user_features": _USER_FEATURE_PATTERNS,
    "silver.training_examples": _TRAINING_EXAMPLE_PATTERNS,
}


class _Group(str):
    """A matched group as a template field: itself (``{0}``) or ``{0.words}``, 'drug_gm' -> 'DRUG GM'."""

    @property
    def words(self) -> str:
        return self.replace("_", " ").upper()


def column_description(table: str, column: str) -> str | None:
    """TABLES entry, else the first PATTERNS match (template formatted with the groups; fullmatch), else COMMON,
    else None."""
    own = TABLES.get(table, {})
    if column in own:
        return own[column]
    for pattern, template in PATTERNS.get(table, ()):
        match = re.fullmatch(pattern, column)
        if match:
            return template.format(*(_Group(group or "") for group in match.groups()))
    return COMMON.get(column)
