"""One typed configuration object, built from conf/*.yaml.

Configuration flows one way: ``conf/base.yaml`` <- ``conf/<profile>.yaml`` <-
environment variables ``PROMO_ROI__SECTION__KEY`` <- ``--set section.key=value``
flags -> :class:`AppConfig` -> arguments of library functions. Only the jobs
call :func:`load_config`; nothing in the library reads files or the
environment for settings.
"""

from __future__ import annotations

import copy
import importlib.resources
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import yaml

from promo_roi.config_values import ConfigError, Section, refuse_unknown, to_integer, to_number, to_text
# The sections live in config_sections (what a configuration is); this module reads one.
from promo_roi.config_sections import (  # noqa: F401  (re-exported: callers import them from here)
    SparkConfig,
    WarehouseConfig,
    SourceConfig,
    QualityConfig,
    FeatureConfig,
    FINETUNE_MODES,
    EFFECT_HEADS,
    TEXT_INPUTS,
    TrainingConfig,
    EvaluationConfig,
    ScoringConfig,
    VALUE_OUTCOMES,
    REDEMPTION_MODELS,
    PLANNING_MODES,
    RANKINGS,
    PLANNING_RISKS,
    PlanningConfig,
    MlflowConfig,
    ReportsConfig,
    AppConfig,
    TrainingSections,
)

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

ENV_PREFIX = "PROMO_ROI__"
PROFILE_ENV = "PROMO_ROI_PROFILE"
CONF_DIR_ENV = "PROMO_ROI_CONF_DIR"
DEFAULT_PROFILE = "local"




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
    """``PROMO_ROI__SECTION__KEY=value`` as ``section.key``. Section and key names are lower-cased; a
    ``spark.*`` setting under ``SPARK__EXTRA__`` keeps its case (``spark.sql.adaptive.coalescePartitions.enabled``)."""
    out = []
    for name, value in sorted(env.items()):
        if name.startswith(ENV_PREFIX):
            parts = name[len(ENV_PREFIX):].split("__")
            if [p.lower() for p in parts[:2]] == ["spark", "extra"] and len(parts) > 2:
                dotted = "spark.extra." + "__".join(parts[2:])
            else:
                dotted = ".".join(parts).lower()
            out.append((dotted, value))
    return out


def _resolve_path(value: str | None, root: Path) -> str | None:
    if value is None:
        return None
    if "://" in value or value.startswith(("/", "file:")):
        return value
    return str((root / value).resolve())


def _spark_value(value: Any) -> str:
    # YAML reads `true` as a bool; Spark wants the string "true".
    return str(value).lower() if isinstance(value, bool) else str(value)


# Every key each section may hold (conf/base.yaml documents them); anything else is refused by name.
KNOWN_KEYS = {
    "spark": ("app_name", "master", "shuffle_partitions", "session_time_zone", "jvm_packages", "catalog",
              "metastore_url", "driver_memory", "extra"),
    "warehouse": ("root", "schemas"),
    "source": ("path", "data_start", "data_end", "first_week", "last_week", "week_one_end"),
    "quality": ("max_quarantine_share", "max_quarantine_share_by_table", "max_row_drop_share"),
    "features": tuple(FeatureConfig.__dataclass_fields__),
    "training": tuple(TrainingConfig.__dataclass_fields__),
    "evaluation": tuple(EvaluationConfig.__dataclass_fields__),
    "mlflow": ("tracking_uri", "local_store", "artifact_root"),
    "scoring": tuple(ScoringConfig.__dataclass_fields__),
    "planning": tuple(PlanningConfig.__dataclass_fields__),
    "reports": ("root", "experiment", "currency"),
}
OPTIONAL_SECTIONS = ("training", "evaluation", "mlflow", "scoring", "planning", "reports")
SHARE = {"minimum": 0.0, "maximum": 1.0}


def _section(tree: Mapping[str, Any], name: str) -> Section:
    return Section(tree, name, KNOWN_KEYS[name])


def build_config(tree: Mapping[str, Any], profile: str, project_root: Path) -> AppConfig:
    """Turns a merged configuration tree into the typed :class:`AppConfig`; refuses unknown sections and keys,
    values of the wrong type, NaN/Inf and values out of range, naming the key."""
    refuse_unknown(tree, KNOWN_KEYS, "")
    warehouse = _warehouse(tree, project_root)
    return AppConfig(
        profile=profile,
        project_root=project_root,
        spark=_spark(tree),
        warehouse=warehouse,
        source=_source(tree, project_root),
        quality=_quality(tree),
        features=_features(tree),
        raw=copy.deepcopy(dict(tree)),
        training=_training(tree, project_root),
        evaluation=_evaluation(tree),
        mlflow=_mlflow(tree, project_root),
        scoring=_scoring(tree),
        planning=_planning(tree),
        reports=_reports(tree, project_root, warehouse),
    )


def _spark(tree: Mapping[str, Any]) -> SparkConfig:
    s = _section(tree, "spark")
    return SparkConfig(
        app_name=s.text("app_name"),
        master=s.text("master", optional=True),
        shuffle_partitions=s.integer("shuffle_partitions", minimum=1),
        session_time_zone=str(s.raw("session_time_zone", "UTC")),
        jvm_packages=s.items("jvm_packages", to_text, nonempty=False),
        catalog=s.text("catalog", choices=("hive", "in-memory")),
        metastore_url=_without_secret("spark.metastore_url", s.text("metastore_url", optional=True)),
        driver_memory=s.text("driver_memory", optional=True),
        extra={str(k): _spark_value(v) for k, v in s.mapping("extra").items()},
    )


METASTORE_PASSWORD_ENV = "PROMO_ROI_METASTORE_PASSWORD"
_SECRET_IN_URL = re.compile(r"(?i)(password|passwd|pwd)=|//[^/@:]+:[^/@]+@")


def _without_secret(key: str, url: str | None) -> str | None:
    """A connection URL may name the user, never the password: configuration travels in argv, logs and
    files that others can read. The metastore password comes from the environment."""
    if url is not None and _SECRET_IN_URL.search(url):
        raise ConfigError(f"{key} holds a password: remove it from the URL and set {METASTORE_PASSWORD_ENV} in the "
                          "environment (scripts/metastore_postgres.sh writes it to a 0600 file to source)")
    return url


def _warehouse(tree: Mapping[str, Any], project_root: Path) -> WarehouseConfig:
    w = _section(tree, "warehouse")
    return WarehouseConfig(root=_resolve_path(w.text("root"), project_root), schemas=w.items("schemas", to_text))


def _source(tree: Mapping[str, Any], project_root: Path) -> SourceConfig:
    src = _section(tree, "source")
    source = SourceConfig(
        path=_resolve_path(src.text("path", optional=True), project_root),
        data_start=src.date("data_start"),
        data_end=src.date("data_end"),
        first_week=src.integer("first_week", minimum=1),
        last_week=src.integer("last_week", minimum=1),
        week_one_end=src.date("week_one_end"),
    )
    if source.data_end < source.data_start:
        raise ConfigError("source.data_end is before source.data_start")
    if source.last_week < source.first_week:
        raise ConfigError(f"source.last_week ({source.last_week}) is before source.first_week ({source.first_week})")
    return source


def _quality(tree: Mapping[str, Any]) -> QualityConfig:
    q = _section(tree, "quality")
    by_table = {}
    for table, value in q.mapping("max_quarantine_share_by_table").items():
        key = f"quality.max_quarantine_share_by_table.{table}"
        by_table[str(table)] = _share(to_number(value, key), key)
    return QualityConfig(max_quarantine_share=q.number("max_quarantine_share", **SHARE),
                         max_quarantine_share_by_table=by_table,
                         max_row_drop_share=q.number("max_row_drop_share", **SHARE))


def _share(value: float, key: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key} must be within [0, 1], got {value:g}")
    return value


def _positive_integer(value: Any, key: str) -> int:
    number = to_integer(value, key)
    if number < 1:
        raise ConfigError(f"{key} must be >= 1, got {number}")
    return number


def _features(tree: Mapping[str, Any]) -> FeatureConfig:
    f = _section(tree, "features")
    return FeatureConfig(rfm_windows_weeks=f.items("rfm_windows_weeks", _positive_integer),
                         spend_departments=f.items("spend_departments", to_text),
                         history_weeks=f.integer("history_weeks", minimum=1),
                         history_categories=f.integer("history_categories", minimum=1))


def _scoring(tree: Mapping[str, Any]) -> ScoringConfig | None:
    if "scoring" not in tree:
        return None
    s = _section(tree, "scoring")
    cfg = ScoringConfig(
        # A share of incremental revenue: a margin above 1 would make every pair look profitable.
        gross_margin=s.number("gross_margin", above=0.0, maximum=1.0),
        contact_cost=s.number("contact_cost", minimum=0.0),
        # 0 is a cost (a manufacturer-funded coupon); null: estimated from the data.
        redemption_cost=s.number("redemption_cost", optional=True, minimum=0.0),
        mc_dropout_samples=s.integer("mc_dropout_samples", minimum=0),
        driver_max_pairs=s.integer("driver_max_pairs", minimum=0),
        interval=s.number("interval", above=0.0, below=1.0),
        min_households=s.integer("min_households", minimum=1),
        max_null_share=s.number("max_null_share", **SHARE),
        value_outcome=s.text("value_outcome", choices=VALUE_OUTCOMES),
        redemption_model=s.text("redemption_model", choices=REDEMPTION_MODELS),
    )
    if cfg.mc_dropout_samples == 1:
        raise ConfigError(f"scoring.mc_dropout_samples must be 0 (off) or >= 2, got {cfg.mc_dropout_samples}")
    return cfg


def _planning(tree: Mapping[str, Any]) -> PlanningConfig | None:
    if "planning" not in tree:
        return None
    s = _section(tree, "planning")
    cfg = PlanningConfig(
        mode=s.text("mode", choices=PLANNING_MODES),
        total_budget=s.number("total_budget", optional=True, minimum=0.0),
        target_roi=s.number("target_roi", minimum=0.0),
        household_cap=s.integer("household_cap", minimum=1),
        # The price search brackets the budget price between grid points: it needs two at least.
        price_grid=s.integer("price_grid", minimum=2),
        sample_households=s.integer("sample_households", minimum=1),
        risk=s.text("risk", choices=PLANNING_RISKS),
        risk_quantile=s.number("risk_quantile", above=0.0, below=0.5),
    )
    if cfg.mode == "fixed_budget" and cfg.total_budget is None:
        raise ConfigError("planning.total_budget is required in fixed_budget mode")
    return cfg


def _training(tree: Mapping[str, Any], project_root: Path) -> TrainingConfig | None:
    if "training" not in tree:
        return None
    t = _section(tree, "training")
    use_gpu = t.raw("use_gpu")
    use_gpu = str(use_gpu).lower() if isinstance(use_gpu, (bool, str)) else use_gpu
    if use_gpu not in ("auto", "true", "false"):
        raise ConfigError(f"training.use_gpu must be auto, true or false, got {use_gpu!r}")
    return TrainingConfig(
        experiment=t.text("experiment"),
        registered_model=t.text("registered_model"),
        champion_alias=t.text("champion_alias"),
        validation_campaigns=t.integer("validation_campaigns", minimum=1),
        test_campaigns=t.integer("test_campaigns", minimum=1),
        min_train_campaigns=t.integer("min_train_campaigns", minimum=1),
        encoder_path=_resolve_path(t.text("encoder_path", optional=True), project_root),
        finetune=t.text("finetune", choices=FINETUNE_MODES),
        top_layers=t.integer("top_layers", minimum=0),
        adapter_dim=t.integer("adapter_dim", minimum=1),
        # all-MiniLM-L6-v2 has 512 positions.
        max_text_tokens=t.integer("max_text_tokens", minimum=1, maximum=512),
        hidden_dim=t.integer("hidden_dim", minimum=1),
        dropout=t.number("dropout", minimum=0.0, below=1.0),
        epochs=t.integer("epochs", minimum=1),
        batch_size=t.integer("batch_size", minimum=1),
        learning_rate=t.number("learning_rate", above=0.0),
        encoder_learning_rate=t.number("encoder_learning_rate", minimum=0.0),
        weight_decay=t.number("weight_decay", minimum=0.0),
        propensity_weight=t.number("propensity_weight", minimum=0.0),
        effect_head=t.text("effect_head", choices=EFFECT_HEADS),
        text_input=t.text("text_input", choices=TEXT_INPUTS),
        effect_penalty=t.number("effect_penalty", minimum=0.0),
        pseudo_outcome_weight=t.number("pseudo_outcome_weight", minimum=0.0),
        anchor_pseudo_count=t.number("anchor_pseudo_count", above=0.0),
        num_processes=t.integer("num_processes", minimum=1),
        local_mode=t.boolean("local_mode"),
        use_gpu=use_gpu,
        loader_workers=t.integer("loader_workers", minimum=1),
        max_train_examples=t.integer("max_train_examples", optional=True, minimum=1),
        seed=t.integer("seed", minimum=0),
        ensemble_size=t.integer("ensemble_size", minimum=1, maximum=16),
        checkpoint_dir=_resolve_path(t.text("checkpoint_dir"), project_root),
        petastorm_cache_dir=_resolve_path(t.text("petastorm_cache_dir"), project_root),
    )


def _evaluation(tree: Mapping[str, Any]) -> EvaluationConfig | None:
    if "evaluation" not in tree:
        return None
    e = _section(tree, "evaluation")
    band = e.items("overlap_band", to_number)
    if len(band) != 2 or not 0.0 <= band[0] < band[1] <= 1.0:
        raise ConfigError(f"evaluation.overlap_band must be [low, high] within [0, 1], got {list(band)}")
    return EvaluationConfig(
        overlap_band=(band[0], band[1]),
        bootstrap_samples=e.integer("bootstrap_samples", minimum=2),
        nuisance_folds=e.integer("nuisance_folds", minimum=2),
        placebo_tolerance=e.number("placebo_tolerance", above=0.0),
        stability_z=e.number("stability_z", above=0.0),
        seed=e.integer("seed", minimum=0),
        ranking=e.text("ranking", choices=RANKINGS),
    )


def _reports(tree: Mapping[str, Any], project_root: Path, warehouse: WarehouseConfig) -> ReportsConfig | None:
    if "reports" not in tree:
        return None
    r = _section(tree, "reports")
    root = r.text("root", optional=True)
    if root is None:
        # Beside the warehouse the report is rendered from (warehouse/ -> reports/).
        local = warehouse.root.removeprefix("file:")
        resolved = None if "://" in local else str(Path(local).parent / "reports")
    else:
        resolved = _resolve_path(root, project_root)
        if "://" in resolved:
            raise ConfigError(f"reports.root must be a local directory, got {resolved!r} "
                              "(null keeps reports in MLflow only when the warehouse is remote)")
        resolved = str(Path(resolved.removeprefix("file:")))
    return ReportsConfig(root=resolved, experiment=r.text("experiment"), currency=r.text("currency"))


def _mlflow(tree: Mapping[str, Any], project_root: Path) -> MlflowConfig | None:
    if "mlflow" not in tree:
        return None
    m = _section(tree, "mlflow")
    uri = m.text("tracking_uri", optional=True)
    if uri is None:
        store = _resolve_path(m.text("local_store"), project_root)
        uri = f"sqlite:///{store.removeprefix('file:')}"
    return MlflowConfig(tracking_uri=uri, artifact_root=_resolve_path(m.text("artifact_root"), project_root))


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
