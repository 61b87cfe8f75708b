"""The Lab API against an in-memory engine: up (and its retry), status order, nodes, sockets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from socklab import Lab
from socklab.errors import LabError, NodeNotFound
from socklab.orchestrator import image
from socklab.orchestrator.engine_api import ExecResult

from .fake_engine import FakeEngine, NodeBehaviour

TOPOLOGY = {
    "name": "unit",
    "networks": {"lan": {}},
    "nodes": {
        "web": {"networks": ["lan"]},
        "client": {"networks": ["lan"], "replicas": 2},
        "api": {"networks": ["lan"]},
    },
}


@pytest.fixture
def fake() -> FakeEngine:
    engine = FakeEngine()
    engine.add_image(image.node_image_tag())
    return engine


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "lab.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_up_status_in_topology_order_and_down(fake: FakeEngine, tmp_path: Path) -> None:
    with Lab.load(write(tmp_path, TOPOLOGY), engine=fake) as lab:
        assert [s.node for s in lab.status()] == ["web", "client-1", "client-2", "api"]
        assert lab.is_up()
        by_name = Lab.named("unit", engine=fake)  # only the name: the order is on the nodes
        assert [s.node for s in by_name.status()] == ["web", "client-1", "client-2", "api"]
    assert fake.containers({}) == [] and fake.networks({}) == []


def test_up_plans_again_when_another_lab_took_the_subnet(fake: FakeEngine, tmp_path: Path) -> None:
    fake.subnet_clashes = 1
    lab = Lab.load(write(tmp_path, TOPOLOGY), engine=fake).up()
    tried = [name for what, name in fake.calls if what == "create_network"]
    assert tried == ["lan", "lan"]
    [net] = fake.networks({})
    assert not net.subnets[0].overlaps(fake.taken[0])
    lab.down()


def test_a_missing_node_image_fails_before_anything_is_made(fake: FakeEngine, tmp_path: Path) -> None:
    doc = {**TOPOLOGY, "nodes": {"web": {"networks": ["lan"], "image": "nginx:none"}}}
    with pytest.raises(LabError, match="node 'web': image 'nginx:none' is not on this host"):
        Lab.load(write(tmp_path, doc), engine=fake).up()
    assert fake.calls == []


def test_node_names_the_lab_nodes_when_it_is_missing(fake: FakeEngine, tmp_path: Path) -> None:
    lab = Lab.load(write(tmp_path, TOPOLOGY), engine=fake)
    for call in (lambda: lab.node("web"), lambda: lab.fault.kill("web")):
        with pytest.raises(LabError, match="lab 'unit' is not up") as not_up:
            call()
        assert not_up.value.hint == f"start it with `socklab up {tmp_path / 'lab.yml'}`"
    lab.up()
    with pytest.raises(NodeNotFound) as err:
        lab.node("wbe")
    assert err.value.hint == "nodes: web, client-1, client-2, api"  # in topology order
    assert lab.node("web").container == "socklab-unit-web"


def test_sockets_reads_every_running_node_and_names_addresses(fake: FakeEngine, tmp_path: Path) -> None:
    def answer(node: str, argv: list[str]) -> ExecResult:
        assert argv == ["nc", "-U", "/run/socklab/sockets.sock"]  # the node supervisor answers
        return ExecResult(
            0,
            json.dumps(
                [
                    {
                        "proto": "tcp",
                        "local_ip": "0.0.0.0",
                        "local_port": 80 if node == "web" else 0,
                        "remote_ip": "0.0.0.0",
                        "remote_port": 0,
                        "state": "LISTEN",
                        "recv_q": 0,
                        "send_q": 0,
                        "inode": 1,
                        "pid": 7,
                        "program": node,
                    }
                ]
            ),
            "",
        )

    fake.on_exec = answer
    lab = Lab.load(write(tmp_path, TOPOLOGY), engine=fake).up()
    rows = lab.sockets()
    assert [(r.node, r.local_port) for r in rows] == [
        ("web", 80),
        ("client-1", 0),
        ("client-2", 0),
        ("api", 0),
    ]
    assert [r.node for r in lab.sockets("api")] == ["api"]
    listings = []
    real = fake.containers
    fake.containers = lambda labels: listings.append(labels) or real(labels)  # type: ignore[method-assign]
    assert [r.node for r in lab.sockets(["api", "client", "web"])] == ["api", "client-1", "client-2", "web"]
    assert len(listings) == 1  # the lab is listed once, not once more per selector
    fake.containers = real  # type: ignore[method-assign]
    names = lab.address_names()
    assert sorted(names.values()) == ["api", "client-1", "client-2", "web"]
    assert names[lab.status()[0].networks["lan"].split("/")[0]] == "web"


def test_a_snapshot_asks_each_node_once_and_reads_a_cut_answer_again(
    fake: FakeEngine, tmp_path: Path
) -> None:
    """A node's sockets cost one call: no inspect (the listing has what is needed) and no
    exit code asked (``ask``); an answer cut short is read again with socklab-sockets."""
    row = {"proto": "udp", "local_ip": "0.0.0.0", "local_port": 53, "remote_ip": "0.0.0.0",
           "remote_port": 0, "state": "UNCONN", "recv_q": 0, "send_q": 0, "inode": 1, "pid": 7,
           "program": "dns"}  # fmt: skip
    asked: list[tuple[str, str]] = []

    def answer(node: str, argv: list[str]) -> ExecResult:
        asked.append((node, argv[0]))
        whole = json.dumps([row])
        return ExecResult(0, whole[:-4] if node == "api" and argv[0] == "nc" else whole + "\n", "")

    fake.on_exec = answer
    lab = Lab.load(write(tmp_path, TOPOLOGY), engine=fake).up()
    inspected = []
    real = fake.container
    fake.container = lambda ident: inspected.append(ident) or real(ident)  # type: ignore[method-assign]
    rows = lab.sockets()
    assert [r.node for r in rows] == ["web", "client-1", "client-2", "api"]
    assert sorted(asked) == sorted(
        [(n, "nc") for n in ("web", "client-1", "client-2", "api")] + [("api", "socklab-sockets")]
    )
    assert inspected == []


def test_a_lab_is_found_by_the_file_it_came_from(fake: FakeEngine, tmp_path: Path) -> None:
    path = write(tmp_path, TOPOLOGY)
    Lab.load(path, engine=fake).up()
    path.write_text("name: renamed\n")  # the file changed since
    found = Lab.brought_up_from(path, engine=fake)
    assert found is not None and found.name == "unit"
    assert Lab.brought_up_from(tmp_path / "other.yml", engine=fake) is None


def test_nodes_of_any_image(fake: FakeEngine, tmp_path: Path) -> None:
    """An image without python3 runs its own program; `command:` replaces the image's CMD,
    `entrypoint:` its ENTRYPOINT; none gets the supervisor nor waits for start commands; they
    take socklab's tools from a helper."""
    fake.add_image("shop/web:1")
    fake.add_image("shop/db:1")
    fake.without_python.add("shop/db:1")
    doc = {
        "name": "unit",
        "networks": {"lan": {}},
        "nodes": {
            "web": {"networks": ["lan"], "image": "shop/web:1", "command": "nginx -g 'daemon off;'"},
            "db": {"networks": ["lan"], "image": "shop/db:1"},
            "app": {"networks": ["lan"], "image": "shop/web:1", "start": ["tcp-server --port 80"]},
            "job": {
                "networks": ["lan"],
                "image": "shop/web:1",
                "entrypoint": ["sh", "-c"],
                "command": ["sleep 1000"],
            },
        },
    }
    lab = Lab.load(write(tmp_path, doc), engine=fake).up()
    made = {c.node: c for c in fake.containers({"io.socklab.lab": "unit"})}
    commands = {b.info.node: (b.entrypoint, b.command) for b in fake.boxes.values()}
    assert commands["web"] == (None, ["nginx", "-g", "daemon off;"])
    assert commands["db"] == (None, None)  # the image's own ENTRYPOINT and CMD
    assert commands["app"] == (["python3", "/usr/local/bin/socklab-node"], None)
    assert commands["job"] == (["sh", "-c"], ["sleep 1000"])
    assert made["job"].labels.get("io.socklab.tools") == "helper"
    assert made["web"].labels.get("io.socklab.tools") == "helper"
    assert made["db"].labels.get("io.socklab.tools") == "helper"
    assert "io.socklab.tools" not in made["app"].labels
    lab.down()


def test_start_on_an_image_without_python_is_refused(fake: FakeEngine, tmp_path: Path) -> None:
    fake.add_image("shop/db:1")
    fake.without_python.add("shop/db:1")
    doc = {
        "name": "unit",
        "networks": {"lan": {}},
        "nodes": {"db": {"networks": ["lan"], "image": "shop/db:1", "start": ["tcp-server --port 5432"]}},
    }
    with pytest.raises(LabError, match="image 'shop/db:1' has no python3, so socklab cannot run"):
        Lab.load(write(tmp_path, doc), engine=fake).up()
    assert fake.containers({}) == [] and fake.networks({}) == []


def test_command_with_start_is_refused_by_validate(tmp_path: Path) -> None:
    from socklab.topology import TopologyError

    doc = {
        "name": "unit",
        "networks": {"lan": {}},
        "nodes": {"db": {"networks": ["lan"], "image": "x", "command": "db", "start": ["tcp-server"]}},
    }
    with pytest.raises(TopologyError, match="a node with `command:` runs it as its main program"):
        Lab.load(write(tmp_path, doc))
    doc["nodes"]["db"] = {"networks": ["lan"], "entrypoint": "db", "start": ["tcp-server"]}
    with pytest.raises(TopologyError, match="a node with `entrypoint:` runs it as its main"):
        Lab.load(write(tmp_path, doc))


def test_a_lab_up_known_by_name_finds_its_topology_in_its_file(fake: FakeEngine, tmp_path: Path) -> None:
    path = write(tmp_path, TOPOLOGY)
    Lab.load(path, engine=fake, name="renamed").up()
    found = Lab.named("renamed", engine=fake).with_topology()  # `socklab graph renamed`
    assert found.topology is not None and found.name == "renamed" and found.source == path
    assert [n.name for n in found.graph().nodes] == ["web", "client-1", "client-2", "api"]
    path.write_text(yaml.safe_dump({**TOPOLOGY, "nodes": {"web": {"networks": ["lan"]}}}))
    with pytest.raises(LabError, match="is up, but its topology file was not given") as err:
        Lab.named("renamed", engine=fake).with_topology()
    assert f"{path} has changed since the lab came up" in str(err.value.hint)
    found.down()


def test_every_exported_name_resolves_fault_results_included() -> None:
    import socklab
    from socklab.orchestrator.faults import FaultResult, NodeFaults

    for name in socklab.__all__:
        assert getattr(socklab, name) is not None, name
    assert (socklab.FaultResult, socklab.NodeFaults) == (FaultResult, NodeFaults)


def test_a_program_that_ends_as_it_starts_is_named_with_its_exit_code(
    fake: FakeEngine, tmp_path: Path
) -> None:
    """A node of its own program whose network the helper sets up: when the program ends at
    once, `up` says so (exit code, last line) instead of 'not running', before the rollback
    takes its logs away."""
    fake.add_image("shop/web:1")
    fake.without_python.add("shop/web:1")
    fake.behaviour["web"] = NodeBehaviour(exits=True)
    doc = {
        "name": "unit",
        "networks": {"lan": {"impair": {"loss": "5%"}}},
        "nodes": {"web": {"networks": ["lan"], "image": "shop/web:1", "command": "web --config /nope"}},
    }
    with pytest.raises(LabError) as err:
        Lab.load(write(tmp_path, doc), engine=fake).up()
    assert (
        "web: its program `web --config /nope` exited at once (code 1), saying:\n"
        "    socklab-node: cannot start" in err.value.message
    )
    assert "docker run --rm shop/web:1" in str(err.value.hint)
    assert fake.containers({}) == []


def test_a_command_that_cannot_be_split_is_a_lab_error(fake: FakeEngine, tmp_path: Path) -> None:
    with Lab.load(write(tmp_path, TOPOLOGY), engine=fake) as lab:
        for call in (
            lambda: lab.node("web").exec("echo 'unclosed"),
            lambda: lab.node("web").start("tcp-server --message 'hi"),
        ):
            with pytest.raises(LabError, match="cannot split the command") as err:
                call()
            assert err.value.hint == "close its quotes, or give an argv list"


def test_a_start_that_failed_says_what_the_program_printed(fake: FakeEngine, tmp_path: Path) -> None:
    said = "socklab-start: tcp-client exited with code 2 before it was ready"
    fake.on_exec = lambda node, argv: ExecResult(1, "", said)
    with Lab.load(write(tmp_path, TOPOLOGY), engine=fake) as lab:
        box = fake.boxes[fake.containers({"io.socklab.node": "web"})[0].id]
        box.logs += [
            '2024-01-01T00:00:00.000000Z tcp-client[9] {"event": "created"}',
            "2024-01-01T00:00:00.000000Z tcp-client[9] usage: tcp-client HOST [PORT]",
            "2024-01-01T00:00:00.000000Z tcp-client[9] tcp-client: error: unrecognized arguments: --bogus",
        ]
        with pytest.raises(LabError) as err:
            lab.node("web").start("tcp-client server --bogus")
    assert err.value.message.splitlines() == [
        f"cannot start 'tcp-client server --bogus' in node web: {said}",
        "usage: tcp-client HOST [PORT]",
        "tcp-client: error: unrecognized arguments: --bogus",
    ]


def test_image_problems_are_what_up_refuses_located_in_the_file(fake: FakeEngine, tmp_path: Path) -> None:
    fake.add_image("shop/web:1")
    fake.without_python.add("shop/web:1")
    doc = {
        "name": "unit",
        "networks": {"lan": {}},
        "nodes": {
            "web": {"networks": ["lan"], "image": "shop/web:1", "start": ["tcp-server --port 5000"]},
            "db": {"networks": ["lan"], "image": "nosuch/db:1"},
            "plain": {"networks": ["lan"], "image": "shop/web:1"},
        },
    }
    lab = Lab.load(write(tmp_path, doc), engine=fake)
    found = [(p.line, p.path, p.message) for p in lab.image_problems()]
    assert found == [
        (
            9,
            "nodes.web.start",
            "node 'web': image 'shop/web:1' has no python3, so socklab cannot run its `start:` commands",
        ),
        (14, "nodes.db.image", "node 'db': image 'nosuch/db:1' is not on this host"),
    ]
    with pytest.raises(LabError, match="node 'web': image 'shop/web:1' has no python3"):
        lab.up()  # the first of them
