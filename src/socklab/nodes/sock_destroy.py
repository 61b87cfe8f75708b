"""Destroy a TCP socket from outside its owner, as ``ss -K`` does (netlink SOCK_DESTROY).

The owner then gets ECONNABORTED: the kernel aborted the connection locally. Needs
CAP_NET_ADMIN and a kernel built with CONFIG_INET_DIAG_DESTROY.
"""

from __future__ import annotations

import os
import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DESTROY = 21
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NO_COOKIE = 0xFFFFFFFF


def _address_bytes(family: int, address: str) -> bytes:
    return socket.inet_pton(family, address).ljust(16, b"\0")


def destroy_tcp_socket(family: int, local: "tuple[str, int]", remote: "tuple[str, int]") -> None:
    """Abort the TCP connection ``local <-> remote``; raises OSError with the kernel's errno."""
    socket_id = (
        struct.pack("!HH", local[1], remote[1])
        + _address_bytes(family, local[0])
        + _address_bytes(family, remote[0])
        + struct.pack("=III", 0, NO_COOKIE, NO_COOKIE)
    )
    request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + socket_id
    header = struct.pack("=IHHII", 16 + len(request), SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as netlink:
        netlink.settimeout(2)
        netlink.send(header + request)
        answer = netlink.recv(4096)
    _length, kind, _flags, _seq, _pid = struct.unpack("=IHHII", answer[:16])
    if kind == NLMSG_ERROR:
        (code,) = struct.unpack("=i", answer[16:20])
        if code < 0:
            raise OSError(-code, os.strerror(-code))
