"""``oob``: out-of-band (urgent) data with MSG_OOB.

The client sends ordinary bytes, then one byte with ``send(b"!", MSG_OOB)``. The server
learns of it through select()'s exceptional set and reads it apart with
``recv(1, MSG_OOB)``: the urgent byte never appears in the ordinary stream. With
SO_OOBINLINE the same byte stays in the stream, in order.
"""

from __future__ import annotations

import select
import socket
import sys
from typing import Optional

from socklab.nodes.arguments import app_parser
from socklab.nodes.events import EventLog
from socklab.nodes.loopback import tcp_pair
from socklab.nodes.receiving import receive_exactly

APP = "oob"


def main(argv: Optional[list[str]] = None) -> int:
    args = app_parser(APP, "MSG_OOB: urgent data beside the ordinary stream.").parse_args(argv)
    log = EventLog(APP, human=args.human)
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
