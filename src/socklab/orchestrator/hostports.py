"""Who holds a port of this host: read from the host's own ``/proc`` (no tool needed).

A process is named only where the host lets socklab see its file descriptors (as root,
or the same user); else the answer is None and the message says less.
"""

from __future__ import annotations

from socklab.nodes import sockstat


def holder(port: int, proto: str | None = "tcp", proc: str = "/proc") -> str | None:
    """``python3 (pid 4242)`` for the process listening on ``port`` (TCP, or bound UDP with
    ``proto="udp"``; either when None) in the host's network namespace, else None."""
    kinds = ("tcp", "tcp6", "udp", "udp6") if proto is None else (proto, f"{proto}6")
    for row in sockstat.read_sockets(kinds, proc):
        listening = row["state"] == "LISTEN" if row["proto"].startswith("tcp") else (row["remote_port"] == 0)
        if listening and row["local_port"] == port and row["pid"] is not None:
            return f"{row['program']} (pid {row['pid']})"
    return None
