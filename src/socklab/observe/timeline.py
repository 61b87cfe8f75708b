"""One timeline of a lab: every node's JSON event lines from ``docker logs``, merged by time.

A log line is ``<UTC time> <app>[<pid>] <text>`` (the node supervisor's tagging); it is
an event when ``<text>`` is a JSON object with an ``event`` key. Events are ordered by
the app's own ``ts`` (all containers share the host's clock), else the line's time,
corrected for causality: an app stamps an event after its system call returned, a
scheduling delay late, so a server's ``accepted`` may carry an earlier time than the
client's ``connected`` that it needs. The merge is therefore a topological order of
happens-before (each process's own order; ``connected`` before the peer's ``accepted``;
a connection end's first ``sent`` before the other end's first ``received``), ties
broken by time. Every event keeps its own recorded time.
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_LINE = re.compile(r"^(\S+Z) (\S+)\[(\d+)\] (\{.*\})\s*$")
_CORE = ("ts", "app", "event", "pid", "peer")


@dataclass(frozen=True, slots=True)
class Event:
    """One event of one app in one node."""

    ts: float
    node: str
    app: str
    pid: int
    event: str
    peer: str | None = None
    fields: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def time(self) -> str:
        """ISO 8601 UTC with microseconds."""
        return datetime.fromtimestamp(self.ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "ts": self.ts,
            "node": self.node,
            "app": self.app,
            "pid": self.pid,
            "event": self.event,
            "peer": self.peer,
            "fields": self.fields,
        }


def fields_text(fields: dict[str, Any], limit: int | None = None) -> str:
    """An event's other fields as ``key=value`` words (nested values left out), cut to
    ``limit`` characters."""
    text = " ".join(
        f"{k}={v}" for k, v in fields.items() if v not in (None, "") and not isinstance(v, dict | list)
    )
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def parse_line(node: str, line: str) -> Event | None:
    """The event of one log line, or None when the line is not a JSON event."""
    match = _LINE.match(line)
    if match is None:
        return None
    stamp, tag, pid, text = match.groups()
    try:
        logged = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return _event(node, text, tag, int(pid), logged.timestamp())


def output_events(node: str, stdout: str) -> list[Event]:
    """The events an app printed on its stdout (a command run with exec, not in the logs)."""
    return [
        e
        for line in stdout.splitlines()
        if line.startswith("{") and (e := _event(node, line, "?", 0, None)) is not None
    ]


def _event(node: str, text: str, tag: str, pid: int, logged: float | None) -> Event | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        return None
    ts = data.get("ts") if isinstance(data.get("ts"), int | float) else logged
    if ts is None:
        return None
    peer = data.get("peer")
    return Event(
        ts=float(ts),
        node=node,
        app=str(data.get("app") or tag),
        pid=int(data["pid"]) if isinstance(data.get("pid"), int) else pid,
        event=data["event"],
        peer=peer if isinstance(peer, str) else None,
        fields={k: v for k, v in data.items() if k not in _CORE},
    )


def merge(logs: Iterable[tuple[str, str]], more: Iterable[Event] = ()) -> list[Event]:
    """Events of ``(node, log text)`` pairs and ``more`` events, in causal then time order."""
    events = [
        e for node, text in logs for line in text.splitlines() if (e := parse_line(node, line)) is not None
    ]
    return causal_order(sorted([*events, *more], key=lambda e: e.ts))


_CAUSE = {"accepted": "connected", "received": "sent"}


def causal_order(events: list[Event]) -> list[Event]:
    """``events`` (in time order) reordered so that no event precedes one it depends on."""
    before: list[list[int]] = [[] for _ in events]
    last_of_process: dict[tuple[str, int], int] = {}
    local_of: dict[tuple[str, str], str] = {}  # (node, peer) -> local end, latest first
    first: dict[tuple[str, str, str], int] = {}  # (event, local, peer) -> its first index
    for i, e in enumerate(events):
        process = (e.node, e.pid)
        if process in last_of_process:
            before[i].append(last_of_process[process])
        last_of_process[process] = i
        if e.peer is None:
            continue
        peer = _address(e.peer)
        local = e.fields.get("local")
        if e.event in ("connected", "accepted") and isinstance(local, str):
            local_of[(e.node, peer)] = _address(local)
        end = local_of.get((e.node, peer))
        if end is None:
            continue
        first.setdefault((e.event, end, peer), i)
    for (event, end, peer), i in first.items():
        cause = first.get((_CAUSE.get(event, ""), peer, end))  # the other end's view
        if cause is not None:
            before[i].append(cause)
    return _topological(events, before)


def _topological(events: list[Event], before: list[list[int]]) -> list[Event]:
    """Kahn's algorithm, always taking the earliest ready event."""
    waiting = [len(b) for b in before]
    after: list[list[int]] = [[] for _ in events]
    for i, deps in enumerate(before):
        for j in deps:
            after[j].append(i)
    ready = [(events[i].ts, i) for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(i)
        for k in after[i]:
            waiting[k] -= 1
            if waiting[k] == 0:
                heapq.heappush(ready, (events[k].ts, k))
    if len(order) < len(events):  # a cycle (clock or pid reuse): the rest in time order
        done = set(order)
        order += [i for i in range(len(events)) if i not in done]
    return [events[i] for i in order]


def _address(text: str) -> str:
    """``[::ffff:10.0.0.3]:40000`` and ``10.0.0.3:40000`` name the same end."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    return f"{host.removeprefix('::ffff:') if '.' in host else host}:{port}"
