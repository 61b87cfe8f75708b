"""What socklab sets up in a node's network namespace, planned without Docker.

Routed labs: a ``router: true`` node forwards between its networks; every other node
(and every router, for networks two routers away) gets a route to each lab subnet it
is not on, through the nearest router on one of its own networks. Names of nodes it
shares no network with go into its ``/etc/hosts`` (Docker's DNS only answers for
shared networks). A node on a network Docker gives a gateway (one where a port is
published, or a router forwards) loses its default route, so nothing leaves the lab,
unless it publishes a port on a non-loopback host address (its replies to outside
clients need that route). Impairments come from the networks and the attachments.

:class:`NetSetup` travels with the container as a JSON label, so faults, ``connect``
and ``restart`` need only the running lab, not its file.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

from socklab.topology.impair import Impairment


@dataclass(frozen=True)
class Route:
    """``ip route replace <dest> via <via>``."""

    dest: IPv4Network | IPv6Network
    via: IPv4Address | IPv6Address
    network: str
    """the network the next hop is on"""


@dataclass(frozen=True)
class Link:
    """A node's place on one network: addresses and aliases (to connect it back)."""

    ip: IPv4Address
    ipv6: IPv6Address | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetSetup:
    """The network configuration of one node, applied by a helper after each start."""

    links: dict[str, Link] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    impair: dict[str, Impairment] = field(default_factory=dict)
    drop_default_route: bool = False
    router: bool = False

    @property
    def needed(self) -> bool:
        """Whether a helper has anything to do before the node's start commands run."""
        return bool(self.routes or self.impair or self.drop_default_route)

    def to_json(self) -> str:
        return json.dumps(
            {
                "links": {
                    n: {
                        "ip": str(k.ip),
                        **({"ipv6": str(k.ipv6)} if k.ipv6 else {}),
                        "aliases": list(k.aliases),
                    }
                    for n, k in self.links.items()
                },
                "routes": [
                    {"dest": str(r.dest), "via": str(r.via), "network": r.network} for r in self.routes
                ],
                "impair": {n: i.model_dump(exclude_none=True) for n, i in self.impair.items()},
                "drop_default_route": self.drop_default_route,
                "router": self.router,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> NetSetup:
        data: dict[str, Any] = json.loads(text) if text else {}
        return cls(
            links={
                n: Link(
                    IPv4Address(k["ip"]),
                    IPv6Address(k["ipv6"]) if k.get("ipv6") else None,
                    tuple(k.get("aliases", ())),
                )
                for n, k in data.get("links", {}).items()
            },
            routes=tuple(
                Route(ip_network(r["dest"]), ip_address(r["via"]), r["network"])
                for r in data.get("routes", [])
            ),
            impair={n: Impairment.model_validate(i) for n, i in data.get("impair", {}).items()},
            drop_default_route=bool(data.get("drop_default_route")),
            router=bool(data.get("router")),
        )


@dataclass(frozen=True)
class Attached:
    """The planner's view of one instance for routing: its links, in topology order."""

    name: str
    router: bool
    links: dict[str, Link]


def plan_routes(
    nodes: list[Attached],
    subnets: dict[str, tuple[IPv4Network, IPv6Network | None]],
) -> dict[str, tuple[Route, ...]]:
    """Each instance's routes to the subnets of the networks it is not on, through routers
    (the fewest hops; ties: the first network and router in topology order)."""
    routers = [n for n in nodes if n.router]
    out: dict[str, tuple[Route, ...]] = {}
    for node in nodes:
        hops = _first_hops(node, routers)
        routes: list[Route] = []
        for net, (subnet4, subnet6) in subnets.items():
            if net in node.links or net not in hops:
                continue
            router, via_net = hops[net]
            link = router.links[via_net]
            routes.append(Route(subnet4, link.ip, via_net))
            if subnet6 is not None and link.ipv6 is not None and node.links[via_net].ipv6:
                routes.append(Route(subnet6, link.ipv6, via_net))
        out[node.name] = tuple(routes)
    return out


def _first_hops(node: Attached, routers: list[Attached]) -> dict[str, tuple[Attached, str]]:
    """Breadth-first over networks joined by routers: for each reachable network, the
    router on one of ``node``'s networks that the way there starts with."""
    first: dict[str, tuple[Attached, str]] = {}
    queue: deque[str] = deque()
    for net in node.links:
        for r in routers:
            if r.name != node.name and net in r.links:
                for other in r.links:
                    if other not in node.links and other not in first:
                        first[other] = (r, net)
                        queue.append(other)
    while queue:
        net = queue.popleft()
        for r in routers:
            if r.name == node.name or net not in r.links:
                continue
            for other in r.links:
                if other not in node.links and other not in first:
                    first[other] = first[net]
                    queue.append(other)
    return first


def routed_hosts(
    node: Attached, nodes: list[Attached], routes: tuple[Route, ...]
) -> tuple[tuple[str, str], ...]:
    """``(name, address)`` lines for ``/etc/hosts``: every instance ``node`` shares no
    network with, by the names it has on the first of its networks that one of ``node``'s
    routes reaches, at its address there."""
    out: list[tuple[str, str]] = []
    for other in nodes:
        if other.name == node.name or set(other.links) & set(node.links):
            continue
        for link in other.links.values():
            if any(link.ip in r.dest for r in routes if isinstance(r.dest, IPv4Network)):
                out += [(name, str(link.ip)) for name in link.aliases]
                break
    return tuple(out)
