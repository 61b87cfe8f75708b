"""``udp-server --port P``: a datagram echo server.

No connection, no accept(): one socket, recvfrom() gives each datagram and who sent
it, sendto() answers that address. Each datagram is one message: boundaries are kept.
Dual-stack like tcp-server unless ``--family`` or ``--host`` says otherwise.
UNIX datagram clients must bind a path of their own to get an answer.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from typing import Any, Optional

from socklab.nodes.addresses import family_name, format_address
from socklab.nodes.arguments import app_parser, bind_port, positive_float
from socklab.nodes.echo import preview
from socklab.nodes.events import EventLog
from socklab.nodes.tcp_server import (
    StopServer,
    add_bind_options,
    address_missing,
    close_server_socket,
    install_stop_handlers,
    open_server_socket,
)

APP = "udp-server"
MAX_DATAGRAM = 65535


def build_parser() -> argparse.ArgumentParser:
    parser = app_parser(APP, "UDP echo server.")
    parser.add_argument("--port", type=bind_port, help="port to listen on (0: any free port)")
    parser.add_argument(
        "--delay",
        type=positive_float,
        default=0.0,
        help="seconds of simulated work before each reply",
    )
    add_bind_options(parser)
    return parser


def serve(sock: socket.socket, log: EventLog, delay: float) -> None:
    while True:
        try:
            data, address = sock.recvfrom(MAX_DATAGRAM)
        except OSError as exc:  # e.g. an ICMP error queued for this socket: report, go on
            log.error(exc, action="recvfrom")
            continue
        peer = format_address(address)
        log.emit("received", peer=peer, bytes=len(data), data=preview(data))
        if not address:
            log.failure("an unbound UNIX datagram client cannot be answered", peer=peer)
            continue
        if delay:
            time.sleep(delay)
        try:
            sock.sendto(data, address)
        except OSError as exc:
            log.error(exc, target=peer, action="sendto")
            continue
        log.emit("sent", peer=peer, bytes=len(data))


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    log = EventLog(APP, human=args.human)
    if address_missing(args, log):
        return 2
    # before bind(): a stop that comes as soon as the socket is bound is a clean stop
    install_stop_handlers()
    sock: Optional[socket.socket] = None
    try:
        opened = open_server_socket(args, socket.SOCK_DGRAM, log)
        if opened is None:
            return 1
        sock, dual = opened
        bound = sock.getsockname()
        fields: dict[str, Any] = {
            "proto": "udp",
            "family": family_name(sock.family),
            "address": format_address(bound),
            "dual_stack": dual,
            "delay": args.delay,
        }
        if sock.family != socket.AF_UNIX:
            fields["port"] = bound[1]
        log.emit("listening", text=f"listening on {fields['address']} (udp, delay {args.delay}s)", **fields)
        serve(sock, log, args.delay)
    except (StopServer, KeyboardInterrupt) as stop:
        log.emit("stopped", reason=str(stop) or "interrupt")
    finally:
        if sock is not None:
            close_server_socket(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
