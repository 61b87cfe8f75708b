"""One event per line: JSON on stdout, a readable line on stderr (or readable stdout with --human).

Every event carries ``ts`` (unix time, float), ``app`` (the command name, or the name the node
supervisor gave this instance, such as ``tcp-server#2``), ``event`` and ``pid``,
then event-specific fields such as ``peer`` (``"ip:port"``, ``"[ip6]:port"`` or ``"unix:PATH"``).
Error events also carry ``errno`` (name), ``errno_number`` and ``message``.
Lines are written whole and flushed at once, so a supervisor waiting for
``"event": "listening"`` sees it as soon as the socket listens, and forked
children never duplicate buffered output.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import IO, Any, Callable, Optional

from socklab.nodes import APP_NAME_ENV
from socklab.nodes.errnos import describe_error, error_fields


class EventLog:
    """Writes the events of one app."""

    def __init__(
        self,
        app: str,
        human: bool = False,
        out: Optional[IO[str]] = None,
        err: Optional[IO[str]] = None,
    ) -> None:
        self.app = instance_name(app)
        self.human = human
        self._out = out
        self._err = err
        self._lock = threading.Lock()

    def emit(
        self, event: str, text: Optional[str] = None, quiet: bool = False, **fields: Any
    ) -> dict[str, Any]:
        """Write one event; ``text`` replaces the default readable rendering of ``fields``.

        A ``quiet`` event is recorded (the JSON line) but not shown to people (no readable
        line): a retry that is no failure yet."""
        record: dict[str, Any] = {"ts": round(time.time(), 6), "app": self.app, "event": event}
        record["pid"] = os.getpid()
        record.update(fields)
        readable = f"{self.app}: {text if text is not None else render_fields(event, fields)}"
        out = self._out if self._out is not None else sys.stdout
        err = self._err if self._err is not None else sys.stderr
        with self._lock:
            if self.human:
                if not quiet:
                    _write_line(out, readable)
            else:
                _write_line(out, json.dumps(record, default=str))
                if not quiet:
                    _write_line(err, readable)
        return record

    def error(
        self, exc: BaseException, target: str = "", action: str = "", hint: str = "", **fields: Any
    ) -> dict[str, Any]:
        """Write an ``error`` event for ``exc`` (errno name and number, meaning, target, hint)."""
        message = describe_error(exc, target=target, action=action)
        if hint:
            message += f" ({hint})"
        data = error_fields(exc)
        data.update(fields)
        if target:
            data.setdefault("peer", target)
        if action:
            data.setdefault("call", action)
        data["message"] = message
        return self.emit("error", text=message, **data)

    def failure(self, message: str, **fields: Any) -> dict[str, Any]:
        """Write an ``error`` event that has no errno (a wrong echo, a missing argument...)."""
        return self.emit("error", text=message, errno=None, errno_number=None, message=message, **fields)


def instance_name(app: str) -> str:
    """``app``, or the supervisor's name for this instance of it (``$SOCKLAB_APP``, e.g.
    ``tcp-server#2``); a name given to another command (this app's parent) is not ours."""
    given = os.environ.get(APP_NAME_ENV, "")
    return given if given.startswith(app + "#") else app


def render_fields(event: str, fields: dict[str, Any]) -> str:
    parts = [event]
    if isinstance(fields.get("peer"), str):
        parts.append(fields["peer"])
    for key, value in fields.items():
        if key == "peer" or value is None or value == "":
            continue
        if isinstance(value, (dict, list)):
            value = json.dumps(value, default=str)
        parts.append(f"{key}={value}")
    return " ".join(parts)


def _write_line(stream: IO[str], line: str) -> None:
    try:
        stream.write(line + "\n")
        stream.flush()
    except (BrokenPipeError, ValueError):
        # the reader went away (a closed pipe, a closed stream at exit): events are best effort
        pass


def resolver_retry(host: str, log: EventLog) -> "Callable[[BaseException], None]":
    """A quiet ``retry`` event for a name lookup asked again (EAI_AGAIN)."""

    def record(exc: BaseException) -> None:
        fields = error_fields(exc)
        log.emit(
            "retry",
            quiet=True,
            host=host,
            call="getaddrinfo",
            message=describe_error(exc, target=host),
            **fields,
        )

    return record
