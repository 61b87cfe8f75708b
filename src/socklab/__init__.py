"""socklab: a containerized multi-node sockets lab.

``Lab`` and friends are imported on first use, so that ``socklab.nodes`` (run
inside containers, standard library only) never pulls in pydantic or docker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from socklab.errors import LabError

if TYPE_CHECKING:
    from socklab.lab import ExecResult, Lab, LabNode

__all__ = ["ExecResult", "Lab", "LabError", "LabNode"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in {"ExecResult", "Lab", "LabNode"}:
        from socklab import lab

        return getattr(lab, name)
    raise AttributeError(name)
