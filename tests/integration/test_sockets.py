"""Socket tables, connections, timeline, resolve and capture against real labs.

The reader's table must agree with the kernel's own view (``ss``, over netlink) in the
same container, and every command of issue 5 is exercised through the CLI.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from socklab import Lab, LabNode
from socklab.observe.pcap import read_pcap
from socklab.observe.sockets import SocketRow

runner = CliRunner()

ECHO_LAB = {
    "networks": {"lan": {}},
    "nodes": {
        "server": {
            "networks": {"lan": {"aliases": ["echo"]}},
            "start": ["tcp-server --port 5000 --mode threaded", "udp-server --port 5001"],
        },
        "client": {"replicas": 2, "networks": ["lan"], "start": ["tcp-server --port 6000 --mode threaded"]},
    },
}
HOLD = "import socket, time; s = [socket.create_connection(({host!r}, {port})) for _ in range({n})]; time.sleep(600)"  # noqa: E501
SS_STATES = {
    "ESTAB": "ESTABLISHED",
    "SYN-SENT": "SYN_SENT",
    "SYN-RECV": "SYN_RECV",
    "FIN-WAIT-1": "FIN_WAIT1",
    "FIN-WAIT-2": "FIN_WAIT2",
    "TIME-WAIT": "TIME_WAIT",
    "CLOSE-WAIT": "CLOSE_WAIT",
    "LAST-ACK": "LAST_ACK",
    "CLOSED": "CLOSE",
}


def cli(*args: str) -> tuple[int, str, str]:
    from socklab.cli import app

    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def hold(node: LabNode, host: str, port: int, n: int) -> None:
    """Keep n connections from node to host:port open (an app of the node's supervisor)."""
    started = node.exec(["socklab-start", "python3", "-c", HOLD.format(host=host, port=port, n=n)])
    assert started.ok, started.stdout + started.stderr


def established(lab: Lab, node: str, port: int) -> list[SocketRow]:
    return [
        r for r in lab.sockets(node) if r.state == "ESTABLISHED" and port in (r.local_port, r.remote_port)
    ]


# -- the reader against ss ----------------------------------------------------------------


def _ss_endpoint(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    host = host.strip("[]").split("%")[0]
    return ("::" if host == "*" else host), (0 if port == "*" else int(port))


def ss_table(text: str) -> list[tuple[Any, ...]]:
    """`ss -tuanpH` rows as (kind, state, recv_q, send_q, local, remote, pids, programs);
    ss gives a listening socket's backlog limit as Send-Q, which /proc does not hold."""
    rows = []
    for line in text.splitlines():
        kind, state, recv_q, send_q, local, remote, *users = line.split()
        state = SS_STATES.get(state, state)
        owners = " ".join(users)
        rows.append(
            (
                kind,
                state,
                int(recv_q),
                None if state == "LISTEN" else int(send_q),
                _ss_endpoint(local),
                _ss_endpoint(remote),
                frozenset(int(p) for p in re.findall(r"pid=(\d+)", owners)),
                frozenset(re.findall(r'\("([^"]+)",pid=', owners)),
            )
        )
    return sorted(rows, key=repr)


def reader_table(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            (
                r["proto"].rstrip("6"),
                r["state"],
                r["recv_q"],
                None if r["state"] == "LISTEN" else r["send_q"],
                (r["local_ip"], r["local_port"]),
                (r["remote_ip"], r["remote_port"]),
                r["pid"],
                r["program"],
            )
            for r in rows
            if r["proto"].rstrip("6") in ("tcp", "udp")
        ),
        key=repr,
    )


def test_reader_agrees_exactly_with_ss(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(ECHO_LAB, "ss")
    server = lab.node("server")
    for client in ("client-1", "client-2"):
        hold(lab.node(client), "server", 5000, 2)
    for _ in range(2):  # the server node connects out and closes first: TIME_WAIT there
        assert server.exec("tcp-client client-1 6000 --count 1").ok
    assert wait_for(lambda: len(established(lab, "server", 5000)) == 4)
    for _attempt in range(3):  # both views come from one exec, a moment apart
        both = server.exec(["sh", "-c", "socklab-sockets --json; echo @@@; ss -tuanpH"])
        ours_json, ss_text = both.stdout.split("@@@\n")
        ours = reader_table(json.loads(ours_json))
        kernel = ss_table(ss_text)
        if [row[:6] for row in ours] == [row[:6] for row in kernel]:
            break
    assert [row[:6] for row in ours] == [row[:6] for row in kernel]
    states = [row[1] for row in ours]
    assert states.count("LISTEN") >= 2 and states.count("ESTABLISHED") >= 4
    assert states.count("TIME_WAIT") >= 2 and "UNCONN" in states
    for mine, theirs in zip(ours, kernel, strict=True):  # owners: the same process as ss sees
        if mine[6] is None:
            assert not theirs[6], mine
        else:
            assert mine[6] in theirs[6] and mine[7] in theirs[7], (mine, theirs)


# -- owners, --names, connections, resolve ---------------------------------------------


def test_sockets_owners_names_connections_resolve(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(ECHO_LAB, "owners")
    src = str(lab.source)
    for client in ("client-1", "client-2"):
        hold(lab.node(client), "echo", 5000, 2)
    assert wait_for(lambda: len(established(lab, "server", 5000)) == 4)
    ips = {s.node: s.networks["lan"].split("/")[0] for s in lab.status()}

    # the listening socket belongs to the server app whose `listening` event the logs show
    listening = [
        e for e in lab.timeline() if e.node == "server" and e.event == "listening" and e.app == "tcp-server"
    ]
    rows = lab.sockets("server")
    listen = [r for r in rows if r.state == "LISTEN" and r.local_port == 5000]
    assert len(listen) == 1 and listen[0].program == "tcp-server"
    assert listen[0].pid == listening[0].pid
    accepted = [r for r in rows if r.state == "ESTABLISHED" and r.local_port == 5000]
    assert {r.program for r in accepted} == {"tcp-server"}
    assert {r.remote_ip.removeprefix("::ffff:") for r in accepted} == {ips["client-1"], ips["client-2"]}
    clients = [r for r in lab.sockets(["client-1", "client-2"]) if r.state == "ESTABLISHED"]
    assert len(clients) == 4 and {r.program for r in clients} == {"python3"}
    assert {(r.remote_ip, r.remote_port) for r in clients} == {(ips["server"], 5000)}

    # --json: {NODE: [rows]}; --names: node names for lab addresses
    code, out, err = cli("sockets", src, "server", "--names", "--json", "--state", "estab")
    assert code == 0, err
    table = json.loads(out)
    assert list(table) == ["server"] and len(table["server"]) == 4
    assert {(r["local_ip"], r["local_port"]) for r in table["server"]} == {("server", 5000)}
    assert {r["remote_ip"] for r in table["server"]} == {"client-1", "client-2"}
    assert set(table["server"][0]) == {
        "proto",
        "local_ip",
        "local_port",
        "remote_ip",
        "remote_port",
        "state",
        "recv_q",
        "send_q",
        "inode",
        "pid",
        "program",
    }
    code, out, _ = cli("sockets", src, "--proto", "tcp", "--state", "LISTEN", "--json")
    assert code == 0 and list(json.loads(out)) == ["server", "client-1", "client-2"]
    assert all(r["state"] == "LISTEN" for rows_ in json.loads(out).values() for r in rows_)
    code, out, _ = cli("sockets", src, "client-1", "--names")
    assert code == 0 and "Foreign Address" in out and "PID/Program" in out
    assert re.search(r"tcp\s+0\s+0\s+client-1:\d+\s+server:5000\s+ESTABLISHED\s+\d+/python3", out)
    code, _, err = cli("sockets", src, "--state", "DREAMING")
    assert code == 2 and "unknown socket state" in err

    # connections: both ends matched, the server found by its listening port
    code, out, err = cli("connections", src, "--json")
    assert code == 0, err
    found = json.loads(out)
    assert (
        sorted(
            (c["client"]["node"], c["server"]["node"], c["server"]["port"], c["server"]["program"])
            for c in found["connections"]
        )
        == [("client-1", "server", 5000, "tcp-server")] * 2 + [("client-2", "server", 5000, "tcp-server")] * 2
    )
    assert 'n_client_1 -->|"tcp/5000 x2"| n_server' in found["mermaid"]
    code, out, _ = cli("connections", src)
    assert code == 0 and "graph LR" in out and "python3 → tcp-server" in out

    # resolve from a node: the alias answers with the server's address
    code, out, err = cli("resolve", src, "client-1", "echo", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["gethostbyname"]["result"] == ips["server"]
    assert answer["gethostname"] == "client-1"
    code, out, _ = cli("resolve", src, "client-2", "server")
    assert code == 0 and "gethostbyname_ex" in out and ips["server"] in out
    code, _, err = cli("resolve", src, "nope", "server")
    assert code == 2 and "node 'nope' not found" in err


# -- the timeline ------------------------------------------------------------------------


def test_timeline_orders_connect_accept_close(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(
        {
            "networks": {"lan": {}},
            "nodes": {
                "server": {"networks": ["lan"], "start": ["tcp-server --port 5000 --mode threaded"]},
                "client": {"networks": ["lan"]},
            },
        },
        "timeline",
    )
    started = lab.node("client").exec("socklab-start tcp-client server 5000 --count 2")
    assert started.ok, started.stderr

    def server_closed() -> bool:
        return any(e.event == "closed" and e.node == "server" for e in lab.timeline())

    assert wait_for(server_closed)
    code, out, err = cli("logs", str(lab.source), "--timeline", "--json")
    assert code == 0, err
    events = json.loads(out)
    # time order, up to the causal corrections (an app stamps an event a scheduling delay late)
    assert all(b["ts"] > a["ts"] - 0.05 for a, b in pairwise(events))
    connected = next(e for e in events if e["app"] == "tcp-client" and e["event"] == "connected")
    me = connected["fields"]["local"]

    def index(node: str, app: str, event: str) -> int:
        return next(
            i
            for i, e in enumerate(events)
            if (e["node"], e["app"], e["event"], e["peer"]) == (node, app, event, me)
        )

    accepted = index("server", "tcp-server", "accepted")
    closed = index("server", "tcp-server", "closed")
    assert events.index(connected) < accepted < closed
    assert connected["node"] == "client"
    code, out, _ = cli("logs", str(lab.source), "--timeline")
    assert code == 0
    kinds = [line.split()[3] for line in out.splitlines() if me in line]
    assert kinds[:2] == ["connected", "accepted"] and kinds[-1] == "closed"


# -- capture -------------------------------------------------------------------------------


def test_capture_shows_handshake_and_teardown(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(
        {
            "networks": {"lan": {}},
            "nodes": {
                "server": {"networks": ["lan"], "start": ["tcp-server --port 5000 --mode threaded"]},
                "client": {"networks": ["lan"]},
            },
        },
        "capture",
    )
    client = lab.node("client")
    out_file = tmp_path / "one.pcap"
    result: dict[str, Any] = {}

    def run() -> None:
        result["cli"] = cli(
            "capture",
            str(lab.source),
            "client",
            "--filter",
            "tcp port 5000",
            "--seconds",
            "5",
            "-o",
            str(out_file),
            "--json",
        )

    thread = threading.Thread(target=run)
    thread.start()
    # tcpdump opens its file once it captures (pcap_activate comes first)
    assert wait_for(lambda: client.exec(["sh", "-c", "ls /tmp/socklab-capture-*"]).ok)
    assert client.exec("tcp-client server 5000 --count 1").ok
    thread.join(30)
    code, out, err = result["cli"]
    assert code == 0, err
    summary = json.loads(out)
    ip = {s.node: s.networks["lan"].split("/")[0] for s in lab.status()}
    [conn] = summary["connections"]
    assert conn["client"].startswith(ip["client"] + ":")
    assert conn["server"] == f"{ip['server']}:5000"
    assert conn["handshake"] == ["SYN", "SYN-ACK", "ACK"]
    assert "FIN client" in conn["teardown"] and "FIN server" in conn["teardown"]
    assert conn["outcome"] == "closed" and conn["payload_bytes"] == 10  # "hello" both ways
    assert len(read_pcap(out_file.read_bytes())) == summary["packets"] >= 8
    assert client.exec(["sh", "-c", "ls /tmp/socklab-capture-*"]).exit_code != 0  # cleaned up
    code, _, err = cli(
        "capture",
        str(lab.source),
        "client",
        "--iface",
        "nope0",
        "--count",
        "1",
        "-o",
        str(tmp_path / "x.pcap"),
    )
    assert code == 2 and "tcpdump did not start" in err
