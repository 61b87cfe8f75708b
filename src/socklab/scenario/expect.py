"""Checking a ``run`` step's expectations against what its command did. Pure."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from socklab.scenario.results import NodeOutput
from socklab.topology.model import Expect


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
    return next((str(e["errno"]) for e in app_events(stdout)
                 if e["event"] == "error" and e.get("errno")), None)


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
    return problems


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
