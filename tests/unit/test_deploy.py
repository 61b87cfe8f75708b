"""deploy against an in-memory engine: order, rollback, per-node errors, readiness, down, status."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from socklab.errors import LabError
from socklab.orchestrator import deploy
from socklab.orchestrator.engine_api import ContainerInfo, Engine, HelperSpec, ImageInfo, PortInfo
from socklab.topology.model import Topology
from socklab.topology.plan import LABEL_LAB, LABEL_NODE, LABEL_PROGRAM, LABEL_TOOLS, LabPlan, plan

from .fake_engine import LOG_TIME, FakeEngine, NodeBehaviour

IMAGE = "socklab/node:test"


def lab_plan(nodes: dict[str, Any], name: str = "lab") -> LabPlan:
    return plan(Topology.model_validate({"name": name, "networks": {"lan": {}, "wan": {}}, "nodes": nodes}))


NODES = {
    "server": {"networks": ["lan", "wan"], "start": ["tcp-server --port 5000"]},
    "router": {"networks": ["wan"]},
    "client": {"networks": ["lan"], "replicas": 2},
}


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine()


def test_up_makes_the_networks_then_starts_every_node(fake: FakeEngine) -> None:
    engine: Engine = fake
    deploy.up(engine, lab_plan(NODES), IMAGE)
    kinds = [what for what, _ in fake.calls]
    assert kinds[:2] == ["create_network", "create_network"]
    assert "create_network" not in kinds[2:]
    started = sorted(name for what, name in fake.calls if what == "start")
    assert started == ["client-1", "client-2", "router", "server"]
    assert all(c.running and c.image == IMAGE for c in fake.containers({LABEL_LAB: "lab"}))


def test_a_failed_node_rolls_back_everything(fake: FakeEngine) -> None:
    fake.behaviour["router"] = NodeBehaviour(create_error="no such image")
    with pytest.raises(LabError) as err:
        deploy.up(fake, lab_plan(NODES), IMAGE)
    assert err.value.message == "1 of 4 nodes failed; the lab was removed:\n  router: no such image"
    assert fake.containers({}) == [] and fake.networks({}) == []


def test_every_failed_node_is_named_in_topology_order(fake: FakeEngine) -> None:
    # server fails last in time but comes first in the topology
    fake.behaviour["server"] = NodeBehaviour(create_error="first in the file", create_delay=0.3)
    fake.behaviour["client-2"] = NodeBehaviour(create_error="last in the file")
    with pytest.raises(LabError) as err:
        deploy.up(fake, lab_plan(NODES), IMAGE)
    assert err.value.message.splitlines()[1:] == [
        "  server: first in the file",
        "  client-2: last in the file",
    ]
    assert fake.containers({}) == []


def test_up_returns_once_the_start_commands_are_ready(fake: FakeEngine) -> None:
    fake.behaviour["server"] = NodeBehaviour(ready_delay=0.3)
    deploy.up(fake, lab_plan(NODES), IMAGE)
    ready = {name for what, name in fake.calls if what == "ready"}
    assert ready == {"server", "router", "client-1", "client-2"}  # up returned after each came


def test_a_node_never_ready_fails_after_the_timeout(
    fake: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deploy, "READY_TIMEOUT", 0.3)
    fake.behaviour["server"] = NodeBehaviour(ready_delay=None)
    with pytest.raises(LabError, match=r"server: start commands not ready after 0.3 s"):
        deploy.up(fake, lab_plan(NODES), IMAGE)
    assert fake.containers({}) == []


def test_start_commands_that_failed_fail_the_node(fake: FakeEngine) -> None:
    fake.behaviour["server"] = NodeBehaviour(failed_apps=["tcp-server"])
    with pytest.raises(LabError) as err:
        deploy.up(fake, lab_plan(NODES), IMAGE)
    assert err.value.message.splitlines()[1:3] == [
        "  server: start commands did not start (tcp-server)",
        "      tcp-server: exited with code 1 before it was ready",
    ]
    assert fake.containers({}) == []


def test_a_failure_shows_the_last_output_of_the_failed_apps(fake: FakeEngine) -> None:
    """Not the others': a server that came up after the failed one must not hide its reason."""
    said = [f"{LOG_TIME} tcp-server[2] EADDRINUSE (98): address :::5000 is already in use"]
    said += [f"{LOG_TIME} tcp-server#2[3] line {i}" for i in range(8)]
    fake.behaviour["server"] = NodeBehaviour(failed_apps=["tcp-server"], output=said)
    with pytest.raises(LabError) as err:
        deploy.up(fake, lab_plan(NODES), IMAGE)
    assert err.value.message.splitlines()[-1].endswith("EADDRINUSE (98): address :::5000 is already in use")
    assert "line 7" not in err.value.message


def test_a_node_that_stops_at_once_fails_with_its_output(fake: FakeEngine) -> None:
    fake.behaviour["server"] = NodeBehaviour(exits=True)
    with pytest.raises(LabError, match=r"start commands did not start:\n\s+socklab-node: cannot start"):
        deploy.up(fake, lab_plan(NODES), IMAGE)


def test_a_lab_that_is_up_is_left_alone(fake: FakeEngine) -> None:
    deploy.up(fake, lab_plan(NODES), IMAGE)
    before = len(fake.containers({}))
    with pytest.raises(LabError, match="a lab named 'lab' is already up"):
        deploy.up(fake, lab_plan(NODES), IMAGE)
    assert len(fake.containers({})) == before


def test_down_removes_one_labs_helpers_then_nodes_then_networks(fake: FakeEngine) -> None:
    deploy.up(fake, lab_plan(NODES), IMAGE)
    deploy.up(fake, lab_plan({"n": {"networks": ["lan"]}}, "other"), IMAGE)
    server = next(c for c in fake.containers({LABEL_LAB: "lab"}) if c.node == "server")
    fake.start_helper(
        HelperSpec(target=server.id, lab="lab", purpose="fault", image=IMAGE, argv=("sleep", "9"))
    )
    fake.calls.clear()
    assert deploy.down(fake, "lab") == (5, 2)
    removed = [name for what, name in fake.calls if what.startswith("remove")]
    assert removed[0] == "helper-fault"
    assert [what for what, _ in fake.calls][-2:] == ["remove_network", "remove_network"]
    assert [c.node for c in fake.containers({})] == ["n"]  # the other lab is untouched
    assert deploy.down(fake, "lab") == (0, 0)  # idempotent


class OverlapEngine(FakeEngine):
    """Records how many endpoints of one network were being deleted at the same moment: a
    disconnect deletes one, a removal deletes those of every network still connected."""

    def __init__(self) -> None:
        super().__init__()
        self.busy: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.guard = threading.Lock()

    def _deleting(self, networks: list[str]) -> None:
        with self.guard:
            for net in networks:
                self.busy[net] = self.busy.get(net, 0) + 1
                self.most[net] = max(self.most.get(net, 0), self.busy[net])
        time.sleep(0.01)
        with self.guard:
            for net in networks:
                self.busy[net] -= 1

    def disconnect(self, ident: str, network: str) -> None:
        self._deleting([network])
        super().disconnect(ident, network)

    def remove_container(self, ident: str) -> None:
        box = self.boxes.get(ident)
        self._deleting(list(box.info.networks) if box else [])
        super().remove_container(ident)


def test_down_deletes_one_endpoint_of_a_network_at_a_time() -> None:
    """moby#42119: two endpoints of one network deleted at once may leave the network a stale
    endpoint count; down disconnects each network's containers one by one and removes each
    container once it is detached, while the others are still being detached."""
    fake = OverlapEngine()
    deploy.up(fake, lab_plan({"c": {"networks": ["lan", "wan"], "replicas": 12}}), IMAGE)
    fake.calls.clear()
    assert deploy.down(fake, "lab") == (12, 2)
    kinds = [what for what, _ in fake.calls]
    assert kinds.count("disconnect") == 22  # the last of each network goes with its removal
    assert fake.most == {"socklab-lab-lan": 1, "socklab-lab-wan": 1}
    assert kinds.index("remove_container") < max(i for i, k in enumerate(kinds) if k == "disconnect")


def test_down_of_a_one_node_lab_only_removes() -> None:
    fake = OverlapEngine()
    deploy.up(fake, lab_plan({"n": {"networks": ["lan", "wan"]}}), IMAGE)
    fake.calls.clear()
    assert deploy.down(fake, "lab") == (1, 2)
    assert [what for what, _ in fake.calls] == ["remove_container", "remove_network", "remove_network"]


def test_status_lists_nodes_by_name_with_their_addresses(fake: FakeEngine) -> None:
    deploy.up(fake, lab_plan({"c": {"networks": ["lan"], "replicas": 10}}), IMAGE)
    fake.start_helper(
        HelperSpec(target="socklab-lab-c-1", lab="lab", purpose="x", image=IMAGE, argv=("true",))
    )
    found = deploy.status(fake, "lab")
    assert [s.node for s in found][:3] == ["c-1", "c-2", "c-3"] and found[-1].node == "c-10"
    assert len(found) == 10  # the helper is not a node
    first = found[0]
    assert first.container == "socklab-lab-c-1" and first.state == "running"
    assert first.networks == {"lan": "10.100.0.2/24"}


def test_labs_counts_nodes_and_networks(fake: FakeEngine) -> None:
    deploy.up(fake, lab_plan(NODES), IMAGE)
    deploy.up(fake, lab_plan({"n": {"networks": ["lan"]}}, "other"), IMAGE)
    fake.stop(fake.containers({LABEL_LAB: "other"})[0].id)
    fake.start_helper(
        HelperSpec(target="socklab-lab-server", lab="lab", purpose="x", image=IMAGE, argv=("true",))
    )
    assert deploy.labs(fake) == {
        "lab": {"running": 5, "nodes": 5, "networks": 2},  # a helper left behind counts too
        "other": {"running": 0, "nodes": 1, "networks": 2},
    }


def test_a_taken_host_port_names_the_node_and_the_container_holding_it(fake: FakeEngine) -> None:
    other = ContainerInfo(
        id="c0ffee",
        name="socklab-other-web",
        state="running",
        ports=(PortInfo(80, "tcp", "127.0.0.1", 8080),),
    )
    fake.add_container(other)
    fake.behaviour["router"] = NodeBehaviour(port_taken=8080)
    with pytest.raises(LabError) as err:
        deploy.up(fake, lab_plan(NODES), IMAGE)
    assert err.value.message.splitlines()[1] == (
        "  router: host port 127.0.0.1:8080/tcp is already taken by container socklab-other-web"
    )
    assert err.value.hint is not None and err.value.hint.startswith("change `ports:` of node 'router'")
    assert [c.name for c in fake.containers({})] == ["socklab-other-web"]  # rolled back, not it


def test_status_with_apps_reads_each_nodes_state_file(fake: FakeEngine) -> None:
    deploy.up(fake, lab_plan(NODES), IMAGE)
    by_node = {c.node: c for c in fake.containers({})}
    apps = [
        {"app": "tcp-server", "state": "listening", "code": None, "ports": ["tcp/5000"]},
        {"app": "setup", "state": "exited", "code": 3, "ports": [], "error": None},
    ]
    fake.write_file(by_node["server"].id, deploy.APPS_FILE, json.dumps(apps).encode())
    fake.write_file(by_node["router"].id, deploy.APPS_FILE, json.dumps(apps[:1]).encode())
    fake.stop(by_node["router"].id)  # killed: its supervisor did not see the end
    found = {s.node: s for s in deploy.status(fake, "lab", apps=True)}
    assert [str(a) for a in found["server"].apps or ()] == ["tcp-server listening tcp/5000", "setup exited 3"]
    assert found["server"].as_dict()["apps"][1] == {"app": "setup", "state": "exited", "code": 3, "ports": []}
    assert [a.state for a in found["router"].apps or ()] == ["stopped"]
    assert found["client-1"].apps is None and "apps" not in found["client-1"].as_dict()
    assert all(s.apps is None for s in deploy.status(fake, "lab"))  # only when asked


def test_a_node_of_its_own_program_is_labelled_so(fake: FakeEngine) -> None:
    fake.add_image("shop/web:1")
    deploy.up(
        fake,
        lab_plan(
            {
                "web": {"networks": ["lan"], "image": "shop/web:1", "command": ["serve"]},
                "client": {"networks": ["lan"]},
            }
        ),
        IMAGE,
    )
    web, client = (fake.containers({LABEL_NODE: n})[0] for n in ("web", "client"))
    assert web.labels[LABEL_PROGRAM] == "own" and web.labels[LABEL_TOOLS] == "helper"
    assert LABEL_PROGRAM not in client.labels and LABEL_TOOLS not in client.labels


def test_a_program_that_exits_at_once_fails_up_naming_it(fake: FakeEngine) -> None:
    """`command:` gives the arguments of an ENTRYPOINT (as in compose): a program that ends at
    once is named as it ran, with its exit code and output, and the lab is removed."""
    fake.images["shop/web:1"] = ImageInfo(id="1", tags=("shop/web:1",), entrypoint=("/bin/httpd", "-f"))
    fake.behaviour["web"] = NodeBehaviour(exits=True)
    nodes = {
        "web": {"networks": ["lan"], "image": "shop/web:1", "command": "nc -l -p 9000"},
        "client": {"networks": ["lan"]},
    }
    with pytest.raises(LabError) as err:
        deploy.up(fake, lab_plan(nodes), IMAGE)
    assert err.value.message.splitlines()[:3] == [
        "1 of 1 nodes of their own program failed; the lab was removed:",
        "  web: its program `/bin/httpd -f nc -l -p 9000` exited at once (code 1), saying:",
        "    socklab-node: cannot start",
    ]
    assert err.value.hint is not None and "ENTRYPOINT" in err.value.hint
    assert fake.containers({}) == [] and fake.networks({}) == []


def test_a_program_that_ends_soon_after_its_start_fails_up(fake: FakeEngine) -> None:
    """Not only at once: a node of its own program must still run a moment after its start,
    however soon the other nodes are ready."""
    fake.images["shop/web:1"] = ImageInfo(id="1", tags=("shop/web:1",))
    fake.behaviour["web"] = NodeBehaviour(exits_after=deploy.OWN_SETTLE / 2)
    nodes = {
        "web": {"networks": ["lan"], "image": "shop/web:1", "command": "serve"},
        "client": {"networks": ["lan"]},
    }
    with pytest.raises(LabError, match=r"web: its program `serve` exited at once \(code 3\)"):
        deploy.up(fake, lab_plan(nodes), IMAGE)
    assert fake.containers({}) == []
