"""What a conversion could not carry over: one warning per key, with its place in the source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from socklab.topology.errors import DocPath, SourceMap, format_path


@dataclass(frozen=True)
class ComposeWarning:
    """A key of the source document the other format cannot hold (or holds differently).

    Renders like a topology problem: ``FILE:LINE: PATH: MESSAGE``.
    """

    path: str
    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file and self.line else self.file or ""
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"{where}: {text}" if where else text

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "path": self.path, "message": self.message}


class Warnings:
    """Collects warnings about one source document, placing each by its key path."""

    def __init__(self, source: SourceMap | None = None) -> None:
        self.source = source
        self.items: list[ComposeWarning] = []

    def add(self, path: DocPath, message: str) -> None:
        src = self.source
        self.items.append(
            ComposeWarning(
                format_path(path),
                message,
                src.filename if src else None,
                src.line(path) if src and path else None,
            )
        )

    def in_order(self) -> tuple[ComposeWarning, ...]:
        """By line in the source (warnings about the whole document first), then as added."""
        return tuple(sorted(self.items, key=lambda w: w.line or 0))
