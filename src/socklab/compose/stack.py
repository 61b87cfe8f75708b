"""A lab as a Swarm stack: ``docker stack deploy -c FILE LAB``, or ``socklab up --engine swarm``.

Both come from one :class:`StackPlan`: one service per node (a replicated node is
one service with ``replicas``: instance ``client-3`` is the task in slot 3, its
hostname ``client-3``), on attachable overlay networks, services resolving to
their tasks' own addresses (``endpoint_mode: dnsrr``, no virtual IP in between).
What Swarm cannot do is a warning here, and an error for ``up --engine swarm``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Network
from typing import Any

from socklab.compose.document import Images, escape_dollars
from socklab.compose.local import SUPERVISOR, default_routes, impairments
from socklab.compose.warning import ComposeWarning, Warnings
from socklab.topology.errors import SourceMap
from socklab.topology.model import Port, Topology
from socklab.topology.plan import (
    LABEL_LAB,
    LABEL_NODE,
    SETUP_LABELS,
    ContainerPlan,
    LabPlan,
    node_environment,
)

VERSION = "3.8"
LABEL_REPLICAS = "io.socklab.replicas"
LABEL_STACK = "com.docker.stack.namespace"  # what `docker stack ls/rm` go by
SLOT = "{{.Task.Slot}}"


@dataclass(frozen=True)
class StackNetwork:
    name: str
    docker_name: str
    subnet: IPv4Network
    internal: bool
    labels: dict[str, str]


@dataclass(frozen=True)
class StackAttachment:
    network: str
    docker_network: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class ServicePlan:
    """One service of the stack: a node, all its replicas as tasks."""

    name: str
    node: str
    replicas: int
    instances: tuple[str, ...]
    """instance names by slot: ``instances[slot - 1]``"""
    image: str
    hostname: str
    env: dict[str, str]
    command: tuple[str, ...] | None
    """None: the image's own CMD"""
    entrypoint: tuple[str, ...] | None
    """None: the image's own ENTRYPOINT"""
    cap_add: tuple[str, ...]
    ports: tuple[Port, ...]
    networks: tuple[StackAttachment, ...]
    labels: dict[str, str]
    """on the service and on each of its tasks' containers"""
    constraints: tuple[str, ...]

    def instance(self, slot: int) -> str:
        return self.instances[slot - 1] if 0 < slot <= len(self.instances) else f"{self.node}-{slot}"


@dataclass(frozen=True)
class StackPlan:
    stack: str
    services: tuple[ServicePlan, ...]
    networks: tuple[StackNetwork, ...]
    warnings: tuple[ComposeWarning, ...]


def unsupported(topo: Topology, source: SourceMap | None = None) -> list[ComposeWarning]:
    """The keys of a topology that Swarm cannot honour (``up --engine swarm`` refuses them)."""
    w = Warnings(source)
    for name, node in topo.nodes.items():
        for net, att in node.networks.items():
            for key, value in (("ip", att.ip), ("ipv6", att.ipv6)):
                if value is not None:
                    w.add(
                        ("nodes", name, "networks", net, key),
                        f"Swarm gives tasks addresses itself: {value} is not kept",
                    )
        for i, port in enumerate(node.ports):
            if not port.host_ip.is_unspecified:
                w.add(
                    ("nodes", name, "ports", i),
                    f"Swarm publishes port {port.host_port or port.container_port} on every "
                    f"interface of the task's host, not on {port.host_ip} only",
                )
        if len(f"{topo.name}_{name}") > 63:
            w.add(
                ("nodes", name), f"the service name '{topo.name}_{name}' is longer than Swarm's 63 characters"
            )
    for net_name, network in topo.networks.items():
        if network.ipv6:
            w.add(
                ("networks", net_name, "ipv6"),
                "a stack's overlay networks have no IPv6 (no `enable_ipv6` in stack files)",
            )
    for name, node in topo.nodes.items():
        if node.router:
            w.add(
                ("nodes", name, "router"),
                "routes through a router need every node's "
                "address in advance, which Swarm decides at deploy time",
            )
    for path in impairments(topo):
        w.add(path, "impairments are set by socklab's helper on the local engine only")
    if topo.dns is not None:
        w.add(
            ("dns",),
            "the lab's DNS server needs every node's address in advance, which "
            "Swarm decides at deploy time (Docker's DNS still serves node names and aliases)",
        )
    return w.items


def stack_plan(topo: Topology, plan: LabPlan, images: Images, source: SourceMap | None = None) -> StackPlan:
    """The stack of a planned lab: what Swarm cannot do is listed, never silently dropped."""
    w = Warnings(source)
    w.items.extend(unsupported(topo, source))
    dns_added = plan.dns.server if plan.dns and plan.dns.added else None
    groups: dict[str, list[ContainerPlan]] = {}
    for spec in plan.containers:
        if spec.instance != dns_added:
            groups.setdefault(spec.node, []).append(spec)
    services = tuple(_service(plan, specs, topo, images, w) for specs in groups.values())
    networks = tuple(
        StackNetwork(n.name, n.docker_name, n.subnet, n.internal, dict(n.labels)) for n in plan.networks
    )
    w.add(
        (),
        f"Swarm tasks have no domain name: getfqdn() answers the bare hostname "
        f"(`<node>.{plan.domain}` still resolves, as an alias, for a node without replicas)",
    )
    for name, node in topo.nodes.items():
        if node.cap_add:
            w.add(
                ("nodes", name, "cap_add"),
                "honoured by Docker 20.10 or later on every "
                "host (older `docker stack deploy` ignores cap_add)",
            )
        if node.ports:
            w.add(
                ("nodes", name, "ports"),
                "published in `mode: host` by the host that runs "
                "the task: services resolve to their tasks' own addresses (dnsrr), and the "
                "routing mesh needs a virtual IP",
            )
    default_routes(plan, w, swarm=True)
    used = sorted({s.image for s in services})
    w.add(
        (),
        f"every Swarm host needs the image{'s' if len(used) > 1 else ''} "
        f"{', '.join(used)} (nothing is pulled from a registry): build or `docker load` "
        "it there first",
    )
    if topo.scenarios:
        w.add(
            ("scenarios",),
            "not in the file: a stack has no scenarios (`socklab run` runs them on a lab it brings up)",
        )
    return StackPlan(plan.lab, services, networks, w.in_order())


def _service(
    plan: LabPlan, specs: list[ContainerPlan], topo: Topology, images: Images, w: Warnings
) -> ServicePlan:
    first = specs[0]
    node = topo.nodes.get(first.node)
    replicated = node is not None and node.replicas is not None
    dns_argv = plan.dns.argv if plan.dns else None
    start = tuple(a for a in first.start if tuple(a.cmd) != dns_argv)
    env = (
        node_environment(replace(first, start=start, resolv_conf=None))
        if first.supervised
        else dict(first.env)
    )
    hostname = first.hostname
    mine = {first.instance, f"{first.instance}.{plan.domain}"}
    if replicated:
        hostname = f"{first.node}-{SLOT}"
        env["SOCKLAB_NODE"] = hostname
    attachments = tuple(
        StackAttachment(
            ep.network, ep.docker_network, tuple(a for a in ep.aliases if not replicated or a not in mine)
        )
        for ep in first.endpoints
    )
    image = images.of(first, w)
    labels = {LABEL_LAB: plan.lab, LABEL_NODE: first.node}
    labels.update(
        {
            k: v
            for k, v in first.node_labels.items()
            if k not in labels and k != LABEL_NODE and k not in SETUP_LABELS
        }
    )
    if replicated:
        labels[LABEL_REPLICAS] = str(len(specs))
    host = node.host if node is not None else None
    return ServicePlan(
        name=first.node,
        node=first.node,
        replicas=len(specs),
        instances=tuple(s.instance for s in specs),
        image=image,
        hostname=hostname,
        env=env,
        # the supervisor of a node of its own image is its entrypoint, whatever the image's is
        command=(SUPERVISOR,) if first.supervised and not first.image else first.command,
        entrypoint=(SUPERVISOR,) if first.supervised and first.image else first.entrypoint,
        cap_add=first.cap_add,
        ports=first.ports,
        networks=attachments,
        labels=labels,
        constraints=(f"node.hostname == {host}",) if host else (),
    )


def stack_document(stack: StackPlan) -> dict[str, Any]:
    """The stack file (compose format 3.8) of a stack plan."""
    services = {s.name: _service_document(s) for s in stack.services}
    networks = {
        n.name: {
            "name": n.docker_name,
            "driver": "overlay",
            "attachable": True,
            "internal": n.internal,
            "ipam": {"config": [{"subnet": str(n.subnet)}]},
            "labels": dict(n.labels),
        }
        for n in stack.networks
    }
    document: dict[str, Any] = escape_dollars(
        {"version": VERSION, "services": services, "networks": networks}
    )
    return document


def _service_document(s: ServicePlan) -> dict[str, Any]:
    out: dict[str, Any] = {
        "image": s.image,
        "hostname": s.hostname,
        "init": True,
        **({"entrypoint": list(s.entrypoint)} if s.entrypoint is not None else {}),
        **({"command": list(s.command)} if s.command is not None else {}),
        "environment": dict(s.env),
    }
    if s.cap_add:
        out["cap_add"] = list(s.cap_add)
    if s.ports:
        out["ports"] = [
            {
                "target": p.container_port,
                **({"published": p.host_port} if p.host_port else {}),
                "protocol": p.protocol,
                "mode": "host",
            }
            for p in s.ports
        ]
    out["labels"] = dict(s.labels)
    out["networks"] = {a.network: {"aliases": list(a.aliases)} for a in s.networks}
    deploy: dict[str, Any] = {
        "replicas": s.replicas,
        "endpoint_mode": "dnsrr",
        "restart_policy": {"condition": "none"},
        "labels": dict(s.labels),
    }
    if s.constraints:
        deploy["placement"] = {"constraints": list(s.constraints)}
    out["deploy"] = deploy
    return out
