"""The one seam between socklab and a container engine: a typed interface and its values.

:class:`Engine` speaks in lab concepts (containers and networks found by labels, exec,
logs, files, images, short-lived helper containers) and returns the plain frozen
dataclasses below, never an engine's own dicts. The local Docker adapter
(:mod:`socklab.orchestrator.engine`) implements it; tests use an in-memory fake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Protocol

from socklab.errors import LabError
from socklab.topology.plan import LABEL_LAB, LABEL_NODE, ContainerPlan, Endpoint, NetworkPlan

LABEL_HELPER = "io.socklab.helper"
"""On a helper container: its purpose (``fault``, ``sockets``...); never on a node."""
LABEL_TARGET = "io.socklab.target"
"""On a helper container: the id of the container whose namespaces it joined."""
HELPER_TIMEOUT = 60.0


class PortTaken(LabError):
    """A host port that a container publishes is held by something else (``holder``: who,
    when the engine or the host can tell)."""

    def __init__(
        self,
        host_ip: str,
        host_port: int,
        proto: str | None,
        holder: str | None = None,
        node: str | None = None,
    ) -> None:
        self.host_ip, self.host_port, self.proto = host_ip, host_port, proto
        self.holder, self.node = holder, node
        address = f"{host_ip}:{host_port}" + (f"/{proto}" if proto else "")
        whose = f"of node '{node}' " if node else ""
        super().__init__(
            f"host port {address} is already taken" + (f" by {holder}" if holder else ""),
            f"change `ports:` {whose}(another host port, or the container port alone to get a "
            "free one), or stop what holds it",
        )


@dataclass(frozen=True)
class ExecResult:
    """What a command run in a container did."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class EndpointInfo:
    """A container's attachment to one network (addresses are empty while it is stopped)."""

    ip: str = ""
    prefix: int = 0
    ipv6: str = ""
    ipv6_prefix: int = 0
    aliases: tuple[str, ...] = ()

    @property
    def cidr(self) -> str:
        """``ip/prefix``, or nothing when the container has no address."""
        return f"{self.ip}/{self.prefix}" if self.ip else ""

    @property
    def ipv6_cidr(self) -> str:
        return f"{self.ipv6}/{self.ipv6_prefix}" if self.ipv6 else ""


@dataclass(frozen=True)
class PortInfo:
    """A container port published on the host."""

    container_port: int
    protocol: str
    host_ip: str
    host_port: int


@dataclass(frozen=True)
class ContainerInfo:
    """One container as the engine sees it.

    ``state`` is the engine's word (created, running, paused, exited, dead...);
    ``networks`` is keyed by the engine's network name (``socklab-<lab>-<net>``).
    """

    id: str
    name: str
    state: str
    labels: Mapping[str, str] = field(default_factory=dict)
    networks: Mapping[str, EndpointInfo] = field(default_factory=dict)
    image: str = ""
    exit_code: int | None = None
    cap_add: tuple[str, ...] = ()
    """capabilities added to the container (only known from :meth:`Engine.container`)"""
    pid: int = 0
    """its first process's pid on the daemon's host while it runs (only known from
    :meth:`Engine.container`; 0 otherwise)"""
    ports: tuple[PortInfo, ...] = ()
    """its published ports (while it runs)"""

    @property
    def lab(self) -> str:
        return self.labels.get(LABEL_LAB, "")

    @property
    def node(self) -> str:
        """The lab node it runs (empty for a helper or a foreign container)."""
        return self.labels.get(LABEL_NODE, "")

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class NetworkInfo:
    """One network as the engine sees it."""

    id: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    subnets: tuple[IPv4Network | IPv6Network, ...] = ()
    internal: bool = False

    @property
    def lab(self) -> str:
        return self.labels.get(LABEL_LAB, "")


@dataclass(frozen=True)
class ImageInfo:
    """One local image."""

    id: str
    tags: tuple[str, ...] = ()
    size: int = 0
    created: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] = ()
    command: tuple[str, ...] = ()


@dataclass
class ExecStream:
    """A command started in a container: its (stdout, stderr) chunks as they come (the
    iterator ends when the command does), and its exit code (None while it runs)."""

    chunks: Iterator[tuple[bytes | None, bytes | None]]
    exit_code: Callable[[], int | None]


@dataclass(frozen=True)
class HelperSpec:
    """A helper container that joins a target container's namespaces.

    It runs ``argv`` from ``image`` in the target's network namespace (and its pid
    namespace with ``pid``), with ``cap_add`` on the helper only (never privileged),
    labelled with the lab and ``io.socklab.helper=<purpose>`` so that ``down`` removes it.
    """

    target: str
    """id or name of the container whose namespaces the helper joins; empty: a network
    namespace of its own, with nothing but loopback (to probe the kernel)"""
    lab: str
    purpose: str
    image: str
    argv: tuple[str, ...]
    cap_add: tuple[str, ...] = ()
    pid: bool = False
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DaemonInfo:
    """The engine's daemon: its version, the kernel it runs on, its swarm state."""

    version: str
    api_version: str
    kernel: str
    swarm: str
    """inactive, active, pending..."""


class Engine(Protocol):
    """What socklab needs from a container engine."""

    def daemon(self) -> DaemonInfo:
        """What the daemon says about itself."""
        ...

    def on_this_host(self) -> bool:
        """Whether the daemon runs on this host (a local socket), so that the pids of its
        containers are this host's."""
        ...

    # -- images -------------------------------------------------------------

    def image(self, ref: str) -> ImageInfo | None:
        """A local image, or None when it is absent."""
        ...

    def image_tags(self, repository: str) -> list[str]:
        """Every ``repository:tag`` of that repository on the host."""
        ...

    def build_image(
        self,
        context: Path,
        tag: str,
        *,
        dockerfile: str = "Dockerfile",
        pull: bool = False,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        """Build an image from a local context; LabError with the build's last lines."""
        ...

    def import_image(
        self, tar_path: Path, repository: str, tag: str, *, changes: list[str] | None = None
    ) -> None:
        """Import a rootfs tarball as ``repository:tag`` (``changes``: Dockerfile lines)."""
        ...

    def untag_image(self, ref: str) -> None:
        """Remove a tag unless a container uses the image (then it stays)."""
        ...

    def remove_image(self, ref: str) -> None: ...

    # -- networks -----------------------------------------------------------

    def subnets_in_use(self) -> list[IPv4Network | IPv6Network]:
        """Every subnet of every network on the host (so a plan avoids them)."""
        ...

    def networks(self, labels: Mapping[str, str]) -> list[NetworkInfo]:
        """The networks carrying all these labels (an empty value: any value)."""
        ...

    def create_network(self, net: NetworkPlan) -> str:
        """Make a planned network; its id. Raises SubnetTaken when its subnet overlaps."""
        ...

    def remove_network(self, ident: str, name: str = "") -> None:
        """Remove a network (absent is fine)."""
        ...

    # -- containers ---------------------------------------------------------

    def containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """The containers (running or not) carrying all these labels (an empty value: any)."""
        ...

    def container(self, ident: str) -> ContainerInfo:
        """One container by id or name; LabError when it does not exist."""
        ...

    def create_container(
        self,
        spec: ContainerPlan,
        image: str,
        env: Mapping[str, str],
        command: Sequence[str] | None,
        entrypoint: Sequence[str] | None = None,
    ) -> str:
        """Create (not start) a planned node's container on all its networks; its id.
        ``command`` replaces the image's CMD (None: the image's own), ``entrypoint`` its
        ENTRYPOINT (and drops its CMD, as in compose)."""
        ...

    def image_has(self, ref: str, paths: Sequence[str], lab: str = "") -> bool:
        """Whether any of these paths exists in a local image (a container made to look,
        never started, labelled with ``lab``, removed)."""
        ...

    def start(self, ident: str) -> None:
        """Start a created container; PortTaken when a host port it publishes is held."""
        ...

    def stop(self, ident: str, *, timeout: float = 2.0) -> None:
        """Stop a container (SIGTERM, SIGKILL after ``timeout`` s)."""
        ...

    def kill(self, ident: str) -> None:
        """Stop a container at once (SIGKILL): a crashed host."""
        ...

    def pause(self, ident: str) -> None:
        """Freeze every process of a container."""
        ...

    def unpause(self, ident: str) -> None: ...

    def connect(self, ident: str, endpoint: Endpoint) -> None:
        """Attach a container to a network with its planned address and aliases."""
        ...

    def disconnect(self, ident: str, network: str) -> None:
        """Detach a container from a network (by the network's engine name)."""
        ...

    def remove_container(self, ident: str) -> None:
        """Stop and remove a container (absent is fine)."""
        ...

    def put_archive(self, ident: str, path: str, tar: bytes) -> None:
        """Unpack a tar archive into a (created or running) container at ``path``."""
        ...

    def read_file(self, ident: str, path: str) -> bytes:
        """One regular file of a container."""
        ...

    def logs(self, ident: str, *, tail: int | str = "all", stderr: bool = True, stdout: bool = True) -> str:
        """A container's output so far."""
        ...

    def follow_logs(self, ident: str, *, tail: int | str = "all") -> Iterator[str]:
        """Lines of a container's output as they come, until it stops."""
        ...

    def exec(
        self,
        ident: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run a command in a running container to completion (no shell), ``stdin`` fed to it.
        Raises CommandNotFound when there is no such program, NodeNotRunning when the
        container is not running, ExecTimeout (the command killed) after ``timeout`` s."""
        ...

    def exec_stream(self, ident: str, argv: Sequence[str]) -> ExecStream:
        """Start a command in a running container and stream its output."""
        ...

    def ask(self, ident: str, argv: Sequence[str]) -> str:
        """The output of a command whose answer shows by itself whether it is whole (a node's
        socket table from its supervisor), without its exit code: one engine call less
        than :meth:`exec`, for what is asked of every node at once."""
        ...

    # -- helper containers --------------------------------------------------

    def run_helper(self, spec: HelperSpec, *, timeout: float = HELPER_TIMEOUT) -> ExecResult:
        """Run a helper to completion (LabError after ``timeout`` s); it is removed after."""
        ...

    def start_helper(self, spec: HelperSpec) -> str:
        """Start a long-running helper, detached; its id (``remove_container`` ends it,
        ``down`` removes it with the lab)."""
        ...
