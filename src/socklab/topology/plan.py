"""Planning: turn a topology into the concrete resources of a lab. Pure, no Docker.

The plan names every container and network, labels them, allocates subnets
that do not overlap what the host already has, and gives every endpoint its
IP address, so that applying it is a matter of making exactly what it says.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TypeVar

from socklab.errors import LabError
from socklab.topology import dns as lab_dns
from socklab.topology.impair import Impairment
from socklab.topology.model import Attachment, Port, StartCommand, Topology
from socklab.topology.netsetup import Attached, Link, NetSetup, plan_routes, routed_hosts

LABEL_LAB = "io.socklab.lab"
LABEL_NODE = "io.socklab.node"
LABEL_NETWORK = "io.socklab.network"
LABEL_FILE = "io.socklab.file"
LABEL_INDEX = "io.socklab.index"
"""on a node: its place in the topology (0, 1, ...), so `status` by name keeps that order"""
LABEL_BASE = "io.socklab.base"
"""on a node: the topology's node name (``client`` for ``client-2``)"""
LABEL_NET = "io.socklab.net"
"""on a node: its :class:`NetSetup` as JSON (links, routes, impairments)"""

SETUP_LABELS = (LABEL_BASE, LABEL_NET)
"""what socklab's helpers read to set up and fault a running lab (not in a compose export)"""

NO_MASQUERADE = {"com.docker.network.bridge.enable_ip_masquerade": "false"}
"""on a network Docker gives a gateway: nothing is translated on the way out"""
LABEL_TOOLS = "io.socklab.tools"
"""on a node whose image lacks socklab's tools (``helper``): they run in a helper container"""
LABEL_PROGRAM = "io.socklab.program"
"""on a node that runs its own program (``own``: its image's, or ``command:``/``entrypoint:``),
not socklab's node supervisor: no ``start``, no ready event"""
LABEL_HASH = "io.socklab.hash"
"""a hash of the topology's content (its name left out): ``up(reuse=True)`` finds it"""

AUTO_POOL = IPv4Network("10.100.0.0/16")
AUTO_PREFIX = 24
AUTO_POOL6 = IPv6Network("fd5c:10::/48")
DNS_PORT = 53

A = TypeVar("A", IPv4Address, IPv6Address)
N = TypeVar("N", IPv4Network, IPv6Network)


@dataclass(frozen=True)
class NetworkPlan:
    name: str
    docker_name: str
    subnet: IPv4Network
    gateway: IPv4Address
    ipv6_subnet: IPv6Network | None
    ipv6_gateway: IPv6Address | None
    internal: bool
    labels: dict[str, str]
    allocated: bool = False  # the subnets were chosen by the planner, not written by the user
    options: dict[str, str] = field(default_factory=dict)
    """the bridge driver's options (no masquerading on a network that is not internal)"""


@dataclass(frozen=True)
class Endpoint:
    network: str
    docker_network: str
    ip: IPv4Address
    ipv6: IPv6Address | None
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class ContainerPlan:
    instance: str
    node: str
    container_name: str
    hostname: str
    domainname: str
    image: str | None
    start: tuple[StartCommand, ...]
    env: dict[str, str]
    cap_add: tuple[str, ...]
    ports: tuple[Port, ...]
    endpoints: tuple[Endpoint, ...]
    labels: dict[str, str]
    resolv_conf: str | None = None
    """written to /etc/resolv.conf after start (the lab's DNS server); None keeps Docker's"""
    net: NetSetup = field(default_factory=NetSetup)
    """routes, impairments, default route: applied by a helper before the start commands"""
    sysctls: dict[str, str] = field(default_factory=dict)
    extra_hosts: tuple[tuple[str, str], ...] = ()
    """``(name, address)`` lines for /etc/hosts: nodes reached only through a router"""
    command: tuple[str, ...] | None = None
    """the node's ``command:``: its main program, run without the supervisor"""
    entrypoint: tuple[str, ...] | None = None
    """the node's ``entrypoint:``, replacing its image's ENTRYPOINT (and CMD)"""
    supervised: bool = True
    """socklab's node supervisor is its main program (runs ``start:``); False: the image's
    own ENTRYPOINT/CMD, or ``entrypoint:``/``command:``, runs as in compose"""

    @property
    def tools_in_helper(self) -> bool:
        """socklab's tools (socket reader, tcpdump) are not in the node: a helper sharing
        its namespaces runs them."""
        return self.image is not None and not self.supervised

    @property
    def node_labels(self) -> dict[str, str]:
        """Its labels and what its container must say of it: that it runs its own program,
        and that socklab's tools run in a helper (known once its image is, so not planned)."""
        labels = dict(self.labels)
        if not self.supervised:
            labels[LABEL_PROGRAM] = "own"
        if self.tools_in_helper:
            labels[LABEL_TOOLS] = "helper"
        return labels

    @property
    def fqdn(self) -> str:
        return f"{self.hostname}.{self.domainname}"


@dataclass(frozen=True)
class LabPlan:
    lab: str
    domain: str
    networks: tuple[NetworkPlan, ...]
    containers: tuple[ContainerPlan, ...]
    labels: dict[str, str] = field(default_factory=dict)
    dns: lab_dns.DnsPlan | None = None

    def container(self, instance: str) -> ContainerPlan:
        for c in self.containers:
            if c.instance == instance:
                return c
        names = ", ".join(c.instance for c in self.containers)
        raise LabError(f"node '{instance}' not found in lab '{self.lab}'", f"nodes: {names}")


def node_environment(spec: ContainerPlan) -> dict[str, str]:
    """The environment a node's supervisor starts from: the node's env, its start commands
    (``SOCKLAB_START``: JSON argv lists, or ``{"argv", "wait"}`` when a command waits for
    other than ``auto``), its resolv.conf (lab DNS), and for a node of another image,
    unbuffered Python output."""
    starts = [c.argv if c.wait == "auto" else {"argv": c.argv, "wait": c.wait} for c in spec.start]
    env = {**spec.env, "SOCKLAB_START": json.dumps(starts)}
    if spec.resolv_conf:
        env["SOCKLAB_RESOLV_CONF"] = spec.resolv_conf
    if spec.image:
        env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def container_name(lab: str, instance: str) -> str:
    return f"socklab-{lab}-{instance}"


def network_name(lab: str, network: str) -> str:
    return f"socklab-{lab}-{network}"


def plan(
    topo: Topology,
    taken: Iterable[IPv4Network | IPv6Network] = (),
    source: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> LabPlan:
    """The lab's resources. ``taken`` are subnets already in use on the host; ``source``
    is the topology file's absolute path, kept as a label so ``down FILE`` finds the lab;
    ``labels`` go on every network and container besides socklab's own."""
    lab_labels = {**(labels or {}), LABEL_LAB: topo.name, **({LABEL_FILE: source} if source else {})}
    if topo.dns is not None:
        found = lab_dns.problems(topo)
        if found:
            raise LabError(
                "the lab's DNS cannot be planned:\n" + "\n".join(f"  {p}" for p in found), found[0].hint
            )
        topo = lab_dns.with_server(topo)
    networks = _plan_networks(topo, taken, lab_labels)
    containers = _plan_containers(topo, {n.name: n for n in networks}, lab_labels)
    dns_plan = None
    if topo.dns is not None:
        dns_plan = lab_dns.plan_dns(
            topo,
            {c.instance: [(e.network, e.ip, e.ipv6) for e in c.endpoints] for c in containers},
            [s for n in networks for s in (n.subnet, n.ipv6_subnet) if s is not None],
            {
                c.instance: [c.container_name, *(a for e in c.endpoints for a in e.aliases)]
                for c in containers
            },
        )
        containers = [_use_dns(c, dns_plan, topo.domain) for c in containers]
    return LabPlan(
        lab=topo.name,
        domain=topo.domain,
        networks=tuple(networks),
        containers=tuple(containers),
        labels={LABEL_LAB: topo.name},
        dns=dns_plan,
    )


def _plan_networks(
    topo: Topology, taken: Iterable[IPv4Network | IPv6Network], lab_labels: dict[str, str]
) -> list[NetworkPlan]:
    """Every network with its subnets (given, or the first free ones of the pools); a network
    with no published port and no router is internal (Docker gives it no gateway to the
    host); the others are bridges without masquerading (their nodes lose the default route)."""
    used4 = [n for n in taken if isinstance(n, IPv4Network)]
    used6 = [n for n in taken if isinstance(n, IPv6Network)]
    used4 += [n.subnet for n in topo.networks.values() if n.subnet is not None]
    used6 += [n.ipv6 for n in topo.networks.values() if isinstance(n.ipv6, IPv6Network)]
    free4 = _free_subnets(AUTO_POOL, AUTO_PREFIX, used4)
    free6 = _free_subnets(AUTO_POOL6, 64, used6)
    publishing = {net for _, _, node in topo.instances() if node.ports for net in node.networks}
    routed = {net for _, _, node in topo.instances() if node.router for net in node.networks}
    networks: list[NetworkPlan] = []
    for name, spec in topo.networks.items():
        subnet = spec.subnet or _next(free4, name, "IPv4")
        v6 = (
            spec.ipv6
            if isinstance(spec.ipv6, IPv6Network)
            else (_next(free6, name, "IPv6") if spec.ipv6 else None)
        )
        networks.append(
            NetworkPlan(
                name=name,
                docker_name=network_name(topo.name, name),
                subnet=subnet,
                gateway=next(subnet.hosts()),
                ipv6_subnet=v6,
                ipv6_gateway=next(v6.hosts()) if v6 else None,
                internal=name not in publishing | routed,
                labels={**lab_labels, LABEL_NETWORK: name},
                allocated=spec.subnet is None or spec.ipv6 is True,
                options={} if name not in publishing | routed else dict(NO_MASQUERADE),
            )
        )
    return networks


def _plan_containers(
    topo: Topology, networks: dict[str, NetworkPlan], lab_labels: dict[str, str]
) -> list[ContainerPlan]:
    """Every node instance in topology order, with its addresses and names on each network,
    and its network setup (routes through routers, impairments, no default route)."""
    addresses = _assign_addresses(topo, networks)
    attached: list[Attached] = []
    for instance, base, node in topo.instances():
        links = {}
        for net, att in node.networks.items():
            aliases = [instance, f"{instance}.{topo.domain}", *att.aliases]
            if node.replicas is not None:
                aliases.append(base)
            ip, ip6 = addresses[(instance, net)]
            links[net] = Link(ip, ip6, tuple(dict.fromkeys(aliases)))
        attached.append(Attached(instance, node.router, links))
    routes = plan_routes(attached, {n.name: (n.subnet, n.ipv6_subnet) for n in networks.values()})
    containers: list[ContainerPlan] = []
    for (instance, base, node), me in zip(topo.instances(), attached, strict=True):
        endpoints = [
            Endpoint(
                network=net,
                docker_network=networks[net].docker_name,
                ip=link.ip,
                ipv6=link.ipv6,
                aliases=link.aliases,
            )
            for net, link in me.links.items()
        ]
        setup = NetSetup(
            links=me.links,
            routes=routes[instance],
            impair={
                net: imp
                for net, att in node.networks.items()
                if not (imp := _impairment(topo, net, att)).empty
            },
            drop_default_route=any(not networks[n].internal for n in node.networks)
            and all(p.host_ip.is_loopback for p in node.ports),
            router=node.router,
        )
        containers.append(
            ContainerPlan(
                instance=instance,
                node=base,
                container_name=container_name(topo.name, instance),
                hostname=instance,
                domainname=topo.domain,
                image=node.image,
                command=tuple(node.command) if node.command is not None else None,
                entrypoint=tuple(node.entrypoint) if node.entrypoint is not None else None,
                supervised=node.command is None and node.entrypoint is None,
                start=tuple(node.start),
                env={**node.env, "SOCKLAB_LAB": topo.name, "SOCKLAB_NODE": instance},
                cap_add=tuple(node.cap_add),
                ports=tuple(node.ports),
                endpoints=tuple(endpoints),
                labels={
                    **lab_labels,
                    LABEL_NODE: instance,
                    LABEL_INDEX: str(len(containers)),
                    LABEL_BASE: base,
                    LABEL_NET: setup.to_json(),
                },
                net=setup,
                sysctls=_sysctls(node.router, endpoints),
                extra_hosts=routed_hosts(me, attached, routes[instance]),
            )
        )
    return containers


def _impairment(topo: Topology, net: str, att: Attachment) -> Impairment:
    """A network's impairment with the attachment's own keys over it."""
    return (topo.networks[net].impair or Impairment()).merged(att.impair)


def _sysctls(router: bool, endpoints: list[Endpoint]) -> dict[str, str]:
    """IPv6 on where a node has an IPv6 address; forwarding on in a router, off in any
    other node on several networks (only routers forward)."""
    out: dict[str, str] = {}
    v6 = any(e.ipv6 for e in endpoints)
    if v6:
        out["net.ipv6.conf.all.disable_ipv6"] = "0"
    if router or len(endpoints) > 1:
        out["net.ipv4.ip_forward"] = "1" if router else "0"
        if v6:
            out["net.ipv6.conf.all.forwarding"] = "1" if router else "0"
    return out


def _use_dns(spec: ContainerPlan, dns: lab_dns.DnsPlan, domain: str) -> ContainerPlan:
    """The DNS server node starts dnsmasq first; every node sharing a network with it asks it."""
    nameserver = dns.nameservers.get(spec.instance)
    if nameserver is None:
        return spec
    dnsmasq = StartCommand(cmd=list(dns.argv), wait=f"udp/{DNS_PORT}")
    start = (dnsmasq, *spec.start) if spec.instance == dns.server else spec.start
    conf = lab_dns.resolv_conf(nameserver, domain, dns.server)
    return replace(spec, start=start, resolv_conf=conf)


def _assign_addresses(
    topo: Topology, networks: dict[str, NetworkPlan]
) -> dict[tuple[str, str], tuple[IPv4Address, IPv6Address | None]]:
    """Static addresses first, then the lowest free host address per network, in node order."""
    reserved4: dict[str, set[IPv4Address]] = {n: {p.gateway} for n, p in networks.items()}
    reserved6: dict[str, set[IPv6Address]] = {
        n: {p.ipv6_gateway} if p.ipv6_gateway else set() for n, p in networks.items()
    }
    for _, _, node in topo.instances():
        for net, att in node.networks.items():
            if att.ip:
                reserved4[net].add(att.ip)
            if att.ipv6:
                reserved6[net].add(att.ipv6)
    hosts4 = {n: _free_hosts(p.subnet.hosts(), reserved4[n]) for n, p in networks.items()}
    hosts6 = {
        n: _free_hosts(p.ipv6_subnet.hosts(), reserved6[n]) for n, p in networks.items() if p.ipv6_subnet
    }
    out: dict[tuple[str, str], tuple[IPv4Address, IPv6Address | None]] = {}
    for instance, _, node in topo.instances():
        for net, att in node.networks.items():
            ip = att.ip or next(hosts4[net], None)
            if ip is None:
                raise LabError(
                    f"network '{net}' has no free address left for node '{instance}'",
                    f"give '{net}' a larger subnet than {networks[net].subnet}",
                )
            ip6 = att.ipv6 or (next(hosts6[net]) if net in hosts6 else None)
            out[(instance, net)] = (ip, ip6)
    return out


def _free_hosts(hosts: Iterator[A], reserved: set[A]) -> Iterator[A]:
    return (h for h in hosts if h not in reserved)


def _free_subnets(pool: N, prefix: int, used: list[N]) -> Iterator[N]:
    return (s for s in pool.subnets(new_prefix=prefix) if not any(s.overlaps(u) for u in used))


def _next(free: Iterator[N], name: str, family: str) -> N:
    subnet = next(free, None)
    if subnet is None:
        raise LabError(
            f"no free {family} subnet left for network '{name}'",
            "give the network an explicit `subnet:` or remove unused labs (`socklab down --all`)",
        )
    return subnet
