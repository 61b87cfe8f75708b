"""What a scenario run produced: one result per step, with what each node did."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["passed", "failed", "error"]


@dataclass
class NodeOutput:
    """One command's run in one node."""

    node: str
    exit_code: int
    stdout: str
    stderr: str
    duration: float
    errno: str | None = None

    def summary(self, width: int = 80) -> str:
        """A short quote of what the command said, for failure messages."""
        text = next((ln for ln in reversed(self.stderr.splitlines()) if ln.strip()), "")
        if not text:
            text = next((ln for ln in self.stdout.splitlines() if ln.strip()), "")
        return text if len(text) <= width else text[: width - 1] + "…"


@dataclass
class StepResult:
    """The outcome of one step; ``children`` are a ``parallel`` step's steps."""

    index: str
    kind: str
    title: str
    status: Status
    started: float
    duration: float
    detail: str = ""
    outputs: list[NodeOutput] = field(default_factory=list)
    children: list[StepResult] = field(default_factory=list)
    snapshot: dict[str, list[dict[str, Any]]] | None = None
    fault: dict[str, Any] | None = None
    """what a ``fault`` step did: action, nodes, message (``FaultResult.as_dict``)"""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def leaves(self) -> list[StepResult]:
        """This step and every step inside it, in order."""
        return [self, *(leaf for child in self.children for leaf in child.leaves())]


@dataclass
class RunResult:
    """A whole run: the lab, the scenario, every step, and the evidence collected."""

    lab: str
    scenario: str
    topology: dict[str, Any]
    started: float
    duration: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    connections: list[dict[str, Any]] = field(default_factory=list)
    graph: dict[str, Any] | None = None
    """the lab's graph (``LabGraph.as_dict``: networks, nodes, links), the one ``socklab
    graph`` gives: planned at the start, with the running addresses once collected"""
    run_dir: str = ""
    error: str | None = None
    interrupted: str | None = None
    """what stopped the run early: ``Ctrl-C``, ``SIGTERM`` or ``SIGHUP``"""

    @property
    def passed(self) -> bool:
        return self.error is None and all(s.passed for s in self.steps)

    @property
    def reports(self) -> dict[str, str]:
        """Where the run's reports are: ``html``, ``json`` and ``junit`` paths."""
        folder = self.run_dir.rstrip("/")
        return {
            "html": f"{folder}/report.html",
            "json": f"{folder}/report.json",
            "junit": f"{folder}/junit.xml",
        }

    def all_steps(self) -> list[StepResult]:
        return [leaf for step in self.steps for leaf in step.leaves()]

    def to_json(self) -> str:
        data = asdict(self)
        data["passed"] = self.passed
        return json.dumps(data, indent=2, default=str)
