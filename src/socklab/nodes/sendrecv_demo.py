"""``sendrecv``: send/recv on a connection vs sendto/recvfrom without one, and partial sends.

``--listen`` (a TCP and a UDP socket on one port) in one node, ``--connect HOST`` in another:

- DGRAM: an unconnected UDP socket ``sendto(data, (host, port))``; the server's
  ``recvfrom()`` gives the data and the sender's address, and answers it with
  ``sendto()``; the client's ``recvfrom()`` gives the server's address. The port the
  server saw is the client's own (``getsockname()``: bound to 0.0.0.0 by the first
  ``sendto()``, the kernel picks the source address per datagram).
- STREAM: ``send()`` returns how many bytes the kernel took, which may be fewer than given:
  with a small SO_SNDBUF and a peer that does not read yet, one ``send()`` of 1 MiB
  with a timeout takes part of it; ``sendall()`` loops until all is sent. The server's
  ``recv()`` calls return the stream in pieces of their own size.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from typing import Optional

from socklab.nodes import across
from socklab.nodes.addresses import format_address
from socklab.nodes.arguments import app_parser
from socklab.nodes.events import EventLog

APP = "sendrecv"
PORT = 6007
BULK = 1 << 20
SNDBUF = 16384
HOLD = 1.0


def datagram_server(port: int, log: EventLog) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", port))
        while True:
            data, address = sock.recvfrom(4096)
            sender = format_address(address)
            log.emit(
                "received",
                type="SOCK_DGRAM",
                call="recvfrom",
                peer=sender,
                data=data.decode(),
                text=f"server: recvfrom() -> ({data!r}, {sender})",
            )
            sock.sendto(json.dumps({"from": sender, "data": data.decode()}).encode(), address)
            log.emit(
                "sent",
                type="SOCK_DGRAM",
                call="sendto",
                peer=sender,
                text=f"server: sendto(answer, {sender})",
            )


def stream_server_half(conn: socket.socket, peer: str, log: EventLog) -> None:
    time.sleep(HOLD)  # not reading yet: the sender's buffers fill
    conn.settimeout(10)
    sizes = []
    while True:
        data = conn.recv(65536)
        if not data:
            break
        sizes.append(len(data))
    total = sum(sizes)
    log.emit(
        "received",
        type="SOCK_STREAM",
        call="recv",
        peer=peer,
        bytes=total,
        calls=len(sizes),
        largest=max(sizes, default=0),
        text=f"server: {total} bytes came in {len(sizes)} recv(65536) calls",
    )
    conn.sendall(json.dumps({"bytes": total, "calls": len(sizes)}).encode())


def datagrams(host: str, port: int, timeout: float, log: EventLog) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(b"hello", (host, port))
        mine = format_address(sock.getsockname())
        log.emit(
            "sent",
            type="SOCK_DGRAM",
            call="sendto",
            local=mine,
            text=f"client: sendto(b'hello', ({host!r}, {port})) from {mine} (bound by the first sendto)",
        )
        data, address = sock.recvfrom(4096)
    answer = json.loads(data)
    server = format_address(address)
    log.emit(
        "received",
        type="SOCK_DGRAM",
        call="recvfrom",
        peer=server,
        seen_as=answer["from"],
        text=f"client: recvfrom() -> (answer, {server}); the server saw us as {answer['from']}",
    )
    same_port = answer["from"].rsplit(":", 1)[1] == mine.rsplit(":", 1)[1]
    return bool(same_port and answer["data"] == "hello")


def partial_send(host: str, port: int, timeout: float, log: EventLog) -> bool:
    def small_buffer(sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)

    with across.connect(host, port, timeout, log, small_buffer) as sock:
        data = b"x" * BULK
        sock.settimeout(0.3)  # Python then does one send() call that takes what fits
        try:
            taken = sock.send(data)
        except socket.timeout:
            taken = 0
        log.emit(
            "sent",
            type="SOCK_STREAM",
            call="send",
            asked=BULK,
            bytes=taken,
            text=f"client: send() of {BULK} bytes returned {taken}: a partial send "
            "(the peer is not reading, the buffers are full)",
        )
        sock.settimeout(timeout + HOLD)
        sock.sendall(data[taken:])
        log.emit(
            "sent",
            type="SOCK_STREAM",
            call="sendall",
            bytes=BULK - taken,
            text=f"client: sendall() of the other {BULK - taken} bytes: it loops until everything is sent",
        )
        sock.shutdown(socket.SHUT_WR)
        report = json.loads(sock.recv(4096) or b"{}")
    log.emit(
        "received",
        type="SOCK_STREAM",
        server=report,
        text=f"client: the server received {report.get('bytes')} bytes in {report.get('calls')} recv() calls",
    )
    return 0 < taken < BULK and report.get("bytes") == BULK


def main(argv: Optional[list[str]] = None) -> int:
    parser = app_parser(APP, "send/recv vs sendto/recvfrom; partial sends.")
    across.add_role_options(parser, PORT)
    args = parser.parse_args(argv)
    log = EventLog(APP, human=args.human)
    if args.listen:
        threading.Thread(target=datagram_server, args=(args.port, log), daemon=True).start()
        return across.serve(args.port, stream_server_half, log)
    if not args.connect:
        parser.error("give --listen (the server half) or --connect HOST (the client half)")
    try:
        ok = datagrams(args.connect, args.port, args.timeout, log)
        ok = partial_send(args.connect, args.port, args.timeout, log) and ok
    except OSError as exc:
        log.error(exc, target=f"{args.connect}:{args.port}", action="sendrecv")
        return 1
    log.emit("done", ok=ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
