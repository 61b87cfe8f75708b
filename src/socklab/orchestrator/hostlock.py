"""A lock shared by every socklab process on this host (``flock`` on a file in /tmp).

Labs brought up at the same moment would otherwise plan the same free subnet: each
process holds the lock from reading the subnets in use until its networks exist.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

#: A fixed place, not $TMPDIR: CI runners often give each job its own TMPDIR.
LOCK_DIR = Path("/tmp")


class HostLock:
    """Held from ``with`` until :meth:`release` or the end of the block, whichever is first."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@contextlib.contextmanager
def host_lock(name: str) -> Iterator[HostLock]:
    """Hold ``/tmp/socklab-<name>.lock``. Another user's lock file is readable but maybe not
    writable: a read-only descriptor locks as well."""
    path = LOCK_DIR / f"socklab-{name}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)  # the next user of this host may lock it too
    except PermissionError:
        fd = os.open(path, os.O_RDONLY)
    lock = HostLock(fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield lock
    finally:
        lock.release()
