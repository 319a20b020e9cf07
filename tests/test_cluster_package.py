"""The cluster package (scripts/build_cluster_package.py) runs under spark-submit on its own.

The jobs are submitted the way a cluster runs them: from a directory outside
the repository, with a Python that has the dependencies but not promo_roi
(the venv's site-packages without its editable-install hook), the package
zip on ``--py-files``, the Delta coordinates on ``--packages`` and the conf/
that travels inside the zip. Local master; the nightly chain ingest ->
build_features -> score runs on the small fixture against the test champion.
"""

from __future__ import annotations

import hashlib
import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from conftest import SMALL_DATA_SPARK

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "scripts" / "build_cluster_package.py"
RUN_DATE = "2017-07-01"
# Complete Journey campaigns starting on or after 2017-07-01 (campaign_descriptions).
PLANNED = {11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}
VERSION = "0.1.0"


def _build(out: Path) -> Path:
    subprocess.run([sys.executable, str(BUILD), "--out", str(out)], check=True, capture_output=True, text=True,
                   cwd=str(out))
    return out / f"promo-roi-{VERSION}"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with every dependency importable and promo_roi not.

    A .pth line puts the venv's site-packages on the path as a plain directory:
    its packages import, but its own .pth files (the editable install of
    promo_roi among them) are not run.
    """
    env_dir = tmp_path_factory.mktemp("bare_env")
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    target = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            check=True, capture_output=True, text=True).stdout.strip()
    Path(target, "promo_roi_deps.pth").write_text("".join(f"{p}\n" for p in site.getsitepackages()))
    return python


def _submit_env(python: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PROMO_ROI", "PYSPARK", "SPARK_HOME", "PYTHONPATH"))}
    # spark-submit finds Spark through the python3 first on PATH.
    env["PATH"] = f"{python.parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYSPARK_PYTHON"] = str(python)
    return env


def _spark_submit(python: Path, package: Path, application: Path, args: list[str], cwd: Path,
                  packages: str | None = None) -> subprocess.CompletedProcess:
    spark_submit = Path(sys.executable).parent / "spark-submit"
    cmd = [
        str(spark_submit), "--master", "local[2]",
        # The venv's spark-defaults.conf names the venv's Python; a cluster names its own.
        "--conf", f"spark.pyspark.python={python}", "--conf", f"spark.pyspark.driver.python={python}",
        "--py-files", str(package / f"promo_roi-{VERSION}.zip"),
    ]
    if packages:
        cmd += ["--packages", packages]
    done = subprocess.run([*cmd, str(application), *args], capture_output=True, text=True, cwd=str(cwd),
                          env=_submit_env(python), timeout=900)
    assert done.returncode == 0, f"{application.name} exited {done.returncode}:\n{done.stderr[-4000:]}"
    return done


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_package_holds_the_code_and_its_conf_and_builds_reproducibly(package: Path, tmp_path: Path) -> None:
    archive = package / f"promo_roi-{VERSION}.zip"
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        packaged_base = zf.read("promo_roi/conf/base.yaml")
    sources = {f"promo_roi/{p.relative_to(REPO / 'lib' / 'promo_roi').as_posix()}"
               for p in (REPO / "lib" / "promo_roi").rglob("*.py") if "__pycache__" not in p.parts}
    assert sources <= names
    assert {"promo_roi/conf/base.yaml", "promo_roi/conf/local.yaml", "promo_roi/conf/cluster.yaml"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert packaged_base == (REPO / "conf" / "base.yaml").read_bytes()
    assert {p.name for p in (package / "jobs").glob("*.py")} == {p.name for p in (REPO / "jobs").glob("*.py")}
    lines = dict(line.split("\t") for line in (package / "spark-submit-packages.txt").read_text().splitlines())
    cluster = yaml.safe_load((REPO / "conf" / "cluster.yaml").read_text())["spark"]["jvm_packages"]
    assert lines["cluster"] == ",".join(cluster)
    assert "io.delta:delta-spark_2.13:4.0.0" in lines["local"].split(",")
    for line in (package / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        assert _sha256(package / name) == digest, name
    # Same sources, same bytes: a rebuild elsewhere gives the same archive.
    again = _build(tmp_path)
    assert _sha256(again / archive.name) == _sha256(archive)


def test_the_bare_python_does_not_see_the_checkout(bare_python: Path, tmp_path: Path) -> None:
    probe = "import importlib.util as u, pyspark, delta; print(u.find_spec('promo_roi'))"
    out = subprocess.run([str(bare_python), "-c", probe], capture_output=True, text=True, cwd=str(tmp_path),
                         env=_submit_env(bare_python), check=True)
    assert out.stdout.strip() == "None"


PROBE = '''
from pyspark.sql import SparkSession
import promo_roi
from promo_roi.config import load_config

spark = SparkSession.builder.getOrCreate()


def where(_):
    import promo_roi
    yield promo_roi.__file__


print("driver", promo_roi.__file__)
for path in sorted(set(spark.sparkContext.parallelize(range(4), 2).mapPartitions(where).collect())):
    print("worker", path)
print("warehouse", load_config(env={}).warehouse.root)
'''


def test_spark_submit_runs_the_nightly_chain_from_the_package_outside_the_repo(
    package: Path, bare_python: Path, champion, fixture_source: Path, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    workdir = tmp_path_factory.mktemp("cluster_run")
    assert REPO not in workdir.parents and REPO not in package.parents
    delta = dict(line.split("\t") for line in (package / "spark-submit-packages.txt").read_text().splitlines())["local"]

    # The driver and the Python workers import promo_roi from the zip, and the
    # configuration comes from inside it (relative paths: the working directory).
    (workdir / "probe.py").write_text(PROBE)
    out = _spark_submit(bare_python, package, workdir / "probe.py", [], workdir).stdout.splitlines()
    zip_name = f"promo_roi-{VERSION}.zip/promo_roi/__init__.py"
    assert [line for line in out if line.startswith("driver")] == [f"driver {package}/{zip_name}"]
    workers = [line for line in out if line.startswith("worker")]
    assert workers and all(line.endswith(zip_name) for line in workers)
    assert f"warehouse {workdir / 'warehouse'}" in out

    settings = ["spark.shuffle_partitions=1", "spark.driver_memory=2g",
                *(f"spark.extra.{key}={value}" for key, value in SMALL_DATA_SPARK.items())]
    common = [arg for item in settings for arg in ("--set", item)]
    jobs = package / "jobs"
    _spark_submit(bare_python, package, jobs / "ingest.py",
                  [*common, "--set", f"source.path={fixture_source}"], workdir, delta)
    _spark_submit(bare_python, package, jobs / "build_features.py", [*common, "--as-of", RUN_DATE], workdir, delta)
    mlflow_config = champion.require_training().mlflow
    _spark_submit(bare_python, package, jobs / "score.py",
                  [*common, "--run-date", RUN_DATE, "--set", f"mlflow.tracking_uri={mlflow_config.tracking_uri}"],
                  workdir, delta)

    import deltalake

    warehouse = workdir / "warehouse"
    # Every source row is in bronze or in quarantine (counted here from the parquet files).
    quarantine = deltalake.DeltaTable(str(warehouse / "bronze" / "quarantine"))
    quarantined = {}
    for path in quarantine.file_uris():
        table = next(part.split("=", 1)[1] for part in Path(path).parts if part.startswith("source_table="))
        quarantined[table] = quarantined.get(table, 0) + pq.read_metadata(path).num_rows
    for source in sorted(fixture_source.glob("*.parquet")):
        table = source.stem
        bronze = deltalake.DeltaTable(str(warehouse / "bronze" / table))
        written = sum(pq.read_metadata(p).num_rows for p in bronze.file_uris())
        assert written + quarantined.get(table, 0) == pq.read_metadata(source).num_rows, table
    forecast = deltalake.DeltaTable(str(warehouse / "gold" / "campaign_roi_forecast"))
    campaigns = set()
    for path in forecast.file_uris():
        campaigns |= set(pq.read_table(path, columns=["campaign_id"]).column("campaign_id").to_pylist())
    assert campaigns == PLANNED
