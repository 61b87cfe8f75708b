"""``errno NAME``: make the kernel return that errno for real and tell how it arose.

NAME may be written as the notes write it (EBAUDF, ESTDADREQ, ENETREACH, ENPROTOPT, EPPIPE,
EPROTOSUPPORT, ENAMOUNT, ENOSRBUFS, EPROTOSUPP): it is taken for the Linux name it means.
A name with several causes in the notes (EINVAL) is reproduced once per cause.
``errno --list`` shows the notes' table row by row, the errnos the notes name elsewhere
(accept, socketpair, getsockname, inet_pton), and the resolver's failures: each with its
number and meaning, what Linux really does where the notes are wrong, whether it is
reproducible here (how, or why not), what it needs (a capability), and what
``--host/--port`` aim at when a lab peer can produce it instead of the local default.
"""

from __future__ import annotations

import argparse
import difflib
import json
import socket
import sys
from typing import Any, Optional

from socklab.nodes.arguments import app_parser, port_number, positive_float
from socklab.nodes.errno_cases import (
    NOT_REPRODUCIBLE,
    REPRODUCTIONS,
    MissingCapability,
    Reproduction,
    Target,
    Trial,
    runnable_here,
)
from socklab.nodes.errnos import (
    NOTES_ELSEWHERE,
    NOTES_SPELLINGS,
    NOTES_TABLE,
    RESOLVER_FAILURES,
    NotesRow,
    describe_error,
    errno_number,
    error_fields,
)
from socklab.nodes.events import EventLog

APP = "errno"
_H_ERRNO_NUMBERS = {"HOST_NOT_FOUND": 1, "TRY_AGAIN": 2, "NO_RECOVERY": 3, "NO_DATA": 4}


def build_parser() -> argparse.ArgumentParser:
    parser = app_parser(APP, "Reproduce an errno of the notes' table for real, or list them all.")
    parser.add_argument("name", metavar="NAME", nargs="?", help="errno to reproduce, e.g. ECONNREFUSED")
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


def known_names() -> "list[str]":
    """Every errno name ``errno NAME`` knows (reproducible or explained)."""
    named = {row.name for row in (*NOTES_TABLE, *NOTES_ELSEWHERE)}
    return sorted(named | set(REPRODUCTIONS))


def resolver_names() -> "dict[str, str]":
    """h_errno and EAI_* names, and the notes' spellings of them -> the h_errno of their row."""
    names = {}
    for failure in RESOLVER_FAILURES:
        names[failure.h_errno] = names[failure.eai] = failure.h_errno
        names[failure.as_written] = failure.h_errno
    return names


def _reproduction_for(entry: NotesRow) -> Optional[Reproduction]:
    found = REPRODUCTIONS.get(entry.name, [])
    exact = [r for r in found if r.row is not None and r.row == entry.row]
    candidates = exact or [r for r in found if r.row is None] or found
    return candidates[0] if candidates else None


def _errno_row(entry: NotesRow) -> "dict[str, Any]":
    reproduction = _reproduction_for(entry)
    row: "dict[str, Any]" = {
        "kind": "errno",
        "row": entry.row,
        "where": entry.where,
        "name": entry.name,
        "number": errno_number(entry.name),
        "as_written_in_notes": entry.as_written or None,
        "perror": entry.perror or None,
        "cause": entry.cause or None,
        "linux": entry.linux or None,
        "in_notes": entry.where != "not in the notes",
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
        row.update(why_not=NOT_REPRODUCIBLE.get(entry.name, "no reproduction known"))
    return row


def catalogue() -> "list[dict[str, Any]]":
    """The notes' table row by row, the errnos the notes name elsewhere, the reproducible
    errnos the notes do not name, then the resolver's failures."""
    rows = [_errno_row(entry) for entry in (*NOTES_TABLE, *NOTES_ELSEWHERE)]
    named = {entry.name for entry in (*NOTES_TABLE, *NOTES_ELSEWHERE)}
    for name in sorted(set(REPRODUCTIONS) - named):
        rows.append(_errno_row(NotesRow(None, name, "", "", where="not in the notes")))
    for failure in RESOLVER_FAILURES:
        rows.append(
            {
                "kind": "resolver",
                "row": None,
                "where": "resolver (gethostbyname_ex, gethostbyaddr: h_errno; getaddrinfo: EAI_*)",
                "name": failure.h_errno,
                "number": _H_ERRNO_NUMBERS[failure.h_errno],
                "eai": failure.eai,
                "eai_number": getattr(socket, failure.eai, None),
                "as_written_in_notes": failure.as_written,
                "cause": failure.meaning,
                "dns_answer": failure.dns_answer,
                "in_notes": True,
                "reproducible": True,
                "how": f"`resolve NAME` against a DNS server that answers {failure.dns_answer} "
                "(dns-stub; the resolver lab)",
                "runnable_here": True,
            }
        )
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
        if row.get("linux") and row["reproducible"]:
            detail += f" [Linux: {row['linux']}]"
        number = row["number"] if row["number"] is not None else "-"
        name = row["name"] + (f"/{row['eai']}" if row.get("eai") else "")
        written = row["as_written_in_notes"]
        if written and written != row["name"]:
            name += f" ({written})"
        where = f"{row['row']:>2}" if row["row"] is not None else " -"
        text = f"{where} {name:<28} {number:>4}  {verdict}  {detail}"
        log.emit("errno", text=text, **row)
    return 0


def _unknown(asked: str, log: EventLog) -> int:
    choices = [*known_names(), *NOTES_SPELLINGS, *resolver_names()]
    close = difflib.get_close_matches(asked, choices, n=1)
    if close and close[0] in NOTES_SPELLINGS:
        hint = f"did you mean {NOTES_SPELLINGS[close[0]]} (written {close[0]} in the notes)?"
    elif close:
        hint = f"did you mean {close[0]}?"
    else:
        hint = f"known: {', '.join(known_names())}"
    log.failure(f"unknown errno {asked} — {hint}", errno_wanted=asked)
    return 2


def reproduce(args: argparse.Namespace) -> int:
    log = EventLog(APP, human=args.human)
    asked = args.name.upper()
    name = NOTES_SPELLINGS.get(asked, "EWOULDBLOCK" if asked == "EAGAIN" else asked)
    spelling = f"{asked} is how the notes write {name}" if asked in NOTES_SPELLINGS else ""
    if name in resolver_names():
        failure = next(f for f in RESOLVER_FAILURES if f.h_errno == resolver_names()[name])
        notes = name == failure.as_written != failure.h_errno
        written = f" (the notes' name of {failure.h_errno})" if notes else ""
        log.failure(
            f"{name}{written} is a resolver failure ({failure.h_errno}/{failure.eai}), not an errno: "
            f"`resolve NAME` against a DNS server that answers {failure.dns_answer} gives it "
            "(see the resolver lab)",
            errno_wanted=name,
        )
        return 1
    if name not in REPRODUCTIONS:
        if name in NOT_REPRODUCIBLE:
            log.failure(
                f"{name} is not reproducible on Linux here: {NOT_REPRODUCIBLE[name]}",
                errno_wanted=name,
            )
            return 1
        return _unknown(asked, log)
    variants = REPRODUCTIONS[name]
    first = variants[0]
    if args.port is not None and not args.host and not first.port_alone:
        if any(v.lab_peer for v in variants):
            peer = next(v.lab_peer for v in variants if v.lab_peer)
            message = (
                f"--port needs --host for {name} (lab peer: {peer}); "
                f"without both, {name} is reproduced locally"
            )
        else:
            message = f"{name} takes no --port: it is reproduced locally ({first.how})"
        log.failure(message, errno_wanted=name)
        return 2
    if spelling:
        log.emit("spelling", text=spelling, asked=asked, errno=name)
    results = [run_one(reproduction, args, name, asked, log) for reproduction in variants]
    return max(results)


def run_one(
    reproduction: Reproduction, args: argparse.Namespace, name: str, asked: str, log: EventLog
) -> int:
    """One reproduction: 0 when the kernel returned the errno, 1 otherwise (reported)."""
    trial = Trial(Target(args.host, args.port, args.timeout))
    info = next((r for r in NOTES_TABLE if r.name == name and (reproduction.row in (None, r.row))), None)
    expected = errno_number(name)
    extra: "dict[str, Any]" = {"asked": asked} if asked != name else {}
    if reproduction.row is not None:
        extra["row"] = reproduction.row
    runnable, missing = runnable_here(reproduction)
    if not runnable and reproduction.node_only:
        log.failure(f"{name} not reproduced here: {missing}", errno_wanted=name, **extra)
        return 1
    try:
        with trial.stack:
            reproduction.run(trial)
    except MissingCapability as exc:
        log.error(
            exc.cause,
            action=trial.call or "setup",
            errno_wanted=name,
            hint=f"reproducing {name} here needs {exc.capability}",
            **extra,
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
                **extra,
            )
            return 0
        log.error(
            exc,
            action=trial.call,
            errno_wanted=name,
            hint=f"expected {name} ({expected}) — {describe_error(exc)}",
            **extra,
        )
        return 1
    except RuntimeError as exc:
        log.failure(f"{name} not reproduced: {exc}", errno_wanted=name, call=trial.call, **extra)
        return 1
    log.failure(
        f"{name} not reproduced: {trial.call} succeeded",
        errno_wanted=name,
        call=trial.call,
        **extra,
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
