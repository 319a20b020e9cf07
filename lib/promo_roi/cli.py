"""``promo-roi``: look at the warehouse without starting a JVM.

    promo-roi tables              every declared table: rows, Delta version, last operation
    promo-roi history TABLE       the Delta history of one table (e.g. bronze.transactions)

Reads the Delta logs with the ``deltalake`` package, so it answers in a
second on a laptop; row counts come from the per-file statistics Delta keeps.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from dataclasses import dataclass
from typing import Sequence

from promo_roi.config import AppConfig, load_config
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


def print_tables(statuses: Sequence[TableStatus], out=sys.stdout) -> None:
    header = ("table", "rows", "version", "slices", "last operation")
    rows = [(s.name, _fmt(s.rows), _fmt(s.version), _fmt(s.slices), s.last_operation) for s in statuses]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for i, row in enumerate([header, *rows]):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:4], widths[1:4])] + [row[4]]
        print("  ".join(cells), file=out)
        if i == 0:
            print("  ".join("-" * w for w in widths), file=out)


def print_history(spec: TableSpec, config: AppConfig, limit: int, out=sys.stdout) -> None:
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
    args = parser.parse_args(argv)

    config = load_config(args.profile, args.conf_dir, args.overrides, env=os.environ)
    specs = all_specs(config.features)
    if args.command == "tables":
        print(f"warehouse: {config.warehouse.root}")
        print_tables([table_status(s, config) for s in specs])
        return 0
    matches = [s for s in specs if s.full_name == args.table]
    if not matches:
        print(f"unknown table {args.table!r}; known: {', '.join(s.full_name for s in specs)}", file=sys.stderr)
        return 2
    print_history(matches[0], config, args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
