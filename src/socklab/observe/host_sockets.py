"""A node's sockets read from this host's ``/proc``: the fast path of a socket snapshot.

When the Docker daemon runs on this host and socklab runs as root, a node's sockets need no
``docker exec``: ``/proc/<pid>/net/*`` of the node's first process is its network
namespace's socket tables, and ``/proc/<pid>/fd`` of each process in the node's pid
namespace tells who holds which socket. The same parser as the node's own
``socklab-sockets`` reads them (:func:`socklab.nodes.sockstat.read_sockets`), and the pids
are shown as the node sees them (the last ``NSpid`` of each process), so both ways give the
same rows. Anything unexpected (a pid that is not the container's, a process that is gone)
gives None, and the caller reads that node through ``docker exec``.

``SOCKLAB_SNAPSHOT=exec`` always goes through ``docker exec``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from socklab.nodes import sockstat

SETTING = "SOCKLAB_SNAPSHOT"
"""``exec``: every snapshot through ``docker exec``; ``auto`` (the default): from this host's
/proc when it can."""


def host_reading(setting: str | None, euid: int, daemon_on_this_host: bool) -> bool:
    """Whether a snapshot reads the nodes' /proc from this host: only as root (another user
    may not read a root process's fds), with the daemon on this host (its pids are ours),
    and unless the setting asks for ``exec``."""
    return (setting or "auto").strip().lower() != "exec" and euid == 0 and daemon_on_this_host


class HostProc:
    """This host's processes by pid namespace, listed once (lazily) and shared by the nodes
    of one snapshot."""

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self._lock = threading.Lock()
        self._by_namespace: dict[str, list[int]] | None = None

    def _namespaces(self) -> dict[str, list[int]]:
        with self._lock:
            if self._by_namespace is None:
                found: dict[str, list[int]] = {}
                for name in os.listdir(self.proc):
                    if name.isdigit():
                        ns = self._readlink(f"{name}/ns/pid")
                        if ns is not None:
                            found.setdefault(ns, []).append(int(name))
                self._by_namespace = found
            return self._by_namespace

    def _readlink(self, rel: str) -> str | None:
        try:
            return os.readlink(f"{self.proc}/{rel}")
        except OSError:
            return None

    def _read(self, rel: str) -> str | None:
        try:
            with open(f"{self.proc}/{rel}", errors="replace") as handle:
                return handle.read()
        except OSError:
            return None

    def _nspids(self, pid: int) -> list[int]:
        """The pid of a process in each pid namespace it is in, outermost first."""
        for line in (self._read(f"{pid}/status") or "").splitlines():
            if line.startswith("NSpid:"):
                return [int(p) for p in line.split()[1:]]
        return []

    def sockets(self, pid: int, container_id: str) -> list[dict[str, Any]] | None:
        """The socket rows of the container whose first process is ``pid`` on this host, as
        ``socklab-sockets --json`` in it gives them; None when ``pid`` is not that
        container's (a daemon in another pid namespace) or cannot be read."""
        if pid <= 0 or not container_id or container_id not in (self._read(f"{pid}/cgroup") or ""):
            return None
        ns = self._readlink(f"{pid}/ns/pid")
        level = len(self._nspids(pid)) - 1
        if ns is None or level < 1:
            return None
        pairs = []
        for member in self._namespaces().get(ns, []):
            nspids = self._nspids(member)
            if len(nspids) > level:
                pairs.append((member, nspids[level]))
        if not any(host == pid for host, _ in pairs):  # the listing missed its own first process
            return None
        return sockstat.read_sockets(sockstat.ALL_FILES, self.proc, net=f"{self.proc}/{pid}/net", pids=pairs)
