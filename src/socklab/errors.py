"""The user-facing errors: a message and a hint, printed by the CLI without a traceback.

Every one is a :class:`LabError`; the subclasses let a library caller catch exactly what
they mean (``except NodeNotFound``). Exit codes belong to the CLI.
"""

from __future__ import annotations


class LabError(Exception):
    """Something the user can act on. ``exit_code`` is what the CLI exits with: 2 for bad
    input, 1 for a failed run."""

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nHint: {self.hint}"


class DaemonUnavailable(LabError):
    """No Docker daemon answers (not started, or DOCKER_HOST points nowhere)."""


class LabAlreadyUp(LabError):
    """A lab of that name is already up on this host."""


class NodeNotFound(LabError):
    """No node (or no running node) of the lab has that name or matches that selector."""


class NodeNotRunning(LabError):
    """The node exists but is not running (exited, paused...)."""


class CommandNotFound(LabError):
    """The command of an exec is not in the node (exit 127, as a shell says it)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint, exit_code=127)


class ExecTimeout(LabError):
    """A command run in a node did not finish in time; what it printed so far is kept."""

    def __init__(self, message: str, hint: str | None = None, *, stdout: str = "", stderr: str = "") -> None:
        super().__init__(message, hint, exit_code=124)
        self.stdout = stdout
        self.stderr = stderr
