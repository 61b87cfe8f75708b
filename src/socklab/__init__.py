"""socklab: a containerized multi-node sockets lab.

``Lab`` and friends are imported on first use, so that ``socklab.nodes`` (run
inside containers, standard library only) never pulls in pydantic or docker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from socklab.errors import (
    CommandNotFound,
    DaemonUnavailable,
    ExecTimeout,
    LabAlreadyUp,
    LabError,
    NodeNotFound,
    NodeNotRunning,
)

if TYPE_CHECKING:
    from socklab.lab import ExecResult, Lab, LabNetwork, LabNode
    from socklab.observe.connections import Connection
    from socklab.observe.sockets import SocketRow
    from socklab.observe.timeline import Event
    from socklab.orchestrator.faults import FaultResult, NodeFaults
    from socklab.scenario.results import RunResult, StepResult
    from socklab.topology.errors import TopologyError

__all__ = [
    "CommandNotFound",
    "Connection",
    "DaemonUnavailable",
    "Event",
    "ExecResult",
    "ExecTimeout",
    "FaultResult",
    "Lab",
    "LabAlreadyUp",
    "LabError",
    "LabNetwork",
    "LabNode",
    "NodeFaults",
    "NodeNotFound",
    "NodeNotRunning",
    "RunResult",
    "SocketRow",
    "StepResult",
    "TopologyError",
]
__version__ = "0.1.0"

_LAZY = {
    "ExecResult": "socklab.lab",
    "Lab": "socklab.lab",
    "LabNetwork": "socklab.lab",
    "LabNode": "socklab.lab",
    "Connection": "socklab.observe.connections",
    "SocketRow": "socklab.observe.sockets",
    "Event": "socklab.observe.timeline",
    "FaultResult": "socklab.orchestrator.faults",
    "NodeFaults": "socklab.orchestrator.faults",
    "RunResult": "socklab.scenario.results",
    "StepResult": "socklab.scenario.results",
    "TopologyError": "socklab.topology.errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
