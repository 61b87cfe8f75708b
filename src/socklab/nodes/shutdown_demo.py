"""``shutdown``: close() vs shutdown(): the half-close.

The client sends its request and calls ``shutdown(SHUT_WR)``: its FIN tells the server
"no more from me". The server reads the request, then EOF, and still answers over the
same connection; the client reads the answer, then EOF. Writing after SHUT_WR fails
with EPIPE, and after ``shutdown(SHUT_RD)`` reads return EOF at once.
"""

from __future__ import annotations

import socket
import sys
import time
from typing import Optional

from socklab.nodes.arguments import app_parser
from socklab.nodes.errnos import describe_error, error_fields
from socklab.nodes.events import EventLog
from socklab.nodes.loopback import tcp_pair
from socklab.nodes.receiving import read_to_eof

APP = "shutdown"


def main(argv: Optional[list[str]] = None) -> int:
    args = app_parser(APP, "shutdown(SHUT_WR): the peer reads EOF and still sends.").parse_args(
        argv
    )
    log = EventLog(APP, human=args.human)
    listener, client, server = tcp_pair()
    with listener, client, server:
        client.settimeout(5)
        server.settimeout(5)
        client.sendall(b"request")
        client.shutdown(socket.SHUT_WR)
        log.emit(
            "shutdown",
            role="client",
            how="SHUT_WR",
            text="client: send(b'request'), shutdown(SHUT_WR): FIN sent, reading still open",
        )
        request = read_to_eof(server)
        log.emit(
            "eof",
            role="server",
            data=request.decode(),
            text=f"server: read {request!r}, then recv() -> b'' (EOF: the client sends no more)",
        )
        server.sendall(b"answer after your EOF")
        log.emit(
            "sent",
            role="server",
            data="answer after your EOF",
            text="server: still sends on the half-closed connection",
        )
        server.close()
        answer = read_to_eof(client)
        log.emit(
            "received",
            role="client",
            data=answer.decode(),
            text=f"client: read {answer!r}, then EOF when the server closed",
        )
        try:
            client.send(b"too late")
            pipe = "no error"
        except OSError as exc:
            pipe = str(error_fields(exc)["errno"])
            log.emit(
                "error",
                role="client",
                call="send after SHUT_WR",
                message=describe_error(exc),
                **error_fields(exc),
                text=f"client: send() after SHUT_WR -> {describe_error(exc)}",
            )
    listener, client, server = tcp_pair()
    with listener, client, server:
        client.settimeout(5)
        client.shutdown(socket.SHUT_RD)
        after_rd = client.recv(4096)
        log.emit(
            "shutdown",
            role="client",
            how="SHUT_RD",
            data=after_rd.decode(),
            text=f"client: shutdown(SHUT_RD), then recv() -> {after_rd!r} at once, no waiting",
        )
        server.sendall(b"late")
        time.sleep(0.05)
        late = client.recv(4096)
        log.emit(
            "received",
            role="client",
            how="SHUT_RD",
            data=late.decode(),
            text=f"client: data the peer sends afterwards -> {late!r} "
            "(Linux still queues it: SHUT_RD only stops the waiting)",
        )
    ok = (
        request == b"request"
        and answer == b"answer after your EOF"
        and pipe == "EPIPE"
        and after_rd == b""
    )
    log.emit("done", ok=ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
