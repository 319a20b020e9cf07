"""The typed configuration object: one frozen dataclass per section of conf/*.yaml.

:mod:`promo_roi.config` builds an :class:`AppConfig` from the YAML files, the
environment and ``--set`` flags, and refuses unknown keys and impossible
values; this module holds only the shapes it builds and the values a few
fields may take, so that code which receives a configuration need not import
the loader.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from promo_roi import model_names
from promo_roi.config_values import ConfigError


@dataclass(frozen=True)
class SparkConfig:
    app_name: str
    master: str | None
    shuffle_partitions: int
    session_time_zone: str
    jvm_packages: tuple[str, ...]
    catalog: str
    metastore_url: str | None
    driver_memory: str | None
    extra: Mapping[str, str]


@dataclass(frozen=True)
class WarehouseConfig:
    root: str
    schemas: tuple[str, ...]

    def table_path(self, schema: str, table: str) -> str:
        return f"{self.root.rstrip('/')}/{schema}/{table}"

    def schema_path(self, schema: str) -> str:
        return f"{self.root.rstrip('/')}/{schema}"


@dataclass(frozen=True)
class SourceConfig:
    path: str | None
    data_start: dt.date
    data_end: dt.date
    first_week: int
    last_week: int
    week_one_end: dt.date

    def week_end(self, week: int) -> dt.date:
        """The date on which ``week`` is complete (its data is dated up to it)."""
        return self.week_one_end + dt.timedelta(days=7 * (week - 1))


@dataclass(frozen=True)
class QualityConfig:
    max_quarantine_share: float
    max_quarantine_share_by_table: Mapping[str, float]
    # A source table with fewer rows than the previous ingest read, by more than this share, is refused.
    max_row_drop_share: float

    def threshold_for(self, table: str) -> float:
        return self.max_quarantine_share_by_table.get(table, self.max_quarantine_share)


@dataclass(frozen=True)
class FeatureConfig:
    rfm_windows_weeks: tuple[int, ...]
    spend_departments: tuple[str, ...]
    # A household's purchase history as text (promo_roi/purchase_history.py): the weeks it covers and how
    # many product categories it names.
    history_weeks: int
    history_categories: int


FINETUNE_MODES = ("all", "top_layers", "adapters", "frozen")
EFFECT_HEADS = ("anchored", "two_arms")  # training/model.py says what each is
# What text the network reads; training/model.py says what each is.
TEXT_INPUTS = ("campaign", "campaign_and_history", "none")


@dataclass(frozen=True)
class TrainingConfig:
    experiment: str
    registered_model: str
    champion_alias: str
    validation_campaigns: int
    test_campaigns: int
    min_train_campaigns: int
    encoder_path: str | None
    finetune: str
    top_layers: int
    adapter_dim: int
    max_text_tokens: int
    hidden_dim: int
    dropout: float
    epochs: int
    batch_size: int
    learning_rate: float
    encoder_learning_rate: float
    weight_decay: float
    propensity_weight: float
    effect_head: str  # model.EFFECT_HEADS
    # campaign: MiniLM reads the campaign text; none: no text and no encoder (the ablation that says what it adds).
    text_input: str  # TEXT_INPUTS
    effect_penalty: float
    # Weight of the doubly robust term on the network's effect (model.LossWeights.pseudo_outcome); 0: none.
    pseudo_outcome_weight: float
    anchor_pseudo_count: float
    num_processes: int
    local_mode: bool
    use_gpu: str  # "auto" | "true" | "false"
    loader_workers: int
    max_train_examples: int | None
    seed: int
    # Networks trained from as many seeds (seed, seed + stride, ...) and published as their average.
    ensemble_size: int
    checkpoint_dir: str
    petastorm_cache_dir: str


@dataclass(frozen=True)
class EvaluationConfig:
    overlap_band: tuple[float, float]
    bootstrap_samples: int
    nuisance_folds: int
    placebo_tolerance: float
    stability_z: float
    seed: int
    # What households are valued and ranked by (RANKINGS; conf/base.yaml says what each does).
    ranking: str


@dataclass(frozen=True)
class ScoringConfig:
    gross_margin: float
    contact_cost: float
    redemption_cost: float | None
    mc_dropout_samples: int
    # Nights of at most this many (household, campaign) pairs are scored on the driver (conf/base.yaml).
    driver_max_pairs: int
    interval: float
    min_households: int
    max_null_share: float
    # The calibrated outcome whose uplift is the value of a targeted household (conf/base.yaml says why).
    value_outcome: str
    # How a pair's expected redemptions are priced: the champion's ratio or its shrunk expected count.
    redemption_model: str


# The spend outcomes a plan can value a household on (each has its own calibration line).
VALUE_OUTCOMES = ("coupon_product_spend", "spend")
REDEMPTION_MODELS = ("ratio", "shrunk")  # conf/base.yaml scoring.redemption_model says what each does
PLANNING_MODES = ("fixed_budget", "target_roi")
RANKINGS = ("validated", model_names.TRANSFORMER, model_names.HEURISTIC)  # conf/base.yaml evaluation.ranking
PLANNING_RISKS = ("expected", "quantile")  # conf/base.yaml planning.risk says what each does


@dataclass(frozen=True)
class PlanningConfig:
    mode: str
    total_budget: float | None
    target_roi: float
    household_cap: int
    price_grid: int
    sample_households: int
    risk: str = "expected"
    risk_quantile: float = 0.1


@dataclass(frozen=True)
class MlflowConfig:
    tracking_uri: str
    # Artifact location of new experiments (MLflow 3 wants one explicitly with sqlite).
    artifact_root: str


@dataclass(frozen=True)
class ReportsConfig:
    # Local directory holding <run_date>/report.html and its charts; None: the
    # warehouse is not on a local disk and reports.root is unset, so reports go
    # to MLflow only.
    root: str | None
    experiment: str  # MLflow experiment of the scoring runs (one run per published run)
    currency: str  # label of money amounts in the report


@dataclass(frozen=True)
class AppConfig:
    profile: str
    project_root: Path
    spark: SparkConfig
    warehouse: WarehouseConfig
    source: SourceConfig
    quality: QualityConfig
    features: FeatureConfig
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)
    # Optional so that a profile for ingest/features alone stays valid; the jobs
    # that need them ask through require_* and get a ConfigError naming the section.
    training: TrainingConfig | None = None
    evaluation: EvaluationConfig | None = None
    mlflow: MlflowConfig | None = None
    scoring: ScoringConfig | None = None
    planning: PlanningConfig | None = None
    reports: ReportsConfig | None = None

    def require_training(self) -> "TrainingSections":
        """The three sections training, evaluation and scoring need, refused by name when one is missing."""
        missing = [n for n in ("training", "evaluation", "mlflow") if getattr(self, n) is None]
        if missing:
            raise ConfigError(f"configuration section(s) {', '.join(missing)} missing")
        return TrainingSections(self.training, self.evaluation, self.mlflow)  # type: ignore[arg-type]


class TrainingSections(NamedTuple):
    """Read by name (``sections.mlflow``) or unpacked; never indexed by position."""

    training: TrainingConfig
    evaluation: EvaluationConfig
    mlflow: MlflowConfig
