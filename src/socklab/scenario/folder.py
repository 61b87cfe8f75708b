"""The run folder: made before a run writes to it, or emptied of an earlier run's files.

A folder is a socklab run folder when it holds a ``report.json`` that a run wrote. Reusing
one (``--report DIR`` twice) removes what the earlier run wrote there, so no stale log or
snapshot survives; any other non-empty directory is refused rather than written into.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from socklab.errors import LabError

#: What a run writes into its folder (``report.write_all``, the collector, snapshot and
#: capture steps): a new kind of output of a run belongs here.
RUN_FILES = ("report.json", "report.html", "junit.xml", "logs", "sockets", "captures")


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds the ``report.json`` of a socklab run."""
    try:
        data = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"lab", "scenario", "steps"} <= set(data)


def prepare(folder: Path) -> Path:
    """Make ``folder`` (and its parents), or empty it of an earlier run; a clear
    :class:`LabError` when it cannot be used."""
    hint = "give --report a new or empty directory, e.g. --report runs/mine"
    if folder.exists() and not folder.is_dir():
        raise LabError(f"cannot use {folder} as the run folder: it is a file", hint)
    try:
        if folder.is_dir() and any(folder.iterdir()):
            if not is_run_folder(folder):
                raise LabError(
                    f"{folder} is not empty and is not a socklab run folder (it has no report.json)", hint
                )
            for name in RUN_FILES:
                path = folder / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif path.exists() or path.is_symlink():
                    path.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".socklab-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise LabError(f"cannot use {folder} as the run folder: {reason}", hint) from None
    return folder


def prepare_junit(path: Path) -> Path:
    """The directory of ``--junit FILE`` made, and FILE not a directory."""
    if path.is_dir():
        raise LabError(f"--junit {path} is a directory", "give a file, e.g. --junit junit.xml")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabError(
            f"cannot write --junit {path}: {exc.strerror or type(exc).__name__}",
            "give a file in a directory you can write, e.g. --junit junit.xml",
        ) from None
    return path
