"""Compose for real: a lab exported and run by the real `docker-compose`, and a compose file
of the tests' own imported and run by `socklab up`. Nothing is left afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from socklab import Lab, LabNode
from socklab.cli import app
from socklab.orchestrator import deploy
from socklab.orchestrator.engine_api import Engine

from .conftest import free_subnet, lab_name, leftovers

COMPOSE = shutil.which("docker-compose")
needs_compose = pytest.mark.skipif(COMPOSE is None, reason="docker-compose is not installed")


def free_subnets(engine: Engine, count: int) -> list[IPv4Network]:
    """Distinct /24s no Docker network uses now (conftest's per-run random pick)."""
    found: list[IPv4Network] = []
    while len(found) < count:
        subnet = free_subnet(engine)
        if subnet not in found:
            found.append(subnet)
    return found


def compose(file: Path, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    return subprocess.run(
        [COMPOSE, "-f", str(file), "-p", project, *args], capture_output=True, text=True, timeout=300
    )


def wait_ready(node: LabNode, timeout: float = 30) -> None:
    """Until the node's supervisor says its start commands are started (servers listen)."""
    deadline = time.monotonic() + timeout
    while '"event": "ready"' not in node.logs():
        assert time.monotonic() < deadline, node.logs()
        time.sleep(0.1)


def getent(node: LabNode, name: str) -> list[str]:
    done = node.exec(["getent", "ahostsv4", name])
    return sorted({line.split()[0] for line in done.stdout.splitlines()})


@pytest.fixture(scope="module")
def composed(
    engine: Engine,
    node_image: str,
    no_python_image: str,
    entrypoint_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Lab, dict[str, Any]]]:
    """A two-network lab with static addresses, aliases and lab DNS, exported and brought up
    by docker-compose (a project name unique per run, other than the lab's)."""
    front, back = free_subnets(engine, 2)
    name = lab_name("compose")
    doc = {
        "name": name,
        "networks": {"front": {"subnet": str(front)}, "back": {"subnet": str(back)}},
        "nodes": {
            "server": {
                "networks": {
                    "front": {"ip": str(front[10]), "aliases": ["echo"]},
                    "back": {"ip": str(back[10])},
                },
                "start": ["tcp-server --port 5000 --mode threaded"],
            },
            "db": {
                "networks": {"back": {"ip": str(back[20]), "aliases": ["database"]}},
                "start": ["udp-server --port 5353"],
            },
            "client": {"replicas": 2, "networks": ["front"]},
            # a node of another image (with python3 and an ENTRYPOINT of its own): the file
            # runs it with the supervisor added, as its entrypoint
            "own": {
                "networks": ["back"],
                "image": entrypoint_image,
                "start": ["udp-server --port 5454"],
            },
            # an image without python3: its own program, as compose runs it
            "plain": {
                "networks": ["back"],
                "image": no_python_image,
                "command": ["sh", "-c", "while true; do echo plain | nc -l -N 8080; done"],
            },
        },
        "dns": {"records": [{"name": "www", "cname": "server"}, {"name": "api", "a": [str(back[10])]}]},
    }
    folder = tmp_path_factory.mktemp("compose")
    topo_file = folder / "lab.yml"
    topo_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    compose_file = folder / "docker-compose.yml"
    result = CliRunner().invoke(app, ["compose", "export", str(topo_file), "-o", str(compose_file), "--json"])
    assert result.exit_code == 0, result.output
    exported = json.loads(result.stdout)
    project = f"{name}-p"
    try:
        done = compose(compose_file, project, "up", "-d")
        assert done.returncode == 0, done.stderr
        lab = Lab.named(name, engine=engine)
        for node, svc in exported["compose"]["services"].items():  # compose returns once
            if ["socklab-node"] in (svc.get("command"), svc.get("entrypoint")):  # started: wait
                wait_ready(lab.node(node))
        yield lab, {**exported, "project": project}
    finally:
        down = compose(compose_file, project, "down", "--timeout", "2")
        deploy.down(engine, name)  # whatever compose left (it must leave nothing)
        assert down.returncode == 0, down.stderr
    assert leftovers(engine, name) == []


@needs_compose
def test_docker_compose_gives_the_lab_socklab_up_would(composed: tuple[Lab, dict[str, Any]]) -> None:
    lab, exported = composed
    services = exported["compose"]["services"]
    assert set(services) == {"server", "db", "client-1", "client-2", "own", "plain", "dns"}
    assert services["own"]["image"].startswith("socklab/supervised:")
    plain = services["plain"]
    assert plain["command"][:2] == ["sh", "-c"] and "SOCKLAB_START" not in plain["environment"]
    assert plain["labels"]["io.socklab.tools"] == "helper"  # socklab's tools run beside it
    assert exported["warnings"] == []  # one host holds everything a topology says
    status = {s.node: s for s in lab.status()}  # found by the io.socklab.* labels alone
    assert set(status) == set(services) and {s.state for s in status.values()} == {"running"}
    for node, service in services.items():  # every node has its planned address
        for net, att in service["networks"].items():
            assert status[node].networks[net].split("/")[0] == att["ipv4_address"]
        assert status[node].container == f"socklab-{lab.name}-{node}"


@needs_compose
def test_names_resolve_to_the_declared_addresses_from_inside(composed: tuple[Lab, dict[str, Any]]) -> None:
    lab, exported = composed
    server = exported["compose"]["services"]["server"]["networks"]
    front_ip, back_ip = server["front"]["ipv4_address"], server["back"]["ipv4_address"]
    client, db = lab.node("client-1"), lab.node("db")
    # the lab's DNS server sits on both networks: a node name answers all its addresses there,
    # as under `socklab up`; an alias, the addresses of the networks that have it
    assert getent(client, "server") == getent(db, "server") == sorted([front_ip, back_ip])
    assert getent(client, "echo") == getent(db, "echo") == [front_ip]
    assert getent(db, "database") == [
        exported["compose"]["services"]["db"]["networks"]["back"]["ipv4_address"]
    ]
    assert getent(client, "api") == [back_ip]  # a record of the lab's DNS (dnsmasq)
    done = client.exec(
        [
            "python3",
            "-c",
            "import json, socket; print(json.dumps([socket.gethostbyname_ex('www'), socket.getfqdn()]))",
        ]
    )
    (canonical, aliases, addresses), fqdn = json.loads(done.stdout)
    assert (canonical, aliases) == (f"server.{lab.name}.test", [f"www.{lab.name}.test"])
    assert sorted(addresses) == sorted([front_ip, back_ip])  # a CNAME of the lab's DNS
    assert fqdn == f"client-1.{lab.name}.test"
    assert len(getent(client, "client")) == 2  # the replicas' shared name


@needs_compose
def test_start_commands_serve_and_socklab_sees_the_sockets(composed: tuple[Lab, dict[str, Any]]) -> None:
    lab, exported = composed
    done = lab.node("client-2").exec(["tcp-client", "www", "5000", "--count", "2"])
    assert done.ok, done.stdout + done.stderr
    runner = CliRunner()
    project = exported["project"]  # `docker-compose -p PROJECT`: found by its project name
    result = runner.invoke(app, ["sockets", "--lab", project, "server", "db", "--json"])

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert any(
        r["state"] == "LISTEN" and r["local_port"] == 5000 and r["program"] == "tcp-server"
        for r in rows["server"]
    )
    assert any(r["proto"].startswith("udp") and r["local_port"] == 5353 for r in rows["db"])
    own = json.loads(runner.invoke(app, ["sockets", "--lab", project, "own", "--json"]).stdout)
    assert any(r["local_port"] == 5454 and r["proto"].startswith("udp") for r in own["own"])
    plain = json.loads(runner.invoke(app, ["sockets", "--lab", project, "plain", "--json"]).stdout)
    assert any(r["state"] == "LISTEN" and r["local_port"] == 8080 for r in plain["plain"])
    got = lab.node("db").exec(["nc", "-w", "3", "plain", "8080"])
    assert got.stdout == "plain\n", got.stdout + got.stderr
    result = runner.invoke(app, ["exec", "--lab", project, "db", "--", "hostname", "-f"])
    assert (result.exit_code, result.stdout.strip()) == (0, f"db.{lab.name}.test")
    for args in (["status", "--lab", project], ["status", lab.name]):
        result = runner.invoke(app, [*args, "--json"])
        assert {n["node"] for n in json.loads(result.stdout)} >= {"server", "client-1"}, args
    result = runner.invoke(app, ["logs", "--lab", project, "server"])
    assert '"event": "listening"' in result.stdout, result.output
    result = runner.invoke(app, ["connections", "--lab", project, "--json"])
    assert result.exit_code == 0 and "mermaid" in json.loads(result.stdout), result.output


def test_a_compose_file_of_our_own_imported_and_run_by_socklab_up(
    engine: Engine, node_image: str, no_python_image: str, tmp_path: Path
) -> None:
    (app_net,) = free_subnets(engine, 1)
    name = lab_name("import")
    project = tmp_path / "shop"
    project.mkdir()
    (project / "docker-compose.yml").write_text(f"""
version: "3.7"
services:
  server:
    image: socklab/node:latest
    hostname: srv
    command: tcp-server --port 7000 --mode threaded
    environment:
      GREETING: hello
    cap_add: [NET_ADMIN]
    ports: ["127.0.0.1::7000"]
    networks:
      app:
        ipv4_address: {app_net[10]}
        aliases: [backend]
  client:
    image: socklab/node:latest
    depends_on: [server]
    deploy: {{replicas: 2}}
    networks: [app, edge]
    restart: always
  greeter:
    image: {no_python_image}
    entrypoint: ["sh", "-c"]
    command: ["while true; do echo hello from greeter | nc -l -N 8080; done"]
    networks: [app]
networks:
  app:
    ipam:
      config: [{{subnet: "{app_net}"}}]
  edge: {{}}
""")
    runner = CliRunner()
    lab_file = tmp_path / "lab.yml"
    result = runner.invoke(
        app, ["compose", "import", str(project / "docker-compose.yml"), "-o", str(lab_file), "--name", name]
    )
    assert result.exit_code == 0, result.output
    assert "services.client.restart: 'restart' is not modelled" in result.stderr
    lab = Lab.load(lab_file, engine=engine)
    assert lab.topology is not None and list(lab.topology.nodes) == ["srv", "client", "greeter"]
    try:
        result = runner.invoke(app, ["up", str(lab_file)])
        assert result.exit_code == 0, result.output
        assert [s.node for s in lab.status()] == ["srv", "client-1", "client-2", "greeter"]
        client = lab.node("client-2")
        assert getent(client, "backend") == getent(client, "server") == [str(app_net[10])]
        done = client.exec(["tcp-client", "server", "7000", "--count", "2"])
        assert done.ok, done.stdout + done.stderr
        srv = lab.node("srv")
        assert srv.exec(["printenv", "GREETING"]).stdout == "hello\n"
        cap_eff = next(
            line
            for line in srv.exec(["cat", "/proc/self/status"]).stdout.splitlines()
            if line.startswith("CapEff:")
        )
        assert int(cap_eff.split()[1], 16) & (1 << 12)  # CAP_NET_ADMIN
        rows = json.loads(runner.invoke(app, ["sockets", str(lab_file), "srv", "--json"]).stdout)
        assert any(r["state"] == "LISTEN" and r["local_port"] == 7000 for r in rows["srv"])
        # the image without python3 runs its `entrypoint:` and `command:` as compose would,
        # and is observed
        got = client.exec(["nc", "-w", "3", "greeter", "8080"])
        assert got.stdout == "hello from greeter\n", got.stdout + got.stderr
        lab.wait_listening("greeter", "tcp/8080")  # its loop starts a new `nc -l` after each client
        rows = json.loads(runner.invoke(app, ["sockets", str(lab_file), "greeter", "--json"]).stdout)
        assert any(r["state"] == "LISTEN" and r["local_port"] == 8080 for r in rows["greeter"])
    finally:
        lab.down()
    assert leftovers(engine, name) == []
