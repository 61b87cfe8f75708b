"""IPv6 addresses keep their brackets in terminal tables (`[fd5c:..]:5000`, not `:5000`).

The terminal output goes through rich, whose markup would take `[...]` for a tag.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from socklab import Lab

runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    from socklab.cli import app

    result = runner.invoke(app, list(args), prog_name="socklab", terminal_width=200)
    return result.exit_code, result.stdout, result.stderr


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


@pytest.fixture
def v6_lab(make_lab: Callable[..., Lab], ipv6_unsupported: str | None) -> Lab:
    if ipv6_unsupported:
        pytest.skip(f"the Docker daemon cannot make IPv6 networks: {ipv6_unsupported}")
    return make_lab(
        {
            "networks": {"lan": {"ipv6": True}},
            "nodes": {
                "server": {"networks": ["lan"], "start": ["tcp-server --port 5000 --family inet6"]},
                "client": {"networks": ["lan"]},
            },
        },
        "v6tables",
    )


def test_timeline_and_capture_print_ipv6_peers_whole(v6_lab: Lab, tmp_path: Path) -> None:
    lab, client = v6_lab, v6_lab.node("client")
    pcap = tmp_path / "v6.pcap"
    captured: dict[str, tuple[int, str, str]] = {}
    thread = threading.Thread(
        target=lambda: captured.setdefault(
            "cli",
            cli(
                "capture",
                str(lab.source),
                "client",
                "--filter",
                "tcp port 5000",
                "--seconds",
                "6",
                "-o",
                str(pcap),
            ),
        )
    )
    thread.start()
    # tcpdump opens its file once it captures
    assert wait_for(lambda: client.exec(["sh", "-c", "ls /tmp/socklab-capture-*"]).ok)
    started = client.exec("socklab-start tcp-client server 5000 --family inet6 --count 1")
    assert started.ok, started.stderr
    assert wait_for(lambda: any(e.event == "closed" and e.node == "server" for e in lab.timeline()))

    code, out, err = cli("logs", str(lab.source), "--timeline", "--json")
    assert code == 0, err
    connected = next(e for e in json.loads(out) if e["event"] == "connected")
    server, local = connected["peer"], connected["fields"]["local"]
    assert server.startswith("[") and server.endswith("]:5000"), server
    code, out, err = cli("logs", str(lab.source), "--timeline")
    assert code == 0, err
    row = next(line for line in out.splitlines() if " connected " in line)
    assert server in row and f"local={local}" in row, row

    thread.join(30)
    code, out, err = captured["cli"]
    assert code == 0, err
    assert f"{local} → {server}" in out, out


def test_connections_print_ipv6_ends_whole_and_ipv4_ones_unmapped(v6_lab: Lab) -> None:
    lab, client = v6_lab, v6_lab.node("client")
    # a dual-stack server that holds each connection (it echoes after 20 s)
    assert lab.node("server").exec("socklab-start tcp-server --port 5100 --delay 20").ok
    lab.wait_listening("server", "tcp/5100")
    for family in ("inet6", "inet"):
        started = client.exec(f"socklab-start tcp-client server 5100 --family {family} --timeout 30")
        assert started.ok, started.stderr
    assert wait_for(lambda: len(lab.connections()) == 2)
    code, out, err = cli("connections", str(lab.source))
    assert code == 0, err
    v6 = lab.node("server").ipv6()
    v4 = lab.node("server").ip()
    assert f"[{v6}]:5100" in out and f" {v4}:5100 " in out, out
    assert "::ffff:" not in out, out
