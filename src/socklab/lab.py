"""The public library API: ``Lab.load(path).up()`` and friends. The CLI only wraps it."""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import queue
import re
import shlex
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any

import yaml

from socklab.catalog import find_lab_file
from socklab.compose import ComposeWarning, Exported, Images, export_compose, stack_plan
from socklab.errors import (
    CommandNotFound,
    ExecTimeout,
    LabAlreadyUp,
    LabError,
    NodeNotFound,
    NodeNotRunning,
)
from socklab.observe import host_sockets
from socklab.observe.connections import Connection, connections
from socklab.observe.sockets import HostRead, SocketRow, listening, read_nodes
from socklab.observe.timeline import Event, merge
from socklab.orchestrator import deploy, image, swarm
from socklab.orchestrator.engine import SubnetTaken, default_engine
from socklab.orchestrator.engine_api import (
    LABEL_HELPER,
    LABEL_TARGET,
    ContainerInfo,
    EndpointInfo,
    Engine,
    ExecResult,
    ExecStream,
    HelperSpec,
)
from socklab.orchestrator.engine_swarm import SwarmEngine, engine_for, local_swarm
from socklab.orchestrator.faults import Faults, up_hint
from socklab.orchestrator.hostlock import host_lock
from socklab.topology import Topology, load_topology, parse_topology
from socklab.topology.errors import DocPath, Problem, SourceMap, format_path
from socklab.topology.graph import LabGraph, lab_graph
from socklab.topology.loader import read_document
from socklab.topology.model import LAB_NAME
from socklab.topology.plan import (
    AUTO_POOL,
    LABEL_FILE,
    LABEL_HASH,
    LABEL_LAB,
    LABEL_PROGRAM,
    LABEL_TOOLS,
    LabPlan,
    container_name,
    network_name,
    plan,
)

if TYPE_CHECKING:
    from socklab.scenario.results import RunResult
    from socklab.scenario.steps import StepHook

SUBNET_ATTEMPTS = 10  # networks made meanwhile by other tools (socklab's own wait for the lock)
MAX_PARALLEL = 32

WAIT_POLL = 0.2

__all__ = ["ExecResult", "Lab", "LabNetwork", "LabNode", "down_all", "running_labs"]


class Lab:
    """A lab: loaded from a topology file, or known only by name when it is already up."""

    def __init__(
        self,
        name: str,
        topology: Topology | None = None,
        *,
        source: Path | None = None,
        engine: Engine | None = None,
        labels: Mapping[str, str] | None = None,
        image: str | None = None,
    ) -> None:
        self.name = name
        self.topology = topology
        self.source = source
        self.labels = dict(labels or {})
        """put on every container and network of the lab besides socklab's own"""
        self.image = image
        """the node image to use instead of building ``socklab/node:<hash>``"""
        self._engine = engine
        self._faults: Faults | None = None
        self._brought_up = False

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        engine: Engine | None = None,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        image: str | None = None,
    ) -> Lab:
        """Read and validate a topology file (raises TopologyError listing every problem).
        ``name`` renames the lab (two copies of one file side by side)."""
        topo = _renamed(load_topology(path), name)
        return cls(topo.name, topo, source=Path(path).resolve(), engine=engine, labels=labels, image=image)

    @classmethod
    def from_yaml(
        cls,
        document: str | Mapping[str, Any],
        *,
        engine: Engine | None = None,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        image: str | None = None,
    ) -> Lab:
        """A lab from topology YAML text, or from the same as a dict (TopologyError listing
        every problem, with lines of the text)."""
        text = document if isinstance(document, str) else yaml.safe_dump(dict(document), sort_keys=False)
        topo = _renamed(parse_topology(text, "<yaml>"), name)
        return cls(topo.name, topo, engine=engine, labels=labels, image=image)

    @classmethod
    def named(cls, name: str, *, engine: Engine | None = None) -> Lab:
        """A lab that is up on this host, known by its name (for status, exec, down)."""
        return cls(name, engine=engine)

    @classmethod
    def open(cls, arg: str, *, up: bool = False, engine: Engine | None = None) -> Lab:
        """What the CLI's LAB argument names: a topology file, a shipped lab's name, a lab
        that is up (by name, or by the docker-compose project or stack it was brought up
        as). With ``up``, the lab must be up."""
        path = find_lab_file(arg)
        if path is not None:
            lab = cls.load(path, engine=engine)
            if up and not lab.is_up():
                raise LabError(f"lab '{lab.name}' is not up", f"start it with `socklab up {arg}`")
            return lab
        if "/" not in arg and not arg.endswith((".yml", ".yaml")):
            lab = cls.named(arg, engine=engine)
            if lab.is_up():
                return lab
            project = lab_of_project(arg, engine)
            if project is not None:
                return cls.named(project, engine=engine)
        raise LabError(
            f"topology file not found: {arg}",
            "give a path to a YAML file, a shipped lab (`socklab labs`) or a lab that is up (`socklab ls`)",
        )

    @classmethod
    def to_remove(cls, arg: str, *, engine: Engine | None = None) -> Lab:
        """The lab ``down`` of a file or a name removes: the lab brought up from that file
        (whatever the file says now, even when it is gone), else the one it names."""
        path = find_lab_file(arg)
        if path is not None or arg.endswith((".yml", ".yaml")) or "/" in arg:
            up_from_file = cls.brought_up_from(path or arg, engine=engine)
            if up_from_file is not None:
                return up_from_file
            if path is not None:
                return cls.load(path, engine=engine)
            raise LabError(
                f"topology file not found: {arg}",
                "to remove a lab whose file is gone use `socklab down --lab NAME` "
                "(`socklab ls` lists them) or `socklab down --all`",
            )
        return cls.up_as(arg, engine=engine)

    @classmethod
    def up_as(cls, name: str, *, engine: Engine | None = None) -> Lab:
        """The lab of that name; when none is up, the lab brought up as the docker-compose
        project or the stack ``name`` (else the lab of that name, not up)."""
        lab = cls.named(name, engine=engine)
        if lab.is_up():
            return lab
        project = lab_of_project(name, engine)
        return cls.named(project, engine=engine) if project else lab

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
            self._faults = Faults(self.engine, self.name, str(self.source) if self.source else None)
        return self._faults

    def plan(self) -> LabPlan:
        """The concrete resources this lab would get on this host now."""
        return plan(
            self._topology(),
            self.engine.subnets_in_use(),
            self._source_label(),
            {**self.labels, LABEL_HASH: self.content_hash()},
        )

    def content_hash(self) -> str:
        """A hash of what the topology says, its name left out: a lab up with the same hash
        (from the same file, under any name) can be reused as it is."""
        doc = self._topology().model_dump(mode="json", exclude={"name"})
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def up(
        self,
        reuse: bool = False,
        progress: deploy.Progress | None = None,
        on_build: Callable[[str], None] | None = None,
    ) -> Lab:
        """Deploy every node; returns once all are running and their start commands started.

        With ``reuse``, a lab already up from the same topology (same file and content, under
        this name or another) is taken as it is; a lab of this name with other content is
        LabAlreadyUp."""
        if reuse and self._adopt():
            return self
        own_program = self._images_without_python()
        engine = self.engine
        if isinstance(engine, SwarmEngine):
            swarm.check(engine, self._topology())
        tag = self._node_image(on_build)
        attempt = 1
        while True:
            try:
                if isinstance(engine, SwarmEngine):
                    images = self._images(tag, on_build, own_program)
                    # a stack's subnets are planned under the same lock as a local lab's:
                    # a local lab on this host must not take them before the stack does
                    with host_lock("subnets") as lock:
                        lab_plan = _own_programs(self.plan(), own_program)
                        stack = stack_plan(self._topology(), lab_plan, images)
                        swarm.up(engine, lab_plan, stack, progress, networks_made=lock.release)
                else:  # socklab processes plan and make networks one at a time: no clash
                    with host_lock("subnets") as lock:
                        deploy.up(
                            engine,
                            _own_programs(self.plan(), own_program),
                            tag,
                            progress,
                            networks_made=lock.release,
                        )
                self._brought_up = True
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

    def _images_without_python(self) -> set[str]:
        """The nodes' own images that have no python3 (their nodes run the image's own
        program); LabError for an image that is missing, or one without python3 whose node
        has ``start:`` commands."""
        without, refused = self._own_images()
        if refused:
            _, message, hint = refused[0]
            raise LabError(message, hint)
        return without

    def image_problems(self) -> list[Problem]:
        """What ``up`` would refuse of the nodes' own images on this host (an image that is
        not here, one without python3 for a node with ``start:``), located in the file."""
        source = self._source_map()
        return [
            source.problem(path, message, hint)
            if source
            else Problem("<yaml>", None, format_path(path), message, hint)
            for path, message, hint in self._own_images()[1]
        ]

    def _own_images(self) -> tuple[set[str], list[tuple[DocPath, str, str]]]:
        """The nodes' own images without python3, and what ``up`` refuses of them (the key
        of the node, a message and a hint)."""
        without: set[str] = set()
        checked: set[str] = set()
        refused: list[tuple[DocPath, str, str]] = []
        for name, node in self._topology().nodes.items():
            if not node.image:
                continue
            if node.image not in checked:
                checked.add(node.image)
                if self.engine.image(node.image) is None:
                    refused.append(
                        (
                            ("nodes", name, "image"),
                            f"node '{name}': image '{node.image}' is not on this host",
                            "build or load it first (no registry is used to pull it)",
                        )
                    )
                    continue
                if not self.engine.image_has(node.image, PYTHON3, self.name):
                    without.add(node.image)
            if node.image in without and node.start:
                refused.append(
                    (
                        ("nodes", name, "start"),
                        f"node '{name}': image '{node.image}' has no python3, so socklab cannot run "
                        "its `start:` commands",
                        "leave `start:` out: the node runs the image's own program (its CMD, or "
                        "`command:`), and `socklab exec` runs more; or use an image with python3",
                    )
                )
        return without, refused

    def _node_image(self, on_build: Callable[[str], None] | None) -> str:
        if self.image is None:
            return image.ensure(self.engine, on_progress=on_build)
        if self.engine.image(self.image) is None:
            raise LabError(
                f"node image '{self.image}' is not on this host",
                "build it (`socklab image build` makes socklab's own) or load it",
            )
        return self.image

    def _adopt(self) -> bool:
        """Take over a lab already up from this topology (see :meth:`up`); False when none."""
        mine = self.content_hash()
        wanted = {LABEL_HASH: mine, **({LABEL_FILE: str(self.source)} if self.source else {})}
        found = sorted({c.lab for c in self.engine.containers(wanted) if c.lab and c.node})
        if self.name in found or found:
            self.rename(self.name if self.name in found else found[0])
            self._brought_up = True
            return True
        same_name = deploy.nodes_of(self.engine, self.name)
        if same_name:
            raise LabAlreadyUp(
                f"a lab named '{self.name}' is already up, from another topology",
                f"take it down first: `socklab down --lab {self.name}`",
            )
        return False

    def rename(self, name: str) -> None:
        """Give the lab (not up yet) another name: two copies of one topology side by side."""
        self.topology = _renamed(self._topology(), name)
        self.name = name

    def run(
        self,
        scenario: str = "default",
        report_dir: str | Path | None = None,
        *,
        keep: bool = False,
        junit: str | Path | None = None,
        progress: deploy.Progress | None = None,
        on_step_start: Callable[[str, str], None] | None = None,
        on_step: StepHook | None = None,
    ) -> RunResult:
        """Run a scenario, as ``socklab run`` does: up, the steps, collect, report, down
        (unless ``keep``). On a lab this object brought up, the steps run on it and it stays
        up. ``scenario="default"`` is the scenario of that name, else the lab's only one.
        The report is in ``report_dir`` (default ``runs/<lab>-<time>``)."""
        from socklab.scenario import run as scenario_run

        return scenario_run.run(
            self,
            None if scenario == scenario_run.DEFAULT_SCENARIO else scenario,
            run_dir=Path(report_dir) if report_dir is not None else None,
            keep=keep,
            junit=Path(junit) if junit is not None else None,
            progress=progress,
            on_step_start=on_step_start,
            on_step=on_step,
            deploy=not self._brought_up,
        )

    def export_compose(
        self, *, swarm: bool = False, on_build: Callable[[str], None] | None = None
    ) -> Exported:
        """The lab as a docker-compose file (``swarm``: a stack file for ``docker stack
        deploy``), with every key it could not hold as a warning. The node image is built
        when missing, and auto subnets avoid the host's networks; without a reachable Docker
        daemon, both go unchecked (said in a warning)."""
        topo = self._topology()
        try:
            engine = self.engine
        except LabError as exc:
            tag = image.node_image_tag()
            exported = export_compose(
                topo,
                plan(topo, (), self._source_label()),
                Images(tag),
                swarm=swarm,
                source=self._source_map(),
            )
            note = ComposeWarning(
                "",
                f"{exc.message}: the image {tag} is not built (run "
                "`socklab image build` before deploying the file) and the "
                "allocated subnets are not checked against the host's",
            )
            return replace(exported, warnings=(note, *exported.warnings))
        without = self._images_without_python()
        images = self._images(image.ensure(engine, on_progress=on_build), on_build, without)
        return export_compose(
            topo, _own_programs(self.plan(), without), images, swarm=swarm, source=self._source_map()
        )

    def _images(self, tag: str, on_build: Callable[[str], None] | None, without_python: set[str]) -> Images:
        """The node image, and each node's own image with python3 with the node supervisor
        added (for a file or a stack that runs without socklab copying it in)."""
        own = sorted(
            {
                n.image
                for n in self._topology().nodes.values()
                if n.image and n.command is None and n.entrypoint is None and n.image not in without_python
            }
        )
        return Images(tag, {ref: image.supervised(self.engine, ref, on_build) for ref in own})

    def graph(self, status: Sequence[deploy.NodeStatus] | None = None) -> LabGraph:
        """Networks and nodes with addresses and aliases: the running ones when the lab is
        up, else the ones ``up`` would give now (planned offline without a Docker daemon).
        ``status``: the nodes' :meth:`status`, when the caller has it already."""
        topo = self._topology()
        try:
            engine = self.engine
        except LabError:
            return lab_graph(plan(topo, (), self._source_label()))
        running = {
            s.node: {
                net: (ip.split("/")[0], s.ipv6.get(net, "").split("/")[0]) for net, ip in s.networks.items()
            }
            for s in (self.status() if status is None else status)
        }
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
            return read_document(
                self.source.read_text(encoding="utf-8"), str(self.source) if shown.startswith("..") else shown
            )
        except (OSError, LabError):
            return None

    def down(self) -> tuple[int, int]:
        """Remove the lab's containers and networks by label (a Swarm lab's stack, waiting
        until it is gone); how many of each."""
        self._brought_up = False
        if isinstance(self.engine, SwarmEngine):
            return swarm.down(self.engine, self.name)
        return deploy.down(self.engine, self.name)

    def status(self, apps: bool = False) -> list[deploy.NodeStatus]:
        """The nodes that are up, in topology order (also for a lab known only by name);
        with ``apps``, each node's apps: listening, running, exited with their code..."""
        return deploy.status(self.engine, self.name, apps)

    def sockets(self, node: str | Sequence[str] | None = None) -> list[SocketRow]:
        """Every socket of the running nodes (or of the selected ones: names, replicated
        nodes' base names, globs), all read in parallel."""
        found = deploy.ordered_nodes(self.engine, self.name)
        running = [c.node for c in found if c.state == "running"]
        selectors = [] if node is None else [node] if isinstance(node, str) else list(node)
        up = [c.node for c in found]
        wanted = (
            running
            if node is None
            else list(dict.fromkeys(name for sel in selectors for name in self._select(sel, up)))
        )
        for name in wanted:
            if name not in running:
                raise NodeNotRunning(
                    f"node '{name}' of lab '{self.name}' is not running",
                    f"start it again, or see `socklab status {self.name}`",
                )
        listed = {c.node: c for c in found}  # no inspect per node: the listing has its labels

        def tools(name: str) -> NodeTools:
            return LabNode(self, name).tools(listed[name])

        return read_nodes(
            lambda n, argv: tools(n).exec(argv),
            lambda n, argv: tools(n).ask(argv),
            wanted,
            self._host_reader(),
        )

    def _host_reader(self) -> HostRead | None:
        """Reads a node's sockets from this host's /proc when it can (root, the daemon on
        this host, not ``SOCKLAB_SNAPSHOT=exec``): no exec needed."""
        engine = self.engine
        if not host_sockets.host_reading(
            os.environ.get(host_sockets.SETTING), os.geteuid(), engine.on_this_host()
        ):
            return None
        proc = host_sockets.HostProc()

        def read(node: str) -> list[dict[str, Any]] | None:
            info = engine.container(container_name(self.name, node))
            return proc.sockets(info.pid, info.id) if info.running else None

        return read

    def connections(self) -> list[Connection]:
        """Who is connected to whom now: the ESTABLISHED TCP sockets of all nodes paired end
        to end (the server is the end on a listening port)."""
        return connections(self.sockets())

    def wait_listening(self, node: str, what: str, timeout: float = 30.0) -> None:
        """Until every node the selector matches has a socket listening on ``what``
        (``tcp/7000``, ``udp/53``); LabError after ``timeout`` s."""
        if not re.fullmatch(r"(tcp|udp)6?/\d+", what):
            raise LabError(f"cannot wait for {what!r}", "write PROTO/PORT, e.g. tcp/7000 or udp/53")
        match = listening(what)
        pending = self.select(node)
        deadline = time.monotonic() + timeout
        while pending:
            rows = self.sockets(pending)
            pending = [n for n in pending if not any(match(r) for r in rows if r.node == n)]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise LabError(
                    f"nothing listens on {what} in {', '.join(pending)} after {timeout:g} s",
                    f"see what does: `socklab sockets {self.name} "
                    f"{pending[0]}`; why not: `socklab logs {self.name} {pending[0]}`",
                )
            time.sleep(WAIT_POLL)

    def wait_log(self, node: str, pattern: str, timeout: float = 30.0) -> str:
        """Until a line of the node's output matches the regular expression; that line.
        LabError after ``timeout`` s."""
        target = self.node(node)
        found = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in target.logs().splitlines():
                if found.search(line):
                    return line
            if time.monotonic() > deadline:
                raise LabError(
                    f"no line of {target.name}'s output matches {pattern!r} after {timeout:g} s",
                    f"see it: `socklab logs {self.name} {target.name}`",
                )
            time.sleep(WAIT_POLL)

    def tools_exec(self, node: str, argv: list[str]) -> ExecResult:
        """Run one of socklab's tools (the socket reader, the resolver probe, netstat, ss) for
        a node: in the node, or in its tools helper when its image has none of them."""
        return LabNode(self, node).tools().exec(argv)

    def exec(self, node: str, argv: Sequence[str] | str) -> ExecResult:
        """Run a command (argv, no shell) in a node to completion: ``lab.node(node).exec``."""
        return LabNode(self, node).exec(argv)

    def logs(self, nodes: Sequence[str] | None = None) -> dict[str, str]:
        """The output so far of every node (or of the named ones), read in parallel."""
        names = [s.node for s in self.status()] if nodes is None else list(nodes)
        if not names:
            return {}
        with ThreadPoolExecutor(min(MAX_PARALLEL, len(names))) as pool:
            texts = list(pool.map(lambda n: self.engine.logs(container_name(self.name, n)), names))
        return dict(zip(names, texts, strict=True))

    def follow(self, selector: str | None = None) -> Iterator[tuple[str, str]]:
        """Every node's (or the selected nodes') output as it comes, merged: (node, line)
        pairs, from the start of each log, until every node stopped."""
        names = [s.node for s in self.status()] if selector is None else self.select(selector)
        lines: queue.Queue[tuple[str, str] | None] = queue.Queue()

        def pump(name: str) -> None:
            try:
                for line in self.engine.follow_logs(container_name(self.name, name)):
                    lines.put((name, line))
            finally:
                lines.put(None)

        for name in names:
            threading.Thread(target=pump, args=(name,), daemon=True).start()
        running = len(names)
        while running:
            item = lines.get()
            if item is None:
                running -= 1
            else:
                yield item

    def events(self, nodes: Sequence[str] | None = None) -> list[Event]:
        """The started apps' events of every node (or of the named ones) merged by time."""
        return merge(self.logs(nodes).items())

    def timeline(self) -> list[Event]:
        """The started apps' events of every node merged by time (each with ts, node, app,
        pid, event, peer and its other fields; ``as_dict()`` for JSON)."""
        return self.events()

    def network(self, name: str) -> LabNetwork:
        """One network of the running lab. Its ``name`` is the engine's, so a testcontainers
        ``DockerContainer(...).with_network(lab.network("lan"))`` joins it."""
        wanted = network_name(self.name, name)
        for net in self.engine.networks({LABEL_LAB: self.name}):
            if net.name == wanted:
                return LabNetwork(
                    name=net.name, id=net.id, lab=self.name, subnets=tuple(str(s) for s in net.subnets)
                )
        known = sorted(
            n.name.removeprefix(f"socklab-{self.name}-") for n in self.engine.networks({LABEL_LAB: self.name})
        )
        raise LabError(
            f"no network '{name}' in lab '{self.name}'",
            "networks: " + ", ".join(known) if known else "is the lab up?",
        )

    def address_names(self) -> dict[str, str]:
        """Every address of the lab's nodes (IPv4 and IPv6) -> node name."""
        return {
            ip: c.node
            for c in deploy.nodes_of(self.engine, self.name)
            for e in c.networks.values()
            for ip in (e.ip, e.ipv6)
            if ip
        }

    def is_up(self) -> bool:
        return bool(deploy.nodes_of(self.engine, self.name))

    def node(self, name: str) -> LabNode:
        """A node of the running lab by instance name (``client-2``), or a selector that
        matches exactly one."""
        found = self.select(name)
        if len(found) > 1:
            raise NodeNotFound(
                f"'{name}' matches {len(found)} nodes of lab '{self.name}': " + ", ".join(found),
                "name one of them",
            )
        return LabNode(self, found[0])

    def nodes(self, selector: str | None = None) -> list[LabNode]:
        """The nodes that are up (or those the selector matches), in topology order."""
        names = [s.node for s in self.status()] if selector is None else self.select(selector)
        return [LabNode(self, n) for n in names]

    def select(self, selector: str) -> list[str]:
        """The node names a selector matches, in topology order: a node (``client-2``), a
        replicated node's base name (``client``: every replica) or a glob (``client-*``).
        NodeNotFound when it matches none of the nodes that are up."""
        return self._select(selector, [s.node for s in self.status()])

    def _select(self, selector: str, up: list[str]) -> list[str]:
        """``select`` among the nodes ``up`` (a status already read)."""
        if not up:
            raise NodeNotFound(f"lab '{self.name}' is not up", up_hint(self.source))
        if self.topology is not None:
            found = [n for n in self.topology.match_nodes(selector) if n in up]
            found = found or match_names(selector, up)  # a node the planner added (``dns``)
        else:
            found = match_names(selector, up)
        if not found:
            raise NodeNotFound(f"node '{selector}' not found in lab '{self.name}'", "nodes: " + ", ".join(up))
        return found

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()

    @classmethod
    def brought_up_from(cls, path: str | Path, *, engine: Engine | None = None) -> Lab | None:
        """The lab that is up from this file (by its label), even if the file has since been
        deleted or changed (another lab name, a syntax error)."""
        eng = engine or default_engine()
        labels = {LABEL_FILE: str(Path(path).resolve())}
        found = [c.lab for c in eng.containers(labels)] + [n.lab for n in eng.networks(labels)]
        return cls.named(found[0], engine=eng) if found else None

    def with_topology(self) -> Lab:
        """This lab with its topology: itself when it has one; for a lab that is up, known by
        name, the lab loaded from the file it was brought up from (its ``io.socklab.file``
        label, by ``socklab up`` or from an exported compose file) when that file still holds
        the topology it runs; else a LabError saying to give the file."""
        if self.topology is not None:
            return self
        labels = {
            c.labels.get(LABEL_FILE, ""): c.labels.get(LABEL_HASH, "")
            for c in deploy.nodes_of(self.engine, self.name)
        }
        hint = "give the topology file (or a shipped lab's name) instead of its name"
        for path, running in labels.items():
            try:
                lab = Lab.load(path, engine=self.engine, name=self.name) if path else None
            except (LabError, OSError):
                continue
            if lab is not None and lab.content_hash() == running:
                return lab
            hint = f"{path} has changed since the lab came up: {hint}"
        raise LabError(f"lab '{self.name}' is up, but its topology file was not given", hint)

    def _topology(self) -> Topology:
        if self.topology is None:
            raise LabError(f"lab '{self.name}' has no topology loaded", "use Lab.load(FILE)")
        return self.topology


class LabNode:
    """One running node of a lab. Besides its own methods it answers what code written
    for a testcontainers container asks (``get_container_host_ip``, ``get_exposed_port``,
    ``get_logs``, ``get_container_id``)."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.lab = lab
        self.name = name
        self.container = container_name(lab.name, name)

    def __repr__(self) -> str:
        return f"<LabNode {self.name} of lab {self.lab.name}>"

    def exec(
        self,
        argv: Sequence[str] | str,
        timeout: float | None = None,
        stdin: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        """Run a command (argv, or a string split with shell rules; no shell) to completion.
        ``stdin`` is fed to it; after ``timeout`` s it is killed and ExecTimeout raised.
        CommandNotFound when the node has no such program, NodeNotRunning when it stopped."""
        args = _argv(argv)
        if not args:
            raise LabError("no command given", "e.g. node.exec(['ip', 'addr'])")
        data = stdin.encode() if isinstance(stdin, str) else stdin
        try:
            return self.lab.engine.exec(self.container, args, env=env, stdin=data, timeout=timeout)
        except CommandNotFound:
            raise CommandNotFound(
                f"no command '{args[0]}' in node {self.name}",
                f"a program of the node's image or an absolute path (`socklab exec "
                f"{self.lab.name} {self.name} -- ls /usr/bin` lists some)",
            ) from None
        except ExecTimeout as exc:
            raise ExecTimeout(
                f"`{shlex.join(args)}` did not finish in {timeout:g} s in node {self.name} (killed)",
                "give it more time (a larger timeout)",
                stdout=exc.stdout,
                stderr=exc.stderr,
            ) from None
        except NodeNotRunning:
            raise self._not_running() from None

    def _not_running(self) -> NodeNotRunning:
        try:
            state = self.lab.engine.container(self.container).state
        except LabError:
            state = "removed"
        return NodeNotRunning(
            f"node '{self.name}' of lab '{self.lab.name}' is not running (it is {state})",
            f"`socklab logs {self.lab.name} {self.name}` shows why it stopped; "
            f"`socklab down --lab {self.lab.name}` and `socklab up` start the lab again",
        )

    def start(self, cmd: Sequence[str] | str) -> ExecResult:
        """Start a program in the background under the node's supervisor (its output and
        events join the node's logs and the timeline); returns once it is started."""
        argv = self.start_argv(cmd)
        result = self.exec(argv)
        if not result.ok:
            said = [(result.stderr or result.stdout).strip(), *self._app_output(argv[1])]
            raise LabError(f"cannot start '{shlex.join(argv[1:])}' in node {self.name}: " + "\n".join(said))
        return result

    def start_argv(self, cmd: Sequence[str] | str) -> list[str]:
        """The exec that starts ``cmd`` under the node's supervisor; LabError when the node
        has none (it runs its own program)."""
        args = _argv(cmd)
        if self.lab.engine.container(self.container).labels.get(LABEL_PROGRAM) == "own":
            raise LabError(
                f"node '{self.name}' runs its own program (its image's, or its `command:`), not "
                "socklab's supervisor, so nothing can be started in it in the background",
                "run the command to completion with exec (a `run` step), or give the node an "
                "image with python3 and no `command:`/`entrypoint:`",
            )
        return ["socklab-start", *args]

    def _app_output(self, program: str, lines: int = 3) -> list[str]:
        """The last lines a program started in the node printed (its JSON events left out)."""
        tag = f" {PurePosixPath(program).name}["
        said = [line.split("] ", 1)[-1] for line in self.logs().splitlines() if tag in line]
        return [line for line in said if not line.startswith("{")][-lines:]

    def exec_stream(self, argv: list[str]) -> ExecStream:
        """Start a command and stream its output (for long-running ones such as tcpdump)."""
        return self.lab.engine.exec_stream(self.container, argv)

    def tools(self, info: ContainerInfo | None = None) -> NodeTools:
        """Where socklab's tools (socket reader, tcpdump, netstat...) run for this node: in it,
        or, for a node of an image without them, in a helper container sharing its network
        and pid namespaces (started once, removed with the lab). ``info``: the node's
        container as a listing gave it, when the caller has it."""
        engine = self.lab.engine
        info = info or engine.container(self.container)
        if info.labels.get(LABEL_TOOLS) != "helper":
            return NodeTools(self.name, engine, self.container)
        found = [
            c
            for c in engine.containers(
                {LABEL_LAB: self.lab.name, LABEL_HELPER: "tools", LABEL_TARGET: info.id}
            )
            if c.running
        ]
        if found:
            return NodeTools(self.name, engine, found[0].id)
        if not info.running:
            raise self._not_running()
        tag = self.lab.image or image.ensure(engine)
        helper = engine.start_helper(
            HelperSpec(
                target=info.id,
                lab=self.lab.name,
                purpose="tools",
                image=tag,
                argv=("sleep", "infinity"),
                pid=True,
            )
        )
        return NodeTools(self.name, engine, helper)

    def get_file(self, path: str) -> bytes:
        """The content of a regular file of the node."""
        return self.lab.engine.read_file(self.container, path)

    def put_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        """Write a file into the node (its directories are made as needed)."""
        target = PurePosixPath(path)
        if not target.is_absolute():
            raise LabError(f"put_file needs an absolute path, not {path!r}")
        body = data.encode() if isinstance(data, str) else data
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for parent in reversed(target.parents[:-1]):
                entry = tarfile.TarInfo(str(parent).lstrip("/"))
                entry.type, entry.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(entry)
            info = tarfile.TarInfo(str(target).lstrip("/"))
            info.size, info.mode, info.mtime = len(body), mode, int(time.time())
            tar.addfile(info, io.BytesIO(body))
        self.lab.engine.put_archive(self.container, "/", buf.getvalue())

    def logs(self) -> str:
        return self.lab.engine.logs(self.container)

    def follow_logs(self, tail: int | str = "all") -> Iterator[str]:
        return self.lab.engine.follow_logs(self.container, tail=tail)

    def sockets(self) -> list[SocketRow]:
        """The node's sockets, as ``netstat -anp`` lists them."""
        return self.lab.sockets(self.name)

    def ip(self, net: str | None = None) -> str:
        """The node's IPv4 address on ``net`` (default: its first network)."""
        return self._endpoint(net).ip

    def ipv6(self, net: str | None = None) -> str:
        """The node's IPv6 address on ``net`` (default: its first network); empty when the
        network has no IPv6."""
        return self._endpoint(net).ipv6

    def _endpoint(self, net: str | None) -> EndpointInfo:
        attached = self.lab.engine.container(self.container).networks
        names = {k.removeprefix(f"socklab-{self.lab.name}-"): v for k, v in attached.items()}
        if net is None:
            topo = self.lab.topology
            order = [n for n in (topo.networks if topo else sorted(names)) if n in names]
            if not order:
                raise LabError(f"node {self.name} is on no network")
            net = order[0]
        if net not in names:
            raise LabError(f"node {self.name} is not on network '{net}'", "its networks: " + ", ".join(names))
        return names[net]

    def host_port(self, container_port: int, proto: str = "tcp") -> int:
        """The host port a container port of the node is published on (its ``ports:``)."""
        info = self.lab.engine.container(self.container)
        for p in info.ports:
            if p.container_port == container_port and p.protocol == proto:
                return p.host_port
        raise LabError(
            f"port {container_port}/{proto} of node {self.name} is not published",
            f"add `ports: [{container_port}]` to the node in the topology",
        )

    def host_ip(self, container_port: int, proto: str = "tcp") -> str:
        """The host address that published port is bound to (127.0.0.1 unless asked)."""
        for p in self.lab.engine.container(self.container).ports:
            if p.container_port == container_port and p.protocol == proto:
                return "127.0.0.1" if p.host_ip in ("", "0.0.0.0") else p.host_ip
        self.host_port(container_port, proto)  # raises the error that says what to do
        return ""

    # -- what code written for a testcontainers container asks ---------------

    def get_container_host_ip(self) -> str:
        return "127.0.0.1"

    def get_exposed_port(self, port: int) -> int:
        return self.host_port(int(port))

    def get_logs(self) -> tuple[bytes, bytes]:
        """(stdout, stderr) so far, as testcontainers returns them."""
        engine = self.lab.engine
        return (
            engine.logs(self.container, stderr=False).encode(),
            engine.logs(self.container, stdout=False).encode(),
        )

    def get_container_id(self) -> str:
        return self.lab.engine.container(self.container).id


@dataclass(frozen=True)
class NodeTools:
    """Runs socklab's tools for a node, in ``container`` (the node's own, or its helper's);
    what a capture needs of a node."""

    name: str
    engine: Engine
    container: str

    def exec(self, argv: list[str]) -> ExecResult:
        return self.engine.exec(self.container, argv)

    def ask(self, argv: list[str]) -> str:
        return self.engine.ask(self.container, argv)

    def exec_stream(self, argv: list[str]) -> ExecStream:
        return self.engine.exec_stream(self.container, argv)

    def read_file(self, path: str) -> bytes:
        return self.engine.read_file(self.container, path)


@dataclass(frozen=True)
class LabNetwork:
    """One network of a running lab. ``name`` is the engine's name for it: what a
    testcontainers container's ``with_network`` reads."""

    name: str
    id: str
    lab: str
    subnets: tuple[str, ...] = ()


def match_names(selector: str, names: Sequence[str]) -> list[str]:
    """The names a selector matches when no topology is at hand: a name, a base name
    (``client`` matches ``client-1``, ``client-2``...) or a glob."""
    if selector in names:
        return [selector]
    replicas = [n for n in names if re.fullmatch(rf"{re.escape(selector)}-\d+", n)]
    return replicas or [n for n in names if fnmatch.fnmatchcase(n, selector)]


PYTHON3 = ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3")
"""where an image's python3 would be (socklab's supervisor needs one)"""


def _own_programs(lab_plan: LabPlan, images: set[str]) -> LabPlan:
    """The plan with the nodes of these images running their own program (no supervisor)."""
    if not images:
        return lab_plan
    return replace(
        lab_plan,
        containers=tuple(
            replace(c, supervised=False) if c.image in images else c for c in lab_plan.containers
        ),
    )


def _argv(cmd: Sequence[str] | str) -> list[str]:
    """A command as argv: a string is split with shell rules (no shell runs it)."""
    if not isinstance(cmd, str):
        return list(cmd)
    try:
        return shlex.split(cmd)
    except ValueError as exc:
        raise LabError(
            f"cannot split the command {cmd!r}: {exc}", "close its quotes, or give an argv list"
        ) from None


def _renamed(topo: Topology, name: str | None) -> Topology:
    if name is None or name == topo.name:
        return topo
    if not re.match(LAB_NAME, name):
        raise LabError(
            f"bad lab name {name!r}",
            "lowercase letters, digits and '-', at most 31 characters, starting with a letter",
        )
    return topo.model_copy(update={"name": name})


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
    stacks = (
        swarm.labs(local_swarm_engine) if engine is None and (local_swarm_engine := local_swarm()) else {}
    )
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
