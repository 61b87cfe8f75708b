"""The shared pieces of the topology models: the strict base model, name patterns, commands."""

from __future__ import annotations

import shlex
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

LAB_NAME = r"^[a-z][a-z0-9-]{0,30}$"
NODE_NAME = r"^[a-z][a-z0-9-]{0,40}$"
NET_NAME = r"^[a-z][a-z0-9_-]{0,30}$"

LabName = Annotated[str, StringConstraints(pattern=LAB_NAME)]
NodeName = Annotated[str, StringConstraints(pattern=NODE_NAME)]
NetName = Annotated[str, StringConstraints(pattern=NET_NAME)]
HostName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$")]
Seconds = Annotated[float, Field(gt=0, le=3600)]


class Strict(BaseModel):
    """Base of every model: unknown keys are errors, values are not coerced from other types."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def split_command(value: Any) -> Any:
    """A command is an argv list, or a string split with shell rules (never run by a shell).

    Numbers in an argv list (``[sleep, 5]``) are taken as their text. A ``ValueError``
    message may carry a hint after `` — ``.
    """
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ValueError(
                f"cannot split command {value!r}: {exc} — close the quote, or give an argv list"
            ) from None
        if not argv:
            raise ValueError("empty command — give a command line or an argv list")
        return argv
    if isinstance(value, list):
        if not value:
            raise ValueError("empty command — give a command line or an argv list")
        return [str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x for x in value]
    return value


Command = Annotated[list[str], BeforeValidator(split_command), Field(min_length=1)]
"""An argv list; a string is split with shell rules."""


def not_a_number(value: Any, expected: str) -> Any:
    """Addresses are text: pydantic would read ``5`` as ``0.0.0.5`` and ``1`` as ``::1``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"expected {expected}, got {value}")
    return value
