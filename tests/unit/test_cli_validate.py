"""`socklab validate` and `socklab schema` need no Docker: exit codes and output as a user sees them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from socklab.catalog import shipped_labs
from socklab.cli import app

runner = CliRunner()

BAD = """\
name: broken
networks:
  lan: {subnet: 10.9.0.0/24}
nodes:
  server:
    networks: {lan: {ip: 10.9.1.5}}
  client:
    networks: [lann]
"""


def test_bad_topology_exits_2_with_one_line_per_problem(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(BAD)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: {path}:6: nodes.server.networks.lan.ip: ")
    assert "10.9.1.5" in lines[0] and "10.9.0.0/24" in lines[0]
    assert lines[1] == f"{path}:8: nodes.client.networks[0]: unknown network 'lann' — did you mean 'lan'?"
    assert "Traceback" not in result.output


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yml")])
    assert result.exit_code == 2
    assert "topology file not found" in result.stderr and "hint:" in result.stderr


@pytest.mark.parametrize("lab", [s.name for s in shipped_labs()])
def test_shipped_labs_are_valid(lab: str) -> None:
    result = runner.invoke(app, ["validate", lab, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["valid"] is True


def test_schema_is_json_for_editors() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert {"name", "networks", "nodes", "scenarios"} <= set(schema["properties"])


def test_invalid_file_with_json_prints_every_problem_on_stdout(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(BAD.replace("networks: [lann]", "networks: [lann]\n    start: [tcp-servr]"))
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["valid"] is False
    assert [(p["line"], p["path"]) for p in data["problems"]] == [
        (6, "nodes.server.networks.lan.ip"),
        (8, "nodes.client.networks[0]"),
        (9, "nodes.client.start[0]"),
    ]
    assert data["problems"][1] == {
        "file": str(path),
        "line": 8,
        "path": "nodes.client.networks[0]",
        "message": "unknown network 'lann'",
        "hint": "did you mean 'lan'?",
    }
    assert data["problems"][2]["hint"] == "did you mean 'tcp-server'?"


def test_missing_file_with_json_is_one_problem(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yml"), "--json"])
    assert result.exit_code == 2
    [problem] = json.loads(result.stdout)["problems"]
    assert problem["line"] is None and "topology file not found" in problem["message"]
