"""The JSON Schema of topology files, for editors (``socklab schema``).

Pydantic's schema describes the models after validation; editors see the YAML
as written, so the short forms the loader accepts are added here: a command as
one string (a start command, a step's ``cmd``, a node's ``command``),
``networks: [lan, wan]``, ports as ``"8080:80/udp"``, ``lan:`` with no value, numbers in
``env``; impairment values (``5%``, ``40ms``, ``1mbit``) carry their own schema. Names
of networks, nodes and scenarios are checked with ``propertyNames``.
"""

from __future__ import annotations

import copy
from typing import Any

from socklab.topology.docstrings import DescribedFields
from socklab.topology.model import Topology

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_NULL = {"type": "null"}
_COMMAND_STRING = {"type": "string", "minLength": 1, "description": "split with shell rules"}
_PORT_STRING = {
    "type": "string",
    "pattern": r"^(?:(?:\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]):)?(?:\d+:)?\d+(?:/(?:tcp|udp))?$",
    "description": "CONTAINER, HOST:CONTAINER or IP:HOST:CONTAINER, with /udp for UDP",
}


def _command(argv: dict[str, Any]) -> dict[str, Any]:
    """A command: one string split with shell rules, or an argv list (numbers taken as text)."""
    argv = {**argv, "items": {"type": ["string", "number"]}}
    return {"anyOf": [_COMMAND_STRING, argv]}


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a topology file, with its short forms."""
    schema = copy.deepcopy(Topology.model_json_schema(schema_generator=DescribedFields))
    defs: dict[str, Any] = schema.get("$defs", {})
    _named_maps(schema)
    for sub in defs.values():
        _named_maps(sub)
    props = schema.get("properties", {})
    for key in ("networks", "nodes"):
        _nullable_values(props.get(key))
    node = defs.get("Node", {}).get("properties", {})
    if "networks" in node:
        _nullable_values(node["networks"])
        names = {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True}
        node["networks"] = _described(
            {"anyOf": [node["networks"], names], "title": "Networks"}, node["networks"]
        )
    if "start" in node:
        start = node["start"]
        one = start.get("items", {})  # a {cmd, wait} mapping
        argv = {"type": "array", "items": {"type": ["string", "number"]}, "minItems": 1}
        start["items"] = {"anyOf": [_COMMAND_STRING, argv, one]}
        node["start"] = _described(
            {"anyOf": [_COMMAND_STRING, one, start], "default": [], "title": "Start"}, start
        )
    command = node.get("command", {})
    argv_or_null = command.get("anyOf", [])
    if any(a.get("type") == "array" for a in argv_or_null):
        node["command"] = _described(
            {"anyOf": [_COMMAND_STRING, *argv_or_null], "default": None, "title": "Command"}, command
        )
    env = node.get("env", {})
    if "additionalProperties" in env:
        env["additionalProperties"] = {"type": ["string", "number", "boolean"]}
    for spec in ("StartCommand", "StartSpec", "RunSpec"):
        cmd = defs.get(spec, {}).get("properties", {}).get("cmd")
        if cmd is not None:
            defs[spec]["properties"]["cmd"] = _described({**_command(cmd), "title": "Cmd"}, cmd)
    if "Port" in defs:
        port = defs["Port"]
        short = {"type": "integer", "minimum": 1, "maximum": 65535}
        defs["Port"] = {
            "title": port.pop("title", "Port"),
            "description": port.pop("description", ""),
            "anyOf": [port, short, _PORT_STRING],
        }
    handshake = defs.get("ExpectCaptureSpec", {}).get("properties", {}).get("handshake")
    if handshake is not None:
        words = {"type": "string", "description": "steps separated by spaces: SYN SYN-ACK ACK"}
        handshake["anyOf"] = [words, *handshake.get("anyOf", [])]
    if "dns" in props and "DnsRecord" in defs:
        records = {"type": "array", "items": {"$ref": "#/$defs/DnsRecord"}}
        props["dns"] = {"anyOf": [*props["dns"].get("anyOf", [props["dns"]]), records]}
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "socklab topology",
        "description": "A socklab lab: networks, nodes (one container each) and scenarios.",
        **{k: v for k, v in schema.items() if k not in ("title", "description", "$id")},
    }


def _described(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """A rewritten property keeps the model's description of it."""
    return {**new, "description": old["description"]} if "description" in old else new


def _named_maps(schema: Any) -> None:
    """``patternProperties: {P: S}`` -> ``propertyNames: {pattern: P}, additionalProperties: S``.

    Editors then flag a badly named node instead of silently accepting it.
    """
    if isinstance(schema, dict):
        pattern_props = schema.get("patternProperties")
        if isinstance(pattern_props, dict) and len(pattern_props) == 1:
            ((pattern, value),) = pattern_props.items()
            del schema["patternProperties"]
            schema["propertyNames"] = {"pattern": pattern}
            schema["additionalProperties"] = value
        for value in schema.values():
            _named_maps(value)
    elif isinstance(schema, list):
        for value in schema:
            _named_maps(value)


def _nullable_values(schema: Any) -> None:
    """``lan:`` with nothing after it is the same as ``lan: {}``."""
    if isinstance(schema, dict) and isinstance(schema.get("additionalProperties"), dict):
        schema["additionalProperties"] = {"anyOf": [schema["additionalProperties"], _NULL]}
