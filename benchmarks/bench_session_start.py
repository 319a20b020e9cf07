"""What a job JVM costs before it does any work: ``spark-submit`` of a probe that builds the project's
SparkSession and runs ``SELECT 1``, with the embedded Derby Hive metastore and with the in-memory catalog.

    .venv/bin/python benchmarks/bench_session_start.py [--repeats 2] [--class-archive]

``--class-archive`` also starts each JVM with the tests' class-data archive (tests/class_archive.py, made first
where missing), beside the same JVM without it: both with the archive's class path and configuration directory,
so that the archive is the only difference.

Data: none (an empty warehouse in a temporary directory). The JVMs get the tests' options
(``SPARK_SUBMIT_OPTS=-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m``, tests/conftest.py), as every
job a test starts does. Prints wall and CPU seconds (user + system of spark-submit and its children) per run.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHORT_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"


def probe(warehouse: str, catalog: str) -> None:
    from promo_roi.config import load_config
    from promo_roi.session import build_spark_session

    config = load_config(overrides=[f"warehouse.root={warehouse}", f"spark.catalog={catalog}",
                                     "spark.master=local[2]"], env={})
    build_spark_session(config).sql("SELECT 1").collect()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--class-archive", action="store_true",
                        help="each JVM without and with the tests' class-data archive")
    parser.add_argument("--probe", nargs=2, metavar=("WAREHOUSE", "CATALOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(*args.probe)
        return 0
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "SPARK_SUBMIT_OPTS": SHORT_JVM_OPTIONS, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    variants = {"": env}
    if args.class_archive:
        archive = _class_archive()
        same_class_path = {**env, "SPARK_CONF_DIR": str(archive.spark_conf_dir)}
        variants = {" without the archive": same_class_path, " with the archive": {
            **same_class_path, "SPARK_SUBMIT_OPTS": f"{SHORT_JVM_OPTIONS} {archive.java_options()}"}}
    print("| catalog | run | wall s | CPU s |\n|---|---:|---:|---:|")
    for catalog in ("hive", "in-memory"):
        for run in range(1, args.repeats + 1):
            for variant, variant_env in variants.items():
                wall, cpu = _timed(bin_dir, catalog, variant_env)
                print(f"| {catalog}{variant} | {run} | {wall:.1f} | {cpu:.1f} |")
    return 0


def _timed(bin_dir: Path, catalog: str, env: dict[str, str]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([str(bin_dir / "spark-submit"), __file__, "--probe", tmp, catalog], cwd=tmp, env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _class_archive():
    """The tests' archive (tests/class_archive.py), waiting for it where it is being made."""
    sys.path.insert(0, str(REPO / "tests"))
    import class_archive
    from conftest import SESSION_OVERRIDES  # the workload runs with the tests' session settings

    archive = class_archive.ensure(SHORT_JVM_OPTIONS, list(SESSION_OVERRIDES), build=True)
    if archive is None:
        raise SystemExit("no class-data archive: the Delta jars did not resolve")
    deadline = time.monotonic() + 600
    while not archive.archive.is_file():
        if time.monotonic() > deadline:
            raise SystemExit(f"{archive.archive} was not made in 10 minutes")
        time.sleep(2)
    return archive


if __name__ == "__main__":
    raise SystemExit(main())
