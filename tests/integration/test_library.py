"""The library API as a pytest user writes it: Lab.from_yaml, nodes, files, waits, typed results,
errors to catch; and `socklab exec` with piped input, --timeout, a missing command, a stopped node."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import socklab
from socklab import (
    CommandNotFound,
    Event,
    ExecTimeout,
    Lab,
    LabAlreadyUp,
    NodeNotFound,
    NodeNotRunning,
    RunResult,
    TopologyError,
)
from socklab.orchestrator.engine_api import Engine

from .conftest import lab_name, leftovers

DOC = {
    "networks": {"lan": {"ipv6": True}},
    "nodes": {
        "server": {"networks": ["lan"], "start": ["tcp-server --port 7000"], "ports": [7000]},
        "client": {"replicas": 2, "networks": ["lan"]},
    },
    "scenarios": {
        "default": [
            {"wait": {"node": "server", "listening": "tcp/7000"}},
            {"run": {"node": "client-*", "cmd": "tcp-client server 7000 --count 1"}},
        ]
    },
}


@pytest.fixture(scope="module")
def lab(node_image: str, engine: Engine, ipv6_unsupported: str | None) -> Iterator[Lab]:
    doc = {"name": lab_name("lib"), **DOC}
    if ipv6_unsupported:
        doc["networks"] = {"lan": {}}
    with Lab.from_yaml(doc, engine=engine) as up:
        yield up
    assert leftovers(engine, up.name) == []


def socklab_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "socklab.cli", *args], input=stdin, capture_output=True, timeout=120
    )


def test_errors_are_lab_errors_exported_from_socklab() -> None:
    for name in (
        "DaemonUnavailable",
        "LabAlreadyUp",
        "NodeNotFound",
        "TopologyError",
        "ExecTimeout",
        "CommandNotFound",
        "NodeNotRunning",
    ):
        assert issubclass(getattr(socklab, name), socklab.LabError), name
    with pytest.raises(TopologyError, match="unknown network 'lann'"):
        Lab.from_yaml("name: x\nnetworks: {lan: {}}\nnodes: {a: {networks: [lann]}}\n")


def test_exec_with_stdin_timeout_and_the_errors_to_catch(lab: Lab) -> None:
    client = lab.node("client-1")
    assert client.exec(["cat"], stdin="hello\n").stdout == "hello\n"
    assert client.exec("sh -c 'exit 3'").exit_code == 3
    with pytest.raises(ExecTimeout) as late:
        client.exec(["sh", "-c", "echo started; sleep 30"], timeout=1)
    assert late.value.stdout == "started\n" and "did not finish in 1 s" in late.value.message
    assert client.exec("pgrep -x sleep").exit_code == 1  # killed, not left running
    with pytest.raises(CommandNotFound, match="no command 'nosuch' in node client-1"):
        client.exec("nosuch --flag")
    with pytest.raises(NodeNotFound) as missing:
        lab.node("clinet-1")
    assert missing.value.hint == "nodes: server, client-1, client-2"
    with pytest.raises(NodeNotFound, match="matches 2 nodes"):
        lab.node("client")


def test_selectors_addresses_ports_and_files(lab: Lab) -> None:
    assert [n.name for n in lab.nodes("client")] == ["client-1", "client-2"]
    assert [n.name for n in lab.nodes("client-*")] == ["client-1", "client-2"]
    server = lab.node("server")
    assert server.ip("lan").startswith("10.") and server.ip() == server.ip("lan")
    if lab.topology and lab.topology.networks["lan"].ipv6:
        assert ":" in server.ipv6()
    lab.wait_listening("server", "tcp/7000", timeout=30)
    port = server.host_port(7000)
    assert server.get_exposed_port(7000) == port and server.get_container_host_ip() == "127.0.0.1"
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:  # the published port
        conn.sendall(b"ping")
        assert conn.recv(4) == b"ping"
    server.put_file("/srv/data/greeting.txt", "hello\n")
    assert server.get_file("/srv/data/greeting.txt") == b"hello\n"
    assert server.exec("cat /srv/data/greeting.txt").stdout == "hello\n"


def test_start_wait_log_timeline_connections(lab: Lab) -> None:
    lab.node("server").start("tcp-server --port 7001 --mode threaded --delay 60")
    lab.wait_listening("server", "tcp/7001", timeout=30)
    line = lab.wait_log("server", r'"event": "listening".*"port": 7001', timeout=30)
    assert "tcp-server" in line
    hold = lab.node("client-2")
    hold.start("tcp-client server 7001 --count 1 --timeout 90")  # waits for its echo
    lab.wait_log("client-2", r'"event": "connected"', timeout=30)
    pairs = [(c.client.node, c.server.node, c.server.local_port) for c in lab.connections()]
    assert ("client-2", "server", 7001) in pairs
    events = lab.timeline()
    assert all(isinstance(e, Event) for e in events)
    assert any(e.node == "server" and e.event == "listening" for e in events)
    rows = lab.sockets("client")
    assert {r.node for r in rows} == {"client-1", "client-2"}


def test_run_on_a_lab_that_is_up_keeps_it_up(lab: Lab, tmp_path: Path) -> None:
    result = lab.run(report_dir=tmp_path / "r")
    assert isinstance(result, RunResult) and result.passed, result.error
    assert (tmp_path / "r" / "report.json").exists()
    assert all(Path(path).exists() for path in result.reports.values())
    assert lab.is_up()


def test_reuse_takes_the_lab_up_from_the_same_content(lab: Lab, engine: Engine) -> None:
    same = Lab.from_yaml(
        lab.topology.model_dump(mode="json") if lab.topology else {}, engine=engine, name=lab_name("other")
    )
    assert same.up(reuse=True) is same and same.name == lab.name  # taken, not made again
    changed = Lab.from_yaml({**DOC, "name": lab.name, "networks": {"lan": {}}}, engine=engine)
    with pytest.raises(LabAlreadyUp):
        changed.up(reuse=True)
    with pytest.raises(LabAlreadyUp):
        changed.up()


def test_lab_network_is_what_testcontainers_joins(lab: Lab) -> None:
    net = lab.network("lan")
    assert net.name == f"socklab-{lab.name}-lan" and net.id
    with pytest.raises(socklab.LabError, match="no network 'wan'"):
        lab.network("wan")


def test_run_from_scratch_takes_the_lab_down(engine: Engine, node_image: str, tmp_path: Path) -> None:
    fresh = Lab.from_yaml({"name": lab_name("librun"), **DOC, "networks": {"lan": {}}}, engine=engine)
    result = fresh.run("default", tmp_path / "run")
    assert result.passed and [s.status for s in result.steps] == ["passed", "passed"]
    assert leftovers(engine, fresh.name) == []


def test_cli_exec_pipes_stdin_times_out_and_names_what_is_missing(
    write_lab: Callable[..., Path], engine: Engine, node_image: str
) -> None:
    path = write_lab(
        {
            "networks": {"lan": {}},
            "nodes": {"n": {"networks": ["lan"]}, "m": {"replicas": 2, "networks": ["lan"]}},
        },
        "cliexec",
    )
    the_lab = Lab.load(path, engine=engine).up()
    try:
        piped = socklab_cli("exec", str(path), "n", "--", "cat", stdin=b"hi\n")
        assert piped.returncode == 0 and piped.stdout == b"hi\n", piped.stderr
        missing = socklab_cli("exec", str(path), "n", "--", "nosuch")
        assert missing.returncode == 127
        assert missing.stderr.decode().startswith("error: no command 'nosuch' in node n")
        late = socklab_cli("exec", "--timeout", "1", str(path), "n", "--", "sh", "-c", "echo begun; sleep 20")
        assert late.returncode == 124 and late.stdout == b"begun\n"
        assert b"did not finish in 1 s" in late.stderr
        both = socklab_cli("exec", str(path), "m", "--", "hostname")
        assert both.returncode == 0 and both.stdout.decode().splitlines() == ["m-1 | m-1", "m-2 | m-2"]
        the_lab.node("n").exec(["kill", "1"])  # the node's init: it stops
        engine_wait_stopped(engine, f"socklab-{the_lab.name}-n")
        stopped = socklab_cli("exec", str(path), "n", "--", "true")
        text = stopped.stderr.decode()
        assert stopped.returncode == 2 and f"node 'n' of lab '{the_lab.name}' is not running" in text
        assert "FILE" not in text and "socklab logs" in text
        with pytest.raises(NodeNotRunning):
            the_lab.node("n").exec("true")
    finally:
        the_lab.down()


def engine_wait_stopped(engine: Engine, container: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while engine.container(container).running:
        assert time.monotonic() < deadline, f"{container} still running"
        time.sleep(0.1)
