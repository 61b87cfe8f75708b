"""``tcp-client HOST PORT``: the notes' client steps, each logged.

Resolve HOST (``resolved``), create the socket (``created``), connect (``connected``),
send ``--count`` messages, wait for each echo and check it, close (``--wait-eof``: only
once the server has closed its end, as a client of a server that ends the talk).
``--parallel N`` holds N such conversations at once, from N threads started together. A name with several
addresses is tried address by address: a failed attempt is a quiet ``retry`` event (in the
JSON events, not on the terminal) until the last one fails. ``--shutdown wr`` sends everything, half-closes
(``shutdown(SHUT_WR)``) and reads the echoes until the server's EOF. ``--linger0``
closes with SO_LINGER 0, which sends RST instead of FIN. Any failure prints its errno
(``ECONNREFUSED (111): connection refused by HOST:PORT``) and exits 1.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import threading
import time
from typing import Optional

from socklab.nodes.addresses import (
    FAMILY_CONSTANTS,
    family_name,
    format_address,
    resolve_endpoints,
    target_text,
)
from socklab.nodes.arguments import (
    FAMILIES,
    add_family_option,
    app_parser,
    port_number,
    positive_float,
)
from socklab.nodes.echo import BUFSIZE, preview
from socklab.nodes.errnos import describe_error, error_fields
from socklab.nodes.events import EventLog, resolver_retry
from socklab.nodes.receiving import read_to_eof, receive_exactly

APP = "tcp-client"


class EchoMismatch(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = app_parser(APP, "TCP client: connect, send messages, check the echoes.")
    parser.add_argument("host", metavar="HOST", help="name or address of the server (unix: a path)")
    parser.add_argument("port", metavar="PORT", type=port_number, nargs="?", help="server port (1..65535)")
    parser.add_argument("--count", type=int, default=1, help="messages to send")
    parser.add_argument("--message", default="hello", help="text of each message")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        help="seconds for connect and for each echo (settimeout)",
    )
    parser.add_argument(
        "--shutdown",
        choices=["wr"],
        help="wr: send all, shutdown(SHUT_WR), then read the echoes until EOF",
    )
    parser.add_argument(
        "--wait-eof",
        action="store_true",
        help="after the echoes, wait for the server to close first (its EOF), then close",
    )
    parser.add_argument("--linger0", action="store_true", help="close with SO_LINGER 0 (RST)")
    parser.add_argument(
        "--parallel",
        type=int,
        default=1,
        metavar="N",
        help="N connections at once (threads), all started together",
    )
    add_family_option(parser, default=None)
    return parser


def connect(args: argparse.Namespace, log: EventLog) -> Optional[socket.socket]:
    """Resolve HOST and try each address in turn; a failure before the last is a quiet
    ``retry``, the last one an ``error``."""
    family = FAMILIES[args.family] if args.family else None
    target = target_text(args.host, args.port, family)
    try:
        endpoints = resolve_endpoints(
            args.host, args.port, family, socket.SOCK_STREAM, resolver_retry(args.host, log)
        )
    except OSError as exc:
        log.error(exc, target=args.host, action="getaddrinfo")
        return None
    addresses = [format_address(e.address) for e in endpoints]
    if family != socket.AF_UNIX:
        log.emit(
            "resolved",
            host=args.host,
            addresses=addresses,
            text=f"getaddrinfo({args.host}) -> {', '.join(addresses) or 'nothing'}",
        )
    for index, endpoint in enumerate(endpoints):
        peer = addresses[index]
        sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
        log.emit(
            "created",
            family=family_name(endpoint.family),
            type="SOCK_STREAM",
            fd=sock.fileno(),
            text=f"socket({FAMILY_CONSTANTS[endpoint.family]}, SOCK_STREAM) -> fd {sock.fileno()}",
        )
        sock.settimeout(args.timeout or None)
        started = time.monotonic()
        try:
            sock.connect(endpoint.address)
        except OSError as exc:
            sock.close()
            if index < len(endpoints) - 1:  # not fatal yet: the name has more addresses to try
                fields = error_fields(exc)
                fields["message"] = describe_error(exc, target=peer)
                log.emit(
                    "retry",
                    quiet=True,
                    peer=peer,
                    host=args.host,
                    next=addresses[index + 1],
                    **fields,
                )
            else:
                log.error(exc, target=peer, action="connect", host=args.host, timeout_s=args.timeout)
            continue
        log.emit(
            "connected",
            peer=peer,
            local=format_address(sock.getsockname()),
            host=args.host,
            connect_ms=round((time.monotonic() - started) * 1000, 3),
        )
        return sock
    if not endpoints:
        log.failure(f"{target}: no address to connect to")
    return None


def exchange(sock: socket.socket, args: argparse.Namespace, peer: str, log: EventLog) -> None:
    """Send each message and wait for its echo (raises OSError or EchoMismatch)."""
    payload = args.message.encode()
    for seq in range(1, args.count + 1):
        started = time.monotonic()
        sock.sendall(payload)
        log.emit("sent", peer=peer, seq=seq, bytes=len(payload), data=preview(payload))
        echo = receive_exactly(sock, len(payload))
        rtt = round((time.monotonic() - started) * 1000, 3)
        log.emit("received", peer=peer, seq=seq, bytes=len(echo), data=preview(echo), rtt_ms=rtt)
        if echo != payload:
            what = "the server closed" if len(echo) < len(payload) else "a different reply"
            raise EchoMismatch(f"echo {seq} from {peer}: {what} ({echo!r} != {payload!r})")


def exchange_half_closed(sock: socket.socket, args: argparse.Namespace, peer: str, log: EventLog) -> None:
    """Send everything, shutdown(SHUT_WR), read until the server's EOF."""
    payload = args.message.encode()
    for seq in range(1, args.count + 1):
        sock.sendall(payload)
        log.emit("sent", peer=peer, seq=seq, bytes=len(payload), data=preview(payload))
    sock.shutdown(socket.SHUT_WR)
    log.emit(
        "shutdown",
        peer=peer,
        how="SHUT_WR",
        text=f"shutdown(SHUT_WR) towards {peer}: FIN sent, still reading",
    )
    echoed = bytearray()
    while True:
        data = sock.recv(BUFSIZE)
        if not data:
            log.emit("eof", peer=peer, bytes=len(echoed))
            break
        echoed += data
        log.emit("received", peer=peer, bytes=len(data), data=preview(bytes(data)))
    expected = payload * args.count
    if bytes(echoed) != expected:
        raise EchoMismatch(f"echo from {peer}: got {len(echoed)} bytes, expected {len(expected)}")


def wait_for_eof(sock: socket.socket, peer: str, log: EventLog) -> None:
    """Read until the server closes its end (anything else it sends is unexpected)."""
    extra = read_to_eof(sock)
    log.emit("eof", peer=peer, bytes=len(extra), text=f"EOF from {peer}: the server closed first")
    if extra:
        raise EchoMismatch(f"{peer} sent {len(extra)} unexpected bytes before closing")


def close(sock: socket.socket, linger0: bool, peer: str, log: EventLog) -> None:
    how = "FIN"
    if linger0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        how = "RST"
    sock.close()
    log.emit("closed", peer=peer, how=how)


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    log = EventLog(APP, human=args.human)
    if args.port is None and args.family != "unix":
        log.failure("PORT is required (only --family unix takes a path alone)")
        return 2
    if args.parallel < 1:
        log.failure(f"--parallel {args.parallel}: give a positive number")
        return 2
    if args.parallel == 1:
        return converse(args, log)
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(converse(args, log))) for _ in range(args.parallel)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return max(results, default=1)


def converse(args: argparse.Namespace, log: EventLog) -> int:
    """One connection: connect, exchange, close; 0 when every echo came back."""
    sock = connect(args, log)
    if sock is None:
        return 1
    peer = format_address(sock.getpeername())
    status = 0
    try:
        if args.shutdown == "wr":
            exchange_half_closed(sock, args, peer, log)
        else:
            exchange(sock, args, peer, log)
            if args.wait_eof:
                wait_for_eof(sock, peer, log)
    except EchoMismatch as exc:
        log.failure(str(exc), peer=peer)
        status = 1
    except OSError as exc:
        log.error(exc, target=peer, action="echo")
        status = 1
    finally:
        close(sock, args.linger0, peer, log)
    return status


if __name__ == "__main__":
    sys.exit(main())
