"""Lab DNS: the dnsmasq server that serves a topology's ``dns:`` records. Pure, no Docker.

dnsmasq runs on one node (``dns.server``, or a node ``dns`` that socklab adds on
every network). It answers the records, a PTR for every node address (the node's
lab FQDN, so reverse lookups answer lab names rather than Docker's
``<container>.<network>``), and forwards everything else to Docker's embedded DNS
(127.0.0.11), which still knows the node names and aliases. Names without a dot, the
lab's domain and the reverse zones of its subnets are local: a name there that no
node or record has is answered NXDOMAIN at once, not after Docker's upstream times
out; the names Docker knows (node names, aliases, container names of the nodes that
share a network with the server: Docker's DNS there knows no others) are forwarded
to it by name. The other nodes get an
/etc/resolv.conf naming it, written after they start: Docker writes that file at
start, and its embedded DNS, if it only forwarded to dnsmasq, would answer PTR
queries itself.

A name without a dot is in the lab's domain (``www`` -> ``www.<lab>.test``); a name
with a dot is taken as written. In ``a:``/``aaaa:``/``cname:``, a node's name (or a
replicated node's name, for every replica) stands for its addresses.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from socklab.topology.model import Attachment, DnsRecord, Node, Topology

DNS_NODE = "dns"
DNSMASQ = "/usr/sbin/dnsmasq"
EMBEDDED_DNS = "127.0.0.11"

Address = IPv4Address | IPv6Address
#: instance -> its endpoints as (network, IPv4, IPv6 or None), in the node's network order.
Endpoints = Mapping[str, Sequence[tuple[str, IPv4Address, IPv6Address | None]]]


@dataclass(frozen=True)
class DnsProblem:
    """One thing wrong with ``dns:``; ``path`` is the key path in the document."""

    path: tuple[str | int, ...]
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path)
        text = f"{where.lstrip('.')}: {self.message}"
        return f"{text} — {self.hint}" if self.hint else text


@dataclass(frozen=True)
class Unknown:
    """What a partly ill-formed document leaves unknown: the checks that need it stay silent
    (the ill-formed parts are reported by validation)."""

    server: bool = False
    """``dns.server`` is given but ill-formed."""
    ipv6: frozenset[str] = frozenset()
    """Nodes whose IPv6 addresses are not known (their networks are ill-formed)."""
    names: frozenset[str] = frozenset()
    """Absolute names of ill-formed records that give addresses (``a:``/``aaaa:``)."""


@dataclass(frozen=True)
class Served:
    """One answer the lab's DNS holds: ``("CNAME", "www.lab.test", "server.lab.test")``."""

    type: str
    name: str
    value: str


@dataclass(frozen=True)
class DnsPlan:
    """Where dnsmasq runs, how it is started, what it serves and who asks it."""

    server: str
    added: bool
    argv: tuple[str, ...]
    served: tuple[Served, ...]
    nameservers: dict[str, str]
    """instance -> the nameserver address written in its /etc/resolv.conf"""


def absolute(name: str, domain: str) -> str:
    """``www`` -> ``www.<domain>``; a name with a dot stays as written (without a final dot)."""
    name = name.rstrip(".").lower()
    return name if "." in name else f"{name}.{domain}"


def server_instance(topo: Topology) -> str:
    """The instance that runs dnsmasq (``dns.server`` or the node socklab adds)."""
    assert topo.dns is not None
    return topo.dns.server or DNS_NODE


def nodes_named(topo: Topology, name: str) -> list[str]:
    """The instances a DNS name stands for: ``server``, ``server.<lab>.test``, or a replicated
    node's name for all its replicas; none for any other name."""
    short = name.rstrip(".").lower().removesuffix(f".{topo.domain}")
    if "." in short:
        return []
    names = [inst for inst, _, _ in topo.instances()]
    return [short] if short in names else [i for i, b, _ in topo.instances() if b == short]


def with_server(topo: Topology) -> Topology:
    """The topology plus the node ``dns`` on every network, when ``dns:`` names no server."""
    if topo.dns is None or topo.dns.server is not None:
        return topo
    node = Node(networks={net: Attachment() for net in topo.networks})
    return topo.model_copy(update={"nodes": {**topo.nodes, DNS_NODE: node}})


def problems(
    topo: Topology,
    records: Sequence[tuple[int, DnsRecord]] | None = None,
    unknown: Unknown = Unknown(),
) -> list[DnsProblem]:
    """Everything wrong with ``dns:`` that needs the rest of the topology to see.

    For a document that is partly ill-formed, ``topo`` holds its well-formed parts,
    ``records`` the well-formed records with their index in ``dns.records`` (default: all,
    in order), and ``unknown`` what cannot be known.
    """
    if topo.dns is None:
        return []
    recs = list(enumerate(topo.dns.records)) if records is None else list(records)
    out: list[DnsProblem] = []
    instances = {inst: node for inst, _, node in topo.instances()}
    if not unknown.server:
        out += _server_problems(topo, instances)

    taken = _node_names(topo, adds_node=topo.dns.server is None and not unknown.server)
    known = [r.name for _, r in recs]
    addressed = {absolute(r.name, topo.domain) for _, r in recs if r.a or r.aaaa}
    cnames: dict[str, int] = {}
    ptrs: dict[Address, int] = {}
    for i, rec in recs:
        name = absolute(rec.name, topo.domain)
        here: tuple[str | int, ...] = ("dns", "records", i)
        if name in taken:
            out.append(
                DnsProblem(
                    (*here, "name"),
                    f"'{rec.name}' is already a node's name or alias",
                    "pick another name (a CNAME may point at the node)",
                )
            )
        for key, refs in (("a", rec.a), ("aaaa", rec.aaaa)):
            for ref in refs:
                if isinstance(ref, str):
                    out.extend(
                        _node_ref_problems(topo, ref, (*here, key), v6=key == "aaaa", unknown=unknown.ipv6)
                    )
        if rec.cname is not None:
            if name in cnames or name in addressed:
                out.append(
                    DnsProblem(
                        (*here, "name"),
                        f"'{rec.name}' has other records: a CNAME is a name's only record",
                        "keep either the CNAME or the addresses",
                    )
                )
            cnames[name] = i
            target = absolute(rec.cname, topo.domain)
            if not nodes_named(topo, rec.cname) and target not in addressed | unknown.names:
                out.append(
                    DnsProblem(
                        (*here, "cname"),
                        f"'{rec.cname}' is neither a node nor a name with `a:`/`aaaa:` records"
                        f"{_did_you_mean(rec.cname, [*instances, *known])}",
                        "dnsmasq answers a CNAME only when it holds the target's addresses",
                    )
                )
        if rec.ptr is not None:
            if rec.ptr in ptrs:
                out.append(
                    DnsProblem(
                        (*here, "ptr"),
                        f"{rec.ptr} already has a PTR record (dns.records[{ptrs[rec.ptr]}])",
                        "give each address one reverse name",
                    )
                )
            ptrs[rec.ptr] = i
    return out


def _server_problems(topo: Topology, instances: Mapping[str, Node]) -> list[DnsProblem]:
    """What is wrong with the node that runs dnsmasq."""
    assert topo.dns is not None
    out: list[DnsProblem] = []
    server = topo.dns.server
    if server is None:
        if DNS_NODE in instances or DNS_NODE in topo.nodes:
            out.append(
                DnsProblem(
                    ("dns",),
                    f"a node is already named '{DNS_NODE}'",
                    f"run the DNS server there with `server: {DNS_NODE}`, or rename that node",
                )
            )
    elif server not in instances:
        replicas = topo.match_nodes(server) if server in topo.nodes else []
        out.append(
            DnsProblem(
                ("dns", "server"),
                f"node '{server}' has {len(replicas)} replicas: the DNS server is one node"
                if replicas
                else f"unknown node '{server}'{_did_you_mean(server, instances)}",
                f"name one instance, e.g. `server: {replicas[0]}`" if replicas else None,
            )
        )
    elif instances[server].image is not None:
        out.append(
            DnsProblem(
                ("dns", "server"),
                f"node '{server}' runs image '{instances[server].image}', which may lack dnsmasq",
                "run the DNS server on a node of socklab's image, or leave `server:` out "
                f"to have socklab add a node '{DNS_NODE}'",
            )
        )
    return out


def plan_dns(
    topo: Topology,
    endpoints: Endpoints,
    subnets: Sequence[IPv4Network | IPv6Network] = (),
    docker_names: Mapping[str, Sequence[str]] | None = None,
) -> DnsPlan:
    """The DNS server of a topology that has ``dns:`` (and its server node, see
    :func:`with_server`), given every instance's addresses, the lab's subnets and the
    names Docker's embedded DNS answers for each instance (default: ``<inst>`` and
    ``<inst>.<domain>``)."""
    assert topo.dns is not None
    domain = topo.domain
    server = server_instance(topo)
    served: list[Served] = []

    def node_addresses(ref: str) -> tuple[list[IPv4Address], list[IPv6Address]]:
        insts = nodes_named(topo, ref)
        v4 = [ip for i in insts for _, ip, _ in endpoints[i]]
        v6 = [ip6 for i in insts for _, _, ip6 in endpoints[i] if ip6 is not None]
        return v4, v6

    for rec in topo.dns.records:
        name = absolute(rec.name, domain)
        for entry in rec.a:
            for ip in node_addresses(entry)[0] if isinstance(entry, str) else [entry]:
                served.append(Served("A", name, str(ip)))
        for entry6 in rec.aaaa:
            for ip6 in node_addresses(entry6)[1] if isinstance(entry6, str) else [entry6]:
                served.append(Served("AAAA", name, str(ip6)))
        if rec.cname is not None:
            target = absolute(rec.cname, domain)
            if nodes_named(topo, rec.cname):
                v4s, v6s = node_addresses(rec.cname)
                served.extend(Served("A", target, str(ip)) for ip in v4s)
                served.extend(Served("AAAA", target, str(ip6)) for ip6 in v6s)
            served.append(Served("CNAME", name, target))

    ptr: dict[str, str] = {}
    for inst, eps in endpoints.items():
        for _, ip, maybe6 in eps:
            for address in (ip, maybe6):
                if address is not None:
                    ptr.setdefault(address.reverse_pointer, f"{inst}.{domain}")
    for rec in topo.dns.records:
        if rec.ptr is not None:
            ptr[rec.ptr.reverse_pointer] = absolute(rec.name, domain)
    served.extend(Served("PTR", rev, name) for rev, name in ptr.items())
    served = list(dict.fromkeys(served))

    argv = [
        DNSMASQ,
        "--keep-in-foreground",
        "--log-facility=-",
        "--log-queries",
        "--no-resolv",
        "--no-hosts",
        "--no-negcache",
        f"--server={EMBEDDED_DNS}",
        "--pid-file=",
        "--local=//",
        f"--local=/{domain}/",
    ]
    argv += [f"--local=/{zone}/" for zone in dict.fromkeys(reverse_zone(n) for n in subnets)]
    server_networks = {net for net, _, _ in endpoints[server]}
    for inst, eps in endpoints.items():
        if not any(net in server_networks for net, _, _ in eps):
            continue  # Docker's DNS on the server does not know it: a local miss, not a timeout
        names = (docker_names or {}).get(inst) or (inst, f"{inst}.{domain}")
        argv.append(f"--server=/{'/'.join(dict.fromkeys(names))}/{EMBEDDED_DNS}")
    for rr in served:
        if rr.type in ("A", "AAAA"):
            argv.append(f"--host-record={rr.name},{rr.value}")
        elif rr.type == "CNAME":
            argv.append(f"--cname={rr.name},{rr.value}")
        else:
            argv.append(f"--ptr-record={rr.name},{rr.value}")

    nameservers = {server: "127.0.0.1"}
    server_ips = {net: ip for net, ip, _ in endpoints[server]}
    for inst, eps in endpoints.items():
        shared = next((server_ips[net] for net, _, _ in eps if net in server_ips), None)
        if inst != server and shared is not None:
            nameservers[inst] = str(shared)
    return DnsPlan(
        server=server,
        added=topo.dns.server is None,
        argv=tuple(argv),
        served=tuple(served),
        nameservers=nameservers,
    )


def reverse_zone(subnet: IPv4Network | IPv6Network) -> str:
    """The reverse DNS zone that holds a subnet (widened to a whole octet or nibble)."""
    step = 8 if subnet.version == 4 else 4
    labels = subnet.network_address.reverse_pointer.split(".")
    keep = subnet.prefixlen // step + 2  # + in-addr.arpa / ip6.arpa
    return ".".join(labels[len(labels) - keep :])


def resolv_conf(nameserver: str, domain: str, server: str) -> str:
    """The /etc/resolv.conf of a node that asks the lab's DNS server (Docker's resolver
    options for the other nodes: a server that does not answer costs 2 s, not 10)."""
    return (
        f"# written by socklab: the lab's DNS server (dnsmasq on node '{server}')\n"
        f"nameserver {nameserver}\nsearch {domain}\noptions ndots:1 timeout:1 attempts:2\n"
    )


def _node_names(topo: Topology, *, adds_node: bool) -> set[str]:
    names: set[str] = set()
    for inst, base, node in topo.instances():
        names.update((inst, base))
        for att in node.networks.values():
            names.update(att.aliases)
    if adds_node:
        names.add(DNS_NODE)
    return {absolute(n, topo.domain) for n in names}


def _node_ref_problems(
    topo: Topology, ref: str, path: tuple[str | int, ...], *, v6: bool, unknown: frozenset[str]
) -> list[DnsProblem]:
    found = nodes_named(topo, ref)
    if not found:
        names = [inst for inst, _, _ in topo.instances()]
        return [DnsProblem(path, f"unknown node '{ref}'{_did_you_mean(ref, names)}")]
    if not v6:
        return []
    lacking = [
        inst
        for inst, base, node in topo.instances()
        if inst in found
        and base not in unknown
        and not any(
            att.ipv6 is not None or topo.networks[net].ipv6
            for net, att in node.networks.items()
            if net in topo.networks
        )
    ]
    return [
        DnsProblem(path, f"node '{inst}' has no IPv6 address", "give one of its networks `ipv6: true`")
        for inst in lacking
    ]


def _did_you_mean(name: str, choices: Sequence[str] | Mapping[str, object]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" — did you mean '{close[0]}'?" if close else ""
