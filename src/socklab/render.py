"""Rendering of results for the terminal: rich tables, JSON, and the error lines."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

STATE_STYLE = {"running": "green", "exited": "red", "created": "yellow", "paused": "yellow"}


def print_json(data: Any) -> None:
    """JSON on stdout, nothing else, so that ``--json`` output pipes into jq."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    t = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*(str(cell) if cell is not None else "" for cell in row))
    out.print(t)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def state(text: str) -> str:
    return f"[{STATE_STYLE.get(text, 'white')}]{text}[/]"


def error(message: str, hint: str | None) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    if hint:
        err.print(f"[dim]hint:[/] {hint}")


def wide_table(title: str | None, columns: list[str], rows: list[tuple[Any, ...]]) -> Any:
    """A rich table whose cells never wrap (addresses and paths stay whole, as in netstat)."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", title_style="bold", header_style="bold",
              box=None, pad_edge=False)
    for col in columns:
        t.add_column(col, justify="right" if col.endswith("-Q") else "left", no_wrap=True)
    for row in rows:
        t.add_row(*(str(cell) if cell is not None else "" for cell in row))
    return t


def print_wide(renderable: Any) -> None:
    """Print as wide as the content needs; the terminal wraps long lines, as with netstat."""
    from rich.console import Console

    Console(width=max(out.width, 250), highlight=False).print(renderable)
