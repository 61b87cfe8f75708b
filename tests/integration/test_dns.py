"""The lab's DNS server (dnsmasq in a node) for real: records, reverse names, forwarding."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from socklab import Lab, LabNode
from socklab.orchestrator.engine_api import Engine

from .conftest import lab_name, leftovers

LITERAL, LEGACY = "192.0.2.10", "192.0.2.25"  # TEST-NET-1: names only, never contacted


def resolve(node: LabNode, query: str, *more: str) -> dict[str, Any]:
    done = node.exec(["resolve", query, "--json", *more])
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def host_entry(answer: dict[str, Any], call: str = "gethostbyname_ex") -> tuple[Any, ...]:
    found = answer[call]["result"]
    return found["name"], found["aliases"], sorted(found["addresses"])


def ipv4_of(node: LabNode) -> str:
    done = node.exec(["python3", "-c", "import socket; print(socket.gethostbyname(socket.gethostname()))"])
    return done.stdout.strip()


@pytest.fixture(scope="module")
def lab(
    engine: Engine, node_image: str, ipv6_unsupported: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lab]:
    records: list[dict[str, Any]] = [
        {"name": "www", "cname": "server"},
        {"name": "pool", "a": ["client", LITERAL]},
        {"ptr": LITERAL, "name": "legacy"},
        {"name": "mail.example.org", "a": LEGACY},
        {"name": "smtp", "cname": "mail.example.org"},
    ]
    starts = ["tcp-server --port 5000 --mode threaded"]
    if ipv6_unsupported is None:
        records.append({"name": "six", "aaaa": "server"})
        starts.append("tcp-server --port 5006 --family inet6 --mode threaded")
    doc = {
        "name": lab_name("dns"),
        "networks": {"lan": {"ipv6": True} if ipv6_unsupported is None else {}},
        "nodes": {
            "server": {"networks": {"lan": {"aliases": ["echo"]}}, "start": starts},
            "client": {"replicas": 2, "networks": ["lan"]},
        },
        "dns": {"records": records},
    }
    path = tmp_path_factory.mktemp("dns") / "dns.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    made = Lab.load(path, engine=engine)
    try:
        yield made.up()
    finally:
        made.down()
    assert leftovers(engine, made.name) == []


def test_a_dns_node_is_added_and_every_node_asks_it(lab: Lab) -> None:
    assert [s.node for s in lab.status()] == ["server", "client-1", "client-2", "dns"]
    dns_ip = ipv4_of(lab.node("dns"))
    for node in ("server", "client-1", "client-2"):
        conf = lab.node(node).exec(["cat", "/etc/resolv.conf"]).stdout
        assert f"nameserver {dns_ip}\n" in conf and f"search {lab.name}.test\n" in conf, conf
        assert "options ndots:1 timeout:1 attempts:2\n" in conf, conf  # as Docker's dns_opt
        assert "127.0.0.11" not in conf
    assert "nameserver 127.0.0.1\n" in lab.node("dns").exec(["cat", "/etc/resolv.conf"]).stdout


def test_cname_shows_the_canonical_name_and_the_alias(lab: Lab) -> None:
    client, domain = lab.node("client-1"), f"{lab.name}.test"
    server_ip = ipv4_of(lab.node("server"))
    www = resolve(client, "www")
    assert host_entry(www) == (f"server.{domain}", [f"www.{domain}"], [server_ip])
    assert www["getfqdn"] == f"server.{domain}"
    assert {r["canonname"] for r in www["getaddrinfo"]["result"]} >= {f"server.{domain}"}
    smtp = resolve(client, "smtp")
    assert host_entry(smtp) == ("mail.example.org", [f"smtp.{domain}"], [LEGACY])
    done = client.exec(["tcp-client", "www", "5000", "--count", "2"])
    assert done.ok, done.stdout + done.stderr


def test_several_addresses_and_node_names_in_a_record(lab: Lab) -> None:
    client, domain = lab.node("client-2"), f"{lab.name}.test"
    replicas = sorted(ipv4_of(lab.node(n)) for n in ("client-1", "client-2"))
    assert host_entry(resolve(client, "pool")) == (f"pool.{domain}", [], sorted([*replicas, LITERAL]))


def test_reverse_lookups_answer_lab_names(lab: Lab) -> None:
    client, domain = lab.node("client-1"), f"{lab.name}.test"
    for node in ("server", "client-2", "dns"):
        ip = ipv4_of(lab.node(node))
        assert host_entry(resolve(client, ip), "gethostbyname_ex")[2] == [ip]
        assert resolve(client, ip)["gethostbyaddr"][ip]["result"]["name"] == f"{node}.{domain}"
    legacy = resolve(client, LITERAL)["gethostbyaddr"][LITERAL]["result"]
    assert (legacy["name"], legacy["addresses"]) == (f"legacy.{domain}", [LITERAL])


def test_docker_names_still_resolve_and_misses_are_quick(lab: Lab) -> None:
    client = lab.node("client-1")
    server_ip = ipv4_of(lab.node("server"))
    assert host_entry(resolve(client, "echo")) == ("echo", [], [server_ip])
    container = f"socklab-{lab.name}-server"
    assert host_entry(resolve(client, container))[2] == [server_ip]
    assert len(host_entry(resolve(client, "client"))[2]) == 2
    for missing in ("nosuchnode", f"nosuch.{lab.name}.test"):
        assert client.exec(["resolve", missing, "--json"]).exit_code == 1
        # NXDOMAIN from dnsmasq (EAI_NONAME), not a resolver timeout (EAI_AGAIN)
        assert lookup(client, missing) == "EAI_NONAME", missing
    assert "query[A] www." in lab.node("dns").logs()  # dnsmasq logs every query


def test_aaaa_record(lab: Lab, ipv6_unsupported: str | None) -> None:
    if ipv6_unsupported:
        pytest.skip(f"the Docker daemon cannot make IPv6 networks: {ipv6_unsupported}")
    client = lab.node("client-1")
    v6 = [
        r["address"] for r in resolve(client, "server")["getaddrinfo"]["result"] if r["family"] == "AF_INET6"
    ]
    six = [r["address"] for r in resolve(client, "six")["getaddrinfo"]["result"]]
    assert v6 and set(six) == {v6[0]}
    done = client.exec(["tcp-client", "six", "5006", "--family", "inet6"])
    assert done.ok, done.stdout + done.stderr
    assert f'"peer": "[{v6[0]}]:5006"' in done.stdout
    rev = resolve(client, v6[0])["gethostbyaddr"][v6[0]]["result"]
    assert rev["name"] == f"server.{lab.name}.test"


def test_dns_on_a_named_node(make_lab: Callable[..., Lab], engine: Engine) -> None:
    lab = make_lab(
        {
            "networks": {"lan": {}, "far": {}},
            "nodes": {
                "server": {"networks": ["lan"]},
                "ns": {"networks": ["lan"], "start": ["tcp-server --port 5000 --mode selectors"]},
                "away": {"networks": ["far"]},
            },
            "dns": {"server": "ns", "records": [{"name": "www", "cname": "server"}]},
        },
        "dnsns",
    )
    assert [s.node for s in lab.status()] == ["server", "ns", "away"]
    server = lab.node("server")
    assert host_entry(resolve(server, "www"))[:2] == (f"server.{lab.name}.test", [f"www.{lab.name}.test"])
    assert server.exec(["tcp-client", "ns", "5000"]).ok  # the node's own start commands run
    ns_logs = lab.node("ns").logs()
    assert '"app": "dnsmasq"' in ns_logs and '"app": "tcp-server"' in ns_logs
    # a node with no network in common with the DNS server keeps Docker's embedded DNS
    assert "nameserver 127.0.0.11" in lab.node("away").exec(["cat", "/etc/resolv.conf"]).stdout
    # its names are lab names the DNS server cannot see: NXDOMAIN at once, not EAI_AGAIN
    # after Docker's upstream times out (20 s for a name without a dot, 10 s for the others)
    for missing in ("away", f"away.{lab.name}.test", f"socklab-{lab.name}-away", "nosuchnode"):
        assert lookup(server, missing) == "EAI_NONAME", missing


LOOKUP = """
import json, socket, sys
try:
    socket.getaddrinfo(sys.argv[1], None)
    error = None
except socket.gaierror as exc:
    error = {socket.EAI_NONAME: "EAI_NONAME", socket.EAI_AGAIN: "EAI_AGAIN"}.get(exc.errno, exc.errno)
print(json.dumps(error))
"""


def lookup(node: LabNode, name: str) -> Any:
    """getaddrinfo(name) in the node: its error (None: found). EAI_NONAME is an answer
    (NXDOMAIN), EAI_AGAIN a server that did not answer in time."""
    done = node.exec(["python3", "-c", LOOKUP, name])
    return json.loads(done.stdout)
