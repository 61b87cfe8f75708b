"""Faults at run time: ``socklab fault LAB ACTION`` and ``lab.fault.ACTION(...)``.

Every action checks all of its input (names, values, node states) before it changes
anything, applies to every node it names at once, and undoes what it did when one
node fails, so that nothing is half applied. Network faults are applied by
:class:`~socklab.orchestrator.netcontrol.NetControl` helpers in the nodes' network
namespaces; kill, pause, resume, restart, disconnect and connect are engine calls.
What is in force is read back from the nodes' namespaces (``list``), never remembered.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from socklab.errors import LabError
from socklab.orchestrator import deploy, image
from socklab.orchestrator.engine_api import ContainerInfo, Engine
from socklab.orchestrator.netcontrol import NetControl, setup_of, setup_ops
from socklab.topology import faults as steps
from socklab.topology.errors import did_you_mean, listing
from socklab.topology.fault_checks import NO_CUT, NO_CUT_HINT
from socklab.topology.impair import (
    Impairment,
    format_ms,
    format_rate,
    parse_ms,
    parse_percent,
    parse_rate,
)
from socklab.topology.plan import LABEL_BASE, LABEL_NET, LABEL_PROGRAM, Endpoint, network_name

WORKERS = 16
BACKEND_WORDS = {
    "nfqueue": "the NFQUEUE delayer",
    "netem": "netem",
    "tbf": "tbf",
    "htb": "htb",
    "iptables statistic": "iptables statistic (dropped by the NFQUEUE delayer)",
}
LIVE = ("running", "paused")
T = TypeVar("T")


@dataclass(frozen=True)
class FaultResult:
    """What one action did: a line for people, the details for ``--json``."""

    action: str
    nodes: tuple[str, ...]
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "nodes": list(self.nodes), "message": self.message, **self.details}


@dataclass(frozen=True)
class NodeFaults:
    """What is in force on one node (a row of ``fault LAB list``)."""

    node: str
    state: str
    partitioned_from: tuple[str, ...] = ()
    impair: dict[str, dict[str, Any]] = field(default_factory=dict)
    disconnected: tuple[str, ...] = ()
    delayer_missing: bool = False
    """NFQUEUE rules wait for a delayer that is not there: their loss or delay is not done"""

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "state": self.state,
            "partitioned_from": list(self.partitioned_from),
            "impair": self.impair,
            "disconnected": list(self.disconnected),
            "delayer_missing": self.delayer_missing,
        }

    def lines(self) -> list[str]:
        out = []
        if self.state != "running":
            out.append(
                {"paused": "paused (frozen)", "exited": "killed (stopped)"}.get(self.state, self.state)
            )
        if self.partitioned_from:
            out.append(f"partitioned from {', '.join(self.partitioned_from)}")
        for net, settings in self.impair.items():
            imp = Impairment.model_validate(
                {k: v for k, v in settings.items() if k in Impairment.model_fields}
            )
            text = imp.describe()
            if settings.get("proto") and imp.loss is not None:
                text = text.replace(f"loss {imp.loss:g}%", f"loss {imp.loss:g}% ({settings['proto']} only)")
            out.append(f"{net}: {text} [{settings.get('src', 'runtime')}]")
        out += [f"disconnected from {net}" for net in self.disconnected]
        if self.delayer_missing:
            out.append("NOT IN FORCE: its delayer is not running (clear, then set the loss or delay again)")
        return out


def _value(parse: Callable[[Any], T], value: Any) -> T:
    """A value parsed as the topology parses it; a bad one is exit 2 with its hint."""
    try:
        return parse(value)
    except ValueError as exc:
        message, _, hint = str(exc).partition(" — ")
        raise LabError(message, hint or None) from None


def up_hint(source: object | None) -> str:
    """How to bring a lab up: with its file when it is known."""
    return f"start it with `socklab up {source}`" if source else "start it with `socklab up` and its file"


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


class Faults:
    """The fault actions of one lab that is up."""

    def __init__(self, engine: Engine, lab: str, source: str | None = None) -> None:
        self.engine = engine
        self.lab = lab
        self.source = source
        """the lab's topology file, named in the hint when the lab is not up"""
        self._ctl: NetControl | None = None

    @property
    def ctl(self) -> NetControl:
        if self._ctl is None:
            self._ctl = NetControl(self.engine, self.lab, image.ensure(self.engine))
        return self._ctl

    # -- the lab as it is now ----------------------------------------------------

    def _nodes_now(self) -> dict[str, ContainerInfo]:
        found = {c.node: c for c in deploy.nodes_of(self.engine, self.lab)}
        if not found:
            raise LabError(f"lab '{self.lab}' is not up", up_hint(self.source))
        if not any(LABEL_NET in c.labels for c in found.values()):
            raise LabError(
                f"lab '{self.lab}' has no network setup socklab can fault",
                "faults work on labs brought up by `socklab up` on the local engine "
                "(not a Swarm stack, nor a compose project)",
            )
        return dict(sorted(found.items(), key=lambda kv: _natural(kv[0])))

    def _match(self, ref: str, nodes: dict[str, ContainerInfo]) -> list[str]:
        if ref in nodes:
            return [ref]
        base = [n for n, c in nodes.items() if c.labels.get(LABEL_BASE) == ref]
        return base or [n for n in nodes if fnmatch.fnmatchcase(n, ref)]

    def _resolve(self, ref: str, nodes: dict[str, ContainerInfo]) -> list[str]:
        """A node, a replica, a replicated node's name or a glob -> instance names."""
        found = self._match(ref, nodes)
        if not found:
            bases = {c.labels.get(LABEL_BASE, n) for n, c in nodes.items()}
            raise LabError(
                f"no node matches '{ref}' in lab '{self.lab}'",
                did_you_mean(ref, [*nodes, *bases]) or f"nodes: {listing(list(nodes))}",
            )
        return found

    @staticmethod
    def _networks(nodes: dict[str, ContainerInfo]) -> list[str]:
        return list(dict.fromkeys(net for c in nodes.values() for net in setup_of(c).links))

    def _side(self, ref: str, nodes: dict[str, ContainerInfo]) -> list[str]:
        """A partition side: nodes first, else every node on the network of that name."""
        found = self._match(ref, nodes)
        if found:
            return found
        if ref in self._networks(nodes):
            return [n for n, c in nodes.items() if ref in setup_of(c).links]
        raise LabError(
            f"no node or network matches '{ref}' in lab '{self.lab}'",
            did_you_mean(ref, [*nodes, *self._networks(nodes)])
            or f"nodes: {listing(list(nodes))}; networks: {listing(self._networks(nodes))}",
        )

    def _live(
        self, names: Iterable[str], nodes: dict[str, ContainerInfo], states: tuple[str, ...] = LIVE
    ) -> None:
        for n in names:
            if nodes[n].state not in states:
                hint = (
                    f"bring it back: `socklab fault {self.lab} restart {n}`"
                    if nodes[n].state not in LIVE
                    else f"resume it first: `socklab fault {self.lab} resume {n}`"
                )
                raise LabError(f"node '{n}' is {_state_word(nodes[n].state)}", hint)

    def _on_net(
        self, names: list[str], net: str | None, nodes: dict[str, ContainerInfo]
    ) -> dict[str, list[str]]:
        """Each node's networks an action covers: ``net``, or all of its own."""
        out = {}
        for n in names:
            links = list(setup_of(nodes[n]).links)
            if net is not None and net not in links:
                known = self._networks(nodes)
                if net not in known:
                    raise LabError(
                        f"unknown network '{net}' in lab '{self.lab}'",
                        did_you_mean(net, known) or f"networks: {listing(known)}",
                    )
                raise LabError(f"node '{n}' is not on network '{net}'", f"{n} is on: {listing(links)}")
            out[n] = [net] if net is not None else links
        return out

    @staticmethod
    def _addresses(node: ContainerInfo) -> list[str]:
        return [
            str(a) for link in setup_of(node).links.values() for a in (link.ip, link.ipv6) if a is not None
        ]

    def _parallel(self, names: list[str], call: Callable[[str], T]) -> dict[str, T]:
        """``call`` on every node at once; every outcome kept, the first failure raised
        after all are done (with ``_failed`` set to what did succeed)."""
        with ThreadPoolExecutor(max_workers=min(WORKERS, max(1, len(names)))) as pool:
            futures = {n: pool.submit(call, n) for n in names}
        done = {n: f.result() for n, f in futures.items() if f.exception() is None}
        failed = [(n, f.exception()) for n, f in futures.items() if f.exception() is not None]
        if failed:
            raise _Partial(done, failed)
        return done

    def _apply_all(
        self, ops: dict[str, list[dict[str, Any]]], nodes: dict[str, ContainerInfo]
    ) -> dict[str, dict[str, Any]]:
        """netctl ops on every node at once; if one fails, the others are put back."""
        try:
            return self._parallel(list(ops), lambda n: self.ctl.apply(nodes[n], ops[n]))
        except _Partial as partial:
            for n, result in partial.done.items():
                with contextlib.suppress(LabError):
                    self.ctl.apply(nodes[n], [{"op": "restore", "state": result["before"]}])
            raise partial.first() from None

    # -- partitions ----------------------------------------------------------------

    def partition(self, a: str, b: str) -> FaultResult:
        """Drop all traffic between sides A and B, both ways (a node, a replica, a
        replicated node's name, a glob, or a network name: every node on it)."""
        nodes = self._nodes_now()
        side_a, side_b = _apart(self._side(a, nodes), self._side(b, nodes))
        if not side_a or not side_b:
            raise LabError(f"'{a}' and '{b}' {NO_CUT}", NO_CUT_HINT)
        self._live([*side_a, *side_b], nodes)
        ops = {
            x: [
                {"op": "partition", "peer": p, "addresses": self._addresses(nodes[p])}
                for p in (side_b if x in side_a else side_a)
            ]
            for x in [*side_a, *side_b]
        }
        self._apply_all(ops, nodes)
        return FaultResult(
            "partition",
            tuple(ops),
            f"partitioned {', '.join(side_a)} | {', '.join(side_b)}: their traffic is dropped both ways",
            {"a": side_a, "b": side_b},
        )

    def heal(self, a: str | None = None, b: str | None = None) -> FaultResult:
        """End the partition between A and B, or (no arguments) every partition."""
        nodes = self._nodes_now()
        if (a is None) != (b is None):
            raise LabError(
                "heal takes two sides, or none to heal every partition",
                f"e.g. `socklab fault {self.lab} heal client server`",
            )
        if a is None or b is None:
            live = [n for n, c in nodes.items() if c.state in LIVE]
            ops = {n: [{"op": "heal", "all": True}] for n in live}
        else:
            side_a, side_b = _apart(self._side(a, nodes), self._side(b, nodes))
            targets = [x for x in [*side_a, *side_b] if nodes[x].state in LIVE]
            ops = {x: [{"op": "heal", "peers": side_b if x in side_a else side_a}] for x in targets}
        results = self._apply_all(ops, nodes)
        healed = sorted({tuple(sorted((n, p))) for n, r in results.items() for p in r["done"]["healed"]})
        if not healed:
            what = f"'{a}' and '{b}' are not partitioned" if a else "nothing is partitioned"
            raise LabError(
                f"{what} in lab '{self.lab}'", f"`socklab fault {self.lab} list` shows what is in force"
            )
        pairs = ", ".join(f"{x} | {y}" for x, y in healed)
        touched = tuple(n for n in nodes if any(n in pair for pair in healed))
        return FaultResult("heal", touched, f"healed {pairs}", {"healed": [list(p) for p in healed]})

    # -- impairments ---------------------------------------------------------------

    def loss(
        self, node: str, pct: float | str, net: str | None = None, proto: str | None = None
    ) -> FaultResult:
        """Drop PCT percent of what NODE sends (on NET only, of PROTO only)."""
        if proto not in (None, "udp", "tcp"):
            raise LabError(f"unknown protocol '{proto}'", "use udp or tcp")
        value = _value(parse_percent, pct)
        return self._impair(
            "loss",
            node,
            net,
            {"loss": value, "proto": proto},
            f"loss {value:g}%" + (f" ({proto} only)" if proto else ""),
        )

    def delay(
        self, node: str, ms: float | str, jitter: float | str | None = None, net: str | None = None
    ) -> FaultResult:
        """Delay what NODE sends by MS milliseconds, ± JITTER."""
        value = _value(parse_ms, ms)
        spread = _value(lambda v: parse_ms(v, "jitter"), jitter) if jitter is not None else None
        words = f"delay {format_ms(value)}" + (f" ± {format_ms(spread)}" if spread else "")
        return self._impair("delay", node, net, {"delay": value, "jitter": spread}, words)

    def rate(self, node: str, rate: str | int, net: str | None = None) -> FaultResult:
        """Limit what NODE sends to RATE (``1mbit``, ``500kbit``)."""
        value = _value(parse_rate, rate)
        return self._impair("rate", node, net, {"rate": value}, f"rate {format_rate(value)}")

    def corrupt(self, node: str, pct: float | str, net: str | None = None) -> FaultResult:
        """Corrupt PCT percent of what NODE sends (needs the kernel's netem)."""
        value = _value(lambda v: parse_percent(v, "corrupt"), pct)
        return self._impair("corrupt", node, net, {"corrupt": value}, f"corrupt {value:g}%")

    def duplicate(self, node: str, pct: float | str, net: str | None = None) -> FaultResult:
        """Duplicate PCT percent of what NODE sends (needs the kernel's netem)."""
        value = _value(lambda v: parse_percent(v, "duplicate"), pct)
        return self._impair("duplicate", node, net, {"duplicate": value}, f"duplicate {value:g}%")

    def _impair(
        self, action: str, node: str, net: str | None, settings: dict[str, Any], words: str
    ) -> FaultResult:
        nodes = self._nodes_now()
        names = self._resolve(node, nodes)
        nets = self._on_net(names, net, nodes)
        self._live(names, nodes)
        ops = {n: [{"op": "impair", "nets": nets[n], "set": settings}] for n in names}
        results = self._apply_all(ops, nodes)
        how = sorted(
            {
                BACKEND_WORDS.get(b, b)
                for n, r in results.items()
                for x in nets[n]
                for k, b in r["done"]["backends"].get(x, {}).items()
                if k == action
            }
        )
        idle = sorted({x for n, r in results.items() for x in nets[n] if x not in r["ifaces"]})
        where = f"on {net}" if net else "on every network"
        message = f"{words} on {', '.join(names)} ({where}; what it sends) via {', '.join(how)}"
        if idle:
            message += f"; {', '.join(idle)}: disconnected, in force once connected again"
        return FaultResult(
            action,
            tuple(names),
            message,
            {"backends": {n: r["done"]["backends"] for n, r in results.items()}},
        )

    def clear(self, node: str, net: str | None = None) -> FaultResult:
        """Remove NODE's impairments (the topology's too), on NET only if given."""
        nodes = self._nodes_now()
        names = self._resolve(node, nodes)
        nets = self._on_net(names, net, nodes)
        self._live(names, nodes)
        results = self._apply_all({n: [{"op": "clear", "nets": nets[n]}] for n in names}, nodes)
        for n, r in results.items():
            if not any("delay" in s or "loss" in s for s in r["state"]["impair"].values()):
                self.ctl.remove_delayers(nodes[n])
        cleared = {n: r["done"]["cleared"] for n, r in results.items() if r["done"]["cleared"]}
        message = (
            "cleared " + "; ".join(f"{n}: {', '.join(c)}" for n, c in cleared.items())
            if cleared
            else f"nothing to clear: {', '.join(names)} had no impairment"
        )
        return FaultResult("clear", tuple(names), message, {"cleared": cleared})

    # -- the nodes' lives -----------------------------------------------------------

    def kill(self, node: str) -> FaultResult:
        """Stop NODE's container at once (SIGKILL): a crashed host; peers get no answer."""
        nodes = self._nodes_now()
        names = self._resolve(node, nodes)
        self._live(names, nodes)
        self._each(names, lambda n: self._kill_one(nodes[n]))
        return FaultResult(
            "kill",
            tuple(names),
            f"killed {', '.join(names)}: the container stopped at once; its peers get no answer (timeouts)",
        )

    def _kill_one(self, node: ContainerInfo) -> None:
        self.ctl.remove_delayers(node)
        self.engine.kill(node.id)

    def pause(self, node: str) -> FaultResult:
        """Freeze NODE's processes: a hung host (its kernel still answers: connects succeed,
        replies never come)."""
        nodes = self._nodes_now()
        names = self._resolve(node, nodes)
        self._live(names, nodes, ("running",))
        self._each(names, lambda n: self.engine.pause(nodes[n].id))
        return FaultResult(
            "pause",
            tuple(names),
            f"paused {', '.join(names)}: its processes are frozen (connects succeed, replies never come)",
        )

    def resume(self, node: str) -> FaultResult:
        """Unfreeze a paused NODE."""
        nodes = self._nodes_now()
        names = self._resolve(node, nodes)
        for n in names:
            if nodes[n].state != "paused":
                raise LabError(
                    f"node '{n}' is not paused (it is {nodes[n].state})",
                    f"pause it first: `socklab fault {self.lab} pause {n}`",
                )
        self._each(names, lambda n: self.engine.unpause(nodes[n].id))
        return FaultResult("resume", tuple(names), f"resumed {', '.join(names)}")

    def restart(self, node: str) -> FaultResult:
        """Restart NODE: its start commands run again; returns when its servers listen.
        Its routes, impairments and partitions are put back before they start."""
        nodes = self._nodes_now()
        names = self._resolve(node, nodes)
        dead = [n for n in names if nodes[n].state not in LIVE]
        peers_state = self._partitions_towards(dead, nodes) if dead else {}
        self._each(names, lambda n: self._restart_one(nodes[n], nodes, peers_state.get(n)))
        own = all(nodes[n].labels.get(LABEL_PROGRAM) == "own" for n in names)
        what = "its program runs again" if own else "its start commands run again and its servers listen"
        return FaultResult("restart", tuple(names), f"restarted {', '.join(names)}: {what}")

    def _partitions_towards(
        self, dead: list[str], nodes: dict[str, ContainerInfo]
    ) -> dict[str, dict[str, Any]]:
        """The partitions of nodes that were killed (their namespaces are gone), read
        from their peers, which still drop what comes from them."""
        live = [n for n, c in nodes.items() if c.state in LIVE]
        shown = self._parallel(live, lambda n: self.ctl.show(nodes[n])) if live else {}
        out: dict[str, dict[str, Any]] = {n: {"impair": {}, "partition": {}} for n in dead}
        for peer, answer in shown.items():
            for gone in answer["state"]["partition"]:
                if gone in out:
                    out[gone]["partition"][peer] = self._addresses(nodes[peer])
        return out

    def _restart_one(
        self, node: ContainerInfo, nodes: dict[str, ContainerInfo], dead_state: dict[str, Any] | None
    ) -> None:
        setup = setup_of(node)
        if node.state in LIVE:
            saved = self.ctl.show(node)["state"]
            ops = [*setup_ops(setup, impair=False), {"op": "restore", "state": saved}]
        else:
            saved = dead_state or {"impair": {}, "partition": {}}
            ops = [
                *setup_ops(setup, impair=True),
                *({"op": "partition", "peer": p, "addresses": a} for p, a in saved["partition"].items()),
            ]
        if node.state == "paused":
            self.engine.unpause(node.id)
        supervised = node.labels.get(LABEL_PROGRAM) != "own"  # else: no hold, no ready event
        seen = deploy.ready_count(self.engine, node.id)
        self.ctl.remove_delayers(node)
        self.engine.stop(node.id)
        self.engine.start(node.id)
        fresh = self.engine.container(node.id)
        if setup.needed or saved["impair"] or saved["partition"]:
            self.ctl.apply(fresh, ops)
        if supervised and setup.needed:
            self.ctl.release(fresh)
        if supervised:
            deploy.wait_ready(self.engine, node.id, seen=seen)

    def disconnect(self, node: str, net: str) -> FaultResult:
        """Unplug NODE from network NET (its address stays its own for `connect`)."""
        nodes = self._nodes_now()
        names = self._resolve(node, nodes)
        self._on_net(names, net, nodes)
        docker_net = network_name(self.lab, net)
        for n in names:
            if docker_net not in nodes[n].networks:
                raise LabError(
                    f"node '{n}' is not connected to '{net}'",
                    f"connect it: `socklab fault {self.lab} connect {n} {net}`",
                )
        self._each(names, lambda n: self.engine.disconnect(nodes[n].id, docker_net))
        return FaultResult("disconnect", tuple(names), f"disconnected {', '.join(names)} from {net}")

    def connect(self, node: str, net: str) -> FaultResult:
        """Plug NODE back into NET with its address and aliases (and its routes and
        impairments on it)."""
        nodes = self._nodes_now()
        names = self._resolve(node, nodes)
        self._on_net(names, net, nodes)
        docker_net = network_name(self.lab, net)
        for n in names:
            if docker_net in nodes[n].networks:
                raise LabError(
                    f"node '{n}' is already connected to '{net}'",
                    f"disconnect it first: `socklab fault {self.lab} disconnect {n} {net}`",
                )
        self._each(names, lambda n: self._connect_one(nodes[n], net, docker_net))
        where = ", ".join(f"{n} {setup_of(nodes[n]).links[net].ip}" for n in names)
        return FaultResult("connect", tuple(names), f"connected {where} to {net} again")

    def _connect_one(self, node: ContainerInfo, net: str, docker_net: str) -> None:
        setup = setup_of(node)
        link = setup.links[net]
        self.engine.connect(node.id, Endpoint(net, docker_net, link.ip, link.ipv6, link.aliases))
        if node.state in LIVE:  # its routes, and the impairments in force, on the new link
            self.ctl.apply(self.engine.container(node.id), setup_ops(setup, impair=False))

    def _each(self, names: list[str], call: Callable[[str], Any]) -> None:
        try:
            self._parallel(names, call)
        except _Partial as partial:
            raise partial.first() from None

    # -- what is in force --------------------------------------------------------------

    def list(self) -> list[NodeFaults]:
        """What is in force on every node: state, partitions, impairments, disconnections."""
        nodes = self._nodes_now()
        live = [n for n, c in nodes.items() if c.state in LIVE]
        shown = self._parallel(live, lambda n: self.ctl.show(nodes[n])) if live else {}
        out = []
        for n, c in nodes.items():
            state = shown.get(n, {}).get("state", {"impair": {}, "partition": {}})
            planned = setup_of(c).links
            out.append(
                NodeFaults(
                    node=n,
                    state=c.state,
                    partitioned_from=tuple(sorted(state["partition"])),
                    impair={
                        net: {k: v for k, v in s.items() if k not in ("queue", "lqueue")}
                        for net, s in state["impair"].items()
                    },
                    disconnected=tuple(
                        net
                        for net in planned
                        if c.state in LIVE and network_name(self.lab, net) not in c.networks
                    ),
                    delayer_missing=bool(shown.get(n, {}).get("unserved")),
                )
            )
        return out

    # -- scenario steps ------------------------------------------------------------------

    def apply(self, fault: Any) -> FaultResult:
        """Run one ``fault:`` step (a model of :mod:`socklab.topology.faults`)."""
        kind = steps.fault_kind(fault)
        spec = getattr(fault, kind)
        if kind == "partition":
            return self.partition(*spec)
        if kind == "heal":
            return self.heal() if spec == "all" else self.heal(*spec)
        if kind in ("kill", "pause", "resume", "restart"):
            return getattr(self, kind)(spec)  # type: ignore[no-any-return]
        if kind == "loss":
            return self.loss(spec.node, spec.pct, spec.net, spec.proto)
        if kind == "delay":
            return self.delay(spec.node, spec.ms, spec.jitter, spec.net)
        if kind == "rate":
            return self.rate(spec.node, spec.rate, spec.net)
        if kind in ("corrupt", "duplicate"):
            return getattr(self, kind)(spec.node, spec.pct, spec.net)  # type: ignore[no-any-return]
        if kind == "clear":
            return self.clear(spec) if isinstance(spec, str) else self.clear(spec.node, spec.net)
        return getattr(self, kind)(spec.node, spec.net)  # type: ignore[no-any-return]


class _Partial(Exception):
    """Some nodes of an action failed: what succeeded, and the failures."""

    def __init__(self, done: dict[str, Any], failed: list[tuple[str, BaseException | None]]):
        super().__init__("partial")
        self.done = done
        self.failed = failed

    def first(self) -> BaseException:
        name, exc = self.failed[0]
        if isinstance(exc, LabError):
            return LabError(
                exc.message if exc.message.startswith(f"{name}:") else f"{name}: {exc.message}",
                exc.hint,
                exit_code=exc.exit_code,
            )
        return exc or LabError(f"{name}: failed")


def _apart(a: list[str], b: list[str]) -> tuple[list[str], list[str]]:
    """Partition sides without the nodes on both (a node is never cut from itself)."""
    both = set(a) & set(b)
    return [x for x in a if x not in both], [x for x in b if x not in both]


def _state_word(state: str) -> str:
    return {"exited": "not running (killed or stopped)", "paused": "paused", "created": "not started"}.get(
        state, state
    )
