"""SIGTERM and SIGHUP (a cancelled CI job) sent to a real `socklab up` / `socklab run` process:
handled like Ctrl-C, nothing left behind, the run's report written and marked interrupted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from socklab import Lab
from socklab.orchestrator.engine_api import Engine

from .conftest import leftovers


def socklab(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "socklab.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def wait_for(condition: Callable[[], object], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def containers(engine: Engine, lab: str, state: str | None = None) -> list[object]:
    return [c for c in engine.containers({"io.socklab.lab": lab}) if state is None or c.state == state]


@pytest.mark.parametrize(
    ("sig", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGHUP, 129, "SIGHUP")]
)
def test_signal_during_up_rolls_back(
    sig: signal.Signals, code: int, name: str, write_lab: Callable[..., Path], engine: Engine, node_image: str
) -> None:
    path = write_lab(
        {"networks": {"lan": {}}, "nodes": {"c": {"replicas": 16, "networks": ["lan"]}}}, "sigup"
    )
    lab = Lab.load(path).name
    proc = socklab("up", str(path))
    wait_for(lambda: containers(engine, lab), "the first container")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert f"interrupted ({name}): lab '{lab}' was removed".encode() in err, err
    assert b"Traceback" not in err
    assert leftovers(engine, lab) == []


def test_sigterm_during_run_writes_the_report_and_a_second_one_waits(
    write_lab: Callable[..., Path], engine: Engine, node_image: str, tmp_path: Path
) -> None:
    doc = {
        "networks": {"lan": {}},
        "nodes": {
            "server": {"networks": ["lan"], "start": ["tcp-server --port 5000"]},
            "client": {"replicas": 10, "networks": ["lan"]},
        },
        "scenarios": {
            "default": [
                {"wait": {"node": "server", "listening": "tcp/5000"}},
                {"run": {"node": "client-*", "cmd": "sleep 120"}},
            ]
        },
    }
    path = write_lab(doc, "sigrun")
    lab = Lab.load(path).name
    folder = tmp_path / "r"
    proc = socklab("run", str(path), "--report", str(folder))
    assert proc.stdout is not None
    for line in proc.stdout:  # step 1 done: step 2 (every client sleeping) is under way
        if line.lstrip().startswith("✓ 1 ".encode()):
            break
    else:
        raise AssertionError(f"step 1 never passed: {proc.communicate()}")
    wait_for(
        lambda: engine.exec(f"socklab-{lab}-client-10", ["pgrep", "-x", "sleep"]).ok,
        "the last client's sleep",
    )
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: (folder / "report.json").exists(), "the report")
    assert proc.poll() is None  # the lab is being taken down now: a second SIGTERM is held
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert f"interrupted (SIGTERM): lab '{lab}' was removed".encode() in err, err
    assert f"partial report: {folder / 'report.html'}".encode() in err
    assert leftovers(engine, lab) == []
    report = json.loads((folder / "report.json").read_text())
    assert report["passed"] is False and report["interrupted"] == "SIGTERM"
    assert report["error"] == "interrupted (SIGTERM) during step 2 of 2"
    assert [s["status"] for s in report["steps"]] == ["passed"]
    assert {n["node"] for n in report["nodes"]} >= {"server", "client-10"}  # collected first
    assert (folder / "logs" / "server.log").read_text()
    suite = ET.parse(folder / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1"


def test_sigterm_while_run_deploys_still_writes_the_report(
    write_lab: Callable[..., Path], engine: Engine, node_image: str, tmp_path: Path
) -> None:
    doc = {
        "networks": {"lan": {}},
        "nodes": {"c": {"replicas": 16, "networks": ["lan"]}},
        "scenarios": {"default": [{"sleep": 1}]},
    }
    path = write_lab(doc, "sigdep")
    lab = Lab.load(path).name
    proc = socklab("run", str(path), "--report", str(tmp_path / "r"))
    wait_for(lambda: containers(engine, lab), "the first container")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert leftovers(engine, lab) == []
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["interrupted"] == "SIGTERM"
    assert report["error"] == "interrupted (SIGTERM) while the lab was coming up"


def test_a_killed_up_leaves_a_lab_that_down_removes(
    write_lab: Callable[..., Path], engine: Engine, node_image: str
) -> None:
    path = write_lab(
        {"networks": {"lan": {}, "wan": {}}, "nodes": {"c": {"replicas": 16, "networks": ["lan", "wan"]}}},
        "kill",
    )
    lab = Lab.load(path).name
    proc = socklab("up", str(path))
    wait_for(lambda: len(containers(engine, lab, "running")) >= 4, "four running nodes")
    proc.kill()  # SIGKILL: no handler runs; starts in flight go on in the daemon
    proc.communicate(timeout=60)
    assert containers(engine, lab)
    down = subprocess.run(
        [sys.executable, "-m", "socklab.cli", "down", "--lab", lab],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert down.returncode == 0, down.stderr
    assert "2 networks" in down.stdout
    assert leftovers(engine, lab) == []
