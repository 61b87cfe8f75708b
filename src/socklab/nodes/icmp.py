"""ICMP messages built by hand: the Internet checksum, echo requests, destination unreachable."""

from __future__ import annotations

import socket
import struct

ECHO_REPLY = 0
DEST_UNREACH = 3
ECHO_REQUEST = 8

# destination-unreachable codes and the errno Linux turns each into (net/ipv4/icmp.c)
UNREACH_CODES = {"ENETUNREACH": 0, "EHOSTUNREACH": 1, "ECONNREFUSED": 3, "EHOSTDOWN": 7}


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): one's complement of the one's complement sum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, checksum(header + payload), ident, seq) + payload


def udp_unreachable(code: int, source: "tuple[str, int]", destination: "tuple[str, int]") -> bytes:
    """The ICMP error a router sends back about a UDP datagram ``source -> destination``:
    type 3 with ``code``, quoting the datagram's IP header and first 8 bytes (RFC 792)."""
    ip_header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        28,
        0,
        0,
        64,
        socket.IPPROTO_UDP,
        0,
        socket.inet_aton(source[0]),
        socket.inet_aton(destination[0]),
    )
    ip_header = ip_header[:10] + struct.pack("!H", checksum(ip_header)) + ip_header[12:]
    udp_header = struct.pack("!HHHH", source[1], destination[1], 8, 0)
    body = struct.pack("!BBHI", DEST_UNREACH, code, 0, 0) + ip_header + udp_header
    return body[:2] + struct.pack("!H", checksum(body)) + body[4:]
