"""Read a topology file: safe YAML with a line for every key, then validation.

The YAML reader is deliberately plain:

* a safe loader (libyaml's when available) that never constructs Python
  objects: only the core tags (str, int, float, bool, null, map, seq) are
  accepted, any other tag is an error;
* YAML 1.2 core scalars, so ``8080:80`` is a string (YAML 1.1 would read a
  base-60 number) and ``no``/``on`` are strings, not booleans;
* duplicate keys are errors that name both lines;
* anchors, aliases and ``<<`` merges work, but the expanded document is
  limited in size (alias bombs) and nesting depth, and files in bytes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from socklab.errors import LabError
from socklab.topology.checks import validate
from socklab.topology.errors import DocPath, Problem, SourceMap, TopologyError, format_path
from socklab.topology.model import Topology

MAX_BYTES = 2 * 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null")}
_MERGE = _TAG + "merge"

_CORE_SCALARS = [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("merge", r"^(?:<<)$", "<"),
]


def safe_loader(base: type[Any]) -> type[Any]:
    """A subclass of a safe loader (``yaml.CSafeLoader`` or ``yaml.SafeLoader``) that
    resolves YAML 1.2 core scalars. It is only used to compose nodes: no Python object
    is ever constructed from a tag."""
    loader: type[Any] = type(
        "TopologyLoader", (base,), {"yaml_implicit_resolvers": {}, "__doc__": safe_loader.__doc__}
    )
    for tag, regexp, first in _CORE_SCALARS:
        loader.add_implicit_resolver(_TAG + tag, re.compile(regexp), list(first))
    return loader


TopologyLoader = safe_loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_topology(path: str | Path) -> Topology:
    """Read, parse and check a topology file; raise :class:`LabError` on any problem."""
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise LabError(f"{name} is a directory, not a topology file", "give a .yml file")
        if size > MAX_BYTES:
            raise TopologyError([Problem(name, None, "", f"file too large ({size} bytes)", _BIG)])
        data = path.read_bytes()
    except FileNotFoundError:
        raise LabError(
            f"topology file not found: {name}",
            "check the path; `socklab labs` lists the labs shipped with socklab",
        ) from None
    except PermissionError:
        raise LabError(f"cannot read {name}: permission denied", None) from None
    except OSError as exc:
        raise LabError(f"cannot read {name}: {exc.strerror or exc}", None) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TopologyError(
            [Problem(name, line, "", "the file is not UTF-8 text", "save it as UTF-8")]
        ) from None
    return parse_topology(text, name)


def parse_topology(text: str, filename: str = "<string>") -> Topology:
    """Parse and check a topology from YAML text; ``filename`` is used in messages."""
    return validate(read_document(text, filename))


_SHAPE = "a topology is a mapping with name, networks and nodes"
_BIG = f"a topology file is at most {MAX_BYTES // 1024 // 1024} MiB"

_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"
_TOO_DEEP_HINT = "a topology is a few levels of mappings and lists"

#: (words of the parser's problem or context, a clearer message or None, hint)
_SYNTAX_HINTS = [
    ("mapping values are not allowed", None, "quote a value that contains ': '"),
    ("found undefined alias", None, "define the anchor ('&name') before its alias ('*name')"),
    (
        "expected a single document",
        "the file holds more than one YAML document",
        "a topology is one document: remove the second '---'",
    ),
]


def read_document(text: str, filename: str = "<string>") -> SourceMap:
    """Parse YAML text into plain data plus the line of every key and item."""
    if len(text) > MAX_BYTES:
        message = f"text too large ({len(text)} characters)"
        raise TopologyError([Problem(filename, None, "", message, _BIG)])
    try:
        _check_depth(text, filename)
        loader = TopologyLoader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise TopologyError([_syntax_problem(exc, filename, text)]) from None
    except yaml.YAMLError as exc:
        raise TopologyError([Problem(filename, None, "", f"YAML error: {exc}")]) from None
    if root is None:
        raise TopologyError([Problem(filename, 1, "", "the file is empty", _SHAPE)])
    if not isinstance(root, MappingNode):
        kind = "a list" if isinstance(root, SequenceNode) else "a single value"
        raise _error(filename, _line(root.start_mark), f"the document is {kind}, not a mapping", _SHAPE)
    builder = _Builder(filename)
    builder.lines[()] = _line(root.start_mark) or 1
    data = builder.build(root, ())
    if builder.problems:
        raise TopologyError(builder.problems)
    assert isinstance(data, dict)
    return SourceMap(filename, data, builder.lines)


def _syntax_problem(exc: yaml.MarkedYAMLError, filename: str, text: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    start = exc.context_mark
    if exc.context and exc.problem and start and mark and start.line != mark.line:
        problem += f" ({exc.context} started on line {start.line + 1})"
    hint = "check the indentation and quoting here"
    words = f"{exc.problem} {exc.context}"
    for key, better, key_hint in _SYNTAX_HINTS:
        if key in words:
            problem, hint = better or problem, key_hint
    if "maximum nesting depth" in words:  # libyaml >= 0.2.5 has its own limit
        line = mark.line + 1 if mark is not None else None
        return Problem(filename, line, "", _TOO_DEEP, _TOO_DEEP_HINT)
    if mark is None:
        return Problem(filename, None, "", f"YAML syntax error: {problem}", hint)
    lines = text.splitlines()
    if mark.line < len(lines) and lines[mark.line][mark.column : mark.column + 1] == "\t":
        problem, hint = "a tab character", "indent with spaces, not tabs"
    message = f"YAML syntax error: {problem}"
    return Problem(filename, mark.line + 1, "", message, hint, mark.column + 1)


def _check_depth(text: str, filename: str) -> None:
    """Refuse deep nesting before composing (libyaml's composer recurses on the C stack)."""
    loader = TopologyLoader(text)
    try:
        depth = 0
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _error(filename, _line(event.start_mark), _TOO_DEEP, _TOO_DEEP_HINT)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


class _Builder:
    """Turn composed YAML nodes into plain data, recording lines and every problem."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.lines: dict[DocPath, int] = {}
        self.problems: list[Problem] = []
        self.count = 0
        self.active: set[int] = set()

    def _problem(self, node: Node, path: DocPath, message: str, hint: str | None = None) -> None:
        problem = Problem(self.filename, _line(node.start_mark), format_path(path), message, hint)
        self.problems.append(problem)

    def build(self, node: Node, path: DocPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _error(
                self.filename,
                _line(node.start_mark),
                f"the document expands to more than {MAX_NODES} values",
                "aliases ('*name') repeat their anchor's content: use fewer of them",
            )
        if id(node) in self.active:
            self._problem(node, path, "an alias refers to its own anchor", "remove the recursion")
            return None
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if node.tag not in (_TAG + "map", _TAG + "seq"):
            self._problem(node, path, f"tag {_short_tag(node.tag)} is not allowed", _TAG_HINT)
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                items = []
                for i, item in enumerate(node.value):
                    self.lines.setdefault((*path, i), _line(item.start_mark) or 0)
                    items.append(self.build(item, (*path, i)))
                return items
            assert isinstance(node, MappingNode)
            return self._mapping(node, path)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: MappingNode, path: DocPath) -> dict[Any, Any]:
        pairs = [(k, v) for k, v in node.value if not _is_merge(k)]
        out: dict[Any, Any] = {}
        # ``<<: *base`` first: keys written in the mapping itself win, and keep their lines
        for key_node, value_node in node.value:
            if _is_merge(key_node):
                for source in self._merge_sources(value_node, path):
                    merged = self.build(source, path)
                    if isinstance(merged, dict):
                        for key, value in merged.items():
                            out.setdefault(key, value)
        seen: dict[Any, int] = {}
        for key_node, value_node in pairs:
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, path, "a key must be a plain value, not a list or mapping")
                continue
            key = self._scalar(key_node, path)
            line = _line(key_node.start_mark) or 0
            sub = (*path, str(key))
            if key in seen:
                message = f"duplicate key {key!r} (first on line {seen[key]})"
                self._problem(key_node, sub, message, "remove one of them")
                continue
            seen[key] = line
            self.lines[sub] = line
            out[key] = self.build(value_node, sub)
        return out

    def _merge_sources(self, node: Node, path: DocPath) -> list[MappingNode]:
        if isinstance(node, MappingNode):
            return [node]
        if isinstance(node, SequenceNode) and all(isinstance(n, MappingNode) for n in node.value):
            return [n for n in node.value if isinstance(n, MappingNode)]
        message = "'<<' merges a mapping or a list of mappings"
        self._problem(node, path, message, "e.g. '<<: *defaults'")
        return []

    def _scalar(self, node: ScalarNode, path: DocPath) -> Any:
        tag, value = node.tag, node.value
        if tag not in _SCALAR_TAGS:
            self._problem(node, path, f"tag {_short_tag(tag)} is not allowed", _TAG_HINT)
            return None
        kind = tag.removeprefix(_TAG)
        if kind == "str":
            return value
        if kind == "null":
            if re.fullmatch(r"~|null|Null|NULL|", value):
                return None
        elif kind == "bool":
            if value.lower() in ("true", "false"):
                return value.lower() == "true"
        elif kind == "int":
            parsed = _int(value)
            if parsed is not None:
                return parsed
        else:
            try:
                return _float(value)
            except ValueError:
                pass
        self._problem(node, path, f"{value!r} is not a valid !!{kind}")
        return None


_TAG_HINT = "socklab topologies are plain YAML: remove the tag"


def _int(text: str) -> int | None:
    try:
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text, 10)
    except ValueError:
        return None


def _error(filename: str, line: int | None, message: str, hint: str | None) -> TopologyError:
    return TopologyError([Problem(filename, line, "", message, hint)])


def _line(mark: Any) -> int | None:
    """The 1-based line of a YAML mark (libyaml's and PyYAML's marks both have ``line``)."""
    return int(mark.line) + 1 if mark is not None else None


def _short_tag(tag: str) -> str:
    """``tag:yaml.org,2002:python/object`` -> ``'!!python/object'``, as it was written."""
    return repr("!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag)


def _is_merge(key: Node) -> bool:
    return isinstance(key, ScalarNode) and key.tag == _MERGE


def _float(text: str) -> float:
    special = {".inf": "inf", "+.inf": "inf", "-.inf": "-inf", ".nan": "nan"}
    return float(special.get(text.lower(), text))
