"""The node-side /proc/net reader on fixture text and a fake /proc tree."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from socklab.nodes import readiness, sockstat

pytestmark = pytest.mark.skipif(sys.byteorder != "little", reason="fixtures are little-endian")

HEAD = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
TCP = (
    HEAD
    + """\
   0: 00000000:1388 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0A00010A:1388 0300010A:9C40 01 00000005:00000002 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1
   2: 0A00010A:1388 0400010A:9C42 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
   3: 0300010A:9C44 0A00010A:1388 02 00000001:00000000 01:00000064 00000000     0        0 1004 1 0000000000000000 100 0 0 10 -1
   4: 0B00007F:A1B2 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1005 1 0000000000000000 100 0 0 10 0
"""
)
TCP6 = (
    HEAD
    + """\
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000A00010A:1388 0000000000000000FFFF00000300010A:9C41 01 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 20 4 30 10 -1
   2: 00000000000000000000000001000000:0016 00000000000000000000000001000000:D431 08 00000000:00000001 00:00000000 00000000     0        0 2003 1 0000000000000000 20 4 30 10 -1
"""
)
UDP = """\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:1388 00000000:0000 07 00000000:00000340 00:00000000 00000000     0        0 4001 2 0000000000000000 0
  101: 0300010A:D000 0A00010A:1388 01 00000000:00000000 00:00000000 00000000     0        0 4002 2 0000000000000000 0
"""
RAW = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
    1: 00000000:0001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5001 2 0000000000000000 0
"""
UNIX = """\
Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 3001 /run/socklab/supervisor.sock
0000000000000000: 00000003 00000000 00000000 0001 03 3002
0000000000000000: 00000002 00000000 00000000 0002 01 3003 @abstract name
0000000000000000: 00000002 00000000 00000000 0005 02 3004 /tmp/a b
"""


def test_tcp_states_addresses_queues() -> None:
    rows = sockstat.parse_inet("tcp", TCP)
    assert [(r["local_ip"], r["local_port"], r["remote_ip"], r["remote_port"], r["state"]) for r in rows] == [
        ("0.0.0.0", 5000, "0.0.0.0", 0, "LISTEN"),
        ("10.1.0.10", 5000, "10.1.0.3", 40000, "ESTABLISHED"),
        ("10.1.0.10", 5000, "10.1.0.4", 40002, "TIME_WAIT"),
        ("10.1.0.3", 40004, "10.1.0.10", 5000, "SYN_SENT"),
        ("127.0.0.11", 41394, "0.0.0.0", 0, "LISTEN"),
    ]
    # tx_queue:rx_queue -> Send-Q / Recv-Q
    assert (rows[0]["recv_q"], rows[0]["send_q"]) == (3, 0)
    assert (rows[1]["recv_q"], rows[1]["send_q"]) == (2, 5)
    assert rows[2]["inode"] == 0 and rows[2]["pid"] is None


def test_tcp6_mapped_and_loopback() -> None:
    rows = sockstat.parse_inet("tcp6", TCP6)
    assert [(r["local_ip"], r["local_port"], r["remote_ip"], r["state"]) for r in rows] == [
        ("::", 8080, "::", "LISTEN"),
        ("::ffff:10.1.0.10", 5000, "::ffff:10.1.0.3", "ESTABLISHED"),
        ("::1", 22, "::1", "CLOSE_WAIT"),
    ]
    assert rows[2]["recv_q"] == 1 and rows[2]["proto"] == "tcp6"


def test_every_tcp_state_has_its_netstat_name() -> None:
    assert [sockstat.TCP_STATES[i] for i in range(1, 12)] == [
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
    ]


def test_udp_and_raw() -> None:
    udp = sockstat.parse_inet("udp", UDP)
    assert [(r["local_port"], r["remote_ip"], r["state"], r["recv_q"]) for r in udp] == [
        (5000, "0.0.0.0", "UNCONN", 0x340),
        (53248, "10.1.0.10", "ESTABLISHED", 0),
    ]
    raw = sockstat.parse_inet("raw", RAW)
    assert (raw[0]["local_port"], raw[0]["state"]) == (1, "UNCONN")  # port = IP protocol (ICMP)


def test_unix() -> None:
    rows = sockstat.parse_unix(UNIX)
    assert [(r["local_ip"], r["state"], r["inode"]) for r in rows] == [
        ("/run/socklab/supervisor.sock", "LISTENING", 3001),
        ("", "CONNECTED", 3002),
        ("@abstract name", "UNCONN", 3003),
        ("/tmp/a b", "CONNECTING", 3004),
    ]
    assert all(r["proto"] == "unix" and r["local_port"] == 0 for r in rows)


def test_malformed_lines_are_skipped() -> None:
    assert sockstat.parse_inet("tcp", HEAD + "   0: garbage\n\n") == []
    assert sockstat.parse_unix("Num RefCount\nshort line\n") == []


def _fake_proc(root: Path) -> Path:
    (root / "net").mkdir(parents=True)
    for name, text in (("tcp", TCP), ("tcp6", TCP6), ("udp", UDP), ("raw", RAW), ("unix", UNIX)):
        (root / "net" / name).write_text(text)
    for pid, comm, inodes in (
        (12, "tcp-server", [1001, 1002]),
        (30, "tcp-server", [1001]),
        (7, "socklab-node", [3001]),
        (40, "sleep", []),
    ):
        fd = root / str(pid) / "fd"
        fd.mkdir(parents=True)
        (root / str(pid) / "comm").write_text(comm + "\n")
        (fd / "0").symlink_to("/dev/null")
        for n, inode in enumerate(inodes, start=3):
            (fd / str(n)).symlink_to(f"socket:[{inode}]")
    (root / "self").mkdir()
    return root


def test_owners_through_proc_pid_fd(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path)
    owners = sockstat.socket_owners(str(proc))
    # a socket shared by two processes (a forking server) belongs to the lowest pid
    assert owners == {1001: (12, "tcp-server"), 1002: (12, "tcp-server"), 3001: (7, "socklab-node")}
    rows = sockstat.read_sockets(proc=str(proc))
    by_inode = {r["inode"]: r for r in rows}
    assert (by_inode[1002]["pid"], by_inode[1002]["program"]) == (12, "tcp-server")
    assert by_inode[3001]["program"] == "socklab-node"
    assert by_inode[2001]["pid"] is None  # no process of this node holds it
    # udp6 and raw6 are missing in this fake /proc: skipped, not an error
    assert {r["proto"] for r in rows} == {"tcp", "tcp6", "udp", "raw", "unix"}
    assert set(rows[0]) == set(sockstat.KEYS)


def test_table_like_netstat(tmp_path: Path) -> None:
    rows = sockstat.read_sockets(["tcp"], proc=str(_fake_proc(tmp_path)))
    lines = sockstat.table(rows)
    assert lines[0].split() == [
        "Proto",
        "Recv-Q",
        "Send-Q",
        "Local",
        "Address",
        "Foreign",
        "Address",
        "State",
        "PID/Program",
    ]
    assert lines[1].split() == ["tcp", "3", "0", "0.0.0.0:5000", "0.0.0.0:*", "LISTEN", "12/tcp-server"]
    assert lines[3].split()[-1] == "-"


def test_main_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert sockstat.main(["--json", "--proto", "unix"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(set(r) == set(sockstat.KEYS) and r["proto"] == "unix" for r in rows)


def test_ipv6_text_is_exactly_inet_ntop() -> None:
    special = [
        "::",
        "::1",
        "::ffff:10.1.0.3",
        "::10.1.0.3",
        "::2",
        "1::",
        "1::1",
        "fe80::1:0:0:1",
        "1:0:0:1:0:0:0:1",
        "1:0:1:0:1:0:1:0",
        "2001:db8::ffff:0:1",
        "0:0:1::",
        "::ffff:0:1",
        "64:ff9b::10.0.0.1",
        "1:2:3:4:5:6:7:8",
        "::ffff:0.0.0.0",
    ]
    rng = random.Random(5)
    samples = [socket.inet_pton(socket.AF_INET6, a) for a in special] + [
        bytes(rng.choice([0, 0, 0, 1, 0xFF]) for _ in range(16)) for _ in range(3000)
    ]
    for packed in samples:
        assert sockstat.ntop6(packed) == socket.inet_ntop(socket.AF_INET6, packed), packed.hex()
    assert sockstat.ntop4(bytes([10, 1, 0, 255])) == "10.1.0.255"


def test_json_without_the_json_module() -> None:
    rows = [{"a": 'x"y\\z\n\x01é', "b": 0, "c": None, "d": -3}, {}]
    assert json.loads(sockstat.to_json(rows)) == rows
    assert sockstat.to_json([]) == "[]"


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert sockstat.main(["--bogus"]) == 2
    assert "usage: socklab-sockets" in capsys.readouterr().err
    assert sockstat.main(["--proto", "sctp"]) == 2
    assert sockstat.main(["--help"]) == 0


def test_what_a_session_listens_on_is_read_from_proc() -> None:
    """readiness (the supervisor's): a listening socket held by any process of the session."""
    code = (
        "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen();"
        "print(s.getsockname()[1], flush=True); time.sleep(30)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(child.stdout.readline()) if child.stdout else 0
        assert readiness.tree_listening(child.pid) == [f"tcp/{port}"]
        assert readiness.port_listening(f"tcp/{port}")
    finally:
        child.kill()
        child.wait()


def test_a_proc_table_longer_than_a_read_is_read_whole(tmp_path: Path) -> None:
    """/proc/net/unix of 300 socket pairs comes in a dozen page-sized reads: read_table stops
    at the short last one, not before (every inode of ours is in it)."""
    pairs = [socket.socketpair(socket.AF_UNIX) for _ in range(300)]
    try:
        text = sockstat.read_table("/proc/net/unix")
        inodes = {str(os.fstat(s.fileno()).st_ino) for p in pairs for s in p}
        listed = {line.split()[6] for line in text.splitlines()[1:] if len(line.split()) > 6}
        assert len(text) > 8 * sockstat.SHORT_READ and inodes <= listed
        regular = tmp_path / "big"
        regular.write_text("x" * (sockstat.READ_SIZE * 2 + 5))
        assert sockstat.read_table(str(regular)) == regular.read_text()
    finally:
        for a, b in pairs:
            a.close()
            b.close()
