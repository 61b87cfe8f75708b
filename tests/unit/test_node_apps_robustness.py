"""200 bad clients against every server mode: no crash, no leaked fds, threads or zombies."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from .test_node_apps_support import (
    Server,
    children,
    echo_once,
    fd_count,
    thread_count,
    wait_until,
)

MODES = ["iterative", "threaded", "forking", "selectors"]
BAD_CLIENTS = 200
FD_TOLERANCE = 2


def bad_client(port: int, kind: int) -> None:
    """0: connect and close; 1: send half a message and close; 2: send, then RST (linger 0)."""
    sock = socket.socket()
    try:
        sock.connect(("127.0.0.1", port))
        if kind == 1:
            sock.sendall(b"half a mess")
        elif kind == 2:
            sock.sendall(b"data then reset")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


# (mode, delay): with a delay, the selectors loop has timers pending for clients that are gone
CASES = [(mode, "0") for mode in MODES] + [("selectors", "0.05"), ("threaded", "0.05")]


def closes(server: Server) -> int:
    return sum(e["event"] == "closed" for e in server.events())


@pytest.mark.parametrize(("mode", "delay"), CASES)
def test_server_survives_200_bad_clients_without_leaks(tmp_path: Path, mode: str, delay: str) -> None:
    args = ("--port", "0", "--host", "127.0.0.1", "--mode", mode, "--delay", delay)
    with Server("tcp_server", *args, folder=tmp_path) as server:
        address = ("127.0.0.1", server.port)
        assert echo_once(socket.AF_INET, address) == b"ping"  # warm up: first thread, imports
        wait_until(lambda: sum(e["event"] == "closed" for e in server.events()) == 1)
        fds_before, threads_before = fd_count(server.pid), thread_count(server.pid)

        for index in range(BAD_CLIENTS):
            bad_client(server.port, index % 3)

        def settled() -> bool:
            return closes(server) == BAD_CLIENTS + 1 and fd_count(server.pid) <= fds_before + FD_TOLERANCE

        assert wait_until(settled, timeout=10), (fd_count(server.pid), fds_before)
        assert server.proc.poll() is None, "the server died"
        assert echo_once(socket.AF_INET, address, b"still alive") == b"still alive"
        # its close is logged once the server reads the EOF: before it is stopped
        assert wait_until(lambda: closes(server) == BAD_CLIENTS + 2, timeout=10)
        assert wait_until(lambda: thread_count(server.pid) <= threads_before, timeout=5)
        assert fd_count(server.pid) <= fds_before + FD_TOLERANCE
        if mode == "forking":
            assert wait_until(lambda: not children(server.pid), timeout=5), children(server.pid)
    events = server.events()
    accepted = sum(e["event"] == "accepted" for e in events)
    assert accepted == BAD_CLIENTS + 2
    resets = [e for e in events if e["event"] == "error" and e.get("errno") == "ECONNRESET"]
    assert resets, "the linger-0 clients should show up as ECONNRESET errors"
    assert events[-1]["event"] == "stopped"
