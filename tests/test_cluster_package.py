"""The cluster package (scripts/build_cluster_package.py) runs under spark-submit on its own.

The jobs are submitted the way a cluster runs them: from a directory outside
the repository, with a Python that has the dependencies but not promo_roi
(the venv's site-packages without its editable-install hook, ``bare_python``
in conftest.py), the package zip on ``--py-files`` and the conf/ that travels
inside the zip. Here: what the package holds, and that the driver, its Python
workers and the configuration all come from it. The whole nightly chain runs
from the package in the Airflow night (tests/test_airflow_dag.py), whose every
task submits the package's job with its zip.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from conftest import PACKAGE_VERSION as VERSION
from conftest import build_cluster_package

REPO = Path(__file__).resolve().parents[1]


def _submit_env(python: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PROMO_ROI", "PYSPARK", "SPARK_HOME", "PYTHONPATH"))}
    # spark-submit finds Spark through the python3 first on PATH.
    env["PATH"] = f"{python.parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYSPARK_PYTHON"] = str(python)
    return env


def _spark_submit(python: Path, package: Path, application: Path, args: list[str],
                  cwd: Path) -> subprocess.CompletedProcess:
    spark_submit = Path(sys.executable).parent / "spark-submit"
    cmd = [
        str(spark_submit), "--master", "local[2]",
        # The venv's spark-defaults.conf names the venv's Python; a cluster names its own.
        "--conf", f"spark.pyspark.python={python}", "--conf", f"spark.pyspark.driver.python={python}",
        "--py-files", str(package / f"promo_roi-{VERSION}.zip"),
    ]
    done = subprocess.run([*cmd, str(application), *args], capture_output=True, text=True, cwd=str(cwd),
                          env=_submit_env(python), timeout=900)
    assert done.returncode == 0, f"{application.name} exited {done.returncode}:\n{done.stderr[-4000:]}"
    return done


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_package_holds_the_code_and_its_conf_and_builds_reproducibly(cluster_package: Path,
                                                                         tmp_path: Path) -> None:
    package = cluster_package
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
    again = build_cluster_package(tmp_path)
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


def test_spark_submit_imports_promo_roi_and_its_conf_from_the_package_outside_the_repo(
    cluster_package: Path, bare_python: Path, tmp_path_factory,
) -> None:
    package = cluster_package
    workdir = tmp_path_factory.mktemp("cluster_run")
    assert REPO not in workdir.parents and REPO not in package.parents
    # The driver and the Python workers import promo_roi from the zip, and the
    # configuration comes from inside it (relative paths: the working directory).
    (workdir / "probe.py").write_text(PROBE)
    out = _spark_submit(bare_python, package, workdir / "probe.py", [], workdir).stdout.splitlines()
    zip_name = f"promo_roi-{VERSION}.zip/promo_roi/__init__.py"
    assert [line for line in out if line.startswith("driver")] == [f"driver {package}/{zip_name}"]
    workers = [line for line in out if line.startswith("worker")]
    assert workers and all(line.endswith(zip_name) for line in workers)
    assert f"warehouse {workdir / 'warehouse'}" in out
