"""Who is connected to whom: ESTABLISHED TCP sockets of a lab matched end to end."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from socklab.observe.sockets import SocketRow, unmapped

_LOOPBACK = ("127.", "::1")


@dataclass(frozen=True, slots=True)
class Connection:
    """Both ends of one TCP connection; the server is the end on a listening port."""

    client: SocketRow
    server: SocketRow

    def as_dict(self) -> dict[str, object]:
        def end(r: SocketRow) -> dict[str, object]:
            return {
                "node": r.node,
                "ip": unmapped(r.local_ip),
                "port": r.local_port,
                "pid": r.pid,
                "program": r.program,
            }

        return {"proto": "tcp", "client": end(self.client), "server": end(self.server)}


def _key(node: str, ip: str, port: int, peer_ip: str, peer_port: int) -> tuple[str, ...]:
    # loopback addresses exist in every node: they only pair within one node
    scope = node if unmapped(ip).startswith(_LOOPBACK) else ""
    return (scope, unmapped(ip), str(port), unmapped(peer_ip), str(peer_port))


def connections(rows: Iterable[SocketRow]) -> list[Connection]:
    """Pairs of ESTABLISHED TCP sockets whose local end is the other's remote end.

    A socket whose peer is outside the lab (or not read) has no pair and is left out.
    """
    rows = list(rows)
    listening = {(r.node, r.local_port) for r in rows if r.kind == "tcp" and r.state == "LISTEN"}
    established = [r for r in rows if r.kind == "tcp" and r.state == "ESTABLISHED"]
    index = {_key(r.node, r.local_ip, r.local_port, r.remote_ip, r.remote_port): r for r in established}
    found: list[Connection] = []
    seen: set[int] = set()
    for r in established:
        peer = index.get(_key(r.node, r.remote_ip, r.remote_port, r.local_ip, r.local_port))
        if peer is None or peer is r or id(r) in seen:
            continue
        seen.update((id(r), id(peer)))
        r_serves = (r.node, r.local_port) in listening
        peer_serves = (peer.node, peer.local_port) in listening
        if r_serves != peer_serves:
            server, client = (r, peer) if r_serves else (peer, r)
        else:  # no listener seen: the lower port is the service port
            server, client = (r, peer) if r.local_port <= peer.local_port else (peer, r)
        found.append(Connection(client, server))
    return sorted(
        found, key=lambda c: (c.server.node, c.server.local_port, c.client.node, c.client.local_port)
    )


def mermaid(found: Sequence[Connection], nodes: Sequence[str] = ()) -> str:
    """A Mermaid flowchart: one arrow per client node, server node and port, with a count."""
    names = list(dict.fromkeys([*nodes, *(n for c in found for n in (c.client.node, c.server.node))]))
    lines = ["graph LR"] + [f'  {_ident(n)}["{n}"]' for n in names]
    edges = Counter((c.client.node, c.server.node, c.server.local_port) for c in found)
    for (client, server, port), count in edges.items():
        label = f"tcp/{port}" + (f" x{count}" if count > 1 else "")
        lines.append(f'  {_ident(client)} -->|"{label}"| {_ident(server)}')
    return "\n".join(lines)


def _ident(node: str) -> str:
    return "n_" + re.sub(r"\W", "_", node)
