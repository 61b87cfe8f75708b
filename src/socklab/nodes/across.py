"""The two-node mode of the demos: ``DEMO --listen`` in one node, ``DEMO --connect HOST``
in another, so what the notes show over loopback happens between two hosts.

The listening half is a long-running server (a start command, or ``socklab-start``): it
prints ``listening`` and serves each connection in a thread, until stopped. The connecting
half does the demo's client side against it and exits 0 when the demo's point held.
Without ``--listen`` or ``--connect`` a demo runs both halves in one process over loopback.
"""

from __future__ import annotations

import argparse
import socket
import threading
from typing import Callable, Optional

from socklab.nodes.addresses import format_address, getaddrinfo
from socklab.nodes.arguments import bind_port, positive_float
from socklab.nodes.events import EventLog, resolver_retry
from socklab.nodes.tcp_server import StopServer, install_stop_handlers

Handler = Callable[[socket.socket, str, EventLog], None]


def add_role_options(parser: argparse.ArgumentParser, port: int) -> None:
    role = parser.add_mutually_exclusive_group()
    role.add_argument("--listen", action="store_true", help="the server half, in this node")
    role.add_argument("--connect", metavar="HOST", help="the client half, against HOST")
    parser.add_argument("--port", type=bind_port, default=port, help=f"TCP port (default {port})")
    parser.add_argument(
        "--timeout", type=positive_float, default=5.0, help="seconds for each wait (settimeout)"
    )


def serve(
    port: int, handle: Handler, log: EventLog, setup: Optional[Callable[[socket.socket], None]] = None
) -> int:
    """Listen on ``port`` (IPv4) and run ``handle(conn, peer, log)`` per connection in a
    thread until SIGTERM; ``setup`` sees the listening socket before listen()."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if setup is not None:
            setup(listener)
        listener.bind(("0.0.0.0", port))
        listener.listen(16)
    except OSError as exc:
        log.error(exc, target=f"0.0.0.0:{port}", action="bind/listen")
        listener.close()
        return 1
    install_stop_handlers()
    bound = listener.getsockname()[1]
    log.emit(
        "listening", proto="tcp", port=bound, address=f"0.0.0.0:{bound}", text=f"listening on 0.0.0.0:{bound}"
    )

    def run(conn: socket.socket, peer: str) -> None:
        try:
            handle(conn, peer, log)
        except OSError as exc:
            log.error(exc, target=peer, action="serve")
        finally:
            conn.close()

    try:
        while True:
            conn, address = listener.accept()
            peer = format_address(address)
            log.emit("accepted", peer=peer, local=format_address(conn.getsockname()))
            threading.Thread(target=run, args=(conn, peer), daemon=True).start()
    except (StopServer, KeyboardInterrupt) as stop:
        log.emit("stopped", reason=str(stop) or "interrupt")
    finally:
        listener.close()
    return 0


def connect(
    host: str,
    port: int,
    timeout: float,
    log: EventLog,
    setup: Optional[Callable[[socket.socket], None]] = None,
) -> socket.socket:
    """A TCP connection to ``host:port`` (IPv4), logged; ``setup`` sees the socket before
    connect()."""
    address = getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM, resolver_retry(host, log))[0][4]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if setup is not None:
            setup(sock)
        sock.settimeout(timeout)
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    log.emit(
        "connected",
        peer=format_address(sock.getpeername()),
        local=format_address(sock.getsockname()),
        host=host,
    )
    return sock
