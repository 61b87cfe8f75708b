"""The host-wide lock that serializes subnet planning between socklab processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from socklab.orchestrator import hostlock

TRY_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    sys.exit(3)
"""


def other_process_can_lock(path: Path) -> bool:
    return subprocess.run([sys.executable, "-c", TRY_LOCK, str(path)]).returncode == 0


def test_another_process_waits_until_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostlock, "LOCK_DIR", tmp_path)
    path = tmp_path / "socklab-subnets.lock"
    with hostlock.host_lock("subnets") as lock:
        assert not other_process_can_lock(path)
        lock.release()  # the networks exist: others may plan now
        assert other_process_can_lock(path)
        lock.release()  # idempotent
    assert other_process_can_lock(path)
    assert path.stat().st_mode & 0o777 == 0o666  # another user of the host can lock it too


def test_released_when_the_block_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostlock, "LOCK_DIR", tmp_path)
    with pytest.raises(RuntimeError), hostlock.host_lock("subnets"):
        raise RuntimeError("deploy failed")
    assert other_process_can_lock(tmp_path / "socklab-subnets.lock")
