"""Checks that relate several parts of a topology, reported with pydantic's in one pass.

Pydantic checks each field; these checks look across fields: networks that
nodes name, static addresses against their subnets and each other, replica
names against node names, aliases, published ports, the nodes that
scenario steps target and the lab DNS's records (``dns``). They read the raw
document (so they run, and locate their findings, even where another part
failed validation) and validate the small pieces they need one by one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from socklab.topology import dns, fault_checks
from socklab.topology.errors import (
    DocPath,
    Problem,
    SourceMap,
    TopologyError,
    did_you_mean,
    listing,
    problems_from_validation,
)
from socklab.topology.model import (
    LAB_NAME,
    NET_NAME,
    NODE_PATTERN,
    STEP_KINDS,
    Attachment,
    Dns,
    DnsRecord,
    Network,
    Node,
    Port,
    Topology,
    split_command,
)
from socklab.topology.programs import unknown_program


def validate(source: SourceMap) -> Topology:
    """The topology of a parsed document, or a :class:`TopologyError` listing every problem."""
    problems: list[Problem] = []
    topology: Topology | None = None
    try:
        topology = Topology.model_validate(source.data)
    except ValidationError as exc:
        problems += problems_from_validation(exc, source)
    problems += check(source)
    if problems or topology is None:
        raise TopologyError(problems)
    return topology


M = TypeVar("M", bound=BaseModel)


def _valid(model: type[M], value: Any) -> M | None:
    try:
        return model.model_validate({} if value is None else value)
    except ValidationError:
        return None


def _partial(model: type[M], value: Any) -> M | None:
    """``model`` built from those of its fields that are valid on their own (others default)."""
    if value is None:
        return model.model_construct()
    if not isinstance(value, dict):
        return None
    good: dict[str, Any] = {}
    for key, field_value in value.items():
        one = _valid(model, {key: field_value}) if key in model.model_fields else None
        if one is not None:
            good[key] = getattr(one, key)
    return model.model_construct(**good)


def _mapping(value: Any) -> dict[str, Any]:
    return {k: v for k, v in value.items() if isinstance(k, str)} if isinstance(value, dict) else {}


@dataclass
class _Attach:
    """One node's reference to one network, where the document writes it."""

    node: str
    network: str
    path: DocPath
    attachment: Attachment | None


class _Lab:
    """The parts of a document that parsed, for the cross-checks."""

    def __init__(self, source: SourceMap) -> None:
        self.source = source
        data = source.data
        self.network_names = list(_mapping(data.get("networks")))
        self.networks = {n: _partial(Network, v) for n, v in _mapping(data.get("networks")).items()}
        self.nodes = _mapping(data.get("nodes"))
        self.replicas: dict[str, int | None] = {}
        for name, raw in self.nodes.items():
            r = raw.get("replicas") if isinstance(raw, dict) else None
            ok = isinstance(r, int) and not isinstance(r, bool) and r >= 1
            self.replicas[name] = r if ok else None
        # a model-constructed topology gives instances() and match_nodes() their exact meaning
        self.topology = Topology.model_construct(
            name="lab",
            networks={},
            nodes={n: Node.model_construct(networks={}, replicas=r) for n, r in self.replicas.items()},
        )
        self.instances = list(dict.fromkeys(i for i, _, _ in self.topology.instances()))

    def wired(self) -> Topology:
        """The nodes (with replicas) on the networks they name, and the declared networks."""
        attached: dict[str, dict[str, Attachment]] = {n: {} for n in self.nodes}
        for a in self.attachments():
            attached[a.node].setdefault(a.network, Attachment.model_construct())
        return Topology.model_construct(
            name="lab",
            networks={n: Network.model_construct() for n in self.network_names},
            nodes={
                n: Node.model_construct(networks=attached[n], replicas=r) for n, r in self.replicas.items()
            },
        )

    def attachments(self) -> Iterator[_Attach]:
        for node, raw in self.nodes.items():
            nets = raw.get("networks") if isinstance(raw, dict) else None
            base: DocPath = ("nodes", node, "networks")
            if isinstance(nets, list):
                for i, net in enumerate(nets):
                    if isinstance(net, str):
                        yield _Attach(node, net, (*base, i), Attachment())
            else:
                for net, att in _mapping(nets).items():
                    yield _Attach(node, net, (*base, net), _partial(Attachment, att))


def check(source: SourceMap) -> list[Problem]:
    """Every cross-field problem of the document."""
    lab = _Lab(source)
    return [
        *_unknown_networks(lab),
        *_overlapping_subnets(lab),
        *_static_addresses(lab),
        *_replica_names(lab),
        *_aliases(lab),
        *_published_ports(lab),
        *_step_nodes(lab),
        *_commands(lab),
        *_starts_without_supervisor(lab),
        *_step_references(lab),
        *_dns(lab),
        *_routers(lab),
        *fault_checks.problems(source, lab.wired()),
    ]


def _unknown_networks(lab: _Lab) -> Iterator[Problem]:
    for a in lab.attachments():
        if a.network not in lab.networks and re.fullmatch(NET_NAME, a.network):
            hint = did_you_mean(a.network, lab.network_names) or (
                f"declared networks: {listing(lab.network_names)}"
                if lab.network_names
                else "declare it under 'networks:'"
            )
            yield lab.source.problem(a.path, f"unknown network {a.network!r}", hint)


def _overlapping_subnets(lab: _Lab) -> Iterator[Problem]:
    seen4: list[tuple[str, IPv4Network]] = []
    seen6: list[tuple[str, IPv6Network]] = []
    for name, net in lab.networks.items():
        if net is None:
            continue
        if net.subnet is not None:
            for other, subnet in seen4:
                if net.subnet.overlaps(subnet):
                    yield lab.source.problem(
                        ("networks", name, "subnet"),
                        f"{net.subnet} overlaps network {other!r} ({subnet})",
                        "give each network its own subnet",
                    )
                    break
            seen4.append((name, net.subnet))
        if isinstance(net.ipv6, IPv6Network):
            for other, subnet6 in seen6:
                if net.ipv6.overlaps(subnet6):
                    yield lab.source.problem(
                        ("networks", name, "ipv6"),
                        f"{net.ipv6} overlaps network {other!r} ({subnet6})",
                        "give each network its own subnet",
                    )
                    break
            seen6.append((name, net.ipv6))


def _static_addresses(lab: _Lab) -> Iterator[Problem]:
    used: dict[tuple[str, IPv4Address | IPv6Address], str] = {}
    for a in lab.attachments():
        att = a.attachment
        if att is None:
            continue
        for key, ip in (("ip", att.ip), ("ipv6", att.ipv6)):
            if ip is None:
                continue
            path = (*a.path, key)
            replicas = lab.replicas.get(a.node)
            if replicas is not None:
                yield lab.source.problem(
                    path,
                    f"a static address on a replicated node would be shared by its {replicas} replicas",
                    f"remove '{key}' (addresses are allocated) or remove 'replicas'",
                )
                continue
            if a.network not in lab.networks:
                continue  # reported as an unknown network
            net = lab.networks[a.network]
            if net is None:
                continue  # the network itself is invalid, and reported
            problem = _address_problem(a.network, net, key, ip)
            if problem is not None:
                yield lab.source.problem(path, *problem)
                continue
            other = used.setdefault((a.network, ip), a.node)
            if other != a.node:
                yield lab.source.problem(
                    path,
                    f"{ip} is already used by node {other!r} on network {a.network!r}",
                    "give each node its own address",
                )


def _address_problem(
    name: str, net: Network, key: str, ip: IPv4Address | IPv6Address
) -> tuple[str, str] | None:
    subnet: IPv4Network | IPv6Network
    if isinstance(ip, IPv4Address):
        if net.subnet is None:
            return (
                "a static IP needs the network's subnet",
                f"add 'subnet:' to network {name!r} (an allocated subnet is not known in advance)",
            )
        subnet = net.subnet
    else:
        if not isinstance(net.ipv6, IPv6Network):
            how = "instead of 'ipv6: true'" if net.ipv6 else ""
            return (
                "a static IPv6 address needs the network's IPv6 subnet",
                f"set 'ipv6: fd00:...::/64' on network {name!r} {how}".rstrip(),
            )
        subnet = net.ipv6
    first, last = subnet.network_address + 2, subnet.network_address + subnet.num_addresses - 1
    if isinstance(subnet, IPv4Network):
        last = subnet.broadcast_address - 1
    pick = f"pick an address in {first}-{last}"
    if ip not in subnet:
        return f"{ip} is outside the subnet of network {name!r} ({subnet})", pick
    if ip == subnet.network_address:
        return f"{ip} is the network address of {subnet}", pick
    if isinstance(subnet, IPv4Network) and ip == subnet.broadcast_address:
        return f"{ip} is the broadcast address of {subnet}", pick
    if ip == subnet.network_address + 1:
        return f"{ip} is the gateway of network {name!r} (its first address)", pick
    return None


def _replica_names(lab: _Lab) -> Iterator[Problem]:
    made_by: dict[str, str] = {}
    for name, r in lab.replicas.items():
        for i in range(1, (r or 0) + 1):
            made_by.setdefault(f"{name}-{i}", name)
    for name in lab.nodes:
        base = made_by.get(name)
        if base is not None and base != name:
            yield lab.source.problem(
                ("nodes", name),
                f"node {name!r} clashes with a replica of {base!r} "
                f"(replicas: {lab.replicas[base]} makes {base}-1 .. {base}-{lab.replicas[base]})",
                f"rename the node, or lower the replicas of {base!r}",
            )


def _aliases(lab: _Lab) -> Iterator[Problem]:
    names = {n.lower(): n for n in [*lab.nodes, *lab.instances]}
    owner: dict[tuple[str, str], str] = {}
    for a in lab.attachments():
        if a.attachment is None:
            continue
        mine: set[str] = set()
        for i, alias in enumerate(a.attachment.aliases):
            path = (*a.path, "aliases", i)
            low = alias.lower()
            if low in mine:
                yield lab.source.problem(path, f"alias {alias!r} is listed twice", "remove one")
                continue
            mine.add(low)
            if low in names and names[low] != a.node:
                yield lab.source.problem(
                    path,
                    f"alias {alias!r} is the name of node {names[low]!r}",
                    "choose another alias: node names already resolve",
                )
                continue
            other = owner.setdefault((a.network, low), a.node)
            if other != a.node:
                yield lab.source.problem(
                    path,
                    f"alias {alias!r} is already used by node {other!r} on network {a.network!r}",
                    "an alias names one node (replicas of a node share their aliases)",
                )


def _published_ports(lab: _Lab) -> Iterator[Problem]:
    taken: list[tuple[Port, str]] = []
    for node, raw in lab.nodes.items():
        ports = raw.get("ports") if isinstance(raw, dict) else None
        if not isinstance(ports, list):
            continue
        for i, value in enumerate(ports):
            port = _valid(Port, value)
            if port is None or not port.host_port:
                continue
            path = ("nodes", node, "ports", i)
            replicas = lab.replicas.get(node)
            if replicas is not None and replicas > 1:
                yield lab.source.problem(
                    path,
                    f"host port {port.host_port} would be published by each of the {replicas} replicas",
                    "leave out the host port (a free one is chosen), or remove 'replicas'",
                )
                continue
            for other, owner in taken:
                if _ports_clash(port, other):
                    yield lab.source.problem(
                        path,
                        f"host port {port.host_port}/{port.protocol} is already published by node {owner!r}",
                        "use another host port",
                    )
                    break
            else:
                taken.append((port, node))


def _ports_clash(a: Port, b: Port) -> bool:
    if (a.host_port, a.protocol) != (b.host_port, b.protocol):
        return False
    return a.host_ip == b.host_ip or a.host_ip.is_unspecified or b.host_ip.is_unspecified


def _step_nodes(lab: _Lab) -> Iterator[Problem]:
    for name, steps in _mapping(lab.source.data.get("scenarios")).items():
        if isinstance(steps, list):
            yield from _steps(lab, steps, ("scenarios", name))


def _steps(lab: _Lab, steps: list[Any], path: DocPath) -> Iterator[Problem]:
    for i, step in enumerate(steps):
        if not (isinstance(step, dict) and len(step) == 1):
            continue
        kind, spec = next(iter(step.items()))
        if kind not in STEP_KINDS:
            continue
        if kind == "parallel" and isinstance(spec, list):
            yield from _steps(lab, spec, (*path, i, "parallel"))
            continue
        spec = spec if isinstance(spec, dict) else {}
        targets: list[tuple[DocPath, Any]] = [((*path, i, kind, "node"), spec.get("node"))]
        patterns = (
            spec.get("events")
            if kind == "expect_timeline"
            else _mapping(spec.get("expect")).get("events")
            if kind == "run"
            else None
        )
        events_path = (
            (*path, i, kind, "events") if kind == "expect_timeline" else (*path, i, kind, "expect", "events")
        )
        for j, pattern in enumerate(patterns if isinstance(patterns, list) else []):
            if isinstance(pattern, dict) and "node" in pattern:
                targets.append(((*events_path, j, "node"), pattern["node"]))
        for where, node in targets:
            problem = _no_such_node(lab, node, where)
            if problem is not None:
                yield problem
        node = spec.get("node")
        if kind == "capture" and isinstance(node, str) and len(lab.topology.match_nodes(node)) > 1:
            yield lab.source.problem(
                (*path, i, kind, "node"),
                f"a capture runs in one node; {node!r} matches {len(lab.topology.match_nodes(node))}",
                "name one node (e.g. the server: it sees every client's packets)",
            )


def _no_such_node(lab: _Lab, node: Any, where: DocPath) -> Problem | None:
    if not isinstance(node, str) or not re.fullmatch(NODE_PATTERN, node):
        return None  # missing or malformed: pydantic reports it
    if lab.topology.match_nodes(node):
        return None
    choices = [*lab.nodes, *lab.instances]
    choices += [f"{n}-*" for n, r in lab.replicas.items() if r is not None]
    hint = did_you_mean(node, choices) or (f"nodes are: {listing(lab.instances)}" if lab.instances else None)
    return lab.source.problem(where, f"no node matches {node!r}", hint)


def _flatten(steps: list[Any], path: DocPath) -> Iterator[tuple[DocPath, str, dict[str, Any]]]:
    """``(path, kind, spec)`` of every well-formed step, parallel children included, in order."""
    for i, step in enumerate(steps):
        if not (isinstance(step, dict) and len(step) == 1):
            continue
        kind, spec = next(iter(step.items()))
        if kind == "parallel" and isinstance(spec, list):
            yield from _flatten(spec, (*path, i, "parallel"))
        elif isinstance(spec, dict):
            yield (*path, i, kind), kind, spec


def _step_references(lab: _Lab) -> Iterator[Problem]:
    """Step ids are unique in a scenario; ``expect_ratio`` names earlier run steps and
    ``expect_capture`` an earlier capture."""
    for name, steps in _mapping(lab.source.data.get("scenarios")).items():
        if not isinstance(steps, list):
            continue
        runs: list[str] = []
        captures: list[str] = []
        for path, kind, spec in _flatten(steps, ("scenarios", name)):
            ident = spec.get("id")
            if kind in ("run", "capture") and isinstance(ident, str):
                if ident in runs or ident in captures:
                    yield lab.source.problem(
                        (*path, "id"), f"id {ident!r} is used twice", "give each step its own id"
                    )
                (runs if kind == "run" else captures).append(ident)
            elif kind == "expect_ratio":
                for key in ("of", "to"):
                    ref = spec.get(key)
                    if isinstance(ref, str) and ref not in runs:
                        yield lab.source.problem(
                            (*path, key),
                            f"no earlier run step has id {ref!r}",
                            did_you_mean(ref, runs)
                            or ("give the run steps to compare an `id:`, before this step"),
                        )
            elif kind == "expect_capture":
                ref = spec.get("capture")
                if not isinstance(ref, str):
                    continue
                if ref not in captures:
                    yield lab.source.problem(
                        (*path, "capture"),
                        f"no earlier capture step has id {ref!r}",
                        did_you_mean(ref, captures) or "start it with `capture: {node, id}` first",
                    )


def _commands(lab: _Lab) -> Iterator[Problem]:
    """Start commands, and the commands of ``start``/``run`` steps, that name no program of
    the node image (a typo of a built-in app: ``tcp-servr``). Nodes of another ``image:``,
    or with their own ``PATH``, are not checked: their programs are not known here."""
    own_image = {
        name
        for name, raw in lab.nodes.items()
        if not isinstance(raw, dict) or raw.get("image") is not None or "PATH" in _mapping(raw.get("env"))
    }
    for name, raw in lab.nodes.items():
        if name in own_image:
            continue
        start = raw.get("start")
        listed = isinstance(start, list)
        for i, item in enumerate(start if listed else [] if start is None else [start]):
            path: DocPath = ("nodes", name, "start", *((i,) if listed else ()))
            if isinstance(item, dict):  # {cmd, wait}
                path, item = (*path, "cmd"), item.get("cmd")
            yield from _command(lab, path, [(None, item)])
    bases = {inst: base for inst, base, _ in lab.topology.instances()}
    for scenario, steps in _mapping(lab.source.data.get("scenarios")).items():
        for path, kind, spec in _walk_steps(steps, ("scenarios", scenario)):
            if kind not in ("start", "run") or not isinstance(spec, dict):
                continue
            node = spec.get("node")
            matched = lab.topology.match_nodes(node) if isinstance(node, str) else []
            if matched and not {bases[m] for m in matched} & own_image:
                yield from _command(lab, (*path, kind, "cmd"), [(None, spec.get("cmd"))])


def _starts_without_supervisor(lab: _Lab) -> Iterator[Problem]:
    """``start`` steps on a node that runs its own program (``command:``/``entrypoint:``):
    no supervisor there starts anything in the background."""
    own = {
        name: key
        for name, raw in lab.nodes.items()
        if isinstance(raw, dict)
        for key in ("command", "entrypoint")
        if raw.get(key) is not None
    }
    bases = {inst: base for inst, base, _ in lab.topology.instances()}
    for scenario, steps in _mapping(lab.source.data.get("scenarios")).items():
        for path, kind, spec in _walk_steps(steps, ("scenarios", scenario)):
            node = spec.get("node") if kind == "start" and isinstance(spec, dict) else None
            matched = lab.topology.match_nodes(node) if isinstance(node, str) else []
            base = next((bases[m] for m in matched if bases[m] in own), None)
            if base is not None:
                yield lab.source.problem(
                    (*path, kind, "node"),
                    f"node {base!r} runs its own program (its `{own[base]}:`), not socklab's "
                    "supervisor: nothing can be started there in the background",
                    "use a `run` step (the command runs to completion), or drop "
                    f"`{own[base]}:` from the node",
                )


def _walk_steps(steps: Any, path: DocPath) -> Iterator[tuple[DocPath, str, Any]]:
    """``(path, kind, spec)`` of every well-formed step, ``parallel`` ones' included."""
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        if isinstance(step, dict) and len(step) == 1:
            kind, spec = next(iter(step.items()))
            yield (*path, i), kind, spec
            if kind == "parallel":
                yield from _walk_steps(spec, (*path, i, "parallel"))


def _command(lab: _Lab, path: DocPath, commands: list[tuple[int | None, Any]]) -> Iterator[Problem]:
    for i, command in commands:
        try:
            argv = split_command(command)
        except ValueError:
            continue  # reported by pydantic
        if isinstance(argv, list) and argv and isinstance(argv[0], str):
            unknown = unknown_program(argv[0])
            if unknown is not None:
                yield lab.source.problem(path if i is None else (*path, i), *unknown)


def _routers(lab: _Lab) -> Iterator[Problem]:
    for name, raw in lab.nodes.items():
        if isinstance(raw, dict) and raw.get("router") is True:
            nets = raw.get("networks")
            if isinstance(nets, (list, dict)) and len(nets) < 2:
                yield lab.source.problem(
                    ("nodes", name, "router"),
                    "a router needs two networks or more",
                    "attach it to the networks it joins, or remove 'router: true'",
                )


def _dns(lab: _Lab) -> Iterator[Problem]:
    """The lab DNS's own checks (``socklab.topology.dns``) on the well-formed parts of the
    document, located in the file."""
    raw = lab.source.data.get("dns")
    short_form = isinstance(raw, list)  # ``dns: [records...]``
    spec = {"records": raw} if short_form else raw
    if not isinstance(spec, dict):
        return  # no DNS, or not a mapping: pydantic reports it
    name = lab.source.data.get("name")
    name = name if isinstance(name, str) and re.fullmatch(LAB_NAME, name) else "lab"
    domain = Topology.model_construct(name=name, networks={}, nodes={}).domain

    dns_server = _valid(Dns, {"server": spec.get("server")})
    records: list[tuple[int, DnsRecord]] = []
    malformed: set[str] = set()
    raw_records = spec.get("records")
    for i, value in enumerate(raw_records if isinstance(raw_records, list) else []):
        record = _valid(DnsRecord, value)
        if record is not None:
            records.append((i, record))
        elif (
            isinstance(value, dict)
            and isinstance(value.get("name"), str)
            and ("a" in value or "aaaa" in value)
        ):
            malformed.add(dns.absolute(value["name"], domain))

    networks = {
        n: net
        for n, v in _mapping(lab.source.data.get("networks")).items()
        if (net := _valid(Network, v)) is not None
    }
    attached: dict[str, dict[str, Attachment]] = {n: {} for n in lab.nodes}
    for a in lab.attachments():
        attached[a.node].setdefault(a.network, a.attachment or Attachment.model_construct())
    nodes: dict[str, Node] = {}
    ipv6_unknown: set[str] = set()
    for node, raw_node in lab.nodes.items():
        fields = _partial(Node, raw_node)
        nodes[node] = Node.model_construct(
            networks=attached[node],
            image=fields.image if fields is not None else None,
            replicas=lab.replicas[node],
        )
        raw_nets = raw_node.get("networks") if isinstance(raw_node, dict) else None
        if _valid(Node, {"networks": raw_nets}) is None or not set(attached[node]) <= set(networks):
            ipv6_unknown.add(node)

    topology = Topology.model_construct(
        name=name,
        networks=networks,
        nodes=nodes,
        dns=Dns.model_construct(
            server=dns_server.server if dns_server else None, records=[r for _, r in records]
        ),
    )
    unknown = dns.Unknown(server=dns_server is None, ipv6=frozenset(ipv6_unknown), names=frozenset(malformed))
    for p in dns.problems(topology, records, unknown):
        path, message = tuple(p.path), p.message
        if short_form:
            path = ("dns", *path[2:]) if path[:2] == ("dns", "records") else path
            message = message.replace("(dns.records[", "(dns[")
        yield lab.source.problem(path, message, p.hint)
