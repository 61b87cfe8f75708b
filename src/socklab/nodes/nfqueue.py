"""A netfilter queue (NFQUEUE) client over raw netlink: bind queues, read packet ids,
send verdicts. Standard library only, Python >= 3.9.

Used by ``socklab-netdelay`` (hold each packet, then accept it) and by
``socklab-netctl probe`` (can this kernel queue packets to user space at all?).
The messages are those of ``linux/netfilter/nfnetlink_queue.h``.
"""

from __future__ import annotations

import os
import socket
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Tuple

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQNL_COPY_META = 1
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NF_DROP = 0
NF_ACCEPT = 1
QUEUE_MAXLEN = 8192
RCVBUF = 8 * 1024 * 1024


class NfqueueError(OSError):
    """The kernel refused a queue request (its errno), or has no NFQUEUE support."""


def _attr(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * (-length % 4)


class Queue:
    """One netlink socket bound to any number of queues of this network namespace."""

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        except OSError as exc:
            raise NfqueueError(exc.errno, "no netfilter netlink socket: %s" % exc.strerror) from None
        self.sock.bind((0, 0))
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, RCVBUF)  # SO_RCVBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self._seq = 0
        self.pending: List[Tuple[int, int]] = []
        """packets that came while a config request waited for its answer"""

    def close(self) -> None:
        self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    def _message(self, kind: int, queue: int, attrs: bytes, flags: int) -> bytes:
        self._seq += 1
        body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
        header = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, self._seq, 0)
        return header + body

    def _config(self, queue: int, attrs: bytes) -> None:
        """Send a config request and wait for its acknowledgement (raises on an error)."""
        self.sock.send(self._message(NFQNL_MSG_CONFIG, queue, attrs, NLM_F_REQUEST | NLM_F_ACK))
        while True:
            data = self.sock.recv(1 << 20)
            self.pending += _packet_ids(data)  # (a packet of a bound queue keeps its turn)
            for kind, payload in _messages(data):
                if kind == NLMSG_ERROR:
                    code = struct.unpack_from("=i", payload)[0]
                    if code:
                        raise NfqueueError(-code, "queue %d: %s" % (queue, os.strerror(-code)))
                    return

    def bind(self, queue: int) -> None:
        """Take packets of ``queue`` (metadata only: ids, no payload)."""
        self._config(queue, _attr(NFQA_CFG_CMD, struct.pack("=BBH", NFQNL_CFG_CMD_BIND, 0, 0)))
        self._config(queue, _attr(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META)))
        self._config(queue, _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", QUEUE_MAXLEN)))

    def unbind(self, queue: int) -> None:
        self._config(queue, _attr(NFQA_CFG_CMD, struct.pack("=BBH", NFQNL_CFG_CMD_UNBIND, 0, 0)))

    def packets(self) -> List[Tuple[int, int]]:
        """The ``(queue, packet id)`` pairs that came: those a config request read, then one
        read (which blocks unless the socket is ready or some were pending)."""
        out, self.pending = self.pending, []
        try:
            data = self.sock.recv(1 << 20, socket.MSG_DONTWAIT if out else 0)
        except BlockingIOError:
            return out
        return out + _packet_ids(data)

    def accept(self, queue: int, packet: int) -> None:
        self.verdict(queue, packet, NF_ACCEPT)

    def drop(self, queue: int, packet: int) -> None:
        self.verdict(queue, packet, NF_DROP)

    def verdict(self, queue: int, packet: int, verdict: int) -> None:
        body = _attr(NFQA_VERDICT_HDR, struct.pack(">II", verdict, packet))
        self.sock.send(self._message(NFQNL_MSG_VERDICT, queue, body, NLM_F_REQUEST))


def _packet_ids(data: bytes) -> List[Tuple[int, int]]:
    """The ``(queue, packet id)`` of each packet message in one read."""
    out = []
    for kind, payload in _messages(data):
        if kind != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            continue
        queue = socket.ntohs(struct.unpack_from("=H", payload, 2)[0])
        offset = 4
        while offset + 4 <= len(payload):
            length, attr = struct.unpack_from("=HH", payload, offset)
            if length < 4:
                break
            if attr & 0x7FFF == NFQA_PACKET_HDR:
                out.append((queue, struct.unpack_from(">I", payload, offset + 4)[0]))
            offset += (length + 3) & ~3
    return out


def _messages(data: bytes) -> List[Tuple[int, bytes]]:
    """The ``(type, payload after the netlink header)`` of each message in one read."""
    out = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            break
        out.append((kind, data[offset + 16 : offset + length]))
        offset += (length + 3) & ~3
    return out


def bound_queues(path: str = "/proc/net/netfilter/nfnetlink_queue") -> List[int]:
    """The queues some process of this network namespace has bound."""
    try:
        with open(path) as f:
            return [int(line.split()[0]) for line in f if line.split()]
    except OSError:
        return []
