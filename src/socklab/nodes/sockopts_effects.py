"""``sockopts --listen`` / ``sockopts --connect HOST``: socket options between two nodes,
shown on both ends and their effect measured.

- ``options``: the client's values (default, set, read back); the server's accepted socket
  shows what it inherited from its listening socket (SO_KEEPALIVE, TCP_NODELAY, SO_RCVBUF).
- ``nagle``: two small writes then a read, 20 times, with Nagle's algorithm on and off
  (TCP_NODELAY): on, the second write waits for the ACK of the first, which the peer
  delays (~40 ms); off, it leaves at once.
- ``buffers``: a non-blocking sender writes to a peer that does not read until EAGAIN:
  how much the kernel took depends on SO_SNDBUF (4096, doubled to 8192, vs the default).
- ``keepalive``: one connection idle for 3.5 s with SO_KEEPALIVE and TCP_KEEPIDLE/
  TCP_KEEPINTVL of 1 s (``--off``: without): the probes are seen in a capture.
- ``linger``: close() with SO_LINGER {on, 0}: RST instead of FIN, the peer's recv() fails
  with ECONNRESET.

The client's first line tells the server what to do: OPTIONS, NAGLE, SINK or IDLE.
"""

from __future__ import annotations

import json
import select
import socket
import statistics
import struct
import time
from typing import Any

from socklab.nodes import across
from socklab.nodes.events import EventLog
from socklab.nodes.receiving import read_to_eof

TESTS = ("options", "nagle", "buffers", "keepalive", "linger")
DEFAULT_TESTS = ("options", "nagle", "buffers", "linger")
ROUNDS = 20
SMALL_SNDBUF = 4096
SINK_SECONDS = 2.0
FULL_WAIT = 0.3
"""seconds without room in the send buffer after which it counts as full (the peer's
receive window closed as well)"""
IDLE_SECONDS = 3.5

# what the listening socket sets, which each accepted socket inherits
LISTENER_OPTIONS = (
    ("SOL_SOCKET", socket.SOL_SOCKET, "SO_KEEPALIVE", socket.SO_KEEPALIVE, 1),
    ("IPPROTO_TCP", socket.IPPROTO_TCP, "TCP_NODELAY", socket.TCP_NODELAY, 1),
    ("SOL_SOCKET", socket.SOL_SOCKET, "SO_RCVBUF", socket.SO_RCVBUF, 65536),
)


def setup_listener(listener: socket.socket) -> None:
    for _level_name, level, _name, option, value in LISTENER_OPTIONS:
        listener.setsockopt(level, option, value)


def option_values(sock: socket.socket) -> "dict[str, int]":
    return {name: sock.getsockopt(level, option) for _, level, name, option, _ in LISTENER_OPTIONS}


def read_line(sock: socket.socket) -> str:
    line = bytearray()
    while not line.endswith(b"\n"):
        data = sock.recv(1)
        if not data:
            break
        line += data
    return line.decode().strip()


def server_half(conn: socket.socket, peer: str, log: EventLog) -> None:
    command = read_line(conn)
    if command == "OPTIONS":
        values = option_values(conn)
        log.emit(
            "option",
            role="server",
            peer=peer,
            inherited=values,
            text=f"server: the accepted socket inherited {values} from the listener",
        )
        conn.sendall(json.dumps(values).encode() + b"\n")
    elif command == "NAGLE":
        while True:
            got = b""
            while len(got) < 2:
                data = conn.recv(2 - len(got))
                if not data:
                    return
                got += data
            conn.sendall(b"ok")
    elif command == "SINK":
        time.sleep(SINK_SECONDS)  # not reading: the client's writes fill the buffers
        total = len(read_to_eof(conn))
        log.emit(
            "received",
            role="server",
            peer=peer,
            bytes=total,
            text=f"server: read {total} bytes once it started reading",
        )
    elif command == "IDLE":
        read_to_eof(conn)  # a reset (the client's SO_LINGER 0) raises ECONNRESET here
        log.emit("eof", role="server", peer=peer)


def show_client_options(sock: socket.socket, log: EventLog) -> None:
    for level_name, level, name, option, value in (
        ("SOL_SOCKET", socket.SOL_SOCKET, "SO_RCVBUF", socket.SO_RCVBUF, 65536),
        ("SOL_SOCKET", socket.SOL_SOCKET, "SO_SNDBUF", socket.SO_SNDBUF, 65536),
        ("SOL_SOCKET", socket.SOL_SOCKET, "SO_KEEPALIVE", socket.SO_KEEPALIVE, 1),
        ("SOL_SOCKET", socket.SOL_SOCKET, "SO_REUSEADDR", socket.SO_REUSEADDR, 1),
        ("IPPROTO_TCP", socket.IPPROTO_TCP, "TCP_NODELAY", socket.TCP_NODELAY, 1),
    ):
        before = sock.getsockopt(level, option)
        sock.setsockopt(level, option, value)
        after = sock.getsockopt(level, option)
        log.emit(
            "option",
            role="client",
            level=level_name,
            option=name,
            default=before,
            set=value,
            read_back=after,
            text=f"client: {level_name}.{name}: default {before}, set {value}, read back {after}",
        )


def test_options(host: str, port: int, timeout: float, log: EventLog) -> bool:
    with across.connect(host, port, timeout, log) as sock:
        show_client_options(sock, log)
        sock.sendall(b"OPTIONS\n")
        inherited = json.loads(read_line(sock) or "{}")
    log.emit(
        "option",
        role="server",
        inherited=inherited,
        text=f"client: the server's accepted socket says {inherited}",
    )
    return bool(inherited.get("SO_KEEPALIVE") and inherited.get("TCP_NODELAY"))


def round_trips(sock: socket.socket) -> "list[float]":
    times = []
    for _ in range(ROUNDS):
        started = time.monotonic()
        sock.send(b"a")
        sock.send(b"b")
        got = b""
        while len(got) < 2:
            data = sock.recv(2 - len(got))
            if not data:
                raise ConnectionError("the server closed")
            got += data
        times.append((time.monotonic() - started) * 1000)
    return times


def test_nagle(host: str, port: int, timeout: float, log: EventLog) -> bool:
    medians = {}
    for nodelay in (0, 1):

        def setup(sock: socket.socket, on: int = nodelay) -> None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, on)

        with across.connect(host, port, timeout, log, setup) as sock:
            sock.sendall(b"NAGLE\n")
            medians[nodelay] = round(statistics.median(round_trips(sock)), 3)
        words = (
            "Nagle off: each write leaves at once"
            if nodelay
            else ("Nagle on: the 2nd write waits for the ACK of the 1st, which the peer delays")
        )
        log.emit(
            "nagle",
            tcp_nodelay=nodelay,
            median_ms=medians[nodelay],
            rounds=ROUNDS,
            text=f"client: TCP_NODELAY={nodelay}: write, write, read takes "
            f"{medians[nodelay]} ms (median of {ROUNDS}); {words}",
        )
    ratio = medians[0] / max(medians[1], 0.001)
    log.emit("nagle", ratio=round(ratio, 1), text=f"client: {ratio:.0f} times slower with Nagle")
    return ratio >= 3


def test_buffers(host: str, port: int, timeout: float, log: EventLog) -> bool:
    taken = {}
    for label, sndbuf in (("small", SMALL_SNDBUF), ("default", None)):

        def setup(sock: socket.socket, size: Any = sndbuf) -> None:
            if size is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

        with across.connect(host, port, timeout, log, setup) as sock:
            sock.sendall(b"SINK\n")
            sock.setblocking(False)
            total = 0
            chunk = b"x" * 65536
            started = time.monotonic()
            while time.monotonic() - started < SINK_SECONDS / 2:
                try:
                    total += sock.send(chunk)
                except BlockingIOError:  # full for now; full for good once the peer's
                    # window is closed too: no room comes within FULL_WAIT
                    if not select.select([], [sock], [], FULL_WAIT)[1]:
                        break
            value = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            taken[label] = total
            log.emit(
                "buffered",
                sndbuf=value,
                bytes=total,
                asked=sndbuf,
                text=f"client: SO_SNDBUF {value} ({label}): send() took {total} bytes "
                "until EAGAIN for good (both buffers full), the peer not reading",
            )
            sock.setblocking(True)
    return taken["small"] < taken["default"]


def test_keepalive(host: str, port: int, timeout: float, log: EventLog, on: bool = True) -> bool:
    def setup(sock: socket.socket) -> None:
        if on:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)

    with across.connect(host, port, timeout, log, setup) as sock:
        sock.sendall(b"IDLE\n")
        log.emit(
            "idle",
            keepalive=on,
            seconds=IDLE_SECONDS,
            text=f"client: idle {IDLE_SECONDS} s, SO_KEEPALIVE "
            + (
                "on (TCP_KEEPIDLE 1 s, TCP_KEEPINTVL 1 s): the kernel probes the peer"
                if on
                else "off: nothing is sent"
            ),
        )
        time.sleep(IDLE_SECONDS)
    return True


def test_linger(host: str, port: int, timeout: float, log: EventLog) -> bool:
    sock = across.connect(host, port, timeout, log)
    sock.sendall(b"IDLE\n")
    time.sleep(0.2)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    log.emit("closed", how="RST", text="client: close() with SO_LINGER {on, 0 s}: RST, not FIN")
    return True


def client_half(host: str, port: int, timeout: float, tests: "list[str]", off: bool, log: EventLog) -> bool:
    results = {}
    for name in tests:
        if name == "keepalive":
            results[name] = test_keepalive(host, port, timeout, log, on=not off)
        else:
            results[name] = globals()[f"test_{name}"](host, port, timeout, log)
    ok = all(results.values())
    log.emit("done", ok=ok, results=results)
    return ok
