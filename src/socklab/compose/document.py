"""A compose document as YAML text, and the images its services run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from socklab.compose.warning import Warnings
from socklab.topology.plan import ContainerPlan


@dataclass(frozen=True)
class Images:
    """The images of an exported lab: socklab's node image by its content tag, and for a
    node's own ``image:``, the image that adds socklab's node supervisor to it (when made)."""

    node: str
    supervised: Mapping[str, str] = field(default_factory=dict)

    def of(self, spec: ContainerPlan, warnings: Warnings) -> str:
        """The image a node's service runs: its own image when it runs its own program (as
        compose runs it), that image with the node supervisor added when the supervisor runs
        its start commands, else socklab's node image."""
        if not spec.supervised:
            return spec.image or self.node
        if not spec.image:
            return self.node
        if spec.image not in self.supervised:
            warnings.add(
                ("nodes", spec.node, "image"),
                f"'{spec.image}' is used as it is: its node supervisor must be on its PATH as "
                "`socklab-node` (`socklab up` copies it in at start)",
            )
        return self.supervised.get(spec.image, spec.image)


def escape_dollars(value: Any) -> Any:
    """Every ``$`` of every string value written ``$$``: compose and ``docker stack deploy``
    read ``$NAME`` as a variable of the shell that runs them."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_dollars(v) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    """Block style, keys in the order given, lists indented under their key; a short list
    of plain values on one line (``[socklab-node]``)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(isinstance(x, str | int | float) for x in data) and len(str(data)) <= 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data.rstrip("\n") and data == data.rstrip(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(list, _list)
_Dumper.add_representer(str, _str)


def to_yaml(document: Mapping[str, Any], header: str = "") -> str:
    """YAML text of a document (plain data), with ``header`` lines as comments on top."""
    text = yaml.dump(
        dict(document),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,  # long values stay on one line
    )
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comment + text
