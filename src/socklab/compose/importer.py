"""A compose project (file format v2 or v3) as a socklab topology.

Services become nodes (``deploy.replicas``/``scale`` become ``replicas``), networks
keep their subnets, and each service keeps its addresses, aliases, hostname,
environment, command and entrypoint, capabilities, published ports and start order
(``depends_on``).
Every key socklab does not model is a warning with its file and line, never
dropped silently. Extension fields (``x-...``) are the file's own templates and
are skipped.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

from socklab.compose.document import to_yaml
from socklab.compose.warning import ComposeWarning, Warnings
from socklab.errors import LabError
from socklab.topology.errors import DocPath, SourceMap, TopologyError, format_path
from socklab.topology.loader import parse_topology, read_document

DEFAULT_NETWORK = "default"
NODE_IMAGE_REPO = "socklab/node"
_VARIABLE = re.compile(r"\$(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")
_PORT = re.compile(
    r"^(?:(?P<ip>\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:.]+\]):)?"
    r"(?:(?P<host>\d+(?:-\d+)?)?:)?(?P<target>\d+(?:-\d+)?)(?:/(?P<proto>[a-z]+))?$"
)
_TOP_KEYS_SKIPPED = {"version"}
_NOT_MODELLED = "is not modelled by socklab: not imported"


@dataclass(frozen=True)
class Imported:
    """The topology made from a compose file, and every key of it that was not imported."""

    lab: str
    source: str
    topology: dict[str, Any]
    warnings: tuple[ComposeWarning, ...]

    def yaml(self) -> str:
        return to_yaml(
            self.topology,
            f"lab '{self.lab}' imported from {self.source} by "
            f"`socklab compose import` ({len(self.warnings)} warnings)",
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "source": self.source,
            "topology": self.topology,
            "warnings": [w.as_dict() for w in self.warnings],
        }


def import_compose(
    text: str, filename: str = "<string>", *, name: str | None = None, default_name: str = "compose"
) -> Imported:
    """The socklab topology of a compose file's text. The lab's name is ``name``, else the
    file's top-level ``name:``, else ``default_name`` (compose's default project name is the
    file's folder's name); raises :class:`LabError` when the file is no compose file or the
    topology made from it is not valid."""
    source = read_document(text, filename)
    return _Importer(source).run(name, default_name)


def safe_name(text: str, *, underscore: bool = False, length: int = 31) -> str:
    """A socklab name for a compose name: lower case, ``[a-z0-9-]`` (and ``_`` for networks),
    starting with a letter."""
    allowed = r"a-z0-9_-" if underscore else r"a-z0-9-"
    out = re.sub(rf"[^{allowed}]+", "-", text.lower().replace("_", "_" if underscore else "-"))
    out = out.strip("-_")
    if not out or not out[0].isalpha():
        out = f"n-{out}".rstrip("-")
    return out[:length].rstrip("-_")


class _Importer:
    def __init__(self, source: SourceMap) -> None:
        self.src = source
        self.w = Warnings(source)
        self.doc: dict[str, Any] = source.data
        self.node_names: dict[str, str] = {}  # service -> node
        self.net_names: dict[str, str] = {}  # compose network -> socklab network
        self.networks: dict[str, dict[str, Any]] = {}
        self.publishing: set[str] = set()
        self.used: dict[str, DocPath] = {}  # socklab network -> where a service first joins it
        self.origin: dict[str, DocPath] = {}  # topology key path -> the compose key it came from
        self.project = ""

    def warn(self, path: DocPath, message: str) -> None:
        self.w.add(path, message)

    def run(self, name: str | None, default_name: str) -> Imported:
        services = self.doc.get("services")
        if not isinstance(services, dict) or not services:
            raise LabError(
                f"{self.src.filename}: no `services:` mapping: not a compose file (format v2 or v3)",
                "a compose file has `services:` with one entry per container",
            )
        for key in self.doc:
            if key in ("services", "networks", "name") or _skipped(key):
                continue
            self.warn((key,), f"top-level '{key}' {_NOT_MODELLED}")
        lab = safe_name(str(name or self.doc.get("name") or default_name))
        # compose's project name (its file's `name:`, else its folder's), which names the
        # images it builds: `<project>_<service>` (docker-compose 1.x)
        self.project = re.sub(r"[^-_a-z0-9]", "", str(self.doc.get("name") or default_name).lower())
        self._networks()
        for svc in services:
            self.node_names[str(svc)] = self._node_name(str(svc), services)
        nodes: dict[str, dict[str, Any]] = {}
        for svc in _start_order(services, self):
            body = services[svc]
            path: DocPath = ("services", svc)
            if not isinstance(body, dict):
                body = {}
            nodes[self.node_names[svc]] = self._node(svc, body, path)
            self.origin[format_path(("nodes", self.node_names[svc]))] = path
        self._network_notes()
        topology = {
            "name": lab,
            "description": f"imported from {self.src.filename} by socklab compose import",
            "networks": self.networks,
            "nodes": nodes,
        }
        self._validate(topology)
        return Imported(lab, self.src.filename, topology, self.w.in_order())

    # -- networks ------------------------------------------------------------------------

    def _networks(self) -> None:
        declared = self.doc.get("networks") or {}
        if not isinstance(declared, dict):
            self.warn(("networks",), "not a mapping: not imported")
            declared = {}
        for net, body in declared.items():
            if _skipped(net):
                continue
            self._network(str(net), body if isinstance(body, dict) else {})

    def _network(self, net: str, body: dict[str, Any]) -> str:
        name = safe_name(net, underscore=True)
        while name in self.networks and self.net_names.get(net) != name:
            name = f"{name}-2"
        self.net_names[net] = name
        spec: dict[str, Any] = {}
        path: DocPath = ("networks", net)
        self.origin[format_path(("networks", name))] = path
        for key, value in body.items():
            here = (*path, key)
            if key == "ipam":
                spec.update(self._ipam(value, here))
            elif key == "enable_ipv6":
                if value is True and "ipv6" not in spec:
                    spec["ipv6"] = True
            elif key == "driver":
                if value not in ("bridge", "overlay"):
                    self.warn(
                        here,
                        f"driver '{value}': socklab makes a bridge network "
                        "(an overlay with `--engine swarm`)",
                    )
            elif key == "internal":
                spec["_internal"] = bool(value)
            elif key == "external" and value:
                spec["_external"] = True
                self.warn(
                    here,
                    "socklab makes every network of a lab: an external network "
                    "is made as the lab's own (dropped when no service joins it)",
                )
            elif key == "attachable" or _skipped(key):
                continue
            else:
                self.warn(here, f"'{key}' {_NOT_MODELLED}")
        self.networks[name] = dict(sorted(spec.items(), key=lambda kv: kv[0] != "subnet"))
        return name

    def _ipam(self, ipam: Any, path: DocPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not isinstance(ipam, dict):
            return out
        for key, value in ipam.items():
            if key == "driver" and value == "default":
                continue
            if key != "config":
                self.warn((*path, key), f"'{key}' {_NOT_MODELLED}")
                continue
            for i, pool in enumerate(value if isinstance(value, list) else []):
                here = (*path, "config", i)
                if not isinstance(pool, dict):
                    continue
                subnet = _network_or_none(pool.get("subnet"))
                if subnet is None:
                    self.warn(here, "a pool without a valid subnet: not imported")
                    continue
                if isinstance(subnet, IPv6Network):
                    out["ipv6"] = str(subnet)
                else:
                    out["subnet"] = str(subnet)
                for key2, value2 in pool.items():
                    if key2 == "subnet":
                        continue
                    if key2 == "gateway" and str(value2) == str(next(subnet.hosts(), "")):
                        continue  # socklab's gateway: the first address
                    self.warn(
                        (*here, key2),
                        f"'{key2}' {_NOT_MODELLED}"
                        + (f" (socklab's gateway is {next(subnet.hosts())})" if key2 == "gateway" else ""),
                    )
        return out

    def _network_notes(self) -> None:
        for compose_name, name in self.net_names.items():
            spec = self.networks[name]
            internal = spec.pop("_internal", False)
            if spec.pop("_external", False) and name not in self.used:
                del self.networks[name]
                continue
            if not internal and name not in self.publishing:
                path: DocPath = ("networks", compose_name)
                if compose_name not in (self.doc.get("networks") or {}):
                    path = self.used[name]
                self.warn(
                    path,
                    f"network '{compose_name}' has no route out of the lab in "
                    "socklab (no node on it publishes ports): its services reach only "
                    "each other",
                )

    # -- services ------------------------------------------------------------------------

    def _node_name(self, svc: str, services: dict[str, Any]) -> str:
        body = services.get(svc)
        hostname = body.get("hostname") if isinstance(body, dict) else None
        taken = set(self.node_names.values())
        name = safe_name(svc, length=41)
        if (
            isinstance(hostname, str)
            and re.fullmatch(r"[a-z][a-z0-9-]{0,40}", hostname)
            and hostname not in taken
            and hostname not in services
        ):
            return hostname  # a container's hostname is its node's name
        while name in taken:
            name = f"{name}-2"
        return name

    def _node(self, svc: str, body: dict[str, Any], path: DocPath) -> dict[str, Any]:
        node: dict[str, Any] = {}
        name = self.node_names[svc]
        extra_aliases: list[str] = []
        if name != svc:
            if _HOSTNAME.fullmatch(svc):
                extra_aliases.append(svc)  # other services reach it by its service name
            else:
                self.warn(
                    path,
                    f"service '{svc}' is node '{name}': the name '{svc}' does not "
                    "resolve (socklab names have no '_')",
                )
        container = body.get("container_name")
        if isinstance(container, str) and _HOSTNAME.fullmatch(container) and container not in (name, svc):
            extra_aliases.append(container)  # Docker's DNS answers a container's name too
        networks = self._attachments(svc, body, path, extra_aliases)
        for key, value in body.items():
            here = (*path, key)
            if key in ("networks", "depends_on", "network_mode") or _skipped(key):
                continue  # (network_mode: a warning of the attachments)
            handler = getattr(self, f"_key_{key}", None)
            if handler is None:
                self.warn(here, f"'{key}' {_NOT_MODELLED}")
            else:
                handler(node, value, here, svc)
        if "build" in body and "image" not in body:
            node["image"] = self._built_image(svc)
        node["networks"] = networks
        order = [
            "image",
            "replicas",
            "host",
            "networks",
            "entrypoint",
            "command",
            "start",
            "env",
            "cap_add",
            "ports",
        ]
        return {k: node[k] for k in sorted(node, key=lambda k: order.index(k) if k in order else len(order))}

    def _attachments(self, svc: str, body: dict[str, Any], path: DocPath, extra_aliases: list[str]) -> Any:
        raw = body.get("networks")
        if "network_mode" in body:
            self.warn(
                (*path, "network_mode"),
                "not imported: every socklab node has its own network namespace on the lab's networks",
            )
        if raw is None:
            raw = [DEFAULT_NETWORK]
        items: list[tuple[str, Any]] = (
            [(str(n), None) for n in raw]
            if isinstance(raw, list)
            else list(raw.items())
            if isinstance(raw, dict)
            else []
        )
        out: dict[str, dict[str, Any]] = {}
        for net, att in items:
            name = self.net_names.get(net) or self._network(net, {})
            spec: dict[str, Any] = {}
            here: DocPath = (*path, "networks", net) if "networks" in body else path
            self.used.setdefault(name, here)
            topo_path = ("nodes", self.node_names[svc], "networks", name)
            self.origin[format_path(topo_path)] = here
            for key, topo_key in (("ipv4_address", "ip"), ("ipv6_address", "ipv6"), ("aliases", "aliases")):
                self.origin[format_path((*topo_path, topo_key))] = (*here, key)
            for key, value in (att or {}).items() if isinstance(att, dict) else []:
                if key == "aliases":
                    spec["aliases"] = [str(a) for a in value or []]
                elif key == "ipv4_address":
                    spec["ip"] = str(value)
                elif key == "ipv6_address":
                    spec["ipv6"] = str(value)
                    self.networks[name].setdefault("ipv6", True)
                elif key == "priority":
                    continue  # the order of the file is the order of the interfaces
                else:
                    self.warn((*here, key), f"'{key}' {_NOT_MODELLED}")
            if extra_aliases:
                spec["aliases"] = [*spec.get("aliases", []), *extra_aliases]
            bad = [a for a in spec.get("aliases", []) if not _HOSTNAME.fullmatch(a)]
            if bad:
                self.warn(
                    (*here, "aliases"),
                    f"{', '.join(bad)}: not a host name socklab "
                    "accepts (letters, digits, '-', '.'): not imported",
                )
                spec["aliases"] = [a for a in spec["aliases"] if a not in bad]
            out[name] = spec
        if all(not spec for spec in out.values()):
            return list(out)
        return out

    def _key_image(self, node: dict[str, Any], value: Any, path: DocPath, svc: str) -> None:
        image = str(value)
        if image.split(":", 1)[0] != NODE_IMAGE_REPO:
            node["image"] = image

    def _key_build(self, node: dict[str, Any], value: Any, path: DocPath, svc: str) -> None:
        built = "" if "image" in (self.src.get(path[:-1]) or {}) else f" ({self._built_image(svc)})"
        self.warn(
            path,
            "socklab does not build images: build it first (`docker-compose "
            f"build`); the node runs the image compose tags{built}",
        )

    def _built_image(self, svc: str) -> str:
        """The tag docker-compose 1.x gives the image it builds for a service without
        ``image:`` (docker compose 2 writes ``<project>-<service>``)."""
        return f"{self.project}_{svc}"

    def _key_hostname(self, node: dict[str, Any], value: Any, path: DocPath, svc: str) -> None:
        if self.node_names[svc] != value:
            self.warn(
                path, f"the node is named '{self.node_names[svc]}', its hostname: '{value}' is not kept"
            )

    def _key_command(self, node: dict[str, Any], value: Any, path: DocPath, svc: str) -> None:
        argv = self._argv(value, path)
        if argv is None:
            return
        body = self.src.get(path[:-1]) or {}
        if _own_image(body) or "entrypoint" in body:
            node["command"] = argv  # its main program, run as compose runs it (no supervisor)
        else:
            node.setdefault("start", []).append(argv)  # socklab's image: its command is an app

    def _key_entrypoint(self, node: dict[str, Any], value: Any, path: DocPath, svc: str) -> None:
        argv = self._argv(value, path)
        if argv is not None:
            node["entrypoint"] = argv  # replaces the image's ENTRYPOINT, as in compose

    def _key_environment(self, node: dict[str, Any], value: Any, path: DocPath, svc: str) -> None:
        pairs: list[tuple[str, Any, DocPath]] = []
        if isinstance(value, dict):
            pairs = [(str(k), v, (*path, str(k))) for k, v in value.items()]
        elif isinstance(value, list):
            for i, item in enumerate(value):
                key, sep, val = str(item).partition("=")
                pairs.append((key, val if sep else None, (*path, i)))
        env = node.setdefault("env", {})
        for key, val, here in pairs:
            if not _ENV_NAME.fullmatch(key):
                self.warn(here, f"'{key}' is not a variable name socklab accepts: not imported")
            elif val is None:
                self.warn(here, f"{key} takes its value from the shell that runs compose: not imported")
            else:
                env[key] = self._text(str(val).lower() if isinstance(val, bool) else str(val), here)

    def _key_cap_add(self, node: dict[str, Any], value: Any, path: DocPath, svc: str) -> None:
        caps = []
        for i, cap in enumerate(value if isinstance(value, list) else []):
            name = str(cap).upper().removeprefix("CAP_")
            if name in ("ALL", "SYS_ADMIN"):
                self.warn((*path, i), f"{name}: socklab nodes are never privileged: not imported")
            else:
                caps.append(name)
        if caps:
            node["cap_add"] = caps

    def _key_ports(self, node: dict[str, Any], value: Any, path: DocPath, svc: str) -> None:
        ports: list[Any] = []
        loopback = False
        for i, item in enumerate(value if isinstance(value, list) else []):
            found = self._port(item, (*path, i))
            ports.extend(found)
            loopback |= any(isinstance(p, str) and p.count(":") < 2 for p in found)
        if ports:
            node["ports"] = ports
            for net in self._networks_of(svc):
                self.publishing.add(net)
        if loopback:
            self.warn(
                path,
                "published on 127.0.0.1 (socklab's default), where compose "
                "publishes on every interface: write 0.0.0.0:HOST:CONTAINER to keep that",
            )

    def _port(self, item: Any, path: DocPath) -> list[Any]:
        if isinstance(item, dict):
            target, published = item.get("target"), item.get("published")
            proto, ip = item.get("protocol", "tcp"), item.get("host_ip")
            for key in item:
                if key not in ("target", "published", "protocol", "host_ip", "mode"):
                    self.warn((*path, key), f"'{key}' {_NOT_MODELLED}")
            if not isinstance(target, int):
                self.warn(path, "a port without a numeric `target`: not imported")
                return []
            text = f"{published}:{target}" if published else str(target)
            if ip:
                text = f"{ip}:{text}" if published else text
            return [self._proto(f"{text}/{proto}", proto, path)] if proto else [text]
        match = _PORT.fullmatch(str(item))
        if match is None:
            self.warn(path, f"port {item!r} is not in docker's short form: not imported")
            return []
        ip, host, target, proto = match.group("ip", "host", "target", "proto")
        targets = _range(target)
        hosts = _range(host) if host else [None] * len(targets)
        if len(hosts) != len(targets) or len(targets) > 100:
            self.warn(
                path,
                f"port range {item!r} is not imported (ranges of up to 100 "
                "ports, the same length on both sides)",
            )
            return []
        out: list[Any] = []
        for h, t in zip(hosts, targets, strict=True):
            if ip and h is None:
                out.append({"container_port": t, "host_ip": ip.strip("[]"), "protocol": proto or "tcp"})
                continue
            text = ":".join(str(x) for x in (ip, h, t) if x is not None)
            out.append(self._proto(f"{text}/{proto}" if proto else text, proto, path))
        return [p for p in out if p is not None]

    def _proto(self, text: str, proto: str | None, path: DocPath) -> Any:
        if proto not in (None, "tcp", "udp"):
            self.warn(path, f"protocol {proto}: socklab publishes tcp and udp: not imported")
            return None
        return text

    def _key_deploy(self, node: dict[str, Any], value: Any, path: DocPath, svc: str) -> None:
        for key, sub in (value or {}).items() if isinstance(value, dict) else []:
            here = (*path, key)
            if key == "replicas" and isinstance(sub, int):
                if sub > 1:
                    node["replicas"] = sub
            elif key == "placement" and isinstance(sub, dict):
                self._placement(node, sub, here)
            elif key == "endpoint_mode" or _skipped(key):
                continue
            else:
                self.warn(here, f"'{key}' {_NOT_MODELLED}")

    def _placement(self, node: dict[str, Any], placement: dict[str, Any], path: DocPath) -> None:
        """``node.hostname == H`` is the node's ``host:``; other constraints are warnings."""
        for key, value in placement.items():
            if key != "constraints":
                self.warn((*path, key), f"'{key}' {_NOT_MODELLED}")
                continue
            for i, text in enumerate(value if isinstance(value, list) else []):
                found = re.fullmatch(r"\s*node\.hostname\s*==\s*(\S+)\s*", str(text))
                if found and _HOSTNAME.fullmatch(found.group(1)) and "host" not in node:
                    node["host"] = found.group(1)
                else:
                    self.warn(
                        (*path, key, i),
                        f"constraint {text!r} is not modelled (socklab "
                        "places a node by `host:`, a Swarm host's name): not imported",
                    )

    def _key_scale(self, node: dict[str, Any], value: Any, path: DocPath, svc: str) -> None:
        if isinstance(value, int) and value > 1:
            node["replicas"] = value

    def _key_init(self, node: dict[str, Any], value: Any, path: DocPath, svc: str) -> None:
        if value is not True:
            self.warn(path, "every socklab node runs docker-init as its first process")

    def _key_container_name(self, node: dict[str, Any], value: Any, path: DocPath, svc: str) -> None:
        self.warn(
            path,
            f"the container is named socklab-<lab>-{self.node_names[svc]}; '{value}' stays a name "
            "that resolves (an alias)"
            if _HOSTNAME.fullmatch(str(value))
            else f"'{value}' not kept",
        )

    def _key_domainname(self, node: dict[str, Any], value: Any, path: DocPath, svc: str) -> None:
        self.warn(path, f"not kept: every node's domain is '<lab>.test' ('{value}' dropped)")

    # -- helpers -------------------------------------------------------------------------

    def _networks_of(self, svc: str) -> list[str]:
        raw = (self.doc["services"].get(svc) or {}).get("networks")
        names = list(raw) if isinstance(raw, list | dict) else [DEFAULT_NETWORK]
        return [self.net_names.get(str(n), str(n)) for n in names]

    def _argv(self, value: Any, path: DocPath) -> list[str] | None:
        if isinstance(value, str):
            return (
                [self._text(value, path)]
                if not value.strip()
                else [self._text(a, path) for a in _split(value)]
            )
        if isinstance(value, list) and value:
            return [self._text(str(a), path) for a in value]
        return None

    def _text(self, value: str, path: DocPath) -> str:
        """A compose string as the container sees it: ``$$`` is one ``$``; variables are
        the shell's and are kept as written."""
        if _VARIABLE.search(value.replace("$$", "")):
            self.warn(
                path,
                f"{value!r}: compose substitutes variables from the shell; socklab keeps the text as written",
            )
        return value.replace("$$", "$")

    def _validate(self, topology: dict[str, Any]) -> None:
        """Raise the problems of the topology made, each placed at the compose key it came
        from (the closest one known)."""
        try:
            parse_topology(to_yaml(topology), f"<topology made from {self.src.filename}>")
        except TopologyError as exc:
            found = []
            for p in exc.problems:
                origin = max(
                    (k for k in self.origin if p.path == k or p.path.startswith((f"{k}.", f"{k}["))),
                    key=len,
                    default=None,
                )
                where = self.origin[origin] if origin else ()
                line = self.src.line(where) if where else None
                place = f"{self.src.filename}:{line}: " if line else ""
                found.append(
                    f"  {place}{format_path(where) or p.path}: {p.message}"
                    + (f" — {p.hint}" if p.hint else "")
                )
            lines = "\n".join(found)
            raise LabError(
                f"{self.src.filename}: the topology made from it is not valid:\n{lines}",
                "fix the compose file, or import it and edit the topology by hand",
            ) from None


def _start_order(services: dict[str, Any], imp: _Importer) -> list[str]:
    """Services in the file's order, each after the ones it ``depends_on``."""
    deps: dict[str, list[str]] = {}
    for svc, body in services.items():
        raw = body.get("depends_on") if isinstance(body, dict) else None
        names = list(raw) if isinstance(raw, list | dict) else []
        path: DocPath = ("services", svc, "depends_on")
        for dep in names:
            if dep not in services:
                imp.warn(path, f"'{dep}' is no service of this file")
            elif isinstance(raw, dict) and isinstance(raw[dep], dict):
                condition = raw[dep].get("condition", "service_started")
                if condition != "service_started":
                    imp.warn(
                        (*path, dep, "condition"),
                        f"{condition} is not modelled: the node starts once it is started",
                    )
        deps[str(svc)] = [str(d) for d in names if d in services]
    order: list[str] = []
    visiting: set[str] = set()

    def visit(svc: str) -> None:
        if svc in order or svc in visiting:
            return
        visiting.add(svc)
        for dep in deps[svc]:
            visit(dep)
        order.append(svc)

    for svc in services:
        visit(str(svc))
    return order


def _own_image(body: dict[str, Any]) -> bool:
    """A service of an image of its own (not socklab's node image): it runs its own program."""
    image = body.get("image")
    if image is None:
        return "build" in body
    return str(image).split(":", 1)[0] != NODE_IMAGE_REPO


def _skipped(key: Any) -> bool:
    return str(key).startswith("x-") or key in _TOP_KEYS_SKIPPED


def _network_or_none(text: Any) -> IPv4Network | IPv6Network | None:
    try:
        return ip_network(str(text), strict=False)
    except ValueError:
        return None


def _range(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()
