"""``socklab-sockets``: every socket of this node, read from ``/proc`` (no tool needed).

Parses ``/proc/net/{tcp,tcp6,udp,udp6,raw,raw6,unix}`` and maps each socket's inode
to the process holding it through ``/proc/<pid>/fd`` (the lowest pid when several
share it; none for TIME_WAIT sockets or sockets of processes outside the container).
TCP states are named as netstat prints them; an unconnected UDP or raw socket is
``UNCONN`` (netstat leaves it blank), a UNIX socket is ``LISTENING``, ``CONNECTED``,
``CONNECTING``, ``DISCONNECTING`` or ``UNCONN``. For a UNIX socket ``local_ip`` holds
its path (``@name`` when abstract) and the ports are 0. For raw sockets the port is
the IP protocol number, as netstat shows it.

``--json`` prints a list of objects with the keys ``proto, local_ip, local_port,
remote_ip, remote_port, state, recv_q, send_q, inode, pid, program``; without it,
a table like ``netstat -anp``. Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import os
import struct
import sys

# Only os, struct and sys are imported: a snapshot of a 40-node lab starts 40 of these
# programs at once, and typing, socket, argparse and json would double their start-up time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Optional, Tuple

    Row = Dict[str, Any]
    Owners = Dict[int, Tuple[int, str]]

TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "SYN_RECV",  # TCP_NEW_SYN_RECV: a request socket, shown as netstat does
}
UNIX_STATES = {1: "UNCONN", 2: "CONNECTING", 3: "CONNECTED", 4: "DISCONNECTING"}
UNIX_ACCEPTCON = 0x10000  # __SO_ACCEPTCON: a listening UNIX socket
INET_FILES = ("tcp", "tcp6", "udp", "udp6", "raw", "raw6")
READ_SIZE = 1 << 20
SHORT_READ = 2048  # under the smallest page, over the longest line (a UNIX path: ~170)
ALL_FILES = (*INET_FILES, "unix")
KEYS = (
    "proto", "local_ip", "local_port", "remote_ip", "remote_port", "state",
    "recv_q", "send_q", "inode", "pid", "program",
)  # fmt: skip


def decode_address(text: str) -> Tuple[str, int]:
    """``0100007F:1F90`` -> ``("127.0.0.1", 8080)``; IPv6 as four native-order words."""
    hex_ip, hex_port = text.split(":")
    if len(hex_ip) == 8:
        return ntop4(struct.pack("=I", int(hex_ip, 16))), int(hex_port, 16)
    words = [int(hex_ip[i : i + 8], 16) for i in range(0, 32, 8)]
    return ntop6(struct.pack("=4I", *words)), int(hex_port, 16)


def ntop4(packed: bytes) -> str:
    return "%d.%d.%d.%d" % tuple(packed)


def ntop6(packed: bytes) -> str:
    """The text of an IPv6 address exactly as glibc's ``inet_ntop`` (so as ss) writes it."""
    words = struct.unpack("!8H", packed)
    best, best_len, run, run_len = -1, 0, -1, 0
    for i, word in enumerate(words):  # the first longest run of two or more zero words
        if word == 0:
            run, run_len = (i, 1) if run_len == 0 else (run, run_len + 1)
            if run_len > best_len:
                best, best_len = run, run_len
        else:
            run_len = 0
    if best_len < 2:
        best = -1
    if best == 0 and (best_len == 6 or (best_len == 5 and words[5] == 0xFFFF)):
        return ("::ffff:" if best_len == 5 else "::") + ntop4(packed[12:])
    parts = []
    i = 0
    while i < 8:
        if i == best:
            parts.append("" if i else ":")
            i += best_len
            if i == 8:
                parts.append("")
            continue
        parts.append("%x" % words[i])
        i += 1
    return ":".join(parts)


def parse_inet(proto: str, text: str, owners: Optional[Owners] = None) -> List[Row]:
    """The rows of one ``/proc/net/{tcp,udp,raw}[6]`` file."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local_ip, local_port = decode_address(fields[1])
        remote_ip, remote_port = decode_address(fields[2])
        code = int(fields[3], 16)
        if proto.startswith("tcp"):
            state = TCP_STATES.get(code, "UNKNOWN")
        else:
            state = "ESTABLISHED" if code == 1 else "UNCONN" if code == 7 else "UNKNOWN"
        tx_queue, rx_queue = (int(q, 16) for q in fields[4].split(":"))
        inode = int(fields[9])
        pid, program = (owners or {}).get(inode, (None, None)) if inode else (None, None)
        rows.append(
            {
                "proto": proto,
                "local_ip": local_ip,
                "local_port": local_port,
                "remote_ip": remote_ip,
                "remote_port": remote_port,
                "state": state,
                "recv_q": rx_queue,
                "send_q": tx_queue,
                "inode": inode,
                "pid": pid,
                "program": program,
            }
        )
    return rows


def parse_unix(text: str, owners: Optional[Owners] = None) -> List[Row]:
    """The rows of ``/proc/net/unix`` (path in ``local_ip``)."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split(None, 7)
        if len(fields) < 7:
            continue
        flags, code, inode = int(fields[3], 16), int(fields[5], 16), int(fields[6])
        state = "LISTENING" if flags & UNIX_ACCEPTCON else UNIX_STATES.get(code, "UNKNOWN")
        path = fields[7].strip() if len(fields) > 7 else ""
        pid, program = (owners or {}).get(inode, (None, None))
        rows.append(
            {
                "proto": "unix",
                "local_ip": path,
                "local_port": 0,
                "remote_ip": "",
                "remote_port": 0,
                "state": state,
                "recv_q": 0,
                "send_q": 0,
                "inode": inode,
                "pid": pid,
                "program": program,
            }
        )
    return rows


def socket_owners(proc: str = "/proc", pids: Optional[List[Tuple[int, int]]] = None) -> Owners:
    """Socket inode -> (pid, program) for every process this node can see; with ``pids``,
    for these processes instead, as (pid under ``proc``, pid to show) pairs (a node's
    processes read from its host, shown with the pids the node itself sees)."""
    owners: Owners = {}
    if pids is None:
        try:
            pids = [(int(p), int(p)) for p in os.listdir(proc) if p.isdigit()]
        except OSError:
            return owners
    for pid, shown in sorted(pids, key=lambda p: p[1], reverse=True):  # the lowest pid wins
        inodes = held_sockets(proc, pid)
        if inodes:
            name = program_name(proc, pid)
            for inode in inodes:
                owners[inode] = (shown, name)
    return owners


def held_sockets(proc: str, pid: int) -> List[int]:
    """The inodes of the sockets process ``pid`` holds (none when it is gone, or not ours
    to read)."""
    fd_dir = "%s/%d/fd" % (proc, pid)
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return []
    inodes = []
    for fd in fds:
        try:
            target = os.readlink("%s/%s" % (fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.append(int(target[8:-1]))
    return inodes


def program_name(proc: str, pid: int) -> str:
    """The process's command name (``/proc/<pid>/comm``), as ss and ps show it."""
    try:
        with open("%s/%d/comm" % (proc, pid), errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return "?"


def read_sockets(
    protos: Iterable[str] = ALL_FILES,
    proc: str = "/proc",
    net: Optional[str] = None,
    pids: Optional[List[Tuple[int, int]]] = None,
) -> List[Row]:
    """Every socket of the listed kinds in this network namespace; or in the one whose
    ``net`` directory (``/proc/<pid>/net``) is given, owned by ``pids`` (see
    :func:`socket_owners`)."""
    owners = socket_owners(proc, pids)
    rows: List[Row] = []
    for proto in protos:
        try:
            text = read_table("%s/%s" % (net or proc + "/net", proto))
        except OSError:  # no IPv6 in this kernel, say
            continue
        rows += parse_unix(text, owners) if proto == "unix" else parse_inet(proto, text, owners)
    return rows


def read_table(path: str) -> str:
    """A ``/proc/net`` table, with no read past its end: every read of ``tcp`` or ``tcp6``
    walks the kernel's whole TCP hash table (1.7 ms for 262144 buckets on a 24 GB host),
    and a read until an empty one would pay that twice. A read returns the kernel's buffer
    (a page or more) but for the last one: a short read is the end."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, READ_SIZE)
            chunks.append(chunk)
            if len(chunk) < SHORT_READ:
                return b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(fd)


def endpoint(ip: str, port: int, proto: str) -> str:
    if proto == "unix":
        return ip
    if port == 0 and ip in ("0.0.0.0", "::"):
        return ip + ":*"
    return "%s:%d" % (ip, port)


def table(rows: List[Row]) -> List[str]:
    """Lines laid out like ``netstat -anp``."""
    head = ("Proto", "Recv-Q", "Send-Q", "Local Address", "Foreign Address", "State", "PID/Program")
    lines = ["%-5s %6s %6s %-39s %-39s %-11s %s" % head]
    for r in rows:
        owner = "%s/%s" % (r["pid"], r["program"]) if r["pid"] else "-"
        lines.append(
            "%-5s %6d %6d %-39s %-39s %-11s %s"
            % (
                r["proto"],
                r["recv_q"],
                r["send_q"],
                endpoint(r["local_ip"], r["local_port"], r["proto"]),
                "" if r["proto"] == "unix" else endpoint(r["remote_ip"], r["remote_port"], "tcp"),
                r["state"],
                owner,
            )
        )
    return lines


def to_json(rows: List[Row]) -> str:
    """A JSON list of flat rows (str, int or None values)."""
    items = (", ".join('"%s": %s' % (k, _json_value(v)) for k, v in r.items()) for r in rows)
    return "[" + ", ".join("{" + item + "}" for item in items) + "]"


_ESCAPES = {i: "\\u%04x" % i for i in range(32)}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\"})


def _json_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return '"%s"' % str(value).translate(_ESCAPES)


USAGE = """usage: socklab-sockets [--json] [--proto {%s}]...

Every socket of this node, read from /proc (all kinds unless --proto is given).
""" % ",".join(ALL_FILES)


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    as_json, protos = False, []
    while args:
        arg, args = args[0], args[1:]
        if arg == "--json":
            as_json = True
        elif arg == "--proto" and args and args[0] in ALL_FILES:
            protos.append(args[0])
            args = args[1:]
        elif arg in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        else:
            sys.stderr.write(USAGE + "error: unexpected argument %r\n" % arg)
            return 2
    rows = read_sockets(protos or ALL_FILES)
    sys.stdout.write((to_json(rows) if as_json else "\n".join(table(rows))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
