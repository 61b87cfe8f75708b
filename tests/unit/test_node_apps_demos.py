"""Every demo command runs to the end and shows what it is about (exit 0, ``done`` ok)."""

from __future__ import annotations

import pytest

from .test_node_apps_support import run_app

DEMOS = [
    "socketpair_demo",
    "makefile_demo",
    "oob_demo",
    "seqpacket_demo",
    "sockopts_demo",
    "types_demo",
    "names_demo",
    "shutdown_demo",
]


def can_open_raw_socket() -> bool:
    import socket

    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
    except PermissionError:
        return False
    return True


@pytest.mark.parametrize("module", DEMOS)
def test_demo_exits_0(module: str) -> None:
    done = run_app(module)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.events[-1]["event"] == "done" and done.events[-1]["ok"] is True
    assert all(e["app"] == done.events[0]["app"] for e in done.events)


@pytest.mark.parametrize("module", DEMOS)
def test_demo_human_output(module: str) -> None:
    done = run_app(module, "--human")
    assert done.returncode == 0
    assert not done.stdout.lstrip().startswith("{")


def test_types_shows_boundaries_and_rdm_refused() -> None:
    done = run_app("types_demo")
    stream = next(e for e in done.named("received") if e["type"] == "SOCK_STREAM")
    assert stream["data"] == "onetwothree" and stream["reads"] == 1
    datagram = next(e for e in done.named("received") if e["type"] == "SOCK_DGRAM")
    assert datagram["data"] == ["one", "two", "three"]
    rdm = [e for e in done.named("refused") if e["type"] == "SOCK_RDM" and e["family"] == "AF_INET"]
    assert rdm[0]["errno"] == "ESOCKTNOSUPPORT"


def test_sockopts_reuseaddr_over_time_wait() -> None:
    done = run_app("sockopts_demo")
    assert done.named("time_wait")[0]["state"] == "TIME_WAIT"
    assert done.named("error")[0]["errno"] == "EADDRINUSE"
    assert done.named("bound")[0]["reuseaddr"] is True
    nodelay = next(e for e in done.named("option") if e["option"] == "TCP_NODELAY")
    assert (nodelay["default"], nodelay["read_back"]) == (0, 1)


def test_names_each_end_is_the_others_peer() -> None:
    done = run_app("names_demo")
    inet = {e["role"]: e for e in done.named("names") if e["family"] == "inet" and "sockname" in e}
    assert inet["client"]["sockname"] == inet["server"]["peername"]
    assert inet["client"]["peername"] == inet["server"]["sockname"] == inet["listener"]["sockname"]


def test_raw_ping_loopback() -> None:
    if not can_open_raw_socket():
        pytest.skip("no CAP_NET_RAW here")
    done = run_app("raw_ping", "127.0.0.1", "--count", "2", "--interval", "0")
    assert done.returncode == 0, done.stderr
    assert [e["seq"] for e in done.named("received")] == [1, 2]
    assert done.named("summary")[0]["lost"] == 0
