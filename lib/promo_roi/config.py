"""One typed configuration object, built from conf/*.yaml.

Configuration flows one way: ``conf/base.yaml`` <- ``conf/<profile>.yaml`` <-
environment variables ``PROMO_ROI__SECTION__KEY`` <- ``--set section.key=value``
flags -> :class:`AppConfig` -> arguments of library functions. Only the jobs
call :func:`load_config`; nothing in the library reads files or the
environment for settings.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.resources
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple, Sequence

import yaml

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

ENV_PREFIX = "PROMO_ROI__"
PROFILE_ENV = "PROMO_ROI_PROFILE"
CONF_DIR_ENV = "PROMO_ROI_CONF_DIR"
DEFAULT_PROFILE = "local"


class ConfigError(ValueError):
    """A configuration file or override is missing, malformed or inconsistent."""


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

    def threshold_for(self, table: str) -> float:
        return self.max_quarantine_share_by_table.get(table, self.max_quarantine_share)


@dataclass(frozen=True)
class FeatureConfig:
    rfm_windows_weeks: tuple[int, ...]
    spend_departments: tuple[str, ...]


FINETUNE_MODES = ("all", "top_layers", "adapters", "frozen")


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
    num_processes: int
    local_mode: bool
    use_gpu: str  # "auto" | "true" | "false"
    loader_workers: int
    max_train_examples: int | None
    seed: int
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


@dataclass(frozen=True)
class ScoringConfig:
    gross_margin: float
    contact_cost: float
    redemption_cost: float | None
    mc_dropout_samples: int
    interval: float
    min_households: int
    max_null_share: float


PLANNING_MODES = ("fixed_budget", "target_roi")


@dataclass(frozen=True)
class PlanningConfig:
    mode: str
    total_budget: float | None
    target_roi: float
    household_cap: int
    price_grid: int
    sample_households: int


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


PACKAGED_CONF = "conf"  # promo_roi/conf/ inside a built artifact (scripts/build_cluster_package.py)


def packaged_conf_dir() -> Traversable | None:
    """The conf/ copied into a built promo_roi artifact, or None in a checkout.

    The artifact may be a zip on ``--py-files``, so this is a resources
    Traversable (read through ``open``), not necessarily a directory on disk.
    """
    packaged = importlib.resources.files("promo_roi") / PACKAGED_CONF
    return packaged if packaged.joinpath("base.yaml").is_file() else None


def default_conf_dir() -> Path | Traversable:
    """Where configuration comes from when neither --conf-dir nor $PROMO_ROI_CONF_DIR says.

    A built artifact carries the conf/ it was built with; an editable install
    reads conf/ of its checkout.
    """
    packaged = packaged_conf_dir()
    if packaged is not None:
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "conf"
    if not checkout.joinpath("base.yaml").is_file():
        raise ConfigError(
            f"no configuration found: {checkout} has no base.yaml and this promo_roi was built without conf/; "
            f"pass --conf-dir or set {CONF_DIR_ENV}"
        )
    return checkout


def _deep_merge(base: dict, override: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path | Traversable) -> dict:
    if not path.is_file():
        raise ConfigError(f"configuration file not found: {path}")
    try:
        with path.open() as fh:
            data = yaml.safe_load(fh) or {}
    except (yaml.YAMLError, ValueError) as exc:  # syntax error, or an impossible date
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at top level")
    return data


def _set_path(tree: dict, dotted: str, raw_value: str) -> None:
    keys = [k for k in dotted.split(".") if k]
    if not keys:
        raise ConfigError(f"empty configuration key in override {dotted!r}")
    if keys[:2] == ["spark", "extra"] and len(keys) > 2:
        # spark.extra holds spark.* settings whose own names contain dots.
        keys = ["spark", "extra", ".".join(keys[2:])]
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {key!r} is not a section")
    # YAML parsing gives overrides the same types as the files (numbers, lists, null).
    try:
        node[keys[-1]] = yaml.safe_load(raw_value) if raw_value != "" else ""
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"override {dotted!r}: cannot parse {raw_value!r}: {exc}") from exc


def _env_overrides(env: Mapping[str, str]) -> list[tuple[str, str]]:
    out = []
    for name, value in sorted(env.items()):
        if name.startswith(ENV_PREFIX):
            dotted = name[len(ENV_PREFIX):].lower().replace("__", ".")
            out.append((dotted, value))
    return out


def _resolve_path(value: str | None, root: Path) -> str | None:
    if value is None:
        return None
    if "://" in value or value.startswith(("/", "file:")):
        return value
    return str((root / value).resolve())


def _date(value: Any, key: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigError(f"{key} must be an ISO date (YYYY-MM-DD), got {value!r}") from exc


def _spark_value(value: Any) -> str:
    # YAML reads `true` as a bool; Spark wants the string "true".
    return str(value).lower() if isinstance(value, bool) else str(value)


def _section(tree: Mapping, name: str) -> Mapping:
    section = tree.get(name)
    if not isinstance(section, Mapping):
        raise ConfigError(f"configuration section {name!r} is missing")
    return section


def _require(section: Mapping, key: str, where: str) -> Any:
    if key not in section:
        raise ConfigError(f"configuration key {where}.{key} is missing")
    return section[key]


def build_config(tree: Mapping[str, Any], profile: str, project_root: Path) -> AppConfig:
    """Turns a merged configuration tree into the typed :class:`AppConfig`."""
    s = _section(tree, "spark")
    catalog = str(_require(s, "catalog", "spark"))
    if catalog not in ("hive", "in-memory"):
        raise ConfigError(f"spark.catalog must be 'hive' or 'in-memory', got {catalog!r}")
    spark = SparkConfig(
        app_name=str(_require(s, "app_name", "spark")),
        master=s.get("master"),
        shuffle_partitions=int(_require(s, "shuffle_partitions", "spark")),
        session_time_zone=str(s.get("session_time_zone", "UTC")),
        jvm_packages=tuple(_require(s, "jvm_packages", "spark")),
        catalog=catalog,
        metastore_url=s.get("metastore_url"),
        driver_memory=s.get("driver_memory"),
        extra={str(k): _spark_value(v) for k, v in (s.get("extra") or {}).items()},
    )
    w = _section(tree, "warehouse")
    warehouse = WarehouseConfig(
        root=_resolve_path(str(_require(w, "root", "warehouse")), project_root),
        schemas=tuple(_require(w, "schemas", "warehouse")),
    )
    src = _section(tree, "source")
    source = SourceConfig(
        path=_resolve_path(src.get("path"), project_root),
        data_start=_date(_require(src, "data_start", "source"), "source.data_start"),
        data_end=_date(_require(src, "data_end", "source"), "source.data_end"),
        first_week=int(_require(src, "first_week", "source")),
        last_week=int(_require(src, "last_week", "source")),
        week_one_end=_date(_require(src, "week_one_end", "source"), "source.week_one_end"),
    )
    if source.data_end < source.data_start:
        raise ConfigError("source.data_end is before source.data_start")
    q = _section(tree, "quality")
    quality = QualityConfig(
        max_quarantine_share=float(_require(q, "max_quarantine_share", "quality")),
        max_quarantine_share_by_table={
            str(k): float(v) for k, v in (q.get("max_quarantine_share_by_table") or {}).items()
        },
    )
    f = _section(tree, "features")
    features = FeatureConfig(
        rfm_windows_weeks=tuple(int(x) for x in _require(f, "rfm_windows_weeks", "features")),
        spend_departments=tuple(str(x) for x in _require(f, "spend_departments", "features")),
    )
    return AppConfig(
        profile=profile,
        project_root=project_root,
        spark=spark,
        warehouse=warehouse,
        source=source,
        quality=quality,
        features=features,
        raw=copy.deepcopy(dict(tree)),
        training=_training(tree, project_root),
        evaluation=_evaluation(tree),
        mlflow=_mlflow(tree, project_root),
        scoring=_scoring(tree),
        planning=_planning(tree),
        reports=_reports(tree, project_root, warehouse),
    )


def _scoring(tree: Mapping[str, Any]) -> ScoringConfig | None:
    if "scoring" not in tree:
        return None
    s = _section(tree, "scoring")
    get = lambda key: _require(s, key, "scoring")  # noqa: E731
    cfg = ScoringConfig(
        gross_margin=float(get("gross_margin")),
        contact_cost=float(get("contact_cost")),
        redemption_cost=None if s.get("redemption_cost") is None else float(s["redemption_cost"]),
        mc_dropout_samples=int(get("mc_dropout_samples")),
        interval=float(get("interval")),
        min_households=int(get("min_households")),
        max_null_share=float(get("max_null_share")),
    )
    if not 0 < cfg.interval < 1:
        raise ConfigError(f"scoring.interval must be in (0, 1), got {cfg.interval}")
    if cfg.mc_dropout_samples == 1 or cfg.mc_dropout_samples < 0:
        raise ConfigError(f"scoring.mc_dropout_samples must be 0 (off) or >= 2, got {cfg.mc_dropout_samples}")
    return cfg


def _planning(tree: Mapping[str, Any]) -> PlanningConfig | None:
    if "planning" not in tree:
        return None
    s = _section(tree, "planning")
    get = lambda key: _require(s, key, "planning")  # noqa: E731
    budget = s.get("total_budget")
    cfg = PlanningConfig(
        mode=str(get("mode")),
        total_budget=None if budget is None else float(budget),
        target_roi=float(get("target_roi")),
        household_cap=int(get("household_cap")),
        price_grid=int(get("price_grid")),
        sample_households=int(get("sample_households")),
    )
    if cfg.mode not in PLANNING_MODES:
        raise ConfigError(f"planning.mode must be one of {', '.join(PLANNING_MODES)}, got {cfg.mode!r}")
    if cfg.mode == "fixed_budget" and cfg.total_budget is None:
        raise ConfigError("planning.total_budget is required in fixed_budget mode")
    if cfg.total_budget is not None and cfg.total_budget < 0:
        raise ConfigError(f"planning.total_budget must be >= 0, got {cfg.total_budget}")
    if cfg.household_cap < 1:
        raise ConfigError(f"planning.household_cap must be >= 1, got {cfg.household_cap}")
    return cfg


def _training(tree: Mapping[str, Any], project_root: Path) -> TrainingConfig | None:
    if "training" not in tree:
        return None
    t = _section(tree, "training")
    get = lambda key: _require(t, key, "training")  # noqa: E731
    finetune = str(get("finetune"))
    if finetune not in FINETUNE_MODES:
        raise ConfigError(f"training.finetune must be one of {', '.join(FINETUNE_MODES)}, got {finetune!r}")
    use_gpu = str(get("use_gpu")).lower()
    if use_gpu not in ("auto", "true", "false"):
        raise ConfigError(f"training.use_gpu must be auto, true or false, got {use_gpu!r}")
    cfg = TrainingConfig(
        experiment=str(get("experiment")),
        registered_model=str(get("registered_model")),
        champion_alias=str(get("champion_alias")),
        validation_campaigns=int(get("validation_campaigns")),
        test_campaigns=int(get("test_campaigns")),
        min_train_campaigns=int(get("min_train_campaigns")),
        encoder_path=_resolve_path(t.get("encoder_path"), project_root),
        finetune=finetune,
        top_layers=int(get("top_layers")),
        adapter_dim=int(get("adapter_dim")),
        max_text_tokens=int(get("max_text_tokens")),
        hidden_dim=int(get("hidden_dim")),
        dropout=float(get("dropout")),
        epochs=int(get("epochs")),
        batch_size=int(get("batch_size")),
        learning_rate=float(get("learning_rate")),
        encoder_learning_rate=float(get("encoder_learning_rate")),
        weight_decay=float(get("weight_decay")),
        propensity_weight=float(get("propensity_weight")),
        num_processes=int(get("num_processes")),
        local_mode=bool(get("local_mode")),
        use_gpu=use_gpu,
        loader_workers=int(get("loader_workers")),
        max_train_examples=None if t.get("max_train_examples") is None else int(t["max_train_examples"]),
        seed=int(get("seed")),
        checkpoint_dir=_resolve_path(str(get("checkpoint_dir")), project_root),
        petastorm_cache_dir=_resolve_path(str(get("petastorm_cache_dir")), project_root),
    )
    for name in ("validation_campaigns", "test_campaigns", "min_train_campaigns", "epochs", "batch_size",
                 "num_processes", "loader_workers"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"training.{name} must be >= 1, got {getattr(cfg, name)}")
    return cfg


def _evaluation(tree: Mapping[str, Any]) -> EvaluationConfig | None:
    if "evaluation" not in tree:
        return None
    e = _section(tree, "evaluation")
    band = tuple(float(x) for x in _require(e, "overlap_band", "evaluation"))
    if len(band) != 2 or not 0.0 <= band[0] < band[1] <= 1.0:
        raise ConfigError(f"evaluation.overlap_band must be [low, high] within [0, 1], got {list(band)}")
    return EvaluationConfig(
        overlap_band=(band[0], band[1]),
        bootstrap_samples=int(_require(e, "bootstrap_samples", "evaluation")),
        nuisance_folds=int(_require(e, "nuisance_folds", "evaluation")),
        placebo_tolerance=float(_require(e, "placebo_tolerance", "evaluation")),
        stability_z=float(_require(e, "stability_z", "evaluation")),
        seed=int(_require(e, "seed", "evaluation")),
    )


def _reports(tree: Mapping[str, Any], project_root: Path, warehouse: WarehouseConfig) -> ReportsConfig | None:
    if "reports" not in tree:
        return None
    r = _section(tree, "reports")
    root = r.get("root")
    if root is None:
        # Beside the warehouse the report is rendered from (warehouse/ -> reports/).
        local = warehouse.root.removeprefix("file:")
        resolved = None if "://" in local else str(Path(local).parent / "reports")
    else:
        resolved = _resolve_path(str(root), project_root)
        if "://" in resolved:
            raise ConfigError(f"reports.root must be a local directory, got {resolved!r} "
                              "(null keeps reports in MLflow only when the warehouse is remote)")
        resolved = str(Path(resolved.removeprefix("file:")))
    return ReportsConfig(root=resolved, experiment=str(_require(r, "experiment", "reports")),
                         currency=str(_require(r, "currency", "reports")))


def _mlflow(tree: Mapping[str, Any], project_root: Path) -> MlflowConfig | None:
    if "mlflow" not in tree:
        return None
    m = _section(tree, "mlflow")
    uri = m.get("tracking_uri")
    if uri is None:
        store = _resolve_path(str(_require(m, "local_store", "mlflow")), project_root)
        uri = f"sqlite:///{store.removeprefix('file:')}"
    artifact_root = _resolve_path(str(_require(m, "artifact_root", "mlflow")), project_root)
    return MlflowConfig(tracking_uri=str(uri), artifact_root=artifact_root)


def load_config(
    profile: str | None = None,
    conf_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> AppConfig:
    """Loads base.yaml + <profile>.yaml, then env and ``key.path=value`` overrides.

    ``env`` is passed in by the caller (a job's ``main``) so the library never
    reads the process environment on its own.
    """
    env = {} if env is None else env
    given = conf_dir or env.get(CONF_DIR_ENV)
    conf_path: Path | Traversable = Path(given).resolve() if given else default_conf_dir()
    # Relative paths (warehouse/, mlflow.db) resolve against the parent of a conf
    # directory on disk (the checkout's root), or the working directory of the
    # driver for the conf/ inside a built artifact.
    project_root = conf_path.parent if isinstance(conf_path, Path) else Path(os.getcwd())
    profile = profile or env.get(PROFILE_ENV) or DEFAULT_PROFILE
    tree = _read_yaml(conf_path / "base.yaml")
    tree = _deep_merge(tree, _read_yaml(conf_path / f"{profile}.yaml"))
    for dotted, value in _env_overrides(env):
        _set_path(tree, dotted, value)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        dotted, value = item.split("=", 1)
        _set_path(tree, dotted.strip(), value.strip())
    return build_config(tree, profile=profile, project_root=project_root)
