"""`socklab run` end to end: passing, failing and interrupted scenarios, every step kind."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from socklab import Lab
from socklab.catalog import LABS_DIR, default_lab_file
from socklab.cli import app
from socklab.errors import LabError
from socklab.orchestrator.engine_api import Engine

from .browser import measure
from .conftest import leftovers

runner = CliRunner()

SERVER_AND_CLIENTS = {
    "networks": {"lan": {}},
    "nodes": {
        "server": {
            "networks": {"lan": {"aliases": ["echo"]}},
            "start": ["tcp-server --port 5000 --mode threaded --delay 0.05"],
        },
        "client": {"replicas": 2, "networks": ["lan"]},
    },
}


def run_cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["run", *args])
    return result.exit_code, result.stdout + result.stderr


def junit_cases(path: Path) -> dict[str, str | None]:
    """testcase name -> failure message (None when it passed)."""
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    out = {}
    for case in suite.iter("testcase"):
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        out[str(case.get("name"))] = None if failure is None else failure.get("message")
    return out


def test_passing_scenario_with_every_step_kind(
    write_lab: Callable[..., Path], engine: Engine, node_image: str, tmp_path: Path
) -> None:
    doc = {
        **SERVER_AND_CLIENTS,
        "scenarios": {
            "default": [
                {"wait": {"node": "server", "listening": "tcp/5000"}},
                {
                    "parallel": [
                        {
                            "run": {
                                "node": "client-*",
                                "cmd": "tcp-client echo 5000 --count 3",
                                "expect": {"exit": 0, "stdout_contains": '"event": "received"'},
                            }
                        },
                        {"sleep": 0.2},
                    ]
                },
                {"start": {"node": "client-1", "cmd": "tcp-client server 5000 --count 200"}},
                {"wait": {"node": "client-1", "connected": "server:5000", "timeout": 10}},
                {"expect_sockets": {"node": "server", "state": "ESTABLISHED", "local_port": 5000, "min": 1}},
                {"expect_sockets": {"node": "client", "state": "TIME_WAIT", "min": 2}},
                {
                    "run": {
                        "node": "client-2",
                        "cmd": ["tcp-client", "server", "5999"],
                        "expect": {"errno": "ECONNREFUSED"},
                    }
                },
                {"snapshot": "sockets"},
            ]
        },
    }
    path = write_lab(doc, "pass")
    name = Lab.load(path).name
    folder = tmp_path / "run"
    code, output = run_cli(str(path), "--report", str(folder), "--junit", str(tmp_path / "j.xml"))
    assert code == 0, output
    assert "PASSED" in output and "10 of 10 steps passed" in output
    assert {p.name for p in folder.iterdir()} == {
        "report.json",
        "report.html",
        "junit.xml",
        "logs",
        "sockets",
    }
    assert sorted(p.name for p in (folder / "logs").iterdir()) == [
        "client-1.log",
        "client-2.log",
        "server.log",
    ]
    shot = json.loads((folder / "sockets" / "8-snapshot" / "server.json").read_text())
    assert any(
        r["state"] == "LISTEN" and r["local_port"] == 5000 and r["program"] == "tcp-server" for r in shot
    )
    cases = junit_cases(folder / "junit.xml")
    assert len(cases) == 10 and all(v is None for v in cases.values())
    assert junit_cases(tmp_path / "j.xml") == cases
    data = json.loads((folder / "report.json").read_text())
    assert data["passed"] is True and data["topology"]["name"] == name
    assert [s["kind"] for s in data["steps"]] == [
        "wait",
        "parallel",
        "start",
        "wait",
        "expect_sockets",
        "expect_sockets",
        "run",
        "snapshot",
    ]
    events = [(e["node"], e["event"]) for e in data["timeline"]]
    assert ("server", "listening") in events and ("client-1", "connected") in events
    assert {"client": "client-1", "server": "server", "port": 5000, "count": 1} in data["connections"]
    # the report's diagram is the lab's graph, with the addresses the nodes had
    links = {(x["node"], x["network"]): x for x in data["graph"]["links"]}
    assert {
        (n["node"], net, ip.split("/")[0]) for n in data["nodes"] for net, ip in n["networks"].items()
    } == {(k[0], k[1], x["ip"]) for k, x in links.items()}
    assert links["server", "lan"]["aliases"] == ["echo"]
    assert links["client-1", "lan"]["aliases"] == ["client"]
    page = (folder / "report.html").read_text()
    assert links["server", "lan"]["ip"] in page and 'id="mermaid"' in page
    assert leftovers(engine, name) == []


def test_failing_scenario_exit_1_and_exactly_the_failing_steps(
    write_lab: Callable[..., Path], engine: Engine, node_image: str, tmp_path: Path
) -> None:
    doc = {
        **SERVER_AND_CLIENTS,
        "scenarios": {
            "default": [
                {"wait": {"node": "server", "listening": "tcp/5000"}},
                {
                    "run": {
                        "node": "client-1",
                        "cmd": "tcp-client echo 5000",
                        "expect": {"errno": "ECONNREFUSED"},
                    }
                },
                {
                    "parallel": [
                        {"run": {"node": "client-2", "cmd": "tcp-client echo 5000"}},
                        {"run": {"node": "client-2", "cmd": "sh -c 'exit 4'", "expect": {"exit": 3}}},
                    ]
                },
                {"expect_sockets": {"node": "server", "state": "LISTEN", "local_port": 6000}},
                {"wait": {"node": "server", "listening": "udp/7", "timeout": 0.5}},
            ]
        },
    }
    path = write_lab(doc, "fail")
    folder = tmp_path / "run"
    code, output = run_cli(str(path), "--report", str(folder))
    assert code == 1
    assert "FAILED" in output and "2 of 7 steps passed" in output
    assert "client-1: expected ECONNREFUSED, got exit 0" in output
    failing = {k: v for k, v in junit_cases(folder / "junit.xml").items() if v is not None}
    assert failing == {
        "step 2 run client-1: tcp-client echo 5000": failing["step 2 run client-1: tcp-client echo 5000"],
        "step 3 parallel (2 steps)": "1 of 2 parallel steps failed: step 3.2 (run)",
        "step 3.2 run client-2: sh -c 'exit 4'": "client-2: expected exit 3, got exit 4",
        "step 4 expect_sockets server: >= 1 LISTEN sockets on local port 6000": (
            "expected at least 1 LISTEN sockets on local port 6000 on server, found 0 (server: 0)"
        ),
        "step 5 wait server listening udp/7": "expected server listening on udp/7 within 0.5 s, it was not",
    }
    assert failing["step 2 run client-1: tcp-client echo 5000"].startswith(
        "client-1: expected ECONNREFUSED, got exit 0: "
    )
    assert leftovers(engine, Lab.load(path).name) == []


def test_keep_leaves_the_lab_up(
    write_lab: Callable[..., Path], engine: Engine, node_image: str, tmp_path: Path
) -> None:
    doc = {
        **SERVER_AND_CLIENTS,
        "scenarios": {"smoke": [{"run": {"node": "client-*", "cmd": "getent hosts echo"}}]},
    }
    path = write_lab(doc, "keep")
    lab = Lab.load(path)
    try:
        code, output = run_cli(str(path), "--keep", "--report", str(tmp_path / "r"))
        assert code == 0, output
        assert "still up" in output
        assert [s.state for s in lab.status()] == ["running"] * 3
    finally:
        lab.down()


def test_bad_input_exits_2_before_deploying(
    write_lab: Callable[..., Path], engine: Engine, tmp_path: Path
) -> None:
    doc = {**SERVER_AND_CLIENTS, "scenarios": {"default": [{"sleep": 0}], "other": []}}
    path = write_lab(doc, "bad")
    code, output = run_cli(str(path), "--scenario", "nope", "--report", str(tmp_path / "r"))
    assert code == 2 and "unknown scenario 'nope'" in output and "default, other" in output
    # a fault step run could not apply is refused with the file (validate checks them)
    faulty = write_lab(
        {**SERVER_AND_CLIENTS, "scenarios": {"default": [{"fault": {"heal": ["client-1", "server"]}}]}},
        "faulty",
    )
    code, output = run_cli(str(faulty), "--report", str(tmp_path / "r"))
    assert code == 2 and "are not partitioned at this step" in output
    code, output = run_cli(str(tmp_path / "missing.yml"))
    assert code == 2 and "topology file not found" in output
    assert leftovers(engine, Lab.load(path).name) == []


def test_interrupted_run_leaves_nothing(
    write_lab: Callable[..., Path], engine: Engine, node_image: str, tmp_path: Path
) -> None:
    doc = {
        **SERVER_AND_CLIENTS,
        "scenarios": {
            "default": [{"run": {"node": "server", "cmd": "touch /tmp/step-1-ran"}}, {"sleep": 60}]
        },
    }
    path = write_lab(doc, "intr")
    lab = Lab.load(path, engine=engine)
    name = lab.name
    proc = subprocess.Popen(
        [sys.executable, "-m", "socklab.cli", "run", str(path), "--report", str(tmp_path / "r")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    def in_the_scenario() -> bool:  # the first step ran: the lab is up, step 2 sleeps
        try:
            return lab.node("server").exec(["test", "-e", "/tmp/step-1-ran"]).ok
        except LabError:  # not up, or not running yet
            return False

    deadline = time.monotonic() + 60
    while not in_the_scenario() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"interrupted (Ctrl-C): lab '{name}' was removed".encode() in err, err
    assert f"partial report: {tmp_path / 'r' / 'report.html'}".encode() in err, err
    assert leftovers(engine, name) == []
    report = json.loads((tmp_path / "r" / "report.json").read_text())  # evidence kept
    assert report["passed"] is False and report["error"].startswith("interrupted (Ctrl-C)")
    assert junit_cases(tmp_path / "r" / "junit.xml")["run"] == report["error"]


def test_local_socklab_yml_is_the_default(
    write_lab: Callable[..., Path],
    engine: Engine,
    node_image: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = {
        **SERVER_AND_CLIENTS,
        "scenarios": {"default": [{"wait": {"node": "server", "listening": "tcp/5000"}}]},
    }
    src = write_lab(doc, "local")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "socklab.yml").write_text(src.read_text())
    code, output = run_cli()
    assert code == 0, output
    name = Lab.load(src).name
    assert f"PASSED {name}/default: 1 of 1 steps passed" in output
    assert len(list((tmp_path / "runs").glob(f"{name}-*/report.html"))) == 1


def test_default_lab_runs_and_its_report_renders_in_a_real_browser(
    write_lab: Callable[..., Path],
    engine: Engine,
    node_image: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # no socklab.yml here: `socklab run` runs the shipped echo lab
    assert default_lab_file() == LABS_DIR / "echo.yml"
    # ... here under this run's own name, so that runs sharing a daemon never clash
    doc = yaml.safe_load(default_lab_file().read_text())
    path = write_lab({k: v for k, v in doc.items() if k != "name"}, "echo")
    name = Lab.load(path).name
    code, output = run_cli(str(path))
    assert code == 0, output
    assert f"PASSED {name}/default: 12 of 12 steps passed" in output
    (folder,) = (tmp_path / "runs").glob(f"{name}-*")
    chromium = shutil.which("chromium")
    assert chromium, "chromium is needed to check the HTML report (`make test` installs it)"
    page = (folder / "report.html").resolve()
    shot = tmp_path / "report.png"
    base = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [*base, "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000
    steps = json.loads((folder / "report.json").read_text())["steps"]
    assert dom.stdout.count('<tr class="step passed">') == len(steps) == 12
    assert 'id="verdict">PASSED' in dom.stdout and 'id="topology"' in dom.stdout
    assert 'id="connections"' in dom.stdout and 'id="timeline"' in dom.stdout
    assert "CONSOLE" not in dom.stderr and "Uncaught" not in dom.stderr
    for width in (1400, 390):  # a desktop and a phone: nothing overflows, wraps or overlaps
        found = measure(page, width, tmp_path)
        assert (found["width"], found["scroll"]) == (width, width), found
        assert found["wrapped"] == found["outside"] == found["overlaps"] == found["spill"] == []
        assert found["times"] >= 12
    assert leftovers(engine, name) == []
