"""Rendering of results for the terminal: rich tables, JSON, and the error lines.

Table cells, titles and error lines are plain text, never rich markup, so that what they
hold is printed as it is: an IPv6 peer ``[fd5c:10::3]:5000`` keeps its brackets. A cell
that wants a style is a :class:`rich.text.Text` (see :func:`state`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

STATE_STYLE = {"running": "green", "exited": "red", "created": "yellow", "paused": "yellow"}


def print_json(data: Any) -> None:
    """JSON on stdout, nothing else, so that ``--json`` output pipes into jq."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def cell(value: Any) -> Text:
    """A table cell printed as it is (``None`` is empty); a :class:`Text` keeps its style."""
    if isinstance(value, Text):
        return value
    return Text("" if value is None else str(value))


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    t = Table(
        title=title and Text(title), title_justify="left", header_style="bold", box=None, pad_edge=False
    )
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*map(cell, row))
    out.print(t)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def state(text: str) -> Text:
    return Text(text, style=STATE_STYLE.get(text, "white"))


def error(message: str, hint: str | None) -> None:
    """``error: MESSAGE`` and ``hint: HINT`` on stderr; both are plain text."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    if hint:
        err.print(f"[dim]hint:[/] {escape(hint)}")


def wide_table(title: str | None, columns: list[str], rows: list[tuple[Any, ...]]) -> Any:
    """A rich table whose cells never wrap (addresses and paths stay whole, as in netstat)."""
    t = Table(
        title=title and Text(title),
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=None,
        pad_edge=False,
    )
    for col in columns:
        t.add_column(col, justify="right" if col.endswith("-Q") else "left", no_wrap=True)
    for row in rows:
        t.add_row(*map(cell, row))
    return t


def print_wide(renderable: Any) -> None:
    """Print as wide as the content needs; the terminal wraps long lines, as with netstat."""
    Console(width=max(out.width, 250), highlight=False).print(renderable)
