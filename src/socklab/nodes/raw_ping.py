"""``raw-ping HOST``: ICMP echo over a RAW socket, packets built by hand.

``socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)`` hands the program whole ICMP messages: it
writes the echo request (type 8, checksum, identifier, sequence) and reads every
ICMP packet the host receives, IP header included, keeping the replies (type 0) that
carry its identifier. Raw sockets need CAP_NET_RAW (root, or the node's NET_RAW
capability); without it socket() fails with EPERM and this says so.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import time
from typing import Optional

from socklab.nodes.arguments import app_parser, positive_float
from socklab.nodes.events import EventLog
from socklab.nodes.icmp import ECHO_REPLY, ECHO_REQUEST, echo_request
from socklab.nodes.receiving import receive_before

APP = "raw-ping"


def parse_reply(packet: bytes) -> "tuple[int, int, int, int, int]":
    """(type, code, identifier, sequence, ttl) of an IPv4 packet carrying ICMP."""
    header_length = (packet[0] & 0x0F) * 4
    ttl = packet[8]
    kind, code, _sum, ident, seq = struct.unpack("!BBHHH", packet[header_length : header_length + 8])
    return kind, code, ident, seq, ttl


def build_parser() -> argparse.ArgumentParser:
    parser = app_parser(APP, "ICMP echo over a RAW socket (needs CAP_NET_RAW).")
    parser.add_argument("host", metavar="HOST")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--timeout", type=positive_float, default=1.0, help="seconds per reply")
    parser.add_argument("--interval", type=positive_float, default=0.2, help="seconds between requests")
    return parser


def wait_reply(
    sock: socket.socket, ident: int, seq: int, deadline: float
) -> "Optional[tuple[str, int, int]]":
    """(source, ttl, bytes) of our echo reply, or None at the deadline."""
    while True:
        got = receive_before(sock, 65535, deadline)
        if got is None:
            return None
        packet, (source, _port) = got
        kind, _code, got_ident, got_seq, ttl = parse_reply(packet)
        # the socket sees every ICMP packet, our own requests too on loopback: keep our replies
        if kind == ECHO_REPLY and got_ident == ident and got_seq == seq:
            return source, ttl, len(packet)


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    log = EventLog(APP, human=args.human)
    try:
        target = socket.gethostbyname(args.host)
    except OSError as exc:
        log.error(exc, target=args.host, action="gethostbyname")
        return 1
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except PermissionError as exc:
        log.error(
            exc,
            target="socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)",
            action="socket",
            hint="raw sockets need CAP_NET_RAW: run as root or give the node NET_RAW",
        )
        return 1
    ident = os.getpid() & 0xFFFF
    received = 0
    log.emit(
        "created",
        type="SOCK_RAW",
        proto="IPPROTO_ICMP",
        peer=target,
        ident=ident,
        text=f"raw ICMP socket towards {args.host} ({target}), identifier {ident}",
    )
    with sock:
        for seq in range(1, args.count + 1):
            payload = struct.pack("!d", time.time()) + b"socklab raw-ping".ljust(48, b".")
            started = time.monotonic()
            sock.sendto(echo_request(ident, seq, payload), (target, 0))
            log.emit("sent", peer=target, seq=seq, icmp_type=ECHO_REQUEST, bytes=8 + len(payload))
            reply = wait_reply(sock, ident, seq, started + args.timeout)
            if reply is None:
                log.emit("lost", peer=target, seq=seq, timeout_s=args.timeout)
            else:
                received += 1
                source, ttl, size = reply
                rtt = round((time.monotonic() - started) * 1000, 3)
                log.emit(
                    "received",
                    peer=source,
                    seq=seq,
                    icmp_type=ECHO_REPLY,
                    ttl=ttl,
                    bytes=size,
                    rtt_ms=rtt,
                    text=f"{size} bytes from {source}: icmp_seq={seq} ttl={ttl} time={rtt} ms",
                )
            if seq < args.count:
                time.sleep(args.interval)
    lost = args.count - received
    log.emit(
        "summary",
        peer=target,
        sent=args.count,
        received=received,
        lost=lost,
        text=f"{target}: {args.count} sent, {received} received, {lost} lost",
    )
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
