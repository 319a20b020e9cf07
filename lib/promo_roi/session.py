"""The one place a SparkSession is built: Delta Lake, the catalog, the warehouse."""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from promo_roi.config import METASTORE_PASSWORD_ENV, AppConfig

log = logging.getLogger(__name__)


def _is_local_path(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file:")


def spark_settings(config: AppConfig) -> dict[str, str]:
    """Every spark.* setting the session needs, derived from the config."""
    sc = config.spark
    settings: dict[str, str] = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.jars.packages": ",".join(sc.jvm_packages),
        "spark.sql.shuffle.partitions": str(sc.shuffle_partitions),
        "spark.sql.session.timeZone": sc.session_time_zone,
        "spark.sql.warehouse.dir": config.warehouse.root,
        "spark.sql.catalogImplementation": sc.catalog,
        # Tables are registered with explicit locations; the schema check on
        # every write is ours (promo_roi.tables), so keep Delta strict.
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
    }
    if sc.catalog == "hive":
        metastore_url = sc.metastore_url
        if metastore_url is None:
            if not _is_local_path(config.warehouse.root):
                raise ValueError(
                    "spark.metastore_url must be set when the warehouse is not on a local disk"
                )
            # Embedded Derby beside the tables, never in the working directory.
            db = Path(config.warehouse.root.removeprefix("file:")) / "metastore_db"
            metastore_url = f"jdbc:derby:;databaseName={db};create=true"
        settings["spark.hadoop.javax.jdo.option.ConnectionURL"] = metastore_url
        password = os.environ.get(METASTORE_PASSWORD_ENV)
        if password:
            # From the environment, never argv or a config file; Spark redacts keys matching "password".
            settings["spark.hadoop.javax.jdo.option.ConnectionPassword"] = password
        if metastore_url.startswith("jdbc:postgresql:"):
            # DataNucleus does not infer the driver from the URL (scripts/metastore_postgres.sh installs the jar).
            settings["spark.hadoop.javax.jdo.option.ConnectionDriverName"] = "org.postgresql.Driver"
        settings["spark.hadoop.datanucleus.schema.autoCreateAll"] = "true"
        settings["spark.hadoop.hive.metastore.schema.verification"] = "false"
    if sc.master:
        settings["spark.master"] = sc.master
    if sc.driver_memory:
        settings["spark.driver.memory"] = sc.driver_memory
    settings.update(sc.extra)
    return settings


_MEMORY = re.compile(r"^(\d+)([kmgt]?)b?$", re.IGNORECASE)
_MEMORY_UNITS = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def memory_bytes(value: str) -> int | None:
    """A Spark memory string (``512m``, ``8g``; a bare number is MiB, as for spark.driver.memory) in bytes;
    None where it is not one."""
    match = _MEMORY.match(value.strip())
    if match is None:
        return None
    return int(match.group(1)) * _MEMORY_UNITS[(match.group(2) or "m").lower()]


# The JVM reports a little less than -Xmx as its maximum heap (one survivor space is left out).
HEAP_TOLERANCE = 0.8


def driver_memory_shortfall(configured: str | None, max_heap_bytes: int) -> str | None:
    """Why the driver has less memory than ``spark.driver_memory`` asks for, or None where it has enough (or
    asks for nothing). Under spark-submit the driver JVM starts before the session is built, so a memory
    set in the session is silently ignored (Spark's own documentation): the driver keeps spark-submit's
    default of 1 GB."""
    wanted = memory_bytes(configured) if configured else None
    if wanted is None or max_heap_bytes >= HEAP_TOLERANCE * wanted:
        return None
    return (f"spark.driver_memory is {configured} but the driver JVM has {max_heap_bytes / 2**30:.1f} GiB of "
            f"heap: the JVM started before the session (spark-submit), so pass --driver-memory {configured} "
            "to spark-submit or set spark.driver.memory in spark-defaults.conf")


def driver_max_heap_bytes(spark: SparkSession) -> int:
    """The driver JVM's maximum heap (what it really has, whatever the configuration asked for)."""
    return int(spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory())


def build_spark_session(config: AppConfig, app_name: str | None = None) -> SparkSession:
    """Builds (or returns the running) SparkSession for ``config``.

    Under ``spark-submit`` the JVM already exists, so the Delta jars must come
    from ``--packages`` or spark-defaults.conf (scripts/setup.sh writes one
    into the venv); under plain ``python`` the builder passes them itself.
    """
    builder = SparkSession.builder.appName(app_name or config.spark.app_name)
    for key, value in spark_settings(config).items():
        builder = builder.config(key, value)
    if config.spark.catalog == "hive":
        builder = builder.enableHiveSupport()
    master = config.spark.master or ""
    if master.startswith("local") and "spark.pyspark.python" not in config.spark.extra:
        # Local Python workers (pandas UDFs, mapInPandas) must run this interpreter,
        # the one with promo_roi installed, not whatever python3 is first on PATH.
        # A SparkContext started from plain `python` takes the worker interpreter
        # from PYSPARK_PYTHON only (spark.pyspark.python is read by spark-submit).
        builder = builder.config("spark.pyspark.python", sys.executable)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    shortfall = driver_memory_shortfall(config.spark.driver_memory, driver_max_heap_bytes(spark))
    if shortfall:
        log.warning("%s", shortfall)
    ensure_schemas(spark, config)
    log.info(
        "spark session ready: master=%s warehouse=%s catalog=%s",
        spark.sparkContext.master,
        config.warehouse.root,
        config.spark.catalog,
    )
    return spark


def ensure_schemas(spark: SparkSession, config: AppConfig) -> None:
    """Creates the bronze/silver/gold schemas at <warehouse>/<schema> if missing."""
    for schema in config.warehouse.schemas:
        spark.sql(
            f"CREATE SCHEMA IF NOT EXISTS {schema} LOCATION '{config.warehouse.schema_path(schema)}'"
        )
