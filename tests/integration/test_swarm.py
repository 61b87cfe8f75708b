"""Swarm for real, on a single-node swarm: `socklab up --engine swarm`, an exported stack file
deployed by `docker stack deploy`, and `status/exec/logs/sockets/connections/run/down` on them.

The only module that touches swarm state. Its fixture makes a swarm only when the engine is
in none (`docker swarm init`, listening on loopback) and leaves it afterwards (`docker swarm
leave --force`, and docker_gwbridge removed if it made it), even when a test fails; every
stack of this run is removed before. Swarm state is as before when the module ends.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from typer.testing import CliRunner

from socklab import Lab
from socklab.catalog import LABS_DIR
from socklab.cli import app
from socklab.orchestrator import image, swarm
from socklab.orchestrator.engine_api import Engine
from socklab.orchestrator.engine_swarm import SwarmEngine

from .conftest import RUN_ID, lab_name, leftovers

GWBRIDGE = "docker_gwbridge"


def swarm_state(client: Any) -> tuple[str, bool]:
    info = client.info().get("Swarm") or {}
    return str(info.get("LocalNodeState")), bool(info.get("ControlAvailable"))


def has_gwbridge(client: Any) -> bool:
    return bool(client.networks.list(names=[GWBRIDGE]))


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_without_a_swarm_engine_swarm_is_one_line_with_a_hint(tmp_path: Path) -> None:
    client = docker.from_env()
    if swarm_state(client)[0] != "inactive":
        pytest.skip("the engine is in a swarm")
    lab = tmp_path / "l.yml"
    lab.write_text(
        f"name: {lab_name('noswarm')}\nnetworks: {{lan: {{}}}}\nnodes: {{a: {{networks: [lan]}}}}\n"
    )
    result = run_cli("up", str(lab), "--engine", "swarm")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: this Docker engine is not in a Swarm",
        "hint: make this Docker engine a single-node Swarm with `docker swarm init` (or join "
        "one with `docker swarm join`), or leave out `--engine swarm`",
    ]


@pytest.fixture(scope="module")
def swarm_engine(engine: Engine) -> Iterator[SwarmEngine]:
    client = docker.from_env()
    before = swarm_state(client)
    gwbridge_before = has_gwbridge(client)
    made = False
    if before[0] == "inactive":
        client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
        made = True
    elif before != ("active", True):
        pytest.skip(f"the engine is in a swarm it does not manage ({before[0]})")
    try:
        yield SwarmEngine()
    finally:
        try:
            sw = SwarmEngine()
            for svc in sw.services(None):
                lab = svc["Spec"]["Labels"].get("io.socklab.lab", "")
                if lab.startswith(f"t{RUN_ID}"):
                    swarm.down(sw, lab)
        finally:
            if made:
                client.swarm.leave(force=True)
                deadline = time.monotonic() + 30
                while not gwbridge_before and has_gwbridge(client):
                    try:
                        client.networks.get(GWBRIDGE).remove()
                    except docker.errors.APIError:
                        assert time.monotonic() < deadline, "docker_gwbridge stays"
                        time.sleep(0.5)
        assert swarm_state(client) == before
        assert has_gwbridge(client) == gwbridge_before


def topology(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "networks": {"lan": {}, "back": {}},
        "nodes": {
            "server": {
                "networks": {"lan": {"aliases": ["echo"]}, "back": {}},
                "start": ["tcp-server --port 5000 --mode threaded"],
                "cap_add": ["NET_ADMIN"],
                "env": {"GREETING": "hello $USER"},
            },
            "client": {"replicas": 3, "networks": ["lan"]},
        },
        **extra,
    }


def stack_is_gone(sw: SwarmEngine, lab: str) -> None:
    assert sw.services(lab) == []
    assert sw.stack_containers(lab) == []
    assert leftovers(sw, lab) == []
    assert [n.name for n in sw.networks({}) if n.name.startswith(f"socklab-{lab}-")] == []


def test_up_engine_swarm_runs_the_lab_as_a_stack(
    swarm_engine: SwarmEngine, no_python_image: str, tmp_path: Path
) -> None:
    name = lab_name("swarm")
    doc = topology(name)
    # a node of another image (with python3): its service runs it with the supervisor added
    doc["nodes"]["own"] = {
        "networks": ["back"],
        "image": image.base_image_tag(),
        "start": ["udp-server --port 5454"],
    }
    # an image without python3: its own program, as compose and Swarm run it
    doc["nodes"]["plain"] = {
        "networks": ["lan"],
        "image": no_python_image,
        "command": ["sh", "-c", "while true; do echo plain | nc -l -N 8080; done"],
    }
    path = tmp_path / "lab.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        result = run_cli("up", str(path), "--engine", "swarm")
        assert result.exit_code == 0, result.output
        services = {s["Spec"]["Name"]: s for s in swarm_engine.services(name)}
        assert set(services) == {f"{name}_server", f"{name}_client", f"{name}_own", f"{name}_plain"}
        client_svc = services[f"{name}_client"]["Spec"]
        assert client_svc["Mode"]["Replicated"]["Replicas"] == 3
        assert client_svc["Labels"]["com.docker.stack.namespace"] == name  # `docker stack ls`
        assert client_svc["EndpointSpec"]["Mode"] == "dnsrr"

        status = json.loads(run_cli("status", name, "--json").stdout)
        assert sorted(n["node"] for n in status) == [
            "client-1",
            "client-2",
            "client-3",
            "own",
            "plain",
            "server",
        ]
        assert {n["state"] for n in status} == {"running"}
        by_node = {n["node"]: n for n in status}
        assert set(by_node["server"]["networks"]) == {"lan", "back"}
        # instance client-3 is the task in slot 3 of service client
        assert by_node["client-3"]["container"] == f"{name}_client.3"
        lab = Lab.named(name)
        assert isinstance(lab.engine, SwarmEngine)  # found as a stack, no --engine needed
        assert lab.node("client-3").exec(["hostname"]).stdout == "client-3\n"
        assert lab.node("client-3").exec(["printenv", "SOCKLAB_NODE"]).stdout == "client-3\n"
        assert lab.node("server").exec(["printenv", "GREETING"]).stdout == "hello $USER\n"
        cap_eff = next(
            line
            for line in lab.node("server").exec(["cat", "/proc/self/status"]).stdout.splitlines()
            if line.startswith("CapEff:")
        )
        assert int(cap_eff.split()[1], 16) & (1 << 12)  # CAP_NET_ADMIN

        # a client reaches the server by name (its alias, and its node name)
        server_lan = by_node["server"]["networks"]["lan"].split("/")[0]
        done = lab.node("client-2").exec(["tcp-client", "echo", "5000", "--count", "2"])
        assert done.ok, done.stdout + done.stderr
        assert f'"peer": "{server_lan}:5000"' in done.stdout
        assert lab.node("client-1").exec(["tcp-client", "server", "5000"]).ok
        # a replica's instance name resolves to its own task (Docker's DNS knows task hostnames)
        client2 = by_node["client-2"]["networks"]["lan"].split("/")[0]
        deadline = time.monotonic() + 30
        while (found := lab.node("server").exec(["getent", "ahostsv4", "client-2"]).stdout.split())[:1] != [
            client2
        ]:
            assert time.monotonic() < deadline, found
            time.sleep(0.5)
        result = run_cli("exec", name, "client-1", "--", "sh", "-c", "exit 3")
        assert result.exit_code == 3

        # socklab sockets and connections on the stack
        started = lab.node("client-3").exec(["socklab-start", "sh", "-c", "sleep 30 | nc echo 5000"])
        assert started.ok, started.stderr
        rows = json.loads(run_cli("sockets", name, "server", "--json").stdout)["server"]
        assert any(
            r["state"] == "LISTEN" and r["local_port"] == 5000 and r["program"] == "tcp-server" for r in rows
        )
        deadline = time.monotonic() + 30
        while True:
            conns = json.loads(run_cli("connections", name, "--json").stdout)["connections"]
            if any(c["client"]["node"] == "client-3" and c["server"]["node"] == "server" for c in conns):
                break
            assert time.monotonic() < deadline, conns
            time.sleep(0.3)
        own = json.loads(run_cli("sockets", name, "own", "--json").stdout)["own"]
        assert any(r["local_port"] == 5454 and r["proto"].startswith("udp") for r in own)
        plain = json.loads(run_cli("sockets", name, "plain", "--json").stdout)["plain"]
        assert any(r["state"] == "LISTEN" and r["local_port"] == 8080 for r in plain)
        got = lab.node("client-1").exec(["nc", "-w", "3", "plain", "8080"])
        assert got.stdout == "plain\n", got.stdout + got.stderr
        logs = run_cli("logs", name, "server")
        assert '"event": "listening"' in logs.stdout
        timeline = json.loads(run_cli("logs", name, "--timeline", "--json").stdout)
        assert any(e["node"] == "server" and e["event"] == "accepted" for e in timeline)
        assert any(e["node"] == "client-3" and e["event"] == "spawned" for e in timeline)
        assert name in run_cli("ls").stdout
    finally:
        result = run_cli("down", name)
    assert result.exit_code == 0, result.output
    assert "removed 6 containers and 2 networks" in result.stdout
    stack_is_gone(swarm_engine, name)  # down waited until everything was gone


def test_an_exported_stack_file_runs_under_docker_stack_deploy(
    swarm_engine: SwarmEngine, tmp_path: Path
) -> None:
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    name = lab_name("stack")
    path = tmp_path / "lab.yml"
    path.write_text(yaml.safe_dump(topology(name), sort_keys=False))
    stack_file = tmp_path / "stack.yml"
    result = run_cli("compose", "export", str(path), "--swarm", "-o", str(stack_file), "--json")
    assert result.exit_code == 0, result.output
    exported = json.loads(result.stdout)
    assert {w["path"] for w in exported["warnings"]} >= {"nodes.server.cap_add"}
    stack = f"{name}-s"  # a stack name of its own: `--lab STACK` finds the lab
    try:
        done = subprocess.run(
            ["docker", "stack", "deploy", "-c", str(stack_file), stack],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "Ignoring unsupported options" not in done.stderr  # every key is honoured
        lab = Lab.named(name)
        deadline = time.monotonic() + 60
        while sorted(s.node for s in lab.status() if s.state == "running") != [
            "client-1",
            "client-2",
            "client-3",
            "server",
        ]:
            assert time.monotonic() < deadline, lab.status()
            time.sleep(0.3)
        while '"event": "ready"' not in lab.node("server").logs():
            assert time.monotonic() < deadline
            time.sleep(0.2)
        done2 = lab.node("client-3").exec(["tcp-client", "echo", "5000"])
        assert done2.ok, done2.stdout + done2.stderr
        assert lab.node("client-3").exec(["hostname"]).stdout == "client-3\n"
        rows = json.loads(run_cli("sockets", "--lab", stack, "--json").stdout)
        assert any(r["state"] == "LISTEN" and r["local_port"] == 5000 for r in rows["server"])
        result = run_cli("exec", "--lab", stack, "client-1", "--", "hostname")
        assert (result.exit_code, result.stdout) == (0, "client-1\n")
    finally:
        result = run_cli("down", "--lab", stack)  # by the stack it was deployed as
    assert result.exit_code == 0, result.output
    assert f"of lab '{name}'" in result.stdout
    stack_is_gone(swarm_engine, name)


def test_what_swarm_cannot_honour_is_one_line_and_nothing_is_made(
    swarm_engine: SwarmEngine, tmp_path: Path
) -> None:
    name = lab_name("swbad")
    doc = topology(name)
    doc["networks"]["lan"] = {"subnet": "10.233.7.0/24"}
    doc["nodes"]["server"]["networks"]["lan"]["ip"] = "10.233.7.10"
    path = tmp_path / "lab.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run_cli("up", str(path), "--engine", "swarm")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        "error: Swarm cannot honour nodes.server.networks.lan.ip: Swarm gives tasks addresses "
        "itself: 10.233.7.10 is not kept"
    )
    assert len(result.stderr.splitlines()) == 2  # and a hint
    stack_is_gone(swarm_engine, name)
    doc = topology(name)
    doc["nodes"]["server"]["host"] = "no-such-host"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run_cli("up", str(path), "--engine", "swarm")
    assert result.exit_code == 2
    assert "node 'server': host 'no-such-host' is not in this Swarm" in result.stderr
    stack_is_gone(swarm_engine, name)


def test_run_a_shipped_lab_on_the_swarm(swarm_engine: SwarmEngine, tmp_path: Path) -> None:
    doc = yaml.safe_load((LABS_DIR / "echo.yml").read_text())
    doc["name"] = name = lab_name("swrun")
    for step in doc["scenarios"]["default"]:  # its timing bounds are for an idle machine
        for key in ("duration_min", "duration_max"):
            step.get("run", {}).get("expect", {}).pop(key, None)
    path = tmp_path / "echo.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run_cli("run", str(path), "--engine", "swarm", "--report", str(tmp_path / "run"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is True
    stack_is_gone(swarm_engine, name)


def test_a_task_on_an_unreachable_host_is_one_line_with_a_hint(
    swarm_engine: SwarmEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node whose task runs on another host goes through that host's daemon; here, one that
    does not answer (nothing listens on 127.0.0.1:9)."""
    from socklab.errors import LabError
    from socklab.orchestrator.engine_swarm import Task

    monkeypatch.setenv("SOCKLAB_SWARM_DOCKER_HOST", "tcp://127.0.0.1:9")
    elsewhere = Task(
        id="t1",
        lab="l",
        instance="client-3",
        service="l_client",
        slot=3,
        node_id="another-host",
        state="running",
        error="",
        container_id="c1",
        labels={},
        networks={},
        image="",
        exit_code=None,
    )
    with pytest.raises(LabError) as info:
        swarm_engine._daemon(elsewhere)
    assert info.value.message.startswith(
        "node 'client-3' runs on Swarm host 'another-host', whose Docker daemon socklab cannot "
        "reach at tcp://127.0.0.1:9"
    )
    assert "\n" not in info.value.message and "SOCKLAB_SWARM_DOCKER_HOST" in (info.value.hint or "")
