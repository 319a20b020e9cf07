"""``promo-roi``: look at the warehouse without starting a JVM.

    promo-roi tables              every declared table: rows, Delta version, last operation
    promo-roi history TABLE       the Delta history of one table (e.g. bronze.transactions)
    promo-roi sql "SELECT ..."    SQL over the tables and the analyst views (DuckDB, no JVM)
    promo-roi sql --list          the declared tables and views, and why any is unavailable
    promo-roi describe [NAME]     what each table and view holds; with NAME, every column described

Reads the Delta logs with the ``deltalake`` package, so it answers in a
second on a laptop; row counts come from the per-file statistics Delta keeps.
``sql`` runs DuckDB over the active files of each table it names
(``promo_roi.sql_local``); exit code 2 when the query names an unknown or
unavailable table or DuckDB refuses it.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import decimal
import json
import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Sequence

from promo_roi import catalogue
from promo_roi.config import AppConfig, ConfigError, load_config
from promo_roi.tables import TableSpec, all_specs


@dataclass(frozen=True)
class TableStatus:
    name: str
    rows: int | None
    version: int | None
    last_operation: str
    slices: int | None
    location: str


def _local_path(uri: str) -> str:
    return uri.removeprefix("file:")


def table_status(spec: TableSpec, config: AppConfig) -> TableStatus:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    location = _local_path(config.warehouse.table_path(spec.schema, spec.name))
    try:
        table = DeltaTable(location)
    except TableNotFoundError:
        return TableStatus(spec.full_name, None, None, "missing", None, location)
    actions = table.get_add_actions(flatten=True)
    columns = actions.column_names
    rows = None
    if "num_records" in columns:
        counts = actions.column("num_records").to_pylist()
        rows = None if any(c is None for c in counts) else int(sum(counts))
    slices = None
    if spec.partition_by:
        key = f"partition.{spec.partition_by[0]}"
        if key in columns:
            slices = len(set(actions.column(key).to_pylist()))
    last = table.history(1)[0]
    mode = (last.get("operationParameters") or {}).get("mode")
    operation = last.get("operation", "?") + (f" ({mode})" if mode else "")
    return TableStatus(spec.full_name, rows, table.version(), operation, slices, location)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_tables(statuses: Sequence[TableStatus], out=None) -> None:
    # sys.stdout is looked up per call: it can be replaced after import (pytest's capture, Airflow's logging).
    out = sys.stdout if out is None else out
    header = ("table", "rows", "version", "slices", "last operation")
    rows = [(s.name, _fmt(s.rows), _fmt(s.version), _fmt(s.slices), s.last_operation) for s in statuses]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for i, row in enumerate([header, *rows]):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:4], widths[1:4])] + [row[4]]
        print("  ".join(cells), file=out)
        if i == 0:
            print("  ".join("-" * w for w in widths), file=out)


def print_history(spec: TableSpec, config: AppConfig, limit: int, out=None) -> None:
    out = sys.stdout if out is None else out
    from deltalake import DeltaTable

    table = DeltaTable(_local_path(config.warehouse.table_path(spec.schema, spec.name)))
    for entry in table.history(limit):
        when = dt.datetime.fromtimestamp(entry["timestamp"] / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        params = entry.get("operationParameters") or {}
        metrics = entry.get("operationMetrics") or {}
        detail = ", ".join(f"{k}={v}" for k, v in params.items() if k in ("mode", "predicate"))
        written = metrics.get("numOutputRows")
        print(
            f"v{entry['version']:<4} {when}  {entry.get('operation', '?'):<14} {detail}"
            + (f"  rows={written}" if written is not None else ""),
            file=out,
        )


SQL_FORMATS = ("table", "csv", "json")


def format_value(value: Any) -> str:
    """One cell as text, the way Spark's JDBC clients show it (NULL, true/false, ISO dates, JSON maps)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else {"inf": "Infinity", "-inf": "-Infinity"}.get(str(value), "NaN")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, decimal.Decimal)):
        return str(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(_jsonable(value), separators=(",", ":"))
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.date, dt.datetime, decimal.Decimal)):
        return format_value(value)
    return value


def _numeric(type_name: str) -> bool:
    return type_name.split("(")[0] in {
        "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
        "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL"}


def print_result(result, fmt: str, out=None) -> None:
    """Writes a :class:`promo_roi.sql_local.QueryResult` as an aligned table, CSV or a JSON array."""
    out = sys.stdout if out is None else out
    if fmt == "json":
        records = [dict(zip(result.columns, (_jsonable(v) for v in row))) for row in result.rows]
        json.dump(records, out, indent=1)
        out.write("\n")
        return
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        for row in result.rows:
            writer.writerow(["" if v is None else format_value(v) for v in row])
        return
    header = list(result.columns)
    cells = [[format_value(v) for v in row] for row in result.rows]
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]
    right = [_numeric(t) for t in result.types]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)).rstrip()

    if header:
        print(line(header), file=out)
        print("  ".join("-" * w for w in widths), file=out)
    for row in cells:
        print(line(row), file=out)
    if fmt == "table":
        print(f"({len(cells)} row{'s' if len(cells) != 1 else ''})", file=out)


def run_sql(args: argparse.Namespace, config: AppConfig) -> int:
    from promo_roi import sql_local

    if args.list:
        rows = sql_local.describe_catalog(config)
        descriptions = sql_local.view_descriptions()
        width = max(len(r[0]) for r in rows)
        print(f"warehouse: {config.warehouse.root}")
        for name, kind, status in rows:
            note = f"  {descriptions[name]}" if kind == "view" and status == "ok" else ""
            print(f"{name.ljust(width)}  {kind:<5}  {status}{note}")
        return 0
    if args.file == "-":
        query = sys.stdin.read()
    elif args.file:
        try:
            with open(args.file) as fh:
                query = fh.read()
        except OSError as exc:
            print(f"promo-roi sql: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
    elif args.query in (None, "-"):
        query = sys.stdin.read()
    else:
        query = args.query
    try:
        result = sql_local.run_query(config, query)
    except sql_local.SqlInputError as exc:
        print(f"promo-roi sql: {exc}", file=sys.stderr)
        return 2
    except sql_local.SqlReadError as exc:
        print(f"promo-roi sql: {exc}", file=sys.stderr)
        return 1
    print_result(result, args.format)
    return 0


def run_describe(args: argparse.Namespace, config: AppConfig, specs: Sequence[TableSpec]) -> int:
    from promo_roi.analyst_views import ANALYST_VIEWS

    if not args.name:
        if args.format == "json":
            print(json.dumps([{"name": s.full_name, "kind": "table", "description": s.description} for s in specs]
                             + [{"name": v.full_name, "kind": "view", "description": v.description}
                                for v in ANALYST_VIEWS], indent=1))
        else:
            print(catalogue.overview(specs, ANALYST_VIEWS))
        return 0
    try:
        found = catalogue.find(args.name, specs, ANALYST_VIEWS)
    except catalogue.UnknownNameError as exc:
        print(f"promo-roi describe: {exc}", file=sys.stderr)
        return 2
    if isinstance(found, TableSpec):
        location = config.warehouse.table_path(found.schema, found.name)
        text = (json.dumps(catalogue.table_record(found, location), indent=1) if args.format == "json"
                else catalogue.describe_table(found, location))
    else:
        text = (json.dumps(catalogue.view_record(found), indent=1) if args.format == "json"
                else catalogue.describe_view(found))
    print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="promo-roi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile")
    parser.add_argument("--conf-dir")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tables", help="list tables with rows, Delta version and last operation")
    history = sub.add_parser("history", help="Delta history of one table")
    history.add_argument("table", help="schema.table, e.g. silver.user_features")
    history.add_argument("--limit", type=int, default=20)
    sql = sub.add_parser(
        "sql", help="run SQL over the Delta tables and analyst views (DuckDB, no JVM)",
        description="Runs SQL (DuckDB dialect) over the declared tables (schema.table, e.g. "
                    "gold.campaign_roi_forecast) and the analyst views (gold.latest_campaign_roi_forecast, ...).")
    sql.add_argument("query", nargs="?", help="the SQL; '-' or nothing reads it from stdin")
    sql.add_argument("-f", "--file", help="read the SQL from this file ('-': stdin)")
    sql.add_argument("--format", choices=SQL_FORMATS, default="table", help="output format (default: table)")
    sql.add_argument("--list", action="store_true", help="list the declared tables and views and whether each is available")
    describe = sub.add_parser(
        "describe", help="what a table or view holds, column by column (no NAME: every table and view)")
    describe.add_argument("name", nargs="?", help="schema.table or schema.view, e.g. gold.budget_plan")
    describe.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)

    try:
        config = load_config(args.profile, args.conf_dir, args.overrides, env=os.environ)
    except ConfigError as exc:
        print(f"promo-roi: {exc}", file=sys.stderr)
        return 2
    specs = all_specs(config.features)
    if args.command == "sql":
        return run_sql(args, config)
    if args.command == "describe":
        return run_describe(args, config, specs)
    if args.command == "tables":
        print(f"warehouse: {config.warehouse.root}")
        print_tables([table_status(s, config) for s in specs])
        return 0
    try:
        found = catalogue.find(args.table, specs, ())
    except catalogue.UnknownNameError as exc:
        print(f"promo-roi history: {exc}", file=sys.stderr)
        return 2
    print_history(found, config, args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
