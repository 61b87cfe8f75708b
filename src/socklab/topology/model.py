"""The topology model: what a lab's YAML file may say, as pydantic v2 classes.

Field-level rules live here; rules that relate several parts of the document
(unknown networks, IP clashes, overlapping subnets...) live in ``checks``.
"""

from __future__ import annotations

import difflib
import errno
import fnmatch
import re
import shlex
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import Strict as PydanticStrict

from socklab.topology.capabilities import known_capability

LAB_NAME = r"^[a-z][a-z0-9-]{0,30}$"
NODE_NAME = r"^[a-z][a-z0-9-]{0,40}$"
NET_NAME = r"^[a-z][a-z0-9_-]{0,30}$"

LabName = Annotated[str, StringConstraints(pattern=LAB_NAME)]
NodeName = Annotated[str, StringConstraints(pattern=NODE_NAME)]
NetName = Annotated[str, StringConstraints(pattern=NET_NAME)]
HostName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$")]
Seconds = Annotated[float, Field(gt=0, le=3600)]


class Strict(BaseModel):
    """Base of every model: unknown keys are errors, values are not coerced from other types."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def split_command(value: Any) -> Any:
    """A command is an argv list, or a string split with shell rules (never run by a shell).

    Numbers in an argv list (``[sleep, 5]``) are taken as their text. A ``ValueError``
    message may carry a hint after `` — ``.
    """
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ValueError(
                f"cannot split command {value!r}: {exc} — close the quote, or give an argv list"
            ) from None
        if not argv:
            raise ValueError("empty command — give a command line or an argv list")
        return argv
    if isinstance(value, list):
        if not value:
            raise ValueError("empty command — give a command line or an argv list")
        return [
            str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x for x in value
        ]
    return value


Command = Annotated[list[str], BeforeValidator(split_command), Field(min_length=1)]
"""An argv list; a string is split with shell rules."""


def _not_a_number(value: Any, expected: str) -> Any:
    """Addresses are text: pydantic would read ``5`` as ``0.0.0.5`` and ``1`` as ``::1``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"expected {expected}, got {value}")
    return value


class Network(Strict):
    """A virtual network. A subnet left out is allocated without overlap."""

    subnet: IPv4Network | None = None
    ipv6: Annotated[bool, PydanticStrict()] | IPv6Network = False

    _subnet_text = field_validator("subnet", mode="before")(
        lambda cls, v: _not_a_number(v, "a subnet such as 10.77.1.0/24")
    )
    _ipv6_text = field_validator("ipv6", mode="before")(
        lambda cls, v: _not_a_number(v, "true/false or an IPv6 subnet such as fd00:77:1::/64")
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
    ipv6: IPv6Address | None = None
    aliases: list[HostName] = []

    _ip_text = field_validator("ip", "ipv6", mode="before")(
        lambda cls, v: _not_a_number(v, "an address such as 10.77.1.10")
    )


class Port(Strict):
    """A container port published on the host (127.0.0.1 unless a host IP is given)."""

    container_port: Annotated[int, Field(ge=1, le=65535)]
    host_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    host_ip: IPv4Address | IPv6Address = IPv4Address("127.0.0.1")
    protocol: Literal["tcp", "udp"] = "tcp"

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
                f"bad port {value!r} — use CONTAINER, HOST:CONTAINER or IP:HOST:CONTAINER,"
                " with /udp for UDP"
            )
        host_ip, host_port, container_port, proto = m.groups()
        out: dict[str, Any] = {"container_port": int(container_port), "protocol": proto or "tcp"}
        if host_port is not None:
            out["host_port"] = int(host_port)
        if host_ip:
            out["host_ip"] = host_ip.strip("[]")
        return out


class Node(Strict):
    """One node, or ``replicas`` identical nodes named ``NAME-1 .. NAME-N``."""

    networks: dict[NetName, Attachment] = Field(min_length=1)
    image: str | None = None
    start: list[Command] = []
    env: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = {}
    replicas: Annotated[int, Field(ge=1, le=200)] | None = None
    cap_add: list[Annotated[str, StringConstraints(pattern=r"^(CAP_)?[A-Z_]+$"),
                            AfterValidator(known_capability)]] = []
    ports: list[Port] = []
    host: HostName | None = None
    """the Swarm host (its node hostname) that runs this node (``--engine swarm``, ``compose
    export --swarm``); one host runs every node of a lab brought up locally"""

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

    @field_validator("start", mode="before")
    @classmethod
    def _split_start(cls, v: Any) -> Any:
        """``start: CMD`` is short for ``start: [CMD]``; each command is split by ``Command``."""
        return [v] if isinstance(v, str) else v

    @field_validator("cap_add")
    @classmethod
    def _no_privilege(cls, v: list[str]) -> list[str]:
        caps = [c.removeprefix("CAP_") for c in v]
        if "ALL" in caps or "SYS_ADMIN" in caps:
            raise ValueError(
                "ALL and SYS_ADMIN are not allowed — socklab nodes are never privileged"
            )
        return caps

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, v: Any) -> Any:
        """Numbers and booleans in env are written as YAML scalars; keep their text."""
        if not isinstance(v, dict):
            return v
        return {
            k: (str(x).lower() if isinstance(x, bool) else str(x))
            if isinstance(x, (int, float, bool))
            else x
            for k, x in v.items()
        }


# -- scenario steps ----------------------------------------------------------

NODE_PATTERN = r"^[a-z0-9*?\[\]!-]+$"
NodePattern = Annotated[str, StringConstraints(pattern=NODE_PATTERN)]


#: What an app's ``error`` event may name (``socklab.nodes.errnos``): an errno (with the
#: aliases Python knows, such as EWOULDBLOCK), a resolver failure (``EAI_*``; the Linux
#: names, as in the node image, plus the host's) or an h_errno of the old resolver calls.
ERROR_NAMES: frozenset[str] = frozenset(
    {*errno.errorcode.values()}
    | {n for n in dir(errno) if n.startswith("E") and isinstance(getattr(errno, n), int)}
    | {n for n in dir(socket) if n.startswith("EAI_") and isinstance(getattr(socket, n), int)}
    | {"EAI_ADDRFAMILY", "EAI_AGAIN", "EAI_BADFLAGS", "EAI_FAIL", "EAI_FAMILY", "EAI_MEMORY",
       "EAI_NODATA", "EAI_NONAME", "EAI_OVERFLOW", "EAI_SERVICE", "EAI_SOCKTYPE", "EAI_SYSTEM",
       "EAI_UNKNOWN", "HOST_NOT_FOUND", "TRY_AGAIN", "NO_RECOVERY", "NO_DATA", "HOST_ERROR"}
)


def _known_error_name(value: str) -> str:
    if value not in ERROR_NAMES:
        close = difflib.get_close_matches(value, sorted(ERROR_NAMES), n=1)
        hint = f"did you mean {close[0]!r}?" if close else (
            "use an errno name such as ECONNREFUSED, or a resolver error such as EAI_NONAME")
        raise ValueError(f"unknown errno name {value!r} — {hint}")
    return value


def _port_in_range(value: str) -> str:
    """The port after the last ``/`` or ``:`` of ``tcp/PORT`` or ``HOST:PORT``."""
    port = int(re.split(r"[/:]", value)[-1])
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range — use a port in 1..65535")
    return value


StepId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,40}$")]
"""A name a later step uses to refer to an earlier one (``expect_ratio``, ``expect_capture``)."""

EventField = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


def _compiles(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"bad regular expression {value!r}: {exc} — fix it, or use "
                         "stdout_contains for plain text") from None
    return value


def _event_name(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", value):
        raise ValueError(f"{value!r} is not an event name — events are named in lower case, "
                         "as the apps print them (listening, accepted, connected, sent...)")
    return value


def _one_line(value: str) -> str:
    if "\n" in value.strip():
        raise ValueError("a topic is one line — put the rest in `description:`")
    return value.strip()


class EventPattern(Strict):
    """An app event to look for: its ``event`` name, and optionally the node (a name or a
    glob), the app (``tcp-server``, ``tcp-server#2``; a glob) and field values."""

    event: Annotated[str, AfterValidator(_event_name)]
    node: NodePattern | None = None
    app: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.*?#\[\]-]+$")] | None = None
    fields: dict[EventField, str | int | float | bool | None] = {}


class Expect(Strict):
    exit: Annotated[int, Field(ge=0, le=255)] | None = None
    errno: Annotated[
        str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$"), AfterValidator(_known_error_name)
    ] | None = None
    stdout_contains: str | None = None
    stdout_matches: Annotated[str, AfterValidator(_compiles)] | None = None
    events: list[EventPattern] = []
    duration_max: Seconds | None = None
    duration_min: Annotated[float, Field(ge=0)] | None = None

    @field_validator("duration_min")
    @classmethod
    def _min_below_max(cls, v: float | None, info: ValidationInfo) -> float | None:
        high = info.data.get("duration_max")
        if v is not None and high is not None and v > high:
            raise ValueError(
                f"duration_min {v:g} is more than duration_max {high:g}"
                " — no run can last both: make duration_min at most duration_max"
            )
        return v


class StartSpec(Strict):
    node: NodePattern
    cmd: Command

    _split = field_validator("cmd", mode="before")(lambda cls, v: split_command(v))


class RunSpec(Strict):
    node: NodePattern
    cmd: Command
    timeout: Seconds = 60
    expect: Expect = Expect()
    id: StepId | None = None

    _split = field_validator("cmd", mode="before")(lambda cls, v: split_command(v))


class WaitSpec(Strict):
    node: NodePattern
    listening: Annotated[
        str, StringConstraints(pattern=r"^(tcp|udp)6?/\d{1,5}$"), AfterValidator(_port_in_range)
    ] | None = None
    connected: Annotated[
        str, StringConstraints(pattern=r"^[^:\s]+:\d{1,5}$"), AfterValidator(_port_in_range)
    ] | None = None
    timeout: Seconds = 30

    @model_validator(mode="after")
    def _one_condition(self) -> WaitSpec:
        if (self.listening is None) == (self.connected is None):
            raise ValueError("give exactly one of 'listening: tcp/PORT' or 'connected: HOST:PORT'")
        return self


SocketState = Literal[
    "LISTEN", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
    "CLOSE", "CLOSE_WAIT", "LAST_ACK", "CLOSING",
]


class ExpectSocketsSpec(Strict):
    node: NodePattern
    state: SocketState | None = None
    proto: Literal["tcp", "tcp6", "udp", "udp6", "unix", "raw"] | None = None
    local_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    remote_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    min: Annotated[int, Field(ge=0)] = 1
    max: Annotated[int, Field(ge=0)] | None = None

    @field_validator("max")
    @classmethod
    def _max_above_min(cls, v: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min")
        if v is not None and low is not None and v < low:
            raise ValueError(f"max {v} is less than min {low} — make max at least min")
        return v


class ExpectTimelineSpec(Strict):
    """These events happen in this order in the lab's merged timeline (other events may come
    between them); polled until ``timeout``, since a started app logs a little later."""

    events: list[EventPattern] = Field(min_length=1)
    timeout: Seconds = 5


class ExpectRatioSpec(Strict):
    """The duration of the run step ``of`` divided by that of the run step ``to``."""

    of: StepId
    to: StepId
    min: Annotated[float, Field(gt=0)] | None = None
    max: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _a_bound(self) -> ExpectRatioSpec:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is more than max {self.max:g} — no ratio is both")
        if self.of == self.to:
            raise ValueError(f"'of' and 'to' are both {self.of!r} — compare two different steps")
        return self


class CaptureSpec(Strict):
    """Start capturing packets in a node (tcpdump) until its ``expect_capture`` step."""

    node: NodePattern
    id: StepId
    filter: Annotated[str, StringConstraints(max_length=500)] = ""
    iface: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,15}$")] = "any"


Handshake = Annotated[list[str], BeforeValidator(lambda v: v.split() if isinstance(v, str) else v)]


class ExpectCaptureSpec(Strict):
    """Stop a capture and count the TCP connections in it that match every condition given."""

    capture: StepId
    server_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    handshake: Handshake | None = None
    teardown: list[str] | None = None
    outcome: Literal["closed", "refused", "reset", "established", "partial"] | None = None
    min: Annotated[int, Field(ge=0)] = 1
    max: Annotated[int, Field(ge=0)] | None = None

    @field_validator("max")
    @classmethod
    def _max_above_min(cls, v: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min")
        if v is not None and low is not None and v < low:
            raise ValueError(f"max {v} is less than min {low} — make max at least min")
        return v


class CompareSocketsSpec(Strict):
    """The socket table socklab reads agrees, row for row, with the node's own tool."""

    node: NodePattern
    tool: Literal["netstat", "ss"] = "netstat"


class FaultSpec(BaseModel):
    """Faults are defined by a later issue; the model keeps their keys for a clear rejection."""

    model_config = ConfigDict(extra="allow", frozen=True)


class StartStep(Strict):
    start: StartSpec


class RunStep(Strict):
    run: RunSpec


class ParallelStep(Strict):
    parallel: list[Step] = Field(min_length=1)


class WaitStep(Strict):
    wait: WaitSpec


class ExpectSocketsStep(Strict):
    expect_sockets: ExpectSocketsSpec


class FaultStep(Strict):
    fault: FaultSpec


class SleepStep(Strict):
    sleep: Annotated[float, Field(ge=0, le=3600)]


class SnapshotStep(Strict):
    snapshot: Literal["sockets"]


class ExpectTimelineStep(Strict):
    expect_timeline: ExpectTimelineSpec


class ExpectRatioStep(Strict):
    expect_ratio: ExpectRatioSpec


class CaptureStep(Strict):
    capture: CaptureSpec


class ExpectCaptureStep(Strict):
    expect_capture: ExpectCaptureSpec


class CompareSocketsStep(Strict):
    compare_sockets: CompareSocketsSpec


STEP_KINDS: dict[str, type[Strict]] = {
    "start": StartStep, "run": RunStep, "parallel": ParallelStep, "wait": WaitStep,
    "expect_sockets": ExpectSocketsStep, "fault": FaultStep, "sleep": SleepStep,
    "snapshot": SnapshotStep, "expect_timeline": ExpectTimelineStep,
    "expect_ratio": ExpectRatioStep, "capture": CaptureStep, "expect_capture": ExpectCaptureStep,
    "compare_sockets": CompareSocketsStep,
}

def _step_tag(value: Any) -> str | None:
    """A step is a mapping with exactly one key, which names its kind."""
    if isinstance(value, dict):
        return next(iter(value)) if len(value) == 1 and next(iter(value)) in STEP_KINDS else None
    return step_kind(value) if isinstance(value, Strict) else None


Step = Annotated[
    Annotated[StartStep, Tag("start")]
    | Annotated[RunStep, Tag("run")]
    | Annotated[ParallelStep, Tag("parallel")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[ExpectSocketsStep, Tag("expect_sockets")]
    | Annotated[FaultStep, Tag("fault")]
    | Annotated[SleepStep, Tag("sleep")]
    | Annotated[SnapshotStep, Tag("snapshot")]
    | Annotated[ExpectTimelineStep, Tag("expect_timeline")]
    | Annotated[ExpectRatioStep, Tag("expect_ratio")]
    | Annotated[CaptureStep, Tag("capture")]
    | Annotated[ExpectCaptureStep, Tag("expect_capture")]
    | Annotated[CompareSocketsStep, Tag("compare_sockets")],
    Discriminator(
        _step_tag,
        custom_error_type="step_kind",
        custom_error_message="a step is a mapping with one key: " + ", ".join(STEP_KINDS),
    ),
]


def step_kind(step: Strict) -> str:
    """The one key of a step: ``run``, ``wait``..."""
    return next(iter(type(step).model_fields))


# -- lab DNS -------------------------------------------------------------------

DNS_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})"
DnsName = Annotated[str, StringConstraints(
    max_length=253, pattern=rf"^{DNS_LABEL}(\.{DNS_LABEL})*\.?$"
)]
"""A DNS name: one without a dot is in the lab's domain (``www`` -> ``www.<lab>.test``)."""


def _addresses_or_nodes(value: Any, family: type[IPv4Address] | type[IPv6Address]) -> Any:
    """A record's ``a:``/``aaaa:``: one entry or a list, each an address of ``family`` or a node."""
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list):
        return entries
    for entry in entries:
        if not isinstance(entry, str):
            raise ValueError(f"{entry!r} is not an address or a node name")
        try:
            family(entry)
        except ValueError:
            if not re.fullmatch(NODE_NAME, entry):
                kind = "an IPv4" if family is IPv4Address else "an IPv6"
                raise ValueError(f"{entry!r} is neither {kind} address nor a node name") from None
    return entries


class DnsRecord(Strict):
    """One name of the lab's DNS: addresses (``a``/``aaaa``: IPs or node names), an alias
    (``cname``: a node or a name with addresses), or a reverse name (``ptr``: an address)."""

    name: DnsName
    a: list[IPv4Address | NodeName] = []
    aaaa: list[IPv6Address | NodeName] = []
    cname: DnsName | None = None
    ptr: IPv4Address | IPv6Address | None = None

    _a = field_validator("a", mode="before")(lambda cls, v: _addresses_or_nodes(v, IPv4Address))
    _aaaa = field_validator("aaaa", mode="before")(
        lambda cls, v: _addresses_or_nodes(v, IPv6Address))

    @model_validator(mode="after")
    def _one_kind(self) -> DnsRecord:
        kinds = [k for k, on in (("a/aaaa", bool(self.a or self.aaaa)),
                                 ("cname", self.cname is not None),
                                 ("ptr", self.ptr is not None)) if on]
        if len(kinds) != 1:
            raise ValueError(
                "a record has `a:`/`aaaa:` addresses, or a `cname:` target, or a `ptr:` address"
                + (f" (this one has {' and '.join(kinds)})" if kinds else "")
            )
        return self


class Dns(Strict):
    """The lab's DNS server (dnsmasq): on ``server``, or on a node ``dns`` socklab adds."""

    server: NodeName | None = None
    records: list[DnsRecord] = []

    @model_validator(mode="before")
    @classmethod
    def _records_only(cls, value: Any) -> Any:
        """``dns: [records...]`` is short for ``dns: {records: [...]}``."""
        return {"records": value} if isinstance(value, list) else value


class Topology(Strict):
    """A lab: networks, nodes and the scenarios that drive them; ``topic`` and ``description``
    say what it teaches (``socklab labs`` lists them)."""

    name: LabName
    topic: Annotated[str, StringConstraints(min_length=1, max_length=60),
                     AfterValidator(_one_line)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    networks: dict[NetName, Network] = Field(min_length=1)
    nodes: dict[NodeName, Node] = Field(min_length=1)
    scenarios: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$")], list[Step]] = {}
    dns: Dns | None = None

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
