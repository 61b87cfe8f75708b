"""``names``: getsockname() and getpeername() on both ends of a connection.

For IPv4, IPv6 and a UNIX socket: the client's local address is the server's peer
and the other way round; a listening socket has a name but no peer (ENOTCONN).
``--listen`` / ``--connect HOST`` do it between two nodes: the server tells the client
what its getsockname()/getpeername() say, and the client checks they mirror its own.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
from typing import Any, Optional

from socklab.nodes import across
from socklab.nodes.addresses import format_address
from socklab.nodes.arguments import app_parser
from socklab.nodes.errnos import describe_error
from socklab.nodes.events import EventLog
from socklab.nodes.loopback import tcp_pair
from socklab.nodes.receiving import read_to_eof

APP = "names"
PORT = 6002


def server_half(conn: socket.socket, peer: str, log: EventLog) -> None:
    names = {"sockname": format_address(conn.getsockname()), "peername": format_address(conn.getpeername())}
    log.emit(
        "names",
        role="server",
        sockname=names["sockname"],
        peername=names["peername"],
        text=f"server: getsockname() = {names['sockname']}, getpeername() = {names['peername']}",
    )
    conn.sendall(json.dumps(names).encode())


def client_half(host: str, port: int, timeout: float, log: EventLog) -> bool:
    with across.connect(host, port, timeout, log) as sock:
        mine = {
            "sockname": format_address(sock.getsockname()),
            "peername": format_address(sock.getpeername()),
        }
        log.emit(
            "names",
            role="client",
            sockname=mine["sockname"],
            peername=mine["peername"],
            text=f"client: getsockname() = {mine['sockname']}, getpeername() = {mine['peername']}",
        )
        theirs = json.loads(read_to_eof(sock) or b"{}")
    ok = bool(mine["sockname"] == theirs.get("peername") and mine["peername"] == theirs.get("sockname"))
    log.emit(
        "done",
        ok=ok,
        server=theirs,
        text=f"client: the server says getsockname() = {theirs.get('sockname')}, "
        f"getpeername() = {theirs.get('peername')}: "
        + ("each end's name is the other end's peer" if ok else "the names disagree"),
    )
    return ok


def show_family(label: str, family: int, address: Any, log: EventLog) -> bool:
    try:
        listener, client, server = tcp_pair(family, address)
    except OSError as exc:
        log.emit(
            "skipped",
            family=label,
            reason=describe_error(exc),
            text=f"{label}: not available here ({describe_error(exc)})",
        )
        return True
    with listener, client, server:
        names = {
            "listener": (format_address(listener.getsockname()), None),
            "client": (format_address(client.getsockname()), format_address(client.getpeername())),
            "server": (format_address(server.getsockname()), format_address(server.getpeername())),
        }
        for role, (local, peer) in names.items():
            log.emit(
                "names",
                family=label,
                role=role,
                sockname=local,
                peername=peer,
                text=f"{label} {role}: getsockname() = {local}, getpeername() = {peer or '-'}",
            )
        try:
            listener.getpeername()
            listener_peer = "has a peer"
        except OSError as exc:
            listener_peer = describe_error(exc)
        log.emit(
            "names",
            family=label,
            role="listener",
            call="getpeername",
            result=listener_peer,
            text=f"{label} listener: getpeername() -> {listener_peer}",
        )
    client_local, client_peer = names["client"]
    server_local, server_peer = names["server"]
    # an unnamed UNIX client has no address: its server sees an unnamed peer
    return client_local == server_peer and client_peer == server_local


def main(argv: Optional[list[str]] = None) -> int:
    parser = app_parser(APP, "getsockname/getpeername on both ends.")
    across.add_role_options(parser, PORT)
    args = parser.parse_args(argv)
    log = EventLog(APP, human=args.human)
    if args.listen:
        return across.serve(args.port, server_half, log)
    if args.connect:
        try:
            return 0 if client_half(args.connect, args.port, args.timeout, log) else 1
        except OSError as exc:
            log.error(exc, target=f"{args.connect}:{args.port}", action="names")
            return 1
    folder = tempfile.mkdtemp(prefix="socklab-names-")
    try:
        results = [
            show_family("inet", socket.AF_INET, ("127.0.0.1", 0), log),
            show_family("inet6", socket.AF_INET6, ("::1", 0), log),
            show_family("unix", socket.AF_UNIX, os.path.join(folder, "server.sock"), log),
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ok = all(results)
    log.emit("done", ok=ok, text="each end's name is the other end's peer" if ok else "names disagree")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
