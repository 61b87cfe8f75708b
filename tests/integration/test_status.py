"""`status`: nodes in topology order (also when only the lab's name is known) and each
node's apps: listening, running, exited with their code."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from rich.console import Console
from typer.testing import CliRunner

from socklab import Lab, render
from socklab.cli import app

runner = CliRunner()


def test_status_keeps_the_topology_order_and_shows_the_apps(
    make_lab: Callable[..., Lab], monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = make_lab(
        {
            "networks": {"lan": {}},
            "nodes": {  # not in alphabetical order
                "zeta": {
                    "networks": ["lan"],
                    "start": [
                        "tcp-server --port 5000",
                        "true",
                        {
                            "cmd": ["python3", "-c", "import time, sys; time.sleep(0.5); sys.exit(3)"],
                            "wait": "none",
                        },
                    ],
                },
                "alpha": {"networks": ["lan"], "replicas": 2},
                "mid": {"networks": ["lan"]},
            },
        },
        "status",
    )
    order = ["zeta", "alpha-1", "alpha-2", "mid"]
    deadline = time.monotonic() + 30  # the `wait: none` app exits a little after up
    while True:
        result = runner.invoke(app, ["status", lab.name, "--json"])  # by name: no topology
        assert result.exit_code == 0, result.stderr
        nodes = json.loads(result.stdout)
        apps = {a["app"]: a for a in nodes[0]["apps"]}
        if apps["python3"]["state"] == "exited" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [n["node"] for n in nodes] == order
    assert apps["tcp-server"] == {
        "app": "tcp-server",
        "state": "listening",
        "code": None,
        "ports": ["tcp/5000"],
    }
    assert (apps["true"]["state"], apps["true"]["code"]) == ("exited", 0)
    assert (apps["python3"]["state"], apps["python3"]["code"]) == ("exited", 3)
    assert nodes[1]["apps"] == []  # a node with no start commands

    # a terminal wide enough for one line a node (COLUMNS is read when the console is made)
    monkeypatch.setattr(render, "out", Console(width=250, highlight=False, soft_wrap=True))
    table = runner.invoke(app, ["status", lab.name])
    assert table.exit_code == 0
    lines = [ln for ln in table.stdout.splitlines() if ln.split()[:1] and ln.split()[0] in order]
    assert [ln.split()[0] for ln in lines] == order
    assert "tcp-server listening tcp/5000, true exited 0, python3 exited 3" in lines[0]
