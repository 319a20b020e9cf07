"""Delta Lake reads and writes: every table write is one Delta transaction.

This module is the only door to Delta from Spark (the ``deltalake`` reader of
``promo-roi tables``/``sql`` needs no JVM and stays apart):

- whole-table snapshots: ``overwrite_table`` (mode overwrite);
- a date's slice: ``replace_slice`` (mode overwrite + replaceWhere), so a rerun
  replaces exactly that slice and never duplicates it;
- keyed tables: ``merge_by_keys`` (the merge chain), ``insert_missing``
  (rows whose keys are new; existing rows are never touched) and
  ``insert_or_refresh`` (new rows, and chosen columns of chosen existing rows);
- ``compare_and_set``: inserts one keyed row unless another writer holds the
  key, and says who won;
- ``delete_where``: removes the rows matching a condition;
- ``slice_rows``: the rows of a slice just replaced, from its commit's metrics.

Retries never rely on txnAppId/txnVersion: a retry with new data would be
skipped silently.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import weakref
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from delta.tables import DeltaTable
from py4j.protocol import Py4JJavaError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from promo_roi.config import WarehouseConfig
from promo_roi.tables import TableSpec
from promo_roi.validation import validate_presence_of_columns

log = logging.getLogger(__name__)


# Called as hook(operation, table full name) before every commit this module makes. Empty in production;
# the fault-injection tests add one that fails at the n-th commit of a job, which is what a kill between
# two commits leaves (each commit itself is atomic).
BEFORE_COMMIT: list[Callable[[str, str], None]] = []


def _before_commit(operation: str, spec: TableSpec) -> None:
    for hook in BEFORE_COMMIT:
        hook(operation, spec.full_name)


def table_path(warehouse: WarehouseConfig, spec: TableSpec) -> str:
    return warehouse.table_path(spec.schema, spec.name)


# Tables already checked by ensure_table, per session: the checks (Delta log,
# catalog, DESCRIBE DETAIL, schema) cost four metadata round trips, and a job
# writes the same table many times.
_ENSURED: "weakref.WeakKeyDictionary[SparkSession, set[str]]" = weakref.WeakKeyDictionary()


def ensure_table(spark: SparkSession, spec: TableSpec, warehouse: WarehouseConfig) -> None:
    """Creates the Delta table at <warehouse>/<schema>/<table> and registers its name.

    The path is the source of truth: jobs write and read by path, the catalog
    name is for analysts. A name already registered is left as it is. Checked
    once per session and path (a table removed from under a running session is
    recreated by the next write, without its catalog name until the next run).
    """
    path = table_path(warehouse, spec)
    ensured = _ENSURED.setdefault(spark, set())
    if path in ensured:
        return
    _create_or_migrate(spark, spec, path)
    ensured.add(path)


def _create_or_migrate(spark: SparkSession, spec: TableSpec, path: str) -> None:
    if not DeltaTable.isDeltaTable(spark, path):
        (
            DeltaTable.createIfNotExists(spark)
            .location(path)
            .addColumns(spec.struct)
            .partitionedBy(*spec.partition_by)
            .comment(spec.description or spec.full_name)
            .execute()
        )
    else:
        _add_declared_columns(spark, spec, path)
    if not spark.catalog.tableExists(spec.full_name):
        spark.sql(f"CREATE TABLE IF NOT EXISTS {spec.full_name} USING DELTA LOCATION '{path}'")
        return
    registered = spark.sql(f"DESCRIBE DETAIL {spec.full_name}").first()["location"]
    if registered.removeprefix("file:").rstrip("/") != path.removeprefix("file:").rstrip("/"):
        # Jobs still write to `path`; SQL readers of the name would see the other location.
        log.warning("%s is registered at %s, not at %s: catalog readers see the former",
                    spec.full_name, registered, path)


class SchemaMismatchError(RuntimeError):
    """A table on disk cannot be migrated to its declared schema by adding columns."""


def _add_declared_columns(spark: SparkSession, spec: TableSpec, path: str) -> None:
    """Adds declared columns the table lacks (a nullable addition is a safe migration), with their
    descriptions as comments, and brings the other columns' comments in line with the declaration.

    A column on disk that is no longer declared, or one whose type changed, is
    an error naming them: dropping or retyping data is a decision for a person.
    """
    stored = spark.read.format("delta").load(path).schema.fields
    current = {f.name: f.dataType for f in stored}
    comments = {f.name: f.metadata.get("comment") for f in stored}
    declared = {f.name: f.dataType for f in spec.struct.fields}
    stale = sorted(set(current) - set(declared))
    retyped = sorted(c for c in current if c in declared and current[c] != declared[c])
    if stale or retyped:
        raise SchemaMismatchError(
            f"{spec.full_name} at {path} does not match its declaration: "
            + (f"undeclared column(s) {', '.join(stale)}; " if stale else "")
            + (f"changed type(s) {', '.join(retyped)}; " if retyped else "")
            + "migrate or remove the table (derived tables can be rebuilt by their job)"
        )
    missing = [f for f in spec.struct.fields if f.name not in current]
    if missing:
        columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}{_comment_clause(f)}" for f in missing)
        spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS ({columns})")
        log.info("%s: added declared column(s) %s", spec.full_name, ", ".join(f.name for f in missing))
    _describe_columns(spark, spec, path, comments)


def _sql_text(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _comment_clause(field) -> str:
    comment = field.metadata.get("comment")
    return f" COMMENT {_sql_text(comment)}" if comment else ""


def _describe_columns(spark: SparkSession, spec: TableSpec, path: str, comments: dict[str, str | None]) -> None:
    """Sets the declared description as the comment of each column whose stored comment differs (a table
    created before the catalogue had descriptions, or one whose description changed): once per change."""
    stale = [f for f in spec.struct.fields
             if f.name in comments and f.metadata.get("comment") and comments[f.name] != f.metadata["comment"]]
    for f in stale:
        spark.sql(f"ALTER TABLE delta.`{path}` ALTER COLUMN `{f.name}` COMMENT {_sql_text(f.metadata['comment'])}")
    if stale:
        log.info("%s: described %d column(s)", spec.full_name, len(stale))


def conform(df: DataFrame, spec: TableSpec) -> DataFrame:
    """The declared columns in declared order and types; a missing column is an error."""
    validate_presence_of_columns(df, spec.columns, spec.full_name)
    return df.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in spec.struct.fields])


def _writer(df: DataFrame, spec: TableSpec):
    return conform(df, spec).write.format("delta").mode("overwrite")


def overwrite_table(spark: SparkSession, df: DataFrame, spec: TableSpec, warehouse: WarehouseConfig) -> int:
    """Replaces the whole table in one commit; returns the new table version."""
    ensure_table(spark, spec, warehouse)
    _before_commit("overwrite", spec)
    _writer(df, spec).save(table_path(warehouse, spec))
    return table_version(spark, spec, warehouse)


def replace_slice(
    spark: SparkSession,
    df: DataFrame,
    spec: TableSpec,
    warehouse: WarehouseConfig,
    predicate: str,
) -> int:
    """Replaces the rows matching ``predicate`` (e.g. one as_of_date) in one commit.

    Delta checks that every written row matches the predicate, so a slice can
    never spill into another date.
    """
    ensure_table(spark, spec, warehouse)
    _before_commit("replace_slice", spec)
    _writer(df, spec).option("replaceWhere", predicate).save(table_path(warehouse, spec))
    return table_version(spark, spec, warehouse)


def date_slice(date_column: str, date: dt.date) -> str:
    """The predicate of one date's slice, as :func:`replace_date_slice` writes it."""
    return f"{date_column} = DATE'{date.isoformat()}'"


def replace_date_slice(
    spark: SparkSession,
    df: DataFrame,
    spec: TableSpec,
    warehouse: WarehouseConfig,
    date_column: str,
    date: dt.date,
) -> int:
    return replace_slice(spark, df, spec, warehouse, date_slice(date_column, date))


def slice_rows(spark: SparkSession, spec: TableSpec, warehouse: WarehouseConfig, version: int,
               predicate: str) -> int:
    """The rows of the slice ``predicate`` selects, as commit ``version`` left the table.

    Where ``version`` is :func:`replace_slice`'s write of that very predicate, the commit's own metrics say
    it (:func:`written_slice_rows`) and nothing is read; otherwise (another writer's commit, metrics switched
    off) the slice is counted at that version.
    """
    rows = written_slice_rows(spark, table_path(warehouse, spec), version, predicate)
    if rows is not None:
        return rows
    return read_table_at(spark, spec, warehouse, version).filter(predicate).count()


def written_slice_rows(spark: SparkSession, path: str, version: int, predicate: str) -> int | None:
    """The rows a replaceWhere write of ``predicate`` committed as ``version`` of the table at ``path``, from
    the commit's ``operationMetrics`` (what ``DESCRIBE HISTORY`` shows); None where that commit is not such a
    write or carries no metrics.

    A replaceWhere write removes every row matching the predicate, writes the new rows (all of which match it:
    Delta checks) and copies the rest of each file it rewrote; ``numOutputRows`` counts the rows it wrote,
    copies included, and ``numCopiedRows`` the copies, so the slice holds the difference. Read from the
    commit file through Hadoop's file system (any store Delta writes to), one small read instead of a query
    over the table; tests/test_delta_io.py holds it to a count.
    """
    info = _commit_info(spark, path, version)
    if info is None or info.get("operation") != "WRITE":
        return None
    parameters, metrics = info.get("operationParameters") or {}, info.get("operationMetrics") or {}
    if parameters.get("mode") != "Overwrite" or parameters.get("predicate") != predicate:
        return None
    if "numOutputRows" not in metrics:
        return None
    return int(metrics["numOutputRows"]) - int(metrics.get("numCopiedRows", 0))


def _commit_info(spark: SparkSession, path: str, version: int) -> dict[str, Any] | None:
    """The commitInfo action of commit ``version`` of the Delta table at ``path``; None where the commit file
    cannot be read (a log cleaned up, a table whose commits live elsewhere)."""
    jvm = spark._jvm
    commit = jvm.org.apache.hadoop.fs.Path(f"{path.rstrip('/')}/_delta_log/{int(version):020d}.json")
    try:
        stream = commit.getFileSystem(spark._jsc.hadoopConfiguration()).open(commit)
        try:
            text = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()
    except Py4JJavaError as error:
        log.info("commit %s of %s not read (%s): its rows are counted", version, path, error.java_exception)
        return None
    for line in text.splitlines():
        if '"commitInfo"' in line:
            return json.loads(line).get("commitInfo")
    return None


def _merge(spark: SparkSession, df: DataFrame, spec: TableSpec, warehouse: WarehouseConfig, update: bool,
           update_when: str | None = None, update_columns: Sequence[str] | None = None) -> int:
    if not spec.keys:
        raise ValueError(f"{spec.full_name} declares no keys to merge on")
    ensure_table(spark, spec, warehouse)
    _before_commit("merge", spec)
    condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in spec.keys)
    merge = (
        DeltaTable.forPath(spark, table_path(warehouse, spec))
        .alias("t")
        .merge(conform(df, spec).alias("s"), condition)
    )
    if update and update_columns:
        merge = merge.whenMatchedUpdate(condition=update_when, set={c: f"s.`{c}`" for c in update_columns})
    elif update:
        merge = merge.whenMatchedUpdateAll(condition=update_when)
    merge.whenNotMatchedInsertAll().execute()
    return table_version(spark, spec, warehouse)


def merge_forward(spark: SparkSession, df: DataFrame, spec: TableSpec, warehouse: WarehouseConfig,
                  column: str) -> int:
    """Upserts ``df`` on the spec's keys in one commit, replacing a matched row only when the new row's
    ``column`` is greater: a compare-and-set that only moves forward (Delta's optimistic concurrency makes
    two concurrent merges of the same key conflict instead of both winning). Returns the new version."""
    return _merge(spark, df, spec, warehouse, update=True, update_when=f"s.`{column}` > t.`{column}`")


def merge_by_keys(spark: SparkSession, df: DataFrame, spec: TableSpec, warehouse: WarehouseConfig) -> int:
    """Upserts ``df`` on the spec's keys in one commit; returns the new table version."""
    return _merge(spark, df, spec, warehouse, update=True)


def insert_missing(spark: SparkSession, df: DataFrame, spec: TableSpec, warehouse: WarehouseConfig) -> int:
    """Inserts the rows of ``df`` whose keys the table does not hold yet, in one commit; existing rows are
    never changed. Returns the new table version."""
    return _merge(spark, df, spec, warehouse, update=False)


def compare_and_set(spark: SparkSession, row: DataFrame, spec: TableSpec, warehouse: WarehouseConfig,
                    owner_column: str) -> bool:
    """Inserts the one-row ``row`` if its key is absent; True when the table then holds it (this writer's
    ``owner_column`` value under that key), False when another writer holds the key.

    Delta's optimistic concurrency makes two concurrent inserts of one key conflict: the loser's merge fails
    or finds the winner's row. Either way the table, re-read, says who won."""
    wanted = row.first()
    if wanted is None:
        raise ValueError(f"compare_and_set on {spec.full_name} needs one row")
    failure: Exception | None = None
    try:
        insert_missing(spark, row, spec, warehouse)
    except Exception as exc:  # a Delta conflict (ConcurrentAppendException and kin) arrives through py4j
        failure = exc
        log.info("compare_and_set on %s: merge failed (%s); reading who holds the key", spec.full_name,
                 str(exc).splitlines()[0][:200])
    held = read_table(spark, spec, warehouse)
    for key in spec.keys:
        held = held.filter(F.col(key) == F.lit(wanted[key]))
    owners = [r[0] for r in held.select(owner_column).collect()]
    if not owners:  # the merge failed for another reason than a concurrent writer
        raise failure or RuntimeError(f"compare_and_set on {spec.full_name}: nothing holds the key")
    return owners == [wanted[owner_column]]


def insert_or_refresh(spark: SparkSession, df: DataFrame, spec: TableSpec, warehouse: WarehouseConfig,
                      columns: Sequence[str], refresh_when: str) -> int:
    """Inserts the rows of ``df`` whose keys are new and, in the same commit, sets ``columns`` of existing
    rows from ``df`` where ``refresh_when`` (SQL over ``t``, the table, and ``s``, ``df``) holds; every other
    column of an existing row is left alone. Returns the new table version."""
    return _merge(spark, df, spec, warehouse, update=True, update_when=refresh_when, update_columns=columns)


def delete_where(spark: SparkSession, spec: TableSpec, warehouse: WarehouseConfig, condition) -> int:
    """Deletes the rows matching ``condition`` (a Column or SQL text) in one commit; returns the version."""
    _before_commit("delete", spec)
    DeltaTable.forPath(spark, table_path(warehouse, spec)).delete(condition)
    return table_version(spark, spec, warehouse)


def read_table(spark: SparkSession, spec: TableSpec, warehouse: WarehouseConfig) -> DataFrame:
    return spark.read.format("delta").load(table_path(warehouse, spec))


def read_table_at(spark: SparkSession, spec: TableSpec, warehouse: WarehouseConfig, version: int) -> DataFrame:
    """The table as it was at Delta ``version`` (time travel)."""
    return spark.read.format("delta").option("versionAsOf", int(version)).load(table_path(warehouse, spec))


def table_version(spark: SparkSession, spec: TableSpec, warehouse: WarehouseConfig) -> int:
    """The table's latest committed Delta version.

    Read from the table's DeltaLog brought up to date (a listing of ``_delta_log``, the snapshot the next
    read uses anyway), not from ``DeltaTable.history(1)``: history turns commit records into a DataFrame
    through Scala reflection and runs a query for one number, and every write here asks for its version
    (``benchmarks/bench_delta_version.py`` times both). ``DeltaLog`` is Delta's own class, not its public
    Python API: the pinned delta-spark (4.0.0) is what tests/test_delta_io.py checks it against.
    """
    return latest_version(spark, table_path(warehouse, spec))


def latest_version(spark: SparkSession, path: str) -> int:
    """The latest committed version of the Delta table at ``path`` (see :func:`table_version`)."""
    delta_log = spark._jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    # update()'s three parameters have Scala defaults, which py4j cannot apply: pass Delta's own.
    defaults = (getattr(delta_log, f"update$default${i}")() for i in (1, 2, 3))
    return int(delta_log.update(*defaults).version())


def history_version(spark: SparkSession, path: str) -> int:
    """The latest version as ``DESCRIBE HISTORY`` gives it (what :func:`latest_version` replaced; the
    benchmark and the tests compare the two)."""
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def table_exists(spark: SparkSession, spec: TableSpec, warehouse: WarehouseConfig) -> bool:
    return DeltaTable.isDeltaTable(spark, table_path(warehouse, spec))


def _plain(value: Any) -> Any:
    # numpy scalars and pandas timestamps -> Python; NaN and NaT -> null (Spark stores "no value", not a
    # NaN to trip over). Records often come from DataFrame.to_dict, which keeps pandas' own types.
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).to_pydatetime()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def frame_of_records(spark: SparkSession, records: Iterable[Mapping[str, Any]], spec: TableSpec,
                     extra: Mapping[str, Any] | None = None) -> DataFrame:
    """Driver-side records (dicts; ``extra`` added to each) as a DataFrame of ``spec``'s schema.

    Missing columns become null, NaN becomes null, numpy scalars become Python values.
    """
    extra = dict(extra or {})
    rows = [tuple(_plain({**extra, **r}.get(f.name)) for f in spec.struct.fields) for r in records]
    return spark.createDataFrame(rows, spec.struct)
