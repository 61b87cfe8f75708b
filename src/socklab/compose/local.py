"""A lab as a docker-compose file: ``docker-compose -p LAB up -d`` makes what ``socklab up`` makes.

One service per node instance (replicas expanded, so each keeps its name and
address), with the container and network names, labels, addresses, aliases,
hostname and domain of the lab's plan, and the node supervisor (under
docker-init) starting the same start commands from the same environment.
"""

from __future__ import annotations

from typing import Any

from socklab.compose.document import Images, escape_dollars
from socklab.compose.warning import Warnings
from socklab.topology.errors import DocPath, SourceMap
from socklab.topology.model import Port, Topology
from socklab.topology.plan import (
    SETUP_LABELS,
    ContainerPlan,
    LabPlan,
    NetworkPlan,
    node_environment,
)

VERSION = "2.4"  # the last format of the file for one host: init, ipv6, gateways, priorities
SUPERVISOR = "socklab-node"
DNS_OPTIONS = ["timeout:1", "attempts:2"]
DNS_HEALTHCHECK = {  # dnsmasq answers (dig exits 0 on any answer, 9 on none)
    "test": ["CMD", "dig", "+time=1", "+tries=1", "@127.0.0.1", "localhost"],
    "interval": "1s",
    "timeout": "2s",
    "retries": 30,
}


def port_text(port: Port) -> str:
    """docker's short form with every part written: ``127.0.0.1:8080:80/tcp``."""
    host = f"[{port.host_ip}]" if port.host_ip.version == 6 else str(port.host_ip)
    return f"{host}:{port.host_port or ''}:{port.container_port}/{port.protocol}"


def export_local(
    topo: Topology, plan: LabPlan, images: Images, source: SourceMap | None = None
) -> tuple[dict[str, Any], Warnings]:
    """The compose document of a planned lab, and what it could not hold."""
    warnings = Warnings(source)
    dns_server = plan.dns.server if plan.dns else None
    services: dict[str, Any] = {}
    for spec in plan.containers:
        service = _service(spec, images, warnings)
        if spec.instance == dns_server:
            service["healthcheck"] = dict(DNS_HEALTHCHECK)
        elif spec.resolv_conf and dns_server:  # its resolv.conf names the DNS server
            service["depends_on"] = {dns_server: {"condition": "service_healthy"}}
        services[spec.instance] = service
    for name, node in topo.nodes.items():
        if node.host:
            warnings.add(
                ("nodes", name, "host"),
                "one host runs every service of a compose file: placement is for --swarm",
            )
    network_setup(topo, plan, warnings, "the file")
    if topo.scenarios:
        warnings.add(
            ("scenarios",),
            "not in the file: compose has no scenarios (`socklab run` runs them on a lab it brings up)",
        )
    document = {
        "version": VERSION,
        "services": services,
        "networks": {n.name: _network(n) for n in plan.networks},
    }
    escaped: dict[str, Any] = escape_dollars(document)
    return escaped, warnings


def network_setup(topo: Topology, plan: LabPlan, warnings: Warnings, what: str) -> None:
    """Warn of what socklab's helper sets up in the nodes at `socklab up` (routes,
    impairments, no default route), which a file run without socklab does not get."""
    for name, node in topo.nodes.items():
        if node.router:
            warnings.add(
                ("nodes", name, "router"),
                f"routes through routers are set by socklab's "
                f"helper at `socklab up`: not in {what} (the router forwards; the "
                "other nodes get no route through it)",
            )
    for path in impairments(topo):
        warnings.add(
            path, f"impairments are set by socklab's helper at `socklab up` (tc, iptables): not in {what}"
        )
    default_routes(plan, warnings)


def impairments(topo: Topology) -> list[DocPath]:
    """Where the topology says ``impair:``: on a node's attachments, then on networks."""
    return [
        *(
            ("nodes", name, "networks", net, "impair")
            for name, node in topo.nodes.items()
            for net, att in node.networks.items()
            if att.impair is not None
        ),
        *(
            ("networks", name, "impair")
            for name, network in topo.networks.items()
            if network.impair is not None
        ),
    ]


def default_routes(plan: LabPlan, warnings: Warnings, *, swarm: bool = False) -> None:
    """Warn that nodes keep the default route `socklab up` takes from them."""
    keep = [c.instance for c in plan.containers if c.net.drop_default_route]
    if keep:
        how = (
            "through docker_gwbridge, which masquerades"
            if swarm
            else "masquerading stays off, so outside hosts cannot answer them"
        )
        warnings.add(
            (),
            f"{', '.join(keep)} keep their default route (`socklab up` removes "
            f"it so that nothing leaves the lab; {how})",
        )


def _service(spec: ContainerPlan, images: Images, warnings: Warnings) -> dict[str, Any]:
    out: dict[str, Any] = {
        "image": images.of(spec, warnings),
        "container_name": spec.container_name,
        "hostname": spec.hostname,
        "domainname": spec.domainname,
        "init": True,
    }
    if spec.supervised:  # (of its own image: as the entrypoint, whatever the image's is)
        out["entrypoint" if spec.image else "command"] = [SUPERVISOR]
        out["environment"] = node_environment(spec)
    else:  # the image's program unless the node's replaces it; no supervisor, no SOCKLAB_START
        if spec.entrypoint is not None:
            out["entrypoint"] = list(spec.entrypoint)
        if spec.command is not None:
            out["command"] = list(spec.command)
        out["environment"] = dict(spec.env)
    if spec.cap_add:
        out["cap_add"] = list(spec.cap_add)
    if spec.ports:
        out["ports"] = [port_text(p) for p in spec.ports]
    out["dns_opt"] = list(DNS_OPTIONS)
    if spec.sysctls:
        out["sysctls"] = dict(spec.sysctls)
    if spec.extra_hosts:  # nodes reached only through a router
        out["extra_hosts"] = [f"{name}:{ip}" for name, ip in spec.extra_hosts]
    out["labels"] = {k: v for k, v in spec.node_labels.items() if k not in SETUP_LABELS}
    networks: dict[str, Any] = {}
    for i, ep in enumerate(spec.endpoints):
        att: dict[str, Any] = {"ipv4_address": str(ep.ip)}
        if ep.ipv6:
            att["ipv6_address"] = str(ep.ipv6)
        att["aliases"] = list(ep.aliases)
        if len(spec.endpoints) > 1:
            att["priority"] = 100 * (len(spec.endpoints) - i)  # eth0, eth1... in topology order
        networks[ep.network] = att
    out["networks"] = networks
    return out


def _network(net: NetworkPlan) -> dict[str, Any]:
    config = [{"subnet": str(net.subnet), "gateway": str(net.gateway)}]
    if net.ipv6_subnet:
        config.append({"subnet": str(net.ipv6_subnet), "gateway": str(net.ipv6_gateway)})
    out: dict[str, Any] = {"name": net.docker_name, "driver": "bridge", "internal": net.internal}
    if net.options:
        out["driver_opts"] = dict(net.options)
    if net.ipv6_subnet:
        out["enable_ipv6"] = True
    out["ipam"] = {"config": config}
    out["labels"] = dict(net.labels)
    return out
