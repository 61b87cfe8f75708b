"""Topology errors: every problem of a file, each with its line, key path and a hint.

A problem renders on one line, ``FILE:LINE: PATH: MESSAGE — HINT``, e.g.::

    lab.yml:9: nodes.client.networks[0]: unknown network 'lann' — did you mean 'lan'?

Pydantic's errors are translated here into the document's own terms: its ``loc``
tuples become key paths of the YAML as written (list indices as ``[i]``, step
tags removed, union member labels dropped) and its messages become plain English.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import ip_network
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from socklab.errors import LabError
from socklab.topology.faults import FAULT_KINDS
from socklab.topology.model import STEP_KINDS, Dns, Node, RunSpec, StartCommand, StartSpec, Topology

#: A key path in the document: mapping keys as ``str``, list indices as ``int``.
DocPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a topology file."""

    file: str
    line: int | None
    path: str
    message: str
    hint: str | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"{text} — {self.hint}" if self.hint else text


class TopologyError(LabError):
    """A topology file that cannot be used; ``problems`` lists everything wrong with it."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        ordered = sorted(dict.fromkeys(problems), key=lambda p: (p.line or 0, p.path))
        self.problems: list[Problem] = ordered
        super().__init__("\n".join(map(str, ordered)), None, exit_code=2)

    def __str__(self) -> str:
        return self.message


def format_path(path: Iterable[str | int]) -> str:
    """``("nodes", "a", "networks", 0)`` -> ``nodes.a.networks[0]``."""
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += f"[{seg}]"
            continue
        key = seg if re.fullmatch(r"[A-Za-z0-9_*?!\[\]-]+", seg) else repr(seg)
        out += f".{key}" if out else key
    return out


def did_you_mean(word: object, choices: Iterable[str]) -> str | None:
    """``"did you mean 'lan'?"`` when a choice is close to ``word``."""
    if not isinstance(word, str):
        return None
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def listing(names: Iterable[str], limit: int = 8) -> str:
    """``a, b, c`` with at most ``limit`` names."""
    names = list(names)
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def describe(value: Any) -> str:
    """How a YAML value reads to the user, for ``got ...``."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class SourceMap:
    """A parsed document with the line of every mapping key and sequence item."""

    def __init__(self, filename: str, data: dict[str, Any], lines: dict[DocPath, int]) -> None:
        self.filename = filename
        self.data = data
        self.lines = lines

    def line(self, path: DocPath) -> int | None:
        """The line of ``path``, or of its closest ancestor written in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def get(self, path: DocPath) -> Any:
        """The raw value at ``path``, or ``None``."""
        value: Any = self.data
        for seg in path:
            found = isinstance(value, dict) and seg in value
            found |= isinstance(value, list) and isinstance(seg, int) and 0 <= seg < len(value)
            if not found:
                return None
            value = value[seg]
        return value

    def problem(self, path: DocPath, message: str, hint: str | None = None) -> Problem:
        return Problem(self.filename, self.line(path), format_path(path), message, hint)


# -- pydantic errors -> problems -----------------------------------------------------------


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


@functools.cache
def _field_types(model: type[BaseModel]) -> dict[str, Any]:
    """A model's field types with forward references (``list[Step]``) resolved."""
    return get_type_hints(model, include_extras=True)


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _tags(members: list[Any]) -> dict[str, type[BaseModel]]:
    """A tagged union's members by tag: each a model with one field, named as its tag
    (steps, faults); empty for any other union."""
    if not members or not all(_is_model(m) and len(m.model_fields) == 1 for m in members):
        return {}
    return {next(iter(m.model_fields)): m for m in members}


@dataclass
class _Located:
    """A pydantic error placed in the document."""

    path: DocPath
    is_key: bool  # the error is about a mapping key itself (pydantic's ``[key]``)
    in_union: bool  # one member's error of a union: merge with its siblings
    parent: type[BaseModel] | None  # the model whose field (or extra key) this is


def _locate(loc: tuple[int | str, ...], source: SourceMap) -> _Located:
    """Walk pydantic's ``loc`` alongside the model types and the raw document."""
    tp: Any = Topology
    raw: Any = source.data
    path: list[str | int] = []
    is_key = in_union = False
    parent: type[BaseModel] | None = None
    for seg in loc:
        tp = _unwrap(tp)
        while _is_union(tp):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) != 1:
                break
            tp = _unwrap(members[0])
        if _is_union(tp):
            members = [_unwrap(a) for a in get_args(tp)]
            tags = _tags(members)
            if isinstance(seg, str) and seg in tags:
                tp = tags[seg]  # a step's (or fault's) tag; the same name follows as its field
            else:
                in_union, tp = True, None  # a union member's label
            continue
        if seg == "[key]":
            is_key = True
            continue
        if tp is Dns and seg == "records" and isinstance(raw, list):
            tp = _field_types(Dns)["records"]  # ``dns: [records...]``: no key in the file
            parent = Dns
            continue
        if _is_model(tp):
            parent = tp
            tp = _field_types(tp).get(str(seg)) if str(seg) in tp.model_fields else None
        elif get_origin(tp) in (dict, list):
            tp = get_args(tp)[-1]
        else:
            tp = None
        # place the segment in the document as written
        if isinstance(seg, int) and raw is not None and not isinstance(raw, list):
            continue  # one item written without its list (``start: {cmd: ..., wait: ...}``)
        if isinstance(raw, list) and isinstance(seg, str):
            # the list form of a map (``networks: [lan, wan]``): point at the item
            names = [str(x) for x in raw]
            if seg in names:
                seg = names.index(seg)
        if isinstance(raw, dict):
            seg = str(seg)
            raw = raw.get(seg)
        elif isinstance(raw, list) and isinstance(seg, int) and 0 <= seg < len(raw):
            raw = raw[seg]
        else:
            raw = None
        path.append(seg)
    return _Located(tuple(path), is_key, in_union, parent)


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true/false",
    "bool_parsing": "true/false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "ip_v4_address": "an IPv4 address",
    "ip_v6_address": "an IPv6 address",
    "ip_any_address": "an IP address",
    "ip_v4_network": "an IPv4 subnet such as 10.77.1.0/24",
    "ip_v6_network": "an IPv6 subnet such as fd00:77:1::/64",
}

#: What a field takes, where its short forms make pydantic's words misleading.
_EXPECTED_FIELD: dict[tuple[type[BaseModel] | None, str], str] = {
    (Node, "networks"): "a list of network names or a mapping",
    (Node, "start"): "a command or a list of commands",
    (StartCommand, "cmd"): "a command line or an argv list",
    (StartSpec, "cmd"): "a command line or an argv list",
    (RunSpec, "cmd"): "a command line or an argv list",
    (Node, "ports"): "a list of ports",
}

#: Hints for values that must match a pattern, by field (or, for keys, by container).
_NAME_RULES: dict[str, tuple[str, str]] = {
    "name": ("lab name", "use a-z, 0-9 and '-', starting with a letter, at most 31 characters"),
    "nodes": ("node name", "use a-z, 0-9 and '-', starting with a letter, at most 41 characters"),
    "networks": (
        "network name",
        "use a-z, 0-9, '-' and '_', starting with a letter, at most 31 characters",
    ),
    "env": ("environment variable name", "use letters, digits and '_', not starting with a digit"),
    "scenarios": ("scenario name", "use letters, digits, '-' and '_'"),
    "node": ("node pattern", "name a node or a replica, or a glob such as 'client-*'"),
    "server": ("node name", "name a node: a-z, 0-9 and '-', starting with a letter"),
    "aliases": ("alias", "use letters, digits, '-' and '.', at most 63 characters"),
    "cap_add": ("capability", "use a capability name such as NET_ADMIN or NET_RAW"),
    "listening": ("'listening' value", "use tcp/PORT or udp/PORT, e.g. tcp/5000"),
    "connected": ("'connected' value", "use HOST:PORT, e.g. server:5000"),
    "errno": ("errno name", "use an errno name such as ECONNREFUSED"),
}

_TOO_SHORT: dict[DocPath, tuple[str, str]] = {
    ("nodes",): ("a lab needs at least one node", "add one under 'nodes:'"),
    ("networks",): ("a lab needs at least one network", "add one, e.g. 'networks: {lan: {}}'"),
    ("nodes", "*", "networks"): ("a node needs at least one network", "e.g. 'networks: [lan]'"),
    ("cmd",): ("empty command", "give a command line or an argv list"),
    ("parallel",): ("'parallel' needs at least one step", "list its steps under it"),
}


def _field_name(path: DocPath) -> str:
    """The name of the field a path ends in (skipping list indices)."""
    for seg in reversed(path):
        if isinstance(seg, str):
            return seg
    return ""


def _required(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [k for k, f in model.model_fields.items() if f.is_required()]


def _message(err: ErrorDetails, where: _Located) -> tuple[str, str | None]:
    """Plain English (message, hint) for one pydantic error."""
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    path, field = where.path, _field_name(where.path)
    if kind == "extra_forbidden":
        allowed = list(where.parent.model_fields) if where.parent else []
        hint = did_you_mean(field, allowed) or f"allowed keys: {', '.join(allowed)}"
        return f"unknown key {field!r}", hint
    if kind == "missing":
        need = _required(where.parent)
        return f"missing key {field!r}", (f"required keys: {', '.join(need)}" if need else None)
    if kind == "step_kind":
        return _step_message(value)
    if kind == "fault_kind":
        return _fault_message(value)
    if kind == "value_error":
        text = str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
        message, _, hint = text.partition(" — ")
        return message, hint or None
    if kind == "string_pattern_mismatch":
        if where.is_key:
            container = path[-2] if len(path) >= 2 and isinstance(path[-2], str) else ""
            label, rule = _NAME_RULES.get(str(container), ("name", f"match {ctx.get('pattern')}"))
        else:
            label, rule = _NAME_RULES.get(field, ("value", f"match {ctx.get('pattern')}"))
        return f"invalid {label} {describe(value)}", rule
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        close = did_you_mean(value, choices)
        return f"invalid value {describe(value)}", close or f"use one of: {', '.join(choices)}"
    if kind == "too_short":
        shape = tuple("*" if i == 1 and len(path) == 3 else s for i, s in enumerate(path))
        for key in (shape, (field,)):
            if key in _TOO_SHORT:
                return _TOO_SHORT[key]
        return f"needs at least {ctx.get('min_length')} item(s)", None
    if kind == "too_long":
        return f"has more than {ctx.get('max_length')} items", None
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        words = {
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("more than", "gt"),
            "less_than_equal": ("at most", "le"),
            "less_than": ("less than", "lt"),
        }[kind]
        return f"must be {words[0]} {describe(ctx.get(words[1]))}, got {describe(value)}", None
    if kind == "ip_v4_network" and isinstance(value, str):
        try:
            fixed = ip_network(value, strict=False)
        except ValueError:
            pass
        else:
            if str(fixed) != value and fixed.version == 4:
                return f"{value!r} has host bits set", f"did you mean {str(fixed)!r}?"
    if kind in _EXPECTED:
        what = _EXPECTED_FIELD.get((where.parent, field), _EXPECTED[kind])
        return f"expected {what}, got {describe(value)}", None
    return err["msg"], None


def _step_message(value: Any) -> tuple[str, str | None]:
    kinds = ", ".join(STEP_KINDS)
    one_key = f"a step is a mapping with one key: {kinds}"
    if not isinstance(value, dict):
        return f"expected a step, got {describe(value)}", one_key
    if not value:
        return "empty step", one_key
    if len(value) > 1:
        keys = ", ".join(map(str, value))
        return (
            f"a step has exactly one key, found {len(value)}: {keys}",
            "start each step with '- ', and indent a step's options under its key",
        )
    key = next(iter(value))
    return f"unknown step {describe(key)}", did_you_mean(key, STEP_KINDS) or f"steps are: {kinds}"


def _fault_message(value: Any) -> tuple[str, str | None]:
    kinds = ", ".join(FAULT_KINDS)
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return f"unknown fault {describe(key)}", did_you_mean(key, FAULT_KINDS) or (f"faults are: {kinds}")
    if isinstance(value, dict) and len(value) > 1:
        return (
            f"a fault has exactly one key, found {len(value)}: {', '.join(map(str, value))}",
            "write one fault per step",
        )
    return f"expected a fault, got {describe(value)}", f"a fault is a mapping with one key: {kinds}"


def _merge_union(errors: list[tuple[ErrorDetails, _Located]]) -> tuple[str, str | None]:
    """One message for the failed members of a union (``ipv6: IPv6Network | bool``...)."""
    for err, where in errors:
        if err["type"] == "value_error":  # a member that recognised the value's shape
            return _message(err, where)
    expected = list(
        dict.fromkeys(
            str((e.get("ctx") or {}).get("expected"))
            if e["type"] == "literal_error"
            else _EXPECTED.get(e["type"], e["msg"])
            for e, _ in errors
        )
    )
    return f"expected {' or '.join(expected)}, got {describe(errors[0][0].get('input'))}", None


def problems_from_validation(exc: ValidationError, source: SourceMap) -> list[Problem]:
    """Every error of a pydantic validation, as problems located in the document."""
    problems: list[Problem] = []
    unions: dict[DocPath, list[tuple[ErrorDetails, _Located]]] = {}
    for err in exc.errors(include_url=False):
        where = _locate(tuple(err["loc"]), source)
        if where.in_union:
            unions.setdefault(where.path, []).append((err, where))
            continue
        problems.append(source.problem(where.path, *_message(err, where)))
    for path, errors in unions.items():
        if len(errors) == 1:
            problems.append(source.problem(path, *_message(*errors[0])))
        else:
            problems.append(source.problem(path, *_merge_union(errors)))
    return problems
