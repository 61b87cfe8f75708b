"""`up` returns once every start command is started, whatever the program: it waits for what
each one listens on (or for the port its `wait:` names), not for a name or a log line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from socklab import Lab
from socklab.cli import app
from socklab.orchestrator.engine_api import Engine

from .conftest import leftovers

CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)"


def _apps(lab: Lab, node: str) -> dict[str, dict[str, object]]:
    text = lab.node(node).exec(["cat", "/run/socklab/apps.json"]).stdout
    return {a["app"]: a for a in json.loads(text)}


def test_up_waits_for_any_program_to_listen(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(
        {
            "networks": {"lan": {}},
            "nodes": {
                "web": {
                    "networks": ["lan"],
                    "start": [
                        "python3 -m http.server 8000",  # no listening event, no -server name
                        {
                            "cmd": "sh -c 'setsid python3 -m http.server 8001 >/dev/null 2>&1 &'",
                            "wait": "tcp/8001",
                        },  # a launcher that leaves a daemon behind
                    ],
                },
                "client": {"networks": ["lan"]},
            },
        },
        "ready",
    )
    client = lab.node("client")
    for port in ("8000", "8001"):  # at once, no retry: both listen when up returns
        done = client.exec(["python3", "-c", CONNECT, "web", port])
        assert done.ok, done.stderr
    apps = _apps(lab, "web")
    assert apps["python3"]["state"] == "listening" and apps["python3"]["ports"] == ["tcp/8000"]
    assert apps["sh"]["state"] == "exited" and apps["sh"]["code"] == 0


def test_a_port_that_never_listens_fails_up(
    write_lab: Callable[..., Path], engine: Engine, node_image: str
) -> None:
    path = write_lab(
        {
            "networks": {"lan": {}},
            "nodes": {
                "s": {
                    "networks": ["lan"],
                    "env": {"SOCKLAB_READY_TIMEOUT": "1"},
                    "start": [{"cmd": "sleep 60", "wait": "tcp/9"}],
                }
            },
        },
        "noport",
    )
    result = CliRunner().invoke(app, ["up", str(path)])
    assert result.exit_code == 2
    assert "s: start commands did not start (sleep)" in result.stderr
    assert "sleep: not listening on tcp/9 after 1 s" in result.stderr
    assert leftovers(engine, Lab.load(path).name) == []
