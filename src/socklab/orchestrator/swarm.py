"""Deploy a lab as a Swarm stack, and take it down again.

The stack comes from the same plan as ``socklab compose export --swarm``: its overlay
networks first, then one service per node; ``up`` returns once every task runs and its
start commands are started, and takes everything away again if one does not. ``down``
removes the services, waits until their tasks' containers are gone, then removes the
networks and waits until they are gone too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from socklab import interrupt
from socklab.compose.stack import StackPlan, unsupported
from socklab.errors import LabError
from socklab.orchestrator.deploy import Progress, _pool_all, wait_ready
from socklab.orchestrator.engine_swarm import SwarmEngine, Task
from socklab.topology.model import Topology
from socklab.topology.plan import LABEL_LAB, LabPlan

TASK_TIMEOUT = 120.0
GONE_TIMEOUT = 120.0
_FAILED = {"failed", "rejected", "complete", "shutdown", "orphaned", "remove"}


def check(engine: SwarmEngine, topo: Topology) -> None:
    """Refuse, in one line, a topology this Swarm cannot run as written."""
    problems = unsupported(topo)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise LabError(
            f"Swarm cannot honour {problems[0].path}: {problems[0].message}{more}",
            "`socklab compose export LAB --swarm` lists every such key; remove them "
            "for --engine swarm (e.g. let addresses be allocated)",
        )
    hosts = {h.hostname: h for h in engine.hosts()}
    for name, node in topo.nodes.items():
        if node.host is None:
            continue
        host = hosts.get(node.host)
        if host is None:
            raise LabError(
                f"node '{name}': host '{node.host}' is not in this Swarm",
                "Swarm hosts: " + ", ".join(sorted(hosts)) + " (`docker node ls`)",
            )
        if not host.ready:
            raise LabError(
                f"node '{name}': Swarm host '{node.host}' is unreachable ({host.state}, {host.availability})",
                "bring its Docker daemon back (`docker node ls` shows it), or place the node elsewhere",
            )


def up(
    engine: SwarmEngine,
    plan: LabPlan,
    stack: StackPlan,
    progress: Progress | None = None,
    networks_made: Callable[[], None] = lambda: None,
) -> None:
    """Deploy a planned lab as a stack; roll back on any failure or Ctrl-C. ``networks_made``
    is called once its networks exist (their subnets are taken: other labs may plan now)."""
    report = progress or (lambda *_: None)
    if (
        engine.services(plan.lab)
        or engine.containers({LABEL_LAB: plan.lab})
        or engine.networks({LABEL_LAB: plan.lab})
    ):
        raise LabError(
            f"a lab named '{plan.lab}' is already up", f"take it down first: `socklab down --lab {plan.lab}`"
        )
    try:
        report("networks", 0, len(plan.networks))
        for i, net in enumerate(plan.networks, 1):
            engine.create_network(net)
            report("networks", i, len(plan.networks))
        networks_made()
        report("services", 0, len(stack.services))
        for i, svc in enumerate(stack.services, 1):
            engine.create_service(plan.lab, svc)
            report("services", i, len(stack.services))
        starts = {s.instance: bool(s.start) for s in plan.containers}
        instances = [(svc.name, inst) for svc in stack.services for inst in svc.instances]
        _pool_all(
            [partial(_wait_task, engine, plan.lab, inst, starts.get(inst, False)) for _, inst in instances],
            "nodes",
            report,
            [inst for _, inst in instances],
        )
    except BaseException:
        down(engine, plan.lab)
        raise


def _wait_task(engine: SwarmEngine, lab: str, instance: str, has_start: bool) -> None:
    """Until a node's task runs (and its start commands are started)."""
    deadline = time.monotonic() + TASK_TIMEOUT
    task: Task | None = None
    while time.monotonic() < deadline:
        task = next((t for t in engine.tasks(lab) if t.instance == instance), None)
        if task is not None and task.state == "running" and task.container_id:
            break
        if task is not None and task.state in _FAILED:
            raise LabError(f"its task is {task.state}: {task.error or 'no reason given'}", _hint(task.error))
        time.sleep(0.2)
    else:
        why = f"{task.state}: {task.error}" if task and task.error else (task.state if task else "no task")
        raise LabError(
            f"its task is not running after {TASK_TIMEOUT:.0f} s ({why})", _hint(task.error if task else "")
        )
    if has_start:
        wait_ready(engine, task.container_id)


def _hint(error: str) -> str | None:
    if "No such image" in error or "image" in error.lower():
        return (
            "every Swarm host needs the node image (nothing is pulled from a registry): "
            "`socklab image build` there, or `docker save | docker load` it"
        )
    if "no suitable node" in error:
        return "a node's `host:` names a Swarm host that cannot run it (`docker node ls`)"
    return None


def down(engine: SwarmEngine, lab: str | None) -> tuple[int, int]:
    """Remove a lab's stack (every socklab stack with None) and wait until it is gone:
    how many tasks and networks it had."""
    with interrupt.held():
        services = engine.services(lab)
        tasks = engine.tasks(lab) if lab else engine.tasks(None)
        labs = {s["Spec"]["Labels"].get(LABEL_LAB, "") for s in services} | ({lab} if lab else set())
        for svc in services:
            engine.remove_service(svc["ID"])
        deadline = time.monotonic() + GONE_TIMEOUT
        while any(engine.stack_containers(name) for name in labs):
            if time.monotonic() > deadline:
                raise LabError(
                    f"the tasks of lab '{lab}' are still there after {GONE_TIMEOUT:.0f} s",
                    "see `docker stack ps` and `docker ps`",
                )
            time.sleep(0.2)
        helpers = [c.id for name in labs for c in engine.containers({LABEL_LAB: name})]
        if helpers:
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(engine.remove_container, helpers))
        networks = [n for name in labs for n in engine.networks({LABEL_LAB: name})]
        for net in networks:
            _remove_network(engine, net.id, net.name, deadline)
        return len(tasks), len(networks)


def _remove_network(engine: SwarmEngine, ident: str, name: str, deadline: float) -> None:
    """Remove an overlay network once its last endpoint is gone; wait until it is."""
    while True:
        try:
            engine.remove_network(ident, name)
        except LabError:
            if time.monotonic() > deadline:
                raise
        if not [n for n in engine.networks({}) if n.id == ident]:
            return
        if time.monotonic() > deadline:
            raise LabError(
                f"network {name} is still there after {GONE_TIMEOUT:.0f} s",
                "see `docker network inspect " + name + "`",
            )
        time.sleep(0.2)


def labs(engine: SwarmEngine) -> dict[str, dict[str, int]]:
    """The labs deployed as stacks: name -> counts of nodes, running nodes and networks."""
    out: dict[str, dict[str, int]] = {}
    for task in engine.tasks(None):
        entry = out.setdefault(task.lab, {"running": 0, "nodes": 0, "networks": 0})
        entry["nodes"] += 1
        entry["running"] += task.state == "running"
    for name in out:
        out[name]["networks"] = len(engine.networks({LABEL_LAB: name}))
    return out
