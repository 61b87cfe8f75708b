"""dns-stub answers each query with the failure its name asks for (pure: packets in, out)."""

from __future__ import annotations

import socket
import struct

import pytest

from socklab.nodes.dns_stub import answer
from socklab.nodes.resolve import failures


def query(name: str, qtype: int = 1, ident: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + struct.pack("!HH", qtype, 1)


@pytest.mark.parametrize(
    ("name", "qtype", "rcode", "answers"),
    [
        ("nxdomain.example", 1, 3, 0),
        ("anything.else", 1, 3, 0),
        ("servfail.example", 1, 2, 0),
        ("formerr.example", 1, 1, 0),
        ("refused.example", 28, 5, 0),
        ("notimp.example", 1, 4, 0),
        ("nodata.example", 1, 0, 0),
        ("ok.example", 1, 0, 1),
        ("1.2.0.192.in-addr.arpa", 12, 0, 1),
        ("2.2.0.192.in-addr.arpa", 12, 2, 0),
        ("4.2.0.192.in-addr.arpa", 12, 0, 0),
    ],
)
def test_the_name_decides_the_answer(name: str, qtype: int, rcode: int, answers: int) -> None:
    reply = answer(query(name, qtype))
    assert reply is not None
    data, said = reply
    ident, flags, qd, an = struct.unpack("!HHHH", data[:8])
    assert (ident, flags & 0x8000, flags & 0x0100, flags & 0x000F) == (0x1234, 0x8000, 0x0100, rcode)
    assert (qd, an) == (1, answers) and said["answers"] == answers and said["name"] == name
    if name.startswith("ok."):
        assert data.endswith(socket.inet_aton("192.0.2.1"))


def test_what_is_not_a_query_gets_no_answer() -> None:
    assert answer(b"\x00\x01") is None
    response = bytearray(query("ok.example"))
    response[2] |= 0x80  # QR: a response
    assert answer(bytes(response)) is None


def test_every_failed_lookup_of_a_report_is_listed() -> None:
    report = {
        "query": "x.example",
        "gethostbyname": {"error": "e", "errno": "EAI_AGAIN", "errno_number": -3},
        "gethostbyname_ex": {"result": {}},
        "getaddrinfo": {"error": "e", "errno": "EAI_AGAIN", "errno_number": -3},
        "gethostbyaddr": {"192.0.2.2": {"error": "h", "errno": "TRY_AGAIN", "errno_number": 2}},
    }
    assert [(c, a, e["errno"]) for c, a, e in failures(report)] == [
        ("gethostbyname", "x.example", "EAI_AGAIN"),
        ("getaddrinfo", "x.example", "EAI_AGAIN"),
        ("gethostbyaddr", "192.0.2.2", "TRY_AGAIN"),
    ]
