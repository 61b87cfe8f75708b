"""A lab as a graph: its networks, its nodes, and each node's addresses and aliases on each
network. Pure, no Docker: built from a plan (and the addresses of a lab that is up, when
known), rendered as Mermaid (which GitHub renders), Graphviz DOT or plain text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from socklab.topology.plan import LabPlan

Format = Literal["mermaid", "dot", "text"]
FORMATS: tuple[Format, ...] = ("mermaid", "dot", "text")

#: instance -> network -> (IPv4, IPv6 or ""), as a lab that is up has them
Addresses = Mapping[str, Mapping[str, tuple[str, str]]]


@dataclass(frozen=True)
class GraphNetwork:
    name: str
    subnet: str
    ipv6_subnet: str | None
    internal: bool
    marks: tuple[str, ...] = ()
    """what else holds on the network (an impairment...)"""


@dataclass(frozen=True)
class GraphNode:
    name: str
    role: Literal["node", "dns", "router"]
    image: str | None
    marks: tuple[str, ...] = ()


@dataclass(frozen=True)
class GraphLink:
    """A node on a network: its addresses there and the names it answers to (its own
    instance names left out)."""

    node: str
    network: str
    ip: str
    ipv6: str | None
    aliases: tuple[str, ...]
    impair: str | None = None
    """what the link does to the packets the node sends on it (``loss 5% delay 40ms``)"""


@dataclass(frozen=True)
class LabGraph:
    lab: str
    domain: str
    networks: tuple[GraphNetwork, ...]
    nodes: tuple[GraphNode, ...]
    links: tuple[GraphLink, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabGraph:
        """The graph :meth:`as_dict` gave (as a run's ``report.json`` keeps it)."""
        return cls(
            data["lab"],
            data["domain"],
            tuple(GraphNetwork(**{**n, "marks": tuple(n.get("marks", ()))}) for n in data["networks"]),
            tuple(GraphNode(**{**n, "marks": tuple(n.get("marks", ()))}) for n in data["nodes"]),
            tuple(GraphLink(**{**x, "aliases": tuple(x.get("aliases", ()))}) for x in data["links"]),
        )


def lab_graph(plan: LabPlan, addresses: Addresses | None = None) -> LabGraph:
    """The graph of a planned lab; ``addresses`` (of a lab that is up) replace the planned
    ones where given."""
    dns_server = plan.dns.server if plan.dns else None
    nodes: list[GraphNode] = []
    links: list[GraphLink] = []
    for c in plan.containers:
        role: Literal["node", "dns", "router"] = (
            "router" if c.net.router else "dns" if c.instance == dns_server else "node"
        )
        marks = (("router",) if c.net.router else ()) + (
            ("lab DNS server",) if c.instance == dns_server else ()
        )
        nodes.append(GraphNode(c.instance, role, c.image, marks))
        own = {c.instance, f"{c.instance}.{plan.domain}"}
        for ep in c.endpoints:
            ip, ip6 = str(ep.ip), str(ep.ipv6) if ep.ipv6 else None
            seen = (addresses or {}).get(c.instance, {}).get(ep.network)
            if seen:
                ip, ip6 = seen[0] or ip, seen[1] or ip6
            impair = c.net.impair.get(ep.network)
            links.append(
                GraphLink(
                    c.instance,
                    ep.network,
                    ip,
                    ip6,
                    tuple(a for a in ep.aliases if a not in own),
                    impair.describe() if impair else None,
                )
            )
    impaired = {link.network for link in links if link.impair}
    networks = tuple(
        GraphNetwork(
            n.name,
            str(n.subnet),
            str(n.ipv6_subnet) if n.ipv6_subnet else None,
            n.internal,
            ("impaired links",) if n.name in impaired else (),
        )
        for n in plan.networks
    )
    return LabGraph(plan.lab, plan.domain, networks, tuple(nodes), tuple(links))


def render(graph: LabGraph, fmt: Format) -> str:
    """The graph as Mermaid, DOT or text."""
    return {"mermaid": to_mermaid, "dot": to_dot, "text": to_text}[fmt](graph)


def link_lines(link: GraphLink) -> list[str]:
    """What every rendering of the graph writes on a link: addresses, aliases, impairment."""
    return [
        link.ip,
        *([link.ipv6] if link.ipv6 else []),
        *link.aliases,
        *([f"impaired: {link.impair}"] if link.impair else []),
    ]


def net_lines(net: GraphNetwork) -> list[str]:
    """What every rendering writes on a network: its name, subnets and marks."""
    return [net.name, net.subnet, *([net.ipv6_subnet] if net.ipv6_subnet else []), *net.marks]


def node_lines(node: GraphNode) -> list[str]:
    """What every rendering writes on a node: its name, marks (router...) and own image."""
    return [node.name, *node.marks, *([f"image {node.image}"] if node.image else [])]


def to_mermaid(graph: LabGraph) -> str:
    """A Mermaid flowchart: networks as hexagons, nodes as boxes (the DNS server a subroutine
    box, a router a rhombus), one edge per node and network, labelled with the addresses."""

    def label(lines: list[str]) -> str:
        return '"' + "<br/>".join(s.replace('"', "#quot;") for s in lines) + '"'

    net_id = {n.name: f"net{i}" for i, n in enumerate(graph.networks)}
    node_id = {n.name: f"node{i}" for i, n in enumerate(graph.nodes)}
    shapes = {"node": ("[", "]"), "dns": ("[[", "]]"), "router": ("{", "}")}
    out = ["graph LR"]
    out += [f"  {net_id[n.name]}{{{{{label(net_lines(n))}}}}}" for n in graph.networks]
    for node in graph.nodes:
        left, right = shapes[node.role]
        out.append(f"  {node_id[node.name]}{left}{label(node_lines(node))}{right}")
    out += [
        f"  {node_id[link.node]} ---|{label(link_lines(link))}| {net_id[link.network]}"
        for link in graph.links
    ]
    return "\n".join(out) + "\n"


def to_dot(graph: LabGraph) -> str:
    """A Graphviz graph (``dot -Tsvg``): networks as ellipses, nodes as boxes."""

    def quote(lines: list[str]) -> str:
        return '"' + "\\n".join(s.replace("\\", "\\\\").replace('"', '\\"') for s in lines) + '"'

    shapes = {"node": "box", "dns": "component", "router": "diamond"}
    out = [
        f"graph {quote([graph.lab])} {{",
        "  rankdir=LR;",
        '  node [fontname="Helvetica"]; edge [fontname="Helvetica", fontsize=10];',
    ]
    out += [
        f'  {quote(["net:" + n.name])} [shape=ellipse, style=filled, fillcolor="#e8f0fe", '
        f"label={quote(net_lines(n))}];"
        for n in graph.networks
    ]
    out += [
        f"  {quote([n.name])} [shape={shapes[n.role]}, label={quote(node_lines(n))}];" for n in graph.nodes
    ]
    out += [
        f"  {quote([link.node])} -- {quote(['net:' + link.network])} [label={quote(link_lines(link))}];"
        for link in graph.links
    ]
    return "\n".join([*out, "}"]) + "\n"


def to_text(graph: LabGraph) -> str:
    """One block per network: its subnets, then each node on it with addresses and aliases."""
    roles = {n.name: n for n in graph.nodes}
    out = [f"lab {graph.lab} (domain {graph.domain})"]
    for net in graph.networks:
        head = [
            net.name,
            net.subnet,
            *([net.ipv6_subnet] if net.ipv6_subnet else []),
            "internal" if net.internal else "gateway to the host",
            *net.marks,
        ]
        out.append("network " + "  ".join(head))
        rows = [link for link in graph.links if link.network == net.name]
        width = max((len(r.node) for r in rows), default=0)
        ipw = max((len(r.ip) for r in rows), default=0)
        for r in rows:
            extra = [
                *([r.ipv6] if r.ipv6 else []),
                *([f"aliases: {', '.join(r.aliases)}"] if r.aliases else []),
                *([f"impaired: {r.impair}"] if r.impair else []),
                *roles[r.node].marks,
            ]
            out.append(f"  {r.node:<{width}}  {r.ip:<{ipw}}  {'  '.join(extra)}".rstrip())
    return "\n".join(out) + "\n"
