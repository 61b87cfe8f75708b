"""``errno NAME``: make the kernel return that errno for real and tell how it arose.

``errno --list`` shows every errno of the notes' table: its number and meaning, whether
it is reproducible on Linux (how, or why not), what it needs (a capability), and what
``--host/--port`` aim at when a lab peer can produce it instead of the local default.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional

from socklab.nodes.arguments import app_parser, port_number, positive_float
from socklab.nodes.errno_cases import (
    NOT_REPRODUCIBLE,
    REPRODUCTIONS,
    MissingCapability,
    Target,
    Trial,
    runnable_here,
)
from socklab.nodes.errnos import (
    NOTES_BY_NAME,
    describe_error,
    errno_number,
    error_fields,
)
from socklab.nodes.events import EventLog

APP = "errno"


def build_parser() -> argparse.ArgumentParser:
    parser = app_parser(APP, "Reproduce an errno of the notes' table for real, or list them all.")
    parser.add_argument(
        "name", metavar="NAME", nargs="?", help="errno to reproduce, e.g. ECONNREFUSED"
    )
    parser.add_argument("--list", action="store_true", help="every errno of the notes' table")
    parser.add_argument("--json", action="store_true", help="with --list: one JSON object")
    parser.add_argument("--host", help="lab peer for the errnos that accept one")
    parser.add_argument(
        "--port",
        type=port_number,
        help="port of the lab peer (1..65535); needs --host, except for ECONNREFUSED "
        "(connects to 127.0.0.1:PORT) and EADDRINUSE (binds 0.0.0.0:PORT)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=5.0,
        help="seconds to wait for an answer (default 5)",
    )
    return parser


def known_names() -> list[str]:
    return sorted(set(NOTES_BY_NAME) | set(REPRODUCTIONS))


def catalogue() -> list[dict[str, Any]]:
    """One row per errno: the notes' meaning and whether/how socklab reproduces it."""
    rows = []
    for name in known_names():
        info = NOTES_BY_NAME.get(name)
        reproduction = REPRODUCTIONS.get(name)
        row: dict[str, Any] = {
            "name": name,
            "number": errno_number(name),
            "as_written_in_notes": info.as_written if info and info.as_written else None,
            "perror": info.perror if info else None,
            "cause": info.cause if info else None,
            "in_notes": info is not None,
            "reproducible": reproduction is not None,
        }
        if reproduction is not None:
            runnable, missing = runnable_here(reproduction)
            row.update(
                how=reproduction.how,
                needs=reproduction.needs or None,
                lab_peer=reproduction.lab_peer or None,
                runnable_here=runnable,
                missing=missing or None,
            )
        else:
            row.update(why_not=NOT_REPRODUCIBLE.get(name, "no reproduction known"))
        rows.append(row)
    return rows


def show_list(args: argparse.Namespace) -> int:
    rows = catalogue()
    if args.json:
        print(json.dumps({"errnos": rows}), flush=True)
        return 0
    log = EventLog(APP, human=args.human)
    for row in rows:
        verdict = "yes" if row["reproducible"] else "no "
        detail = str(row.get("how") or row.get("why_not") or "")
        if row.get("needs"):
            detail += f" [needs {row['needs']}]"
        if row.get("lab_peer"):
            detail += f" [lab peer: {row['lab_peer']}]"
        number = row["number"] if row["number"] is not None else "-"
        text = f"{row['name']:<16} {number:>4}  {verdict}  {detail}"
        log.emit("errno", text=text, **row)
    return 0


def reproduce(args: argparse.Namespace) -> int:
    log = EventLog(APP, human=args.human)
    name = args.name.upper()
    if name == "EAGAIN":
        name = "EWOULDBLOCK"
    if name not in REPRODUCTIONS:
        if name in NOT_REPRODUCIBLE:
            log.failure(
                f"{name} is not reproducible on Linux here: {NOT_REPRODUCIBLE[name]}",
                errno_wanted=name,
            )
        else:
            log.failure(
                f"unknown errno {args.name}; known: {', '.join(known_names())}", errno_wanted=name
            )
        return 2 if name not in NOT_REPRODUCIBLE else 1
    reproduction = REPRODUCTIONS[name]
    if args.port is not None and not args.host and not reproduction.port_alone:
        if reproduction.lab_peer:
            message = (
                f"--port needs --host for {name} (lab peer: {reproduction.lab_peer}); "
                f"without both, {name} is reproduced locally"
            )
        else:
            message = f"{name} takes no --port: it is reproduced locally ({reproduction.how})"
        log.failure(message, errno_wanted=name)
        return 2
    trial = Trial(Target(args.host, args.port, args.timeout))
    info = NOTES_BY_NAME.get(name)
    expected = errno_number(name)
    try:
        with trial.stack:
            reproduction.run(trial)
    except MissingCapability as exc:
        log.error(
            exc.cause,
            action=trial.call or "setup",
            errno_wanted=name,
            hint=f"reproducing {name} here needs {exc.capability}",
        )
        return 1
    except OSError as exc:
        fields = error_fields(exc)
        if fields["errno_number"] == expected:
            message = f"{name} ({expected}) reproduced: {trial.call} -> {fields['strerror']}"
            log.emit(
                "reproduced",
                text=message,
                call=trial.call,
                how=reproduction.how,
                cause=info.cause if info else None,
                message=message,
                **fields,
            )
            return 0
        log.error(
            exc,
            action=trial.call,
            errno_wanted=name,
            hint=f"expected {name} ({expected}) — {describe_error(exc)}",
        )
        return 1
    except RuntimeError as exc:
        log.failure(f"{name} not reproduced: {exc}", errno_wanted=name, call=trial.call)
        return 1
    log.failure(
        f"{name} not reproduced: {trial.call} succeeded", errno_wanted=name, call=trial.call
    )
    return 1


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        return show_list(args)
    if not args.name:
        parser.error("give an errno NAME or --list")
    return reproduce(args)


if __name__ == "__main__":
    sys.exit(main())
