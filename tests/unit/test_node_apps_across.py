"""The demos' two-node mode, over loopback: ``DEMO --listen`` as a server process,
``DEMO --connect 127.0.0.1`` as the client; the client exits 0 when the demo's point held
and the server's events show its half."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from .test_node_apps_support import Server, run_app


def free_port() -> int:
    """A port free for TCP and UDP on 127.0.0.1 (the types and sendrecv servers bind both)."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


# module, client arguments, (event, fields) the client printed, (event, fields) the server did
CASES = [
    (
        "shutdown_demo",
        [],
        [("error", {"how": "SHUT_WR", "errno": "EPIPE"}), ("received", {"how": "SHUT_RD", "data": "late"})],
        [("eof", {"how": "WR"}), ("sent", {"how": "WR", "after_eof": True})],
    ),
    ("names_demo", [], [("names", {"role": "client"})], [("names", {"role": "server"})]),
    ("makefile_demo", [], [("received", {"data": "FIRST LINE"})], [("received", {"data": "first line"})]),
    ("oob_demo", [], [("done", {"ok": True})], [("received", {"flags": "MSG_OOB", "data": "!"})]),
    (
        "types_demo",
        [],
        [("received", {"type": "SOCK_STREAM", "data": "onetwothree"})],
        [("received", {"type": "SOCK_DGRAM", "data": "three"})],
    ),
    (
        "sendrecv_demo",
        [],
        [("sent", {"call": "sendall"})],
        [("received", {"type": "SOCK_STREAM", "bytes": 1 << 20})],
    ),
    (
        "sockopts_demo",
        ["--test", "options", "--test", "nagle", "--test", "linger"],
        [("nagle", {"tcp_nodelay": 1})],
        [("error", {"errno": "ECONNRESET"})],
    ),
]


def has(events: list[dict[str, object]], event: str, fields: dict[str, object]) -> bool:
    return any(e["event"] == event and all(e.get(k) == v for k, v in fields.items()) for e in events)


@pytest.mark.parametrize(("module", "args", "client_saw", "server_did"), CASES, ids=[c[0] for c in CASES])
def test_two_halves_over_loopback(
    tmp_path: Path,
    module: str,
    args: list[str],
    client_saw: list[tuple[str, dict[str, object]]],
    server_did: list[tuple[str, dict[str, object]]],
) -> None:
    port = str(free_port())
    with Server(module, "--listen", "--port", port, folder=tmp_path) as server:
        done = run_app(module, "--connect", "127.0.0.1", "--port", port, *args, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        for event, fields in client_saw:
            assert has(done.events, event, fields), (event, fields, done.events)
        assert done.events[-1]["event"] == "done" and done.events[-1]["ok"] is True
    for event, fields in server_did:
        assert has(server.events(), event, fields), (event, fields, server.events())


def test_seqpacket_between_two_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "sp.sock")
    with Server("seqpacket_demo", "--listen", "--path", path, folder=tmp_path) as server:
        done = run_app("seqpacket_demo", "--connect", path)
    assert done.returncode == 0, done.stderr
    assert done.named("done")[0]["server_received"] == ["one", "a longer second message", "3"]
    assert [e["data"] for e in server.events() if e["event"] == "received"] == [
        "one",
        "a longer second message",
        "3",
    ]


def test_a_demo_without_its_server_says_so() -> None:
    done = run_app("names_demo", "--connect", "127.0.0.1", "--port", str(free_port()))
    assert done.returncode == 1
    assert done.named("error")[0]["errno"] == "ECONNREFUSED"
