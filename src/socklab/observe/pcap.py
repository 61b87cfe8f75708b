"""A small reader of classic pcap files and a per-connection summary of TCP handshakes/teardowns.

Reads what ``tcpdump -w`` writes: micro- or nanosecond pcap in either byte order, on
Ethernet (with VLAN tags), Linux cooked (SLL, SLL2, as on ``-i any``), raw IP or
loopback links; IPv4 and IPv6 carrying TCP, UDP or ICMP.
"""

from __future__ import annotations

import socket
import struct
from collections import Counter
from dataclasses import dataclass, field

from socklab.observe.sockets import ip_port

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_IP_PROTOS = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6"}


class PcapError(ValueError):
    """Not a pcap file this reader knows."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One IP packet: addresses, transport ports (0 for ICMP), TCP flags and payload length."""

    ts: float
    proto: str
    src: str
    sport: int
    dst: str
    dport: int
    flags: int = 0
    payload: int = 0


def read_pcap(data: bytes) -> list[Packet]:
    """The IP packets of a pcap file (other frames are skipped)."""
    if len(data) < 24 or data[:4] not in _MAGIC:
        raise PcapError("not a pcap file (pcapng is not read: use tcpdump -w)")
    order, unit = _MAGIC[data[:4]]
    linktype = struct.unpack(order + "I", data[20:24])[0] & 0x0FFFFFFF
    packets: list[Packet] = []
    offset = 24
    while offset + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(order + "IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + caplen]
        offset += 16 + caplen
        ip = _ip_payload(linktype, frame)
        packet = _parse_ip(sec + frac * unit, ip) if ip else None
        if packet is not None:
            packets.append(packet)
    return packets


def _ip_payload(linktype: int, frame: bytes) -> bytes | None:
    if linktype == 1:  # Ethernet, maybe 802.1Q tagged
        ethertype, start = struct.unpack("!H", frame[12:14])[0], 14
        while ethertype in (0x8100, 0x88A8) and len(frame) >= start + 4:
            ethertype, start = struct.unpack("!H", frame[start + 2 : start + 4])[0], start + 4
    elif linktype == 113:  # Linux cooked v1
        ethertype, start = struct.unpack("!H", frame[14:16])[0], 16
    elif linktype == 276:  # Linux cooked v2
        ethertype, start = struct.unpack("!H", frame[0:2])[0], 20
    elif linktype in (12, 101, 228, 229):  # raw IP
        return frame
    elif linktype == 0:  # BSD loopback: a 4-byte family
        return frame[4:]
    else:
        raise PcapError(f"unsupported link type {linktype}")
    return frame[start:] if ethertype in (0x0800, 0x86DD) else None


def _parse_ip(ts: float, ip: bytes) -> Packet | None:
    version = ip[0] >> 4 if ip else 0
    if version == 4 and len(ip) >= 20:
        header = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        proto, body = ip[9], ip[header:total]
        src, dst = socket.inet_ntop(socket.AF_INET, ip[12:16]), socket.inet_ntop(socket.AF_INET, ip[16:20])
    elif version == 6 and len(ip) >= 40:
        length = struct.unpack("!H", ip[4:6])[0]
        proto, body = ip[6], ip[40 : 40 + length]
        src, dst = socket.inet_ntop(socket.AF_INET6, ip[8:24]), socket.inet_ntop(socket.AF_INET6, ip[24:40])
    else:
        return None
    name = _IP_PROTOS.get(proto, f"ip-proto-{proto}")
    if name == "tcp" and len(body) >= 20:
        sport, dport = struct.unpack("!HH", body[:4])
        offset = (body[12] >> 4) * 4
        return Packet(ts, name, src, sport, dst, dport, body[13], max(0, len(body) - offset))
    if name == "udp" and len(body) >= 8:
        sport, dport = struct.unpack("!HH", body[:4])
        return Packet(ts, name, src, sport, dst, dport, 0, len(body) - 8)
    return Packet(ts, name, src, 0, dst, 0, 0, len(body))


def flag_names(flags: int) -> str:
    """``SYN-ACK``, ``FIN-ACK``, ``PSH-ACK``, ``RST``... as people say them."""
    names = [
        n for bit, n in ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK")) if flags & bit
    ]
    return "-".join(names) or "none"


@dataclass
class TcpConversation:
    """What one TCP connection did on the wire, from the capturing node's point of view."""

    client: str
    server: str
    packets: int = 0
    payload: int = 0
    handshake: list[str] = field(default_factory=list)
    teardown: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """established+closed, refused, reset, established (still open) or partial."""
        if self.handshake == ["SYN", "RST-ACK"] or self.handshake == ["SYN", "RST"]:
            return "refused"
        complete = self.handshake[:3] == ["SYN", "SYN-ACK", "ACK"]
        if any(t.startswith("RST") for t in self.teardown):
            return "reset"
        fins = {t for t in self.teardown if t.startswith("FIN")}
        if complete and len(fins) == 2:
            return "closed"
        return "established" if complete else "partial"

    def as_dict(self) -> dict[str, object]:
        return {
            "client": self.client,
            "server": self.server,
            "packets": self.packets,
            "payload_bytes": self.payload,
            "handshake": self.handshake,
            "teardown": self.teardown,
            "outcome": self.outcome,
        }


def conversations(packets: list[Packet]) -> list[TcpConversation]:
    """TCP packets grouped per connection, with the steps of its handshake and teardown.

    The client is the sender of the first SYN (else of the first packet seen).
    Handshake steps: ``SYN``, ``SYN-ACK``, ``ACK`` (or ``RST`` for a refusal);
    teardown steps: ``FIN client``/``FIN server``, ``RST client``/``RST server``,
    and the final ``ACK`` of the last FIN.
    """
    found: dict[frozenset[str], TcpConversation] = {}
    for p in packets:
        if p.proto != "tcp":
            continue
        src, dst = ip_port(p.src, p.sport), ip_port(p.dst, p.dport)
        key = frozenset((src, dst))
        conv = found.get(key)
        if conv is None:
            starts = bool(p.flags & SYN) and not p.flags & ACK
            conv = found[key] = TcpConversation(
                src if starts or not p.flags & SYN else dst, dst if starts or not p.flags & SYN else src
            )
        conv.packets += 1
        conv.payload += p.payload
        _step(conv, "client" if src == conv.client else "server", p)
    return list(found.values())


def _step(conv: TcpConversation, side: str, p: Packet) -> None:
    hs, td = conv.handshake, conv.teardown
    if p.flags & SYN:
        name = "SYN" if side == "client" and not p.flags & ACK else "SYN-ACK"
        if name not in hs:
            hs.append(name)
    elif p.flags & RST:
        if hs == ["SYN"] and side == "server":
            hs.append(flag_names(p.flags & (RST | ACK)))
        else:
            td.append(f"RST {side}")
    elif p.flags & FIN:
        if f"FIN {side}" not in td:
            td.append(f"FIN {side}")
    elif p.flags & ACK:
        if hs == ["SYN", "SYN-ACK"] and side == "client":
            hs.append("ACK")
        elif sum(t.startswith("FIN") for t in td) == 2 and td[-1] != "ACK" and not p.payload:
            td.append("ACK")


def other_protocols(packets: list[Packet]) -> dict[str, int]:
    """How many packets of each non-TCP protocol."""
    return dict(Counter(p.proto for p in packets if p.proto != "tcp"))
