"""The planner: topology -> names, labels, subnets and addresses, without a daemon."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv6Address, ip_network

import pytest

from socklab.errors import LabError
from socklab.topology.model import Topology
from socklab.topology.plan import node_environment, plan


def topo(**doc: object) -> Topology:
    return Topology.model_validate({"name": "echo", **doc})


def test_names_labels_hostnames_and_aliases() -> None:
    p = plan(
        topo(
            networks={"lan": {"subnet": "10.77.1.0/24"}},
            nodes={
                "server": {"networks": {"lan": {"ip": "10.77.1.10", "aliases": ["echo"]}}},
                "client": {"replicas": 2, "networks": ["lan"]},
            },
        ),
        source="/labs/echo.yml",
    )
    assert [n.docker_name for n in p.networks] == ["socklab-echo-lan"]
    assert p.networks[0].labels == {
        "io.socklab.lab": "echo",
        "io.socklab.file": "/labs/echo.yml",
        "io.socklab.network": "lan",
    }
    assert [c.container_name for c in p.containers] == [
        "socklab-echo-server",
        "socklab-echo-client-1",
        "socklab-echo-client-2",
    ]
    server, c1, _ = p.containers
    assert (server.hostname, server.domainname, server.fqdn) == ("server", "echo.test", "server.echo.test")
    assert server.labels["io.socklab.node"] == "server"
    assert server.endpoints[0].aliases == ("server", "server.echo.test", "echo")
    assert c1.endpoints[0].aliases == ("client-1", "client-1.echo.test", "client")
    assert server.env == {"SOCKLAB_LAB": "echo", "SOCKLAB_NODE": "server"}


def test_static_ips_first_then_lowest_free() -> None:
    p = plan(
        topo(
            networks={"lan": {"subnet": "10.77.1.0/29"}},
            nodes={
                "a": {"networks": ["lan"]},
                "b": {"networks": {"lan": {"ip": "10.77.1.2"}}},
                "c": {"networks": ["lan"]},
            },
        )
    )
    assert p.networks[0].gateway == IPv4Address("10.77.1.1")
    assert [str(c.endpoints[0].ip) for c in p.containers] == ["10.77.1.3", "10.77.1.2", "10.77.1.4"]


def test_full_subnet_is_a_clear_error() -> None:
    with pytest.raises(LabError, match="network 'lan' has no free address left for node 'c-6'"):
        plan(
            topo(
                networks={"lan": {"subnet": "10.77.1.0/29"}},
                nodes={"c": {"replicas": 6, "networks": ["lan"]}},
            )
        )


def test_auto_subnets_avoid_taken_and_declared() -> None:
    p = plan(
        topo(
            networks={"a": {}, "b": {"subnet": "10.100.1.0/24"}, "c": {"ipv6": True}},
            nodes={"n": {"networks": ["a", "b", "c"]}},
        ),
        taken=[ip_network("10.100.0.0/24"), ip_network("10.100.2.0/23"), ip_network("fd5c:10::/64")],
    )
    subnets = {n.name: str(n.subnet) for n in p.networks}
    assert subnets == {"a": "10.100.4.0/24", "b": "10.100.1.0/24", "c": "10.100.5.0/24"}
    c = p.networks[2]
    assert str(c.ipv6_subnet) == "fd5c:10:0:1::/64"
    assert c.ipv6_gateway == IPv6Address("fd5c:10:0:1::1")
    assert p.containers[0].endpoints[2].ipv6 == IPv6Address("fd5c:10:0:1::2")


def test_networks_are_internal_unless_a_node_publishes_ports() -> None:
    p = plan(
        topo(
            networks={"lan": {}, "wan": {}},
            nodes={"web": {"networks": ["wan"], "ports": ["8080:80"]}, "db": {"networks": ["lan"]}},
        )
    )
    assert {n.name: n.internal for n in p.networks} == {"lan": True, "wan": False}
    port = p.containers[0].ports[0]
    assert (str(port.host_ip), port.host_port, port.container_port) == ("127.0.0.1", 8080, 80)


def test_start_commands_are_argv_never_a_shell() -> None:
    p = plan(
        topo(
            networks={"lan": {}},
            nodes={
                "s": {
                    "networks": ["lan"],
                    "start": ["tcp-server --port 5000 --message 'a b'", ["sh", "-c", "echo hi"]],
                }
            },
        )
    )
    assert [c.argv for c in p.containers[0].start] == [
        ["tcp-server", "--port", "5000", "--message", "a b"],
        ["sh", "-c", "echo hi"],
    ]


def test_start_commands_reach_the_supervisor_with_what_they_wait_for() -> None:
    p = plan(
        topo(
            networks={"lan": {}},
            nodes={
                "s": {
                    "networks": ["lan"],
                    "start": [
                        "tcp-server --port 5000",
                        {"cmd": "nginx -g 'daemon off;'", "wait": "tcp/80"},
                        {"cmd": ["sleep", "9"], "wait": "none"},
                        {"cmd": "true", "wait": 2},
                    ],
                }
            },
        )
    )
    assert json.loads(node_environment(p.containers[0])["SOCKLAB_START"]) == [
        ["tcp-server", "--port", "5000"],
        {"argv": ["nginx", "-g", "daemon off;"], "wait": "tcp/80"},
        {"argv": ["sleep", "9"], "wait": "none"},
        {"argv": ["true"], "wait": 2.0},
    ]


def test_unknown_node_lookup_names_the_nodes() -> None:
    p = plan(topo(networks={"lan": {}}, nodes={"a": {"networks": ["lan"]}}))
    with pytest.raises(LabError) as err:
        p.container("b")
    assert err.value.message == "node 'b' not found in lab 'echo'" and err.value.hint == "nodes: a"
