"""Running each kind of scenario step against a lab that is up."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from socklab.errors import LabError
from socklab.lab import Lab, LabNode
from socklab.observe.sockets import SocketRow
from socklab.scenario import expect
from socklab.scenario.results import NodeOutput, StepResult
from socklab.topology.model import (
    ExpectSocketsSpec,
    ParallelStep,
    RunSpec,
    StartSpec,
    Strict,
    WaitSpec,
    step_kind,
)

POLL = 0.2
StepHook = Callable[[StepResult], None]


class StepFailed(Exception):
    """A step's expectation was not met; the message says what was expected and seen."""


class StepRunner:
    """Runs steps in order; ``on_done`` sees every result (parallel children included)."""

    def __init__(self, lab: Lab, run_dir: Path, on_done: StepHook | None = None) -> None:
        self.lab = lab
        self.run_dir = run_dir
        self.on_done = on_done or (lambda _: None)

    def run(self, step: Strict, index: str) -> StepResult:
        kind = step_kind(step)
        spec = getattr(step, kind)
        result = StepResult(index=index, kind=kind, title=describe(step), status="passed",
                            started=time.time(), duration=0.0)
        t0 = time.monotonic()
        try:
            getattr(self, f"_{kind}")(spec, result)
        except StepFailed as exc:
            result.status, result.detail = "failed", str(exc)
        except LabError as exc:
            result.status, result.detail = "error", exc.message
        result.duration = time.monotonic() - t0
        self.on_done(result)
        return result

    def nodes(self, pattern: str) -> list[LabNode]:
        topo = self.lab.topology
        names = topo.match_nodes(pattern) if topo else [pattern]
        return [LabNode(self.lab, name) for name in names]

    def _on_nodes(self, pattern: str, fn: Callable[[LabNode], Any]) -> list[Any]:
        """Call ``fn`` on every node matching the pattern, in parallel, in node order."""
        targets = self.nodes(pattern)
        if len(targets) == 1:
            return [fn(targets[0])]
        with ThreadPoolExecutor(max_workers=min(len(targets), 16)) as pool:
            return list(pool.map(fn, targets))

    # -- the step kinds -----------------------------------------------------

    def _start(self, spec: StartSpec, result: StepResult) -> None:
        outs = self._on_nodes(spec.node, lambda n: _timed_exec(n, ["socklab-start", *spec.cmd]))
        result.outputs = outs
        failed = [o for o in outs if o.exit_code != 0]
        if failed:
            raise StepFailed("; ".join(f"{o.node}: could not start: {o.summary()}" for o in failed))

    def _run(self, spec: RunSpec, result: StepResult) -> None:
        argv = ["timeout", "-s", "KILL", f"{spec.timeout:g}", *spec.cmd]
        outs = self._on_nodes(spec.node, lambda n: _timed_exec(n, argv))
        result.outputs = outs
        problems = [f"{o.node}: {p}" for o in outs
                    for p in expect.check(spec.expect, o, spec.timeout)]
        problems += expect.check_duration(spec.expect, max((o.duration for o in outs), default=0))
        if problems:
            raise StepFailed("; ".join(problems))

    def _parallel(self, steps: list[Strict], result: StepResult) -> None:
        with ThreadPoolExecutor(max_workers=len(steps)) as pool:
            futures = [pool.submit(self.run, s, f"{result.index}.{i}")
                       for i, s in enumerate(steps, 1)]
            result.children = [f.result() for f in futures]
        bad = [c for c in result.children if not c.passed]
        if bad:
            raise StepFailed(f"{len(bad)} of {len(steps)} parallel steps failed: "
                             + ", ".join(f"step {c.index} ({c.kind})" for c in bad))

    def _wait(self, spec: WaitSpec, result: StepResult) -> None:
        want = spec.listening or spec.connected or ""
        match = _listening(want) if spec.listening else _connected(want, self._peer_ips(spec))
        deadline = time.monotonic() + spec.timeout
        pending = self.nodes(spec.node)
        while True:
            pending = [n for n in pending if not any(map(match, self.lab.sockets(n.name)))]
            if not pending:
                return
            if time.monotonic() >= deadline:
                what = "listening on" if spec.listening else "connected to"
                raise StepFailed(f"expected {', '.join(n.name for n in pending)} {what} {want} "
                                 f"within {spec.timeout:g} s, it was not")
            time.sleep(POLL)

    def _peer_ips(self, spec: WaitSpec) -> set[str]:
        host = (spec.connected or "").rsplit(":", 1)[0]
        node = self.nodes(spec.node)[0]
        found = node.exec(["getent", "ahosts", host]).stdout.split()
        return {host} | set(found[::3])

    def _expect_sockets(self, spec: ExpectSocketsSpec, result: StepResult) -> None:
        counts = {n.name: sum(map(_socket_filter(spec), self.lab.sockets(n.name)))
                  for n in self.nodes(spec.node)}
        total = sum(counts.values())
        result.detail = "found " + ", ".join(f"{k}: {v}" for k, v in counts.items())
        low, high = spec.min, spec.max
        if total < low or (high is not None and total > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise StepFailed(f"expected {bound} {_socket_words(spec)} on {spec.node}, "
                             f"found {total} ({result.detail.removeprefix('found ')})")

    def _fault(self, spec: Any, result: StepResult) -> None:
        raise LabError("fault steps are not available yet")

    def _sleep(self, seconds: float, result: StepResult) -> None:
        time.sleep(seconds)

    def _snapshot(self, what: str, result: StepResult) -> None:
        rows = self.lab.sockets()
        by_node: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_node.setdefault(row.node, []).append(asdict(row))
        folder = self.run_dir / "sockets" / f"{result.index.replace('.', '-')}-snapshot"
        folder.mkdir(parents=True, exist_ok=True)
        for node, node_rows in by_node.items():
            (folder / f"{node}.json").write_text(json.dumps(node_rows, indent=2))
        result.snapshot = by_node
        result.detail = f"{len(rows)} sockets on {len(by_node)} nodes"


def _timed_exec(node: LabNode, argv: list[str]) -> NodeOutput:
    t0 = time.monotonic()
    r = node.exec(argv)
    out = NodeOutput(node.name, r.exit_code, r.stdout, r.stderr, time.monotonic() - t0)
    out.errno = expect.reported_errno(r.stdout)
    return out


def _proto_matches(want: str, proto: str) -> bool:
    """``tcp`` matches IPv4 and IPv6 TCP sockets; ``tcp6`` only IPv6 ones."""
    return proto == want or (not want.endswith("6") and proto.rstrip("6") == want)


def _listening(want: str) -> Callable[[SocketRow], bool]:
    proto, port = want.split("/")

    def match(row: SocketRow) -> bool:
        listening = row.state == "LISTEN" if proto.startswith("tcp") else row.remote_port == 0
        return _proto_matches(proto, row.proto) and row.local_port == int(port) and listening

    return match


def _connected(want: str, peer_ips: set[str]) -> Callable[[SocketRow], bool]:
    port = int(want.rsplit(":", 1)[1])

    def match(row: SocketRow) -> bool:
        return (row.state == "ESTABLISHED" and row.remote_port == port
                and row.remote_ip.removeprefix("::ffff:") in peer_ips)

    return match


def _socket_filter(spec: ExpectSocketsSpec) -> Callable[[SocketRow], bool]:
    def match(row: SocketRow) -> bool:
        return all((
            spec.state is None or row.state == spec.state,
            spec.proto is None or _proto_matches(spec.proto, row.proto),
            spec.local_port is None or row.local_port == spec.local_port,
            spec.remote_port is None or row.remote_port == spec.remote_port,
        ))

    return match


def _socket_words(spec: ExpectSocketsSpec) -> str:
    parts = [spec.proto or "", spec.state or "", "sockets"]
    if spec.local_port is not None:
        parts.append(f"on local port {spec.local_port}")
    if spec.remote_port is not None:
        parts.append(f"to port {spec.remote_port}")
    return " ".join(p for p in parts if p)


def describe(step: Strict) -> str:
    """A one-line title for a step, as shown in progress lines and reports."""
    kind = step_kind(step)
    spec = getattr(step, kind)
    if isinstance(spec, StartSpec | RunSpec):
        return f"{kind} {spec.node}: {shlex.join(spec.cmd)}"
    if isinstance(spec, WaitSpec):
        cond = f"listening {spec.listening}" if spec.listening else f"connected {spec.connected}"
        return f"wait {spec.node} {cond}"
    if isinstance(spec, ExpectSocketsSpec):
        count = f"{spec.min}..{spec.max}" if spec.max is not None else f">= {spec.min}"
        return f"expect_sockets {spec.node}: {count} {_socket_words(spec)}"
    if isinstance(step, ParallelStep):
        return f"parallel ({len(step.parallel)} steps)"
    if kind == "sleep":
        return f"sleep {spec:g} s"
    if kind == "snapshot":
        return "snapshot sockets"
    return kind
