"""The node apps across real containers: server modes side by side, every errno, resolver, v6, UNIX.

One lab serves the module (an ``up`` costs seconds): a server node with every server
mode, two client nodes, and a ``peer`` with NET_ADMIN that drops SYNs on one port,
rejects with ICMP host-unreachable on another and resets connections on a third.
The peer has no default route (ENETUNREACH). A single node container driven from
the host goes through testcontainers.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml

from socklab import Lab, LabNode
from socklab.nodes.errno_repro import catalogue
from socklab.orchestrator.engine_api import Engine

from .conftest import lab_name, leftovers

DELAY = 0.2
CLIENTS = 10
MODES = {"iterative": 5001, "threaded": 5002, "forking": 5003, "selectors": 5004}
ROBUST = {mode: port + 1000 for mode, port in MODES.items()}  # same modes, no delay
DROP_PORT, UNREACH_PORT, RESET_PORT = 7003, 7004, 7005

RESETTER = f"""
import socket, struct
server = socket.create_server(("", {RESET_PORT}))
while True:
    conn, _ = server.accept()
    conn.recv(64)  # the client's probe, then RST instead of FIN
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
"""

# Runs in a client node: fork N tcp-client apps (already imported), release them together
# at START (a wall-clock time shared by every container of the host), print their events.
CROWD = r"""
import json, os, sys, time
sys.path.insert(0, "/opt/socklab")
from socklab.nodes import tcp_client
host, port, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
kids = []
for _ in range(n):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 1)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        time.sleep(max(0.0, start - time.time()))
        code = tcp_client.main([host, port, "--count", "1", "--timeout", "15"])
        sys.stdout.flush()
        os._exit(code)
    os.close(w)
    kids.append((pid, r))
out = []
for pid, r in kids:
    with os.fdopen(r) as f:
        text = f.read()
    _, status = os.waitpid(pid, 0)
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    out.append({"code": os.waitstatus_to_exitcode(status), "events": events})
print(json.dumps(out))
"""

# Runs in a client node: N bad clients, a third each: connect-and-close, half-sent data
# then close without reading, data then RST (SO_LINGER 0).
BAD_CLIENTS = r"""
import socket, struct, sys
from concurrent.futures import ThreadPoolExecutor
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def bad(i):
    s = socket.create_connection((host, port), timeout=5)
    if i % 3 == 1:
        s.sendall(b"half a mess")
    elif i % 3 == 2:
        s.sendall(b"hello")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    return i % 3
with ThreadPoolExecutor(8) as pool:
    kinds = list(pool.map(bad, range(n)))
print(kinds.count(0), kinds.count(1), kinds.count(2))
"""

# Runs in the server node: open fds, threads and live children of a process.
PROC_STATE = r"""
import os, sys
pid = sys.argv[1]
fds = len(os.listdir("/proc/%s/fd" % pid))
threads = [l.split()[1] for l in open("/proc/%s/status" % pid) if l.startswith("Threads:")][0]
kids = 0
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            stat = open("/proc/%s/stat" % p).read()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == pid:
            kids += 1
print(fds, threads, kids)
"""


def events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def lab_doc(ipv6: bool) -> dict[str, Any]:
    server_start = [f"tcp-server --port {p} --mode {m} --delay {DELAY}" for m, p in MODES.items()]
    server_start += [f"tcp-server --port {p} --mode {m}" for m, p in ROBUST.items()]
    server_start += ["udp-server --port 5007"]
    if ipv6:
        server_start += [
            "tcp-server --port 5006 --family inet6 --mode threaded",
            "udp-server --port 5008 --family inet6",
        ]
    return {
        "networks": {"lan": {"ipv6": True} if ipv6 else {}},
        "nodes": {
            "server": {"networks": {"lan": {"aliases": ["echo"]}}, "start": server_start},
            "client": {"replicas": 2, "networks": ["lan"]},
            "peer": {"networks": ["lan"], "cap_add": ["NET_ADMIN"], "start": [["python3", "-c", RESETTER]]},
        },
    }


@pytest.fixture(scope="module")
def lab(
    engine: Engine, node_image: str, ipv6_unsupported: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lab]:
    doc = {"name": lab_name("apps"), **lab_doc(ipv6_unsupported is None)}
    path = tmp_path_factory.mktemp("apps") / "apps.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    made = Lab.load(path, engine=engine)
    try:
        made.up()
        peer = made.node("peer")
        for rule in (
            [str(DROP_PORT), "DROP"],
            [str(UNREACH_PORT), "REJECT", "--reject-with", "icmp-host-unreachable"],
        ):
            done = peer.exec(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", rule[0], "-j", *rule[1:]])
            assert done.ok, done.stderr
        # no default route on the peer: a packet to an outside address has nowhere to go
        assert peer.exec(["ip", "route", "del", "default"]).ok
        wait_listening(peer, RESET_PORT)
        yield made
    finally:
        made.down()
    assert leftovers(engine, made.name) == []


def wait_listening(node: LabNode, port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f":{port} " in node.exec(["ss", "-Hltn"]).stdout:
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {node.name}:{port}")


def ipv4_of(lab: Lab, node: str) -> str:
    """A node's IPv4 address, as its own resolver sees it (/etc/hosts)."""
    done = lab.node(node).exec(
        ["python3", "-c", "import socket; print(socket.gethostbyname(socket.gethostname()))"]
    )
    return done.stdout.strip()


# -- iterative vs concurrent -------------------------------------------------------------


def crowd(lab: Lab, port: int) -> tuple[float, list[dict[str, Any]]]:
    """10 clients, 5 from each client node, released together; the time from the first
    connect to the last echo, and every client's outcome."""
    start = time.time() + 1.5
    results: list[dict[str, Any]] = []
    server = ipv4_of(lab, "server")  # by address: ten lookups at once are not what is tested

    def run(node: str) -> None:
        done = lab.node(node).exec(
            ["python3", "-c", CROWD, server, str(port), str(CLIENTS // 2), f"{start:.3f}"]
        )
        assert done.ok, done.stderr
        results.extend(json.loads(done.stdout))

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(run, ["client-1", "client-2"]))
    assert [r["code"] for r in results] == [0] * CLIENTS, [r["events"][-1:] for r in results]
    first = min(e["ts"] for r in results for e in r["events"] if e["event"] == "connected")
    last = max(e["ts"] for r in results for e in r["events"] if e["event"] == "received")
    return last - first, results


def most_at_once(events: list[dict[str, Any]]) -> int:
    """The most connections a server held at once, from its ``accepted`` and ``closed``
    events in time order: an order of events, not a duration."""
    held = most = 0
    for e in sorted(events, key=lambda e: (e["ts"], e["event"] != "closed")):
        if e["event"] in ("accepted", "closed"):
            held += 1 if e["event"] == "accepted" else -1
            most = max(most, held)
    return most


def server_events(logs: str, port: int) -> list[dict[str, Any]]:
    """The events of the tcp-server on ``port`` (and of its children, which share its app
    name), from a node's logs."""
    records = [json.loads(line[line.index("{") :]) for line in logs.splitlines() if "{" in line]
    app = next(
        r["app"]
        for r in records
        if r.get("event") == "spawned" and r["argv"][:1] == ["tcp-server"] and str(port) in r["argv"]
    )
    return [r for r in records if r.get("app") == app and "ts" in r]


def served(node: Any, port: int) -> list[dict[str, Any]]:
    """The server's events once it closed every connection it accepted (it logs a close
    when it reads the client's EOF, a moment after the client has its echo)."""
    deadline = time.monotonic() + 30
    while True:
        found = server_events(node.logs(), port)
        kinds = [e["event"] for e in found]
        if kinds.count("closed") >= kinds.count("accepted") or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_iterative_serves_one_at_a_time_concurrent_modes_overlap(lab: Lab) -> None:
    held: dict[str, int] = {}
    for mode, port in MODES.items():
        seconds, results = crowd(lab, port)
        assert [r["code"] for r in results] == [0] * CLIENTS, [r["events"][-1:] for r in results]
        held[mode] = most_at_once(served(lab.node("server"), port))
        print(f"{mode}: 10 clients in {seconds:.3f} s, at most {held[mode]} served at once")
    assert held["iterative"] == 1, held  # each connection closed before the next accepted
    for mode in ("threaded", "forking", "selectors"):
        assert held[mode] >= 2, held  # a connection accepted while another was served


# -- robustness ------------------------------------------------------------------------------


def server_pids(lab: Lab) -> dict[int, int]:
    """port -> pid of each tcp-server of the server node, from the supervisor's events."""
    pids: dict[int, int] = {}
    for line in lab.node("server").logs().splitlines():
        if '"event": "spawned"' in line and "tcp-server" in line:
            record = json.loads(line[line.index("{") :])
            argv = record["argv"]
            pids[int(argv[argv.index("--port") + 1])] = int(record["pid"])
    return pids


def proc_state(server: LabNode, pid: int) -> tuple[int, int, int]:
    done = server.exec(["python3", "-c", PROC_STATE, str(pid)])
    assert done.ok, done.stderr
    fds, threads, kids = map(int, done.stdout.split())
    return fds, threads, kids


@pytest.mark.parametrize("mode", list(ROBUST))
def test_server_survives_200_bad_clients(lab: Lab, mode: str) -> None:
    port = ROBUST[mode]
    server, client = lab.node("server"), lab.node("client-1")
    pid = server_pids(lab)[port]
    assert client.exec(["tcp-client", "server", str(port)]).ok
    before = proc_state(server, pid)
    done = client.exec(["python3", "-c", BAD_CLIENTS, "server", str(port), "200"])
    assert done.ok, done.stderr
    assert done.stdout.split() == ["67", "67", "66"]
    deadline = time.monotonic() + 10
    after = proc_state(server, pid)
    while after != before and time.monotonic() < deadline:
        time.sleep(0.2)
        after = proc_state(server, pid)
    assert after == before, f"fds, threads, children before {before}, after {after}"
    good = client.exec(["tcp-client", "echo", str(port), "--count", "3"])
    assert good.ok, good.stdout + good.stderr
    assert server_pids(lab)[port] == pid
    exits = [
        json.loads(line[line.index("{") :])
        for line in server.logs().splitlines()
        if '"event": "exited"' in line
    ]
    assert [e for e in exits if e.get("pid") == pid] == []


# -- errno ----------------------------------------------------------------------------------

REPRODUCIBLE = sorted({row["name"] for row in catalogue() if row["kind"] == "errno" and row["reproducible"]})

# errno -> (node, args aiming at a lab peer)
PEERS: dict[str, tuple[str, list[str]]] = {
    "ECONNREFUSED": ("client-1", ["--host", "server", "--port", "5999"]),
    "ECONNRESET": ("client-1", ["--host", "peer", "--port", str(RESET_PORT)]),
    "ETIMEDOUT": ("client-1", ["--host", "peer", "--port", str(DROP_PORT)]),
    "EALREADY": ("client-1", ["--host", "peer", "--port", str(DROP_PORT)]),
    "EINPROGRESS": ("client-2", ["--host", "echo", "--port", str(MODES["threaded"])]),
    "EHOSTUNREACH": ("client-2", ["--host", "peer", "--port", str(UNREACH_PORT)]),
    "ENETUNREACH": ("peer", ["--host", "192.0.2.1"]),  # a node without a default route
    "EADDRINUSE": ("server", ["--port", str(MODES["iterative"])]),
    "EADDRNOTAVAIL": ("client-1", ["--host", "@server"]),  # the server's address
}


def reproduce(lab: Lab, node: str, name: str, args: list[str]) -> dict[str, Any]:
    args = [ipv4_of(lab, "server") if a == "@server" else a for a in args]
    done = lab.node(node).exec(["errno", name, *args])
    found = events(done.stdout)
    assert done.exit_code == 0 and found and found[-1]["event"] == "reproduced", (
        f"{name} on {node} {args}: exit {done.exit_code}\n{done.stdout}{done.stderr}"
    )
    assert found[-1]["errno"] == name or (name == "EWOULDBLOCK" and found[-1]["errno"] == "EAGAIN")
    return found[-1]


def test_the_list_in_a_node_is_the_list_tested(lab: Lab) -> None:
    done = lab.node("client-1").exec(["errno", "--list", "--json"])
    listed = [r for r in json.loads(done.stdout)["errnos"] if r["kind"] == "errno"]
    rows = {r["name"]: r for r in listed}
    assert sorted({r["name"] for r in listed if r["reproducible"]}) == REPRODUCIBLE
    assert set(PEERS) <= {r["name"] for r in listed if r["reproducible"] and r.get("lab_peer")}
    # capability-dependent: runnable where the topology's cap_add grants it
    assert rows["ECONNABORTED"]["runnable_here"] is False
    peer = {
        r["name"]: r
        for r in json.loads(lab.node("peer").exec(["errno", "--list", "--json"]).stdout)["errnos"]
    }
    assert peer["ECONNABORTED"]["runnable_here"] is True


@pytest.mark.parametrize("name", REPRODUCIBLE)
def test_errno_reproduced_in_a_container(lab: Lab, name: str) -> None:
    """Every reproducible errno, the local way, on the node with NET_ADMIN (and Docker's
    default NET_RAW)."""
    reproduce(lab, "peer", name, [])


@pytest.mark.parametrize("name", sorted(PEERS))
def test_errno_reproduced_against_a_lab_peer(lab: Lab, name: str) -> None:
    node, args = PEERS[name]
    event = reproduce(lab, node, name, args)
    assert "127.0.0.1" not in str(event.get("call")), event


def test_errno_needing_a_capability_says_which(lab: Lab) -> None:
    done = lab.node("client-1").exec(["errno", "ECONNABORTED"])
    assert done.exit_code == 1
    assert "needs CAP_NET_ADMIN" in events(done.stdout)[-1]["message"]


def test_host_unreachable_by_arp_on_an_unused_lab_address(lab: Lab) -> None:
    unused = ipv4_of(lab, "client-1").rsplit(".", 1)[0] + ".250"
    event = reproduce(lab, "client-1", "EHOSTUNREACH", ["--host", unused, "--port", "9"])
    assert unused in event["call"]


# -- resolver, UDP, IPv6, UNIX, demos --------------------------------------------------------


def resolve(node: LabNode, query: str) -> dict[str, Any]:
    done = node.exec(["resolve", query, "--json"])
    assert done.ok, done.stdout + done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_resolve_real_hostnames_and_aliases(lab: Lab) -> None:
    client = lab.node("client-1")
    server_ip = ipv4_of(lab, "server")
    domain = f"{lab.name}.test"
    echo = resolve(client, "echo")
    assert echo["gethostbyname"]["result"] == server_ip
    assert echo["gethostbyname_ex"]["result"] == {"name": "echo", "aliases": [], "addresses": [server_ip]}
    fqdn = resolve(client, f"server.{domain}")
    assert fqdn["gethostbyname_ex"]["result"]["addresses"] == [server_ip]
    # Docker's embedded DNS answers the reverse lookup with <container>.<network>
    rev = resolve(client, server_ip)["gethostbyaddr"][server_ip]["result"]
    assert rev["name"] == f"socklab-{lab.name}-server.socklab-{lab.name}-lan"
    # a replicated node's name is every replica
    both = resolve(lab.node("server"), "client")["gethostbyname_ex"]["result"]["addresses"]
    assert len(both) == 2
    # the node's own name: hostname, domain <lab>.test
    own = client.exec(["python3", "-c", "import socket; print(socket.getfqdn())"]).stdout
    assert own.strip() == f"client-1.{domain}"
    assert resolve(client, "client-1")["gethostname"] == "client-1"
    # (a name Docker does not know waits for its upstream: seconds per call where the host
    # has no DNS; the lab DNS answers NXDOMAIN at once, see test_dns.py)


def test_udp_echo_across_containers(lab: Lab) -> None:
    # --family inet: on a dual-stack network the name's first address may be the AAAA,
    # and this server listens on IPv4 only (UDP has no handshake to try the next address)
    done = lab.node("client-2").exec(["udp-client", "echo", "5007", "--count", "5", "--family", "inet"])
    assert done.ok, done.stdout + done.stderr
    assert any(e["event"] == "received" for e in events(done.stdout))


def test_ipv6_across_containers(lab: Lab, ipv6_unsupported: str | None) -> None:
    if ipv6_unsupported:
        pytest.skip(f"the Docker daemon cannot make IPv6 networks: {ipv6_unsupported}")
    client = lab.node("client-1")
    aaaa = [
        r["address"] for r in resolve(client, "server")["getaddrinfo"]["result"] if r["family"] == "AF_INET6"
    ]
    assert aaaa and aaaa[0].startswith("fd")
    tcp = client.exec(["tcp-client", "server", "5006", "--family", "inet6", "--count", "2"])
    assert tcp.ok, tcp.stdout + tcp.stderr
    connected = next(e for e in events(tcp.stdout) if e["event"] == "connected")
    assert connected["peer"] == f"[{aaaa[0]}]:5006"
    udp = client.exec(["udp-client", aaaa[0], "5008", "--family", "inet6", "--count", "3"])
    assert udp.ok, udp.stdout + udp.stderr


def test_unix_stream_and_datagram_in_a_node(lab: Lab) -> None:
    node = lab.node("client-2")
    for argv in (
        ["tcp-server", "--family", "unix", "--path", "/tmp/echo.sock"],
        ["udp-server", "--family", "unix", "--path", "/tmp/echo.dgram"],
    ):
        started = node.exec(["socklab-start", *argv])
        assert started.ok, started.stderr
    tcp = node.exec(["tcp-client", "/tmp/echo.sock", "--family", "unix", "--count", "2"])
    assert tcp.ok, tcp.stdout + tcp.stderr
    assert next(e for e in events(tcp.stdout) if e["event"] == "connected")["peer"] == "unix:/tmp/echo.sock"
    udp = node.exec(["udp-client", "/tmp/echo.dgram", "--family", "unix", "--count", "2"])
    assert udp.ok, udp.stdout + udp.stderr


def test_every_line_of_an_app_carries_the_name_its_supervisor_gave_it(lab: Lab) -> None:
    """The server node runs eight tcp-servers: `tcp-server`, `tcp-server#2`... in the
    supervisor's tags and events, and in the `app` of their own events."""
    spawned: dict[str, int] = {}
    own: dict[str, set[str]] = {}
    for line in lab.node("server").logs().splitlines():
        tag, _, text = line.partition(" ")[2].partition(" ")
        if not text.startswith("{"):
            continue
        record = json.loads(text)
        if tag.startswith("socklab-node[") and record["event"] == "spawned":
            spawned[record["app"]] = record["pid"]
        elif "app" in record:
            own.setdefault(tag, set()).add(record["app"])
    assert {"tcp-server", "tcp-server#2", "tcp-server#8", "udp-server"} <= set(spawned)
    for name, pid in spawned.items():
        if name.startswith(("tcp-server", "udp-server")):
            assert own[f"{name}[{pid}]"] == {name}, (name, own)


def test_argument_errors_in_a_node(lab: Lab) -> None:
    client = lab.node("client-1")
    for argv in (
        ["tcp-client", "echo", "99999"],
        ["udp-client", "echo", "0"],
        ["errno", "ECONNREFUSED", "--host", "server", "--port", "70000"],
    ):
        done = client.exec(argv)
        assert done.exit_code == 2 and "is not a port (1..65535)" in done.stderr, argv
    local = client.exec(["errno", "ECONNREFUSED", "--port", "1"])  # --port alone: 127.0.0.1
    assert local.ok and events(local.stdout)[0]["call"] == "connect(127.0.0.1:1)"
    needs_host = client.exec(["errno", "ECONNRESET", "--port", "5000"])
    assert needs_host.exit_code == 2 and "--port needs --host" in needs_host.stderr
    no_path = client.exec(["socklab-start", "tcp-server", "--family", "unix"])
    assert no_path.exit_code == 1 and "exited with code 2 before it was ready" in no_path.stderr
    assert "--path is required for --family unix" in client.logs()


DEMOS = [
    ["socketpair"],
    ["makefile"],
    ["oob"],
    ["seqpacket"],
    ["sockopts"],
    ["types"],
    ["names"],
    ["shutdown"],
    ["raw-ping", "server", "--count", "2"],
]


def test_demos_in_a_container(lab: Lab) -> None:
    node = lab.node("peer")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(node.exec, DEMOS))
    failed = {
        d[0]: r.stdout[-300:] + r.stderr[-300:] for d, r in zip(DEMOS, results, strict=True) if not r.ok
    }
    assert failed == {}


# -- one node container from the host (testcontainers) ------------------------------------


class NodeContainer:
    """A node image container with tcp-servers, reached from the host on 127.0.0.1 only."""

    def __init__(self, image: str, starts: list[list[str]], ports: list[int]) -> None:
        from testcontainers.core.container import DockerContainer

        self.label = lab_name("tc")  # the session's prefix: its sweep removes it after a crash
        self.container = (
            DockerContainer(image)
            .with_command("socklab-node")
            .with_env("SOCKLAB_START", json.dumps(starts))
            .with_kwargs(labels={"io.socklab.lab": self.label}, init=True)
        )
        for port in ports:  # bound to 127.0.0.1, a free host port each
            self.container.ports[f"{port}/tcp"] = ("127.0.0.1", None)  # type: ignore[assignment]

    def __enter__(self) -> NodeContainer:
        self.container.start()
        deadline = time.monotonic() + 30
        while b'"event": "ready"' not in self.container.get_logs()[0]:
            assert time.monotonic() < deadline, self.container.get_logs()
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        self.container.stop()

    def port(self, port: int) -> int:
        return int(self.container.get_exposed_port(port))

    def logs(self) -> str:
        return self.container.get_logs()[0].decode()

    def served(self, port: int) -> list[dict[str, Any]]:
        return served(self, port)


def host_crowd(port: int, clients: int = CLIENTS) -> float:
    """Clients on the host, released together; seconds until the last echo."""
    barrier = threading.Barrier(clients)
    done: list[float] = []

    def one(_: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
            barrier.wait()
            s.sendall(b"hello")
            assert s.recv(64) == b"hello"
            done.append(time.monotonic())

    start = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(clients)))
    return max(done) - start


def test_a_node_container_from_the_host(node_image: str, engine: Engine) -> None:
    starts = [
        ["tcp-server", "--port", "5000", "--mode", "iterative", "--delay", str(DELAY)],
        ["tcp-server", "--port", "5001", "--mode", "threaded", "--delay", str(DELAY)],
    ]
    with NodeContainer(node_image, starts, [5000, 5001]) as node:
        wrapped = node.container.get_wrapped_container()
        wrapped.reload()  # the attributes of now, with the ports Docker bound at start
        info = wrapped.attrs
        bound = {b["HostIp"] for p in info["NetworkSettings"]["Ports"].values() for b in p}
        assert bound == {"127.0.0.1"}
        assert host_crowd(node.port(5000), 1) >= DELAY  # the server's delay, at least
        iterative = host_crowd(node.port(5000))
        threaded = host_crowd(node.port(5001))
        print(f"from the host: iterative {iterative:.3f} s, threaded {threaded:.3f} s")
        held = {port: most_at_once(node.served(port)) for port in (5000, 5001)}
        assert held[5000] == 1 and held[5001] >= 2, held  # iterative: one at a time
    assert engine.containers({"io.socklab.lab": node.label}) == []
