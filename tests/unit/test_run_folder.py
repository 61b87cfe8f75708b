"""The run folder (`socklab run --report DIR`): made, emptied of an earlier run, or refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from socklab.errors import LabError
from socklab.scenario import folder

runner = CliRunner()


def earlier_run(path: Path) -> Path:
    (path / "logs").mkdir(parents=True)
    (path / "logs" / "gone-node.log").write_text("old")
    (path / "sockets" / "3-snapshot").mkdir(parents=True)
    (path / "captures").mkdir()
    (path / "captures" / "hs.pcap").write_bytes(b"old")
    (path / "report.json").write_text(json.dumps({"lab": "x", "scenario": "default", "steps": []}))
    (path / "report.html").write_text("<html>")
    (path / "junit.xml").write_text("<testsuites/>")
    return path


def test_a_new_folder_is_made_with_its_parents(tmp_path: Path) -> None:
    made = folder.prepare(tmp_path / "a" / "b")
    assert made.is_dir() and list(made.iterdir()) == []


def test_an_earlier_run_folder_is_emptied_of_that_runs_files(tmp_path: Path) -> None:
    path = earlier_run(tmp_path / "run")
    (path / "mine.pcap").write_text("kept: not a file a run writes")
    folder.prepare(path)
    assert sorted(p.name for p in path.iterdir()) == ["mine.pcap"]


def test_a_non_empty_folder_that_is_not_a_run_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "report.json").write_text('{"something": "else"}')
    with pytest.raises(LabError, match="not empty and is not a socklab run folder") as exc:
        folder.prepare(tmp_path)
    assert exc.value.hint and "--report" in exc.value.hint
    assert (tmp_path / "notes.txt").exists() and (tmp_path / "report.json").exists()


def test_an_empty_folder_is_used(tmp_path: Path) -> None:
    assert folder.prepare(tmp_path) == tmp_path


@pytest.mark.parametrize("where", ["/proc/x", "/proc/x/y", "FILE"])
def test_an_unusable_place_is_a_clear_error(tmp_path: Path, where: str) -> None:
    if where == "FILE":
        where = str(tmp_path / "f")
        Path(where).write_text("")
    with pytest.raises(LabError, match=re.escape(f"cannot use {where} as the run folder")):
        folder.prepare(Path(where))


def test_junit_needs_a_writable_place(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=re.escape("cannot write --junit /proc/x/j.xml")):
        folder.prepare_junit(Path("/proc/x/j.xml"))
    with pytest.raises(LabError, match="is a directory"):
        folder.prepare_junit(tmp_path)
    assert folder.prepare_junit(tmp_path / "ci" / "j.xml").parent.is_dir()


@pytest.mark.parametrize("args", [["--report", "/proc/x"], ["--junit", "/proc/x/j.xml"]])
def test_cli_says_it_in_two_lines_before_deploying(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from socklab.cli import app
    from socklab.lab import Lab

    def no_docker(*_: object, **__: object) -> None:
        raise AssertionError("the lab must not be brought up")

    monkeypatch.setattr(Lab, "up", no_docker)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", "echo", *args])
    assert result.exit_code == 2, result.output
    error, hint = result.stderr.splitlines()
    assert error.startswith("error: cannot ") and "/proc/x" in error
    assert hint.startswith("hint: give ")
    assert "unexpected" not in result.stderr
    assert not (tmp_path / "runs").exists()
