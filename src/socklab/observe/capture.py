"""Packet capture in a node: tcpdump there, the pcap copied out, a summary per TCP connection."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from socklab.errors import LabError
from socklab.observe.pcap import Packet, TcpConversation, conversations, other_protocols, read_pcap
from socklab.orchestrator.engine_api import ExecResult, ExecStream

READY_TIMEOUT = 15.0
# `sh` only forwards the argv ("$@", never parsed) after printing its pid, so it can be stopped
_WRAP = ["sh", "-c", 'echo "$$"; exec "$@"', "sh"]


@dataclass
class CaptureResult:
    """The pcap written on the host and what it shows."""

    path: Path
    node: str
    iface: str
    packets: list[Packet]
    conversations: list[TcpConversation]
    other: dict[str, int] = field(default_factory=dict)
    tcpdump: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "file": str(self.path),
            "node": self.node,
            "iface": self.iface,
            "packets": len(self.packets),
            "connections": [c.as_dict() for c in self.conversations],
            "other": self.other,
            "tcpdump": self.tcpdump,
        }


def tcpdump_argv(path: str, iface: str, bpf: str, count: int | None, seconds: float | None) -> list[str]:
    """tcpdump writing ``path``, unbuffered (each packet written as it arrives, so none is lost
    when it is stopped), not promiscuous (no NET_ADMIN needed), as root."""
    argv = ["tcpdump", "-i", iface, "-p", "-n", "-U", "--immediate-mode", "-Z", "root", "-w", path]
    if count is not None:
        argv += ["-c", str(count)]
    if seconds is not None:
        argv = ["timeout", "-s", "INT", f"{seconds:g}", *argv]
    return argv + bpf.split()


class CaptureTarget(Protocol):
    """What a capture needs of a node: run commands in it, stream one, copy a file out."""

    @property
    def name(self) -> str: ...

    def exec(self, argv: list[str]) -> ExecResult: ...

    def exec_stream(self, argv: list[str]) -> ExecStream: ...

    def read_file(self, path: str) -> bytes: ...


def capture(
    node: CaptureTarget,
    out: Path,
    *,
    iface: str = "any",
    bpf: str = "",
    count: int | None = None,
    seconds: float | None = None,
    on_ready: Callable[[], None] | None = None,
    stop: threading.Event | None = None,
) -> CaptureResult:
    """Capture until ``count`` packets, ``seconds``, ``stop`` is set or Ctrl-C; ``on_ready``
    once tcpdump listens.

    The pcap is copied to ``out`` and removed from the node.
    """
    if (count is not None and count < 1) or (seconds is not None and seconds <= 0):
        raise LabError("--count and --seconds must be positive")
    remote = f"/tmp/socklab-capture-{uuid.uuid4().hex[:8]}.pcap"
    stream = node.exec_stream(_WRAP + tcpdump_argv(remote, iface, bpf, count, seconds))
    run = _Run(stream.chunks)
    if not run.ready.wait(READY_TIMEOUT) or not run.listening:
        run.done.wait(2)
        said = " ".join(run.stderr.strip().splitlines()[-2:]) or "no output"
        raise LabError(
            f"tcpdump did not start in node '{node.name}': {said}",
            "is tcpdump in the node's image? is the interface right (`ip link`)?",
        )
    if on_ready:
        on_ready()
    try:
        while not run.done.wait(0.2):
            if stop is not None and stop.is_set():
                node.exec(["kill", "-INT", run.pid])
                run.done.wait(10)
    except KeyboardInterrupt:
        node.exec(["kill", "-INT", run.pid])
        run.done.wait(10)
    for _ in range(50):  # the exec's end is reported just after its output ends
        code = stream.exit_code()
        if code is not None:
            break
        time.sleep(0.05)
    if code not in (0, 124, 130):  # 124: `timeout` stopped it; 130: Ctrl-C
        raise LabError(f"tcpdump failed in node '{node.name}' (exit {code}): {run.stderr.strip()[-300:]}")
    data = node.read_file(remote)
    node.exec(["rm", "-f", remote])
    out.write_bytes(data)
    packets = read_pcap(data)
    return CaptureResult(
        out,
        node.name,
        iface,
        packets,
        conversations(packets),
        other_protocols(packets),
        _summary_line(run.stderr),
    )


def _summary_line(stderr: str) -> str:
    found = re.findall(r"^\d+ packets? captured.*$", stderr, re.M)
    return found[-1] if found else ""


class _Run:
    """Reads a streamed exec: the wrapper's pid line, then tcpdump's stderr."""

    def __init__(self, chunks: Iterator[tuple[bytes | None, bytes | None]]) -> None:
        self.pid = ""
        self.stderr = ""
        self.listening = False
        self.ready = threading.Event()
        self.done = threading.Event()
        threading.Thread(target=self._pump, args=(chunks,), daemon=True).start()

    def _pump(self, chunks: Iterator[tuple[bytes | None, bytes | None]]) -> None:
        out = ""
        try:
            for stdout, stderr in chunks:
                out += (stdout or b"").decode("utf-8", "replace")
                if not self.pid and "\n" in out:
                    self.pid = out.split("\n", 1)[0].strip()
                self.stderr += (stderr or b"").decode("utf-8", "replace")
                if "listening on" in self.stderr and self.pid:
                    self.listening = True
                    self.ready.set()
        finally:
            self.ready.set()
            self.done.set()
