"""The warehouse's catalogue: what each table and analyst view holds, column by column.

``promo-roi describe [NAME]`` prints it (:mod:`promo_roi.cli`). Table and
column descriptions are declared once (``TableSpec.description``,
:mod:`promo_roi.column_docs`) and travel with the tables as Delta comments
(:mod:`promo_roi.delta_io`), so the SQL endpoint's ``DESCRIBE`` shows the
same text. Pure functions: declarations in, text or JSON-ready dicts out.
"""

from __future__ import annotations

import difflib
import textwrap
from typing import Any, Sequence

from promo_roi.analyst_views import AnalystView
from promo_roi.tables import TableSpec

WIDTH = 118


class UnknownNameError(ValueError):
    """A name that is neither a declared table nor an analyst view (the message offers the close ones)."""


def close_names(name: str, declared: set[str]) -> list[str]:
    """Declared names a misspelled or wrongly qualified ``schema.table`` may have meant: the same table in
    another schema, else the closest spellings."""
    short = name.split(".", 1)[-1]
    same_table = sorted(n for n in declared if n.split(".", 1)[-1] == short and n != name)
    return same_table or difflib.get_close_matches(name, sorted(declared), n=3, cutoff=0.8)


def find(name: str, specs: Sequence[TableSpec], views: Sequence[AnalystView]) -> TableSpec | AnalystView:
    """The table or view called ``name`` (schema.table, case-insensitive)."""
    wanted = name.strip().lower()
    for item in (*specs, *views):
        if item.full_name == wanted:
            return item
    close = close_names(wanted, {s.full_name for s in specs} | {v.full_name for v in views})
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise UnknownNameError(f"unknown table or view {name!r}{hint}; `promo-roi describe` lists them all")


def first_sentence(text: str) -> str:
    head = text.split(". ", 1)[0].strip()
    return head if head.endswith(".") else head + "."


def overview(specs: Sequence[TableSpec], views: Sequence[AnalystView]) -> str:
    """One line per table and view: name, kind and the first sentence of what it holds."""
    rows = [(s.full_name, "table", first_sentence(s.description or "(no description)")) for s in specs]
    rows += [(v.full_name, "view", first_sentence(v.description)) for v in views]
    width = max(len(r[0]) for r in rows)
    indent = width + 9
    lines = []
    for name, kind, text in rows:
        wrapped = textwrap.wrap(text, WIDTH - indent) or [""]
        lines.append(f"{name.ljust(width)}  {kind:<5}  {wrapped[0]}")
        lines += [" " * indent + more for more in wrapped[1:]]
    return "\n".join(lines)


def table_record(spec: TableSpec, location: str) -> dict[str, Any]:
    """The table's catalogue entry as plain data (``--format json``)."""
    return {
        "name": spec.full_name, "kind": "table", "description": spec.description, "location": location,
        "partitioned_by": list(spec.partition_by), "key": list(spec.keys),
        "columns": [{"name": f.name, "type": f.dataType.simpleString(), "description": spec.column_description(f.name)}
                    for f in spec.struct.fields],
    }


def view_record(view: AnalystView) -> dict[str, Any]:
    return {"name": view.full_name, "kind": "view", "description": view.description, "reads": list(view.sources),
            "sql": view.sql}


def describe_table(spec: TableSpec, location: str) -> str:
    """The table, its place and keys, then every column with its type and description."""
    record = table_record(spec, location)
    lines = [f"{spec.full_name} (table)", *textwrap.wrap(spec.description or "(no description)", WIDTH),
             f"location: {location}"]
    if spec.partition_by:
        lines.append(f"partitioned by: {', '.join(spec.partition_by)}")
    if spec.keys:
        lines.append(f"key: {', '.join(spec.keys)}")
    columns = record["columns"]
    name_width = max(len("column"), *(len(c["name"]) for c in columns))
    type_width = max(len("type"), *(len(c["type"]) for c in columns))
    indent = name_width + type_width + 4
    lines += ["", f"{'column'.ljust(name_width)}  {'type'.ljust(type_width)}  description",
              f"{'-' * name_width}  {'-' * type_width}  {'-' * (WIDTH - indent)}"]
    for c in columns:
        wrapped = textwrap.wrap(c["description"] or "(no description)", WIDTH - indent)
        lines.append(f"{c['name'].ljust(name_width)}  {c['type'].ljust(type_width)}  {wrapped[0]}")
        lines += [" " * indent + more for more in wrapped[1:]]
    return "\n".join(lines)


def describe_view(view: AnalystView) -> str:
    """The view, what it reads and its SQL (its columns are those of the tables it reads)."""
    return "\n".join([
        f"{view.full_name} (view)", *textwrap.wrap(view.description, WIDTH),
        f"reads: {', '.join(view.sources)}", "", view.sql,
    ])
