"""``dns-stub``: a DNS server that fails on purpose, to see the resolver's failures for real.

It answers every query over UDP (port 53 by default) by the first label of the name asked
(what glibc then reports: h_errno for gethostbyaddr, EAI_* for getaddrinfo):

- ``nxdomain.*`` (and any other name): NXDOMAIN (rcode 3) -> HOST_NOT_FOUND / EAI_NONAME
- ``servfail.*``: SERVFAIL (rcode 2) -> TRY_AGAIN / EAI_AGAIN
- ``formerr.*``: FORMERR (rcode 1) -> NO_RECOVERY / EAI_FAIL
- ``refused.*``, ``notimp.*``: REFUSED (5), NOTIMP (4): glibc tries the next server, then
  gives TRY_AGAIN / EAI_AGAIN
- ``nodata.*``: NOERROR with no answer -> NO_DATA / EAI_NODATA
- ``ok.*``: the A record 192.0.2.1 (TEST-NET-1), so a working name can be seen beside them

Reverse lookups of 192.0.2.N (``N.2.0.192.in-addr.arpa``) go by N: 1 answers
``ok.stub.test``, 2 SERVFAIL, 3 NXDOMAIN, 4 no answer, 5 FORMERR, 6 REFUSED.
A node uses it by naming it in its /etc/resolv.conf. Each query is an event (``query``:
name, type, rcode).
"""

from __future__ import annotations

import socket
import struct
import sys
from typing import Any, Optional

from socklab.nodes.arguments import app_parser, bind_port
from socklab.nodes.events import EventLog
from socklab.nodes.tcp_server import StopServer, install_stop_handlers

APP = "dns-stub"
RCODES = {"nxdomain": 3, "servfail": 2, "formerr": 1, "refused": 5, "notimp": 4, "nodata": 0, "ok": 0}
REVERSE = {"1": "ok", "2": "servfail", "3": "nxdomain", "4": "nodata", "5": "formerr", "6": "refused"}
REVERSE_ZONE = ".2.0.192.in-addr.arpa"
OK_NAME = "ok.stub.test"
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
TYPE_NAMES = {1: "A", 28: "AAAA", 12: "PTR", 5: "CNAME", 15: "MX", 16: "TXT", 33: "SRV"}
OK_ADDRESS = "192.0.2.1"


def parse_question(packet: bytes) -> "Optional[tuple[int, int, str, int, int]]":
    """(id, flags, name, qtype, end of the question) of a query, or None if it is not one."""
    if len(packet) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if flags & 0x8000 or qdcount != 1:  # a response, or not one question
        return None
    labels, offset = [], 12
    while offset < len(packet):
        size = packet[offset]
        offset += 1
        if size == 0:
            break
        if size & 0xC0 or offset + size > len(packet):
            return None
        labels.append(packet[offset : offset + size].decode("ascii", "replace"))
        offset += size
    if offset + 4 > len(packet):
        return None
    qtype, _qclass = struct.unpack("!HH", packet[offset : offset + 4])
    return ident, flags, ".".join(labels).lower(), qtype, offset + 4


def answer(packet: bytes) -> "Optional[tuple[bytes, dict[str, Any]]]":
    """The reply to a query and what it said, or None for a packet that is no query."""
    question = parse_question(packet)
    if question is None:
        return None
    ident, flags, name, qtype, end = question
    first = name.split(".", 1)[0]
    if name.endswith(REVERSE_ZONE):
        first = REVERSE.get(first, "nxdomain")
    rcode = RCODES.get(first, 3)
    records = b""
    if first == "ok" and qtype == 1:
        records = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(OK_ADDRESS)
    elif first == "ok" and qtype == 12:
        target = b"".join(bytes([len(x)]) + x.encode() for x in OK_NAME.split(".")) + b"\0"
        records = struct.pack("!HHHIH", 0xC00C, 12, 1, 60, len(target)) + target
    header = struct.pack(
        "!HHHHHH",
        ident,
        0x8000 | (flags & 0x0100) | 0x0080 | rcode,  # QR, the query's RD, RA, the rcode
        1,
        1 if records else 0,
        0,
        0,
    )
    said = {
        "name": name,
        "type": TYPE_NAMES.get(qtype, str(qtype)),
        "rcode": RCODE_NAMES[rcode],
        "answers": 1 if records else 0,
    }
    return header + packet[12:end] + records, said


def main(argv: Optional[list[str]] = None) -> int:
    parser = app_parser(APP, "A DNS server that answers NXDOMAIN, SERVFAIL, REFUSED... on purpose.")
    parser.add_argument("--port", type=bind_port, default=53, help="UDP port (default 53)")
    args = parser.parse_args(argv)
    log = EventLog(APP, human=args.human)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("0.0.0.0", args.port))
    except OSError as exc:
        log.error(exc, target=f"0.0.0.0:{args.port}", action="bind")
        return 1
    install_stop_handlers()
    port = sock.getsockname()[1]
    log.emit(
        "listening",
        proto="udp",
        port=port,
        address=f"0.0.0.0:{port}",
        text=f"listening on 0.0.0.0:{port} (udp): nxdomain./servfail./refused./notimp./nodata./ok. names",
    )
    try:
        while True:
            packet, peer = sock.recvfrom(4096)
            reply = answer(packet)
            if reply is None:
                continue
            data, said = reply
            sock.sendto(data, peer)
            log.emit("query", peer=f"{peer[0]}:{peer[1]}", **said)
    except (StopServer, KeyboardInterrupt) as stop:
        log.emit("stopped", reason=str(stop) or "interrupt")
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
