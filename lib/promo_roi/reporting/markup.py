"""The report's HTML building blocks: cell formats, tables, figures and KPI tiles, as text.

Pure functions, no I/O. Every table cell carries ``data-col`` (its column
key), so tools and tests can read a rendered table back.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd

TEXT_KINDS = ("text", "date", "datetime", "bool")  # left-aligned; every other kind is a right-aligned number


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "text"  # text | int | money | ratio | pct | num | date | datetime | bool


def with_currency(columns: Sequence[Column], currency: str) -> list[Column]:
    """``columns`` with ``{cur}`` in their headers replaced by ``currency``."""
    return [Column(c.key, c.header.format(cur=currency), c.kind) for c in columns]


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def format_value(value: Any, kind: str) -> str:
    """The text a table cell shows: money and ROI (``ratio``: profit per unit of cost, as stored in the tables)
    with 2 decimals, shares (``pct``) in percent with 1, 'n/a' for none."""
    if is_missing(value):
        return "n/a"
    if kind == "int":
        return f"{float(value):,.0f}"
    if kind in ("money", "ratio"):
        return f"{float(value):,.2f}"
    if kind == "pct":
        return f"{100 * float(value):,.1f}%"
    if kind == "num":
        return f"{float(value):,.4f}"
    if kind == "date":
        return pd.Timestamp(value).date().isoformat()
    if kind == "datetime":
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    if kind == "bool":
        return "yes" if bool(value) else "no"
    return str(value)


def _alignment(column: Column) -> str:
    return "txt" if column.kind in TEXT_KINDS else "num"


def _cell(column: Column, value: Any) -> str:
    classes = [_alignment(column)]
    if is_missing(value):
        classes.append("na")
    elif (column.kind in ("money", "ratio", "pct", "num", "int") and float(value) < 0
          and not column.key.endswith(("_low", "_high"))):
        classes.append("neg")  # interval bounds stay black: a red column of lower bounds is noise
    if column.key == "interval_verdict" and not is_missing(value):
        classes.append("verdict-" + str(value).replace(" ", "-"))
    e = html.escape
    return f'<td class="{" ".join(classes)}" data-col="{e(column.key)}">{e(format_value(value, column.kind))}</td>'


def html_table(frame: pd.DataFrame, columns: Sequence[Column], table_id: str, caption: str = "",
               totals: Mapping[str, Any] | None = None) -> str:
    """An HTML table of ``frame``'s ``columns``; every cell carries ``data-col`` (the column key) so that
    tools and tests can read it back. ``totals``: a footer row, its first cell 'total'."""
    e = html.escape
    head = "".join(f'<th class="{_alignment(c)}">{e(c.header)}</th>' for c in columns)
    body = "".join("<tr>" + "".join(_cell(c, row.get(c.key)) for c in columns) + "</tr>"
                   for row in frame.to_dict("records"))
    foot = ""
    if totals is not None:
        cells = [_cell(c, totals[c.key]) if c.key in totals else '<td class="txt"></td>' for c in columns[1:]]
        foot = f'<tfoot><tr><td class="txt" data-col="{e(columns[0].key)}">total</td>{"".join(cells)}</tr></tfoot>'
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    return (f'<div class="table-wrap"><table id="{e(table_id)}">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody>{foot}</table></div>")


def figure_html(file_name: str, alt: str, caption: str) -> str:
    e = html.escape
    return (f'<figure><img src="{e(file_name)}" alt="{e(alt)}">'
            f"<figcaption>{e(caption)}</figcaption></figure>")


def kpi(value: str, label: str) -> str:
    e = html.escape
    return f'<div class="kpi"><div class="value">{e(value)}</div><div class="label">{e(label)}</div></div>'
