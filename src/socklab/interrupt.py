"""SIGINT, SIGTERM and SIGHUP as one kind of interruption, and teardown that holds them.

A CI job that is cancelled or times out gets SIGTERM (a closed terminal: SIGHUP); socklab
treats them like Ctrl-C: ``up`` rolls back, ``run`` tears down and writes its report. The
CLI calls :func:`install` once; the library's teardown runs inside :func:`held`, so a
second signal waits until the lab is removed.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


class Interrupted(KeyboardInterrupt):
    """The process got SIGINT, SIGTERM or SIGHUP. A KeyboardInterrupt, so every Ctrl-C path
    (rollback, teardown, report) serves the other two as well."""

    def __init__(self, signum: int) -> None:
        super().__init__(NAMES.get(signal.Signals(signum), f"signal {signum}"))
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """As a shell reports a process killed by the signal: 128 + its number."""
        return 128 + self.signum


_fired: list[int] = []


def fired() -> int | None:
    """The signal this process was interrupted by (through :func:`install`), if any."""
    return _fired[0] if _fired else None


def exit_code(exc: BaseException) -> int:
    """The exit code for an interruption: 143 for SIGTERM, 129 for SIGHUP, 130 for Ctrl-C."""
    return exc.exit_code if isinstance(exc, Interrupted) else 130


def describe(exc: BaseException) -> str:
    """``Ctrl-C``, ``SIGTERM`` or ``SIGHUP``."""
    return str(exc.args[0]) if isinstance(exc, Interrupted) and exc.args else "Ctrl-C"


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    if _fired:  # already interrupted: the teardown under way is not cut short
        return
    _fired.append(signum)
    raise Interrupted(signum)


def install(signals: tuple[signal.Signals, ...] = SIGNALS, *, only_default: bool = False) -> None:
    """Make these signals raise :class:`Interrupted` in the main thread (once; later ones
    are held while the first one's teardown runs). For the CLI's process; the pytest plugin
    takes SIGTERM and SIGHUP ``only_default``: where nobody else handles them."""
    if threading.current_thread() is threading.main_thread():
        for sig in signals:
            if not only_default or signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, _on_signal)


@contextmanager
def held() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block is done (a half-removed lab is worse
    than a late exit); then raise :class:`Interrupted` for the first one that came, unless
    an interruption is already on its way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    previous = {sig: signal.signal(sig, lambda s, _f: came.append(s)) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if came and not _fired and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
        _fired.append(came[0])
        raise Interrupted(came[0])
