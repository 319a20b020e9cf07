"""Shared fixtures: one Spark session per test run, the small source fixture.

The session is built by the library's own factory with the ``local`` profile,
shrunk for a small machine, and a warehouse (with its embedded Derby
metastore) under a pytest temporary directory. Derby allows one JVM, and a
SparkSession's catalog is fixed when it starts, so there is exactly one
session for the whole run; tests that need a clean warehouse get a config
whose ``warehouse.root`` points elsewhere (see ``config_for``) and read the
tables back by path: the library writes by path, while the catalog names stay
with the first warehouse that registered them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from promo_roi.config import AppConfig, load_config

FIXTURE_DIR = Path(__file__).parent / "fixtures" / "completejourney_small"

# Settings for a few thousand rows, where every Spark job is mostly fixed cost
# (measured on ingest + features of the fixture: about 25% less time): one
# partition per shuffle and per Delta snapshot, no whole-stage code generation
# (compiling generated code costs more than running it on tiny data) and no
# adaptive re-planning. They change how, never what, Spark computes. Jobs run
# as subprocesses get them too (``job_overrides``, the Airflow night's profile).
# Nor any expression code generation (``codegen.factoryMode``, an internal Spark
# setting its own tests use to run the interpreted path): even without
# whole-stage code, every projection, predicate and ordering was compiled by
# Janino, and on a sampled profile of the session chain (JFR, docs/tests.md)
# compiling, and the class lookups through every jar it makes, was ~15-18% of
# the JVM's CPU. tests/test_features.py alone: 161 s of CPU / 138 s wall with
# code generation, 113 s / 100 s interpreted. Production keeps code generation:
# on the full data, running generated code is what pays.
# Nor PySpark's call-site capture (``dataFrameDebugging``): PySpark 4.0 wraps every Column and function call to
# send its Python line to the JVM for errors' DataFrame context, several more py4j round trips and a walk of the
# Python stack per call. It changes no result, only what an error's context names.
# benchmarks/bench_dataframe_debugging.py (every declared table's write frame built, alternating, one run):
# 3.3x the py4j commands and 2.9x the CPU with it on (BENCHMARKS.md); in a whole test unit the gain is below the
# noise (docs/tests.md). Production keeps it for its errors.
SMALL_DATA_SPARK = {
    "spark.default.parallelism": "1",
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.python.sql.dataFrameDebugging.enabled": "false",
}
SESSION_OVERRIDES = (
    "spark.master=local[2]",
    "spark.shuffle_partitions=1",
    "spark.driver_memory=2g",
    *(f"spark.extra.{key}={value}" for key, value in SMALL_DATA_SPARK.items()),
)


# Every job, server and Airflow task the tests start is a JVM that lives a minute or two on a few
# thousand rows: its own JIT compiler's optimising tier (C2) costs more CPU than it saves, and on two
# cores two test workers share that CPU. With C1 only the JVM reserves a 48 MB code cache, which a
# Spark + Delta job fills in about 30 s; the JVM then switches its compiler off and runs the rest
# interpreted ("CodeCache is full. Compiler has been disabled"), hence the larger cache. jobs/ingest.py
# over the fixture, alone, one run each (docs/tests.md): 95.9 s of CPU with C2, 58.7 s with C1 only,
# 44.0 s with these options. spark-submit passes SPARK_SUBMIT_OPTS to the driver JVM, the test
# session's own included (see ``spark``).
SHORT_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"
os.environ["SPARK_SUBMIT_OPTS"] = " ".join(
    part for part in (os.environ.get("SPARK_SUBMIT_OPTS", ""), SHORT_JVM_OPTIONS) if part)


# OpenMP threads (LightGBM's, torch's) wait for work by spinning before they sleep (libgomp's default policy):
# on two cores shared by two test workers, a spinning thread takes a core another process needs. Passive
# threads sleep at once. Set before either library is loaded, here and in every process the tests start
# (the variable is inherited); it changes when threads wait, never what they compute. LightGBM-heavy tests
# alone (tests/test_dr_learner.py, test_causal_nuisance.py, test_effect_head.py, one process, two runs
# each way): 27.8 and 29.9 s of CPU spinning, 25.9 and 24.8 s passive (docs/tests.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def session_overrides(warehouse_root: str | Path) -> list[str]:
    """The --set overrides that reproduce the test session's settings."""
    return [*SESSION_OVERRIDES, f"warehouse.root={warehouse_root}"]


# Every JVM the tests start maps the classes it shares with the others from one archive (tests/class_archive.py),
# made once per environment in the background by the process that starts the run; a JVM that starts before it
# is there runs without it. Its path and class path are set before the workers start. Its class path comes
# first through the copy of spark-defaults.conf in SPARK_CONF_DIR, its JVM option through SPARK_SUBMIT_OPTS; a
# test that names its own SPARK_CONF_DIR adds ``class_archive.spark_defaults_line()`` to its spark-defaults.conf.
# PROMO_ROI_TESTS_CLASS_ARCHIVE=off runs every JVM without it (to measure it, or to rule it out).
CLASS_ARCHIVE = None


def pytest_configure(config):
    global CLASS_ARCHIVE
    import class_archive

    if os.environ.get("PROMO_ROI_TESTS_CLASS_ARCHIVE", "on") == "off":
        return
    CLASS_ARCHIVE = class_archive.ensure(SHORT_JVM_OPTIONS, list(SESSION_OVERRIDES),
                                         build=not hasattr(config, "workerinput"))
    if CLASS_ARCHIVE is not None:
        os.environ["SPARK_CONF_DIR"] = str(CLASS_ARCHIVE.spark_conf_dir)
        options = CLASS_ARCHIVE.java_options()
        if options not in os.environ["SPARK_SUBMIT_OPTS"]:
            os.environ["SPARK_SUBMIT_OPTS"] += f" {options}"


# Fixtures that run a whole chain (ingest, features, training, scoring), jobs in subprocesses or servers:
# a test that uses one, directly or through another fixture, is end to end (marker ``e2e``). `make
# test-fast` leaves them out for the edit-run loop; `make test` runs everything.
E2E_FIXTURES = frozenset({
    "ingested", "trained", "champion", "scored", "good_ingest", "damaged_ingest", "two_warehouses", "airflow_env",
    "cluster_package", "bare_python", "warehouse", "endpoint", "postgres", "tiny",
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
    # The longest work units first, so that the two workers start on them (see SCHEDULE_GROUPS).
    items.sort(key=lambda item: SCHEDULE_FIRST.get(_schedule_group(item.nodeid), len(SCHEDULE_FIRST)))


# `make test` runs two pytest-xdist workers. On the 2-core machine they gain ~10% (the heavy units
# already keep both cores busy; docs/tests.md has the figures), more where there are cores. A work unit runs on one worker, in file
# order: a module (its module fixtures: an Airflow night, a benchmark scenario, a server), or a group
# of modules that share an expensive session fixture, built once per worker that needs it. The
# session chain (ingest -> features -> tiny training -> scoring) is ``chain``; the modules that only
# need the ingested fixture are ``ingested`` (a second worker ingests again in ~40 s). Modules that
# are not listed are their own unit.
SCHEDULE_GROUPS = {
    "test_backtest": "chain", "test_reports": "chain",
    "test_rolling_origin": "chain", "test_scoring": "chain", "test_training": "chain",
    "test_ingest": "ingested", "test_features": "ingested", "test_faults": "ingested",
    "test_item_store_week": "ingested",
}
# Units queued first, longest first, so that the short ones are what is left at the end and both workers finish
# together (a worker takes the next unit in the queue when it has at most two tests pending). Seconds of one
# worker in `make test` on the 2-core machine (2026-12-05, 2902d5a): the chain 568, the Airflow night 443, the
# ingested group 405, the decision benchmark 158, the publication protocol 74, the SQL endpoint 71, the
# PostgreSQL metastore 61; every other unit under 25. With the ingested group queued in file order it was taken
# last by one worker, which ran 200 s alone at the end.
SCHEDULE_FIRST = {"chain": 0, "test_airflow_dag": 1, "ingested": 2, "test_decision_benchmark": 3,
                  "test_publication": 4, "test_sql_endpoint": 5, "test_metastore_postgres": 6}


def _schedule_group(nodeid: str) -> str:
    module = Path(nodeid.split("::", 1)[0]).stem
    return SCHEDULE_GROUPS.get(module, module)


def pytest_xdist_make_scheduler(config, log):
    """Work units by SCHEDULE_GROUPS, in collection order (pytest 9 ignores pytest-xdist 3.8's
    xdist_group markers: it renames node ids through an attribute pytest no longer reads)."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _schedule_group(nodeid)

    config.option.loadscopereorder = False
    return GroupScheduling(config, log)


@pytest.fixture(scope="session")
def job_overrides() -> Callable[[str | Path], list[str]]:
    """``job_overrides(root)``: --set values giving a job the test session's settings."""
    return session_overrides


@pytest.fixture(scope="session")
def app_config(tmp_path_factory: pytest.TempPathFactory) -> AppConfig:
    root = tmp_path_factory.mktemp("warehouse")
    # env={}: the process environment (PROMO_ROI__*) must not leak into tests.
    return load_config(profile="local", overrides=session_overrides(root), env={})


@pytest.fixture(scope="session")
def spark(app_config: AppConfig):
    from promo_roi.session import build_spark_session

    # SHORT_JVM_OPTIONS too: on a few thousand rows, C2's compilations cost more CPU than they save even
    # over the whole run (docs/tests.md).
    session = build_spark_session(app_config, app_name="promo-roi-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def config_for(app_config: AppConfig, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., AppConfig]:
    """``config_for("name", quality={...})``: the session config with its own warehouse.

    The warehouse is a fresh directory; ``quality`` replaces fields of the
    QualityConfig (e.g. ``max_quarantine_share=0.5``).
    """

    def _make(name: str, quality: Mapping[str, Any] | None = None) -> AppConfig:
        root = tmp_path_factory.mktemp(f"warehouse_{name}")
        config = dataclasses.replace(
            app_config, warehouse=dataclasses.replace(app_config.warehouse, root=str(root))
        )
        if quality:
            config = dataclasses.replace(config, quality=dataclasses.replace(config.quality, **quality))
        return config

    return _make


@pytest.fixture(scope="session")
def fixture_source() -> Path:
    """The committed fixture directory (read-only: damage a copy instead)."""
    assert FIXTURE_DIR.is_dir(), f"missing {FIXTURE_DIR}; run scripts/make_fixture.py"
    return FIXTURE_DIR


class SourceCopy:
    """A writable copy of the fixture, with helpers to damage it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __str__(self) -> str:
        return str(self.path)

    def file(self, table: str) -> Path:
        return self.path / f"{table}.parquet"

    def read(self, table: str) -> pa.Table:
        return pq.read_table(self.file(table))

    def write(self, table: str, data: pa.Table) -> None:
        # INT96 timestamps like the published files (Spark cannot read INT64 nanoseconds).
        pq.write_table(data, self.file(table), use_deprecated_int96_timestamps=True)

    def append(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Appends rows given as dicts (missing keys are null), keeping the exact schema."""
        current = self.read(table)
        extra = pa.Table.from_pylist(list(rows), schema=current.schema)
        self.write(table, pa.concat_tables([current, extra]))

    def drop_table(self, table: str) -> None:
        self.file(table).unlink()

    def drop_column(self, table: str, column: str) -> None:
        data = self.read(table)
        self.write(table, data.drop([column]))

    def cast_column(self, table: str, column: str, dtype: pa.DataType) -> None:
        data = self.read(table)
        i = data.schema.get_field_index(column)
        self.write(table, data.set_column(i, pa.field(column, dtype), data[column].cast(dtype)))


@pytest.fixture(scope="session")
def fixture_copy(fixture_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], SourceCopy]:
    """``fixture_copy("name")``: a fresh copy of the fixture in a new tmp dir; damage it freely.

    Session-scoped so that module-scoped fixtures can use it too.
    """

    def _copy(name: str = "source") -> SourceCopy:
        target = tmp_path_factory.mktemp(f"source_{name}") / "completejourney"
        shutil.copytree(fixture_source, target)
        return SourceCopy(target)

    return _copy


TRAIN_AS_OF = dt.date(2017, 7, 1)


def tiny_model(config: AppConfig, tmp: Path) -> AppConfig:
    """``config`` with a model small enough for the fixture (1 epoch, 2 processes, a 32-wide head, one network
    rather than an ensemble, short bootstraps) and its own MLflow store, checkpoints and petastorm cache under ``tmp``. Households are valued
    by the network (``evaluation.ranking: transformer``): on the fixture's 60 households pre-period spend's
    calibrated line pays for no pair, and the chain's planning tests need a plan to check. The choice itself
    is tested in tests/test_value_score.py and, at the product's default, by the decision benchmark's scenario."""
    training, evaluation, mlflow_config = config.require_training()
    return dataclasses.replace(
        config,
        training=dataclasses.replace(
            training, epochs=1, batch_size=64, num_processes=2, top_layers=1, hidden_dim=32, ensemble_size=1,
            checkpoint_dir=str(tmp / "checkpoints"), petastorm_cache_dir=str(tmp / "petastorm"),
        ),
        evaluation=dataclasses.replace(evaluation, bootstrap_samples=20, nuisance_folds=3, ranking="transformer"),
        mlflow=dataclasses.replace(mlflow_config, tracking_uri=f"sqlite:///{tmp}/mlflow.db",
                                   artifact_root=str(tmp / "mlartifacts")),
    )


@pytest.fixture(scope="session")
def tiny_model_config(config_for, tmp_path_factory) -> Callable[[str], AppConfig]:
    """``tiny_model_config("name")``: a config with its own warehouse, MLflow store and the tiny model."""

    def _make(name: str) -> AppConfig:
        return tiny_model(config_for(name), tmp_path_factory.mktemp(f"{name}_run"))

    return _make


@pytest.fixture(scope="session")
def copy_warehouse(tmp_path_factory) -> Callable[[AppConfig, str], AppConfig]:
    """``copy_warehouse(config, "name")``: a writable copy of ``config``'s warehouse and MLflow store.

    Tables are read and written by path, so a directory copy isolates a test
    that writes from every other test; the MLflow registry is copied with it
    (its artifacts are shared, read-only: new runs get new directories).
    Reports go under the copy.
    """

    def _copy(config: AppConfig, name: str) -> AppConfig:
        target = tmp_path_factory.mktemp(f"copy_{name}")
        shutil.copytree(config.warehouse.root, target / "warehouse", ignore=shutil.ignore_patterns("metastore_db"))
        out = dataclasses.replace(config, warehouse=dataclasses.replace(config.warehouse,
                                                                        root=str(target / "warehouse")))
        store = Path(config.mlflow.tracking_uri.removeprefix("sqlite:///")) if config.mlflow else None
        if store is not None and config.mlflow.tracking_uri.startswith("sqlite:///") and store.exists():
            shutil.copy2(store, target / store.name)
            out = dataclasses.replace(out, mlflow=dataclasses.replace(
                config.mlflow, tracking_uri=f"sqlite:///{target / store.name}"))
        if config.reports is not None:
            out = dataclasses.replace(out, reports=dataclasses.replace(config.reports, root=str(target / "reports")))
        return out

    return _copy


@pytest.fixture(scope="session")
def ingested(spark, config_for, fixture_source):
    """The fixture ingested once into its own warehouse: (config, {table: IngestResult}). Read-only; the
    ingest tests and the training chain start from copies."""
    from promo_roi.ingest import run_ingest

    config = config_for("ingested")
    return config, run_ingest(spark, config, str(fixture_source))


@pytest.fixture(scope="session")
def trained(spark, ingested, copy_warehouse, tmp_path_factory):
    """The fixture ingested, features built as of TRAIN_AS_OF, and a tiny model trained through
    petastorm + TorchDistributor (2 processes): (config, TrainingResult). Shared by training and scoring tests,
    read-only: a test that writes works on ``copy_warehouse(config, ...)``."""
    from promo_roi.features import build_features
    from promo_roi.training.pipeline import train

    config = tiny_model(copy_warehouse(ingested[0], "training"), tmp_path_factory.mktemp("training_run"))
    build_features(spark, config, TRAIN_AS_OF)
    result = train(spark, config, TRAIN_AS_OF)
    return config, result


@pytest.fixture(scope="session")
def champion(trained):
    """The tiny trained model, made champion by hand (its refutation verdict on 60 households is noise): the config."""
    from mlflow import MlflowClient

    config, result = trained
    training, _, mlflow_config = config.require_training()
    MlflowClient(tracking_uri=mlflow_config.tracking_uri).set_registered_model_alias(
        training.registered_model, training.champion_alias, result.model_version)
    return config


@pytest.fixture(scope="session")
def scored(spark, champion, copy_warehouse):
    """The champion's warehouse with TRAIN_AS_OF scored and published once: (config, ScoringResult).
    Read-only; a test that writes copies it."""
    from promo_roi.scoring.job import score

    config = copy_warehouse(champion, "scored")
    return config, score(spark, config, TRAIN_AS_OF)


# --- published runs: what the publication tests write and read back ---------------------------

class InjectedFault(RuntimeError):
    """The stand-in for a kill: raised before the n-th commit (a Delta commit itself is atomic, so this leaves
    what a kill between commits n-1 and n leaves)."""


@contextmanager
def before_commit(hook: Callable[[str, str], None]):
    """Calls ``hook(operation, table)`` before every Delta commit made inside the block, from any thread
    (``promo_roi.delta_io.BEFORE_COMMIT``); a hook that raises stops that commit's writer there."""
    from promo_roi import delta_io

    delta_io.BEFORE_COMMIT.append(hook)
    try:
        yield
    finally:
        delta_io.BEFORE_COMMIT.remove(hook)


@contextmanager
def fail_at(n: int):
    """Fails the n-th Delta commit made inside the block (1-based; 0: none); yields the commits seen, as
    (operation, table) pairs."""
    seen: list[tuple[str, str]] = []

    def hook(operation: str, table: str) -> None:
        seen.append((operation, table))
        if len(seen) == n:
            raise InjectedFault(f"injected before commit {n}: {operation} {table}")

    with before_commit(hook):
        yield seen


def publication_frames(spark, run_date: dt.date, run_id: str, rows: int = 2) -> dict:
    """One run's rows for every published table (``rows`` of them, ids 0..rows-1), to hand to ``publish``."""
    from promo_roi import delta_io
    from promo_roi.analyst_views import PUBLISHED_TABLES

    records = [{"campaign_id": c, "household_id": c} for c in range(rows)]
    return {spec: delta_io.frame_of_records(spark, records, spec, {"run_date": run_date, "run_id": run_id})
            for spec in PUBLISHED_TABLES}


def runs_visible(spark, config: AppConfig, run_date: dt.date) -> dict[str, Counter[str]]:
    """Per published table: rows per run_id that readers see for ``run_date`` (through the publication log)."""
    from pyspark.sql import functions as F

    from promo_roi.analyst_views import PUBLISHED_TABLES
    from promo_roi.publication import published

    return {spec.name: Counter(r.run_id for r in published(spark, spec, config).filter(
        F.col("run_date") == F.lit(run_date)).select("run_id").collect()) for spec in PUBLISHED_TABLES}


def runs_stored(spark, config: AppConfig, run_date: dt.date) -> dict[str, set[str]]:
    """Per published table: the run_ids whose rows are stored for ``run_date``, published or not."""
    from pyspark.sql import functions as F

    from promo_roi import delta_io
    from promo_roi.analyst_views import PUBLISHED_TABLES

    return {spec.name: {r.run_id for r in delta_io.read_table(spark, spec, config.warehouse).filter(
        F.col("run_date") == F.lit(run_date)).select("run_id").distinct().collect()} for spec in PUBLISHED_TABLES}


# --- one training process without Spark: what the trainer tests share -----------------------------

def free_port() -> int:
    """A TCP port free on loopback now (a server or a process group binds it next)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tokenizer():
    """MiniLM's tokenizer from the packaged files (no hub), shared by the network's unit tests."""
    from transformers import AutoTokenizer

    from promo_roi.training.text_encoder import default_encoder_path

    return AutoTokenizer.from_pretrained(default_encoder_path(), local_files_only=True)


def join_as_single_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment of rank 0 of a one-process group, as torchrun would set it. Port 0: the group's store
    binds a port of the system's choosing, which no other process can take first (a port found free and
    then closed could be, and once was: EADDRINUSE while the other worker started a job)."""
    for key, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": "0"}.items():
        monkeypatch.setenv(key, value)


def random_training_arrays(n: int, seed: int = 0) -> dict:
    """Encoded training arrays of ``n`` random rows (3 numeric inputs, 1 categorical, 2 campaign texts)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return {
        "x_num": rng.normal(size=(n, 3)).astype(np.float32), "x_cat": rng.integers(0, 2, (n, 1)),
        "text_id": rng.integers(0, 2, n).astype(np.int32), "targeted": rng.integers(0, 2, n).astype(np.float32),
        "outcomes": np.abs(rng.normal(size=(n, 3))).astype(np.float32),
    }


def two_campaign_calibration(seed: int, n_boot: int, **kwargs):
    """An uplift calibration fitted on 30 random held-out rows of campaigns 5 and 6 (15 each): every other
    household targeted, every fourth a redeemer of 3 coupons, each predicted to redeem with probability 0.3;
    ``kwargs`` go to ``fit_uplift_calibration``."""
    import numpy as np

    from promo_roi.causal.calibration import fit_uplift_calibration

    n = 30
    rng = np.random.default_rng(seed)
    return fit_uplift_calibration(
        tau_spend=rng.normal(size=n), phi_spend=rng.normal(size=n), tau_coupon=rng.normal(size=n),
        phi_coupon=rng.normal(size=n), targeted=np.arange(n) % 2, redeemed=(np.arange(n) % 4 == 1),
        p_redeem_targeted=np.full(n, 0.3), campaign=np.array([5] * 15 + [6] * 15), n_boot=n_boot, seed=0,
        redemptions=(np.arange(n) % 4 == 1) * 3, **kwargs)


# --- the cluster package: what the cluster test and the Airflow night submit -------------------------

REPO = Path(__file__).resolve().parents[1]
PACKAGE_VERSION = "0.1.0"


def build_cluster_package(out: Path) -> Path:
    """``scripts/build_cluster_package.py --out out``, run from ``out``: the package directory."""
    import subprocess
    import sys

    subprocess.run([sys.executable, str(REPO / "scripts" / "build_cluster_package.py"), "--out", str(out)],
                   check=True, capture_output=True, text=True, cwd=str(out))
    return out / f"promo-roi-{PACKAGE_VERSION}"


@pytest.fixture(scope="session")
def cluster_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cluster package built into a directory outside the repository (read-only)."""
    return build_cluster_package(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with every dependency importable and promo_roi not, as on a cluster's nodes.

    A .pth line puts the venv's site-packages on the path as a plain directory:
    its packages import, but its own .pth files (the editable install of
    promo_roi among them) are not run.
    """
    import site
    import subprocess
    import venv

    env_dir = tmp_path_factory.mktemp("bare_env")
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    target = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            check=True, capture_output=True, text=True).stdout.strip()
    Path(target, "promo_roi_deps.pth").write_text("".join(f"{p}\n" for p in site.getsitepackages()))
    return python
