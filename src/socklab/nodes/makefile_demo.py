"""``makefile``: a socket used as a file (``s.makefile('rwb', 0)``, as in the notes).

A small server thread reads lines with ``for line in file`` and writes them back in
upper case; the client writes and reads lines through its own file object.
``--listen`` / ``--connect HOST`` put the two file objects in two nodes.
"""

from __future__ import annotations

import socket
import sys
import threading
from typing import Optional

from socklab.nodes import across
from socklab.nodes.addresses import format_address
from socklab.nodes.arguments import app_parser
from socklab.nodes.events import EventLog

APP = "makefile"
PORT = 6003
LINES = ("first line", "second line", "bye")


def upper_case_lines(conn: socket.socket, peer: str, log: EventLog) -> None:
    with conn.makefile("rw", encoding="utf-8", newline="\n") as stream:
        for line in stream:  # a file: iterate over lines until EOF
            log.emit(
                "received",
                role="server",
                peer=peer,
                data=line.rstrip("\n"),
                text=f"server: for line in file -> {line.rstrip()!r}, file.write() upper",
            )
            stream.write(line.upper())
            stream.flush()


def upper_case_server(listener: socket.socket, log: EventLog) -> None:
    conn, address = listener.accept()
    with conn:
        upper_case_lines(conn, format_address(address), log)


def talk_through_files(client: socket.socket, log: EventLog) -> bool:
    raw = client.makefile("rwb", 0)  # unbuffered binary file: each write() is one send()
    log.emit(
        "created",
        mode="rwb",
        buffering=0,
        type=type(raw).__name__,
        text=f"s.makefile('rwb', 0) -> {type(raw).__name__} over {format_address(client.getpeername())}",
    )
    ok = True
    for line in LINES:
        raw.write(line.encode() + b"\n")
        log.emit("sent", role="client", data=line, text=f"client file.write({line!r})")
        answer = raw.readline().decode().rstrip("\n")
        log.emit("received", role="client", data=answer, text=f"client file.readline() -> {answer!r}")
        ok = ok and answer == line.upper()
    raw.close()
    return ok


def main(argv: Optional[list[str]] = None) -> int:
    parser = app_parser(APP, "makefile(): file-like I/O over a TCP socket.")
    across.add_role_options(parser, PORT)
    args = parser.parse_args(argv)
    log = EventLog(APP, human=args.human)
    if args.listen:
        return across.serve(args.port, upper_case_lines, log)
    if args.connect:
        try:
            with across.connect(args.connect, args.port, args.timeout, log) as sock:
                ok = talk_through_files(sock, log)
        except OSError as exc:
            log.error(exc, target=f"{args.connect}:{args.port}", action="makefile")
            return 1
    else:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        server = threading.Thread(target=upper_case_server, args=(listener, log), daemon=True)
        server.start()
        client = socket.create_connection(listener.getsockname(), timeout=5)
        ok = talk_through_files(client, log)
        client.close()
        server.join(5)
        listener.close()
    log.emit("done", ok=ok, text="lines written and read through file objects" if ok else "mismatch")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
