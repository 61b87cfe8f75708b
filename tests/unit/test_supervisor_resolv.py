"""The supervisor writes the lab DNS's resolv.conf in place before any app starts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from socklab.nodes import supervisor


def test_writes_in_place_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.11\noptions ndots:0\n")
    inode = conf.stat().st_ino
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    supervisor.write_resolv_conf(
        supervisor.Output(), "# lab\nnameserver 10.0.0.5\nsearch lab.test\n", str(conf)
    )
    assert conf.read_text() == "# lab\nnameserver 10.0.0.5\nsearch lab.test\n"
    assert conf.stat().st_ino == inode  # a bind mount cannot be replaced by a rename
    event = json.loads(out.getvalue().split(" ", 2)[2])
    assert event == {"event": "resolv-conf", "path": str(conf), "nameservers": ["10.0.0.5"]}


def test_unwritable_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    supervisor.write_resolv_conf(
        supervisor.Output(), "nameserver 10.0.0.5\n", str(tmp_path / "missing" / "resolv.conf")
    )
    event = json.loads(out.getvalue().split(" ", 2)[2])
    assert event["event"] == "warning" and "cannot write" in event["message"]
