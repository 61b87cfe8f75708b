"""Running each kind of scenario step against a lab that is up."""

from __future__ import annotations

import contextlib
import json
import shlex
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from socklab.errors import LabError
from socklab.lab import Lab, LabNode
from socklab.observe import netstat
from socklab.observe.capture import READY_TIMEOUT, CaptureResult, CaptureTarget, capture
from socklab.observe.pcap import TcpConversation
from socklab.observe.sockets import SocketRow, listening, proto_matches
from socklab.observe.timeline import Event, merge, output_events
from socklab.scenario import expect
from socklab.scenario.results import NodeOutput, StepResult
from socklab.topology.faults import fault_kind
from socklab.topology.impair import format_ms, format_rate
from socklab.topology.model import (
    CaptureSpec,
    CompareSocketsSpec,
    ExpectCaptureSpec,
    ExpectRatioSpec,
    ExpectSocketsSpec,
    ExpectTimelineSpec,
    ParallelStep,
    RunSpec,
    StartSpec,
    Strict,
    WaitSpec,
    step_kind,
)

POLL = 0.2
StepHook = Callable[[StepResult], None]


def _in_parallel(fn: Callable[[Any], Any], items: list[Any], workers: int) -> list[Any]:
    """``fn`` of every item at once, results in order. On an interruption the main thread
    leaves at once (the lab's removal ends the commands still running)."""
    pool = ThreadPoolExecutor(max_workers=min(len(items), workers))
    try:
        out = list(pool.map(fn, items))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return out


class StepFailed(Exception):
    """A step's expectation was not met; the message says what was expected and seen."""


class Capture:
    """A capture step's tcpdump, running in a thread until its ``expect_capture`` (or the end)."""

    def __init__(self, node: CaptureTarget, spec: CaptureSpec, path: Path) -> None:
        self.node = node
        self.path = path
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.result: CaptureResult | None = None
        self.error: LabError | None = None
        self._thread = threading.Thread(target=self._run, args=(spec,), daemon=True)
        self._thread.start()

    def _run(self, spec: CaptureSpec) -> None:
        try:
            self.result = capture(
                self.node,
                self.path,
                iface=spec.iface,
                bpf=spec.filter,
                on_ready=self.ready.set,
                stop=self.stop,
            )
        except LabError as exc:
            self.error = exc
        finally:
            self.ready.set()

    def finish(self) -> CaptureResult:
        """Stop tcpdump (the first time) and read what it wrote."""
        self.stop.set()
        self._thread.join(30)
        if self.result is None:
            raise self.error or LabError(f"the capture in node '{self.node.name}' did not stop")
        return self.result


class StepRunner:
    """Runs steps in order; ``on_done`` sees every result (parallel children included).

    It remembers what ran: run steps by ``id`` (``expect_ratio``), their outputs (the
    timeline of ``expect_timeline``) and the captures still running (:meth:`close` stops them).
    """

    def __init__(self, lab: Lab, run_dir: Path, on_done: StepHook | None = None) -> None:
        self.lab = lab
        self.run_dir = run_dir
        self.on_done = on_done or (lambda _: None)
        self.results: list[StepResult] = []
        self.by_id: dict[str, StepResult] = {}
        self.captures: dict[str, Capture] = {}

    def close(self) -> None:
        """Stop the captures no ``expect_capture`` stopped (their pcaps stay in the run folder)."""
        for cap in self.captures.values():
            if not cap.stop.is_set():
                with contextlib.suppress(LabError):
                    cap.finish()

    def run(self, step: Strict, index: str) -> StepResult:
        kind = step_kind(step)
        spec = getattr(step, kind)
        result = StepResult(
            index=index, kind=kind, title=describe(step), status="passed", started=time.time(), duration=0.0
        )
        t0 = time.monotonic()
        try:
            getattr(self, f"_{kind}")(spec, result)
        except StepFailed as exc:
            result.status, result.detail = "failed", str(exc)
        except LabError as exc:
            result.status, result.detail = "error", exc.message
        result.duration = time.monotonic() - t0
        self.results.append(result)
        ident = getattr(spec, "id", None)
        if isinstance(spec, RunSpec) and ident is not None:
            self.by_id[ident] = result
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
        return _in_parallel(fn, targets, 16)

    # -- the step kinds -----------------------------------------------------

    def _start(self, spec: StartSpec, result: StepResult) -> None:
        outs = self._on_nodes(spec.node, lambda n: _timed_exec(n, n.start_argv(spec.cmd)))
        result.outputs = outs
        failed = [o for o in outs if o.exit_code != 0]
        if failed:
            raise StepFailed("; ".join(f"{o.node}: could not start: {o.summary()}" for o in failed))

    def _run(self, spec: RunSpec, result: StepResult) -> None:
        argv = ["timeout", "-s", "KILL", f"{spec.timeout:g}", *spec.cmd]
        outs = self._on_nodes(spec.node, lambda n: _timed_exec(n, argv))
        result.outputs = outs
        problems = [f"{o.node}: {p}" for o in outs for p in expect.check(spec.expect, o, spec.timeout)]
        problems += expect.check_duration(spec.expect, max((o.duration for o in outs), default=0))
        if problems:
            raise StepFailed("; ".join(problems))

    def _parallel(self, steps: list[Strict], result: StepResult) -> None:
        result.children = _in_parallel(
            lambda pair: self.run(pair[1], f"{result.index}.{pair[0]}"), list(enumerate(steps, 1)), len(steps)
        )
        bad = [c for c in result.children if not c.passed]
        if bad:
            raise StepFailed(
                f"{len(bad)} of {len(steps)} parallel steps failed: "
                + ", ".join(f"step {c.index} ({c.kind})" for c in bad)
            )

    def _wait(self, spec: WaitSpec, result: StepResult) -> None:
        want = spec.listening or spec.connected or ""
        match = listening(want) if spec.listening else _connected(want, self._peer_ips(spec))
        deadline = time.monotonic() + spec.timeout
        pending = self.nodes(spec.node)
        while True:
            pending = [n for n in pending if not any(map(match, self.lab.sockets(n.name)))]
            if not pending:
                return
            if time.monotonic() >= deadline:
                what = "listening on" if spec.listening else "connected to"
                raise StepFailed(
                    f"expected {', '.join(n.name for n in pending)} {what} {want} "
                    f"within {spec.timeout:g} s, it was not"
                )
            time.sleep(POLL)

    def _peer_ips(self, spec: WaitSpec) -> set[str]:
        host = (spec.connected or "").rsplit(":", 1)[0]
        node = self.nodes(spec.node)[0]
        found = node.exec(["getent", "ahosts", host]).stdout.split()
        return {host} | set(found[::3])

    def _expect_sockets(self, spec: ExpectSocketsSpec, result: StepResult) -> None:
        counts = {
            n.name: sum(map(_socket_filter(spec), self.lab.sockets(n.name))) for n in self.nodes(spec.node)
        }
        total = sum(counts.values())
        result.detail = "found " + ", ".join(f"{k}: {v}" for k, v in counts.items())
        low, high = spec.min, spec.max
        if total < low or (high is not None and total > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise StepFailed(
                f"expected {bound} {_socket_words(spec)} on {spec.node}, "
                f"found {total} ({result.detail.removeprefix('found ')})"
            )

    def _expect_timeline(self, spec: ExpectTimelineSpec, result: StepResult) -> None:
        topo = self.lab.topology

        def nodes_of(pattern: str) -> set[str]:
            return set(topo.match_nodes(pattern)) if topo else {pattern}

        deadline = time.monotonic() + spec.timeout
        while True:
            events = self._timeline()
            matched, missing = expect.match_in_order(spec.events, events, nodes_of, spec.in_order)
            if missing is None:
                joined = (" → " if spec.in_order else ", ").join(expect.describe_event(e) for e in matched)
                result.detail = ("in order: " if spec.in_order else "all of: ") + joined
                return
            if time.monotonic() >= deadline:
                raise StepFailed(expect.missing_event(spec.events, matched, missing, events, nodes_of))
            time.sleep(POLL * 2)

    def _timeline(self) -> list[Event]:
        """The merged events so far: the nodes' logs and the commands the steps ran."""
        nodes = self.lab.nodes()
        with ThreadPoolExecutor(max_workers=min(len(nodes), 8) or 1) as pool:
            texts = list(pool.map(lambda n: n.logs(), nodes))
        ran = [e for r in list(self.results) for o in r.outputs for e in output_events(o.node, o.stdout)]
        return merge(zip((n.name for n in nodes), texts, strict=True), ran)

    def _expect_ratio(self, spec: ExpectRatioSpec, result: StepResult) -> None:
        missing = [i for i in (spec.of, spec.to) if i not in self.by_id]
        if missing:
            raise LabError(f"no run step with id {missing[0]!r} has run yet")
        top, bottom = (self._measure(self.by_id[i], spec.by) for i in (spec.of, spec.to))
        ratio = top / bottom if bottom > 0 else float("inf")
        result.detail = f"{spec.of} {top:.2f} s / {spec.to} {bottom:.2f} s = {ratio:.2f}"
        if spec.by == "events":
            result.detail += " (first to last event)"
        if (spec.min is not None and ratio < spec.min) or (spec.max is not None and ratio > spec.max):
            raise StepFailed(f"expected a ratio {_bounds(spec.min, spec.max)}, got {result.detail}")

    @staticmethod
    def _measure(step: StepResult, by: str) -> float:
        """A run step's duration, or the span of the events its commands printed."""
        if by == "duration":
            return step.duration
        stamps = [e.ts for o in step.outputs for e in output_events(o.node, o.stdout)]
        if len(stamps) < 2:
            raise LabError(
                f"run step {step.index} printed no events to time",
                "compare `by: duration`, or run an app that prints events",
            )
        return max(stamps) - min(stamps)

    def _capture(self, spec: CaptureSpec, result: StepResult) -> None:
        targets = self.nodes(spec.node)
        if len(targets) != 1:
            raise LabError(f"a capture runs in one node; {spec.node!r} matches {len(targets)}")
        folder = self.run_dir / "captures"
        folder.mkdir(parents=True, exist_ok=True)
        cap = Capture(targets[0].tools(), spec, folder / f"{spec.id}.pcap")
        self.captures[spec.id] = cap
        if not cap.ready.wait(READY_TIMEOUT + 5) or cap.error is not None:
            raise cap.error or LabError(f"tcpdump did not start in node '{targets[0].name}'")
        result.detail = f"tcpdump on {spec.iface} in {targets[0].name}" + (
            f" ({spec.filter})" if spec.filter else ""
        )

    def _expect_capture(self, spec: ExpectCaptureSpec, result: StepResult) -> None:
        cap = self.captures.get(spec.capture)
        if cap is None:
            raise LabError(f"no capture with id {spec.capture!r} was started")
        found = cap.finish()
        matching = [c for c in found.conversations if _conversation_matches(spec, c)]
        shown = "; ".join(_conversation_text(c, spec.server_port) for c in matching[:4])
        result.detail = (
            f"{len(matching)} of {len(found.conversations)} connections in "
            f"{len(found.packets)} packets ({found.path.name})" + (f": {shown}" if shown else "")
        )
        if len(matching) < spec.min or (spec.max is not None and len(matching) > spec.max):
            seen = "; ".join(_conversation_text(c, None) for c in found.conversations[:4])
            raise StepFailed(
                f"expected {_bounds(spec.min, spec.max)} connections with "
                f"{_capture_words(spec)}, found {len(matching)}"
                + (f" (seen: {seen})" if seen else " (no TCP connection seen)")
            )

    def _compare_sockets(self, spec: CompareSocketsSpec, result: StepResult) -> None:
        def one(node: LabNode) -> tuple[NodeOutput, netstat.Comparison]:
            t0 = time.monotonic()
            found = netstat.compare(self.lab.tools_exec, node.name, spec.tool)
            return NodeOutput(node.name, 0, found.output, "", time.monotonic() - t0), found

        pairs = self._on_nodes(spec.node, one)
        result.outputs = [o for o, _ in pairs]
        rows = sum(len(c.ours) for _, c in pairs)
        result.detail = f"{rows} rows agree with {' '.join(netstat.COMMANDS[spec.tool])}"
        problems = [f"{c.node}: " + "; ".join(c.differences()[:6]) for _, c in pairs if not c.agree]
        if problems:
            raise StepFailed(f"socklab and {spec.tool} disagree: " + " | ".join(problems))

    def _fault(self, spec: Any, result: StepResult) -> None:
        done = self.lab.fault.apply(spec)
        result.fault = done.as_dict()
        result.detail = done.message

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


def _count(low: int, high: int | None) -> str:
    """``2..5``, or ``>= 2`` without an upper bound (a step's title)."""
    return f"{low}..{high}" if high is not None else f">= {low}"


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"


def _conversation_matches(spec: ExpectCaptureSpec, conv: TcpConversation) -> bool:
    return all(
        (
            spec.server_port is None or int(conv.server.rsplit(":", 1)[1]) == spec.server_port,
            spec.handshake is None or conv.handshake == spec.handshake,
            spec.teardown is None or conv.teardown == spec.teardown,
            spec.outcome is None or conv.outcome == spec.outcome,
            spec.min_packets is None or conv.packets >= spec.min_packets,
        )
    )


def _conversation_text(conv: TcpConversation, port: int | None) -> str:
    """``a → b: SYN SYN-ACK ACK | FIN client, FIN server, ACK (closed)``, and how the server
    port's two bytes are on the wire (network byte order: most significant first)."""
    text = (
        f"{conv.client} → {conv.server}: {' '.join(conv.handshake) or '-'} | "
        f"{', '.join(conv.teardown) or '-'} ({conv.outcome}, {conv.packets} packets)"
    )
    if port is not None:
        text += f", port {port} on the wire: {struct.pack('!H', port).hex(' ')}"
    return text


def _capture_words(spec: ExpectCaptureSpec) -> str:
    parts = []
    if spec.server_port is not None:
        parts.append(f"server port {spec.server_port}")
    if spec.handshake is not None:
        parts.append(f"handshake {' '.join(spec.handshake)}")
    if spec.teardown is not None:
        parts.append(f"teardown {', '.join(spec.teardown)}")
    if spec.outcome is not None:
        parts.append(f"outcome {spec.outcome}")
    if spec.min_packets is not None:
        parts.append(f"at least {spec.min_packets} packets")
    return ", ".join(parts) or "any traffic"


def _timed_exec(node: LabNode, argv: list[str]) -> NodeOutput:
    t0 = time.monotonic()
    r = node.exec(argv)
    out = NodeOutput(node.name, r.exit_code, r.stdout, r.stderr, time.monotonic() - t0)
    out.errno = expect.reported_errno(r.stdout)
    return out


def _connected(want: str, peer_ips: set[str]) -> Callable[[SocketRow], bool]:
    port = int(want.rsplit(":", 1)[1])

    def match(row: SocketRow) -> bool:
        return (
            row.state == "ESTABLISHED"
            and row.remote_port == port
            and row.remote_ip.removeprefix("::ffff:") in peer_ips
        )

    return match


def _socket_filter(spec: ExpectSocketsSpec) -> Callable[[SocketRow], bool]:
    def match(row: SocketRow) -> bool:
        return all(
            (
                spec.state is None or row.state == spec.state,
                spec.proto is None or proto_matches(spec.proto, row.proto),
                spec.local_port is None or row.local_port == spec.local_port,
                spec.remote_port is None or row.remote_port == spec.remote_port,
            )
        )

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
        return f"expect_sockets {spec.node}: {_count(spec.min, spec.max)} {_socket_words(spec)}"
    if isinstance(step, ParallelStep):
        return f"parallel ({len(step.parallel)} steps)"
    if kind == "sleep":
        return f"sleep {spec:g} s"
    if kind == "snapshot":
        return "snapshot sockets"
    if isinstance(spec, ExpectTimelineSpec):
        arrow = " → " if spec.in_order else ", "
        shown = arrow.join(expect.describe_pattern(e) for e in spec.events[:4])
        more = f"{arrow}... ({len(spec.events)} events)" if len(spec.events) > 4 else ""
        return f"expect_timeline {shown}{more}" + ("" if spec.in_order else " (any order)")
    if isinstance(spec, ExpectRatioSpec):
        by = " (by events)" if spec.by == "events" else ""
        return f"expect_ratio {spec.of} / {spec.to} {_bounds(spec.min, spec.max)}{by}"
    if isinstance(spec, CaptureSpec):
        return f"capture {spec.id} in {spec.node}" + (f": {spec.filter}" if spec.filter else "")
    if isinstance(spec, ExpectCaptureSpec):
        return (
            f"expect_capture {spec.capture}: {_count(spec.min, spec.max)} connections with "
            f"{_capture_words(spec)}"
        )
    if isinstance(spec, CompareSocketsSpec):
        return f"compare_sockets {spec.node} with {spec.tool}"
    if kind == "fault":
        return f"fault {describe_fault(spec)}"
    return kind


def describe_fault(fault: Any) -> str:
    """``partition client | server``, ``loss client 30% (udp, on lan)``, ``kill server``..."""
    kind = fault_kind(fault)
    spec = getattr(fault, kind)
    if kind in ("partition", "heal"):
        return f"{kind} {spec}" if isinstance(spec, str) else f"{kind} {spec[0]} | {spec[1]}"
    if isinstance(spec, str):
        return f"{kind} {spec}"
    if kind in ("connect", "disconnect"):
        return f"{kind} {spec.node} {spec.net}"
    amount = {
        "rate": lambda: format_rate(spec.rate),
        "delay": lambda: format_ms(spec.ms) + (f" ± {format_ms(spec.jitter)}" if spec.jitter else ""),
    }.get(kind, lambda: f"{spec.pct:g}%" if hasattr(spec, "pct") else "")()
    notes = [n for n in (getattr(spec, "proto", None), f"on {spec.net}" if spec.net else None) if n]
    text = f"{kind} {spec.node}" + (f" {amount}" if amount else "")
    return text + (f" ({', '.join(notes)})" if notes else "")
