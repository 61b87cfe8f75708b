"""Terminal rendering prints text as it is: brackets (IPv6 peers) are never taken for markup."""

from __future__ import annotations

import pytest
from rich.console import Console

from socklab import render

V6 = "[fd5c:10::3]:5000"


@pytest.fixture
def consoles(monkeypatch: pytest.MonkeyPatch) -> tuple[Console, Console]:
    out = Console(record=True, width=200, highlight=False)
    err = Console(record=True, width=200, highlight=False)
    monkeypatch.setattr(render, "out", out)
    monkeypatch.setattr(render, "err", err)
    return out, err


def test_table_cells_and_title_keep_brackets(consoles: tuple[Console, Console]) -> None:
    out, _ = consoles
    render.table(f"peers of {V6}", ["PEER", "STATE"], [(V6, render.state("running")), (None, "[b]")])
    text = out.export_text()
    assert f"peers of {V6}" in text and f"{V6}  running" in text and "[b]" in text


def test_wide_table_keeps_brackets() -> None:
    console = Console(record=True, width=200)
    console.print(render.wide_table(f"[{V6}]", ["Local Address", "Foreign Address"], [(V6, "[::]:*")]))
    text = console.export_text()
    assert f"[{V6}]" in text and f"{V6}  [::]:*" in text


def test_error_lines_keep_brackets(consoles: tuple[Console, Console]) -> None:
    _, err = consoles
    render.error(f"cannot reach {V6}", "is [red] a tag? no")
    assert err.export_text() == f"error: cannot reach {V6}\nhint: is [red] a tag? no\n"
