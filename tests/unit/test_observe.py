"""Host-side views of a lab without Docker: rows, connections, the timeline, the pcap reader."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Callable

import pytest

from socklab.errors import LabError
from socklab.lab import ExecResult
from socklab.observe import pcap
from socklab.observe.connections import connections, mermaid
from socklab.observe.sockets import (
    SocketRow,
    filter_rows,
    normalize_state,
    read_node,
    with_names,
)
from socklab.observe.timeline import merge, parse_line


def row(
    node: str,
    local: str,
    remote: str,
    state: str = "ESTABLISHED",
    proto: str = "tcp",
    program: str | None = "app",
) -> SocketRow:
    lip, lport = local.rsplit(":", 1)
    rip, rport = remote.rsplit(":", 1)
    return SocketRow(node, proto, lip, int(lport), rip, int(rport), state, 0, 0, 1, 7, program)


LAB_ROWS = [
    row("server", "0.0.0.0:5000", "0.0.0.0:0", "LISTEN"),
    row("server", "10.1.0.10:5000", "10.1.0.3:40000"),
    row("server", "::ffff:10.1.0.10:5000", "::ffff:10.1.0.4:40001", proto="tcp6"),
    row("server", "10.1.0.10:5000", "10.1.0.3:39999", "TIME_WAIT", program=None),
    row("client-1", "10.1.0.3:40000", "10.1.0.10:5000"),
    row("client-2", "10.1.0.4:40001", "10.1.0.10:5000"),
    row("client-2", "10.1.0.4:40002", "10.9.9.9:80"),  # a peer outside the lab
    # loopback connections in two nodes with the same addresses pair within their node
    row("client-1", "127.0.0.1:7000", "127.0.0.1:41000"),
    row("client-1", "127.0.0.1:41000", "127.0.0.1:7000"),
    row("client-2", "127.0.0.1:7000", "127.0.0.1:41000"),
    row("client-2", "127.0.0.1:41000", "127.0.0.1:7000"),
    row("client-1", "/run/x.sock:0", ":0", "LISTENING", proto="unix"),
]


def test_connections_pair_ends_and_find_the_server() -> None:
    found = [
        (c.client.node, c.client.local_port, c.server.node, c.server.local_port)
        for c in connections(LAB_ROWS)
    ]
    assert found == [
        ("client-1", 41000, "client-1", 7000),
        ("client-2", 41000, "client-2", 7000),
        ("client-1", 40000, "server", 5000),
        ("client-2", 40001, "server", 5000),
    ]
    graph = mermaid(connections(LAB_ROWS), ["server", "client-1", "client-2", "idle"])
    assert graph.splitlines()[:2] == ["graph LR", '  n_server["server"]']
    assert '  n_client_2 -->|"tcp/5000"| n_server' in graph
    assert '  n_idle["idle"]' in graph


def test_filters_and_states() -> None:
    assert len(filter_rows(LAB_ROWS, proto="tcp")) == 11  # tcp6 counts as tcp
    assert len(filter_rows(LAB_ROWS, state="time-wait")) == 1
    assert normalize_state("estab") == "ESTABLISHED"
    assert normalize_state("FIN-WAIT-1") == "FIN_WAIT1"
    with pytest.raises(LabError, match="unknown socket state"):
        normalize_state("SLEEPING")
    with pytest.raises(LabError, match="unknown protocol"):
        filter_rows(LAB_ROWS, proto="sctp")


def test_names_replace_lab_addresses() -> None:
    named = with_names(LAB_ROWS[:3], {"10.1.0.10": "server", "10.1.0.3": "client-1", "10.1.0.4": "client-2"})
    assert [(r.local, r.remote) for r in named] == [
        ("0.0.0.0:5000", "0.0.0.0:*"),
        ("server:5000", "client-1:40000"),
        ("server:5000", "client-2:40001"),
    ]
    assert named[0].as_dict()["local_ip"] == "0.0.0.0" and "node" not in named[0].as_dict()


def test_timeline_parses_tagged_json_lines_and_orders_by_app_time() -> None:
    server = "\n".join(
        [
            '2026-11-26T06:00:00.100000Z socklab-node[7] {"event": "spawned", "app": "tcp-server", "pid": 8}',
            '2026-11-26T06:00:01.300000Z tcp-server[8] {"ts": 1795672801.2, "app": "tcp-server", '
            '"event": "accepted", "pid": 8, "peer": "10.1.0.3:40000"}',
            "2026-11-26T06:00:01.300001Z tcp-server[8] tcp-server: accepted 10.1.0.3:40000",
            "not a log line",
        ]
    )
    client = (
        '2026-11-26T06:00:01.400000Z tcp-client[9] {"ts": 1795672801.1, "app": '
        '"tcp-client", "event": "connected", "pid": 9, "peer": "10.1.0.10:5000", '
        '"connect_ms": 0.2}'
    )
    events = merge([("server", server), ("client", client)])
    assert [(e.node, e.app, e.event) for e in events] == [
        ("server", "tcp-server", "spawned"),
        ("client", "tcp-client", "connected"),
        ("server", "tcp-server", "accepted"),
    ]
    assert events[1].fields == {"connect_ms": 0.2} and events[1].peer == "10.1.0.10:5000"
    assert events[0].time == "2026-11-26T06:00:00.100000Z"
    assert parse_line("n", '2026-11-26T06:00:00.1Z a[1] {"no": "event"}') is None


def _tcp(src: str, sport: int, dst: str, dport: int, flags: int, data: bytes = b"") -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 5 << 4, flags, 65535, 0, 0) + data
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )
    return ip + tcp


def _pcap(frames: list[bytes], linktype: int) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)
    for i, frame in enumerate(frames):
        out += struct.pack("<IIII", 1000, i, len(frame), len(frame)) + frame
    return out


def test_pcap_handshake_and_teardown_on_ethernet_and_cooked_links() -> None:
    c, s = ("10.1.0.3", 40000), ("10.1.0.10", 5000)
    f = pcap
    packets = [
        _tcp(*c, *s, f.SYN),
        _tcp(*s, *c, f.SYN | f.ACK),
        _tcp(*c, *s, f.ACK),
        _tcp(*c, *s, f.PSH | f.ACK, b"hello"),
        _tcp(*s, *c, f.PSH | f.ACK, b"hello"),
        _tcp(*c, *s, f.FIN | f.ACK),
        _tcp(*s, *c, f.FIN | f.ACK),
        _tcp(*c, *s, f.ACK),
        # a refused connection
        _tcp("10.1.0.3", 40001, "10.1.0.10", 5999, f.SYN),
        _tcp("10.1.0.10", 5999, "10.1.0.3", 40001, f.RST | f.ACK),
    ]
    ether = [b"\x02" * 12 + b"\x08\x00" + p for p in packets]
    sll = [b"\x00\x00\x03\x04\x00\x06" + b"\x02" * 8 + b"\x08\x00" + p for p in packets]
    for data in (_pcap(ether, 1), _pcap(sll, 113)):
        read = pcap.read_pcap(data)
        assert len(read) == 10 and read[3].payload == 5 and read[0].ts == 1000.0
        first, refused = pcap.conversations(read)
        assert first.as_dict() == {
            "client": "10.1.0.3:40000",
            "server": "10.1.0.10:5000",
            "packets": 8,
            "payload_bytes": 10,
            "handshake": ["SYN", "SYN-ACK", "ACK"],
            "teardown": ["FIN client", "FIN server", "ACK"],
            "outcome": "closed",
        }
        assert (refused.handshake, refused.outcome) == (["SYN", "RST-ACK"], "refused")
    with pytest.raises(pcap.PcapError):
        pcap.read_pcap(b"\x0a\x0d\x0d\x0a" + b"\x00" * 40)


def _line(node_ts: float, app: str, pid: int, event: str, **fields: object) -> str:
    record = {"ts": node_ts, "app": app, "event": event, "pid": pid, **fields}
    return f"2026-11-26T06:00:00.000000Z {app}[{pid}] {json.dumps(record)}"


def test_timeline_puts_causes_before_effects_stamped_earlier() -> None:
    # the server's apps were scheduled first: their stamps precede the client's by a hair
    server = "\n".join(
        [
            _line(10.0, "tcp-server", 8, "listening"),
            _line(
                20.001,
                "tcp-server",
                8,
                "accepted",
                peer="[::ffff:10.0.0.3]:40000",
                local="[::ffff:10.0.0.2]:5000",
            ),
            _line(20.002, "tcp-server", 8, "received", peer="[::ffff:10.0.0.3]:40000"),
            _line(20.0025, "tcp-server", 8, "sent", peer="[::ffff:10.0.0.3]:40000"),
            _line(20.009, "tcp-server", 8, "closed", peer="[::ffff:10.0.0.3]:40000"),
        ]
    )
    client = "\n".join(
        [
            _line(20.003, "tcp-client", 9, "connected", peer="10.0.0.2:5000", local="10.0.0.3:40000"),
            _line(20.004, "tcp-client", 9, "sent", peer="10.0.0.2:5000"),
            _line(20.005, "tcp-client", 9, "received", peer="10.0.0.2:5000"),
            _line(20.008, "tcp-client", 9, "closed", peer="10.0.0.2:5000"),
        ]
    )
    events = merge([("server", server), ("client", client)])
    assert [(e.node, e.event) for e in events] == [
        ("server", "listening"),
        ("client", "connected"),
        ("server", "accepted"),
        ("client", "sent"),
        ("server", "received"),
        ("server", "sent"),
        ("client", "received"),
        ("client", "closed"),
        ("server", "closed"),
    ]
    assert events[2].ts == 20.001  # every event keeps its own time


class _ReaderlessNode:
    """Answers like a node whose image lacks socklab-sockets (any image with python3)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def exec(self, node: str, argv: list[str]) -> ExecResult:
        self.calls.append((node, argv))
        if argv[0] in ("socklab-sockets", "nc"):
            return ExecResult(127, "", f'exec: "{argv[0]}": executable file not found')
        rows = [
            {
                "proto": "tcp",
                "local_ip": "0.0.0.0",
                "local_port": 80,
                "remote_ip": "0.0.0.0",
                "remote_port": 0,
                "state": "LISTEN",
                "recv_q": 0,
                "send_q": 0,
                "inode": 5,
                "pid": 1,
                "program": "nginx",
            }
        ]
        return ExecResult(0, json.dumps(rows), "")


def asking(run: Callable[[str, list[str]], ExecResult]) -> Callable[[str, list[str]], str]:
    """An engine's ask (the output alone) made of these exec results."""
    return lambda node, argv: run(node, argv).stdout


def test_an_image_without_the_reader_gets_its_source() -> None:
    node = _ReaderlessNode()
    [listen] = read_node(node.exec, asking(node.exec), "custom")
    assert (listen.node, listen.local, listen.owner) == ("custom", "0.0.0.0:80", "1/nginx")
    assert [argv[0] for _, argv in node.calls] == ["nc", "socklab-sockets", "python3"]
    node_name, argv = node.calls[2]
    assert node_name == "custom"
    assert argv[:2] == ["python3", "-c"] and "def read_sockets" in argv[2]


ROWS = [
    {
        "proto": "unix",
        "local_ip": "/run/socklab/sockets.sock",
        "local_port": 0,
        "remote_ip": "",
        "remote_port": 0,
        "state": "LISTENING",
        "recv_q": 0,
        "send_q": 0,
        "inode": 9,
        "pid": 7,
        "program": "socklab-node",
    }
]


def test_the_supervisor_answers_without_python_in_the_node() -> None:
    calls: list[list[str]] = []

    def run(node: str, argv: list[str]) -> ExecResult:
        calls.append(argv)
        return ExecResult(0, json.dumps(ROWS) + "\n", "")

    [row] = read_node(run, asking(run), "n")
    assert calls == [["nc", "-U", "/run/socklab/sockets.sock"]]
    assert (row.node, row.local, row.owner) == ("n", "/run/socklab/sockets.sock", "7/socklab-node")


def test_no_answering_supervisor_falls_back_to_the_reader() -> None:
    calls: list[list[str]] = []

    def run(node: str, argv: list[str]) -> ExecResult:
        calls.append(argv)
        if argv[0] == "nc":  # nc prints its error on stderr and exits 1
            return ExecResult(1, "", "nc: unix connect failed: No such file or directory")
        return ExecResult(0, json.dumps(ROWS), "")

    assert len(read_node(run, asking(run), "n")) == 1
    assert [argv[0] for argv in calls] == ["nc", "socklab-sockets"]
