"""``socklab-netdelay``: delay, jitter and loss without netem, through NFQUEUE.

Runs in a long-lived helper container that joins a node's network namespace (with
NET_ADMIN). ``socklab-netctl`` sends what a network of the node sends to NFQUEUE queues:
``-j NFQUEUE --queue-num N`` with the comment ``socklab delay net=NET ms=D jitter=J``
(every packet), and with ``socklab loss net=NET`` (the share of packets the iptables
``statistic`` match picked). This program reads those rules every 0.2 s and binds each
queue; it accepts a delayed packet D ± J ms (uniform) after it came, and drops a lost
one at once (silently: a DROP rule on the output path would fail the sender's send()
with EPERM instead). A queue whose rule is gone has its packets let go at once and is
unbound; a new delay comes on a new queue number, so ``netctl`` knows the change is
served once the queue is bound. The rules are read by a thread of their own, so that held
packets are let go on time while ``iptables-save`` runs. SIGTERM lets every held packet go,
then exits. On a kernel with netem there is nothing to do: it exits 0.

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import random
import select
import shlex
import signal
import subprocess
import sys
import threading
import time

from socklab.nodes import nfqueue

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional, Tuple

POLL = 0.2


def queue_rules(save: str) -> Dict[int, Optional[Tuple[float, float]]]:
    """``{queue: (delay_ms, jitter_ms)}`` of socklab's NFQUEUE rules in ``iptables-save``;
    ``None`` for a loss queue (its packets are dropped)."""
    out: Dict[int, Optional[Tuple[float, float]]] = {}
    for line in save.splitlines():
        if "NFQUEUE" not in line or not ("socklab delay" in line or "socklab loss" in line):
            continue
        words = shlex.split(line)
        try:
            queue = int(words[words.index("--queue-num") + 1])
            comment = words[words.index("--comment") + 1].split()
        except (ValueError, IndexError):
            continue
        fields = dict(w.partition("=")[::2] for w in comment[2:])
        out[queue] = (
            None if comment[1] == "loss" else (float(fields.get("ms", 0)), float(fields.get("jitter", 0)))
        )
    return out


def hold_time(delay_ms: float, jitter_ms: float, rand: random.Random) -> float:
    """Seconds to hold one packet: ``delay ± jitter`` (uniform), never below zero."""
    return max(0.0, delay_ms + rand.uniform(-jitter_ms, jitter_ms)) / 1000.0


def _rules() -> Dict[int, Optional[Tuple[float, float]]]:
    found: Dict[int, Optional[Tuple[float, float]]] = {}
    for tool in ("iptables-save", "ip6tables-save"):
        proc = subprocess.run(
            [tool, "-t", "filter"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True
        )
        found.update(queue_rules(proc.stdout))
    return found


def _has_netem() -> bool:
    argv = ["tc", "qdisc", "add", "dev", "lo", "root", "handle", "5ad:", "netem", "delay", "1ms"]
    if subprocess.run(argv, stderr=subprocess.DEVNULL).returncode != 0:
        return False
    subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], stderr=subprocess.DEVNULL)
    return True


class Delayer:
    """Packets held per queue, let go in time order."""

    def __init__(self, queue: nfqueue.Queue, seed: Optional[int] = None) -> None:
        self.queue = queue
        self.config: Dict[int, Optional[Tuple[float, float]]] = {}
        self.held: List[Tuple[float, int, int]] = []  # (due, queue, packet id)
        self.rand = random.Random(seed)

    def configure(self, config: Dict[int, Optional[Tuple[float, float]]]) -> None:
        for gone in sorted(set(self.config) - set(config)):
            self.release(gone)
            with contextlib.suppress(OSError):
                self.queue.unbind(gone)
            self.log("unbound", queue=gone)
        for new in sorted(set(config) - set(self.config)):
            self.queue.bind(new)
            what = config[new]
            if what is None:
                self.log("bound", queue=new, drops="the packets the statistic match picked")
            else:
                self.log("bound", queue=new, delay_ms=what[0], jitter_ms=what[1])
        self.config = config

    def receive(self, now: float) -> None:
        for q, packet in self.queue.packets():
            what = self.config.get(q, (0.0, 0.0))
            if what is None:
                with contextlib.suppress(OSError):
                    self.queue.drop(q, packet)
                continue
            heapq.heappush(self.held, (now + hold_time(what[0], what[1], self.rand), q, packet))

    def due(self, now: float) -> None:
        while self.held and self.held[0][0] <= now:
            _, q, packet = heapq.heappop(self.held)
            self._accept(q, packet)

    def release(self, only: Optional[int] = None) -> None:
        keep = []
        for item in self.held:
            if only is None or item[1] == only:
                self._accept(item[1], item[2])
            else:
                keep.append(item)
        heapq.heapify(keep)
        self.held = keep

    def _accept(self, q: int, packet: int) -> None:
        with contextlib.suppress(OSError):
            self.queue.accept(q, packet)

    @staticmethod
    def log(event: str, **fields: object) -> None:
        parts = " ".join("%s=%s" % kv for kv in fields.items())
        sys.stdout.write("socklab-netdelay: %s %s\n" % (event, parts))
        sys.stdout.flush()


class RuleReader(threading.Thread):
    """Reads socklab's NFQUEUE rules every ``POLL`` s in the background and wakes the packet
    loop (through a pipe) when they change: ``iptables-save`` takes up to 0.1 s on a loaded
    host, and held packets must not wait for it to be let go."""

    def __init__(self, read: Optional[Callable[[], Dict[int, Optional[Tuple[float, float]]]]] = None) -> None:
        super().__init__(name="rules", daemon=True)
        self.read = read or _rules
        self.wake_fd, self._signal_fd = os.pipe()
        self.latest: Optional[Dict[int, Optional[Tuple[float, float]]]] = None
        self.error: Optional[OSError] = None
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        last: Optional[Dict[int, Optional[Tuple[float, float]]]] = None
        while not self.stopping.is_set():
            try:
                rules = self.read()
            except OSError as exc:
                self.error = exc
                os.write(self._signal_fd, b"!")
                return
            if rules != last:
                with self._lock:
                    self.latest = last = rules
                os.write(self._signal_fd, b".")
            self.stopping.wait(POLL)

    def fileno(self) -> int:
        return self.wake_fd

    def take(self) -> Optional[Dict[int, Optional[Tuple[float, float]]]]:
        """The rules read since the last take (None: no change)."""
        os.read(self.wake_fd, 4096)
        with self._lock:
            latest, self.latest = self.latest, None
        return latest


def serve(delayer: Delayer, rules: RuleReader, stopping: List[int]) -> int:
    """Hold and let go packets until ``stopping``; the rules reader reconfigures the delayer
    between packets. 0, or 3 when the rules cannot be read."""
    while not stopping:
        wake = delayer.held[0][0] - time.monotonic() if delayer.held else POLL
        try:
            ready, _, _ = select.select(
                [delayer.queue.fileno(), rules.fileno()], [], [], min(POLL, max(0.0, wake))
            )
        except InterruptedError:
            continue
        if rules.fileno() in ready:
            if rules.error is not None:
                sys.stderr.write("socklab-netdelay: %s\n" % rules.error)
                return 3
            config = rules.take()
            if config is not None:
                delayer.configure(config)
        if delayer.queue.fileno() in ready or delayer.queue.pending:
            try:
                delayer.receive(time.monotonic())
            except OSError as exc:  # ENOBUFS: the kernel had more than the buffer holds
                Delayer.log("warning", error=exc)
        delayer.due(time.monotonic())
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    if _has_netem():
        Delayer.log("exiting", reason="the kernel has netem, which delays by itself")
        return 0
    try:
        queue = nfqueue.Queue()
    except OSError as exc:
        sys.stderr.write("socklab-netdelay: NFQUEUE unavailable (nfnetlink_queue): %s\n" % exc)
        return 3
    delayer = Delayer(queue)
    stopping: List[int] = []
    signal.signal(signal.SIGTERM, lambda sig, _frame: stopping.append(sig))
    rules = RuleReader()
    rules.start()
    code = serve(delayer, rules, stopping)
    rules.stopping.set()
    delayer.release()
    queue.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
