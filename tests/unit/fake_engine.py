"""An in-memory engine (the Engine protocol) for unit tests of deploy, Lab and the runner.

Containers "run" the node supervisor's part that deploy sees: a started container
prints the supervisor's ``ready`` event to a log follower (after ``ready_delay``;
with ``failed_apps`` listed as failed), unless its behaviour says it exits or fails.
Commands run in nodes are answered by ``on_exec`` (default: exit 0, no output).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

from socklab.errors import LabError
from socklab.orchestrator.engine import SubnetTaken
from socklab.orchestrator.engine_api import (
    HELPER_TIMEOUT,
    LABEL_HELPER,
    LABEL_TARGET,
    ContainerInfo,
    DaemonInfo,
    EndpointInfo,
    ExecResult,
    ExecStream,
    HelperSpec,
    ImageInfo,
    NetworkInfo,
    PortTaken,
)
from socklab.topology.plan import ContainerPlan, Endpoint, NetworkPlan

LOG_TIME = "2024-01-01T00:00:00.000000Z"


@dataclass
class NodeBehaviour:
    """How a fake node behaves once started."""

    create_error: str | None = None
    """create_container raises LabError with this text"""
    create_delay: float = 0.0
    port_taken: int | None = None
    """start raises PortTaken for this host port (on 127.0.0.1, TCP)"""
    exits: bool = False
    """the container stops right after start (the supervisor crashed)"""
    exits_after: float | None = None
    """the container stops this many seconds after its start (a program that ends soon)"""
    ready_delay: float | None = 0.0
    """seconds after a reader follows the logs before the ready event comes (None: never)"""
    failed_apps: list[str] = field(default_factory=list)
    """start commands the ready event lists as failed"""
    output: list[str] = field(default_factory=list)
    """the apps' output before the ready event (``<time> <app>[<pid>] <text>`` lines)"""


@dataclass
class _Container:
    info: ContainerInfo
    env: dict[str, str]
    command: list[str] | None
    entrypoint: list[str] | None = None
    logs: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)


def ready_line(failed: Sequence[str] = ()) -> str:
    event = {
        "ts": 1.0,
        "app": "socklab-node",
        "event": "ready",
        "apps": [],
        "failed": list(failed),
        "errors": {app: "exited with code 1 before it was ready" for app in failed},
    }
    return f"{LOG_TIME} socklab-node[1] {json.dumps(event)}"


class FakeEngine:
    """Every Engine method over dicts; ``calls`` records what was done, in order."""

    def __init__(self) -> None:
        self.images: dict[str, ImageInfo] = {}
        self.nets: dict[str, NetworkInfo] = {}
        self.boxes: dict[str, _Container] = {}
        self.behaviour: dict[str, NodeBehaviour] = {}
        self.on_exec: Callable[[str, list[str]], ExecResult] = lambda node, argv: ExecResult(0, "", "")
        self.taken: list[IPv4Network | IPv6Network] = []
        self.subnet_clashes = 0
        """create_network raises SubnetTaken this many times for allocated subnets"""
        self.calls: list[tuple[str, str]] = []
        self.without_python: set[str] = set()
        """images that have no python3 (their nodes run their own program)"""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _id(self) -> str:
        with self._lock:
            return f"{next(self._ids):064x}"

    def _record(self, what: str, name: str) -> None:
        with self._lock:
            self.calls.append((what, name))

    # -- images -------------------------------------------------------------

    def daemon(self) -> DaemonInfo:
        return DaemonInfo(version="fake", api_version="1.41", kernel="fake", swarm="inactive")

    def on_this_host(self) -> bool:
        return False  # its containers have no processes: snapshots go through exec

    def add_image(self, ref: str) -> None:
        self.images[ref] = ImageInfo(id=self._id(), tags=(ref,))

    def image(self, ref: str) -> ImageInfo | None:
        return self.images.get(ref)

    def image_tags(self, repository: str) -> list[str]:
        return [t for t in self.images if t.startswith(f"{repository}:")]

    def build_image(
        self,
        context: Path,
        tag: str,
        *,
        dockerfile: str = "Dockerfile",
        pull: bool = False,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.add_image(tag)

    def import_image(
        self, tar_path: Path, repository: str, tag: str, *, changes: list[str] | None = None
    ) -> None:
        self.add_image(f"{repository}:{tag}")

    def untag_image(self, ref: str) -> None:
        self.images.pop(ref, None)

    def remove_image(self, ref: str) -> None:
        self.images.pop(ref, None)

    # -- networks -----------------------------------------------------------

    def subnets_in_use(self) -> list[IPv4Network | IPv6Network]:
        return [*self.taken, *(s for n in self.nets.values() for s in n.subnets)]

    def networks(self, labels: Mapping[str, str]) -> list[NetworkInfo]:
        return [n for n in self.nets.values() if _matches(n.labels, labels)]

    def create_network(self, net: NetworkPlan) -> str:
        self._record("create_network", net.name)
        if net.allocated and self.subnet_clashes:
            self.subnet_clashes -= 1
            self.taken.append(net.subnet)
            raise SubnetTaken(net)
        subnets: tuple[IPv4Network | IPv6Network, ...] = (
            net.subnet,
            *([net.ipv6_subnet] if net.ipv6_subnet else []),
        )
        info = NetworkInfo(
            id=self._id(),
            name=net.docker_name,
            labels=dict(net.labels),
            subnets=subnets,
            internal=net.internal,
        )
        self.nets[info.id] = info
        return info.id

    def remove_network(self, ident: str, name: str = "") -> None:
        self._record("remove_network", name)
        self.nets.pop(ident, None)

    # -- containers ---------------------------------------------------------

    def containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        return [b.info for b in list(self.boxes.values()) if _matches(b.info.labels, labels)]

    def add_container(self, info: ContainerInfo) -> None:
        """A container made by someone else (another lab, another tool)."""
        self.boxes[info.id] = _Container(info, {}, [])

    def container(self, ident: str) -> ContainerInfo:
        return self._box(ident).info

    def _box(self, ident: str) -> _Container:
        for box in list(self.boxes.values()):
            if ident in (box.info.id, box.info.name):
                return box
        raise LabError(f"container {ident} not found")

    def image_has(self, ref: str, paths: Sequence[str], lab: str = "") -> bool:
        return ref not in self.without_python

    def create_container(
        self,
        spec: ContainerPlan,
        image: str,
        env: Mapping[str, str],
        command: Sequence[str] | None,
        entrypoint: Sequence[str] | None = None,
    ) -> str:
        how = self.behaviour.get(spec.instance, NodeBehaviour())
        time.sleep(how.create_delay)
        self._record("create_container", spec.instance)
        if how.create_error:
            raise LabError(how.create_error)
        networks = {
            e.docker_network: EndpointInfo(
                ip=str(e.ip),
                prefix=next(n.subnets[0].prefixlen for n in self.nets.values() if n.name == e.docker_network),
                ipv6=str(e.ipv6 or ""),
                ipv6_prefix=64 if e.ipv6 else 0,
                aliases=e.aliases,
            )
            for e in spec.endpoints
        }
        info = ContainerInfo(
            id=self._id(),
            name=spec.container_name,
            state="created",
            labels=dict(spec.labels),
            networks=networks,
            image=image,
            cap_add=spec.cap_add,
        )
        self.boxes[info.id] = _Container(
            info,
            dict(env),
            list(command) if command is not None else None,
            list(entrypoint) if entrypoint is not None else None,
        )
        return info.id

    def start(self, ident: str) -> None:
        box = self._box(ident)
        self._record("start", box.info.labels.get("io.socklab.node", box.info.name))
        how = self.behaviour.get(box.info.labels.get("io.socklab.node", ""), NodeBehaviour())
        if how.port_taken is not None:
            raise PortTaken("127.0.0.1", how.port_taken, "tcp")
        state = "exited" if how.exits else "running"
        box.info = replace(box.info, state=state, exit_code=1 if how.exits else None)
        box.logs.extend(how.output)
        if how.exits:
            box.logs.append("socklab-node: cannot start")
        if how.exits_after is not None:

            def end() -> None:
                box.logs.append("ended")
                box.info = replace(box.info, state="exited", exit_code=3)

            threading.Timer(how.exits_after, end).start()

    def stop(self, ident: str, *, timeout: float = 2.0) -> None:
        self._set_state(ident, "stop", "exited")

    def kill(self, ident: str) -> None:
        self._set_state(ident, "kill", "exited")

    def pause(self, ident: str) -> None:
        self._set_state(ident, "pause", "paused")

    def unpause(self, ident: str) -> None:
        self._set_state(ident, "unpause", "running")

    def _set_state(self, ident: str, what: str, state: str) -> None:
        box = self._box(ident)
        self._record(what, box.info.node)
        box.info = replace(box.info, state=state)

    def connect(self, ident: str, endpoint: Endpoint) -> None:
        box = self._box(ident)
        self._record("connect", f"{box.info.node} {endpoint.network}")
        nets = dict(box.info.networks)
        nets[endpoint.docker_network] = EndpointInfo(ip=str(endpoint.ip), prefix=24, aliases=endpoint.aliases)
        box.info = replace(box.info, networks=nets)

    def disconnect(self, ident: str, network: str) -> None:
        box = self._box(ident)
        self._record("disconnect", f"{box.info.node} {network}")
        box.info = replace(box.info, networks={k: v for k, v in box.info.networks.items() if k != network})

    def remove_container(self, ident: str) -> None:
        box = self.boxes.pop(ident, None)
        if box is not None:
            self._record("remove_container", box.info.name)

    def put_archive(self, ident: str, path: str, tar: bytes) -> None:
        self._box(ident)

    def read_file(self, ident: str, path: str) -> bytes:
        box = self._box(ident)
        if path not in box.files:
            raise LabError(f"no file {path} in container {ident}")
        return box.files[path]

    def write_file(self, ident: str, path: str, data: bytes) -> None:
        """Put a file in a container (as its programs would write it)."""
        self._box(ident).files[path] = data

    def logs(self, ident: str, *, tail: int | str = "all", stderr: bool = True, stdout: bool = True) -> str:
        return "".join(f"{ln}\n" for ln in self._box(ident).logs)

    def follow_logs(self, ident: str, *, tail: int | str = "all") -> Iterator[str]:
        """The output so far; for a running node, its supervisor's ready event after
        ``ready_delay`` (recorded as a ``ready`` call); ends if it is not running."""
        box = self._box(ident)
        self._record("follow_logs", box.info.node)
        yield from list(box.logs)
        how = self.behaviour.get(box.info.node, NodeBehaviour())
        if not box.info.running:
            return
        if how.ready_delay is None:
            threading.Event().wait()  # never ready: the reader waits until it gives up
        time.sleep(how.ready_delay or 0.0)
        line = ready_line(how.failed_apps)
        box.logs.append(line)
        self._record("ready", box.info.node)
        yield line

    def exec(
        self,
        ident: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        box = self._box(ident)
        if not box.info.running:
            raise LabError(f"cannot run {argv[0]!r}: container {box.info.name} is not running")
        self._record("exec", f"{box.info.node}: {' '.join(argv)}")
        return self.on_exec(box.info.node, list(argv))

    def exec_stream(self, ident: str, argv: Sequence[str]) -> ExecStream:
        result = self.exec(ident, argv)
        return ExecStream(iter([(result.stdout.encode(), result.stderr.encode())]), lambda: result.exit_code)

    def ask(self, ident: str, argv: Sequence[str]) -> str:
        return self.exec(ident, argv).stdout

    # -- helper containers --------------------------------------------------

    def run_helper(self, spec: HelperSpec, *, timeout: float = HELPER_TIMEOUT) -> ExecResult:
        ident = self.start_helper(spec)
        self.remove_container(ident)
        return ExecResult(0, "", "")

    def start_helper(self, spec: HelperSpec) -> str:
        target = self.container(spec.target)
        if target.state not in ("running", "paused"):  # as the Docker adapter refuses it
            raise LabError(f"container {target.name} is not running (it is {target.state})")
        info = ContainerInfo(
            id=self._id(),
            name=f"helper-{spec.purpose}",
            state="running",
            labels={"io.socklab.lab": spec.lab, LABEL_HELPER: spec.purpose, LABEL_TARGET: target.id},
        )
        self.boxes[info.id] = _Container(info, {}, list(spec.argv))
        return info.id


def _matches(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
    return all(k in have and (not v or have[k] == v) for k, v in want.items())
