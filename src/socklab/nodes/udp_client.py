"""``udp-client HOST PORT``: send datagrams, wait for each echo, count what came back.

The socket is connect()ed, which for UDP only fixes the peer: nothing is sent, but the
kernel then reports the peer's ICMP errors (a closed port gives ECONNREFUSED).
Exit 0 when every datagram came back, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time
from typing import Optional

from socklab.nodes.addresses import format_address, resolve_endpoints
from socklab.nodes.arguments import (
    FAMILIES,
    add_family_option,
    app_parser,
    port_number,
    positive_float,
)
from socklab.nodes.echo import preview
from socklab.nodes.events import EventLog
from socklab.nodes.receiving import receive_before
from socklab.nodes.udp_server import MAX_DATAGRAM

APP = "udp-client"


def build_parser() -> argparse.ArgumentParser:
    parser = app_parser(APP, "UDP client: send datagrams, count the echoes.")
    parser.add_argument("host", metavar="HOST", help="name or address of the server (unix: a path)")
    parser.add_argument(
        "port", metavar="PORT", type=port_number, nargs="?", help="server port (1..65535)"
    )
    parser.add_argument("--count", type=int, default=1, help="datagrams to send")
    parser.add_argument("--message", default="hello", help="text of each datagram (a #N is added)")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=1.0,
        help="seconds to wait for each echo before counting it lost",
    )
    add_family_option(parser, default=None)
    return parser


def wait_for_echo(sock: socket.socket, payload: bytes, deadline: float) -> Optional[bytes]:
    """The echo of ``payload``, or None at the deadline; late echoes of earlier ones are skipped."""
    while True:
        got = receive_before(sock, MAX_DATAGRAM, deadline)
        if got is None:
            return None
        data, _source = got
        if data == payload:
            return data


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    log = EventLog(APP, human=args.human)
    family = FAMILIES[args.family] if args.family else None
    if args.port is None and family != socket.AF_UNIX:
        log.failure("PORT is required (only --family unix takes a path alone)")
        return 2
    try:
        endpoint = resolve_endpoints(args.host, args.port, family, socket.SOCK_DGRAM)[0]
    except (OSError, IndexError) as exc:
        log.error(exc, target=args.host, action="getaddrinfo")
        return 1
    peer = format_address(endpoint.address)
    sock = socket.socket(endpoint.family, socket.SOCK_DGRAM)
    own_dir = None
    sent = received = 0
    refused = False
    try:
        if endpoint.family == socket.AF_UNIX:  # the server answers to our address: we need one
            own_dir = tempfile.mkdtemp(prefix="socklab-udp-client-")
            sock.bind(os.path.join(own_dir, "client.sock"))
        sock.connect(endpoint.address)
        log.emit(
            "connected",
            peer=peer,
            local=format_address(sock.getsockname()),
            text=f"datagrams go to {peer} from {format_address(sock.getsockname())}",
        )
        for seq in range(1, args.count + 1):
            payload = f"{args.message} #{seq}".encode()
            started = time.monotonic()
            sock.send(payload)
            sent += 1
            log.emit("sent", peer=peer, seq=seq, bytes=len(payload), data=preview(payload))
            echo = wait_for_echo(sock, payload, started + args.timeout)
            if echo is None:
                log.emit("lost", peer=peer, seq=seq, timeout_s=args.timeout)
                continue
            received += 1
            rtt = round((time.monotonic() - started) * 1000, 3)
            log.emit("received", peer=peer, seq=seq, bytes=len(echo), rtt_ms=rtt)
    except OSError as exc:
        refused = True
        log.error(exc, target=peer, action="send/recv")
    finally:
        sock.close()
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)
    lost = sent - received
    log.emit(
        "summary",
        peer=peer,
        sent=sent,
        received=received,
        lost=lost,
        text=f"{peer}: {sent} sent, {received} received, {lost} lost",
    )
    return 0 if not refused and received == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
