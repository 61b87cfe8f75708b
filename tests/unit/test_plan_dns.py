"""The lab DNS planner: ``dns:`` records -> the dnsmasq node, its argv, and who asks it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from socklab.errors import LabError
from socklab.topology.dns import DNSMASQ, Served, absolute, problems
from socklab.topology.model import Topology
from socklab.topology.plan import LabPlan, plan


def topo(dns: Any = None, **doc: Any) -> Topology:
    base: dict[str, Any] = {
        "name": "lab",
        "networks": {"lan": {"subnet": "10.77.1.0/24"}},
        "nodes": {
            "server": {"networks": {"lan": {"ip": "10.77.1.10", "aliases": ["echo"]}}},
            "client": {"replicas": 2, "networks": ["lan"]},
        },
    }
    base.update(doc)
    if dns is not None:
        base["dns"] = dns
    return Topology.model_validate(base)


def served(p: LabPlan) -> set[tuple[str, str, str]]:
    assert p.dns is not None
    return {(s.type, s.name, s.value) for s in p.dns.served}


def test_without_dns_nothing_changes() -> None:
    p = plan(topo())
    assert p.dns is None
    assert [c.instance for c in p.containers] == ["server", "client-1", "client-2"]
    assert all(c.resolv_conf is None for c in p.containers)


def test_records_get_a_dns_node_on_every_network_added_last() -> None:
    p = plan(
        topo(
            [
                {"name": "www", "cname": "server"},
                {"name": "multi", "a": ["10.9.9.5", "10.9.9.6"]},
                {"ptr": "10.9.9.5", "name": "srv"},
            ],
            networks={"lan": {"subnet": "10.77.1.0/24"}, "wan": {"subnet": "10.77.2.0/24"}},
        )
    )
    assert p.dns is not None and p.dns.server == "dns" and p.dns.added
    dns = p.container("dns")
    assert [c.instance for c in p.containers][-1] == "dns"
    assert [(e.network, str(e.ip)) for e in dns.endpoints] == [("lan", "10.77.1.4"), ("wan", "10.77.2.2")]
    assert [(c.argv, c.wait) for c in dns.start] == [(list(p.dns.argv), "udp/53")]
    argv = p.dns.argv
    assert argv[0] == DNSMASQ
    assert {"--keep-in-foreground", "--no-resolv", "--no-hosts", "--server=127.0.0.11"} <= set(argv)
    assert "--cname=www.lab.test,server.lab.test" in argv
    assert "--host-record=server.lab.test,10.77.1.10" in argv  # dnsmasq needs the CNAME target
    assert argv.index("--host-record=multi.lab.test,10.9.9.5") < argv.index(
        "--host-record=multi.lab.test,10.9.9.6"
    )
    assert "--ptr-record=5.9.9.10.in-addr.arpa,srv.lab.test" in argv
    # every node address answers its lab name in reverse
    assert ("PTR", "10.1.77.10.in-addr.arpa", "server.lab.test") in served(p)
    assert ("PTR", "2.1.77.10.in-addr.arpa", "client-1.lab.test") in served(p)
    assert ("PTR", "2.2.77.10.in-addr.arpa", "dns.lab.test") in served(p)


def test_every_node_sharing_a_network_asks_the_dns_node() -> None:
    p = plan(topo([{"name": "www", "cname": "server"}]))
    assert p.dns is not None
    assert p.dns.nameservers == {
        "dns": "127.0.0.1",
        "server": "10.77.1.4",
        "client-1": "10.77.1.4",
        "client-2": "10.77.1.4",
    }
    conf = p.container("client-1").resolv_conf
    assert conf is not None
    lines = [line for line in conf.splitlines() if not line.startswith("#")]
    # Docker's own resolver options (engine dns_opt): a silent server costs 2 s, not 10
    assert lines == ["nameserver 10.77.1.4", "search lab.test", "options ndots:1 timeout:1 attempts:2"]
    assert "nameserver 127.0.0.1" in (p.container("dns").resolv_conf or "")


def test_named_server_runs_dnsmasq_before_its_own_start_commands() -> None:
    p = plan(
        topo(
            {"server": "ns", "records": [{"name": "www", "cname": "server"}]},
            networks={"lan": {"subnet": "10.77.1.0/24"}, "other": {}},
            nodes={
                "server": {"networks": {"lan": {"ip": "10.77.1.10"}}},
                "ns": {"networks": ["lan"], "start": ["tcp-server --port 5000"]},
                "far": {"networks": ["other"]},
            },
        )
    )
    assert p.dns is not None and (p.dns.server, p.dns.added) == ("ns", False)
    assert [c.instance for c in p.containers] == ["server", "ns", "far"]
    ns = p.container("ns")
    assert [c.argv for c in ns.start] == [list(p.dns.argv), ["tcp-server", "--port", "5000"]]
    # a node with no network in common with the DNS server keeps Docker's embedded DNS
    assert p.container("far").resolv_conf is None
    assert "far" not in p.dns.nameservers


def test_dns_alone_still_gives_lab_names_in_reverse() -> None:
    p = plan(topo({}))
    assert p.dns is not None
    assert {s.type for s in p.dns.served} == {"PTR"}


def test_node_names_stand_for_their_addresses() -> None:
    p = plan(
        topo(
            [
                {"name": "pool", "a": ["client"]},
                {"name": "one", "a": "client-2"},
                {"name": "six", "aaaa": ["server", "fd00::5"]},
                {"name": "mail", "cname": "pool"},
            ],
            networks={"lan": {"subnet": "10.77.1.0/24", "ipv6": "fd00:77::/64"}},
        )
    )
    rrs = served(p)
    assert {
        ("A", "pool.lab.test", "10.77.1.2"),
        ("A", "pool.lab.test", "10.77.1.3"),
        ("A", "one.lab.test", "10.77.1.3"),
        ("AAAA", "six.lab.test", "fd00:77::2"),
        ("AAAA", "six.lab.test", "fd00::5"),
        ("CNAME", "mail.lab.test", "pool.lab.test"),
    } <= rrs
    assert (
        "PTR",
        "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.7.0.0.0.0.d.f.ip6.arpa",
        "server.lab.test",
    ) in rrs


def test_a_ptr_record_replaces_the_node_default_and_absolute_names_stay() -> None:
    p = plan(
        topo([{"ptr": "10.77.1.10", "name": "web.example.org."}, {"name": "api.example.org", "a": "server"}])
    )
    rrs = served(p)
    assert ("PTR", "10.1.77.10.in-addr.arpa", "web.example.org") in rrs
    assert ("PTR", "10.1.77.10.in-addr.arpa", "server.lab.test") not in rrs
    assert ("A", "api.example.org", "10.77.1.10") in rrs
    assert [s for s in served(p) if s[1] == "10.1.77.10.in-addr.arpa"] == [
        ("PTR", "10.1.77.10.in-addr.arpa", "web.example.org")
    ]


def test_absolute_names() -> None:
    assert absolute("www", "lab.test") == "www.lab.test"
    assert absolute("WWW.Example.org.", "lab.test") == "www.example.org"
    assert Served("A", "x", "1") == Served("A", "x", "1")


@pytest.mark.parametrize(
    ("dns", "nodes", "expected"),
    [
        ({"server": "srever"}, None, "dns.server: unknown node 'srever' — did you mean 'server'?"),
        ({"server": "client"}, None, "dns.server: node 'client' has 2 replicas"),
        (
            {"server": "custom"},
            {"custom": {"networks": ["lan"], "image": "alpine:3"}},
            "dns.server: node 'custom' runs image 'alpine:3', which may lack dnsmasq",
        ),
        ({}, {"dns": {"networks": ["lan"]}}, "dns: a node is already named 'dns'"),
        (
            [{"name": "echo", "a": "10.1.1.1"}],
            None,
            "dns.records[0].name: 'echo' is already a node's name or alias",
        ),
        (
            [{"name": "Client-1.lab.test", "a": "10.1.1.1"}],
            None,
            "dns.records[0].name: 'Client-1.lab.test' is already a node's name or alias",
        ),
        (
            [{"name": "x", "a": ["10.1.1.1", "sever"]}],
            None,
            "dns.records[0].a: unknown node 'sever' — did you mean 'server'?",
        ),
        ([{"name": "x", "aaaa": "server"}], None, "dns.records[0].aaaa: node 'server' has no IPv6"),
        (
            [{"name": "www", "cname": "nowhere"}],
            None,
            "dns.records[0].cname: 'nowhere' is neither a node nor a name with `a:`/`aaaa:` records",
        ),
        (
            [{"name": "www", "cname": "server"}, {"name": "www", "a": "10.1.1.1"}],
            None,
            "dns.records[0].name: 'www' has other records",
        ),
        (
            [{"ptr": "10.1.1.1", "name": "a"}, {"ptr": "10.1.1.1", "name": "b"}],
            None,
            "dns.records[1].ptr: 10.1.1.1 already has a PTR record (dns.records[0])",
        ),
    ],
)
def test_problems_name_the_path(dns: Any, nodes: dict[str, Any] | None, expected: str) -> None:
    extra = (
        {
            "nodes": {
                "server": {"networks": {"lan": {"aliases": ["echo"]}}},
                "client": {"replicas": 2, "networks": ["lan"]},
                **nodes,
            }
        }
        if nodes
        else {}
    )
    t = topo(dns, **extra)
    found = [str(p) for p in problems(t)]
    assert any(f.startswith(expected) for f in found), found
    with pytest.raises(LabError, match="the lab's DNS cannot be planned"):
        plan(t)


def test_a_good_dns_section_has_no_problems() -> None:
    assert (
        problems(
            topo(
                [
                    {"name": "www", "cname": "server.lab.test"},
                    {"name": "alias", "cname": "pool"},
                    {"name": "pool", "a": "client"},
                    {"ptr": "10.1.1.1", "name": "srv"},
                ]
            )
        )
        == []
    )
    assert problems(topo()) == []


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"name": "x"}, "a record has `a:`/`aaaa:` addresses, or a `cname:` target, or a `ptr:`"),
        ({"name": "x", "a": "10.1.1.1", "cname": "y"}, "(this one has a/aaaa and cname)"),
        ({"name": "x", "aaaa": ["10.1.1.1"]}, "'10.1.1.1' is neither an IPv6 address nor a node"),
        ({"name": "x", "a": "fd00::1"}, "'fd00::1' is neither an IPv4 address nor a node name"),
        ({"name": "-x", "a": "10.1.1.1"}, "String should match pattern"),
        ({"name": "x", "ptr": "server"}, "ptr"),
        ({"name": "x", "a": "10.1.1.1", "ttl": 5}, "Extra inputs are not permitted"),
    ],
)
def test_record_shape(record: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        topo([record])


def test_dns_forms() -> None:
    t = topo({"server": "server", "records": [{"name": "a", "a": "10.1.1.1"}]})
    assert t.dns is not None and t.dns.server == "server"
    short = topo([{"name": "a", "a": "10.1.1.1"}])
    assert short.dns is not None and short.dns.server is None and len(short.dns.records) == 1


def test_lab_names_are_local_and_docker_names_are_forwarded_by_name() -> None:
    p = plan(topo([], networks={"lan": {"subnet": "10.77.1.0/24", "ipv6": "fd00:77::/64"}}))
    assert p.dns is not None
    argv = p.dns.argv
    # a miss without a dot, in the lab's domain or in a lab subnet's reverse zone is NXDOMAIN
    # at once (Docker's embedded DNS would wait for its upstream)
    assert {
        "--local=//",
        "--local=/lab.test/",
        "--local=/1.77.10.in-addr.arpa/",
        "--local=/0.0.0.0.0.0.0.0.7.7.0.0.0.0.d.f.ip6.arpa/",
    } <= set(argv)
    # what Docker knows is still asked of Docker, name by name
    assert "--server=/socklab-lab-server/server/server.lab.test/echo/127.0.0.11" in argv
    assert "--server=/socklab-lab-client-2/client-2/client-2.lab.test/client/127.0.0.11" in argv
    assert "--server=127.0.0.11" in argv


def test_nodes_the_server_shares_no_network_with_are_not_forwarded() -> None:
    """Docker's DNS on the server does not know them: forwarded, a miss would wait for
    Docker's upstream (EAI_AGAIN after 10 s a name); local, it is NXDOMAIN at once."""
    p = plan(
        topo(
            {"server": "ns", "records": [{"name": "www", "cname": "server"}]},
            networks={"lan": {"subnet": "10.77.1.0/24"}, "far": {"subnet": "10.77.2.0/24"}},
            nodes={
                "server": {"networks": ["lan"]},
                "ns": {"networks": ["lan"]},
                "island": {"networks": {"far": {"aliases": ["isle"]}}},
                "bridge": {"networks": ["far", "lan"]},
            },
        )
    )
    assert p.dns is not None
    forwarded = [a for a in p.dns.argv if a.startswith("--server=/")]
    assert forwarded == [
        "--server=/socklab-lab-server/server/server.lab.test/127.0.0.11",
        "--server=/socklab-lab-ns/ns/ns.lab.test/127.0.0.11",
        "--server=/socklab-lab-bridge/bridge/bridge.lab.test/127.0.0.11",
    ]
    assert not any("island" in a or "isle" in a for a in p.dns.argv if a.startswith("--server"))
    assert {"--local=//", "--local=/lab.test/"} <= set(p.dns.argv)
    # its address still answers its lab name in reverse
    assert ("PTR", "2.2.77.10.in-addr.arpa", "island.lab.test") in served(p)
