"""Checks of ``fault:`` steps against the topology and against the steps before them.

Names first: every node, network and partition side must exist (with a did-you-mean),
and a ``net`` must be one the node is on. Then the scenario is read in order (parallel
steps in the order they are listed) so that ``run`` never meets a step that cannot
work: healing what no step partitioned, resuming a node that is not paused, pausing
twice, connecting a node that was never disconnected, a fault on a killed node.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from socklab.topology.errors import DocPath, Problem, SourceMap, did_you_mean, listing
from socklab.topology.faults import Fault, fault_kind
from socklab.topology.model import Topology

NO_CUT = "leave no node to cut: a node on both sides is cut from neither"
NO_CUT_HINT = "partition two sides that each have nodes of their own (e.g. [client, server])"
_NODE_REF = re.compile(r"^[a-z0-9*?\[\]!-]+$")


@dataclass
class _State:
    """What the steps so far have done to the lab."""

    partitioned: set[frozenset[str]] = field(default_factory=set)
    paused: set[str] = field(default_factory=set)
    killed: set[str] = field(default_factory=set)
    disconnected: set[tuple[str, str]] = field(default_factory=set)


class _Checker:
    def __init__(self, source: SourceMap, topo: Topology) -> None:
        self.source = source
        self.topo = topo
        self.instances = [i for i, _, _ in topo.instances()]
        self.networks = list(topo.networks)
        self.on: dict[str, set[str]] = {i: set(n.networks) for i, _, n in topo.instances()}

    # -- names -----------------------------------------------------------------

    def nodes(self, ref: str, path: DocPath) -> tuple[list[str], list[Problem]]:
        found = self.topo.match_nodes(ref)
        if found:
            return found, []
        choices = [*self.topo.nodes, *self.instances]
        choices += [f"{n}-*" for n, node in self.topo.nodes.items() if node.replicas is not None]
        hint = did_you_mean(ref, choices) or f"nodes are: {listing(self.instances)}"
        return [], [self.source.problem(path, f"no node matches {ref!r}", hint)]

    def side(self, ref: str, path: DocPath) -> tuple[list[str], list[Problem]]:
        """A partition side: nodes first, else every node on the network of that name."""
        found = self.topo.match_nodes(ref) if _NODE_REF.match(ref) else []
        if found:
            return found, []
        if ref in self.topo.networks:
            return [i for i in self.instances if ref in self.on[i]], []
        choices = [*self.topo.nodes, *self.instances, *self.networks]
        hint = did_you_mean(ref, choices) or (
            f"nodes are: {listing(self.instances)}; networks: {listing(self.networks)}"
        )
        return [], [self.source.problem(path, f"no node or network matches {ref!r}", hint)]

    def net(self, net: str | None, nodes: list[str], path: DocPath) -> list[Problem]:
        if net is None:
            return []
        if net not in self.topo.networks:
            hint = did_you_mean(net, self.networks) or f"networks: {listing(self.networks)}"
            return [self.source.problem(path, f"unknown network {net!r}", hint)]
        off = [n for n in nodes if net not in self.on[n]]
        if off:
            return [
                self.source.problem(
                    path,
                    f"{listing(off)} {'is' if len(off) == 1 else 'are'} not on network {net!r}",
                    f"{off[0]} is on: {listing(sorted(self.on[off[0]]))}",
                )
            ]
        return []

    # -- one fault ---------------------------------------------------------------

    def check(self, fault: Any, path: DocPath, state: _State) -> Iterator[Problem]:
        kind = fault_kind(fault)
        spec = getattr(fault, kind)
        where = (*path, kind)
        if kind == "partition":
            yield from self._partition(spec, where, state)
        elif kind == "heal":
            yield from self._heal(spec, where, state)
        elif kind in ("kill", "pause", "resume", "restart"):
            nodes, problems = self.nodes(spec, where)
            yield from problems
            yield from self._lifecycle(kind, nodes, where, state)
        else:
            ref = spec if isinstance(spec, str) else spec.node
            nodes, problems = self.nodes(ref, where if isinstance(spec, str) else (*where, "node"))
            yield from problems
            yield from self.net(getattr(spec, "net", None), nodes, (*where, "net"))
            if not nodes or problems:
                return
            yield from self._not_killed(nodes, where, state)
            if kind in ("disconnect", "connect"):
                yield from self._link(kind, nodes, spec.net, where, state)

    def _partition(self, spec: tuple[str, str], where: DocPath, state: _State) -> Iterator[Problem]:
        a, pa = self.side(spec[0], (*where, 0))
        b, pb = self.side(spec[1], (*where, 1))
        yield from pa
        yield from pb
        pairs = _pairs(a, b)
        if a and b and not pairs:
            yield self.source.problem(where, f"{spec[0]!r} and {spec[1]!r} {NO_CUT}", NO_CUT_HINT)
        state.partitioned |= pairs

    def _heal(self, spec: Any, where: DocPath, state: _State) -> Iterator[Problem]:
        if spec == "all":
            if not state.partitioned:
                yield self.source.problem(
                    where,
                    "nothing is partitioned at this step",
                    "add a `fault: {partition: [A, B]}` step before it",
                )
            state.partitioned.clear()
            return
        a, pa = self.side(spec[0], (*where, 0))
        b, pb = self.side(spec[1], (*where, 1))
        yield from pa
        yield from pb
        if pa or pb:
            return
        pairs = _pairs(a, b) & state.partitioned
        if not pairs:
            yield self.source.problem(
                where,
                f"{spec[0]!r} and {spec[1]!r} are not partitioned at this step",
                f"partition them first (`fault: {{partition: [{spec[0]}, {spec[1]}]}}`), or remove this step",
            )
        state.partitioned -= pairs

    def _lifecycle(self, kind: str, nodes: list[str], where: DocPath, state: _State) -> Iterator[Problem]:
        for n in nodes:
            if kind == "restart":
                state.killed.discard(n)
                state.paused.discard(n)
            elif n in state.killed:
                yield self.source.problem(
                    where,
                    f"node {n!r} is killed at this step",
                    f"bring it back first: `fault: {{restart: {n}}}`",
                )
                return
            elif kind == "resume" and n not in state.paused:
                yield self.source.problem(
                    where,
                    f"node {n!r} is not paused at this step",
                    f"pause it first: `fault: {{pause: {n}}}`",
                )
                return
            elif kind == "pause" and n in state.paused:
                yield self.source.problem(
                    where,
                    f"node {n!r} is already paused at this step",
                    "resume it first, or remove this step",
                )
                return
            elif kind == "kill":
                state.paused.discard(n)
                state.killed.add(n)
            elif kind == "pause":
                state.paused.add(n)
            else:
                state.paused.discard(n)

    def _not_killed(self, nodes: list[str], where: DocPath, state: _State) -> Iterator[Problem]:
        dead = [n for n in nodes if n in state.killed]
        if dead:
            yield self.source.problem(
                where,
                f"node {dead[0]!r} is killed at this step",
                f"bring it back first: `fault: {{restart: {dead[0]}}}`",
            )

    def _link(
        self, kind: str, nodes: list[str], net: str, where: DocPath, state: _State
    ) -> Iterator[Problem]:
        for n in nodes:
            if net not in self.on[n]:
                continue  # reported by net()
            key = (n, net)
            if kind == "connect" and key not in state.disconnected:
                yield self.source.problem(
                    where,
                    f"node {n!r} is connected to {net!r} at this step",
                    f"disconnect it first: `fault: {{disconnect: {{node: {n}, net: {net}}}}}`",
                )
                return
            if kind == "disconnect" and key in state.disconnected:
                yield self.source.problem(
                    where, f"node {n!r} is already disconnected from {net!r} at this step", "connect it first"
                )
                return
            (state.disconnected.add if kind == "disconnect" else state.disconnected.discard)(key)


def _pairs(a: list[str], b: list[str]) -> set[frozenset[str]]:
    """The node pairs a partition of sides ``a`` and ``b`` cuts (a node on both sides is
    cut from neither)."""
    both = set(a) & set(b)
    return {frozenset((x, y)) for x in a for y in b if x != y and x not in both and y not in both}


def problems(source: SourceMap, topo: Topology) -> list[Problem]:
    """The fault steps' problems, every scenario read in order. ``topo`` holds the nodes
    (with their networks) and networks of the parts of the document that parsed."""
    adapter: TypeAdapter[Any] = TypeAdapter(Fault)
    checker = _Checker(source, topo)
    out: list[Problem] = []
    scenarios = source.data.get("scenarios")
    for name, steps in scenarios.items() if isinstance(scenarios, dict) else []:
        state = _State()
        for spec, path in _fault_specs(steps, ("scenarios", name)):
            try:
                fault = adapter.validate_python(spec)
            except ValidationError:
                continue  # pydantic reports it
            out += checker.check(fault, path, state)
    return out


def _fault_specs(steps: Any, path: DocPath) -> Iterator[tuple[Any, DocPath]]:
    if not isinstance(steps, list):
        return
    for i, step in enumerate(steps):
        if not (isinstance(step, dict) and len(step) == 1):
            continue
        kind, spec = next(iter(step.items()))
        if kind == "parallel":
            yield from _fault_specs(spec, (*path, i, "parallel"))
        elif kind == "fault":
            yield spec, (*path, i, "fault")
