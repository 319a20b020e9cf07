"""A class-data-sharing archive for the JVMs the tests start (docs/tests.md, "How the suite stays fast").

Every JVM a test starts (each worker's Spark session, every job, server and Airflow task) loads and verifies
the same thousands of Spark, Delta and Hive classes from ~250 jars before it does any work: a Delta write and
read on three rows took 15 s of wall and 20 s of CPU in a fresh JVM, 11 s and 15 s with those classes mapped
from an archive (``-XX:SharedArchiveFile``, JDK 13+). The archive is made once per environment, in the
background while the first tests run, by one JVM that runs a small Spark + Delta workload
(``tests/class_archive.py workload``, spark-submitted) with ``-XX:ArchiveClassesAtExit``; it is kept under the
venv, keyed by what it depends on (the JDK, Spark's jars, the Delta jars, this file). A JVM that starts before
it is there runs without it.

The JVM only maps an archive onto the class path it was made with (the same jars, sizes and times, in the same
order) and refuses one whose class path holds a non-empty directory before the last jar it used; Spark's
launcher puts the configuration directory first. So the class path the archive is made with is prepended as
``spark.driver.extraClassPath`` (the launcher puts that first; Spark's jars come again later, unused),
in a copy of the venv's spark-defaults.conf in a directory of its own that the tests name as ``SPARK_CONF_DIR``.
A JVM with another class path (the SQL endpoint names Delta's jars itself) runs as before, without the archive;
the JVM's own messages about it are switched off. Production JVMs are not touched: on a cluster a job's JVM runs
for minutes to hours, and its jars are the cluster's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("promo_roi.tests.class_archive")

# What the JVM prints when it cannot map an archive (another class path, another JDK) goes to stdout by default:
# a job whose stdout a test reads must not get it.
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"


@dataclass(frozen=True)
class ClassArchive:
    archive: Path
    spark_conf_dir: Path
    classpath: str

    def java_options(self) -> str:
        return f"-XX:SharedArchiveFile={self.archive} {QUIET}"

    def spark_defaults_line(self) -> str:
        """The line a spark-defaults.conf needs for its JVMs to use the archive."""
        return f"spark.driver.extraClassPath {self.classpath}\n"


# Jars put at the front of the tests' class path, the ones the tests' JVMs load most classes from first (counted
# once with -Xlog:class+load in a one-off probe of a session with Delta writes and reads: spark-catalyst, then
# scala-library, spark-core, ...). A JVM looks a class or a class file up in each jar of its class path in turn, and Spark
# looks up class files all the time (its closure cleaner reads each closure's class, for every job), while the
# JVM's expansion of ``jars/*`` is the directory's listing order: spark-catalyst came 230th of 280 here. Only jars
# none of whose classes is in another jar of the class path are moved (tests/test_class_archive.py checks it), so
# every class resolves to the same jar as before; the rest keep the listing order, after them.
PROMOTED_JARS = (
    "spark-catalyst_", "scala-library-", "spark-core_", "derby-", "scala-reflect-", "spark-sql-api_",
    "io.delta_delta-spark_", "spark-sql_", "hadoop-client-api-", "log4j-core-", "jackson-databind-",
    "hive-metastore-", "datanucleus-core-", "parquet-jackson-", "janino-", "datanucleus-rdbms-", "parquet-encoding-",
    "hadoop-client-runtime-", "netty-common-", "parquet-format-structures-", "spark-common-utils_", "netty-transport-",
    "jackson-module-scala_", "hive-serde-", "jackson-core-", "log4j-api-", "spark-unsafe_", "py4j-",
    "io.delta_delta-storage-", "spark-hive_",
)


def listed_class_path(spark_home: Path, package_jars: list[Path]) -> list[Path]:
    """Spark's jars in the JVM's own order (the directory listing, as ``jars/*`` expands), then the package jars."""
    return [*(Path(entry.path) for entry in os.scandir(spark_home / "jars") if entry.name.endswith(".jar")),
            *package_jars]


def ordered_class_path(spark_home: Path, package_jars: list[Path]) -> list[Path]:
    """:func:`listed_class_path` with the :data:`PROMOTED_JARS` moved to the front in that order."""
    every = listed_class_path(spark_home, package_jars)
    promoted = [jar for prefix in PROMOTED_JARS for jar in every if jar.name.startswith(prefix)]
    return [*promoted, *(jar for jar in every if jar not in promoted)]


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def _fingerprint(paths: list[Path]) -> list[list]:
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]


def _java_version() -> str:
    """The JDK Spark's launcher runs (JAVA_HOME first, as bin/spark-class does)."""
    java = Path(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else "java"
    try:
        done = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60)
    except OSError as error:
        return f"unknown: {error}"
    return done.stderr.strip()


def _key(spark_home: Path, package_jars: list[Path], short_jvm_options: str, classpath: str) -> str:
    jars = sorted((spark_home / "jars").glob("*.jar"))
    defaults = spark_home / "conf" / "spark-defaults.conf"
    parts = {
        "java": _java_version(), "spark_jars": _fingerprint(jars), "package_jars": _fingerprint(package_jars),
        "defaults": defaults.read_text() if defaults.is_file() else "", "options": short_jvm_options,
        "classpath": classpath,
        "workload": Path(__file__).read_text(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _package_jars(store: Path) -> list[Path]:
    """The jars of the local profile's ``spark.jvm_packages`` (Spark's own resolver, a few seconds), remembered
    in ``store`` while they exist."""
    from promo_roi.config import load_config
    from promo_roi.sql_endpoint import resolve_package_jars

    config = load_config(profile="local", env={})
    packages = ",".join(config.spark.jvm_packages)
    remembered = store / "package_jars.json"
    if remembered.is_file():
        saved = json.loads(remembered.read_text())
        if saved.get("packages") == packages and all(Path(j).is_file() for j in saved["jars"]):
            return [Path(j) for j in saved["jars"]]
    jars = resolve_package_jars(config)
    store.mkdir(parents=True, exist_ok=True)
    remembered.write_text(json.dumps({"packages": packages, "jars": jars}))
    return [Path(j) for j in jars]


def _write_conf_dir(conf_dir: Path, spark_home: Path, classpath: str) -> None:
    conf_dir.mkdir(parents=True, exist_ok=True)
    defaults = spark_home / "conf" / "spark-defaults.conf"
    text = defaults.read_text() if defaults.is_file() else ""
    text += ("\n# tests/class_archive.py: the class path the tests' class-data archive was made with, first.\n"
             f"spark.driver.extraClassPath {classpath}\n")
    target = conf_dir / "spark-defaults.conf"
    if not target.is_file() or target.read_text() != text:
        staged = conf_dir / f".spark-defaults.conf.{os.getpid()}"
        staged.write_text(text)
        staged.replace(target)


def ensure(short_jvm_options: str, session_overrides: list[str], build: bool) -> ClassArchive | None:
    """The archive for this environment: its path, class path and configuration directory, whether or not the
    file is there yet (a JVM started before it is runs without it). Where ``build`` (the pytest process that
    starts the run) and the file is missing, a process in the background makes it (about 40 s of one core, once
    per environment) while the first tests run: on a 2-core machine a synchronous build held both workers back
    for as long. None where there is none to use (the Delta jars do not resolve, or no process has resolved them
    yet)."""
    spark_home = _spark_home()
    store = Path(sys.prefix) / "class-archive"
    try:
        package_jars = _package_jars(store) if build or (store / "package_jars.json").is_file() else None
    except (OSError, RuntimeError) as error:
        log.warning("no class-data archive for the test JVMs: %s", error)
        return None
    if package_jars is None:
        return None
    classpath = os.pathsep.join(map(str, ordered_class_path(spark_home, package_jars)))
    key = _key(spark_home, package_jars, short_jvm_options, classpath)
    found = ClassArchive(store / f"{key}.jsa", store / f"spark-conf-{key}", classpath)
    _write_conf_dir(found.spark_conf_dir, spark_home, classpath)
    if build and not found.archive.is_file():
        builder_log = store / f"{key}.log"
        with builder_log.open("w") as out:
            subprocess.Popen([sys.executable, __file__, "build", json.dumps({
                "archive": str(found.archive), "spark_conf_dir": str(found.spark_conf_dir),
                "short_jvm_options": short_jvm_options, "session_overrides": session_overrides})],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        log.warning("making the test JVMs' class-data archive %s in the background (log: %s)", found.archive,
                    builder_log)
    return found


def _build(archive: Path, spark_conf_dir: Path, short_jvm_options: str, session_overrides: list[str]) -> None:
    """One JVM runs the workload below and writes the classes it loaded at its exit; the archive appears whole
    (renamed into place) or not at all, and older archives go."""
    started = time.monotonic()
    staged = archive.with_name(f".{archive.stem}.{os.getpid()}.jsa")
    with tempfile.TemporaryDirectory(prefix="class-archive-") as work:
        env = {**os.environ, "SPARK_CONF_DIR": str(spark_conf_dir),
               "SPARK_SUBMIT_OPTS": f"{short_jvm_options} -XX:ArchiveClassesAtExit={staged} {QUIET}",
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        done = subprocess.run(
            [str(Path(sys.executable).parent / "spark-submit"), __file__, "workload", work, *session_overrides],
            env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not staged.is_file():
        staged.unlink(missing_ok=True)
        print(f"no class-data archive (exit {done.returncode}):\n{done.stderr[-3000:]}")
        return
    staged.replace(archive)
    for old in [*archive.parent.glob("*.jsa"), *archive.parent.glob("*.log")]:
        if old.stem != archive.stem and not old.name.startswith("."):  # not another build's staged file
            old.unlink(missing_ok=True)
    for old in archive.parent.glob("spark-conf-*"):
        if old != spark_conf_dir:
            shutil.rmtree(old, ignore_errors=True)
    print(f"made {archive} in {time.monotonic() - started:.0f} s")


def _workload(work: Path, overrides: list[str]) -> None:
    """What most test JVMs do, on a few rows: a session with the tests' settings and its Derby catalogue, Delta
    writes (overwrite, partitioned replace, merge, delete), reads by path and version, joins, aggregates, a
    window, pandas in and out (Arrow), a pandas function on a Python worker."""
    import datetime as dt

    import pandas as pd
    from delta.tables import DeltaTable
    from promo_roi.config import load_config
    from promo_roi.session import build_spark_session
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    config = load_config(profile="local", overrides=[*overrides, f"warehouse.root={work / 'warehouse'}"], env={})
    spark = build_spark_session(config, app_name="class-archive")
    path = str(work / "table")
    frame = pd.DataFrame({"household_id": [1, 2, 3, 4], "campaign_id": [1, 1, 2, 2], "spend": [1.0, 2.5, 3.0, 0.5],
                          "as_of_date": [dt.date(2017, 7, 1)] * 4})
    df = spark.createDataFrame(frame)
    df.write.format("delta").partitionBy("as_of_date").mode("overwrite").save(path)
    df.withColumn("as_of_date", F.lit(dt.date(2017, 7, 2))).write.format("delta").mode("overwrite") \
        .option("replaceWhere", "as_of_date = DATE'2017-07-02'").save(path)
    table = DeltaTable.forPath(spark, path)
    table.alias("t").merge(df.withColumn("spend", F.col("spend") * 2).alias("s"),
                           "t.household_id = s.household_id AND t.as_of_date = s.as_of_date") \
        .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
    table.delete("household_id = 4")
    table.history().collect()
    spark.sql(f"CREATE TABLE IF NOT EXISTS gold.class_archive USING DELTA LOCATION '{path}'")
    spark.sql("SELECT campaign_id, count(*) FROM gold.class_archive GROUP BY campaign_id").collect()
    read = spark.read.format("delta").option("versionAsOf", 1).load(path)
    window = Window.partitionBy("campaign_id").orderBy(F.desc("spend"))
    joined = (read.join(df.select("household_id", F.col("spend").alias("before")), "household_id", "left")
              .withColumn("rank", F.row_number().over(window))
              .groupBy("campaign_id").agg(F.sum("spend"), F.avg("before"), F.max("rank"),
                                          F.percentile_approx("spend", 0.5)))
    joined.toPandas()
    read.mapInPandas(lambda batches: (b.assign(spend=b.spend + 1) for b in batches), read.schema).count()
    read.cache().count()
    spark.stop()


if __name__ == "__main__":
    if sys.argv[1] == "build":
        args = json.loads(sys.argv[2])
        _build(Path(args["archive"]), Path(args["spark_conf_dir"]), args["short_jvm_options"],
               args["session_overrides"])
    else:  # "workload", under spark-submit
        _workload(Path(sys.argv[2]), sys.argv[3:])
