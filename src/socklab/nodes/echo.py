"""The echo of the blocking server modes: read, (work), reply, until the client closes."""

from __future__ import annotations

import socket
import struct
import time
from typing import NamedTuple, Optional

from socklab.nodes.events import EventLog

BUFSIZE = 65536
PREVIEW = 80


class Conduct(NamedTuple):
    """How a server treats each connection (tcp-server's options)."""

    delay: float = 0.0  # seconds of work before each reply
    close_after: Optional[int] = None  # close after this many echoes: the server closes first
    linger0: bool = False  # read one request, then close with SO_LINGER 0: RST, no answer
    silent: bool = False  # read, never answer


def preview(data: bytes) -> str:
    """The start of a payload as text, for events."""
    return data[:PREVIEW].decode("utf-8", "replace")


def serve_connection(conn: socket.socket, peer: str, log: EventLog, conduct: Conduct) -> None:
    """Echo until the client closes (blocking modes); always closes ``conn``.

    ``reason`` in the ``closed`` event says who ended it: ``eof`` (the client closed first),
    ``close_after`` (this server did, after its echoes), ``linger0`` (this server reset it)
    or ``error``; ``how`` is FIN or RST."""
    received = sent = echoes = 0
    reason = "eof"
    try:
        while True:
            data = conn.recv(BUFSIZE)
            if not data:
                break
            received += len(data)
            log.emit("received", peer=peer, bytes=len(data), data=preview(data))
            if conduct.linger0:
                reason = "linger0"
                break
            if conduct.silent:
                continue
            if conduct.delay:
                time.sleep(conduct.delay)
            conn.sendall(data)
            sent += len(data)
            echoes += 1
            last = conduct.close_after is not None and echoes >= conduct.close_after
            if last:  # the FIN right behind the reply, before the client can close its end
                conn.shutdown(socket.SHUT_WR)
            log.emit("sent", peer=peer, bytes=len(data))
            if last:
                reason = "close_after"
                break
    except OSError as exc:
        reason = "error"
        log.error(exc, target=peer, action="echo")
    finally:
        if reason == "linger0":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        log.emit(
            "closed",
            peer=peer,
            reason=reason,
            how="RST" if reason == "linger0" else "FIN",
            bytes_received=received,
            bytes_sent=sent,
        )
