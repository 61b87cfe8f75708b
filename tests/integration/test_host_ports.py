"""A host port a node publishes that is already taken: one line naming the node, the port,
who holds it, and a hint to change `ports:`."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from socklab import Lab
from socklab.cli import app
from socklab.orchestrator.engine_api import Engine

from .conftest import leftovers


def up(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["up", str(path)])
    return result.exit_code, result.stderr


def test_a_port_held_by_a_host_process_names_it(
    write_lab: Callable[..., Path], engine: Engine, node_image: str
) -> None:
    with socket.socket() as taken:  # this test's own process holds the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = write_lab(
            {
                "networks": {"lan": {}},
                "nodes": {
                    "web": {"networks": ["lan"], "ports": [f"{port}:80"]},
                    "client": {"networks": ["lan"]},
                },
            },
            "port",
        )
        code, err = up(path)
    assert code == 2, err
    assert (
        f"  web: host port 127.0.0.1:{port}/tcp is already taken by {_comm(os.getpid())} (pid {os.getpid()})"
    ) in err
    assert "change `ports:` of node 'web' (another host port" in err
    assert leftovers(engine, Lab.load(path).name) == []


def test_a_port_held_by_another_lab_names_its_container(
    make_lab: Callable[..., Lab], write_lab: Callable[..., Path], engine: Engine
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    first = make_lab(
        {"networks": {"lan": {}}, "nodes": {"web": {"networks": ["lan"], "ports": [f"{port}:80"]}}}, "port1"
    )
    path = write_lab(
        {"networks": {"lan": {}}, "nodes": {"api": {"networks": ["lan"], "ports": [f"{port}:8000"]}}}, "port2"
    )
    code, err = up(path)
    assert code == 2, err
    assert (
        f"  api: host port 127.0.0.1:{port} is already taken by container socklab-{first.name}-web"
    ) in err
    assert leftovers(engine, Lab.load(path).name) == []
    assert [s.state for s in first.status()] == ["running"]  # the other lab is untouched


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()
