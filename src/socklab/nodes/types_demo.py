"""``types``: what each socket type is, shown for real.

STREAM keeps no message boundaries (three send() calls, one recv() gets them all);
DGRAM keeps them (three sendto(), three recvfrom()). Then every family x type pair of
the notes is tried with socket(): which Linux creates, and the errno of each refusal
(SOCK_RDM: ESOCKTNOSUPPORT; SOCK_RAW without CAP_NET_RAW: EPERM).
``--listen`` / ``--connect HOST`` show the boundaries between two nodes: the client sends
three pieces over TCP (TCP_NODELAY: three segments on the wire) and three UDP datagrams;
the server reads the stream once after a pause (one read, three pieces merged) and each
datagram apart.
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
from socklab.nodes.errnos import describe_error, error_fields
from socklab.nodes.events import EventLog
from socklab.nodes.loopback import tcp_pair
from socklab.nodes.receiving import read_to_eof

APP = "types"
PORT = 6006
PIECES = (b"one", b"two", b"three")
FAMILIES = (("AF_INET", socket.AF_INET), ("AF_INET6", socket.AF_INET6), ("AF_UNIX", socket.AF_UNIX))
TYPES = (
    ("SOCK_STREAM", socket.SOCK_STREAM),
    ("SOCK_DGRAM", socket.SOCK_DGRAM),
    ("SOCK_RAW", socket.SOCK_RAW),
    ("SOCK_SEQPACKET", socket.SOCK_SEQPACKET),
    ("SOCK_RDM", socket.SOCK_RDM),
)
TYPE_NAMES: "dict[int, str]" = {number: name for name, number in TYPES}

# a raw socket names the protocol it carries: ICMP here (0 is refused with EPROTONOSUPPORT)
RAW_PROTOCOLS = {socket.AF_INET: socket.IPPROTO_ICMP, socket.AF_INET6: socket.IPPROTO_ICMPV6}


def stream_boundaries(log: EventLog) -> bool:
    listener, client, server = tcp_pair()
    with listener, client, server:
        for piece in PIECES:
            client.send(piece)
        log.emit(
            "sent",
            type="SOCK_STREAM",
            pieces=[p.decode() for p in PIECES],
            text=f"STREAM: 3 send() calls {[p.decode() for p in PIECES]}",
        )
        time.sleep(0.05)  # let all three arrive before the single read
        server.settimeout(5)
        got = server.recv(4096)
        log.emit(
            "received",
            type="SOCK_STREAM",
            data=got.decode(),
            reads=1,
            text=f"STREAM: one recv(4096) -> {got!r}: a byte stream, the boundaries are gone",
        )
    return got == b"".join(PIECES)


def datagram_boundaries(log: EventLog) -> bool:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        for piece in PIECES:
            sender.sendto(piece, receiver.getsockname())
        log.emit(
            "sent",
            type="SOCK_DGRAM",
            pieces=[p.decode() for p in PIECES],
            text=f"DGRAM: 3 sendto() calls {[p.decode() for p in PIECES]}",
        )
        got = [receiver.recvfrom(4096)[0] for _ in PIECES]
        log.emit(
            "received",
            type="SOCK_DGRAM",
            data=[g.decode() for g in got],
            reads=len(got),
            text=f"DGRAM: 3 recvfrom(4096) -> {got}: one message each, boundaries kept",
        )
    return got == list(PIECES)


def creation_table(log: EventLog) -> "dict[str, str]":
    """socket(family, type) for every pair: 'ok' or the errno name of the refusal."""
    table = {}
    for family_name, family in FAMILIES:
        for type_name, kind in TYPES:
            key = f"{family_name}/{type_name}"
            try:
                sock = socket.socket(
                    family, kind, RAW_PROTOCOLS.get(family, 0) if kind == socket.SOCK_RAW else 0
                )
            except OSError as exc:
                fields = error_fields(exc)
                table[key] = str(fields["errno"])
                log.emit(
                    "refused",
                    family=family_name,
                    type=type_name,
                    **fields,
                    text=f"socket({family_name}, {type_name}) -> {describe_error(exc)}",
                )
                continue
            actual = sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
            sock.close()
            table[key] = "ok"
            note = "" if actual == kind else f" (the kernel made it {TYPE_NAMES.get(actual, actual)})"
            log.emit(
                "created",
                family=family_name,
                type=type_name,
                so_type=TYPE_NAMES.get(actual, actual),
                text=f"socket({family_name}, {type_name}) -> ok{note}",
            )
    return table


def stream_server_half(conn: socket.socket, peer: str, log: EventLog) -> None:
    time.sleep(1.0)  # every piece has arrived by now
    conn.settimeout(10)
    got = conn.recv(4096)
    log.emit(
        "received",
        type="SOCK_STREAM",
        peer=peer,
        data=got.decode(),
        reads=1,
        text=f"server: STREAM: one recv(4096) -> {got!r}: the boundaries are gone",
    )
    conn.sendall(json.dumps({"reads": 1, "data": got.decode()}).encode())


def datagram_server(port: int, log: EventLog) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", port))
        while True:
            data, address = sock.recvfrom(4096)
            log.emit(
                "received",
                type="SOCK_DGRAM",
                peer=format_address(address),
                data=data.decode(),
                text=f"server: DGRAM: recvfrom(4096) -> {data!r}",
            )
            sock.sendto(data, address)


def client_half(host: str, port: int, timeout: float, log: EventLog) -> bool:
    def nodelay(sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    with across.connect(host, port, timeout, log, nodelay) as sock:
        for piece in PIECES:
            sock.send(piece)
        log.emit(
            "sent",
            type="SOCK_STREAM",
            pieces=[p.decode() for p in PIECES],
            text=f"client: STREAM: 3 send() calls {[p.decode() for p in PIECES]}",
        )
        sock.shutdown(socket.SHUT_WR)
        report = json.loads(read_to_eof(sock) or b"{}")
    stream = str(report.get("data"))
    log.emit(
        "received",
        type="SOCK_STREAM",
        data=stream,
        reads=report.get("reads"),
        text=f"client: the server's one read got {stream!r}",
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(timeout)
        udp.connect((host, port))
        for piece in PIECES:
            udp.send(piece)
        log.emit(
            "sent",
            type="SOCK_DGRAM",
            pieces=[p.decode() for p in PIECES],
            text=f"client: DGRAM: 3 send() calls {[p.decode() for p in PIECES]}",
        )
        echoes = [udp.recv(4096).decode() for _ in PIECES]
    log.emit(
        "received",
        type="SOCK_DGRAM",
        data=echoes,
        reads=len(echoes),
        text=f"client: DGRAM: 3 recv() -> {echoes}: one message each, boundaries kept",
    )
    ok = stream == "".join(p.decode() for p in PIECES) and echoes == [p.decode() for p in PIECES]
    log.emit("done", ok=ok)
    return ok


def main(argv: Optional[list[str]] = None) -> int:
    parser = app_parser(APP, "Socket types: STREAM vs DGRAM boundaries; RDM refused.")
    across.add_role_options(parser, PORT)
    args = parser.parse_args(argv)
    log = EventLog(APP, human=args.human)
    if args.listen:
        threading.Thread(target=datagram_server, args=(args.port, log), daemon=True).start()
        return across.serve(args.port, stream_server_half, log)
    if args.connect:
        try:
            return 0 if client_half(args.connect, args.port, args.timeout, log) else 1
        except OSError as exc:
            log.error(exc, target=f"{args.connect}:{args.port}", action="types")
            return 1
    stream_ok = stream_boundaries(log)
    datagram_ok = datagram_boundaries(log)
    table = creation_table(log)
    rdm = table["AF_INET/SOCK_RDM"]
    ok = stream_ok and datagram_ok and rdm != "ok"
    log.emit(
        "done",
        ok=ok,
        table=table,
        text=f"STREAM merged: {stream_ok}; DGRAM kept boundaries: {datagram_ok}; SOCK_RDM: {rdm}",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
