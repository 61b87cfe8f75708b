"""Checking a ``run`` step's expectations against what its command did. Pure."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from socklab.observe.timeline import Event, output_events
from socklab.scenario.results import NodeOutput
from socklab.topology.model import EventPattern, Expect


def app_events(stdout: str) -> list[dict[str, Any]]:
    """The JSON events a built-in app printed, one per line (other lines are skipped)."""
    events = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and "event" in event:
                    events.append(event)
    return events


def reported_errno(stdout: str) -> str | None:
    """The errno name of the first ``error`` event an app printed, if any."""
    return next(
        (str(e["errno"]) for e in app_events(stdout) if e["event"] == "error" and e.get("errno")), None
    )


def story(events: list[dict[str, Any]], width: int = 80) -> str:
    """What an app did, from its events: ``connected, sent x2, received 'hello' x2, closed``."""
    parts: list[list[Any]] = []
    for e in events:
        word = e["event"]
        if word == "received" and "data" in e:
            word += f" {e['data']!r}"
        elif word == "error":
            word += f" {e.get('errno') or e.get('message') or ''}".rstrip()
        if parts and parts[-1][0] == word:
            parts[-1][1] += 1
        else:
            parts.append([word, 1])
    text = ", ".join(w if n == 1 else f"{w} x{n}" for w, n in parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def check(expect: Expect, out: NodeOutput, timeout: float) -> list[str]:
    """Every expectation on one node's output that ``out`` misses, as 'expected X, got Y'."""
    got = _what_happened(out, timeout)
    problems = []
    if expect.errno is not None and out.errno != expect.errno:
        problems.append(f"expected {expect.errno}, got {got}")
    wants_exit = expect.exit if expect.exit is not None else (0 if expect.errno is None else None)
    if wants_exit is not None and out.exit_code != wants_exit:
        problems.append(f"expected exit {wants_exit}, got {got}")
    if expect.stdout_contains is not None and expect.stdout_contains not in out.stdout:
        problems.append(f"expected stdout to contain {expect.stdout_contains!r}, got {got}")
    if expect.stdout_matches is not None and not re.search(expect.stdout_matches, out.stdout, re.MULTILINE):
        problems.append(f"expected stdout to match {expect.stdout_matches!r}, got {got}")
    if expect.events:
        events = output_events(out.node, out.stdout)
        matched, missing = match_in_order(expect.events, events)
        if missing is not None:
            problems.append(missing_event(expect.events, matched, missing, events))
    return problems


NodesOf = Callable[[str], "set[str]"]


def pattern_matches(
    pattern: EventPattern,
    event: Event,
    nodes_of: NodesOf | None = None,
    bindings: dict[str, Any] | None = None,
) -> bool:
    """Whether an event is the one a pattern describes (node and app may be globs; a field
    given as text matches the value's text, so ``port: "5000"`` matches 5000; a field value
    ``$name`` matches what ``bindings`` holds for it, or anything when it holds nothing yet)."""
    if pattern.event != event.event:
        return False
    if pattern.node is not None:
        nodes = nodes_of(pattern.node) if nodes_of else {pattern.node}
        if event.node not in nodes and not fnmatch.fnmatchcase(event.node, pattern.node):
            return False
    if pattern.app is not None and not fnmatch.fnmatchcase(event.app, pattern.app):
        return False
    for key, want in pattern.fields.items():
        have = event.peer if key == "peer" else event.fields.get(key, _MISSING)
        if have is _MISSING:
            return False
        if _is_variable(want):
            if bindings is not None and want in bindings and not _same(bindings[want], have):
                return False
        elif not _same(want, have):
            return False
    return True


_MISSING = object()


def _is_variable(value: Any) -> bool:
    return isinstance(value, str) and len(value) > 1 and value.startswith("$")


def _same(want: Any, have: Any) -> bool:
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    if isinstance(want, str) and not isinstance(have, str):
        return want == str(have)
    return bool(want == have)


def match_in_order(
    patterns: Sequence[EventPattern],
    events: Sequence[Event],
    nodes_of: NodesOf | None = None,
    in_order: bool = True,
) -> tuple[list[Event], int | None]:
    """The events matching the patterns in order (others may come between), earliest first,
    and the index of the first pattern not found after the previous match (None: all found).
    Without ``in_order`` each pattern is looked for among all the events not matched yet.
    A ``$name`` field value is bound by the first event that matches its pattern."""
    matched: list[Event] = []
    used: set[int] = set()
    bindings: dict[str, Any] = {}
    start = 0
    for index, pattern in enumerate(patterns):
        found = next(
            (
                i
                for i in range(start if in_order else 0, len(events))
                if i not in used and pattern_matches(pattern, events[i], nodes_of, bindings)
            ),
            None,
        )
        if found is None:
            return matched, index
        event = events[found]
        for key, want in pattern.fields.items():
            if isinstance(want, str) and _is_variable(want) and want not in bindings:
                bindings[want] = event.peer if key == "peer" else event.fields.get(key)
        matched.append(event)
        used.add(found)
        start = found + 1
    return matched, None


def describe_pattern(pattern: EventPattern) -> str:
    """``server tcp-server accepted (local=...:5000)``."""
    who = " ".join(x for x in (pattern.node, pattern.app) if x)
    fields = ", ".join(f"{k}={v}" for k, v in pattern.fields.items())
    return f"{who + ' ' if who else ''}{pattern.event}" + (f" ({fields})" if fields else "")


def describe_event(event: Event) -> str:
    return f"{event.node} {event.app} {event.event}" + (f" {event.peer}" if event.peer else "")


def missing_event(
    patterns: Sequence[EventPattern],
    matched: list[Event],
    missing: int,
    events: Sequence[Event],
    nodes_of: NodesOf | None = None,
) -> str:
    """Which pattern was not found, after which event."""
    after = f" after {describe_event(matched[-1])}" if matched else ""
    anywhere = any(pattern_matches(patterns[missing], e, nodes_of) for e in events)
    where = " (it happened, but earlier)" if anywhere and matched else ""
    return (
        f"expected event {missing + 1} of {len(patterns)}, "
        f"{describe_pattern(patterns[missing])}{after}{where}; "
        f"{len(matched)} matched in order"
    )


def check_duration(expect: Expect, seconds: float) -> list[str]:
    """Duration bounds apply to the whole step: on a glob, until the slowest node is done."""
    if expect.duration_max is not None and seconds > expect.duration_max:
        return [f"expected at most {expect.duration_max:g} s, took {seconds:.2f} s"]
    if expect.duration_min is not None and seconds < expect.duration_min:
        return [f"expected at least {expect.duration_min:g} s, took {seconds:.2f} s"]
    return []


def _what_happened(out: NodeOutput, timeout: float) -> str:
    if out.exit_code == 137 and out.duration >= timeout:
        return f"a timeout after {timeout:g} s"
    head = out.errno if out.errno else f"exit {out.exit_code}"
    events = app_events(out.stdout)
    said = story(events) if events else out.summary()
    return f"{head}: {said!r}" if said else head
