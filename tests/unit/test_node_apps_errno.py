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
REPRODUCIBLE = [str(row["name"]) for row in ROWS if row["reproducible"]]


def test_list_covers_the_notes_table_and_says_why_not() -> None:
    names = {row["name"] for row in ROWS}
    assert names >= NOTES_NAMES
    for row in ROWS:
        if row["reproducible"]:
            assert row["how"]
        else:
            assert row["why_not"]
    assert len(REPRODUCIBLE) >= 25
    peers = {row["name"] for row in ROWS if row.get("lab_peer")}
    assert {"ECONNREFUSED", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET"} <= peers


def test_list_as_events() -> None:
    done = run_app("errno_repro", "--list")
    assert {e["name"] for e in done.named("errno")} == {row["name"] for row in ROWS}


@pytest.mark.parametrize("name", REPRODUCIBLE)
def test_reproducible_errno_is_reproduced(name: str) -> None:
    row = next(r for r in ROWS if r["name"] == name)
    if not row["runnable_here"]:
        pytest.skip(str(row["missing"]))
    done = run_app("errno_repro", name, "--timeout", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    event = done.named("reproduced")[0]
    assert event["errno"] == name and event["errno_number"] == row["number"]
    assert event["call"] and event["how"] == row["how"]
    assert f"{name} ({row['number']}) reproduced" in done.stderr


def test_not_reproducible_and_unknown_names() -> None:
    done = run_app("errno_repro", "ESYS")
    assert done.returncode == 1 and "not reproducible" in done.named("error")[0]["message"]
    assert run_app("errno_repro", "ENOSUCHTHING").returncode == 2


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
        f"ECONNREFUSED not reproduced: connect(127.0.0.1:{port}) succeeded")


@pytest.mark.parametrize(("name", "message"), [
    ("ECONNRESET", "--port needs --host for ECONNRESET (lab peer: --host H --port P: "),
    ("ETIMEDOUT", "--port needs --host for ETIMEDOUT (lab peer: "),
    ("EBADF", "EBADF takes no --port: it is reproduced locally ("),
])
def test_port_without_host_is_refused_where_it_means_nothing(name: str, message: str) -> None:
    done = run_app("errno_repro", name, "--port", "5000")
    assert done.returncode == 2
    assert done.named("error")[0]["message"].startswith(message)
    assert "reproduced" not in {e["event"] for e in done.events}


def test_errno_port_out_of_range_is_an_argument_error() -> None:
    done = run_app("errno_repro", "ECONNREFUSED", "--host", "127.0.0.1", "--port", "99999")
    assert done.returncode == 2 and done.events == []
    assert "argument --port: 99999 is not a port (1..65535)" in done.stderr
