"""The node's own ``netstat``/``ss`` beside socklab's socket reader, row for row.

Both views are taken in one ``docker exec``, a moment apart; a socket that changes state
in between makes them differ, so :func:`compare` tries a few times before it reports.
Rows are compared on protocol, both endpoints, state, queues and owning pid (a
listening socket's Send-Q is left out: ss shows its backlog limit there, /proc does not).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Literal

from socklab.errors import LabError
from socklab.observe.sockets import READER, Exec, SocketRow, unmapped

Tool = Literal["netstat", "ss"]
COMMANDS: dict[str, list[str]] = {"netstat": ["netstat", "-tuanpW"], "ss": ["ss", "-tuanpH"]}
_SS_STATES = {
    "ESTAB": "ESTABLISHED",
    "SYN-SENT": "SYN_SENT",
    "SYN-RECV": "SYN_RECV",
    "FIN-WAIT-1": "FIN_WAIT1",
    "FIN-WAIT-2": "FIN_WAIT2",
    "TIME-WAIT": "TIME_WAIT",
    "CLOSE-WAIT": "CLOSE_WAIT",
    "LAST-ACK": "LAST_ACK",
    "CLOSED": "CLOSE",
}
_SEPARATOR = "@@@socklab@@@"
ATTEMPTS = 3


@dataclass(frozen=True, order=True)
class Row:
    """One socket as both views can say it. ``proto`` is tcp/tcp6/udp/udp6 (ss: tcp/udp)."""

    proto: str
    local: str
    remote: str
    state: str
    recv_q: int
    send_q: int | None
    pid: int | None

    def text(self) -> str:
        owner = "-" if self.pid is None else str(self.pid)
        return (
            f"{self.proto} {self.local} {self.remote} {self.state} "
            f"{self.recv_q}/{'-' if self.send_q is None else self.send_q} {owner}"
        )


def _endpoint(text: str) -> str:
    """``10.0.0.2:5000``, ``::1:5000`` (netstat ``:::5000``, ss ``[::]:5000`` or ``*:5000``);
    an IPv4-mapped address as the IPv4 address (netstat writes it so)."""
    host, _, port = text.rpartition(":")
    host = unmapped(host.strip("[]").split("%")[0])
    host = "::" if host == "*" else host
    return f"{host}:{0 if port == '*' else int(port)}"


def _row(proto: str, local: str, remote: str, state: str, recv_q: int, send_q: int, pid: int | None) -> Row:
    return Row(proto, local, remote, state, recv_q, None if state == "LISTEN" else send_q, pid)


def parse_netstat(text: str) -> list[Row]:
    """``netstat -tuanpW`` rows (the header lines are skipped; UDP's empty state is UNCONN)."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 6 or not parts[0].startswith(("tcp", "udp")) or not parts[1].isdigit():
            continue
        proto, recv_q, send_q, local, remote, *rest = parts
        state, owner = (rest[0], rest[1]) if len(rest) >= 2 else ("UNCONN", rest[0])
        pid = owner.split("/", 1)[0]
        rows.append(
            _row(
                proto,
                _endpoint(local),
                _endpoint(remote),
                state,
                int(recv_q),
                int(send_q),
                int(pid) if pid.isdigit() else None,
            )
        )
    return sorted(rows)


def parse_ss(text: str) -> list[Row]:
    """``ss -tuanpH`` rows (no header)."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 6:
            continue
        kind, state, recv_q, send_q, local, remote, *users = parts
        pids = re.findall(r"pid=(\d+)", " ".join(users))
        rows.append(
            _row(
                kind,
                _endpoint(local),
                _endpoint(remote),
                _SS_STATES.get(state, state),
                int(recv_q),
                int(send_q),
                int(pids[0]) if pids else None,
            )
        )
    return sorted(rows)


def reader_rows(rows: list[SocketRow], tool: Tool) -> list[Row]:
    """socklab's rows in the tool's terms (TCP and UDP only; ss does not say the family)."""
    out = []
    for r in rows:
        if r.kind not in ("tcp", "udp"):
            continue
        proto = r.kind if tool == "ss" else r.proto
        local = _endpoint(f"[{r.local_ip}]:{r.local_port}")
        remote = _endpoint(f"[{r.remote_ip}]:{r.remote_port}")
        out.append(_row(proto, local, remote, r.state, r.recv_q, r.send_q, r.pid))
    return sorted(out)


@dataclass
class Comparison:
    """Both views of one node; ``agree`` when they hold the same rows."""

    node: str
    tool: Tool
    ours: list[Row]
    theirs: list[Row]
    output: str  # the tool's own text

    @property
    def agree(self) -> bool:
        return self.ours == self.theirs

    def differences(self) -> list[str]:
        only_ours = [r for r in self.ours if r not in self.theirs]
        only_theirs = [r for r in self.theirs if r not in self.ours]
        return [f"only socklab: {r.text()}" for r in only_ours] + [
            f"only {self.tool}: {r.text()}" for r in only_theirs
        ]


def compare(run: Exec, node: str, tool: Tool) -> Comparison:
    """socklab's reader and ``tool`` in one exec in ``node`` (up to ``ATTEMPTS`` times until
    they agree)."""
    script = f"{' '.join(READER)}; echo {_SEPARATOR}; {' '.join(COMMANDS[tool])}"
    parse = parse_netstat if tool == "netstat" else parse_ss
    found: Comparison | None = None
    for _ in range(ATTEMPTS):
        result = run(node, ["sh", "-c", script])
        if _SEPARATOR not in result.stdout or result.exit_code != 0:
            said = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LabError(
                f"cannot read the sockets of node '{node}' with {tool}: {said[0]}",
                f"is {tool} in the node's image?",
            )
        ours_json, text = result.stdout.split(_SEPARATOR + "\n", 1)
        ours = [SocketRow.from_dict(node, d) for d in json.loads(ours_json)]
        found = Comparison(node, tool, reader_rows(ours, tool), parse(text), text)
        if found.agree:
            break
        time.sleep(0.2)
    assert found is not None
    return found
