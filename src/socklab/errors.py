"""The one user-facing error type: a message and a hint, printed by the CLI without a traceback."""

from __future__ import annotations


class LabError(Exception):
    """Something the user can act on. ``exit_code`` is 2 for bad input, 1 for a failed run."""

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nHint: {self.hint}"
