"""How each errno of the notes' table is produced for real on Linux, and why some are not.

Every reproduction makes the kernel return the errno from a real socket call; none
raises it by hand. Those that need a far end default to something local (a closed
port on 127.0.0.1, a listener whose accept queue is full, a crafted ICMP error over
loopback) and take ``--host/--port`` to aim at a lab peer instead. A name may have
several reproductions: EINVAL has one per row of the notes' table.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from typing import Callable, NamedTuple, Optional

from socklab.nodes.addresses import getaddrinfo
from socklab.nodes.icmp import UNREACH_CODES, udp_unreachable
from socklab.nodes.loopback import free_port, tcp_pair
from socklab.nodes.sock_destroy import destroy_tcp_socket
from socklab.nodes.supervisor import socket_path

IP_RECVERR = 11  # linux/in.h; not exported by every Python's socket module
UNPRIVILEGED = 65534  # nobody/nogroup
CAP_SETUID, CAP_NET_ADMIN, CAP_NET_RAW = 7, 12, 13


class Target(NamedTuple):
    host: Optional[str]
    port: Optional[int]
    timeout: float


class MissingCapability(Exception):
    """The reproduction needs a privilege this process lacks (not the errno being shown)."""

    def __init__(self, capability: str, cause: OSError) -> None:
        super().__init__(f"needs {capability}: {cause}")
        self.capability = capability
        self.cause = cause


class Trial:
    """One reproduction in progress: its sockets (closed at the end) and the failing call."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.stack = contextlib.ExitStack()
        self.call = ""

    def keep(self, sock: socket.socket) -> socket.socket:
        return self.stack.enter_context(sock)

    def folder(self) -> str:
        path = tempfile.mkdtemp(prefix="socklab-errno-")
        self.stack.callback(shutil.rmtree, path, True)
        return path


class Reproduction(NamedTuple):
    name: str
    how: str
    run: Callable[[Trial], object]
    needs: str = ""  # a capability or condition, when one is needed
    lab_peer: str = ""  # what --host/--port aim at, when accepted
    port_alone: bool = False  # --port without --host means something (else it needs --host)
    row: Optional[int] = None  # the row of the notes' table it answers, when it has several
    node_only: bool = False  # changes the machine's network: never run outside a container


#: Every reproduction of each errno name, in the order of the notes' rows.
REPRODUCTIONS: "dict[str, list[Reproduction]]" = {}

NOT_REPRODUCIBLE = {
    "ENETRESET": "Linux's TCP, UDP and UNIX sockets never report it: a peer that stops "
    "answering gives ETIMEDOUT, one that resets ECONNRESET",
    "EPFNOSUPPORT": "Linux answers an unknown protocol family with EAFNOSUPPORT (reproducible)",
    "ESHUTDOWN": "Linux's TCP, UDP and UNIX sockets report EPIPE for a write after shutdown() "
    "(reproducible); ESHUTDOWN belongs to protocols a node does not load (SCTP, RDS, TIPC)",
    "ESYS": "not a Linux errno: it comes from other systems' socket libraries",
}


def reproduces(
    name: str,
    how: str,
    needs: str = "",
    lab_peer: str = "",
    port_alone: bool = False,
    row: Optional[int] = None,
    node_only: bool = False,
) -> Callable[[Callable[[Trial], object]], Callable[[Trial], object]]:
    def register(function: Callable[[Trial], object]) -> Callable[[Trial], object]:
        REPRODUCTIONS.setdefault(name, []).append(
            Reproduction(name, how, function, needs, lab_peer, port_alone, row, node_only)
        )
        return function

    return register


# ---- helpers -------------------------------------------------------------------------------


def capabilities() -> int:
    """The effective capability bits of this process (0 when unknown)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def has_capability(bit: int) -> bool:
    return bool(capabilities() >> bit & 1)


def in_lab_node() -> bool:
    """Whether this process runs in a socklab node (its supervisor's socket is there)."""
    return os.path.exists(socket_path())


def can_drop_privileges() -> bool:
    return os.geteuid() != 0 or has_capability(CAP_SETUID)


def runnable_here(reproduction: Reproduction) -> "tuple[bool, str]":
    """Whether this process has what the reproduction needs, and what is missing (one that
    changes the machine's network runs in a lab node only)."""
    if reproduction.node_only and not in_lab_node():
        return False, "it changes the network of the machine it runs on: run it in a lab node"
    if "CAP_NET_RAW" in reproduction.needs and not has_capability(CAP_NET_RAW):
        return False, "this process lacks CAP_NET_RAW"
    if "CAP_NET_ADMIN" in reproduction.needs and not has_capability(CAP_NET_ADMIN):
        return False, "this process lacks CAP_NET_ADMIN"
    if "CAP_SETUID" in reproduction.needs and not can_drop_privileges():
        return False, "root without CAP_SETUID cannot drop to an unprivileged user"
    return True, ""


def run_unprivileged(action: Callable[[], object]) -> None:
    """Run ``action`` as an unprivileged user (a child process when we are root) and raise the
    OSError it met, with the errno the kernel gave the child."""
    if os.geteuid() != 0:
        action()
        return
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        result = b"0"
        try:
            os.setgroups([])
            os.setgid(UNPRIVILEGED)
            os.setuid(UNPRIVILEGED)
            action()
        except OSError as exc:
            result = str(exc.errno).encode()
        except BaseException:
            result = b"-1"
        finally:
            os.write(write_end, result)
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        code = int(answer.read() or b"-1")
    os.waitpid(pid, 0)
    if code > 0:
        raise OSError(code, os.strerror(code))
    if code < 0:
        raise RuntimeError("the unprivileged child failed before its socket call")


def raw_icmp_socket(trial: Trial) -> socket.socket:
    try:
        return trial.keep(socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
    except PermissionError as exc:
        raise MissingCapability("CAP_NET_RAW", exc) from exc


def icmp_error_on_udp(trial: Trial, name: str) -> None:
    """A connected UDP socket sends a datagram over loopback and gets back the ICMP
    destination-unreachable a router would send (crafted on a raw socket); the kernel
    turns it into ``name`` on the next recv() (IP_RECVERR also passes the soft errors)."""
    silent = trial.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    silent.bind(("127.0.0.1", 0))
    sock = trial.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sock.bind(("127.0.0.1", 0))
    sock.connect(silent.getsockname())
    sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
    sock.send(b"probe")
    icmp = udp_unreachable(UNREACH_CODES[name], sock.getsockname(), silent.getsockname())
    raw_icmp_socket(trial).sendto(icmp, ("127.0.0.1", 0))
    sock.settimeout(trial.target.timeout)
    trial.call = (
        f"recv() on UDP {sock.getsockname()[0]}:{sock.getsockname()[1]} after ICMP code {UNREACH_CODES[name]}"
    )
    sock.recv(4096)


def peer_address(trial: Trial, default_port: int) -> "tuple[str, int]":
    """--host/--port as an address and port (a name looked up for IPv4, EAI_AGAIN asked
    again; an IPv6 address as it is)."""
    host = str(trial.target.host)
    port = trial.target.port or default_port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    found = getaddrinfo(host, port, family, socket.SOCK_STREAM)
    return str(found[0][4][0]), int(found[0][4][1])


def connect_peer(trial: Trial, default_port: int, syn_retries: int = 2) -> socket.socket:
    """connect() to --host/--port with few SYN retries, so the kernel's own error comes fast."""
    host = str(trial.target.host)
    port = trial.target.port or default_port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address = getaddrinfo(host, port, family, socket.SOCK_STREAM)[0][4]
    sock = trial.keep(socket.socket(family, socket.SOCK_STREAM))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, syn_retries)
    sock.settimeout(max(trial.target.timeout, 10.0))
    trial.call = f"connect({host}:{port})"
    sock.connect(address)
    return sock


def stalled_listener(trial: Trial) -> "tuple[str, int]":
    """A listener with a full accept queue: Linux drops further SYNs, a peer that never answers."""
    listener = trial.keep(socket.socket())
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address: tuple[str, int] = listener.getsockname()
    for _ in range(8):
        filler = trial.keep(socket.socket())
        filler.setblocking(False)
        filler.connect_ex(address)
        _, writable, _ = select.select([], [filler], [], 0.2)
        if not writable:  # this SYN was dropped: the queue is full
            return address
    raise RuntimeError("could not fill the accept queue of a loopback listener")


# ---- the reproductions ---------------------------------------------------------------------


@reproduces(
    "EACCES",
    "an unprivileged process binds a port below net.ipv4.ip_unprivileged_port_start "
    "(where that is 0, as in containers: connects to a UNIX socket file it may not write)",
    needs="when run as root: CAP_SETUID to drop to user nobody",
)
def _eacces(trial: Trial) -> None:
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as sysctl:
            first_free = int(sysctl.read())
    except OSError:
        first_free = 1024
    if first_free > 1:
        port = min(first_free - 1, 80)
        trial.call = f"bind(127.0.0.1:{port}) as uid {os.geteuid() or UNPRIVILEGED}"

        def bind_low() -> None:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))

        run_unprivileged(bind_low)
        return
    folder = trial.folder()
    os.chmod(folder, 0o755)
    path = os.path.join(folder, "private.sock")
    listener = trial.keep(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    listener.bind(path)
    listener.listen(1)
    os.chmod(path, 0o000 if os.geteuid() != 0 else 0o600)
    trial.call = f"connect({path}) as uid {os.geteuid() or UNPRIVILEGED} (socket file mode 0600 root)"

    def connect_private() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(path)

    run_unprivileged(connect_private)


@reproduces(
    "EADDRINUSE",
    "a second socket binds the address a listening socket already holds",
    lab_peer="--port P (--host H): bind where a server of this node already listens",
    port_alone=True,
)
def _eaddrinuse(trial: Trial) -> None:
    if trial.target.port:
        address = (trial.target.host or "0.0.0.0", trial.target.port)
    else:
        first = trial.keep(socket.socket())
        first.bind(("127.0.0.1", 0))
        first.listen(1)
        address = first.getsockname()
    second = trial.keep(socket.socket())
    trial.call = f"bind({address[0]}:{address[1]}) again"
    second.bind(address)


@reproduces(
    "EADDRNOTAVAIL",
    "bind() to an IP address no interface of this host has "
    "(TEST-NET-3 203.0.113.1 of RFC 5737, or --host); nothing is sent",
    lab_peer="--host ADDR: an address that is not this node's",
)
def _eaddrnotavail(trial: Trial) -> None:
    candidates = (
        [peer_address(trial, 0)[0]] if trial.target.host else ["203.0.113.1", "198.51.100.1", "192.0.2.1"]
    )
    for address in candidates:
        sock = trial.keep(socket.socket())
        trial.call = f"bind({address}:0)"
        sock.bind((address, 0))  # the address is local after all: try the next one


@reproduces("EAFNOSUPPORT", "socket() with address family AF_UNSPEC (0), which no protocol implements")
def _eafnosupport(trial: Trial) -> None:
    trial.call = "socket(AF_UNSPEC, SOCK_STREAM)"
    trial.keep(socket.socket(socket.AF_UNSPEC, socket.SOCK_STREAM))


@reproduces(
    "EALREADY",
    "connect() again on a non-blocking socket whose first connect() is still "
    "in progress (its SYN dropped by a listener with a full accept queue)",
    lab_peer="--host H --port P: a peer that does not answer (DROP, partition)",
)
def _ealready(trial: Trial) -> None:
    address = peer_address(trial, 9) if trial.target.host else stalled_listener(trial)
    sock = trial.keep(socket.socket())
    sock.setblocking(False)
    sock.connect_ex(address)
    trial.call = f"connect({address[0]}:{address[1]}) while the first is in progress"
    sock.connect(address)


@reproduces("EBADF", "getsockname() on a descriptor already closed with os.close()")
def _ebadf(trial: Trial) -> None:
    sock = socket.socket()
    os.close(sock.fileno())
    trial.call = f"getsockname() on closed fd {sock.fileno()}"
    try:
        sock.getsockname()
    finally:
        sock.detach()  # the fd is gone: make Python forget it


@reproduces(
    "ECONNABORTED",
    "the kernel aborts an established connection under its owner "
    "(netlink SOCK_DESTROY, what `ss -K` does); the owner's recv() gets ECONNABORTED",
    needs="CAP_NET_ADMIN",
)
def _econnaborted(trial: Trial) -> None:
    listener, client, server = tcp_pair()
    for sock in (listener, client, server):
        trial.keep(sock)
    try:
        destroy_tcp_socket(socket.AF_INET, client.getsockname(), client.getpeername())
    except PermissionError as exc:
        raise MissingCapability("CAP_NET_ADMIN", exc) from exc
    client.settimeout(trial.target.timeout)
    trial.call = "recv() on a socket destroyed by SOCK_DESTROY"
    client.recv(1)


@reproduces(
    "ECONNREFUSED",
    "connect() to a port where nothing listens: the peer answers RST",
    lab_peer="--host H --port P: a closed port of a lab node (--port P alone: 127.0.0.1:P)",
    port_alone=True,
)
def _econnrefused(trial: Trial) -> None:
    if trial.target.host:
        connect_peer(trial, default_port=9)
        return
    port = trial.target.port or free_port()
    sock = trial.keep(socket.socket())
    trial.call = f"connect(127.0.0.1:{port})"
    sock.connect(("127.0.0.1", port))


@reproduces(
    "ECONNRESET",
    "the peer closes with SO_LINGER {on, 0 s}: RST instead of FIN; our recv() gets ECONNRESET",
    lab_peer="--host H --port P: a server that resets the connection (closes with "
    "SO_LINGER 0, or with unread data)",
)
def _econnreset(trial: Trial) -> None:
    if trial.target.host:
        sock = connect_peer(trial, default_port=9)
        sock.settimeout(trial.target.timeout)
        sock.sendall(b"probe\n")
        trial.call = f"recv() from {trial.target.host}:{trial.target.port or 9}"
        sock.recv(1)
        return
    listener, client, server = tcp_pair()
    for sock in (listener, client, server):
        trial.keep(sock)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    server.close()
    client.settimeout(trial.target.timeout)
    trial.call = "recv() after the peer closed with SO_LINGER 0"
    client.recv(1)


@reproduces("EDESTADDRREQ", "send() on a UDP socket that was never connect()ed: where to?")
def _edestaddrreq(trial: Trial) -> None:
    sock = trial.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    trial.call = "send() on an unconnected UDP socket"
    sock.send(b"to whom?")


@reproduces(
    "EHOSTDOWN",
    "ICMP destination unreachable, code 7 (host unknown), crafted over loopback "
    "in answer to a connected UDP socket's datagram",
    needs="CAP_NET_RAW",
)
def _ehostdown(trial: Trial) -> None:
    icmp_error_on_udp(trial, "EHOSTDOWN")


def unused_neighbour() -> Optional[str]:
    """The highest host address of this node's first directly connected IPv4 subnet, unless
    it is this node's own: on a lab network, nobody there answers ARP (None: no such subnet)."""
    try:
        with open("/proc/net/route") as table:
            rows = [line.split() for line in table.readlines()[1:]]
    except OSError:
        return None
    for row in rows:
        iface, destination, gateway, mask = row[0], row[1], row[2], row[7]
        if iface == "lo" or int(gateway, 16) != 0 or int(mask, 16) == 0:
            continue
        net = ipaddress.IPv4Network(
            (
                socket.inet_ntoa(struct.pack("<I", int(destination, 16))),
                socket.inet_ntoa(struct.pack("<I", int(mask, 16))),
            ),
            strict=False,
        )
        if not 8 <= net.prefixlen <= 29:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((str(net.network_address + 1), 9))  # no packet: picks our source
            own = ipaddress.IPv4Address(probe.getsockname()[0])
        candidate = net.broadcast_address - 1
        return str(candidate - 1 if candidate == own else candidate)
    return None


@reproduces(
    "EHOSTUNREACH",
    "in a lab node, connect() to an unused address of its own subnet (the highest): no ARP "
    "answer, no route to that host; elsewhere (or without such a subnet) an ICMP destination "
    "unreachable (code 1) crafted over loopback in answer to a UDP datagram",
    needs="CAP_NET_RAW (the loopback way only)",
    lab_peer="--host H [--port P]: an unused address of a lab subnet (ARP gets no answer) "
    "or a node rejecting with icmp-host-unreachable",
)
def _ehostunreach(trial: Trial) -> None:
    if not trial.target.host and in_lab_node():
        neighbour = unused_neighbour()
        if neighbour is not None:
            trial.target = trial.target._replace(host=neighbour)
    if trial.target.host:
        connect_peer(trial, default_port=9)
        return
    icmp_error_on_udp(trial, "EHOSTUNREACH")


@reproduces(
    "EINPROGRESS",
    "connect() on a non-blocking socket: the handshake starts and goes on",
    lab_peer="--host H --port P: any peer",
)
def _einprogress(trial: Trial) -> None:
    address = peer_address(trial, 9) if trial.target.host else stalled_listener(trial)
    sock = trial.keep(socket.socket())
    sock.setblocking(False)
    trial.call = f"non-blocking connect({address[0]}:{address[1]})"
    sock.connect(address)


def raise_errno(result: int) -> None:
    """A libc call's -1 as the OSError of its errno."""
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


@reproduces(
    "EINVAL",
    "bind() of an AF_UNIX socket to an IPv4 address (a sockaddr_in, through libc: Python "
    "only passes addresses of the socket's own family)",
    row=4,
)
def _einval_family(trial: Trial) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    sock = trial.keep(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    ipv4 = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 5000)
    ipv4 += socket.inet_aton("127.0.0.1") + bytes(8)
    trial.call = "bind(AF_UNIX socket, {sa_family=AF_INET, 127.0.0.1:5000})"
    raise_errno(libc.bind(sock.fileno(), ipv4, len(ipv4)))


@reproduces(
    "EINVAL",
    "listen() on a socket whose non-blocking connect() has not completed (its SYN dropped "
    "by a listener with a full accept queue)",
    lab_peer="--host H --port P: a peer that does not answer (DROP, partition)",
    row=5,
)
def _einval_connecting(trial: Trial) -> None:
    address = peer_address(trial, 9) if trial.target.host else stalled_listener(trial)
    sock = trial.keep(socket.socket())
    sock.setblocking(False)
    sock.connect_ex(address)
    trial.call = f"listen() while connect({address[0]}:{address[1]}) is in progress"
    sock.listen(1)


@reproduces("EISCONN", "connect() again on a connected TCP socket")
def _eisconn(trial: Trial) -> None:
    listener, client, server = tcp_pair()
    for sock in (listener, client, server):
        trial.keep(sock)
    trial.call = f"connect({listener.getsockname()[0]}:{listener.getsockname()[1]}) once more"
    client.connect(listener.getsockname())


@reproduces("EMFILE", "open sockets until the process's RLIMIT_NOFILE is reached")
def _emfile(trial: Trial) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (32, hard))
    trial.stack.callback(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
    trial.call = "socket() number 33 with RLIMIT_NOFILE 32"
    for _ in range(64):
        trial.keep(socket.socket())


@reproduces("EMSGSIZE", "sendto() of a 70000-byte UDP datagram: more than an IPv4 datagram can carry")
def _emsgsize(trial: Trial) -> None:
    sock = trial.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    trial.call = "sendto(70000 bytes, 127.0.0.1:9)"
    sock.sendto(b"x" * 70000, ("127.0.0.1", 9))


@reproduces(
    "ENETUNREACH",
    "ICMP destination unreachable, code 0 (net unreachable), crafted over "
    "loopback in answer to a connected UDP socket's datagram",
    needs="CAP_NET_RAW (the local way)",
    lab_peer="--host H: an address this node has no route to (e.g. after "
    "`ip route del default` in a node with NET_ADMIN)",
)
def _enetunreach(trial: Trial) -> None:
    if trial.target.host:
        connect_peer(trial, default_port=9)
        return
    icmp_error_on_udp(trial, "ENETUNREACH")


@reproduces(
    "ENOBUFS",
    "setsockopt(IP_ADD_MEMBERSHIP) of one multicast group more than "
    "net.ipv4.igmp_max_memberships (20) on one UDP socket",
)
def _enobufs(trial: Trial) -> None:
    try:
        with open("/proc/sys/net/ipv4/igmp_max_memberships") as sysctl:
            limit = int(sysctl.read())
    except OSError:
        limit = 20
    sock = trial.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    for i in range(limit + 1):
        group = f"239.255.{i // 250}.{i % 250 + 1}"
        trial.call = f"setsockopt(IP_ADD_MEMBERSHIP, {group}) number {i + 1} (limit {limit})"
        membership = socket.inet_aton(group) + socket.inet_aton("127.0.0.1")
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)


@reproduces(
    "ENETDOWN",
    "send() on a packet socket bound to an interface that is down (a veth pair made for it "
    "and removed after)",
    needs="CAP_NET_ADMIN to make the interface, CAP_NET_RAW",
    node_only=True,
)
def _enetdown(trial: Trial) -> None:
    name = f"socklab{os.getpid() % 100000}"
    made = subprocess.run(
        ["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        cause = OSError(1, made.stderr.strip() or "ip link add failed")
        raise MissingCapability("CAP_NET_ADMIN", cause)
    trial.stack.callback(subprocess.run, ["ip", "link", "del", name], capture_output=True)
    try:
        sock = trial.keep(socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
    except PermissionError as exc:
        raise MissingCapability("CAP_NET_RAW", exc) from exc
    sock.bind((name, 0))
    trial.call = f"send() of an Ethernet frame on {name} (state DOWN)"
    sock.send(b"\xff" * 6 + b"\x02" * 6 + b"\x88\xb5" + bytes(46))


@reproduces("ENOPROTOOPT", "getsockopt() of an option number SOL_SOCKET does not have")
def _enoprotoopt(trial: Trial) -> None:
    sock = trial.keep(socket.socket())
    trial.call = "getsockopt(SOL_SOCKET, 12345)"
    sock.getsockopt(socket.SOL_SOCKET, 12345)


@reproduces("ENOTCONN", "recv() on a TCP socket that never connected")
def _enotconn(trial: Trial) -> None:
    sock = trial.keep(socket.socket())
    trial.call = "recv() on an unconnected TCP socket"
    sock.recv(1)


@reproduces("ENOTSOCK", "a socket call on the descriptor of a regular file")
def _enotsock(trial: Trial) -> None:
    folder = trial.folder()
    regular = trial.stack.enter_context(open(os.path.join(folder, "plain.txt"), "w"))  # noqa: SIM115
    trial.call = f"getsockopt(SO_TYPE) on fd {regular.fileno()} (a regular file)"
    socket.socket(fileno=regular.fileno())  # Python asks the fd for SO_TYPE


@reproduces("EOPNOTSUPP", "listen() on a UDP socket: datagram sockets have no connections to accept")
def _eopnotsupp(trial: Trial) -> None:
    sock = trial.keep(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    trial.call = "listen() on a UDP socket"
    sock.listen(1)


@reproduces(
    "EPERM",
    "an unprivileged process opens a RAW socket (needs CAP_NET_RAW)",
    needs="when run as root: CAP_SETUID to drop to user nobody",
)
def _eperm(trial: Trial) -> None:
    trial.call = "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) as an unprivileged user"

    def open_raw() -> None:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()

    run_unprivileged(open_raw)


@reproduces(
    "EPIPE",
    "send() after our own shutdown(SHUT_WR)",
    lab_peer="--host H --port P: a server that closes the connection first (tcp-server "
    "--close-after 1): its RST answers our next send, the one after fails",
)
def _epipe(trial: Trial) -> None:
    if trial.target.host:
        sock = connect_peer(trial, default_port=7)
        sock.settimeout(trial.target.timeout)
        sock.sendall(b"probe")
        while sock.recv(4096):  # the echo, then the peer's EOF: it closed
            pass
        deadline = time.monotonic() + trial.target.timeout
        while True:  # the first send is answered with RST; a later one fails
            trial.call = f"send() to {trial.target.host} after it closed"
            sock.send(b"more")
            if time.monotonic() > deadline:
                raise RuntimeError("the peer accepted data after closing: no RST came back")
            time.sleep(0.05)
    listener, client, server = tcp_pair()
    for sock in (listener, client, server):
        trial.keep(sock)
    client.shutdown(socket.SHUT_WR)
    trial.call = "send() after shutdown(SHUT_WR)"
    client.send(b"too late")


@reproduces("EPROTONOSUPPORT", "socket(AF_INET, SOCK_STREAM, IPPROTO_UDP): UDP is no stream protocol")
def _eprotonosupport(trial: Trial) -> None:
    trial.call = "socket(AF_INET, SOCK_STREAM, IPPROTO_UDP)"
    trial.keep(socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_UDP))


@reproduces("EPROTOTYPE", "a UNIX stream socket connects to the path of a UNIX datagram socket")
def _eprototype(trial: Trial) -> None:
    path = os.path.join(trial.folder(), "datagram.sock")
    trial.keep(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)).bind(path)
    sock = trial.keep(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    trial.call = f"SOCK_STREAM connect({path}) to a SOCK_DGRAM socket"
    sock.connect(path)


@reproduces("ESOCKTNOSUPPORT", "socket(AF_INET, SOCK_RDM): Linux has no reliable-datagram type for IP")
def _esocktnosupport(trial: Trial) -> None:
    trial.call = "socket(AF_INET, SOCK_RDM)"
    trial.keep(socket.socket(socket.AF_INET, socket.SOCK_RDM))


@reproduces(
    "ETIMEDOUT",
    "connect() to a peer that never answers, with TCP_USER_TIMEOUT 500 ms and "
    "1 SYN retry: the kernel gives up (a listener with a full accept queue drops the SYNs)",
    lab_peer="--host H --port P: a silent peer (DROP, partition)",
)
def _etimedout(trial: Trial) -> None:
    if trial.target.host:
        connect_peer(trial, default_port=9, syn_retries=1)
        return
    address = stalled_listener(trial)
    sock = trial.keep(socket.socket())
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 500)
    trial.call = f"connect({address[0]}:{address[1]}) (SYNs dropped)"
    sock.connect(address)


@reproduces(
    "EWOULDBLOCK",
    "recv() on a non-blocking socket with nothing to read (EAGAIN)",
    lab_peer="--host H --port P: a connected peer that sends nothing",
)
def _ewouldblock(trial: Trial) -> None:
    if trial.target.host:
        sock = connect_peer(trial, default_port=7)
        sock.setblocking(False)
        trial.call = f"non-blocking recv() from {trial.target.host} with nothing queued"
        sock.recv(1)
        return
    listener, client, server = tcp_pair()
    for sock in (listener, client, server):
        trial.keep(sock)
    client.setblocking(False)
    trial.call = "non-blocking recv() with nothing queued"
    client.recv(1)
