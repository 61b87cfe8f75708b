"""``udp-client HOST PORT``: send datagrams, wait for each echo, count what came back.

The socket is connect()ed, which for UDP only fixes the peer: nothing is sent, but the
kernel then reports the peer's ICMP errors (a closed port gives ECONNREFUSED).
A name with several addresses (IPv6 and IPv4 on a dual-stack network) is tried address by
address: when the first datagram to one is refused or gets no echo, a quiet ``retry``
event records it and the next address is tried. Exit 0 when every datagram came back,
1 otherwise.
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
from socklab.nodes.errnos import describe_error, error_fields
from socklab.nodes.events import EventLog, resolver_retry
from socklab.nodes.receiving import receive_before
from socklab.nodes.udp_server import MAX_DATAGRAM

APP = "udp-client"


def build_parser() -> argparse.ArgumentParser:
    parser = app_parser(APP, "UDP client: send datagrams, count the echoes.")
    parser.add_argument("host", metavar="HOST", help="name or address of the server (unix: a path)")
    parser.add_argument("port", metavar="PORT", type=port_number, nargs="?", help="server port (1..65535)")
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


class Tally:
    """Datagrams sent to and echoed by one address."""

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0


def send_one(
    sock: socket.socket, args: argparse.Namespace, seq: int, peer: str, log: EventLog, tally: Tally
) -> bool:
    """Send datagram ``seq`` and wait for its echo: True when it came back (OSError raised)."""
    payload = f"{args.message} #{seq}".encode()
    started = time.monotonic()
    sock.send(payload)
    tally.sent += 1
    log.emit("sent", peer=peer, seq=seq, bytes=len(payload), data=preview(payload))
    echo = wait_for_echo(sock, payload, started + args.timeout)
    if echo is None:
        log.emit("lost", peer=peer, seq=seq, timeout_s=args.timeout)
        return False
    tally.received += 1
    rtt = round((time.monotonic() - started) * 1000, 3)
    log.emit("received", peer=peer, seq=seq, bytes=len(echo), rtt_ms=rtt)
    return True


def talk(
    sock: socket.socket, args: argparse.Namespace, peer: str, log: EventLog, probe: bool
) -> "tuple[Tally, Optional[OSError], bool]":
    """Send every datagram to one address: (tally, the error that stopped it, abandoned).
    With ``probe`` (more addresses to try) a first datagram refused or lost abandons it."""
    tally = Tally()
    try:
        for seq in range(1, args.count + 1):
            echoed = send_one(sock, args, seq, peer, log, tally)
            if probe and seq == 1 and not echoed:
                return tally, None, True
    except OSError as exc:
        return tally, exc, probe and tally.received == 0
    return tally, None, False


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    log = EventLog(APP, human=args.human)
    family = FAMILIES[args.family] if args.family else None
    if args.port is None and family != socket.AF_UNIX:
        log.failure("PORT is required (only --family unix takes a path alone)")
        return 2
    try:
        endpoints = resolve_endpoints(
            args.host, args.port, family, socket.SOCK_DGRAM, resolver_retry(args.host, log)
        )
    except OSError as exc:
        log.error(exc, target=args.host, action="getaddrinfo")
        return 1
    if not endpoints:
        log.failure(f"{args.host}: no address to send to")
        return 1
    peers = [format_address(e.address) for e in endpoints]
    if family != socket.AF_UNIX:
        log.emit(
            "resolved",
            host=args.host,
            addresses=peers,
            text=f"getaddrinfo({args.host}) -> {', '.join(peers)}",
        )
    for index, endpoint in enumerate(endpoints):
        peer = peers[index]
        more = index < len(endpoints) - 1
        sock = socket.socket(endpoint.family, socket.SOCK_DGRAM)
        own_dir = None
        try:
            if endpoint.family == socket.AF_UNIX:  # the server answers to our address
                own_dir = tempfile.mkdtemp(prefix="socklab-udp-client-")
                sock.bind(os.path.join(own_dir, "client.sock"))
            sock.connect(endpoint.address)
            local = format_address(sock.getsockname())
            log.emit("connected", peer=peer, local=local, text=f"datagrams go to {peer} from {local}")
            tally, error, abandoned = talk(sock, args, peer, log, probe=more)
        except OSError as exc:
            tally, error, abandoned = Tally(), exc, more
        finally:
            sock.close()
            if own_dir:
                shutil.rmtree(own_dir, ignore_errors=True)
        if abandoned:
            fields = error_fields(error) if error is not None else {}
            reason = (
                describe_error(error, target=peer)
                if error is not None
                else (f"no echo from {peer} within {args.timeout:g} s")
            )
            log.emit("retry", quiet=True, peer=peer, next=peers[index + 1], message=reason, **fields)
            continue
        if error is not None:
            log.error(error, target=peer, action="send/recv")
        lost = tally.sent - tally.received
        log.emit(
            "summary",
            peer=peer,
            sent=tally.sent,
            received=tally.received,
            lost=lost,
            text=f"{peer}: {tally.sent} sent, {tally.received} received, {lost} lost",
        )
        return 0 if error is None and tally.received == args.count else 1
    return 1


if __name__ == "__main__":
    sys.exit(main())
