"""Connected socket pairs over loopback, for the demos and the errno reproductions."""

from __future__ import annotations

import socket
from typing import Any


def tcp_pair(
    family: int = socket.AF_INET, address: Any = None, reuseaddr: bool = False
) -> "tuple[socket.socket, socket.socket, socket.socket]":
    """(listener, client, accepted server side) over 127.0.0.1 (or ::1, or a UNIX path)."""
    if address is None:
        address = ("::1", 0) if family == socket.AF_INET6 else ("127.0.0.1", 0)
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        if reuseaddr:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(8)
        client = socket.socket(family, socket.SOCK_STREAM)
        client.connect(listener.getsockname())
    except OSError:
        listener.close()
        raise
    server, _ = listener.accept()
    return listener, client, server


def free_port(family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port nobody listens on right now (bound, then released)."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family, kind) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
