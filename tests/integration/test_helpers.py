"""Helper containers: they join a node's namespaces with capabilities the node does not have."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from socklab import Lab
from socklab.errors import LabError
from socklab.orchestrator.engine_api import LABEL_HELPER, LABEL_TARGET, Engine, HelperSpec
from socklab.topology.plan import LABEL_LAB

from .conftest import leftovers

ONE_NODE = {"networks": {"lan": {}}, "nodes": {"n": {"networks": ["lan"]}}}


def _helper(
    lab: Lab,
    image: str,
    *argv: str,
    purpose: str = "test",
    cap_add: tuple[str, ...] = ("NET_ADMIN",),
    pid: bool = False,
) -> HelperSpec:
    return HelperSpec(
        target=lab.node("n").container,
        lab=lab.name,
        purpose=purpose,
        image=image,
        argv=argv,
        cap_add=cap_add,
        pid=pid,
    )


def test_a_helper_changes_the_nodes_network_which_the_node_itself_cannot(
    make_lab: Callable[..., Lab], engine: Engine, node_image: str
) -> None:
    lab = make_lab(ONE_NODE, "helper")
    node = lab.node("n")
    assert engine.container(node.container).cap_add == ()  # the node has no added capability
    assert not node.exec(["iptables", "-S"]).ok  # so it cannot even read its firewall

    rule = ["iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", "5999", "-j", "DROP"]
    added = engine.run_helper(_helper(lab, node_image, *rule))
    assert added.ok, added.stderr
    shown = engine.run_helper(_helper(lab, node_image, "iptables", "-S", "OUTPUT"))
    assert "--dport 5999 -j DROP" in shown.stdout
    # the helper saw the node's own interfaces (same network namespace), and is gone after
    links = engine.run_helper(_helper(lab, node_image, "ip", "-o", "addr", "show"))
    ip = lab.status()[0].networks["lan"]
    assert ip in links.stdout
    assert engine.containers({LABEL_LAB: lab.name, LABEL_HELPER: ""}) == []


def test_a_helper_with_pid_sees_the_nodes_processes(
    make_lab: Callable[..., Lab], engine: Engine, node_image: str
) -> None:
    lab = make_lab(
        {"networks": {"lan": {}}, "nodes": {"n": {"networks": ["lan"], "start": ["tcp-server --port 5000"]}}},
        "helperpid",
    )
    seen = engine.run_helper(_helper(lab, node_image, "ps", "-eo", "args", cap_add=(), pid=True))
    assert seen.ok and "tcp-server" in seen.stdout
    alone = engine.run_helper(_helper(lab, node_image, "ps", "-eo", "args", cap_add=()))
    assert "tcp-server" not in alone.stdout


def test_a_helper_that_outlives_its_timeout_is_stopped_and_removed(
    make_lab: Callable[..., Lab], engine: Engine, node_image: str
) -> None:
    lab = make_lab(ONE_NODE, "helperto")
    t0 = time.monotonic()
    with pytest.raises(LabError, match="still running after 1 s"):
        engine.run_helper(_helper(lab, node_image, "sleep", "60"), timeout=1)
    assert time.monotonic() - t0 < 30
    assert engine.containers({LABEL_LAB: lab.name, LABEL_HELPER: ""}) == []


def test_a_detached_helper_runs_until_down_removes_it(
    write_lab: Callable[..., Path], engine: Engine, node_image: str
) -> None:
    lab = Lab.load(write_lab(ONE_NODE, "helperbg"), engine=engine).up()
    try:
        ident = engine.start_helper(_helper(lab, node_image, "sleep", "600", purpose="delayer"))
        [found] = engine.containers({LABEL_LAB: lab.name, LABEL_HELPER: "delayer"})
        assert found.id == ident and found.running
        assert found.name.startswith(f"socklab-{lab.name}-n-delayer-")  # `docker ps` says whose
        assert found.labels[LABEL_TARGET] == engine.container(lab.node("n").container).id
        assert [s.node for s in lab.status()] == ["n"]  # a helper is not a node
    finally:
        lab.down()
    assert leftovers(engine, lab.name) == []


def test_a_helper_needs_a_running_target(
    make_lab: Callable[..., Lab], engine: Engine, node_image: str
) -> None:
    lab = make_lab(ONE_NODE, "helperstop")
    with pytest.raises(LabError, match="image nosuch/image:1 is not on this host"):
        engine.run_helper(_helper(lab, "nosuch/image:1", "true"))
    with pytest.raises(LabError, match="not found"):
        engine.run_helper(
            HelperSpec(
                target="socklab-nosuch-n", lab=lab.name, purpose="test", image=node_image, argv=("true",)
            )
        )
