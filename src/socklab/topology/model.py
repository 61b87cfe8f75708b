"""The topology model: what a lab's YAML file may say, as pydantic v2 classes.

The lab itself (networks, nodes, ports) lives here; the scenario steps live in
``steps``, the DNS records in ``dns_records``, the shared field types in
``fields``; all are re-exported, so ``socklab.topology.model`` names every model.
Field-level rules live with the models; rules that relate several parts of the
document (unknown networks, IP clashes, overlapping subnets...) live in ``checks``.
"""

from __future__ import annotations

import fnmatch
import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic import Strict as PydanticStrict

from socklab.topology.capabilities import known_capability
from socklab.topology.dns_records import Dns, DnsRecord
from socklab.topology.fields import (
    LAB_NAME,
    NET_NAME,
    NODE_NAME,
    Command,
    HostName,
    LabName,
    NetName,
    NodeName,
    Seconds,
    Strict,
    not_a_number,
    split_command,
)
from socklab.topology.impair import Impairment
from socklab.topology.steps import (
    ERROR_NAMES,
    NODE_PATTERN,
    STEP_KINDS,
    CaptureSpec,
    CaptureStep,
    CompareSocketsSpec,
    CompareSocketsStep,
    EventPattern,
    Expect,
    ExpectCaptureSpec,
    ExpectCaptureStep,
    ExpectRatioSpec,
    ExpectRatioStep,
    ExpectSocketsSpec,
    ExpectSocketsStep,
    ExpectTimelineSpec,
    ExpectTimelineStep,
    FaultStep,
    NodePattern,
    ParallelStep,
    RunSpec,
    RunStep,
    SleepStep,
    SnapshotStep,
    SocketState,
    StartSpec,
    StartStep,
    Step,
    StepId,
    WaitSpec,
    WaitStep,
    step_kind,
)

__all__ = [
    "ERROR_NAMES",
    "LAB_NAME",
    "NET_NAME",
    "NODE_NAME",
    "NODE_PATTERN",
    "STEP_KINDS",
    "Attachment",
    "CaptureSpec",
    "CaptureStep",
    "Command",
    "CompareSocketsSpec",
    "CompareSocketsStep",
    "Dns",
    "DnsRecord",
    "EventPattern",
    "Expect",
    "ExpectCaptureSpec",
    "ExpectCaptureStep",
    "ExpectRatioSpec",
    "ExpectRatioStep",
    "ExpectSocketsSpec",
    "ExpectSocketsStep",
    "ExpectTimelineSpec",
    "ExpectTimelineStep",
    "FaultStep",
    "HostName",
    "LabName",
    "NetName",
    "Network",
    "Node",
    "NodeName",
    "NodePattern",
    "ParallelStep",
    "Port",
    "RunSpec",
    "RunStep",
    "Seconds",
    "SleepStep",
    "SnapshotStep",
    "SocketState",
    "StartCommand",
    "StartSpec",
    "StartStep",
    "Step",
    "StepId",
    "Strict",
    "Topology",
    "WaitFor",
    "WaitSpec",
    "WaitStep",
    "split_command",
    "step_kind",
]


class Network(Strict):
    """A virtual network. A subnet left out is allocated without overlap."""

    subnet: IPv4Network | None = None
    """Its IPv4 subnet (e.g. 10.77.1.0/24); left out, a free /24 is allocated."""
    ipv6: Annotated[bool, PydanticStrict()] | IPv6Network = False
    """`true` for an allocated IPv6 /64 as well, or an IPv6 subnet such as fd00:77:1::/64."""
    impair: Impairment | None = None
    """What every attachment to it does to the packets its node sends: `{loss: 5%, delay:
    40ms, jitter: 10ms, rate: 1mbit}` (corrupt, duplicate: where the kernel has netem)."""

    _subnet_text = field_validator("subnet", mode="before")(
        lambda cls, v: not_a_number(v, "a subnet such as 10.77.1.0/24")
    )
    _ipv6_text = field_validator("ipv6", mode="before")(
        lambda cls, v: not_a_number(v, "true/false or an IPv6 subnet such as fd00:77:1::/64")
    )

    @field_validator("subnet")
    @classmethod
    def _subnet_size(cls, v: IPv4Network | None) -> IPv4Network | None:
        if v is not None and v.prefixlen > 29:
            raise ValueError(f"subnet {v} is too small — use a prefix of /29 or shorter")
        return v


class Attachment(Strict):
    """A node's place on one network."""

    ip: IPv4Address | None = None
    """A fixed IPv4 address on this network (default: the lowest free one)."""
    ipv6: IPv6Address | None = None
    """A fixed IPv6 address (on a network with IPv6)."""
    aliases: list[HostName] = []
    """More names the node answers to on this network (DNS aliases)."""
    impair: Impairment | None = None
    """This node's impairment on this network (its keys override the network's)."""

    _ip_text = field_validator("ip", "ipv6", mode="before")(
        lambda cls, v: not_a_number(v, "an address such as 10.77.1.10")
    )


class Port(Strict):
    """A container port published on the host (127.0.0.1 unless a host IP is given)."""

    container_port: Annotated[int, Field(ge=1, le=65535)]
    """The port in the node."""
    host_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    """The port on the host (default: a free one the host picks)."""
    host_ip: IPv4Address | IPv6Address = IPv4Address("127.0.0.1")
    """The host address it is published on (127.0.0.1 unless given)."""
    protocol: Literal["tcp", "udp"] = "tcp"
    """tcp or udp."""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        """Accept docker's short forms: ``80``, ``8080:80``, ``127.0.0.1:8080:80/udp``."""
        if isinstance(value, int) and not isinstance(value, bool):
            return {"container_port": value}
        if not isinstance(value, str):
            return value
        m = re.fullmatch(
            r"(?:(\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]):)?(?:(\d+):)?(\d+)(?:/(tcp|udp))?", value
        )
        if not m:
            raise ValueError(
                f"bad port {value!r} — use CONTAINER, HOST:CONTAINER or IP:HOST:CONTAINER, with /udp for UDP"
            )
        host_ip, host_port, container_port, proto = m.groups()
        out: dict[str, Any] = {"container_port": int(container_port), "protocol": proto or "tcp"}
        if host_port is not None:
            out["host_port"] = int(host_port)
        if host_ip:
            out["host_ip"] = host_ip.strip("[]")
        return out


def _wait_for(value: Any) -> Any:
    """A start command's ``wait:`` value, checked with a hint (lower case kept as is)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 0 < value <= 3600:
            raise ValueError(f"wait {value:g} s is out of range — give seconds in (0, 3600]")
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        port = re.fullmatch(r"(tcp|udp)/(\d{1,5})", text)
        if text in ("auto", "none") or (port and 1 <= int(port[2]) <= 65535):
            return text
    raise ValueError(
        f"expected auto, none, tcp/PORT, udp/PORT or a number of seconds, got {value!r}"
        " — e.g. `wait: tcp/8000`"
    )


WaitFor = Annotated[
    Annotated[str, StringConstraints(pattern=r"^(auto|none|(tcp|udp)/\d{1,5})$")]
    | Annotated[float, Field(gt=0, le=3600)],
    BeforeValidator(_wait_for),
]


class StartCommand(Strict):
    """A start command of a node, and what `up` waits for before it counts as started.
    A plain string or argv list is `{cmd: ..., wait: auto}`."""

    cmd: Command
    """The command: an argv list, or a string split with shell rules (never run by a shell)."""
    wait: WaitFor = "auto"
    """When it counts as started. `auto`: once its processes listen on a TCP or UDP port, or
    it exited (code 0; another code fails `up`), or it has run for about a second without
    listening; `tcp/PORT` or `udp/PORT`: once the node listens on that port (fails `up` if it
    does not within 15 s); a number: as auto, but at most that many seconds; `none`: at once."""

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        """A string or an argv list is the command itself."""
        return value if isinstance(value, dict) else {"cmd": split_command(value)}

    @property
    def argv(self) -> list[str]:
        return list(self.cmd)


class Node(Strict):
    """One node, or ``replicas`` identical nodes named ``NAME-1 .. NAME-N``."""

    networks: dict[NetName, Attachment] = Field(min_length=1)
    """The networks it is on: a list of names, or a mapping of name to addresses and aliases."""
    image: str | None = None
    """A local image to run instead of socklab's node image: any image. With python3 in it,
    socklab's supervisor runs its `start:` commands; without, the image's own ENTRYPOINT/CMD
    (or `command:`) runs, as in compose."""
    command: Command | None = None
    """The node's main program, as compose's `command:` (an argv list, or a string split with
    shell rules): it replaces the image's CMD and runs without socklab's supervisor, so the
    node has no `start:`. exec, logs, sockets, capture and faults work all the same."""
    entrypoint: Command | None = None
    """As compose's `entrypoint:` (an argv list, or a string split with shell rules): it
    replaces the image's ENTRYPOINT and drops its CMD (`command:` gives the arguments); like
    `command:`, the node runs it without socklab's supervisor, so it has no `start:`."""
    start: list[StartCommand] = []
    """Commands started when the node starts (its apps): strings, argv lists, or
    `{cmd, wait}` mappings; `up` returns once every one is started (see `wait`)."""
    env: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = {}
    """Environment variables of the node's apps."""
    replicas: Annotated[int, Field(ge=1, le=200)] | None = None
    """Run N identical nodes named NAME-1 .. NAME-N."""
    cap_add: list[
        Annotated[str, StringConstraints(pattern=r"^(CAP_)?[A-Z_]+$"), AfterValidator(known_capability)]
    ] = []
    """Linux capabilities to add (e.g. NET_RAW for raw sockets); never SYS_ADMIN or ALL."""
    ports: list[Port] = []
    """Node ports published on the host: `80`, `8080:80`, `127.0.0.1:8080:80/udp` or a mapping."""
    host: HostName | None = None
    """the Swarm host (its node hostname) that runs this node (``--engine swarm``, ``compose
    export --swarm``); one host runs every node of a lab brought up locally"""
    router: Annotated[bool, PydanticStrict()] = False
    """Forwards between its networks; the other nodes route the lab's subnets through it."""

    @field_validator("networks", mode="before")
    @classmethod
    def _networks_list(cls, v: Any) -> Any:
        """``networks: [lan, wan]`` is short for ``{lan: {}, wan: {}}``."""
        if isinstance(v, list):
            for i, name in enumerate(v):
                if not isinstance(name, str):
                    kind = "a mapping" if isinstance(name, dict) else repr(name)
                    kind = "a list" if isinstance(name, list) else kind
                    raise ValueError(
                        f"item {i} is {kind}, not a network name"
                        " — to give addresses, write 'networks: {lan: {ip: ...}}'"
                    )
                if name in v[:i]:
                    raise ValueError(f"network {name!r} is listed twice — list it once")
            return {name: {} for name in v}
        if isinstance(v, dict):
            return {k: ({} if a is None else a) for k, a in v.items()}
        return v

    @model_validator(mode="after")
    def _command_or_start(self) -> Node:
        own = "command" if self.command is not None else "entrypoint" if self.entrypoint else ""
        if own and self.start:
            raise ValueError(
                f"a node with `{own}:` runs it as its main program, as compose does: no "
                f"supervisor runs `start:` there — put the program in `{own}:`, or drop "
                f"`{own}:` to use `start:`"
            )
        return self

    @field_validator("start", mode="before")
    @classmethod
    def _split_start(cls, v: Any) -> Any:
        """``start: CMD`` (or one ``{cmd, wait}``) is short for ``start: [CMD]``."""
        return [v] if isinstance(v, str | dict) else v

    @field_validator("cap_add")
    @classmethod
    def _no_privilege(cls, v: list[str]) -> list[str]:
        caps = [c.removeprefix("CAP_") for c in v]
        if "ALL" in caps or "SYS_ADMIN" in caps:
            raise ValueError("ALL and SYS_ADMIN are not allowed — socklab nodes are never privileged")
        return caps

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, v: Any) -> Any:
        """Numbers and booleans in env are written as YAML scalars; keep their text."""
        if not isinstance(v, dict):
            return v
        return {
            k: (str(x).lower() if isinstance(x, bool) else str(x)) if isinstance(x, (int, float, bool)) else x
            for k, x in v.items()
        }


def _one_line(value: str) -> str:
    if "\n" in value.strip():
        raise ValueError("a topic is one line — put the rest in `description:`")
    return value.strip()


class Topology(Strict):
    """A lab: networks, nodes and the scenarios that drive them; ``topic`` and ``description``
    say what it teaches (``socklab labs`` lists them)."""

    name: LabName
    """The lab's name ([a-z0-9-]): containers are `socklab-<name>-<node>`, unique per host."""
    topic: (
        Annotated[str, StringConstraints(min_length=1, max_length=60), AfterValidator(_one_line)] | None
    ) = None
    """What the lab teaches, in one line (at most 60 characters)."""
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    """What the lab shows and how to read it."""
    networks: dict[NetName, Network] = Field(min_length=1)
    """The lab's virtual networks, by name."""
    nodes: dict[NodeName, Node] = Field(min_length=1)
    """The lab's nodes (one container each), by name."""
    scenarios: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$")], list[Step]] = {}
    """Named lists of steps that `socklab run` drives (`default` runs when none is named)."""
    dns: Dns | None = None
    """A DNS server for the lab (dnsmasq) with records: a list of records, or `{server, records}`."""

    @field_validator("networks", "nodes", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        """``lan:`` with nothing after it means ``lan: {}``."""
        if isinstance(v, dict):
            return {k: ({} if x is None else x) for k, x in v.items()}
        return v

    @property
    def domain(self) -> str:
        """The DNS domain of the lab's hosts (RFC 2606 ``.test``)."""
        return f"{self.name}.test"

    def instances(self) -> list[tuple[str, str, Node]]:
        """Every container-to-be as ``(instance name, node name, node)``, in topology order."""
        out: list[tuple[str, str, Node]] = []
        for name, node in self.nodes.items():
            if node.replicas is None:
                out.append((name, name, node))
            else:
                out.extend((f"{name}-{i}", name, node) for i in range(1, node.replicas + 1))
        return out

    def match_nodes(self, pattern: str) -> list[str]:
        """Instance names matched by a name, a replicated node's name, or a glob."""
        names = [inst for inst, _, _ in self.instances()]
        if pattern in names:
            return [pattern]
        if pattern in self.nodes:
            return [inst for inst, base, _ in self.instances() if base == pattern]
        return [n for n in names if fnmatch.fnmatchcase(n, pattern)]
