"""Shared helpers of the ``test_node_apps_*`` files (no tests here).

The apps run as real processes the way the node image runs them: from a copy of
``socklab.nodes`` under an empty ``socklab/__init__.py``, with ``python3 -S`` (no
site-packages), so a stray third-party import fails here first. Only 127.0.0.1,
::1 and UNIX sockets in temporary folders are used.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NODES = Path(__file__).resolve().parents[2] / "src" / "socklab" / "nodes"
_ROOT: list[Path] = []


def package_root() -> Path:
    """A folder holding ``socklab/nodes`` alone, made once per test process."""
    if not _ROOT:
        root = Path(tempfile.mkdtemp(prefix="socklab-nodes-"))
        shutil.copytree(NODES, root / "socklab" / "nodes", ignore=shutil.ignore_patterns("__pycache__"))
        (root / "socklab" / "__init__.py").write_text("")
        atexit.register(shutil.rmtree, root, True)
        _ROOT.append(root)
    return _ROOT[0]


def app_command(module: str, *args: str) -> list[str]:
    code = (
        f"import sys; sys.path.insert(0, {str(package_root())!r}); "
        f"from socklab.nodes.{module} import main; sys.exit(main())"
    )
    return [sys.executable, "-S", "-c", code, *args]


def parse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@dataclass
class AppResult:
    returncode: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]]

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]


def run_app(module: str, *args: str, timeout: float = 30) -> AppResult:
    done = subprocess.run(app_command(module, *args), capture_output=True, text=True, timeout=timeout)
    return AppResult(done.returncode, done.stdout, done.stderr, parse_events(done.stdout))


class Server:
    """A server app as a child process; stdout/stderr go to files so it never blocks on a pipe."""

    def __init__(self, module: str, *args: str, folder: Path) -> None:
        self.folder = folder
        self.out_path = folder / f"{module}-{os.getpid()}-{time.monotonic_ns()}.out"
        self.err_path = self.out_path.with_suffix(".err")
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(app_command(module, *args), stdout=out, stderr=err)
        self.listening = self._wait_listening()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return int(self.listening["port"])

    def raw_stdout(self) -> str:
        return self.out_path.read_text()

    def events(self) -> list[dict[str, Any]]:
        return parse_events(self.raw_stdout())

    def _wait_listening(self, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.raw_stdout().splitlines():
                if '"event": "listening"' in line:
                    return dict(json.loads(line))
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        self.stop()
        raise AssertionError(
            f"no listening event; stdout: {self.raw_stdout()!r}; stderr: {self.err_path.read_text()!r}"
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def echo_once(family: int, address: Any, payload: bytes = b"ping", timeout: float = 10) -> bytes:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(payload)
        data = b""
        while len(data) < len(payload):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads line")


def children(pid: int) -> dict[int, str]:
    """Child pid -> state letter (Z: zombie) of the processes whose parent is ``pid``."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found[int(entry)] = fields[0]
    return found


def wait_until(check: Any, timeout: float = 5, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return bool(check())
