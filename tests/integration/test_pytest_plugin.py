"""The pytest plugin, run as a user runs it: pytest sessions of their own (pytester, in a
subprocess, the plugin found through its entry point) against the real Docker daemon."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from socklab.orchestrator.engine_api import Engine

from .conftest import leftovers

pytest_plugins = ["pytester"]

LAB = """\
name: plug
networks: {lan: {}}
nodes:
  server: {networks: [lan], start: ["tcp-server --port 7000"]}
  client: {networks: [lan]}
scenarios:
  default:
    - run: {node: client, cmd: tcp-client server 7000 --count 1}
  broken:
    - run: {node: client, cmd: tcp-client server 7999 --count 1}
"""


@pytest.fixture
def project(pytester: pytest.Pytester, node_image: str) -> pytest.Pytester:
    pytester.makefile(".yml", lab=LAB)
    return pytester


def labs_of(engine: Engine, prefix: str = "plug-") -> set[str]:
    return {c.lab for c in engine.containers({"io.socklab.lab": ""}) if c.lab.startswith(prefix)}


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", *args, timeout=600)


def test_fixture_lifecycle_and_scopes(project: pytest.Pytester, engine: Engine) -> None:
    project.makepyfile(
        test_it="""
        from pathlib import Path

        def test_function_lab(socklab_lab):
            lab = socklab_lab("lab.yml")
            assert lab.is_up() and lab.name.startswith("plug-") and lab.name != "plug"
            result = lab.node("client").exec("tcp-client server 7000 --count 1")
            assert result.ok, result.stderr
            Path("function.txt").write_text(lab.name)

        def test_module_lab(socklab_lab):
            first = socklab_lab("lab.yml", scope="module")
            assert socklab_lab("lab.yml", scope="module") is first
            Path("module.txt").write_text(first.name)

        def test_yaml_text(socklab_lab_session):
            lab = socklab_lab_session("name: plugtext\\nnetworks: {lan: {}}\\n"
                                      "nodes: {a: {networks: [lan]}}\\n")
            assert lab.node("a").exec("true").ok
            Path("session.txt").write_text(lab.name)
        """
    )
    result = run(project)
    result.assert_outcomes(passed=3)
    for made in ("function", "module", "session"):
        name = (project.path / f"{made}.txt").read_text()
        assert leftovers(engine, name) == [], made


def test_skipped_without_a_docker_daemon(
    project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(
        test_it="""
        def test_needs_a_lab(socklab_lab):
            socklab_lab("lab.yml")

        def test_needs_nothing():
            pass
        """
    )
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    result = run(project)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*socklab: Docker daemon not reachable*"])


def test_a_failure_carries_logs_sockets_and_timeline(
    project: pytest.Pytester, engine: Engine, tmp_path: Path
) -> None:
    project.makepyfile(
        test_it="""
        from pathlib import Path

        def test_fails(socklab_lab):
            lab = socklab_lab("lab.yml")
            Path("name.txt").write_text(lab.name)
            lab.node("client").exec("tcp-client server 7000 --count 1")
            assert False, "the server did not answer as I wished"
        """
    )
    artifacts = tmp_path / "artifacts"
    result = run(project, f"--socklab-artifacts={artifacts}", "--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    name = (project.path / "name.txt").read_text()
    out = result.stdout.str()
    assert f"socklab: lab {name}" in out
    assert ":::7000" in out and "LISTEN" in out and "/tcp-server" in out  # the socket table
    assert "listening" in out and "accepted" in out  # the timeline
    assert "logs of server" in out
    folder = next(artifacts.glob(f"*/{name}"))
    assert "LISTEN" in (folder / "sockets.txt").read_text()
    assert json.loads((folder / "sockets.json").read_text())["server"]
    assert '"event": "listening"' in (folder / "logs" / "server.log").read_text()
    assert "accepted" in (folder / "timeline.txt").read_text()
    case = ET.parse(project.path / "junit.xml").getroot().find(".//testcase")
    assert case is not None
    system_out = case.find("system-out")
    assert system_out is not None and "LISTEN" in (system_out.text or "")
    assert leftovers(engine, name) == []


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_keep_leaves_the_lab_up_and_says_how_to_remove_it(
    project: pytest.Pytester, engine: Engine, xdist: list[str]
) -> None:
    project.makepyfile(
        test_it="""
        from pathlib import Path

        def test_up(socklab_lab):
            Path("name.txt").write_text(socklab_lab("lab.yml").name)
        """
    )
    result = run(project, "--socklab-keep", *xdist)  # (under xdist a worker kept it)
    result.assert_outcomes(passed=1)
    name = (project.path / "name.txt").read_text()
    try:
        result.stdout.fnmatch_lines([f"lab '{name}' is still up: socklab down --lab {name}"])
        assert leftovers(engine, name)
    finally:
        subprocess.run(
            [sys.executable, "-m", "socklab.cli", "down", "--lab", name], check=True, capture_output=True
        )


def test_reuse_takes_the_lab_of_an_earlier_session(project: pytest.Pytester, engine: Engine) -> None:
    project.makepyfile(
        test_it="""
        from pathlib import Path

        def test_up(socklab_lab):
            lab = socklab_lab("lab.yml")
            with open("ids.txt", "a") as out:
                out.write(lab.name + " " + lab.node("server").get_container_id() + "\\n")
        """
    )
    try:
        run(project, "--socklab-reuse").assert_outcomes(passed=1)
        run(project, "--socklab-reuse").assert_outcomes(passed=1)
        first, second = (project.path / "ids.txt").read_text().splitlines()
        assert first == second  # the same lab, the same container: not made again
        run(project).assert_outcomes(passed=1)  # without --socklab-reuse: a lab of its own
        third = (project.path / "ids.txt").read_text().splitlines()[2]
        assert third.split()[0] != first.split()[0]
        assert leftovers(engine, third.split()[0]) == []
    finally:
        name = (project.path / "ids.txt").read_text().split()[0]
        subprocess.run([sys.executable, "-m", "socklab.cli", "down", "--lab", name], capture_output=True)


def test_marker_runs_the_scenario_as_the_test(project: pytest.Pytester, engine: Engine) -> None:
    project.makepyfile(
        test_it="""
        import pytest
        from pathlib import Path

        pytestmark = pytest.mark.socklab("lab.yml")

        @pytest.mark.socklab("lab.yml", scenario="default")
        def test_default(socklab_run):
            assert socklab_run.passed and len(socklab_run.steps) == 1

        @pytest.mark.socklab("lab.yml", scenario="broken")
        def test_broken():
            pass

        def test_the_modules_lab(socklab_lab):
            lab = socklab_lab()
            assert lab.node("server").exec("true").ok
            Path("name.txt").write_text(lab.name)
        """
    )
    result = run(project)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(  # its failed steps, not a traceback of the plugin
        ["_*_ test_broken _*_", "scenario plug-*/broken failed*", "step 1 run client*ECONNREFUSED*"]
    )
    assert "pytest_plugin.py" not in result.stdout.str()
    assert leftovers(engine, (project.path / "name.txt").read_text()) == []


def test_sigterm_tears_down_and_a_killed_sessions_lab_is_swept(
    project: pytest.Pytester, engine: Engine
) -> None:
    project.makepyfile(
        test_it="""
        import time
        from pathlib import Path

        def test_waits(socklab_lab):
            lab = socklab_lab("lab.yml")
            other = socklab_lab("lab.yml", scope="module")  # two labs of one session
            Path(f"{lab.name}.up").write_text(other.name)
            time.sleep(300)
        """
    )
    before = labs_of(engine)

    def session() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_it.py"],
            cwd=project.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def up_labs() -> list[str]:
        deadline = time.monotonic() + 120
        while not list(project.path.glob("*.up")):
            assert time.monotonic() < deadline, "the labs never came up"
            time.sleep(0.1)
        found = next(project.path.glob("*.up"))
        other = found.read_text()
        found.unlink()
        return [found.stem, other]

    terminated = session()
    names = up_labs()
    terminated.send_signal(signal.SIGTERM)
    terminated.communicate(timeout=120)
    assert [leftovers(engine, n) for n in names] == [[], []]  # torn down like after Ctrl-C

    killed = session()
    names = up_labs()
    killed.kill()  # SIGKILL: nothing of that session can clean up
    killed.communicate(timeout=60)
    assert all(leftovers(engine, n) for n in names)
    project.makepyfile(
        test_it="""
        def test_any(socklab_lab):
            socklab_lab("name: other\\nnetworks: {lan: {}}\\nnodes: {a: {networks: [lan]}}\\n")
        """
    )
    run(project).assert_outcomes(passed=1)  # its first lab sweeps the dead session's
    assert [leftovers(engine, n) for n in names] == [[], []]
    assert labs_of(engine) <= before


def test_sigterm_to_an_xdist_controller_removes_its_workers_labs(
    project: pytest.Pytester, engine: Engine
) -> None:
    """A CI job cancelled where only pytest's own process gets SIGTERM (a container's PID 1, a
    job started in the background of a script: SIGINT ignored, so execnet's nudge to the
    workers does nothing): the controller passes it to the workers, and when it exits no lab
    of its run is left."""
    project.makepyfile(
        test_it="""
        import time
        from pathlib import Path

        import pytest

        @pytest.mark.parametrize("n", [1, 2])
        def test_waits(socklab_lab, n):
            lab = socklab_lab("lab.yml")
            Path(f"{lab.name}.up").write_text("")
            time.sleep(300)
        """
    )
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", "test_it.py"],
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    deadline = time.monotonic() + 180
    while len(list(project.path.glob("*.up"))) < 2:
        assert time.monotonic() < deadline, "the labs never came up"
        time.sleep(0.2)
    names = [p.stem for p in project.path.glob("*.up")]
    assert len({n.rsplit("-", 2)[-3] for n in names}) == 1  # one run id, two workers
    session.send_signal(signal.SIGTERM)
    out, _ = session.communicate(timeout=120)
    assert [leftovers(engine, n) for n in names] == [[], []], out.decode()


def test_an_xdist_worker_that_is_done_leaves_the_other_workers_labs_alone(
    project: pytest.Pytester, engine: Engine
) -> None:
    """The workers share a run id; the one that finishes first removes its own labs only."""
    project.makeconftest(
        """
        import os
        from pathlib import Path

        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_unconfigure(config):
            if hasattr(config, "workerinput"):  # after socklab's own end of the session
                Path(f"{config.workerinput['workerid']}.done").write_text("")
        """
    )
    for name, wait in (("test_quick", False), ("test_slow", True)):
        project.makepyfile(
            **{
                name: f"""
            import time
            from pathlib import Path

            def test_it(socklab_lab, worker_id):
                lab = socklab_lab("lab.yml")
                Path(f"{{lab.name}}.lab").write_text("")
                if {wait}:
                    deadline = time.monotonic() + 120
                    while not [p for p in Path().glob("*.done") if p.stem != worker_id]:
                        assert time.monotonic() < deadline, "the other worker never finished"
                        time.sleep(0.2)
                    assert lab.node("client").exec("tcp-client server 7000 --count 1").ok
            """
            }
        )
    result = run(project, "-n", "2", "--dist", "loadfile")
    result.assert_outcomes(passed=2)
    names = [p.stem for p in project.path.glob("*.lab")]
    assert len(names) == 2 and [leftovers(engine, n) for n in names] == [[], []]
