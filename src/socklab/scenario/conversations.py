"""A run's timeline grouped per connection, for the report's sequence diagrams.

A conversation is one connection (or one connected UDP socket's exchange) seen from both
ends: the client's ``connected`` names both addresses (``local`` and ``peer``), the
server's ``accepted`` names them too, and every later event of either app names the other
end as its ``peer``. A connection that was refused or timed out is a conversation with
only its client end. Events keep the timeline's order, corrected further within a
conversation: the N-th ``received`` of one end comes after the N-th ``sent`` of the other
(an app stamps an event a scheduling delay after its system call), and an end's close
after the other end's first close when it is the ``eof`` that close caused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Events that open a conversation from the client end and carry its own address.
OPENERS = ("connected",)
#: A client's failed attempt (a retry is one that another address follows); alone, a
#: conversation with no server end.
FAILURES = ("retry", "connect_failed", "error")


@dataclass
class End:
    """One end of a conversation: the node, its app and the socket address."""

    node: str | None
    app: str | None
    address: str


@dataclass
class Conversation:
    """One connection, with the events of both ends in timeline order (``side`` is
    ``"client"`` or ``"server"`` for each)."""

    proto: str
    client: End
    server: End
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """``refused``, ``timed out``... (the errno of a failed attempt), else ``closed`` or
        ``open`` (no end saw it close)."""
        for _, e in self.events:
            if e["event"] in FAILURES:
                return str(e["fields"].get("errno") or e["event"])
        return "closed" if any(e["event"] == "closed" for _, e in self.events) else "open"


def host_of(address: str) -> str:
    """``10.0.0.2:5000`` -> ``10.0.0.2``; ``[fd00::2]:5000`` -> ``fd00::2``."""
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def node_addresses(nodes: list[dict[str, Any]]) -> dict[str, str]:
    """Every lab address (IPv4 and IPv6) -> its node, from a run's ``nodes``."""
    out: dict[str, str] = {}
    for n in nodes:
        for key in ("networks", "ipv6"):
            for cidr in (n.get(key) or {}).values():
                if cidr:
                    out[cidr.split("/")[0]] = n["node"]
    return out


def conversations(timeline: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> list[Conversation]:
    """The conversations of a timeline (events as in ``report.json``), in the order they
    began."""
    owner = node_addresses(nodes)
    found: list[Conversation] = []
    by_addresses: dict[tuple[str, str], Conversation] = {}  # (client, server address)
    current: dict[tuple[str, int, str], tuple[str, Conversation]] = {}  # (node, pid, peer)
    for e in timeline:
        peer, fields = e.get("peer"), e.get("fields") or {}
        if not peer:
            continue
        me = (e["node"], e.get("pid", 0), peer)
        local = fields.get("local")
        kind = e["event"]
        if kind in OPENERS and isinstance(local, str):
            conv = Conversation(
                "udp" if "udp" in e["app"] else "tcp",
                End(e["node"], e["app"], local),
                End(owner.get(host_of(peer)), None, peer),
            )
            found.append(conv)
            by_addresses[(local, peer)] = conv
            current[me] = ("client", conv)
        elif kind == "accepted" and isinstance(local, str):
            conv = by_addresses.get((peer, local)) or _new(found, by_addresses, owner, peer, local)
            conv.server = End(e["node"], e["app"], local)
            current[me] = ("server", conv)
        elif me not in current:
            if kind in FAILURES and fields.get("call", "connect") == "connect":
                # a connection that never was: refused, timed out... (not a failed lookup)
                conv = Conversation(
                    "udp" if "udp" in e["app"] else "tcp",
                    End(e["node"], e["app"], ""),
                    End(owner.get(host_of(peer)), None, peer),
                )
                found.append(conv)
                conv.events.append(("client", e))
                continue
            # a UDP server names no local address: its peer is a client's address
            udp = next(
                (
                    c
                    for (client, _), c in by_addresses.items()
                    if client == peer and c.server.node == e["node"]
                ),
                None,
            )
            if udp is None:
                continue
            udp.server.app = udp.server.app or e["app"]
            current[me] = ("server", udp)
        side, conv = current[me]
        conv.events.append((side, e))
    for conv in found:
        conv.events = causal(conv.events)
    return [c for c in found if c.events]


def causal(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """``events`` reordered so that no ``received`` comes before the matching ``sent`` of
    the other end, nor an ``eof`` close before the other end's close (a stable order:
    an event waits only for what it needs; what never comes lets it go at the end)."""
    out: list[tuple[str, dict[str, Any]]] = []
    sent = {"client": 0, "server": 0}
    received = {"client": 0, "server": 0}
    closed = {"client": False, "server": False}
    waiting: list[tuple[str, dict[str, Any]]] = []

    def ready(side: str, e: dict[str, Any]) -> bool:
        other = "server" if side == "client" else "client"
        if e["event"] == "received":
            return sent[other] > received[side]
        if e["event"] == "closed" and (e.get("fields") or {}).get("reason") == "eof":
            return closed[other]
        return True

    def place(side: str, e: dict[str, Any]) -> None:
        out.append((side, e))
        if e["event"] == "sent":
            sent[side] += 1
        elif e["event"] == "received":
            received[side] += 1
        elif e["event"] == "closed":
            closed[side] = True

    for side, e in events:
        if (waiting and any(s == side for s, _ in waiting)) or not ready(side, e):
            waiting.append((side, e))  # an end's own events keep their order
        else:
            place(side, e)
        progress = True
        while progress:
            progress = False
            for i, (s, w) in enumerate(waiting):
                if any(s == s2 for s2, _ in waiting[:i]):
                    continue  # an earlier event of the same end waits first
                if ready(s, w):
                    place(s, w)
                    del waiting[i]
                    progress = True
                    break
    out.extend(waiting)
    return out


def _new(
    found: list[Conversation],
    by_addresses: dict[tuple[str, str], Conversation],
    owner: dict[str, str],
    client: str,
    server: str,
) -> Conversation:
    """A conversation first seen from its server end (the client logged nothing)."""
    conv = Conversation("tcp", End(owner.get(host_of(client)), None, client), End(None, None, server))
    found.append(conv)
    by_addresses[(client, server)] = conv
    return conv
