"""One timeline of a lab: every node's JSON event lines from ``docker logs``, merged by time.

A log line is ``<UTC time> <app>[<pid>] <text>`` (the node supervisor's tagging); it is
an event when ``<text>`` is a JSON object with an ``event`` key. Events are ordered by
the app's own ``ts`` (all containers share the host's clock), else the line's time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from socklab.lab import LabNode

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
        return {"time": self.time, "ts": self.ts, "node": self.node, "app": self.app,
                "pid": self.pid, "event": self.event, "peer": self.peer, "fields": self.fields}


def parse_line(node: str, line: str) -> Event | None:
    """The event of one log line, or None when the line is not a JSON event."""
    match = _LINE.match(line)
    if match is None:
        return None
    stamp, tag, pid, text = match.groups()
    try:
        data = json.loads(text)
        logged = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        return None
    ts = data.get("ts")
    peer = data.get("peer")
    return Event(
        ts=float(ts) if isinstance(ts, int | float) else logged.timestamp(),
        node=node,
        app=str(data.get("app") or tag),
        pid=int(data["pid"]) if isinstance(data.get("pid"), int) else int(pid),
        event=data["event"],
        peer=peer if isinstance(peer, str) else None,
        fields={k: v for k, v in data.items() if k not in _CORE},
    )


def merge(logs: Iterable[tuple[str, str]]) -> list[Event]:
    """Events of ``(node, log text)`` pairs, in time order (ties keep node and line order)."""
    events = [e for node, text in logs for line in text.splitlines()
              if (e := parse_line(node, line)) is not None]
    return sorted(events, key=lambda e: e.ts)


def timeline(nodes: Sequence[LabNode]) -> list[Event]:
    """The merged events of these nodes (their logs read in parallel)."""
    if not nodes:
        return []
    with ThreadPoolExecutor(min(32, len(nodes))) as pool:
        texts = list(pool.map(lambda n: n.logs(), nodes))
    return merge(zip((n.name for n in nodes), texts, strict=True))
