"""The scenario runner against an in-memory engine: each step kind's result, the run's end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from socklab import Lab
from socklab.orchestrator import image
from socklab.orchestrator.engine_api import ExecResult
from socklab.scenario.run import run

from .fake_engine import FakeEngine

SCENARIO: list[dict[str, Any]] = [
    {"start": {"node": "web", "cmd": "tcp-server --port 5000"}},
    {"wait": {"node": "web", "listening": "tcp/5000", "timeout": 5}},
    {"run": {"node": "client-*", "cmd": "tcp-client web 5999", "expect": {"errno": "ECONNREFUSED"}}},
    {
        "parallel": [
            {"run": {"node": "client-1", "cmd": "tcp-client web 5000"}},
            {"run": {"node": "client-2", "cmd": "tcp-client web 5000", "expect": {"errno": "ECONNREFUSED"}}},
        ]
    },
    {"expect_sockets": {"node": "web", "state": "LISTEN", "local_port": 5000}},
    {"expect_sockets": {"node": "web", "state": "ESTABLISHED", "min": 1}},
    {"snapshot": "sockets"},
    {"wait": {"node": "client-1", "listening": "udp/53", "timeout": 0.3}},
]


class FakeNodes:
    """Answers the runner's commands like nodes with the built-in apps would."""

    def __init__(self) -> None:
        self.listening: set[str] = set()

    def __call__(self, node: str, argv: list[str]) -> ExecResult:
        if argv[0] == "socklab-start":
            self.listening.add(node)
            return ExecResult(0, '{"event": "spawned"}\n', "")
        if argv[0] in ("nc", "socklab-sockets"):  # the supervisor answers, or the reader
            rows = (
                [
                    {
                        "proto": "tcp",
                        "local_ip": "0.0.0.0",
                        "local_port": 5000,
                        "remote_ip": "0.0.0.0",
                        "remote_port": 0,
                        "state": "LISTEN",
                        "recv_q": 0,
                        "send_q": 0,
                        "inode": 1,
                        "pid": 9,
                        "program": "tcp-server",
                    }
                ]
                if node in self.listening
                else []
            )
            return ExecResult(0, json.dumps(rows), "")
        assert argv[:4] == ["timeout", "-s", "KILL", "60"]
        if argv[-1] == "5999":
            event = {"event": "error", "errno": "ECONNREFUSED", "errno_number": 111}
            return ExecResult(1, json.dumps(event) + "\n", "tcp-client: connection refused\n")
        return ExecResult(0, '{"event": "connected"}\n{"event": "closed"}\n', "")


@pytest.fixture
def lab(tmp_path: Path) -> tuple[Lab, FakeEngine]:
    fake = FakeEngine()
    fake.add_image(image.node_image_tag())
    fake.on_exec = FakeNodes()
    doc = {
        "name": "unit",
        "networks": {"lan": {}},
        "nodes": {"web": {"networks": ["lan"]}, "client": {"networks": ["lan"], "replicas": 2}},
        "scenarios": {"default": SCENARIO},
    }
    path = tmp_path / "lab.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return Lab.load(path, engine=fake), fake


def test_every_step_kind_reports_what_it_saw(lab: tuple[Lab, FakeEngine], tmp_path: Path) -> None:
    the_lab, fake = lab
    seen: list[str] = []
    result = run(the_lab, run_dir=tmp_path / "run", on_step=lambda s: seen.append(s.index))
    status = [(s.index, s.kind, s.status) for s in result.all_steps()]
    assert status == [
        ("1", "start", "passed"),
        ("2", "wait", "passed"),
        ("3", "run", "passed"),
        ("4", "parallel", "failed"),
        ("4.1", "run", "passed"),
        ("4.2", "run", "failed"),
        ("5", "expect_sockets", "passed"),
        ("6", "expect_sockets", "failed"),
        ("7", "snapshot", "passed"),
        ("8", "wait", "failed"),
    ]
    steps = {s.index: s for s in result.all_steps()}
    assert [o.node for o in steps["3"].outputs] == ["client-1", "client-2"]
    assert all(o.errno == "ECONNREFUSED" for o in steps["3"].outputs)
    assert steps["4"].detail == "1 of 2 parallel steps failed: step 4.2 (run)"
    assert steps["4.2"].detail.startswith("client-2: expected ECONNREFUSED, got exit 0")
    assert steps["6"].detail == ("expected at least 1 ESTABLISHED sockets on web, found 0 (web: 0)")
    assert steps["7"].snapshot is not None and list(steps["7"].snapshot) == ["web"]
    assert steps["8"].detail == "expected client-1 listening on udp/53 within 0.3 s, it was not"
    assert sorted(seen) == sorted(s.index for s in result.all_steps())  # every result reported
    assert not result.passed
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["passed"] is False and len(report["steps"]) == 8
    assert (tmp_path / "run" / "sockets" / "7-snapshot" / "web.json").exists()
    assert fake.containers({}) == [] and fake.networks({}) == []  # destroyed after the run


def test_keep_leaves_the_lab_up(lab: tuple[Lab, FakeEngine], tmp_path: Path) -> None:
    the_lab, fake = lab
    assert the_lab.topology is not None
    the_lab.topology.scenarios["default"] = the_lab.topology.scenarios["default"][:3]
    result = run(the_lab, run_dir=tmp_path / "run", keep=True)
    assert result.passed
    assert [s["node"] for s in result.nodes] == ["web", "client-1", "client-2"]
    assert len(fake.containers({})) == 3
    the_lab.down()
