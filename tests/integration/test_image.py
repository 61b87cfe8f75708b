"""The node image on a real daemon: build (bootstrap here), warm rebuild, tools, supervisor.

The image is left in place for the other integration tests; every container made
here carries ``io.socklab.lab=<unique>`` and is removed, even when a test fails.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import socklab.nodes
from socklab.errors import LabError
from socklab.orchestrator import image
from socklab.orchestrator.engine import default_engine
from socklab.orchestrator.engine_api import Engine

from .conftest import lab_name

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TC_HOST", "127.0.0.1")

from testcontainers.core.container import DockerContainer

pytestmark = pytest.mark.docker

LAB = lab_name("image")  # the session's prefix: its sweep removes what a crash leaves
LABELS = {"io.socklab.lab": LAB}
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (\S+)\[(\d+)\] (.*)$")
TOOLS = [
    "python3 --version",
    "ip -V",
    "iptables --version",
    "netstat --version",
    "ping -V",
    "dig -v",
    "ps --version",
    "command -v nc",
    "tcpdump --version",
    "dnsmasq --version",
]


@pytest.fixture(scope="module")
def eng() -> Iterator[Engine]:
    engine = default_engine()
    yield engine
    for found in engine.containers(LABELS):  # belt and braces: nothing of ours survives
        engine.remove_container(found.id)


@pytest.fixture(scope="module")
def built(eng: Engine) -> tuple[str, float, list[str]]:
    progress: list[str] = []
    t0 = time.monotonic()
    tag = image.ensure(eng, on_progress=progress.append)
    return tag, time.monotonic() - t0, progress


@pytest.fixture
def node(eng: Engine, built: tuple[str, float, list[str]]) -> Iterator[DockerContainer]:
    """A node container: socklab-node under docker-init, with a crashing start command."""
    start = [
        ["python3", "-c", "print('about to crash', flush=True); raise SystemExit(3)"],
        ["no-such-command"],
        ["sh", "-c", "echo hello from sh"],
    ]
    container = DockerContainer(
        built[0],
        labels=LABELS,
        init=True,
        env={"SOCKLAB_LAB": LAB, "SOCKLAB_NODE": "n1", "SOCKLAB_START": json.dumps(start)},
    )
    try:
        container.start()
        _wait_logs(container, '"event": "ready"')
        yield container
    finally:
        if container.get_wrapped_container() is not None:
            container.stop()


def _logs(container: DockerContainer) -> str:
    out, err = container.get_logs()
    return out.decode() + err.decode()


def _wait_logs(container: DockerContainer, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = _logs(container)
        if text in logs:
            return logs
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in logs:\n{_logs(container)}")


def _sh(container: DockerContainer, script: str) -> tuple[int, str]:
    code, output = container.exec(["sh", "-c", script])
    return code, output.decode()


def test_ensure_builds_the_tagged_image(eng: Engine, built: tuple[str, float, list[str]]) -> None:
    tag, seconds, progress = built
    assert tag == image.node_image_tag()
    state = image.status(eng)
    assert state.present and state.base_present and state.tag == tag
    assert state.size_bytes is not None and state.size_bytes < 400 * 2**20
    print(f"\nensure: {seconds:.1f} s, {state.size_bytes / 1e6:.0f} MB, progress: {progress[:3]}")
    info = eng.image(tag)
    assert info is not None
    assert info.labels["io.socklab.image"] == "node"
    assert info.command == ("socklab-node",)


def test_second_build_is_warm(eng: Engine, built: tuple[str, float, list[str]]) -> None:
    again = image.build(eng)  # nothing is built again: no bootstrap, no node layer
    assert again.tag == built[0] and not again.built and again.method == "present"


def test_image_has_the_tools_and_the_wrappers(node: DockerContainer) -> None:
    for tool in TOOLS:
        code, out = _sh(node, tool)
        assert code == 0, f"{tool}: {out}"
    for command in socklab.nodes.COMMANDS:
        code, out = _sh(node, f"command -v {command}")
        assert (code, out.strip()) == (0, f"/usr/local/bin/{command}")
    code, out = _sh(node, "wc -c < /opt/socklab/socklab/__init__.py; socklab-start --help")
    assert code == 0 and out.split()[0] == "0"
    code, out = _sh(
        node,
        "ls /usr/share/doc | head -1; ls /var/lib/apt/lists | grep -v -x -e lock"
        " -e partial | wc -l; ls /usr/share/man 2>/dev/null | wc -l",
    )
    assert code == 0 and out.split()[-2:] == ["0", "0"], out


def test_supervisor_keeps_the_node_up_and_tags_lines(node: DockerContainer) -> None:
    _wait_logs(node, "hello from sh")
    logs = _wait_logs(node, '"event": "exited", "app": "python3"')  # after the crash...
    wrapped = node.get_wrapped_container()
    wrapped.reload()
    assert wrapped.status == "running"
    lines = [LINE.match(line) for line in _logs(node).splitlines()]
    assert all(lines), logs
    events = [json.loads(m[3]) for m in lines if m and m[1] == "socklab-node"]
    kinds = [e["event"] for e in events]
    assert kinds.count("ready") == 1
    crashed = {"event": "exited", "app": "python3", "pid": _pid(events, "python3"), "code": 3}
    assert crashed in events
    assert any(e["event"] == "spawn-failed" and e["app"] == "no-such-command" for e in events)
    assert any(m[1] == "python3" and m[3] == "about to crash" for m in lines if m)
    code, out = _sh(node, "ps -eo pid,stat,comm | awk '$2 ~ /^Z/' | wc -l; ps -o comm= -p 1")
    assert code == 0 and out.split() == ["0", "docker-init"], out


def test_socklab_start_adds_an_app_at_runtime(node: DockerContainer) -> None:
    code, out = node.exec(["socklab-start", "sh", "-c", "echo late start; sleep 30"])
    assert code == 0, out
    spawned = json.loads(out.decode().strip().splitlines()[-1])
    assert spawned["event"] == "spawned" and spawned["app"] == "sh#2"
    _wait_logs(node, f"sh#2[{spawned['pid']}] late start")
    code, out = node.exec(["socklab-start", "no-such-command"])
    assert code == 1 and b"ENOENT" in out


def test_stop_is_clean_and_quick(node: DockerContainer) -> None:
    wrapped = node.get_wrapped_container()
    wrapped.stop(timeout=10)
    wrapped.reload()
    # 0, not 137: it stopped on SIGTERM by itself, Docker did not have to SIGKILL it
    assert wrapped.attrs["State"]["ExitCode"] == 0
    assert '"event": "stopping", "signal": "SIGTERM"' in _logs(node)


def test_bootstrap_without_mmdebstrap_says_how_to_install(
    eng: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image.shutil, "which", lambda _name: None)
    with pytest.raises(LabError) as caught:
        image._bootstrap_base(eng, "socklab/base:never", lambda _line: None)
    assert caught.value.message == "mmdebstrap not found"
    assert caught.value.hint == "install it: apt-get install mmdebstrap"


def test_node_layer_wrappers_come_from_commands(tmp_path: Path) -> None:
    nodes = {
        "__init__.py": b'COMMANDS = {"socklab-node": "supervisor", "x-tool": "x_mod"}\n',
        "x_mod.py": b"def main(argv=None):\n    return 0\n",
    }
    recipe = {**image._read_tree(image.RECIPE_DIR, "*"), "Dockerfile.node": b"COPY rootfs/ /\n"}
    image._fill_node_context(tmp_path, "socklab/base:abc", nodes, recipe)
    wrapper = tmp_path / "rootfs/usr/local/bin/x-tool"
    assert wrapper.stat().st_mode & 0o777 == 0o755
    assert "from socklab.nodes.x_mod import main" in wrapper.read_text()
    assert (tmp_path / "rootfs/opt/socklab/socklab/__init__.py").read_bytes() == b""
    assert (tmp_path / "Dockerfile").read_text().startswith("FROM socklab/base:abc\n")


def _pid(events: list[dict[str, object]], app: str) -> object:
    return next(e["pid"] for e in events if e["event"] == "spawned" and e["app"] == app)
