"""Reading from a socket: until EOF, exactly N bytes, or one packet before a deadline."""

from __future__ import annotations

import socket
import time
from typing import Any, Optional

from socklab.nodes.echo import BUFSIZE


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes (or shuts down) its side."""
    chunks: list[bytes] = []
    while True:
        data = sock.recv(4096)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    """``size`` bytes of a stream, or fewer if the peer closes first."""
    chunks = bytearray()
    while len(chunks) < size:
        data = sock.recv(min(BUFSIZE, size - len(chunks)))
        if not data:
            break
        chunks += data
    return bytes(chunks)


def receive_before(sock: socket.socket, size: int, deadline: float) -> "Optional[tuple[bytes, Any]]":
    """One ``recvfrom(size)`` that gives up at ``deadline`` (time.monotonic()): None then."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    sock.settimeout(remaining)
    try:
        return sock.recvfrom(size)
    except socket.timeout:
        return None
