"""``shutdown``: close() vs shutdown(): the half-close.

The client sends its request and calls ``shutdown(SHUT_WR)``: its FIN tells the server
"no more from me". The server reads the request, then EOF, and still answers over the
same connection; the client reads the answer, then EOF. Writing after SHUT_WR fails
with EPIPE, and after ``shutdown(SHUT_RD)`` reads return EOF at once.

``--listen`` / ``--connect HOST`` run it between two nodes, one connection per way of
shutting down: SHUT_WR (the server answers after the client's EOF), SHUT_RD (the client
reads EOF at once, yet data the server sends later is still queued: Linux sends nothing
for SHUT_RD, the peer cannot tell) and SHUT_RDWR (both at once: EOF, and EPIPE on send).
"""

from __future__ import annotations

import socket
import sys
import time
from typing import Optional

from socklab.nodes import across
from socklab.nodes.arguments import app_parser
from socklab.nodes.errnos import describe_error, error_fields
from socklab.nodes.events import EventLog
from socklab.nodes.loopback import tcp_pair
from socklab.nodes.receiving import read_to_eof

APP = "shutdown"
PORT = 6001
ANSWER = b"answer after your EOF"


def read_line(sock: socket.socket) -> str:
    """One line, byte by byte (nothing after it is read)."""
    line = bytearray()
    while not line.endswith(b"\n"):
        data = sock.recv(1)
        if not data:
            break
        line += data
    return line.decode().strip()


def server_half(conn: socket.socket, peer: str, log: EventLog) -> None:
    """What the client's first line asks: WR, RD or RDWR."""
    conn.settimeout(10)
    how = read_line(conn)
    if how == "RD":
        time.sleep(0.3)  # the client has shut down its reading side by now
        conn.sendall(b"late")
        log.emit(
            "sent",
            peer=peer,
            how=how,
            data="late",
            text=f"server: sent b'late' to {peer} after its SHUT_RD (nothing told the server about it)",
        )
    request = read_to_eof(conn)
    log.emit(
        "eof",
        peer=peer,
        how=how,
        data=request.decode(),
        text=f"server: read {request!r}, then recv() -> b'' (EOF: {peer} sends no more)",
    )
    if how == "WR":
        conn.sendall(ANSWER)
        log.emit(
            "sent",
            peer=peer,
            how=how,
            after_eof=True,
            data=ANSWER.decode(),
            text=f"server: still sends to {peer} on the half-closed connection",
        )


def send_after(sock: socket.socket, how: str, log: EventLog) -> str:
    """A send() after our own shutdown of the writing side: the errno name (EPIPE)."""
    try:
        sock.send(b"too late")
    except OSError as exc:
        log.emit(
            "error",
            role="client",
            how=how,
            call=f"send after {how}",
            message=describe_error(exc),
            **error_fields(exc),
            text=f"client: send() after {how} -> {describe_error(exc)}",
        )
        return str(error_fields(exc)["errno"])
    return "no error"


def client_half(host: str, port: int, timeout: float, log: EventLog) -> bool:
    sock = across.connect(host, port, timeout, log)
    with sock:
        sock.sendall(b"WR\nrequest")
        sock.shutdown(socket.SHUT_WR)
        log.emit(
            "shutdown",
            role="client",
            how="SHUT_WR",
            text="client: send(b'request'), shutdown(SHUT_WR): FIN sent, reading still open",
        )
        answer = read_to_eof(sock)
        log.emit(
            "received",
            role="client",
            how="SHUT_WR",
            data=answer.decode(),
            text=f"client: read {answer!r} after its own FIN, then EOF",
        )
        wr_pipe = send_after(sock, "SHUT_WR", log)
    sock = across.connect(host, port, timeout, log)
    with sock:
        sock.sendall(b"RD\n")
        sock.shutdown(socket.SHUT_RD)
        at_once = sock.recv(4096)
        log.emit(
            "shutdown",
            role="client",
            how="SHUT_RD",
            data=at_once.decode(),
            text=f"client: shutdown(SHUT_RD), then recv() -> {at_once!r} at once, no waiting",
        )
        time.sleep(1.2)  # the server sends 0.3 s after our first line
        late = sock.recv(4096)
        log.emit(
            "received",
            role="client",
            how="SHUT_RD",
            data=late.decode(),
            text=f"client: what the server sent afterwards -> {late!r} (Linux still queues "
            "it: SHUT_RD only stops the waiting)",
        )
        sock.shutdown(socket.SHUT_WR)
    sock = across.connect(host, port, timeout, log)
    with sock:
        sock.sendall(b"RDWR\nbye")
        sock.shutdown(socket.SHUT_RDWR)
        after = sock.recv(4096)
        log.emit(
            "shutdown",
            role="client",
            how="SHUT_RDWR",
            data=after.decode(),
            text=f"client: shutdown(SHUT_RDWR): recv() -> {after!r}, and sending is over too",
        )
        rdwr_pipe = send_after(sock, "SHUT_RDWR", log)
    ok = (
        answer == ANSWER
        and wr_pipe == "EPIPE"
        and at_once == b""
        and late == b"late"
        and after == b""
        and rdwr_pipe == "EPIPE"
    )
    log.emit("done", ok=ok)
    return ok


def main(argv: Optional[list[str]] = None) -> int:
    parser = app_parser(APP, "shutdown(SHUT_WR): the peer reads EOF and still sends.")
    across.add_role_options(parser, PORT)
    args = parser.parse_args(argv)
    log = EventLog(APP, human=args.human)
    if args.listen:
        return across.serve(args.port, server_half, log)
    if args.connect:
        try:
            return 0 if client_half(args.connect, args.port, args.timeout, log) else 1
        except OSError as exc:
            log.error(exc, target=f"{args.connect}:{args.port}", action="shutdown demo")
            return 1
    return loopback(log)


def loopback(log: EventLog) -> int:
    """Both halves in this process, over 127.0.0.1."""
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
    ok = request == b"request" and answer == b"answer after your EOF" and pipe == "EPIPE" and after_rd == b""
    log.emit("done", ok=ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
