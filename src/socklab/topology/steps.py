"""The scenario steps of a topology: one model per step kind (``start``, ``run``, ``wait``...).

Every field carries a description (an attribute docstring), so ``socklab schema``
explains each key of a step to an editor.
"""

from __future__ import annotations

import difflib
import errno
import re
import socket
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from socklab.topology.faults import Fault
from socklab.topology.fields import (
    Command,
    Seconds,
    Strict,
    split_command,
)

NODE_PATTERN = r"^[a-z0-9*?\[\]!-]+$"
NodePattern = Annotated[str, StringConstraints(pattern=NODE_PATTERN)]


#: What an app's ``error`` event may name (``socklab.nodes.errnos``): an errno (with the
#: aliases Python knows, such as EWOULDBLOCK), a resolver failure (``EAI_*``; the Linux
#: names, as in the node image, plus the host's) or an h_errno of the old resolver calls.
ERROR_NAMES: frozenset[str] = frozenset(
    {*errno.errorcode.values()}
    | {n for n in dir(errno) if n.startswith("E") and isinstance(getattr(errno, n), int)}
    | {n for n in dir(socket) if n.startswith("EAI_") and isinstance(getattr(socket, n), int)}
    | {
        "EAI_ADDRFAMILY",
        "EAI_AGAIN",
        "EAI_BADFLAGS",
        "EAI_FAIL",
        "EAI_FAMILY",
        "EAI_MEMORY",
        "EAI_NODATA",
        "EAI_NONAME",
        "EAI_OVERFLOW",
        "EAI_SERVICE",
        "EAI_SOCKTYPE",
        "EAI_SYSTEM",
        "EAI_UNKNOWN",
        "HOST_NOT_FOUND",
        "TRY_AGAIN",
        "NO_RECOVERY",
        "NO_DATA",
        "HOST_ERROR",
    }
)


def _known_error_name(value: str) -> str:
    if value not in ERROR_NAMES:
        close = difflib.get_close_matches(value, sorted(ERROR_NAMES), n=1)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else ("use an errno name such as ECONNREFUSED, or a resolver error such as EAI_NONAME")
        )
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
        raise ValueError(
            f"bad regular expression {value!r}: {exc} — fix it, or use stdout_contains for plain text"
        ) from None
    return value


def _max_at_least_min(v: int | None, info: ValidationInfo) -> int | None:
    """A spec's ``max`` is not below its ``min``."""
    low = info.data.get("min")
    if v is not None and low is not None and v < low:
        raise ValueError(f"max {v} is less than min {low} — make max at least min")
    return v


def _event_name(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", value):
        raise ValueError(
            f"{value!r} is not an event name — events are named in lower case, "
            "as the apps print them (listening, accepted, connected, sent...)"
        )
    return value


class EventPattern(Strict):
    """An app event to look for: its ``event`` name, and optionally the node (a name or a
    glob), the app (``tcp-server``, ``tcp-server#2``; a glob) and field values."""

    event: Annotated[str, AfterValidator(_event_name)]
    """The event's name, as the apps print it: listening, accepted, connected, sent, closed..."""
    node: NodePattern | None = None
    """Only events of this node (a name or a glob)."""
    app: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.*?#\[\]-]+$")] | None = None
    """Only events of this app (`tcp-server`, `tcp-server#2`; a glob)."""
    fields: dict[EventField, str | int | float | bool | None] = {}
    """Field values the event must carry (e.g. `{port: 5000}`)."""


class Expect(Strict):
    """What a `run` step's command must do; with none of these keys, exit 0."""

    exit: Annotated[int, Field(ge=0, le=255)] | None = None
    """The exit code it must end with (default 0, or any when `errno` is given)."""
    errno: (
        Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$"), AfterValidator(_known_error_name)]
        | None
    ) = None
    """The errno name its `error` event must report, e.g. ECONNREFUSED, ETIMEDOUT, EAI_NONAME."""
    stdout_contains: str | None = None
    """Text its standard output must contain."""
    stdout_matches: Annotated[str, AfterValidator(_compiles)] | None = None
    """A regular expression its standard output must match (searched, multi-line)."""
    events: list[EventPattern] = []
    """App events it must print, in this order (others may come between)."""
    duration_max: Seconds | None = None
    """It must finish within this many seconds."""
    duration_min: Annotated[float, Field(ge=0)] | None = None
    """It must last at least this many seconds (e.g. a client kept waiting by an iterative server)."""

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
    """Start a long-running app in nodes, as the node's start commands are; the step passes
    once it is started."""

    node: NodePattern
    """The node: an instance name (`client-2`), a replicated node's name (every replica) or a glob."""
    cmd: Command
    """The command: an argv list, or a string split with shell rules (never run by a shell)."""

    _split = field_validator("cmd", mode="before")(lambda cls, v: split_command(v))


class RunSpec(Strict):
    """Run a command to completion in nodes (in parallel when several match) and check it."""

    node: NodePattern
    """The node: an instance name (`client-2`), a replicated node's name (every replica) or a glob."""
    cmd: Command
    """The command: an argv list, or a string split with shell rules (never run by a shell)."""
    timeout: Seconds = 60
    """Seconds before the command is killed (the step then fails)."""
    expect: Expect = Expect()
    """What the command must do (default: exit 0)."""
    id: StepId | None = None
    """A name for this step, so that `expect_ratio` can compare its duration."""

    _split = field_validator("cmd", mode="before")(lambda cls, v: split_command(v))


class WaitSpec(Strict):
    """Wait until nodes listen on a port, or are connected to a peer; fail after `timeout`."""

    node: NodePattern
    """The node: an instance name (`client-2`), a replicated node's name (every replica) or a glob."""
    listening: (
        Annotated[str, StringConstraints(pattern=r"^(tcp|udp)6?/\d{1,5}$"), AfterValidator(_port_in_range)]
        | None
    ) = None
    """`PROTO/PORT` (tcp, tcp6, udp, udp6): a socket listening (UDP: bound) on that port."""
    connected: (
        Annotated[str, StringConstraints(pattern=r"^[^:\s]+:\d{1,5}$"), AfterValidator(_port_in_range)] | None
    ) = None
    """`HOST:PORT`: an ESTABLISHED TCP connection to that peer (a name or an address)."""
    timeout: Seconds = 30
    """Seconds to wait before the step fails."""

    @model_validator(mode="after")
    def _one_condition(self) -> WaitSpec:
        if (self.listening is None) == (self.connected is None):
            raise ValueError("give exactly one of 'listening: tcp/PORT' or 'connected: HOST:PORT'")
        return self


SocketState = Literal[
    "LISTEN",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "CLOSING",
    # UDP and raw sockets, UNIX sockets
    "UNCONN",
    "LISTENING",
    "CONNECTED",
    "CONNECTING",
    "DISCONNECTING",
]


class ExpectSocketsSpec(Strict):
    """Count the sockets of nodes that match every given key; the count must be in min..max."""

    node: NodePattern
    """The node: an instance name (`client-2`), a replicated node's name (every replica) or a glob."""
    state: SocketState | None = None
    """Only sockets in this state (netstat names: LISTEN, ESTABLISHED, TIME_WAIT...; UNCONN
    for UDP and raw, LISTENING/CONNECTED for UNIX)."""
    proto: Literal["tcp", "tcp6", "udp", "udp6", "unix", "raw"] | None = None
    """Only this protocol (`tcp` also counts tcp6 sockets; `tcp6` only IPv6 ones)."""
    local_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    """Only sockets bound to this local port."""
    remote_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    """Only sockets connected to this remote port."""
    min: Annotated[int, Field(ge=0)] = 1
    """At least this many matching sockets, over all the matched nodes."""
    max: Annotated[int, Field(ge=0)] | None = None
    """At most this many matching sockets (no upper bound when left out)."""

    _max_above_min = field_validator("max")(_max_at_least_min)


class ExpectTimelineSpec(Strict):
    """These events happen in this order in the lab's merged timeline (other events may come
    between them); polled until ``timeout``, since a started app logs a little later."""

    events: list[EventPattern] = Field(min_length=1)
    """The events, in the order they must happen."""
    in_order: bool = True
    """false: the events must all happen, in any order (two hosts' events that no cause
    orders, e.g. what each end says of one connection)."""
    timeout: Seconds = 5
    """Seconds to wait for them before the step fails."""


class ExpectRatioSpec(Strict):
    """The duration of the run step ``of`` divided by that of the run step ``to``."""

    of: StepId
    """The `id` of the run step whose duration is divided."""
    to: StepId
    """The `id` of the run step it is divided by."""
    min: Annotated[float, Field(gt=0)] | None = None
    """The ratio must be at least this."""
    max: Annotated[float, Field(gt=0)] | None = None
    """The ratio must be at most this."""
    by: Literal["duration", "events"] = "duration"
    """What is divided: each step's whole `duration`, or the span of the `events` its
    commands printed (first to last: the apps' own time, without starting them)."""

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
    """Start capturing packets in a node (tcpdump) until its first ``expect_capture`` step."""

    node: NodePattern
    """The node to capture in."""
    id: StepId
    """A name for the capture, which its `expect_capture` step gives."""
    filter: Annotated[str, StringConstraints(max_length=500)] = ""
    """A tcpdump filter, e.g. `tcp port 5000` (default: every packet)."""
    iface: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,15}$")] = "any"
    """The interface in the node (default: any; name it, eth0, where every packet counts)."""


Handshake = Annotated[list[str], BeforeValidator(lambda v: v.split() if isinstance(v, str) else v)]


class ExpectCaptureSpec(Strict):
    """Stop a capture (the first check of it does) and count the TCP connections in it that
    match every condition given."""

    capture: StepId
    """The `id` of the capture step."""
    server_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Only connections to this server port."""
    handshake: Handshake | None = None
    """The handshake they must show, e.g. `SYN SYN-ACK ACK`."""
    teardown: list[str] | None = None
    """The teardown they must show, e.g. `[FIN client, FIN server, ACK]` or `[RST server]`."""
    outcome: Literal["closed", "refused", "reset", "established", "partial"] | None = None
    """How they must end."""
    min_packets: Annotated[int, Field(ge=1)] | None = None
    """Only connections of at least this many packets (keepalive probes, retransmissions)."""
    min: Annotated[int, Field(ge=0)] = 1
    """At least this many matching connections."""
    max: Annotated[int, Field(ge=0)] | None = None
    """At most this many matching connections (no upper bound when left out)."""

    _max_above_min = field_validator("max")(_max_at_least_min)


class CompareSocketsSpec(Strict):
    """The socket table socklab reads agrees, row for row, with the node's own tool."""

    node: NodePattern
    """The node whose sockets are compared."""
    tool: Literal["netstat", "ss"] = "netstat"
    """The node's tool to compare with: netstat or ss."""


class StartStep(Strict):
    """A `start:` step."""

    start: StartSpec
    """Start an app in nodes (`{node, cmd}`); it passes once the app is started."""


class RunStep(Strict):
    """A `run:` step."""

    run: RunSpec
    """Run a command to completion in nodes (`{node, cmd, timeout, expect}`) and check it."""


class ParallelStep(Strict):
    """A `parallel:` step."""

    parallel: list[Step] = Field(min_length=1)
    """Steps run at the same time; it passes when all of them pass."""


class WaitStep(Strict):
    """A `wait:` step."""

    wait: WaitSpec
    """Wait for a listening socket or a connection (`{node, listening | connected, timeout}`)."""


class ExpectSocketsStep(Strict):
    """An `expect_sockets:` step."""

    expect_sockets: ExpectSocketsSpec
    """Count matching sockets of nodes (`{node, state, proto, local_port, remote_port, min, max}`)."""


class FaultStep(Strict):
    """A `fault:` step."""

    fault: Fault
    """One action of `socklab fault`: partition, heal, loss, delay, rate, corrupt, duplicate,
    clear, kill, pause, resume, restart, disconnect or connect."""


class SleepStep(Strict):
    """A `sleep:` step."""

    sleep: Annotated[float, Field(ge=0, le=3600)]
    """Seconds to pause the scenario."""


class SnapshotStep(Strict):
    """A `snapshot:` step."""

    snapshot: Literal["sockets"]
    """`sockets`: save every node's socket table (in the run folder's `sockets/`)."""


class ExpectTimelineStep(Strict):
    """An `expect_timeline:` step."""

    expect_timeline: ExpectTimelineSpec
    """Events that must happen in this order in the lab's timeline (`{events, timeout}`)."""


class ExpectRatioStep(Strict):
    """An `expect_ratio:` step."""

    expect_ratio: ExpectRatioSpec
    """Compare the durations of two run steps (`{of, to, min, max}`)."""


class CaptureStep(Strict):
    """A `capture:` step."""

    capture: CaptureSpec
    """Start a packet capture in a node (`{node, id, filter, iface}`)."""


class ExpectCaptureStep(Strict):
    """An `expect_capture:` step."""

    expect_capture: ExpectCaptureSpec
    """Stop a capture and count its matching TCP connections (`{capture, handshake, ...}`)."""


class CompareSocketsStep(Strict):
    """A `compare_sockets:` step."""

    compare_sockets: CompareSocketsSpec
    """Compare socklab's socket table of a node with netstat or ss there (`{node, tool}`)."""


STEP_KINDS: dict[str, type[Strict]] = {
    "start": StartStep,
    "run": RunStep,
    "parallel": ParallelStep,
    "wait": WaitStep,
    "expect_sockets": ExpectSocketsStep,
    "fault": FaultStep,
    "sleep": SleepStep,
    "snapshot": SnapshotStep,
    "expect_timeline": ExpectTimelineStep,
    "expect_ratio": ExpectRatioStep,
    "capture": CaptureStep,
    "expect_capture": ExpectCaptureStep,
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
