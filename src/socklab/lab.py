"""The public library API: ``Lab.load(path).up()`` and friends. The CLI only wraps it."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from socklab.compose import ComposeWarning, Exported, Images, export_compose, stack_plan
from socklab.errors import LabError
from socklab.observe.sockets import SocketRow, read_nodes
from socklab.observe.timeline import Event, merge
from socklab.orchestrator import deploy, image, swarm
from socklab.orchestrator.engine import SubnetTaken, default_engine
from socklab.orchestrator.engine_api import Engine, ExecResult, ExecStream
from socklab.orchestrator.engine_swarm import SwarmEngine, engine_for, local_swarm
from socklab.orchestrator.faults import Faults
from socklab.orchestrator.hostlock import host_lock
from socklab.topology import Topology, load_topology
from socklab.topology.errors import SourceMap
from socklab.topology.graph import LabGraph, lab_graph
from socklab.topology.loader import read_document
from socklab.topology.plan import AUTO_POOL, LABEL_FILE, LABEL_LAB, LabPlan, container_name, plan

SUBNET_ATTEMPTS = 10  # networks made meanwhile by other tools (socklab's own wait for the lock)
MAX_PARALLEL = 32

__all__ = ["ExecResult", "Lab", "LabNode", "down_all", "running_labs"]


class Lab:
    """A lab: loaded from a topology file, or known only by name when it is already up."""

    def __init__(self, name: str, topology: Topology | None = None, *,
                 source: Path | None = None, engine: Engine | None = None) -> None:
        self.name = name
        self.topology = topology
        self.source = source
        self._engine = engine
        self._faults: Faults | None = None

    @classmethod
    def load(cls, path: str | Path, *, engine: Engine | None = None) -> Lab:
        """Read and validate a topology file (raises TopologyError listing every problem)."""
        topo = load_topology(path)
        return cls(topo.name, topo, source=Path(path).resolve(), engine=engine)

    @classmethod
    def named(cls, name: str, *, engine: Engine | None = None) -> Lab:
        """A lab that is up on this host, known by its name (for status, exec, down)."""
        return cls(name, engine=engine)

    @property
    def engine(self) -> Engine:
        """The engine given, else the one the lab runs on: the Swarm when this daemon
        manages a stack of the lab, else the local Docker engine."""
        if self._engine is None:
            self._engine = engine_for(self.name)
        return self._engine

    @property
    def fault(self) -> Faults:
        """Faults at run time, the actions of ``socklab fault``: ``lab.fault.partition(a, b)``,
        ``.heal()``, ``.loss(node, pct)``, ``.delay(node, ms)``, ``.rate(node, "1mbit")``,
        ``.kill(node)``, ``.restart(node)``, ``.list()``..."""
        if self._faults is None:
            self._faults = Faults(self.engine, self.name)
        return self._faults

    def plan(self) -> LabPlan:
        """The concrete resources this lab would get on this host now."""
        return plan(self._topology(), self.engine.subnets_in_use(), self._source_label())

    def up(self, progress: deploy.Progress | None = None,
           on_build: Callable[[str], None] | None = None) -> Lab:
        """Deploy every node; returns once all are running and their start commands started."""
        for name, node in self._topology().nodes.items():
            if node.image and self.engine.image(node.image) is None:
                raise LabError(f"node '{name}': image '{node.image}' is not on this host",
                               "build or load it first (no registry is used to pull it)")
        engine = self.engine
        if isinstance(engine, SwarmEngine):
            swarm.check(engine, self._topology())
        tag = image.ensure(engine, on_progress=on_build)
        attempt = 1
        while True:
            try:
                if isinstance(engine, SwarmEngine):
                    lab_plan = self.plan()
                    stack = stack_plan(self._topology(), lab_plan, self._images(tag, on_build))
                    swarm.up(engine, lab_plan, stack, progress)
                else:  # socklab processes plan and make networks one at a time: no clash
                    with host_lock("subnets") as lock:
                        deploy.up(engine, self.plan(), tag, progress, networks_made=lock.release)
                return self
            except SubnetTaken as exc:  # another tool took it since we looked: plan again
                if not exc.network.allocated:
                    raise
                if attempt == SUBNET_ATTEMPTS:
                    raise LabError(
                        f"no free subnet could be allocated for network '{exc.network.name}': "
                        f"other networks took the chosen ones {SUBNET_ATTEMPTS} times",
                        "something else is creating Docker networks in "
                        f"{AUTO_POOL} right now; try again, or give the network a `subnet:`",
                    ) from exc
                attempt += 1

    def export_compose(self, *, swarm: bool = False,
                       on_build: Callable[[str], None] | None = None) -> Exported:
        """The lab as a docker-compose file (``swarm``: a stack file for ``docker stack
        deploy``), with every key it could not hold as a warning. The node image is built
        when missing, and auto subnets avoid the host's networks; without a reachable Docker
        daemon, both go unchecked (said in a warning)."""
        topo = self._topology()
        try:
            engine = self.engine
        except LabError as exc:
            tag = image.node_image_tag()
            exported = export_compose(topo, plan(topo, (), self._source_label()),
                                      Images(tag), swarm=swarm, source=self._source_map())
            note = ComposeWarning("", f"{exc.message}: the image {tag} is not built (run "
                                  "`socklab image build` before deploying the file) and the "
                                  "allocated subnets are not checked against the host's")
            return replace(exported, warnings=(note, *exported.warnings))
        images = self._images(image.ensure(engine, on_progress=on_build), on_build)
        return export_compose(topo, self.plan(), images, swarm=swarm, source=self._source_map())

    def _images(self, tag: str, on_build: Callable[[str], None] | None) -> Images:
        """The node image, and each node's own image with the node supervisor added (for a
        file or a stack that runs without socklab copying it in)."""
        own = sorted({n.image for n in self._topology().nodes.values() if n.image})
        return Images(tag, {ref: image.supervised(self.engine, ref, on_build) for ref in own})

    def graph(self) -> LabGraph:
        """Networks and nodes with addresses and aliases: the running ones when the lab is
        up, else the ones ``up`` would give now (planned offline without a Docker daemon)."""
        topo = self._topology()
        try:
            engine = self.engine
        except LabError:
            return lab_graph(plan(topo, (), self._source_label()))
        running = {s.node: {net: (ip.split("/")[0], s.ipv6.get(net, "").split("/")[0])
                            for net, ip in s.networks.items()} for s in self.status()}
        if not running:
            return lab_graph(self.plan())
        own = {s for n in engine.networks({LABEL_LAB: self.name}) for s in n.subnets}
        taken = [n for n in engine.subnets_in_use() if n not in own]
        return lab_graph(plan(topo, taken, self._source_label()), running)

    def _source_label(self) -> str | None:
        return str(self.source) if self.source else None

    def _source_map(self) -> SourceMap | None:
        """The topology file as read, for the lines of warnings (None when it is gone)."""
        if self.source is None:
            return None
        shown = os.path.relpath(self.source)
        try:
            return read_document(self.source.read_text(encoding="utf-8"),
                                 str(self.source) if shown.startswith("..") else shown)
        except (OSError, LabError):
            return None

    def down(self) -> tuple[int, int]:
        """Remove the lab's containers and networks by label (a Swarm lab's stack, waiting
        until it is gone); how many of each."""
        if isinstance(self.engine, SwarmEngine):
            return swarm.down(self.engine, self.name)
        return deploy.down(self.engine, self.name)

    def status(self) -> list[deploy.NodeStatus]:
        """The nodes that are up, in topology order when the topology is known."""
        found = deploy.status(self.engine, self.name)
        if self.topology is None:
            return found
        order = {inst: i for i, (inst, _, _) in enumerate(self.topology.instances())}
        return sorted(found, key=lambda s: order.get(s.node, len(order)))

    def sockets(self, node: str | Sequence[str] | None = None) -> list[SocketRow]:
        """Every socket of the running nodes (or of the named ones), all read in parallel."""
        running = [s.node for s in self.status() if s.state == "running"]
        wanted = running if node is None else [node] if isinstance(node, str) else list(node)
        for name in wanted:
            if name not in running:
                self.node(name)  # raises the error that names the running nodes
                raise LabError(f"node '{name}' of lab '{self.name}' is not running",
                               f"start it again, or see `socklab status {self.name}`")
        return read_nodes(self.exec, wanted)

    def exec(self, node: str, argv: list[str]) -> ExecResult:
        """Run a command (argv, no shell) in a node to completion."""
        return self.engine.exec(container_name(self.name, node), argv)

    def logs(self, nodes: Sequence[str] | None = None) -> dict[str, str]:
        """The output so far of every node (or of the named ones), read in parallel."""
        names = [s.node for s in self.status()] if nodes is None else list(nodes)
        if not names:
            return {}
        with ThreadPoolExecutor(min(MAX_PARALLEL, len(names))) as pool:
            texts = list(pool.map(lambda n: self.engine.logs(container_name(self.name, n)),
                                  names))
        return dict(zip(names, texts, strict=True))

    def events(self, nodes: Sequence[str] | None = None) -> list[Event]:
        """The started apps' events of every node (or of the named ones) merged by time."""
        return merge(self.logs(nodes).items())

    def timeline(self) -> list[dict[str, Any]]:
        """The started apps' events of every node merged by time; dicts with time, ts, node,
        app, pid, event, peer and fields."""
        return [e.as_dict() for e in self.events()]

    def address_names(self) -> dict[str, str]:
        """Every address of the lab's nodes (IPv4 and IPv6) -> node name."""
        return {ip: c.node for c in deploy.nodes_of(self.engine, self.name)
                for e in c.networks.values() for ip in (e.ip, e.ipv6) if ip}

    def is_up(self) -> bool:
        return bool(deploy.nodes_of(self.engine, self.name))

    def node(self, name: str) -> LabNode:
        """A node of the running lab by instance name (``client-2``)."""
        running = {c.node for c in deploy.nodes_of(self.engine, self.name)}
        if name not in running:
            if not running:
                raise LabError(f"lab '{self.name}' is not up", "start it with `socklab up FILE`")
            raise LabError(f"node '{name}' not found in lab '{self.name}'",
                           "nodes: " + ", ".join(sorted(running)))
        return LabNode(self, name)

    def nodes(self) -> list[LabNode]:
        return [LabNode(self, s.node) for s in self.status()]

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.down()

    @classmethod
    def brought_up_from(cls, path: str | Path, *, engine: Engine | None = None) -> Lab | None:
        """The lab that is up from this file (by its label), even if the file has since been
        deleted or changed (another lab name, a syntax error)."""
        eng = engine or default_engine()
        labels = {LABEL_FILE: str(Path(path).resolve())}
        found = [c.lab for c in eng.containers(labels)] + [n.lab for n in eng.networks(labels)]
        return cls.named(found[0], engine=eng) if found else None

    def _topology(self) -> Topology:
        if self.topology is None:
            raise LabError(f"lab '{self.name}' has no topology loaded", "use Lab.load(FILE)")
        return self.topology



class LabNode:
    """One running node of a lab."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.lab = lab
        self.name = name
        self.container = container_name(lab.name, name)

    def exec(self, argv: list[str] | str, env: dict[str, str] | None = None) -> ExecResult:
        """Run a command (argv, or a string split with shell rules; no shell) to completion."""
        args = shlex.split(argv) if isinstance(argv, str) else list(argv)
        return self.lab.engine.exec(self.container, args, env=env)

    def exec_stream(self, argv: list[str]) -> ExecStream:
        """Start a command and stream its output (for long-running ones such as tcpdump)."""
        return self.lab.engine.exec_stream(self.container, argv)

    def read_file(self, path: str) -> bytes:
        return self.lab.engine.read_file(self.container, path)

    def logs(self) -> str:
        return self.lab.engine.logs(self.container)

    def follow_logs(self, tail: int | str = "all") -> Iterator[str]:
        return self.lab.engine.follow_logs(self.container, tail=tail)


def lab_of_project(name: str, engine: Engine | None = None) -> str | None:
    """The lab brought up as the docker-compose project or the stack ``name`` (its file
    from `socklab compose export`, run with `-p NAME` or `docker stack deploy ... NAME`)."""
    eng = engine or default_engine()
    for label in ("com.docker.compose.project", "com.docker.stack.namespace"):
        found = [c.lab for c in eng.containers({label: name, LABEL_LAB: ""}) if c.lab]
        if found:
            return found[0]
    return None


def running_labs(engine: Engine | None = None) -> dict[str, dict[str, int]]:
    """Labs on this host (and the stacks of the Swarm it manages): name -> counts of nodes,
    running nodes and networks."""
    found = deploy.labs(engine or default_engine())
    stacks = swarm.labs(local_swarm_engine) if engine is None and (
        local_swarm_engine := local_swarm()) else {}
    return dict(sorted({**found, **stacks}.items()))


def down_all(engine: Engine | None = None) -> tuple[int, int]:
    """Remove every socklab container and network on this host, and every socklab stack of
    the Swarm it manages."""
    tasks, networks = 0, 0
    stacks = local_swarm() if engine is None else None
    if stacks is not None:
        tasks, networks = swarm.down(stacks, None)
    containers, more = deploy.down(engine or default_engine(), None)
    return tasks + containers, networks + more
