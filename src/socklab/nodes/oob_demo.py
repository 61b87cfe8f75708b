"""``oob``: out-of-band (urgent) data with MSG_OOB.

The client sends ordinary bytes, then one byte with ``send(b"!", MSG_OOB)``. The server
learns of it through select()'s exceptional set and reads it apart with
``recv(1, MSG_OOB)``: the urgent byte never appears in the ordinary stream. With
SO_OOBINLINE the same byte stays in the stream, in order. ``--listen`` / ``--connect
HOST`` send the urgent byte from one node to another.
"""

from __future__ import annotations

import json
import select
import socket
import sys
from typing import Optional

from socklab.nodes import across
from socklab.nodes.arguments import app_parser
from socklab.nodes.events import EventLog
from socklab.nodes.loopback import tcp_pair
from socklab.nodes.receiving import read_to_eof, receive_exactly

APP = "oob"
PORT = 6004
ORDINARY = b"ordinary data"


def server_half(conn: socket.socket, peer: str, log: EventLog) -> None:
    conn.settimeout(10)
    _, _, exceptional = select.select([], [], [conn], 10)
    log.emit(
        "select",
        peer=peer,
        exceptional=bool(exceptional),
        text=f"server: select() lists the socket as exceptional: {bool(exceptional)}",
    )
    urgent = conn.recv(1, socket.MSG_OOB)
    log.emit(
        "received",
        role="server",
        peer=peer,
        flags="MSG_OOB",
        data=urgent.decode(),
        text=f"server: recv(1, MSG_OOB) -> {urgent!r}",
    )
    ordinary = receive_exactly(conn, len(ORDINARY))
    log.emit(
        "received",
        role="server",
        peer=peer,
        data=ordinary.decode(),
        text=f"server: recv() -> {ordinary!r} (the urgent byte is not in the stream)",
    )
    report = {"exceptional": bool(exceptional), "urgent": urgent.decode(), "ordinary": ordinary.decode()}
    conn.sendall(json.dumps(report).encode())
    conn.shutdown(socket.SHUT_WR)
    read_to_eof(conn)  # closing with the urgent byte still queued would send RST


def client_half(host: str, port: int, timeout: float, log: EventLog) -> bool:
    with across.connect(host, port, timeout, log) as sock:
        sock.sendall(ORDINARY)
        sock.send(b"!", socket.MSG_OOB)
        log.emit(
            "sent",
            role="client",
            data=ORDINARY.decode(),
            oob="!",
            text="client: send(b'ordinary data'), then send(b'!', MSG_OOB)",
        )
        sock.shutdown(socket.SHUT_WR)
        report = json.loads(read_to_eof(sock) or b"{}")
    ok = bool(report == {"exceptional": True, "urgent": "!", "ordinary": ORDINARY.decode()})
    log.emit(
        "done",
        ok=ok,
        server=report,
        text=f"client: the server saw {report}" + ("" if ok else ": not what was sent"),
    )
    return ok


def main(argv: Optional[list[str]] = None) -> int:
    parser = app_parser(APP, "MSG_OOB: urgent data beside the ordinary stream.")
    across.add_role_options(parser, PORT)
    args = parser.parse_args(argv)
    log = EventLog(APP, human=args.human)
    if args.listen:
        return across.serve(args.port, server_half, log)
    if args.connect:
        try:
            return 0 if client_half(args.connect, args.port, args.timeout, log) else 1
        except OSError as exc:
            log.error(exc, target=f"{args.connect}:{args.port}", action="oob")
            return 1
    listener, client, server = tcp_pair()
    server.settimeout(5)
    with listener, client, server:
        client.sendall(b"ordinary data")
        client.send(b"!", socket.MSG_OOB)
        log.emit(
            "sent",
            role="client",
            data="ordinary data",
            oob="!",
            text="client: send(b'ordinary data'), then send(b'!', MSG_OOB)",
        )
        _, _, exceptional = select.select([], [], [server], 5)
        log.emit(
            "select",
            exceptional=bool(exceptional),
            text=f"server: select() lists the socket as exceptional: {bool(exceptional)}",
        )
        urgent = server.recv(1, socket.MSG_OOB)
        log.emit(
            "received",
            role="server",
            flags="MSG_OOB",
            data=urgent.decode(),
            text=f"server: recv(1, MSG_OOB) -> {urgent!r}",
        )
        ordinary = receive_exactly(server, len(b"ordinary data"))
        log.emit(
            "received",
            role="server",
            data=ordinary.decode(),
            text=f"server: recv() -> {ordinary!r} (the urgent byte is not in the stream)",
        )

    # a fresh connection: on Linux an urgent byte already read stays queued and would show inline
    listener, client, server = tcp_pair()
    server.settimeout(5)
    with listener, client, server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
        client.sendall(b"abc")
        client.send(b"!", socket.MSG_OOB)
        inline = receive_exactly(server, 4)
        log.emit(
            "received",
            role="server",
            oobinline=True,
            data=inline.decode(),
            text=f"server with SO_OOBINLINE: recv() -> {inline!r} (urgent byte inline, in order)",
        )
    ok = bool(exceptional) and urgent == b"!" and ordinary == b"ordinary data" and inline == b"abc!"
    log.emit("done", ok=ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
