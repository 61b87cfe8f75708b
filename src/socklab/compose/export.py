"""Export a planned lab: a docker-compose file for one host, or a stack file for a Swarm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from socklab.compose.document import Images, to_yaml
from socklab.compose.local import export_local
from socklab.compose.stack import stack_document, stack_plan
from socklab.compose.warning import ComposeWarning
from socklab.topology.errors import SourceMap
from socklab.topology.model import Topology
from socklab.topology.plan import LabPlan


@dataclass(frozen=True)
class Exported:
    """A compose document and every key of the lab it could not hold as socklab does."""

    lab: str
    swarm: bool
    document: dict[str, Any]
    warnings: tuple[ComposeWarning, ...]

    def yaml(self) -> str:
        how = (
            f"docker stack deploy -c FILE {self.lab}" if self.swarm else f"docker-compose -p {self.lab} up -d"
        )
        kind = "Swarm stack" if self.swarm else "compose file"
        return to_yaml(
            self.document,
            f"lab '{self.lab}' as a {kind}, written by `socklab compose export`\nrun it with `{how}`",
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "swarm": self.swarm,
            "compose": self.document,
            "warnings": [w.as_dict() for w in self.warnings],
        }


def export_compose(
    topo: Topology, plan: LabPlan, images: Images, *, swarm: bool = False, source: SourceMap | None = None
) -> Exported:
    """The lab as a compose file (``swarm``: a stack file). ``plan`` is the topology's plan;
    ``source``, its file as read, places warnings at their lines."""
    if swarm:
        stack = stack_plan(topo, plan, images, source)
        return Exported(topo.name, True, stack_document(stack), stack.warnings)
    document, warnings = export_local(topo, plan, images, source)
    return Exported(topo.name, False, document, warnings.in_order())
