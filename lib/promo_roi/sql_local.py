"""SQL over the Delta tables without a JVM: DuckDB on the tables' active files.

``promo-roi sql`` uses this. Each declared table (``promo_roi.tables``) that a
query names becomes a DuckDB view ``<schema>.<table>`` over the parquet files
of the table's current Delta snapshot, listed by the ``deltalake`` package:
partition values come from the Delta log (Spark does not write them into the
files), the column order and types from the Delta schema, timestamps in the
session time zone of the jobs (``spark.session_time_zone``). The analyst views
(:mod:`promo_roi.analyst_views`) are created from the same SQL as in Spark.

Refused, with the reason, rather than read wrongly: tables whose snapshot has
deletion vectors (the parquet files still hold deleted rows) or column mapping
(physical column names differ from the schema).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from promo_roi.analyst_views import ANALYST_VIEWS, VIEW_NAMES, plan_views, view_dependencies
from promo_roi.catalogue import close_names
from promo_roi.config import AppConfig
from promo_roi.tables import TableSpec, all_specs

FILES_SCHEMA = "_promo_roi_files"


class SqlInputError(ValueError):
    """The query names something that is not available, or DuckDB refused it (parse, bind, catalog)."""


class SqlReadError(RuntimeError):
    """A table's files could not be read (removed or damaged under the query): a failure, not bad input."""


class TableUnreadableError(RuntimeError):
    """A Delta table uses a feature this reader cannot honour (deletion vectors, column mapping)."""


@dataclass
class LocalCatalog:
    con: Any  # duckdb.DuckDBPyConnection
    config: AppConfig
    specs: dict[str, TableSpec]
    tables: dict[str, str] = field(default_factory=dict)  # registered table -> location
    unavailable: dict[str, str] = field(default_factory=dict)  # declared table or view -> why not
    views: list[str] = field(default_factory=list)

    @property
    def schemas(self) -> tuple[str, ...]:
        return tuple(self.config.warehouse.schemas)


def _local_location(uri: str) -> str:
    """A local path for a ``file:`` URI (other URIs unchanged)."""
    if uri.startswith("file://"):
        return urllib.parse.unquote(urllib.parse.urlparse(uri).path)
    return uri.removeprefix("file:")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def duckdb_type(delta_type: Any) -> str:
    """The DuckDB type of a ``deltalake`` schema type (timestamps as wall-clock TIMESTAMP)."""
    kind = type(delta_type).__name__
    if kind == "PrimitiveType":
        name = delta_type.type
        simple = {
            "string": "VARCHAR", "long": "BIGINT", "integer": "INTEGER", "short": "SMALLINT", "byte": "TINYINT",
            "float": "FLOAT", "double": "DOUBLE", "boolean": "BOOLEAN", "binary": "BLOB", "date": "DATE",
            "timestamp": "TIMESTAMP", "timestamp_ntz": "TIMESTAMP",
        }
        if name in simple:
            return simple[name]
        match = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", name)
        if match:
            return f"DECIMAL({match.group(1)}, {match.group(2)})"
        raise TableUnreadableError(f"unsupported Delta type {name!r}")
    if kind == "ArrayType":
        return f"{duckdb_type(delta_type.element_type)}[]"
    if kind == "MapType":
        return f"MAP({duckdb_type(delta_type.key_type)}, {duckdb_type(delta_type.value_type)})"
    if kind == "StructType":
        fields = ", ".join(f"{_ident(f.name)} {duckdb_type(f.type)}" for f in delta_type.fields)
        return f"STRUCT({fields})"
    raise TableUnreadableError(f"unsupported Delta type {delta_type!r}")


@dataclass(frozen=True)
class ActiveFiles:
    """A Delta snapshot as DuckDB needs it: files, their partition values, the schema."""

    location: str
    version: int
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type) in Delta schema order
    partition_columns: tuple[str, ...]
    files: tuple[str, ...]
    partition_values: tuple[tuple[str | None, ...], ...]  # per file, in partition_columns order


def active_files(location: str) -> ActiveFiles:
    """The current snapshot of the Delta table at ``location`` (TableNotFoundError when there is none)."""
    from deltalake import DeltaTable

    table = DeltaTable(location)
    protocol = table.protocol()
    reader_features = set(protocol.reader_features or ())
    configuration = table.metadata().configuration or {}
    mapping = configuration.get("delta.columnMapping.mode", "none")
    if "columnMapping" in reader_features or mapping not in ("none", None):
        raise TableUnreadableError(
            f"it uses Delta column mapping (mode {mapping!r}), whose physical column names this reader "
            "does not translate; query it through the SQL endpoint (Spark)")
    if "deletionVectors" in reader_features:
        try:
            with_dvs = table.deletion_vectors().read_all().num_rows
        except Exception as exc:  # noqa: BLE001 - any failure to read them means we cannot honour them
            raise TableUnreadableError(f"its deletion vectors cannot be read ({exc})") from exc
        if with_dvs:
            raise TableUnreadableError(
                f"{with_dvs} of its files have deletion vectors (deleted rows are still in the parquet files); "
                "query it through the SQL endpoint, or purge them in Spark: REORG TABLE ... APPLY (PURGE)")
    partition_columns = tuple(table.metadata().partition_columns)
    actions = table.get_add_actions(flatten=True)
    names = list(actions.column_names)
    root = _local_location(table.table_uri).rstrip("/")
    # Add actions' paths are URIs relative to the table (Delta protocol), percent-encoded: Spark's
    # partition directory "source_table=a b%2Fc" is "source_table=a%20b%252Fc" in the log.
    paths = actions.column("path").to_pylist() if actions.num_rows else []
    files = [_local_location(p) if "://" in p else f"{root}/{urllib.parse.unquote(p)}" for p in paths]
    values = []
    for column in partition_columns:
        key = f"partition.{column}"
        values.append([None if v is None else str(v) for v in actions.column(key).to_pylist()]
                      if key in names and actions.num_rows else [None] * len(files))
    schema = table.schema()
    return ActiveFiles(
        location=location,
        version=table.version(),
        columns=tuple((f.name, duckdb_type(f.type)) for f in schema.fields),
        partition_columns=partition_columns,
        files=tuple(files),
        partition_values=tuple(zip(*values)) if partition_columns else tuple(() for _ in files),
    )


def _register_table(con, spec: TableSpec, snapshot: ActiveFiles) -> None:
    target = f"{_ident(spec.schema)}.{_ident(spec.name)}"
    if not snapshot.files:
        cols = ", ".join(f"CAST(NULL AS {t}) AS {_ident(c)}" for c, t in snapshot.columns)
        con.execute(f"CREATE OR REPLACE VIEW {target} AS SELECT {cols} LIMIT 0")
        return
    file_list = "[" + ", ".join(_literal(f) for f in snapshot.files) + "]"
    source = f"read_parquet({file_list}, filename = true, union_by_name = true)"
    physical = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    join = ""
    if snapshot.partition_columns:
        files_table = f"{_ident(FILES_SCHEMA)}.{_ident(spec.schema + '__' + spec.name)}"
        con.execute(
            f"CREATE OR REPLACE TABLE {files_table} (file VARCHAR, "
            + ", ".join(f"{_ident(c)} VARCHAR" for c in snapshot.partition_columns) + ")")
        rows = [(f, *v) for f, v in zip(snapshot.files, snapshot.partition_values)]
        for start in range(0, len(rows), 5000):
            values = ", ".join("(" + ", ".join("NULL" if x is None else _literal(x) for x in row) + ")"
                               for row in rows[start:start + 5000])
            con.execute(f"INSERT INTO {files_table} VALUES {values}")
        join = f" JOIN {files_table} p ON d.filename = p.file"
    selected = []
    for column, dtype in snapshot.columns:
        if column in snapshot.partition_columns:
            expr = f"CAST(p.{_ident(column)} AS {dtype})"
        elif column in physical:
            expr = f"CAST(d.{_ident(column)} AS {dtype})"
        else:  # declared later than every file was written: null, like Delta
            expr = f"CAST(NULL AS {dtype})"
        selected.append(f"{expr} AS {_ident(column)}")
    con.execute(f"CREATE OR REPLACE VIEW {target} AS SELECT {', '.join(selected)} FROM {source} d{join}")


_QUALIFIED = re.compile(r'(?<![\w."])"?([A-Za-z_][A-Za-z0-9_]*)"?\s*\.\s*"?([A-Za-z_][A-Za-z0-9_]*)"?')


def referenced_names(sql: str, schemas: Iterable[str]) -> list[str]:
    """``schema.name`` references in ``sql`` for the warehouse schemas (lower case, in order, once each)."""
    wanted = {s.lower() for s in schemas}
    text = re.sub(r"'(?:[^']|'')*'", "''", sql)  # no names inside string literals
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", text, flags=re.S)  # nor in comments
    found: dict[str, None] = {}
    for schema, name in _QUALIFIED.findall(text):
        if schema.lower() in wanted:
            found.setdefault(f"{schema.lower()}.{name.lower()}", None)
    return list(found)


def open_catalog(config: AppConfig, names: Iterable[str] | None = None) -> LocalCatalog:
    """A DuckDB connection with ``names`` (default: every declared table and view) registered.

    Tables and views that cannot be registered are listed in ``unavailable``
    with the reason; they never stop the others.
    """
    import duckdb
    from deltalake.exceptions import TableNotFoundError

    con = duckdb.connect(":memory:")
    con.execute(f"SET TimeZone = {_literal(config.spark.session_time_zone)}")
    for schema in (*config.warehouse.schemas, FILES_SCHEMA):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
    specs = {s.full_name: s for s in all_specs(config.features)}
    catalog = LocalCatalog(con=con, config=config, specs=specs)
    wanted = set(specs) | set(VIEW_NAMES) if names is None else view_dependencies(names)
    readable: list[str] = []
    for full_name, spec in specs.items():
        if full_name not in wanted:
            continue
        location = _local_location(config.warehouse.table_path(spec.schema, spec.name))
        try:
            snapshot = active_files(location)
            _register_table(con, spec, snapshot)
            readable += snapshot.files
        except TableNotFoundError:
            catalog.unavailable[full_name] = f"there is no Delta table at {location} yet"
            continue
        except TableUnreadableError as exc:
            catalog.unavailable[full_name] = f"{location}: {exc}"
            continue
        except Exception as exc:  # noqa: BLE001 - a broken table must not stop queries on the others
            catalog.unavailable[full_name] = f"{location} cannot be read: {type(exc).__name__}: {exc}"
            continue
        catalog.tables[full_name] = location
    views = [v for v in ANALYST_VIEWS if v.full_name in wanted]
    creatable, skipped = plan_views(catalog.tables, views)
    for view in creatable:
        con.execute(f"CREATE OR REPLACE VIEW {_ident(view.schema)}.{_ident(view.name)} AS "
                    + view.render(_render_name))
        catalog.views.append(view.full_name)
    for name in skipped:
        # say why in this reader's terms: a table may exist but be unreadable here (deletion vectors, ...)
        causes = [t for t in sorted(view_dependencies([name])) if t in catalog.unavailable]
        catalog.unavailable[name] = "; ".join(f"it reads {t}: {catalog.unavailable[t]}" for t in causes) \
            or skipped[name]
    _lock_down(con, readable)
    return catalog


def _lock_down(con, readable: Sequence[str]) -> None:
    """From here on the connection reads the registered tables' data files and nothing else: no other file,
    no network, no extension, and its settings cannot be changed back (``run_query`` also refuses every
    statement but SELECT and EXPLAIN, so nothing is written either)."""
    if readable:
        con.execute("SET allowed_paths = [" + ", ".join(_literal(f) for f in readable) + "]")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")


def _render_name(name: str) -> str:
    schema, table = name.split(".", 1)
    return f"{_ident(schema)}.{_ident(table)}"


def _check_references(catalog: LocalCatalog, sql: str) -> None:
    known = set(catalog.tables) | set(catalog.views)
    for name in referenced_names(sql, catalog.schemas):
        if name in known:
            continue
        if name in catalog.unavailable:
            kind = "view" if name in VIEW_NAMES else "table"
            raise SqlInputError(f"{kind} {name} is not available: {catalog.unavailable[name]}")
        close = close_names(name, set(catalog.specs) | set(VIEW_NAMES))
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SqlInputError(
            f"unknown table or view {name}{hint}; `promo-roi sql --list` shows the declared tables and views")


def _catalog_hint(catalog: LocalCatalog, message: str) -> str:
    """DuckDB's catalog error, with the qualified names an unqualified table name may have meant."""
    match = re.search(r"Table with name (\S+) does not exist", message)
    if not match:
        return message
    name = match.group(1).strip('"').lower()
    close = sorted(n for n in set(catalog.specs) | set(VIEW_NAMES) if n.split(".", 1)[1] == name)
    if not close:
        return f"unknown table or view {name}; `promo-roi sql --list` shows the declared tables and views"
    return f"unknown table {name}: tables and views are named schema.table, did you mean {', '.join(close)}?"


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: list[tuple]


def run_query(config: AppConfig, sql: str) -> QueryResult:
    """Runs ``sql`` (DuckDB dialect; one or more statements, the last one's rows are returned)."""
    import duckdb

    if not sql.strip():
        raise SqlInputError("empty query")
    _require_read_only(sql)
    catalog = open_catalog(config, referenced_names(sql, config.warehouse.schemas))
    _check_references(catalog, sql)
    try:
        relation = catalog.con.sql(sql)
        if relation is None:
            return QueryResult((), (), [])
        columns = tuple(relation.columns)
        types = tuple(str(t) for t in relation.types)
        rows = relation.fetchall()
    except duckdb.CatalogException as exc:
        raise SqlInputError(_catalog_hint(catalog, str(exc).strip())) from exc
    except (duckdb.ParserException, duckdb.BinderException, duckdb.ConversionException,
            duckdb.InvalidInputException) as exc:
        raise SqlInputError(str(exc).strip()) from exc
    except duckdb.PermissionException as exc:
        raise SqlInputError(f"{str(exc).strip()}: promo-roi sql reads the warehouse's tables and views only") from exc
    except (duckdb.IOException, duckdb.HTTPException) as exc:
        raise SqlReadError(f"reading the warehouse failed: {str(exc).strip()}") from exc
    finally:
        catalog.con.close()
    return QueryResult(columns, types, rows)


# What an analyst's query may be: it reads the warehouse and never changes it or anything else.
READ_ONLY_STATEMENTS = ("SELECT", "EXPLAIN")


def _require_read_only(sql: str) -> None:
    import duckdb

    try:
        statements = duckdb.connect(":memory:").extract_statements(sql)
    except duckdb.ParserException as exc:
        raise SqlInputError(str(exc).strip()) from exc
    refused = sorted({s.type.name for s in statements if s.type.name not in READ_ONLY_STATEMENTS})
    if refused:
        raise SqlInputError(f"promo-roi sql is read-only: {', '.join(refused)} statements are refused "
                            f"({' and '.join(READ_ONLY_STATEMENTS)} only)")


def describe_catalog(config: AppConfig) -> list[tuple[str, str, str]]:
    """(name, kind, status) for every declared table and analyst view."""
    catalog = open_catalog(config)
    out = []
    for name in catalog.specs:
        status = "ok" if name in catalog.tables else f"unavailable: {catalog.unavailable.get(name, '?')}"
        out.append((name, "table", status))
    for view in ANALYST_VIEWS:
        name = view.full_name
        status = "ok" if name in catalog.views else f"unavailable: {catalog.unavailable.get(name, '?')}"
        out.append((name, "view", status))
    catalog.con.close()
    return out


def view_descriptions() -> dict[str, str]:
    return {v.full_name: v.description for v in ANALYST_VIEWS}


