"""promo_roi.config: profile merge, overrides, env, paths, errors (no Spark)."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from promo_roi.config import ConfigError, default_conf_dir, load_config

REPO_ROOT = Path(__file__).resolve().parents[1]

BASE_YAML = """
spark:
  app_name: test-app
  master: null
  shuffle_partitions: 200
  jvm_packages: ["io.delta:delta-spark_2.13:4.0.0"]
  catalog: hive
  extra:
    spark.a: "1"
    spark.b: "2"
warehouse:
  root: warehouse
  schemas: [bronze, silver, gold]
source:
  path: null
  data_start: "2017-01-01"
  data_end: "2018-01-01"
  first_week: 1
  last_week: 53
  week_one_end: "2017-01-02"
quality:
  max_quarantine_share: 0.02
  max_quarantine_share_by_table:
    coupons: 0.06
  max_row_drop_share: 0.2
features:
  rfm_windows_weeks: [4, 13, 26]
  spend_departments: [GROCERY, PRODUCE]
  history_weeks: 26
  history_categories: 10
"""

DEV_YAML = """
spark:
  master: "local[3]"
  shuffle_partitions: 4
  extra:
    spark.b: "20"
    spark.c: "3"
warehouse:
  root: /abs/warehouse
features:
  rfm_windows_weeks: [2]
"""


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    """A project at tmp_path/project with conf/{base,dev}.yaml."""
    conf = tmp_path / "project" / "conf"
    conf.mkdir(parents=True)
    (conf / "base.yaml").write_text(textwrap.dedent(BASE_YAML))
    (conf / "dev.yaml").write_text(textwrap.dedent(DEV_YAML))
    (conf / "empty.yaml").write_text("")
    return conf


# --- profile merge -------------------------------------------------------------

def test_profile_overrides_base_deeply(conf_dir: Path) -> None:
    config = load_config(profile="dev", conf_dir=conf_dir)
    assert config.profile == "dev"
    assert config.spark.app_name == "test-app"              # from base
    assert config.spark.master == "local[3]"                # from the profile
    assert config.spark.shuffle_partitions == 4
    # nested mappings merge key by key; lists are replaced, not concatenated
    assert dict(config.spark.extra) == {"spark.a": "1", "spark.b": "20", "spark.c": "3"}
    assert config.features.rfm_windows_weeks == (2,)
    assert config.features.spend_departments == ("GROCERY", "PRODUCE")
    assert config.warehouse.root == "/abs/warehouse"
    assert config.warehouse.schemas == ("bronze", "silver", "gold")
    assert config.quality.threshold_for("coupons") == 0.06
    assert config.quality.threshold_for("transactions") == 0.02


def test_empty_profile_keeps_base(conf_dir: Path) -> None:
    config = load_config(profile="empty", conf_dir=conf_dir)
    assert config.spark.master is None
    assert config.spark.shuffle_partitions == 200
    assert config.spark.driver_memory is None


def test_repository_profiles_load() -> None:
    local = load_config(profile="local", env={})
    assert default_conf_dir() == REPO_ROOT / "conf"
    assert local.project_root == REPO_ROOT
    assert local.spark.master == "local[*]"
    assert local.spark.shuffle_partitions == 8
    assert local.spark.catalog == "hive"
    assert local.spark.extra["spark.ui.enabled"] == "false"
    assert local.warehouse.root == str(REPO_ROOT / "warehouse")
    assert local.source.path is None
    assert local.source.data_start == dt.date(2017, 1, 1)
    assert local.source.data_end == dt.date(2018, 1, 1)
    assert local.source.week_end(1) == dt.date(2017, 1, 2)
    assert local.source.week_end(53) == dt.date(2018, 1, 1)

    cluster = load_config(profile="cluster", env={})
    assert cluster.spark.master is None
    assert cluster.spark.driver_memory is None
    assert cluster.spark.metastore_url.startswith("jdbc:postgresql://")
    # URIs are left alone by path resolution
    assert cluster.warehouse.root == "s3a://retail-lakehouse/promo-roi/warehouse"
    assert cluster.source.path == "s3a://retail-landing/completejourney/latest"


def test_profile_from_env_mapping(conf_dir: Path) -> None:
    config = load_config(conf_dir=conf_dir, env={"PROMO_ROI_PROFILE": "dev"})
    assert config.profile == "dev"
    assert config.spark.master == "local[3]"


def test_conf_dir_from_env_mapping(conf_dir: Path) -> None:
    config = load_config(profile="dev", env={"PROMO_ROI_CONF_DIR": str(conf_dir)})
    assert config.spark.app_name == "test-app"


# --- --set overrides -----------------------------------------------------------

def test_set_overrides_are_yaml_typed(conf_dir: Path) -> None:
    config = load_config(
        profile="dev",
        conf_dir=conf_dir,
        overrides=[
            "spark.shuffle_partitions=16",
            "spark.master=null",
            "spark.driver_memory = 3g",
            "features.rfm_windows_weeks=[1, 5]",
            "quality.max_quarantine_share=0.1",
            "quality.max_quarantine_share_by_table.products=0",
            "source.data_start=2017-02-01",
            "source.last_week=40",
        ],
    )
    assert config.spark.shuffle_partitions == 16
    assert config.spark.master is None
    assert config.spark.driver_memory == "3g"
    assert config.features.rfm_windows_weeks == (1, 5)
    assert config.quality.max_quarantine_share == 0.1
    assert config.quality.threshold_for("products") == 0.0
    assert config.quality.threshold_for("coupons") == 0.06
    assert config.source.data_start == dt.date(2017, 2, 1)
    assert config.source.last_week == 40
    assert config.raw["spark"]["shuffle_partitions"] == 16


def test_set_value_may_contain_equals_sign(conf_dir: Path) -> None:
    config = load_config(
        profile="dev", conf_dir=conf_dir,
        overrides=["spark.metastore_url=jdbc:derby:;databaseName=/x;create=true"],
    )
    assert config.spark.metastore_url == "jdbc:derby:;databaseName=/x;create=true"


def test_later_set_wins(conf_dir: Path) -> None:
    config = load_config(profile="dev", conf_dir=conf_dir,
                         overrides=["spark.shuffle_partitions=16", "spark.shuffle_partitions=32"])
    assert config.spark.shuffle_partitions == 32


# --- environment overrides -----------------------------------------------------

def test_env_overrides_from_mapping(conf_dir: Path) -> None:
    env = {
        "PROMO_ROI__SPARK__MASTER": "local[1]",
        "PROMO_ROI__SPARK__SHUFFLE_PARTITIONS": "12",
        "PROMO_ROI__QUALITY__MAX_QUARANTINE_SHARE": "0.05",
        "UNRELATED": "x",
    }
    config = load_config(profile="dev", conf_dir=conf_dir, env=env)
    assert config.spark.master == "local[1]"
    assert config.spark.shuffle_partitions == 12
    assert config.quality.max_quarantine_share == 0.05


def test_set_beats_env_beats_profile(conf_dir: Path) -> None:
    env = {"PROMO_ROI__SPARK__MASTER": "local[1]", "PROMO_ROI__SPARK__SHUFFLE_PARTITIONS": "12"}
    config = load_config(profile="dev", conf_dir=conf_dir, env=env, overrides=["spark.master=yarn"])
    assert config.spark.master == "yarn"
    assert config.spark.shuffle_partitions == 12


def test_process_environment_is_not_read(conf_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMO_ROI__SPARK__MASTER", "local[9]")
    monkeypatch.setenv("PROMO_ROI_PROFILE", "nope")
    config = load_config(profile="dev", conf_dir=conf_dir)
    assert config.spark.master == "local[3]"


# --- paths ---------------------------------------------------------------------

def test_relative_paths_resolve_against_project_root(conf_dir: Path) -> None:
    project = conf_dir.parent
    config = load_config(profile="empty", conf_dir=conf_dir, overrides=["source.path=data/in"])
    assert config.project_root == project.resolve()
    assert config.warehouse.root == str((project / "warehouse").resolve())
    assert config.source.path == str((project / "data" / "in").resolve())
    assert config.warehouse.table_path("bronze", "products") == f"{config.warehouse.root}/bronze/products"


def test_dotdot_relative_path_is_normalised(conf_dir: Path) -> None:
    config = load_config(profile="empty", conf_dir=conf_dir, overrides=["warehouse.root=../shared/wh"])
    assert config.warehouse.root == str((conf_dir.parent.parent / "shared" / "wh").resolve())


@pytest.mark.parametrize("root", ["/data/wh", "s3a://bucket/wh", "file:///data/wh", "hdfs://nn:8020/wh"])
def test_absolute_paths_and_uris_kept(conf_dir: Path, root: str) -> None:
    config = load_config(profile="empty", conf_dir=conf_dir, overrides=[f"warehouse.root={root}"])
    assert config.warehouse.root == root
    assert config.warehouse.schema_path("gold") == f"{root}/gold"


def test_single_slash_file_uri_kept(conf_dir: Path) -> None:
    config = load_config(profile="empty", conf_dir=conf_dir, overrides=["warehouse.root=file:/data/wh"])
    assert config.warehouse.root == "file:/data/wh"


# --- errors --------------------------------------------------------------------

@pytest.mark.parametrize("value", ["not-a-date", "'2017-02-30'", "20170101x"])
def test_bad_date_is_config_error(conf_dir: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="source.data_start"):
        load_config(profile="dev", conf_dir=conf_dir, overrides=[f"source.data_start={value}"])


def test_impossible_unquoted_date_is_config_error(conf_dir: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(profile="dev", conf_dir=conf_dir, overrides=["source.data_start=2017-02-30"])


def test_malformed_override_value_is_config_error(conf_dir: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(profile="dev", conf_dir=conf_dir, overrides=["spark.master=[unclosed"])


def test_malformed_yaml_file_is_config_error(conf_dir: Path) -> None:
    (conf_dir / "broken.yaml").write_text("spark: [unclosed\n")
    with pytest.raises(ConfigError):
        load_config(profile="broken", conf_dir=conf_dir)


def test_bad_date_in_profile_file_is_config_error(conf_dir: Path) -> None:
    (conf_dir / "bad.yaml").write_text('source:\n  week_one_end: "next monday"\n')
    with pytest.raises(ConfigError, match="source.week_one_end must be an ISO date"):
        load_config(profile="bad", conf_dir=conf_dir)


def test_end_before_start_is_config_error(conf_dir: Path) -> None:
    with pytest.raises(ConfigError, match="data_end is before"):
        load_config(profile="dev", conf_dir=conf_dir, overrides=["source.data_end=2016-12-31"])


def test_missing_profile_file_is_config_error(conf_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"configuration file not found: .*nope\.yaml"):
        load_config(profile="nope", conf_dir=conf_dir)


def test_missing_conf_dir_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"configuration file not found: .*base\.yaml"):
        load_config(profile="local", conf_dir=tmp_path / "nowhere")


def test_non_mapping_file_is_config_error(conf_dir: Path) -> None:
    (conf_dir / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping at top level"):
        load_config(profile="list", conf_dir=conf_dir)


def test_missing_key_is_config_error(conf_dir: Path) -> None:
    (conf_dir / "base.yaml").write_text(textwrap.dedent(BASE_YAML).replace("  last_week: 53\n", ""))
    with pytest.raises(ConfigError, match="source.last_week is missing"):
        load_config(profile="dev", conf_dir=conf_dir)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("spark.master", "must look like section.key=value"),
        ("=1", "empty configuration key"),
        ("spark.app_name.x=1", "is not a section"),
        ("spark.catalog=glue", "spark.catalog must be one of hive, in-memory, got 'glue'"),
        ("quality=3", "section 'quality' is missing"),
    ],
)
def test_bad_override_is_config_error(conf_dir: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(profile="dev", conf_dir=conf_dir, overrides=[override])


def test_config_is_immutable(conf_dir: Path) -> None:
    config = load_config(profile="dev", conf_dir=conf_dir)
    with pytest.raises(AttributeError):
        config.spark.master = "yarn"  # type: ignore[misc]


def test_spark_extra_keys_keep_their_dots(conf_dir: Path) -> None:
    config = load_config(
        profile="empty", conf_dir=conf_dir, overrides=["spark.extra.spark.sql.ansi.enabled=true"],
    )
    assert config.spark.extra["spark.sql.ansi.enabled"] == "true"


# --- strict values: every bad setting refused by its full name, before any work --------------

@pytest.mark.parametrize(
    ("override", "message"),
    [
        # A typo no longer falls back to the default.
        ("spark.shuffle_partitons=4", r"unknown configuration key\(s\) spark.shuffle_partitons"),
        ("sparks.master=local", r"unknown configuration key\(s\) sparks "),
        # NaN and infinities would switch a gate off or plan an infinite budget.
        ("quality.max_quarantine_share=nan", "quality.max_quarantine_share must be a finite number"),
        ("quality.max_quarantine_share=.inf", "quality.max_quarantine_share must be a finite number"),
        ("quality.max_quarantine_share_by_table.coupons=1.5", r"by_table.coupons must be within \[0, 1\]"),
        # Wrong types are named, not a TypeError from deep inside.
        ("spark.shuffle_partitions=null", "spark.shuffle_partitions must be set, got null"),
        ("spark.shuffle_partitions=abc", "spark.shuffle_partitions must be a number, got 'abc'"),
        ("spark.shuffle_partitions=2.5", "spark.shuffle_partitions must be a whole number"),
        ("spark.shuffle_partitions=true", "spark.shuffle_partitions must be a number, got True"),
        ("spark.shuffle_partitions=0", "spark.shuffle_partitions must be >= 1, got 0"),
        ("source.last_week=0", "source.last_week must be >= 1"),
        ("features.rfm_windows_weeks=[4, 0]", r"features.rfm_windows_weeks\[1\] must be >= 1, got 0"),
        ("features.rfm_windows_weeks=[]", "features.rfm_windows_weeks must not be empty"),
        ("features.spend_departments=GROCERY", "features.spend_departments must be a list"),
        ("features.history_weeks=0", "features.history_weeks must be >= 1, got 0"),
        ("features.history_categories=2.5", "features.history_categories must be a whole number"),
    ],
)
def test_bad_values_are_refused_by_name(conf_dir: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(profile="dev", conf_dir=conf_dir, overrides=[override])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("planning.total_buget=10", r"unknown configuration key\(s\) planning.total_buget"),
        ("planning.total_budget=abc", "planning.total_budget must be a number, got 'abc'"),
        ("planning.total_budget=inf", "planning.total_budget must be a finite number"),
        ("planning.total_budget=-1", "planning.total_budget must be >= 0"),
        ("planning.target_roi=-0.5", "planning.target_roi must be >= 0, got -0.5"),
        ("planning.target_roi=nan", "planning.target_roi must be a finite number"),
        ("planning.price_grid=1", "planning.price_grid must be >= 2, got 1"),
        ("planning.mode=max_profit", "planning.mode must be one of fixed_budget, target_roi"),
        ("planning.risk=cvar", "planning.risk must be one of expected, quantile"),
        ("planning.risk_quantile=0.5", "planning.risk_quantile must be < 0.5, got 0.5"),
        ("planning.risk_quantile=0", "planning.risk_quantile must be > 0, got 0"),
        ("planning.risk_quantile=nan", "planning.risk_quantile must be a finite number"),
        ("scoring.value_outcome=revenue",
         "scoring.value_outcome must be one of coupon_product_spend, spend, got 'revenue'"),
        ("scoring.gross_margin=5", "scoring.gross_margin must be <= 1, got 5"),
        ("scoring.gross_margin=0", "scoring.gross_margin must be > 0"),
        ("scoring.max_null_share=nan", "scoring.max_null_share must be a finite number"),
        ("scoring.contact_cost=-0.5", "scoring.contact_cost must be >= 0"),
        ("scoring.interval=1", "scoring.interval must be < 1"),
        ("scoring.mc_dropout_samples=1", "scoring.mc_dropout_samples must be 0 \\(off\\) or >= 2"),
        ("scoring.driver_max_pairs=-1", "scoring.driver_max_pairs must be >= 0, got -1"),
        ("scoring.redemption_model=poisson", "scoring.redemption_model must be one of ratio, shrunk, got 'poisson'"),
        ("evaluation.ranking=lgbm_t_learner",
         "evaluation.ranking must be one of validated, transformer, heuristic_pre_spend, got 'lgbm_t_learner'"),
        ("training.epochs=null", "training.epochs must be set, got null"),
        ("training.dropout=1", "training.dropout must be < 1"),
        ("training.learning_rate=0", "training.learning_rate must be > 0"),
        ("training.local_mode=sometimes", "training.local_mode must be true or false"),
        ("training.max_text_tokens=1000", "training.max_text_tokens must be <= 512"),
        ("training.effect_head=three_arms", "training.effect_head must be one of anchored, two_arms"),
        ("training.text_input=household", "training.text_input must be one of campaign, campaign_and_history, none"),
        ("training.effect_penalty=-0.1", "training.effect_penalty must be >= 0"),
        ("training.pseudo_outcome_weight=-1", "training.pseudo_outcome_weight must be >= 0"),
        ("training.anchor_pseudo_count=0", "training.anchor_pseudo_count must be > 0"),
        ("training.ensemble_size=0", "training.ensemble_size must be >= 1, got 0"),
        ("training.ensemble_size=2.5", "training.ensemble_size must be a whole number, got 2.5"),
        ("evaluation.nuisance_folds=1", "evaluation.nuisance_folds must be >= 2"),
        ("evaluation.bootstrap_samples=nan", "evaluation.bootstrap_samples must be a finite number"),
        ("mlflow.tracking_uri=[a]", "mlflow.tracking_uri must be a single value"),
        ("reports.colour=red", r"unknown configuration key\(s\) reports.colour"),
    ],
)
def test_repository_settings_refuse_impossible_values(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(profile="local", overrides=[override], env={})


def test_a_zero_redemption_cost_is_a_cost_not_unset() -> None:
    assert load_config(profile="local", overrides=["scoring.redemption_cost=0"], env={}).scoring.redemption_cost == 0.0
    assert load_config(profile="local", env={}).scoring.redemption_cost is None


def test_env_spark_settings_keep_their_case(conf_dir: Path) -> None:
    config = load_config(profile="dev", conf_dir=conf_dir, env={
        "PROMO_ROI__SPARK__EXTRA__spark.sql.adaptive.coalescePartitions.enabled": "false",
        "PROMO_ROI__SPARK__SHUFFLE_PARTITIONS": "6",
    })
    assert config.spark.extra["spark.sql.adaptive.coalescePartitions.enabled"] == "false"
    assert config.spark.shuffle_partitions == 6


@pytest.mark.parametrize(("args", "named"), [
    (["--budget", "inf"], "planning.total_budget"), (["--target-roi", "-0.5"], "planning.target_roi"),
    (["--target-roi", "nan"], "planning.target_roi"), (["--set", "planning.total_buget=10"], "planning.total_buget"),
])
def test_the_scoring_job_refuses_bad_settings_before_any_work(args: list[str], named: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    """Exit 2 with the key named, and nothing written: the configuration is read before the Spark session."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("score_job", REPO_ROOT / "jobs" / "score.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    warehouse = tmp_path / "warehouse"
    code = job.main(["--run-date", "2017-07-01", "--set", f"warehouse.root={warehouse}", *args])
    refusal = [line for line in capsys.readouterr().err.splitlines() if "score refused its input" in line]
    assert code == 2
    assert len(refusal) == 1 and named in refusal[0]
    assert not warehouse.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--profile", "nope", "tables"], "configuration file not found"),
    (["--set", "planning.total_buget=1", "tables"], "unknown configuration key(s) planning.total_buget"),
])
def test_promo_roi_refuses_a_bad_configuration_in_one_line(args: list[str], message: str,
                                                             capsys: pytest.CaptureFixture) -> None:
    from promo_roi import cli

    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("promo-roi: ") and message in err and "Traceback" not in err


def test_a_password_in_the_metastore_url_is_refused():
    for url in ("jdbc:postgresql://db:5432/hive?user=hive&password=secret",
                "jdbc:postgresql://db:5432/hive?user=hive&PWD=secret",
                "jdbc:postgresql://hive:secret@db:5432/hive"):
        with pytest.raises(ConfigError, match="spark.metastore_url holds a password.*PROMO_ROI_METASTORE_PASSWORD"):
            load_config(None, overrides=[f"spark.metastore_url={url}"])
    assert load_config(None, overrides=["spark.metastore_url=jdbc:postgresql://db:5432/hive?user=hive"]
                       ).spark.metastore_url.endswith("?user=hive")


def test_the_metastore_password_comes_from_the_environment(monkeypatch):
    from promo_roi.session import spark_settings

    config = load_config(None, overrides=["spark.metastore_url=jdbc:postgresql://db:5432/hive?user=hive"])
    monkeypatch.delenv("PROMO_ROI_METASTORE_PASSWORD", raising=False)
    assert "spark.hadoop.javax.jdo.option.ConnectionPassword" not in spark_settings(config)
    monkeypatch.setenv("PROMO_ROI_METASTORE_PASSWORD", "s3cr3t")
    assert spark_settings(config)["spark.hadoop.javax.jdo.option.ConnectionPassword"] == "s3cr3t"


def test_memory_strings_in_bytes() -> None:
    from promo_roi.session import memory_bytes

    assert memory_bytes("8g") == 8 * 2**30
    assert memory_bytes("512M") == 512 * 2**20
    assert memory_bytes("2048k") == 2 * 2**20
    assert memory_bytes("1tb") == 2**40
    assert memory_bytes("4096") == 4 * 2**30  # a bare number is MiB, as spark.driver.memory reads it
    assert memory_bytes("eight gigs") is None


def test_a_driver_smaller_than_its_configured_memory_is_named() -> None:
    """Under spark-submit the driver JVM starts before the session, so spark.driver_memory set in the session
    changes nothing: the job must say so rather than run on spark-submit's 1 GB (measured: the demo's jobs did,
    with conf/local.yaml asking for 8g)."""
    from promo_roi.session import driver_memory_shortfall

    one_gib_heap = 2**30  # what spark-submit's driver reported as its maximum heap (measured, Java 17)
    message = driver_memory_shortfall("8g", one_gib_heap)
    assert message is not None and "--driver-memory 8g" in message and "1.0 GiB" in message
    assert driver_memory_shortfall("1g", 954 * 2**20) is None  # within the JVM's own margin under -Xmx1g
    assert driver_memory_shortfall(None, one_gib_heap) is None  # nothing asked for
    assert driver_memory_shortfall("a lot", one_gib_heap) is None  # not a memory string: nothing to compare
