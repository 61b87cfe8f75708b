"""The ``fault:`` scenario step: one action of ``socklab fault``, written as a mapping.

``fault: {partition: [A, B]}``, ``{heal: [A, B]}`` / ``{heal: all}``,
``{loss: {node, pct, net?, proto?}}``, ``{delay: {node, ms, jitter?, net?}}``,
``{rate: {node, rate, net?}}``, ``{corrupt: {node, pct, net?}}``,
``{duplicate: {node, pct, net?}}``, ``{clear: NODE}`` / ``{clear: {node, net?}}``,
``{kill: NODE}``, ``{pause: NODE}``, ``{resume: NODE}``, ``{restart: NODE}``,
``{disconnect: {node, net}}``, ``{connect: {node, net}}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
)

from socklab.topology.impair import Corrupt, Duplicate, Jitter, Milliseconds, Percent, Rate

NodeRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9*?\[\]!-]+$")]
"""A node, a replica, a replicated node's name or a glob (as every step's ``node``)."""
NetRef = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,30}$")]
SideRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9*?\[\]!_-]+$")]
"""One side of a partition: a node reference or a network name."""


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _pair(value: Any) -> Any:
    if isinstance(value, list) and len(value) != 2:
        raise ValueError(f"expected two sides [A, B], got {len(value)} — e.g. [client, server]")
    return value


Pair = Annotated[tuple[SideRef, SideRef], BeforeValidator(_pair)]


class PartitionFault(_Fault):
    """Drop all traffic between two sides, both ways: ``[A, B]``, each a node, a replica,
    a replicated node's name, a glob or a network name (every node on it)."""

    partition: Pair
    """Two sides: [A, B]."""

    @field_validator("partition")
    @classmethod
    def _two_sides(cls, v: tuple[str, str]) -> tuple[str, str]:
        if v[0] == v[1]:
            raise ValueError(f"both sides are {v[0]!r} — partition two different sides")
        return v


class HealFault(_Fault):
    """End the partition between ``[A, B]``, or every partition: ``all``."""

    heal: Literal["all"] | Pair
    """The two sides of a partition, [A, B], or `all`."""


class LossSpec(_Fault):
    """Drop ``pct`` percent of the packets NODE sends (on ``net`` only, of ``proto`` only)."""

    node: NodeRef
    """A node, a replica, a replicated node's name or a glob."""
    pct: Percent
    """Percent of the packets: 30 or 30%."""
    net: NetRef | None = None
    """Only on this network (default: every network of the node)."""
    proto: Literal["udp", "tcp"] | None = None
    """Only this protocol's packets."""


class LossFault(_Fault):
    """`fault: {loss: {node, pct, net?, proto?}}`."""

    loss: LossSpec
    """Lose packets NODE sends."""


class DelaySpec(_Fault):
    """Delay what NODE sends by ``ms`` (``40ms``, or a number of ms), ± ``jitter``."""

    node: NodeRef
    """A node, a replica, a replicated node's name or a glob."""
    ms: Milliseconds
    """The delay: 40ms, 1s, or a number of milliseconds."""
    jitter: Jitter | None = None
    """± this much, uniformly."""
    net: NetRef | None = None
    """Only on this network (default: every network of the node)."""


class DelayFault(_Fault):
    """`fault: {delay: {node, ms, jitter?, net?}}`."""

    delay: DelaySpec
    """Delay packets NODE sends."""


class RateSpec(_Fault):
    """Limit what NODE sends to ``rate`` (``1mbit``, ``500kbit``)."""

    node: NodeRef
    """A node, a replica, a replicated node's name or a glob."""
    rate: Rate
    """Bits per second: 1mbit, 500kbit, 2mbps (bytes)."""
    net: NetRef | None = None
    """Only on this network (default: every network of the node)."""


class RateFault(_Fault):
    """`fault: {rate: {node, rate, net?}}`."""

    rate: RateSpec
    """Limit what NODE sends."""


class CorruptSpec(_Fault):
    """Corrupt ``pct`` percent of what NODE sends (needs the kernel's netem)."""

    node: NodeRef
    """A node, a replica, a replicated node's name or a glob."""
    pct: Corrupt
    """Percent of the packets."""
    net: NetRef | None = None
    """Only on this network (default: every network of the node)."""


class CorruptFault(_Fault):
    """`fault: {corrupt: {node, pct, net?}}`."""

    corrupt: CorruptSpec
    """Corrupt packets NODE sends."""


class DuplicateSpec(_Fault):
    """Duplicate ``pct`` percent of what NODE sends (needs the kernel's netem)."""

    node: NodeRef
    """A node, a replica, a replicated node's name or a glob."""
    pct: Duplicate
    """Percent of the packets."""
    net: NetRef | None = None
    """Only on this network (default: every network of the node)."""


class DuplicateFault(_Fault):
    """`fault: {duplicate: {node, pct, net?}}`."""

    duplicate: DuplicateSpec
    """Duplicate packets NODE sends."""


class ClearSpec(_Fault):
    """Remove NODE's impairments (loss, delay, rate...), on ``net`` only if given."""

    node: NodeRef
    """A node, a replica, a replicated node's name or a glob."""
    net: NetRef | None = None
    """Only on this network (default: every network of the node)."""


class ClearFault(_Fault):
    """`fault: {clear: NODE}` or `{clear: {node, net}}`: remove NODE's impairments."""

    clear: NodeRef | ClearSpec
    """A node (every network), or {node, net}."""


class KillFault(_Fault):
    """Stop NODE's container at once (SIGKILL): a crashed host."""

    kill: NodeRef
    """The node to kill."""


class PauseFault(_Fault):
    """Freeze every process of NODE: a hung host (the kernel still answers)."""

    pause: NodeRef
    """The node to pause."""


class ResumeFault(_Fault):
    """Unfreeze a paused NODE."""

    resume: NodeRef
    """The node to resume."""


class RestartFault(_Fault):
    """Restart NODE: its start commands run again; done when its servers listen again."""

    restart: NodeRef
    """The node to restart."""


class LinkSpec(_Fault):
    """A node and one of its networks."""

    node: NodeRef
    """A node, a replica, a replicated node's name or a glob."""
    net: NetRef
    """A network of the node."""


class DisconnectFault(_Fault):
    """Unplug NODE from network ``net``."""

    disconnect: LinkSpec
    """{node, net}."""


class ConnectFault(_Fault):
    """Plug NODE back into ``net``, with its address and aliases."""

    connect: LinkSpec
    """{node, net}."""


FAULT_KINDS: dict[str, type[_Fault]] = {
    "partition": PartitionFault,
    "heal": HealFault,
    "loss": LossFault,
    "delay": DelayFault,
    "rate": RateFault,
    "corrupt": CorruptFault,
    "duplicate": DuplicateFault,
    "clear": ClearFault,
    "kill": KillFault,
    "pause": PauseFault,
    "resume": ResumeFault,
    "restart": RestartFault,
    "disconnect": DisconnectFault,
    "connect": ConnectFault,
}


def _fault_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        key = next(iter(value)) if len(value) == 1 else None
        return key if key in FAULT_KINDS else None
    return fault_kind(value) if isinstance(value, _Fault) else None


def fault_kind(fault: BaseModel) -> str:
    """The one key of a fault: ``partition``, ``loss``..."""
    return next(iter(type(fault).model_fields))


Fault = Annotated[
    Annotated[PartitionFault, Tag("partition")]
    | Annotated[HealFault, Tag("heal")]
    | Annotated[LossFault, Tag("loss")]
    | Annotated[DelayFault, Tag("delay")]
    | Annotated[RateFault, Tag("rate")]
    | Annotated[CorruptFault, Tag("corrupt")]
    | Annotated[DuplicateFault, Tag("duplicate")]
    | Annotated[ClearFault, Tag("clear")]
    | Annotated[KillFault, Tag("kill")]
    | Annotated[PauseFault, Tag("pause")]
    | Annotated[ResumeFault, Tag("resume")]
    | Annotated[RestartFault, Tag("restart")]
    | Annotated[DisconnectFault, Tag("disconnect")]
    | Annotated[ConnectFault, Tag("connect")],
    Discriminator(
        _fault_tag,
        custom_error_type="fault_kind",
        custom_error_message="a fault is a mapping with one key: " + ", ".join(FAULT_KINDS),
    ),
    Field(description="one action of `socklab fault`: " + ", ".join(FAULT_KINDS)),
]
