"""What a started app listens on, read from ``/proc``: the supervisor's readiness checks.

An app's *tree* is every process of its session (the supervisor starts each app as a
session leader, so its children and their children are in it unless they leave with
``setsid``). A TCP socket in LISTEN, or a bound unconnected UDP socket, held by a
process of the tree is a *listening* socket, named ``tcp/PORT`` or ``udp/PORT``.
Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import os

from socklab.nodes.sockstat import held_sockets, read_table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Iterable, List, Set

TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"


def session_pids(sid: int, proc: str = "/proc") -> List[int]:
    """Every live process of session ``sid``."""
    found = []
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            with open("%s/%s/stat" % (proc, name)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if len(fields) > 3 and fields[3] == str(sid):  # state ppid pgrp session ...
            found.append(int(name))
    return found


def socket_inodes(pids: Iterable[int], proc: str = "/proc") -> Set[int]:
    """The inodes of the sockets these processes hold."""
    return {inode for pid in pids for inode in held_sockets(proc, pid)}


def listening_sockets(proc: str = "/proc") -> Dict[int, str]:
    """inode -> ``tcp/PORT`` or ``udp/PORT`` of every listening socket of this network
    namespace (IPv4 and IPv6)."""
    out = {}
    for name, kind, state in (
        ("tcp", "tcp", TCP_LISTEN),
        ("tcp6", "tcp", TCP_LISTEN),
        ("udp", "udp", UDP_UNCONNECTED),
        ("udp6", "udp", UDP_UNCONNECTED),
    ):
        try:
            lines = read_table("%s/net/%s" % (proc, name)).splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != state:
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if port and not remote_port:
                out[int(fields[9])] = "%s/%d" % (kind, port)
    return out


def tree_listening(sid: int, proc: str = "/proc") -> List[str]:
    """What the tree of session ``sid`` listens on (``["tcp/80", "udp/53"]``), sorted."""
    sockets = listening_sockets(proc)
    if not sockets:
        return []
    held = socket_inodes(session_pids(sid, proc), proc)
    return sorted({port for inode, port in sockets.items() if inode in held})


def port_listening(port: str, proc: str = "/proc") -> bool:
    """Whether any process of this network namespace listens on ``tcp/PORT``/``udp/PORT``."""
    return port in listening_sockets(proc).values()


def cpu_ticks(pids: Iterable[int], proc: str = "/proc") -> int:
    """The CPU time (clock ticks, user + system) these processes have used so far."""
    total = 0
    for pid in pids:
        try:
            with open("%s/%d/stat" % (proc, pid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total
