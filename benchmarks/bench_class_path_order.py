"""What the order of a test JVM's class path costs: the same jars in the JVM's own order (Spark's ``jars/*`` as
the directory lists them, then the Delta jars) and with the jars most classes come from first
(``tests/class_archive.py``'s ``PROMOTED_JARS``, what every JVM the tests start gets).

    .venv/bin/python benchmarks/bench_class_path_order.py [--repeats 2] [--writes 15]

Each run is one ``spark-submit`` of a probe that builds the project's SparkSession with the tests' settings
(``tests/conftest.py``: local[2], one shuffle partition, no code generation, C1 only) and then, ``--writes``
times, replaces one run date's slice of ``gold.campaign_roi_forecast`` (13 generated rows) through
``promo_roi.delta_io`` and reads it back to pandas, grouped: what the publication and feature tests do most.
Both variants name their class path in a ``spark.driver.extraClassPath`` of their own configuration directory,
so that the order is the only difference; neither uses the class-data archive. The variants alternate.

Data: none (generated rows, an empty warehouse in a temporary directory). Prints wall and CPU seconds
(user + system of spark-submit and its children) per run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The tests' settings and class path (tests/conftest.py, tests/class_archive.py), here and in the probe.
sys.path.insert(0, str(REPO / "tests"))


def probe(warehouse: str, writes: int) -> None:
    from conftest import session_overrides
    from pyspark.sql import functions as F

    from promo_roi import delta_io
    from promo_roi.config import load_config
    from promo_roi.session import build_spark_session
    from promo_roi.tables import CAMPAIGN_ROI_FORECAST

    config = load_config(profile="local", overrides=session_overrides(warehouse), env={})
    spark = build_spark_session(config, app_name="bench-class-path-order")
    rows = spark.range(13).select(*(F.lit(None).cast(f.dataType).alias(f.name)
                                    for f in CAMPAIGN_ROI_FORECAST.struct.fields))
    for i in range(writes):
        run_date = dt.date(2017, 7, 1) + dt.timedelta(days=i)
        frame = rows.withColumn("run_date", F.lit(run_date)).withColumn("run_id", F.lit(f"run-{i}"))
        delta_io.replace_date_slice(spark, frame, CAMPAIGN_ROI_FORECAST, config.warehouse, "run_date", run_date)
        read = delta_io.read_table(spark, CAMPAIGN_ROI_FORECAST, config.warehouse)
        read.filter(F.col("run_date") == run_date).groupBy("run_id").count().toPandas()
    spark.stop()


def class_paths() -> dict[str, str]:
    """The two orders of the same jars."""
    import class_archive

    spark_home = class_archive._spark_home()
    package_jars = class_archive._package_jars(Path(sys.prefix) / "class-archive")
    orders = {"listing order": class_archive.listed_class_path,
              "promoted jars first": class_archive.ordered_class_path}
    return {name: os.pathsep.join(map(str, order(spark_home, package_jars))) for name, order in orders.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--writes", type=int, default=15)
    parser.add_argument("--probe", nargs=2, metavar=("WAREHOUSE", "WRITES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.probe[0], int(args.probe[1]))
        return 0
    from conftest import SHORT_JVM_OPTIONS

    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "SPARK_SUBMIT_OPTS": SHORT_JVM_OPTIONS, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("SPARK_CONF_DIR", None)
    with tempfile.TemporaryDirectory() as confs:
        variants = {}
        for name, class_path in class_paths().items():
            conf_dir = Path(confs) / name.replace(" ", "-")
            conf_dir.mkdir()
            (conf_dir / "spark-defaults.conf").write_text(f"spark.driver.extraClassPath {class_path}\n")
            variants[name] = {**env, "SPARK_CONF_DIR": str(conf_dir)}
        print(f"| class path | run | wall s | CPU s |  ({args.writes} writes and reads)\n|---|---:|---:|---:|")
        for run in range(1, args.repeats + 1):
            for name, variant_env in variants.items():
                wall, cpu = _timed(bin_dir, args.writes, variant_env)
                print(f"| {name} | {run} | {wall:.1f} | {cpu:.1f} |", flush=True)
    return 0


def _timed(bin_dir: Path, writes: int, env: dict[str, str]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([str(bin_dir / "spark-submit"), __file__, "--probe", tmp, str(writes)], cwd=tmp, env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


if __name__ == "__main__":
    raise SystemExit(main())
