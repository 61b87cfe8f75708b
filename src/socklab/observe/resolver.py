"""Name lookups from inside a node: the ``resolve NAME --json`` probe, its answer as rows."""

from __future__ import annotations

import json
from typing import Any

from socklab.errors import LabError
from socklab.observe.sockets import Exec


def resolve(run: Exec, node: str, name: str, *, every: bool = False) -> dict[str, Any]:
    """Every resolver call of the notes for ``name``, as answered in ``node`` (see
    ``socklab.nodes.resolve``); a failed lookup is part of the answer, not an error."""
    result = run(node, ["resolve", name, "--json", *(["--all"] if every else [])])
    try:
        answer: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        reason = (result.stderr or result.stdout).strip()[-300:] or f"exit {result.exit_code}"
        raise LabError(
            f"the resolver probe failed in node '{node}': {reason}",
            "is the node running the socklab node image?",
        ) from None
    return answer


def rows(answer: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(call, argument, answer) lines for a table; errors read ``error: ...``."""
    query = str(answer.get("query", ""))
    out: list[tuple[str, str, str]] = [("gethostname", "", str(answer.get("gethostname", "")))]
    for call in ("gethostbyname", "gethostbyname_ex", "getaddrinfo"):
        out.append((call, query, _text(answer.get(call) or {})))
    for address, entry in (answer.get("gethostbyaddr") or {}).items():
        out.append(("gethostbyaddr", address, _text(entry)))
    out.append(("getfqdn", query, str(answer.get("getfqdn", ""))))
    for address, conv in (answer.get("conversions") or {}).items():
        if "inet_pton" in conv:
            out.append(("inet_pton", address, f"{conv['family']} {conv['inet_pton']}"))
    return out


def _text(entry: dict[str, Any]) -> str:
    if "error" in entry:
        return f"error: {entry['error']}"
    value = entry.get("result")
    if isinstance(value, dict):  # a host entry
        aliases = ", ".join(value.get("aliases") or []) or "-"
        return (
            f"name={value.get('name')}  aliases={aliases}  "
            f"addresses={', '.join(value.get('addresses') or [])}"
        )
    if isinstance(value, list):  # getaddrinfo rows
        return "\n".join(
            f"{r['family']} {r['type']} {r['address']}"
            + (f" (canonname {r['canonname']})" if r.get("canonname") else "")
            for r in value
        )
    return str(value)
