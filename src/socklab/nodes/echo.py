"""The echo of the blocking server modes: read, (work), reply, until the client closes."""

from __future__ import annotations

import socket
import time

from socklab.nodes.events import EventLog

BUFSIZE = 65536
PREVIEW = 80


def preview(data: bytes) -> str:
    """The start of a payload as text, for events."""
    return data[:PREVIEW].decode("utf-8", "replace")


def serve_connection(conn: socket.socket, peer: str, log: EventLog, delay: float) -> None:
    """Echo until the client closes (blocking modes); always closes ``conn``."""
    received = sent = 0
    reason = "eof"
    try:
        while True:
            data = conn.recv(BUFSIZE)
            if not data:
                break
            received += len(data)
            log.emit("received", peer=peer, bytes=len(data), data=preview(data))
            if delay:
                time.sleep(delay)
            conn.sendall(data)
            sent += len(data)
            log.emit("sent", peer=peer, bytes=len(data))
    except OSError as exc:
        reason = "error"
        log.error(exc, target=peer, action="echo")
    finally:
        conn.close()
        log.emit("closed", peer=peer, reason=reason, bytes_received=received, bytes_sent=sent)
