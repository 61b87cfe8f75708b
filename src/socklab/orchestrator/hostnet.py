"""A node's routes set up from this host: the fast path of ``up`` for routed labs and labs
that publish ports.

A node on a network Docker gives a gateway loses its default route, and a node of a
routed lab gets routes through the routers, before its start commands run. The general
way is a helper container that joins the node's network namespace and runs
``socklab-netctl`` (:mod:`socklab.orchestrator.netcontrol`): one more container to
create, start, wait for and remove per node. When socklab runs as root on the daemon's
host, the same routes are set from here instead: a short-lived thread enters the node's
network namespace (``/proc/<pid>/ns/net``) just long enough to open a netlink socket there,
the routes go through it (``ip route replace``/``ip route del default``, as netctl does),
and the node's supervisor is let go through its socket (``socklab-start --release``, by
``/proc/<pid>/root``). Impairments (tc, iptables) always go through the helper, and so does
everything when this path cannot be taken (not root, a remote daemon, a pid that is not
the container's, ``SOCKLAB_NETSETUP=helper``).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import socket
import struct
import threading
import time
from ipaddress import IPv4Address, IPv6Address, ip_network

from socklab.nodes.supervisor import DEFAULT_RUN_DIR, SOCKET_NAME
from socklab.orchestrator.engine_api import ContainerInfo
from socklab.topology.netsetup import NetSetup

SETTING = "SOCKLAB_NETSETUP"
"""``helper``: always through a helper container; ``auto`` (the default): from this host
when it can."""

CLONE_NEWNET = 0x40000000
RTM_NEWROUTE, RTM_DELROUTE, NLMSG_ERROR = 24, 25, 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x400
RTA_DST, RTA_GATEWAY = 1, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RT_SCOPE_NOWHERE, RTN_UNICAST = 254, 3, 0, 255, 1
RELEASE_TIMEOUT = 10.0


def host_setup(setting: str | None, euid: int, daemon_on_this_host: bool, setup: NetSetup) -> bool:
    """Whether a node's setup is done from this host: as root, with the daemon on this
    host, routes only (impairments need the helper's tc and iptables), unless the setting
    asks for the helper."""
    return (
        (setting or "auto").strip().lower() != "helper"
        and euid == 0
        and daemon_on_this_host
        and not setup.impair
    )


class NetlinkError(OSError):
    pass


def _rtattr(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * (-length % 4)


class Routes:
    """``ip route`` over a netlink socket opened in another network namespace."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.seq = 0

    def _request(
        self,
        kind: int,
        flags: int,
        family: int,
        dst_len: int,
        scope: int,
        attrs: bytes,
        protocol: int,
        rtype: int,
    ) -> None:
        self.seq += 1
        body = (
            struct.pack("=BBBBBBBBI", family, dst_len, 0, 0, RT_TABLE_MAIN, protocol, scope, rtype, 0) + attrs
        )
        header = struct.pack("=LHHLL", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0)
        self.sock.send(header + body)
        while True:
            reply = self.sock.recv(65536)
            at = 0
            while at + 16 <= len(reply):
                length, rtype_, _, seq, _ = struct.unpack_from("=LHHLL", reply, at)
                if rtype_ == NLMSG_ERROR and seq == self.seq:
                    (code,) = struct.unpack_from("=i", reply, at + 16)
                    if code:
                        raise NetlinkError(-code, os.strerror(-code))
                    return
                at += max(16, (length + 3) & ~3)

    def replace(self, dest: str, via: str) -> None:
        """``ip route replace DEST via VIA``."""
        net = ip_network(dest, strict=False)
        gw = (IPv4Address if net.version == 4 else IPv6Address)(via)
        family = socket.AF_INET if net.version == 4 else socket.AF_INET6
        attrs = _rtattr(RTA_DST, net.network_address.packed) + _rtattr(RTA_GATEWAY, gw.packed)
        self._request(
            RTM_NEWROUTE,
            NLM_F_CREATE | NLM_F_REPLACE,
            family,
            net.prefixlen,
            RT_SCOPE_UNIVERSE,
            attrs,
            RTPROT_BOOT,
            RTN_UNICAST,
        )

    def delete_default(self, family: int) -> bool:
        """``ip route del default``: False when there is none (left)."""
        try:
            self._request(RTM_DELROUTE, 0, family, 0, RT_SCOPE_NOWHERE, b"", 0, 0)
        except NetlinkError as exc:
            if exc.errno in (errno.ESRCH, errno.ENOENT):  # none (left): IPv4 says ESRCH, IPv6 ENOENT
                return False
            raise
        return True


def _netlink_in(pid: int) -> socket.socket:
    """A netlink (route) socket of the network namespace of process ``pid``. The calling
    thread enters that namespace for the moment it takes to open it (a namespace is per
    thread), so this runs in a thread of its own."""
    libc = ctypes.CDLL(None, use_errno=True)
    opened: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter() -> None:
        try:
            with open(f"/proc/{pid}/ns/net") as target:
                if libc.setns(target.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            opened.append(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE))
        except BaseException as exc:
            failed.append(exc)
        # the thread ends here, in the node's namespace: nothing else ever runs in it

    thread = threading.Thread(target=enter, name="socklab-netns", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    sock = opened[0]
    sock.bind((0, 0))
    return sock


def apply(node: ContainerInfo, setup: NetSetup) -> list[str]:
    """Set a node's planned routes from this host, as ``socklab-netctl`` does in its helper;
    what was done. OSError when it cannot (the caller then uses the helper)."""
    cgroup = ""
    try:
        with open(f"/proc/{node.pid}/cgroup") as f:
            cgroup = f.read()
    except OSError:
        pass
    if node.pid <= 0 or node.id not in cgroup:  # not this host's process of the container
        raise OSError(errno.ESRCH, f"no process of container {node.name} here")
    done = []
    with _netlink_in(node.pid) as sock:
        routes = Routes(sock)
        for route in setup.routes:
            routes.replace(str(route.dest), str(route.via))
            done.append(f"{route.dest} via {route.via}")
        if setup.drop_default_route:
            for family, name in ((socket.AF_INET, "IPv4"), (socket.AF_INET6, "IPv6")):
                while routes.delete_default(family):
                    done.append(f"no default route ({name})")
    return done


def release(node: ContainerInfo) -> None:
    """Let the node's supervisor start its start commands (``socklab-start --release``),
    through its socket seen from this host."""
    path = f"/proc/{node.pid}/root{DEFAULT_RUN_DIR}/{SOCKET_NAME}"
    deadline = time.monotonic() + RELEASE_TIMEOUT
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(RELEASE_TIMEOUT)
        while True:  # the supervisor may not listen yet: the node has just started
            try:
                conn.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        conn.sendall(b'{"release": true}\n')
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            reply += chunk
    answer = json.loads(reply or b"{}")
    if not answer.get("ok"):
        raise OSError(errno.EPROTO, f"the supervisor of {node.name} said {answer}")
