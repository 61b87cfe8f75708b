"""Compose and Swarm: a lab as a compose file or a stack file, a compose project as a lab.

Pure: topology in, document out (and back); nothing here talks to Docker.
"""

from socklab.compose.document import Images
from socklab.compose.export import Exported, export_compose
from socklab.compose.stack import ServicePlan, StackPlan, stack_plan, unsupported
from socklab.compose.warning import ComposeWarning

__all__ = [
    "ComposeWarning",
    "Exported",
    "Images",
    "ServicePlan",
    "StackPlan",
    "export_compose",
    "stack_plan",
    "unsupported",
]
