"""errno: the list covers the notes' table, and every errno it marks reproducible is reproduced."""

from __future__ import annotations

import json

import pytest

from .test_node_apps_support import run_app

NOTES_NAMES = {
    "EACCES",
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "EINVAL",
    "EBADF",
    "ECONNABORTED",
    "ECONNREFUSED",
    "ECONNRESET",
    "EDESTADDRREQ",
    "EHOSTDOWN",
    "EHOSTUNREACH",
    "EINPROGRESS",
    "EISCONN",
    "EMSGSIZE",
    "ENETDOWN",
    "ENETRESET",
    "ENETUNREACH",
    "ENOBUFS",
    "ENOPROTOOPT",
    "ENOTCONN",
    "ENOTSOCK",
    "EOPNOTSUPP",
    "EPFNOSUPPORT",
    "EPIPE",
    "EPROTONOSUPPORT",
    "EPROTOTYPE",
    "ESHUTDOWN",
    "ESOCKTNOSUPPORT",
    "ESYS",
    "ETIMEDOUT",
    "EWOULDBLOCK",
}


def catalogue() -> list[dict[str, object]]:
    done = run_app("errno_repro", "--list", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["errnos"])


ROWS = catalogue()
ERRNO_ROWS = [r for r in ROWS if r["kind"] == "errno"]
REPRODUCIBLE = sorted({str(r["name"]) for r in ERRNO_ROWS if r["reproducible"]})
NOT_ON_LINUX = {"ESYS", "EPFNOSUPPORT", "ESHUTDOWN", "ENETRESET"}
SPELLINGS = {
    "EBAUDF": "EBADF",
    "ESTDADREQ": "EDESTADDRREQ",
    "ENETREACH": "ENETUNREACH",
    "ENPROTOPT": "ENOPROTOOPT",
    "EPPIPE": "EPIPE",
    "EPROTOSUPPORT": "EPROTONOSUPPORT",
}


def test_the_notes_table_row_by_row() -> None:
    table = [r for r in ERRNO_ROWS if r["row"] is not None]
    assert [r["row"] for r in table] == list(range(1, 33))
    assert {r["name"] for r in table} == NOTES_NAMES and len(NOTES_NAMES) == 31
    assert all(r["in_notes"] and r["perror"] and r["cause"] for r in table)
    written = {r["as_written_in_notes"]: r["name"] for r in table if r["as_written_in_notes"]}
    assert written == SPELLINGS
    einval = [r for r in table if r["name"] == "EINVAL"]
    assert [r["row"] for r in einval] == [4, 5] and einval[0]["how"] != einval[1]["how"]
    assert all(r["linux"] for r in einval)  # the notes' causes, put right


def test_every_linux_errno_of_the_table_is_reproducible_the_rest_explained() -> None:
    table = [r for r in ERRNO_ROWS if r["row"] is not None]
    produced = {r["name"] for r in table if r["reproducible"]}
    assert produced == NOTES_NAMES - NOT_ON_LINUX and len(produced) == 27
    for row in table:
        if not row["reproducible"]:
            assert row["why_not"] and row["linux"], row
    for row in ERRNO_ROWS:
        assert row["how"] if row["reproducible"] else row["why_not"]
    peers = {row["name"] for row in ROWS if row.get("lab_peer")}
    assert {
        "ECONNREFUSED",
        "ETIMEDOUT",
        "EHOSTUNREACH",
        "ENETUNREACH",
        "ECONNRESET",
        "EWOULDBLOCK",
        "EPIPE",
        "EINVAL",
    } <= peers


def test_the_notes_elsewhere_and_the_resolver_failures_are_listed() -> None:
    elsewhere = {
        (r["where"], r["as_written_in_notes"]): r["name"]
        for r in ERRNO_ROWS
        if r["row"] is None and r["in_notes"]
    }
    assert elsewhere[("accept()", "ENOPROTOOPT")] == "EWOULDBLOCK"  # "no pending connections"
    assert elsewhere[("accept()", "EPROTONOSUPPORT")] == "EOPNOTSUPP"
    assert elsewhere[("socketpair()", None)] == "EMFILE"
    resolver = {r["name"]: r["eai"] for r in ROWS if r["kind"] == "resolver"}
    assert resolver == {
        "HOST_NOT_FOUND": "EAI_NONAME",
        "TRY_AGAIN": "EAI_AGAIN",
        "NO_RECOVERY": "EAI_FAIL",
        "NO_DATA": "EAI_NODATA",
    }


def test_list_as_events() -> None:
    done = run_app("errno_repro", "--list")
    assert [(e["name"], e["row"]) for e in done.named("errno")] == [(r["name"], r["row"]) for r in ROWS]


@pytest.mark.parametrize("name", REPRODUCIBLE)
def test_reproducible_errno_is_reproduced(name: str) -> None:
    rows = [r for r in ERRNO_ROWS if r["name"] == name and r["reproducible"]]
    if not all(r["runnable_here"] for r in rows):
        pytest.skip(str(next(r["missing"] for r in rows if not r["runnable_here"])))
    done = run_app("errno_repro", name, "--timeout", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    reproduced = done.named("reproduced")
    table_rows = [r for r in rows if r["row"] is not None]
    assert len(reproduced) == max(1, len({r["how"] for r in table_rows}))
    for event in reproduced:
        assert event["errno"] == name and event["errno_number"] == rows[0]["number"]
        assert event["call"] and event["how"] in {r["how"] for r in rows} | {
            r["how"] for r in ERRNO_ROWS if r["name"] == name
        }
    assert f"{name} ({rows[0]['number']}) reproduced" in done.stderr


@pytest.mark.parametrize(("written", "name"), sorted(SPELLINGS.items()))
def test_the_notes_spelling_is_taken_for_the_linux_name(written: str, name: str) -> None:
    row = next(r for r in ERRNO_ROWS if r["name"] == name)
    if not row["runnable_here"]:
        pytest.skip(str(row["missing"]))
    done = run_app("errno_repro", written.lower(), "--timeout", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.named("spelling")[0]["errno"] == name
    assert {e["asked"] for e in done.named("reproduced")} == {written}
    assert f"{written} is how the notes write {name}" in done.stderr


def test_not_reproducible_resolver_and_unknown_names() -> None:
    done = run_app("errno_repro", "ESYS")
    assert done.returncode == 1 and "not reproducible" in done.named("error")[0]["message"]
    done = run_app("errno_repro", "TRY_AGAIN")
    assert done.returncode == 1 and "SERVFAIL" in done.named("error")[0]["message"]
    done = run_app("errno_repro", "NO_RESOLVE_HOST")  # the notes' name of HOST_NOT_FOUND
    assert done.returncode == 1
    assert done.named("error")[0]["message"].startswith(
        "NO_RESOLVE_HOST (the notes' name of HOST_NOT_FOUND) is a resolver failure "
        "(HOST_NOT_FOUND/EAI_NONAME), not an errno"
    )
    done = run_app("errno_repro", "EBAUF")
    assert done.returncode == 2
    assert done.named("error")[0]["message"] == (
        "unknown errno EBAUF — did you mean EBADF (written EBAUDF in the notes)?"
    )
    assert run_app("errno_repro", "ENOSUCHTHING").returncode == 2


def test_a_reproduction_that_changes_the_network_runs_in_a_lab_node_only() -> None:
    row = next(r for r in ERRNO_ROWS if r["name"] == "ENETDOWN")
    assert row["reproducible"] and row["runnable_here"] is False
    done = run_app("errno_repro", "ENETDOWN")
    assert done.returncode == 1 and "run it in a lab node" in done.named("error")[0]["message"]


def test_lab_peer_target_for_econnrefused() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run_app("errno_repro", "ECONNREFUSED", "--host", "127.0.0.1", "--port", str(port))
    assert done.returncode == 0
    assert done.named("reproduced")[0]["call"] == f"connect(127.0.0.1:{port})"


def test_port_alone_aims_econnrefused_at_a_local_port() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run_app("errno_repro", "ECONNREFUSED", "--port", str(port))
    assert done.returncode == 0
    assert done.named("reproduced")[0]["call"] == f"connect(127.0.0.1:{port})"
    with socket.socket() as listener:  # something listens there: not refused, and it says so
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        taken = run_app("errno_repro", "ECONNREFUSED", "--port", str(port))
    assert taken.returncode == 1
    assert taken.named("error")[0]["message"] == (
        f"ECONNREFUSED not reproduced: connect(127.0.0.1:{port}) succeeded"
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ECONNRESET", "--port needs --host for ECONNRESET (lab peer: --host H --port P: "),
        ("ETIMEDOUT", "--port needs --host for ETIMEDOUT (lab peer: "),
        ("EBADF", "EBADF takes no --port: it is reproduced locally ("),
    ],
)
def test_port_without_host_is_refused_where_it_means_nothing(name: str, message: str) -> None:
    done = run_app("errno_repro", name, "--port", "5000")
    assert done.returncode == 2
    assert done.named("error")[0]["message"].startswith(message)
    assert "reproduced" not in {e["event"] for e in done.events}


def test_errno_port_out_of_range_is_an_argument_error() -> None:
    done = run_app("errno_repro", "ECONNREFUSED", "--host", "127.0.0.1", "--port", "99999")
    assert done.returncode == 2 and done.events == []
    assert "argument --port: 99999 is not a port (1..65535)" in done.stderr
