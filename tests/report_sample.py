"""A run result as a real lab would give it, made without Docker: dual-stack nodes with long
names, a refused connection, a long conversation, a UDP exchange, connections both ways,
steps whose durations and commands are long, a graph with aliases, a router, the lab's
DNS server and an impaired link. The report page is checked against it."""

from __future__ import annotations

from typing import Any

from socklab.scenario.results import NodeOutput, RunResult, StepResult
from socklab.topology import parse_topology
from socklab.topology.graph import LabGraph, lab_graph
from socklab.topology.plan import plan

T0 = 1_800_000_000.0
CLIENT = "a-rather-long-client-name-1"
V6 = {"server": "fd5c:10:0:1::2", CLIENT: "fd5c:10:0:1::3", "peer-2": "fd5c:10:0:1::4"}
V4 = {"server": "10.100.7.2", CLIENT: "10.100.7.3", "peer-2": "10.100.7.4"}
#: The sample's lab: the addresses it plans are V4 and V6 (lowest free, in topology order).
TOPOLOGY = f"""
name: dual-stack-lab
networks:
  lan: {{subnet: 10.100.7.0/24, ipv6: "fd5c:10:0:1::/64"}}
  wan: {{subnet: 10.100.8.0/24, impair: {{loss: 5%, delay: 40ms}}}}
nodes:
  server: {{networks: {{lan: {{aliases: [echo, www]}}}}}}
  {CLIENT}: {{networks: [lan]}}
  peer-2: {{networks: [lan, wan]}}
  gateway: {{networks: [lan, wan], router: true}}
dns: {{}}
"""


def sample_graph() -> LabGraph:
    return lab_graph(plan(parse_topology(TOPOLOGY)))


def _event(
    t: float, node: str, app: str, pid: int, event: str, peer: str | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "time": "",
        "ts": T0 + t,
        "node": node,
        "app": app,
        "pid": pid,
        "event": event,
        "peer": peer,
        "fields": fields,
    }


def tcp_conversation(
    t: float,
    client: str,
    port: int,
    messages: int,
    client_port: int,
) -> list[dict[str, Any]]:
    """An echo conversation over IPv6, as tcp-client and tcp-server log it."""
    c, s = f"[{V6[client]}]:{client_port}", f"[{V6['server']}]:{port}"
    out = [
        _event(t, client, "tcp-client", 20, "connected", s, local=c, host="server"),
        _event(t + 0.0004, "server", "tcp-server", 8, "accepted", c, local=s),
    ]
    for i in range(messages):
        t += 0.01
        out += [
            _event(t, client, "tcp-client", 20, "sent", s, seq=i + 1, bytes=5, data="hello"),
            _event(t + 0.001, "server", "tcp-server", 8, "received", c, bytes=5, data="hello"),
            _event(t + 0.002, "server", "tcp-server", 8, "sent", c, bytes=5),
            _event(t + 0.0015, client, "tcp-client", 20, "received", s, seq=i + 1, bytes=5, data="hello"),
        ]
    return [
        *out,
        _event(t + 0.01, client, "tcp-client", 20, "closed", s, how="FIN"),
        _event(t + 0.011, "server", "tcp-server", 8, "closed", c, reason="eof"),
    ]


def timeline() -> list[dict[str, Any]]:
    events = [
        _event(0.0, "server", "tcp-server", 8, "listening", None, address="[::]:5000"),
        *tcp_conversation(0.1, CLIENT, 5000, 2, 41000),
        _event(
            0.5,
            CLIENT,
            "tcp-client",
            21,
            "error",
            f"{V4['server']}:5999",
            errno="ECONNREFUSED",
            call="connect",
        ),
        *tcp_conversation(0.7, "peer-2", 5000, 40, 41002),
        _event(
            1.2,
            "peer-2",
            "udp-client",
            22,
            "connected",
            f"{V4['server']}:5001",
            local=f"{V4['peer-2']}:50000",
        ),
        _event(1.201, "peer-2", "udp-client", 22, "sent", f"{V4['server']}:5001", bytes=8),
        _event(1.202, "server", "udp-server", 9, "received", f"{V4['peer-2']}:50000", bytes=8),
        _event(1.203, "server", "udp-server", 9, "sent", f"{V4['peer-2']}:50000", bytes=8),
        _event(1.204, "peer-2", "udp-client", 22, "received", f"{V4['server']}:5001", bytes=8),
        # no connection was tried: no conversation
        _event(1.25, CLIENT, "tcp-client", 24, "error", "nosuchhost", errno="EAI_NONAME", call="getaddrinfo"),
        _event(
            1.3, CLIENT, "tcp-client", 23, "error", f"{V4['peer-2']}:7000", errno="ETIMEDOUT", call="connect"
        ),
    ]
    return sorted(events, key=lambda e: e["ts"])


def step(
    index: str,
    kind: str,
    title: str,
    duration: float,
    status: str = "passed",
    detail: str = "",
    outputs: list[NodeOutput] | None = None,
) -> StepResult:
    return StepResult(
        index,
        kind,
        title,
        status,
        T0,
        duration,
        detail,  # type: ignore[arg-type]
        outputs or [],
    )


def sample_run() -> RunResult:
    graph = sample_graph()
    nodes = [
        {
            "node": n.name,
            "container": f"socklab-lab-{n.name}",
            "state": "running",
            "networks": {x.network: f"{x.ip}/24" for x in graph.links if x.node == n.name},
            "ipv6": {x.network: f"{x.ipv6}/64" for x in graph.links if x.node == n.name and x.ipv6},
        }
        for n in graph.nodes
    ]
    snapshot = {
        CLIENT: [
            {
                "proto": "tcp6",
                "recv_q": 0,
                "send_q": 0,
                "local_ip": V6[CLIENT],
                "local_port": 41000,
                "remote_ip": V6["server"],
                "remote_port": 5000,
                "state": "ESTABLISHED",
                "pid": 20,
                "program": "tcp-client",
            }
        ]
    }
    shot = step("6", "snapshot", "snapshot sockets", 1.67, detail="1 socket on 1 node")
    shot.snapshot = snapshot
    out = NodeOutput(
        CLIENT,
        1,
        '{"event": "error", "errno": "ECONNREFUSED"}\n' * 3,
        "tcp-client: ECONNREFUSED (111): connection refused\n",
        0.31,
        "ECONNREFUSED",
    )
    steps = [
        step("1", "wait", "wait server listening tcp/5000", 0.14),
        step(
            "2",
            "run",
            f"run {CLIENT}: tcp-client server 5000 --count 2 --message "
            "a-long-message-without-any-space-in-it-at-all",
            12.34,
        ),
        step(
            "3",
            "run",
            f"run {CLIENT}: tcp-client server 5999",
            1.67,
            "failed",
            "a-rather-long-client-name-1: expected exit 0, got ECONNREFUSED: 'tcp-client: "
            "ECONNREFUSED (111): connection refused by 10.100.7.2:5999'",
            [out],
        ),
        step("4", "start", "start peer-2: tcp-client server 5000 --count 40", 0.53),
        step(
            "5",
            "expect_sockets",
            "expect_sockets server: >= 1 ESTABLISHED sockets on local port 5000",
            100.25,
            detail="found server: 1",
        ),
        shot,
    ]
    return RunResult(
        lab="dual-stack-lab",
        scenario="default",
        started=T0,
        duration=123.4,
        topology=parse_topology(TOPOLOGY).model_dump(mode="json"),
        steps=steps,
        nodes=nodes,
        timeline=timeline(),
        connections=[
            {"client": CLIENT, "server": "server", "port": 5000, "count": 1},
            {"client": "peer-2", "server": "server", "port": 5000, "count": 2},
            {"client": "server", "server": "peer-2", "port": 7000, "count": 1},
        ],
        graph=graph.as_dict(),
        run_dir="runs/x",
    )
