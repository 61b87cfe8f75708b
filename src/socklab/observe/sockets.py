"""Socket state of a running lab: every node's ``/proc/net`` read in parallel, as typed rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from socklab.errors import LabError
from socklab.nodes import sockstat
from socklab.orchestrator.engine_api import ExecResult

Exec = Callable[[str, list[str]], ExecResult]
"""Runs a command in a node (by name) to completion: ``run(node, argv)``."""
Ask = Callable[[str, list[str]], str]
"""Runs a command in a node and returns its output alone, not its exit code (one engine
call less): ``ask(node, argv)``."""
HostRead = Callable[[str], "list[dict[str, Any]] | None"]
"""Reads a node's socket rows without exec (:mod:`socklab.observe.host_sockets`); None when
it cannot, and the node is read through exec."""

READER = ["socklab-sockets", "--json"]
ANSWERER = ["nc", "-U", "/run/socklab/sockets.sock"]
"""the node supervisor's socket table (:mod:`socklab.nodes.supervisor`)"""
MAX_PARALLEL = 64
PROTOS = ("tcp", "udp", "unix", "raw")
STATES = (
    *dict.fromkeys(sockstat.TCP_STATES.values()),
    "UNCONN",
    "LISTENING",
    "CONNECTED",
    "CONNECTING",
    "DISCONNECTING",
)
_STATE_ALIASES = {
    "ESTAB": "ESTABLISHED",
    "FIN_WAIT_1": "FIN_WAIT1",
    "FIN_WAIT_2": "FIN_WAIT2",
    "UNCONNECTED": "UNCONN",
}


@dataclass(frozen=True, slots=True)
class SocketRow:
    """One socket of one node, as ``netstat -anp`` shows it.

    ``proto`` is tcp, tcp6, udp, udp6, raw, raw6 or unix; for a UNIX socket
    ``local_ip`` holds its path and the ports are 0; ``pid``/``program`` are None
    when no process of the node holds it (TIME_WAIT, Docker's DNS sockets).
    """

    node: str
    proto: str
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    state: str
    recv_q: int
    send_q: int
    inode: int
    pid: int | None
    program: str | None

    @property
    def kind(self) -> str:
        """The protocol without its family: tcp, udp, raw or unix."""
        return self.proto.rstrip("6")

    @property
    def local(self) -> str:
        return endpoint(self.local_ip, self.local_port, self.proto)

    @property
    def remote(self) -> str:
        if self.proto == "unix":
            return ""
        return endpoint(self.remote_ip, self.remote_port, self.proto)

    @property
    def owner(self) -> str:
        return f"{self.pid}/{self.program}" if self.pid is not None else "-"

    def as_dict(self) -> dict[str, Any]:
        """The node reader's keys (everything but ``node``)."""
        data = asdict(self)
        del data["node"]
        return data

    @classmethod
    def from_dict(cls, node: str, data: dict[str, Any]) -> SocketRow:
        return cls(node=node, **{f.name: data[f.name] for f in fields(cls) if f.name != "node"})


def endpoint(ip: str, port: int, proto: str = "tcp") -> str:
    """``ip:port`` as netstat writes it (``0.0.0.0:*`` for an unbound peer)."""
    if proto == "unix":
        return ip
    if port == 0 and ip in ("0.0.0.0", "::", "*"):
        return f"{ip}:*"
    return f"{ip}:{port}"


def unmapped(ip: str) -> str:
    """``::ffff:10.0.0.2`` -> ``10.0.0.2``; other addresses unchanged."""
    return ip[7:] if ip.startswith("::ffff:") and "." in ip else ip


def ip_port(ip: str, port: int) -> str:
    """``10.0.0.2:80``, ``[fd5c::2]:80``: an IPv6 address in brackets, as URLs write it."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def proto_matches(want: str, proto: str) -> bool:
    """``tcp`` matches IPv4 and IPv6 TCP sockets; ``tcp6`` only IPv6 ones."""
    return proto == want or (not want.endswith("6") and proto.rstrip("6") == want)


def listening(want: str) -> Callable[[SocketRow], bool]:
    """A test for the socket ``want`` names (``tcp/7000``: a TCP socket in LISTEN on port
    7000; ``udp/53``: a UDP socket bound to port 53 and connected to no one)."""
    proto, _, port = want.partition("/")

    def match(row: SocketRow) -> bool:
        ready = row.state == "LISTEN" if proto.startswith("tcp") else row.remote_port == 0
        return proto_matches(proto, row.proto) and row.local_port == int(port) and ready

    return match


def read_nodes(run: Exec, ask: Ask, nodes: Sequence[str], host: HostRead | None = None) -> list[SocketRow]:
    """The sockets of all these nodes, read at once (in parallel): each from this host when
    ``host`` can, else with one exec (see :func:`read_node`)."""
    if not nodes:
        return []
    with ThreadPoolExecutor(min(MAX_PARALLEL, len(nodes))) as pool:
        outcomes = list(pool.map(lambda node: _read_or_error(run, ask, node, host), nodes))
    failed = [f"{n}: {o}" for n, o in zip(nodes, outcomes, strict=True) if isinstance(o, str)]
    if failed:
        raise LabError(
            "cannot read the sockets of " + "; ".join(failed), "are these nodes running? `socklab status LAB`"
        )
    return [row for o in outcomes if not isinstance(o, str) for row in o]


def _read_or_error(run: Exec, ask: Ask, node: str, host: HostRead | None) -> list[SocketRow] | str:
    try:
        found = host(node) if host is not None else None
        if found is not None:
            return [SocketRow.from_dict(node, item) for item in found]
        return read_node(run, ask, node)
    except LabError as exc:
        return exc.message


def read_node(run: Exec, ask: Ask, node: str) -> list[SocketRow]:
    """One node's sockets: asked of its supervisor (``nc -U``, no Python started in the node;
    a table that parses whole needs no exit code), else read by ``socklab-sockets``; an
    image without it gets the reader's source."""
    rows = _answered_rows(node, ask(node, ANSWERER))
    if rows is not None:
        return rows
    result = run(node, READER)  # no nc, or no answering supervisor
    if result.exit_code in (126, 127) and "socklab-sockets" in result.stdout + result.stderr:
        source = Path(sockstat.__file__).read_text()
        result = run(node, ["python3", "-c", source, "--json"])
    if not result.ok:
        reason = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise LabError(f"exit {result.exit_code}: {reason[0][:200]}")
    try:
        return [SocketRow.from_dict(node, item) for item in json.loads(result.stdout)]
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(f"unreadable socket table ({exc})") from exc


def _answered_rows(node: str, answer: str) -> list[SocketRow] | None:
    """The rows of the supervisor's answer when it is one whole JSON list; None for anything
    else (no nc, no supervisor, cut short)."""
    if not answer.startswith("["):
        return None
    try:
        return [SocketRow.from_dict(node, item) for item in json.loads(answer)]
    except (ValueError, KeyError, TypeError):
        return None


def normalize_state(text: str) -> str:
    """A state as the user wrote it (``time-wait``, ``ESTAB``) -> its netstat name."""
    name = text.strip().upper().replace("-", "_")
    name = _STATE_ALIASES.get(name, name)
    if name not in STATES:
        raise LabError(f"unknown socket state '{text}'", "states: " + ", ".join(STATES))
    return name


def filter_rows(
    rows: Iterable[SocketRow], proto: str | None = None, state: str | None = None
) -> list[SocketRow]:
    """Rows of one protocol (tcp matches tcp6 too) and/or one state."""
    if proto is not None and proto not in PROTOS:
        raise LabError(f"unknown protocol '{proto}'", "use one of " + ", ".join(PROTOS))
    wanted = normalize_state(state) if state else None
    return [r for r in rows if (proto is None or r.kind == proto) and (wanted is None or r.state == wanted)]


def with_names(rows: Iterable[SocketRow], names: dict[str, str]) -> list[SocketRow]:
    """Rows with the lab's addresses replaced by node names."""

    def name(ip: str) -> str:
        return names.get(unmapped(ip), ip)

    return [replace(r, local_ip=name(r.local_ip), remote_ip=name(r.remote_ip)) for r in rows]


def by_node(rows: Iterable[SocketRow]) -> dict[str, list[SocketRow]]:
    """Rows grouped per node, nodes in the order first seen."""
    out: dict[str, list[SocketRow]] = {}
    for r in rows:
        out.setdefault(r.node, []).append(r)
    return out
