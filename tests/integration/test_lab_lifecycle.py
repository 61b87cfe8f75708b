"""up / status / exec / logs / down of real labs, through the CLI and the library."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path

import pytest
from typer.testing import CliRunner

from socklab import Lab
from socklab.cli import app
from socklab.orchestrator.engine_api import Engine
from socklab.orchestrator.image import base_image_tag

from .conftest import free_subnet, leftovers

runner = CliRunner()


def hello(subnet: IPv4Network) -> dict[str, object]:
    """The hello lab on a subnet of this run, the server at its .10."""
    return {
        "networks": {"lan": {"subnet": str(subnet)}},
        "nodes": {
            "server": {"networks": {"lan": {"ip": str(subnet[10]), "aliases": ["echo"]}}},
            "client": {"replicas": 2, "networks": ["lan"]},
        },
    }


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_up_status_exec_down(write_lab: Callable[..., Path], engine: Engine, node_image: str) -> None:
    subnet = free_subnet(engine)
    server_ip = str(subnet[10])
    path = write_lab(hello(subnet), "hello")
    lab = Lab.load(path)
    code, out, err = cli("up", str(path))
    try:
        assert code == 0, err
        code, out, _ = cli("status", str(path), "--json")
        assert code == 0
        nodes = {n["node"]: n for n in json.loads(out)}
        assert set(nodes) == {"server", "client-1", "client-2"}
        assert nodes["server"] == {
            "node": "server",
            "container": f"socklab-{lab.name}-server",
            "state": "running",
            "networks": {"lan": f"{server_ip}/24"},
            "apps": [],
        }
        assert all(n["state"] == "running" for n in nodes.values())

        # the alias and the node names resolve from another node; the static IP is applied
        code, out, _ = cli("exec", str(path), "client-1", "--", "getent", "hosts", "echo")
        assert code == 0 and out.split()[0] == server_ip
        ip_out = lab.node("server").exec("ip -4 -o addr show").stdout
        assert f"{server_ip}/24" in ip_out
        peer = lab.node("client-2").exec(
            ["python3", "-c", "import socket; print(socket.gethostbyname('client-1'))"]
        )
        assert peer.stdout.strip() == nodes["client-1"]["networks"]["lan"].split("/")[0]

        # hostname and FQDN
        fqdn = lab.node("server").exec(["python3", "-c", "import socket; print(socket.getfqdn())"])
        assert fqdn.stdout.strip() == f"server.{lab.name}.test"

        # exit codes pass through
        code, _, _ = cli("exec", str(path), "client-1", "--", "sh", "-c", "exit 7")
        assert code == 7
        assert lab.node("client-1").exec(["false"]).exit_code == 1
    finally:
        code, out, _ = cli("down", str(path))
    assert code == 0 and "removed 3 containers and 1 network" in out
    assert leftovers(engine, lab.name) == []
    code, out, _ = cli("down", str(path))
    assert code == 0 and "nothing to remove" in out


def test_multi_network_node_and_start_commands(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(
        {
            "networks": {"lan": {}, "wan": {}},
            "nodes": {
                "router": {
                    "networks": {"lan": {}, "wan": {"aliases": ["gw"]}},
                    "start": [
                        "python3 -c \"print('hello from start')\"",
                        {"cmd": ["python3", "-c", "import sys; sys.exit(3)"], "wait": "none"},
                    ],
                },
                "far": {"networks": ["wan"]},
            },
        },
        "multi",
    )
    st = {s.node: s for s in lab.status()}
    assert set(st["router"].networks) == {"lan", "wan"}
    assert st["router"].state == "running"  # a crashed app (`wait: none`) leaves the node running
    addrs = lab.node("router").exec("ip -4 -o addr show").stdout
    for cidr in st["router"].networks.values():
        assert cidr in addrs
    wan_ip = st["router"].networks["wan"].split("/")[0]
    assert lab.node("far").exec("getent hosts gw").stdout.split()[0] == wan_ip
    logs = lab.node("router").logs()
    assert "hello from start" in logs
    deadline = time.monotonic() + 30  # `wait: none`: up may return before it exits
    while '"code": 3' not in logs and time.monotonic() < deadline:
        time.sleep(0.1)
        logs = lab.node("router").logs()
    assert '"event": "exited"' in logs and '"code": 3' in logs


def test_up_returns_when_server_listens(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(
        {
            "networks": {"lan": {}},
            "nodes": {"srv": {"networks": ["lan"], "start": ["tcp-server --port 5000"]}},
        },
        "listen",
    )
    out = lab.node("srv").exec("ss -ltnH").stdout
    assert ":5000" in out


def test_up_progress_ends_complete_for_every_phase(
    write_lab: Callable[..., Path], engine: Engine, node_image: str
) -> None:
    path = write_lab(
        {
            "networks": {"lan": {}, "wan": {}},
            "nodes": {"a": {"networks": ["lan", "wan"]}, "b": {"replicas": 2, "networks": ["lan"]}},
        },
        "progress",
    )
    seen: list[tuple[str, int, int]] = []
    lab = Lab.load(path, engine=engine)
    try:
        lab.up(progress=lambda phase, done, total: seen.append((phase, done, total)))
    finally:
        lab.down()
    last = {phase: (done, total) for phase, done, total in seen}
    assert last == {"networks": (2, 2), "nodes": (3, 3), "ready": (3, 3)}, seen
    phases = [p for p, _, _ in seen]
    assert phases.index("nodes") > max(i for i, p in enumerate(phases) if p == "networks")
    assert phases.index("ready") > max(i for i, p in enumerate(phases) if p == "nodes")


def test_logs_cli_prefixes_nodes(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(
        {
            "networks": {"lan": {}},
            "nodes": {
                "a": {"networks": ["lan"], "start": ["python3 -c \"print('from-a')\""]},
                "b": {"networks": ["lan"]},
            },
        },
        "logs",
    )
    code, out, _ = cli("logs", str(lab.source))
    assert code == 0
    assert any(line.startswith("a | ") and "from-a" in line for line in out.splitlines())
    code, out, _ = cli("logs", str(lab.source), "a")
    assert code == 0 and "python3[" in out and "from-a" in out


def test_second_up_and_unknown_node_are_clear_errors(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab({"networks": {"lan": {}}, "nodes": {"a": {"networks": ["lan"]}}}, "twice")
    code, _, err = cli("up", str(lab.source))
    assert code == 2
    assert f"a lab named '{lab.name}' is already up" in err
    assert f"socklab down --lab {lab.name}" in err
    assert [s.state for s in lab.status()] == ["running"]  # the first lab is untouched
    code, _, err = cli("exec", str(lab.source), "nope", "--", "true")
    assert code == 2 and "node 'nope' not found" in err and "nodes: a" in err


def test_subnet_taken_is_reported_and_nothing_leaks(
    make_lab: Callable[..., Lab], write_lab: Callable[..., Path], engine: Engine
) -> None:
    subnet = free_subnet(engine)
    make_lab({"networks": {"lan": {"subnet": str(subnet)}}, "nodes": {"a": {"networks": ["lan"]}}}, "owner")
    half = next(subnet.subnets(new_prefix=25))
    path = write_lab(
        {"networks": {"lan": {"subnet": str(half)}}, "nodes": {"b": {"networks": ["lan"]}}}, "clash"
    )
    code, _, err = cli("up", str(path))
    assert code == 2
    assert f"subnet {half} of network 'lan' is taken" in err
    assert leftovers(engine, Lab.load(path).name) == []


def test_failing_node_rolls_back_everything(
    write_lab: Callable[..., Path], engine: Engine, node_image: str
) -> None:
    with socket.socket() as taken:  # the host port one node publishes is held by this test
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        nodes: dict[str, object] = {f"n{i}": {"networks": ["lan"]} for i in range(7)}
        nodes["web"] = {"networks": ["lan"], "ports": [f"{port}:80"]}
        path = write_lab({"networks": {"lan": {}}, "nodes": nodes}, "fail")
        code, _, err = cli("up", str(path))
    assert code == 2
    assert "1 of 8 nodes failed; the lab was removed" in err
    assert "  web: " in err and str(port) in err
    assert leftovers(engine, Lab.load(path).name) == []


def test_ctrl_c_during_up_leaves_nothing(
    write_lab: Callable[..., Path], engine: Engine, node_image: str
) -> None:
    path = write_lab({"networks": {"lan": {}}, "nodes": {"c": {"replicas": 24, "networks": ["lan"]}}}, "intr")
    name = Lab.load(path).name
    proc = subprocess.Popen(
        [sys.executable, "-m", "socklab.cli", "up", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not engine.containers({"io.socklab.lab": name}) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"interrupted (Ctrl-C): lab '{name}' was removed".encode() in err, err
    assert b"Traceback" not in err
    assert leftovers(engine, name) == []


def test_down_after_the_file_is_gone(write_lab: Callable[..., Path], engine: Engine, node_image: str) -> None:
    first = write_lab({"networks": {"lan": {}}, "nodes": {"a": {"networks": ["lan"]}}}, "gone")
    second = write_lab({"networks": {"lan": {}}, "nodes": {"b": {"networks": ["lan"]}}}, "gone")
    for path in (first, second):
        assert cli("up", str(path))[0] == 0
    names = [Lab.load(first).name, Lab.load(second).name]
    first.unlink()
    code, out, _ = cli("down", str(first))  # found by its file label
    assert code == 0 and "removed 1 container and 1 network" in out
    assert leftovers(engine, names[0]) == []
    second.unlink()
    code, out, _ = cli("ls", "--json")
    assert names[1] in [x["lab"] for x in json.loads(out)]
    others = set(json.loads(out) and [x["lab"] for x in json.loads(out)]) - {names[1]}
    if others:
        cli("down", "--lab", names[1])
        pytest.skip(f"other labs are up on this host ({sorted(others)}); not running down --all")
    code, out, _ = cli("down", "--all")
    assert code == 0 and "removed 1 container and 1 network of all labs" in out
    assert leftovers(engine, names[1]) == []


def test_daemon_not_reachable_is_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    proc = subprocess.run(
        [sys.executable, "-m", "socklab.cli", "ls"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: Docker daemon not reachable")
    assert "hint:" in proc.stderr and "Traceback" not in proc.stderr


def test_node_of_another_image_gets_the_node_code(make_lab: Callable[..., Lab]) -> None:
    other = base_image_tag()  # Debian with python3, but none of socklab's code
    lab = make_lab(
        {
            "networks": {"lan": {}},
            "nodes": {
                "srv": {"networks": ["lan"], "image": other, "start": ["tcp-server --port 7000"]},
                "cli": {"networks": ["lan"]},
            },
        },
        "image",
    )
    assert lab.node("srv").exec("test -d /opt/socklab/socklab/nodes").exit_code == 0
    result = lab.node("cli").exec("tcp-client srv 7000 --count 2")
    assert result.exit_code == 0, result.stderr
    assert '"event": "listening"' in lab.node("srv").logs()


def test_a_start_command_that_does_not_start_fails_up(
    write_lab: Callable[..., Path], engine: Engine, node_image: str
) -> None:
    path = write_lab(
        {
            "networks": {"lan": {}},
            "nodes": {
                "s": {
                    "networks": ["lan"],
                    "start": ["/opt/nosuchprogram", "tcp-server --port 5000", "tcp-server --port 5000"],
                }
            },
        },
        "nostart",
    )
    code, _, err = cli("up", str(path))
    assert code == 2
    # either server may bind first; the other one fails
    assert re.search(r"s: start commands did not start \(nosuchprogram, tcp-server(#2)?\)", err)
    assert "EADDRINUSE" in err
    assert leftovers(engine, Lab.load(path).name) == []


@pytest.mark.parametrize("round_", [1, 2])
def test_labs_started_at_once_get_distinct_subnets(
    round_: int, write_lab: Callable[..., Path], engine: Engine, node_image: str
) -> None:
    """8 labs at once, each with two allocated subnets: all come up, none shares a subnet
    (the full measure, 10 rounds: bench/concurrent_up.py)."""
    paths = [
        write_lab({"networks": {"lan": {}, "wan": {}}, "nodes": {"a": {"networks": ["lan", "wan"]}}}, "par")
        for _ in range(8)
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "socklab.cli", "up", str(p)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for p in paths
    ]
    try:
        results = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0] * 8, results
        assert not any(b"taken" in err for _, err in results)
        subnets = [net.rsplit(".", 1)[0] for p in paths for net in Lab.load(p).status()[0].networks.values()]
        assert len(set(subnets)) == 16
    finally:
        for p in paths:
            Lab.load(p).down()


def test_down_file_finds_the_lab_after_the_file_changed(
    write_lab: Callable[..., Path], engine: Engine, node_image: str
) -> None:
    path = write_lab({"networks": {"lan": {}}, "nodes": {"a": {"networks": ["lan"]}}}, "chg")
    name = Lab.load(path).name
    assert cli("up", str(path))[0] == 0
    path.write_text(path.read_text().replace(name, "renamed") + "\n  broken: [\n")
    code, out, _ = cli("down", str(path))
    assert code == 0 and f"of lab '{name}'" in out
    assert leftovers(engine, name) == []


def test_an_image_that_is_not_here_is_a_clear_error(write_lab: Callable[..., Path], engine: Engine) -> None:
    path = write_lab(
        {"networks": {"lan": {}}, "nodes": {"a": {"networks": ["lan"], "image": "socklab/none:nope"}}},
        "noimg",
    )
    code, _, err = cli("up", str(path))
    assert code == 2
    assert "node 'a': image 'socklab/none:nope' is not on this host" in err
    assert "no registry is used" in err
    assert leftovers(engine, Lab.load(path).name) == []
