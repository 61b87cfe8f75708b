"""tcp-server's per-connection options, dual-stack servers, and clients that try every address."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from socklab.nodes import tcp_client, udp_client
from socklab.nodes.addresses import Endpoint

from .test_node_apps_servers import closed_port, has_ipv6
from .test_node_apps_support import Server, run_app


def tcp_state(port: int) -> list[str]:
    """The /proc/net/tcp states (hex codes) of IPv4 and IPv6 sockets on a local port."""
    states = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            next(fh)
            for line in fh:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    states.append(fields[3])
    return states


def test_close_after_makes_the_server_close_first_and_wait_in_time_wait(tmp_path: Path) -> None:
    with Server(
        "tcp_server",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--close-after",
        "1",
        "--clients",
        "1",
        folder=tmp_path,
    ) as server:
        client = run_app("tcp_client", "127.0.0.1", str(server.port), "--wait-eof")
        assert client.returncode == 0, client.stderr
        assert [e["event"] for e in client.events][-2:] == ["eof", "closed"]
        deadline = time.monotonic() + 5
        while server.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.proc.returncode == 0  # --clients 1: served one, then exited
    closed = [e for e in server.events() if e["event"] == "closed"]
    assert [(e["reason"], e["how"]) for e in closed] == [("close_after", "FIN")]
    assert server.events()[-1] == {**server.events()[-1], "event": "stopped", "reason": "served 1 clients"}
    assert "06" in tcp_state(server.port)  # TIME_WAIT on the server's port, no process left


def test_linger0_resets_the_connection_and_the_client_reads_econnreset(tmp_path: Path) -> None:
    with Server("tcp_server", "--port", "0", "--host", "127.0.0.1", "--linger0", folder=tmp_path) as server:
        client = run_app("tcp_client", "127.0.0.1", str(server.port))
    assert client.returncode == 1
    assert client.named("error")[0]["errno"] == "ECONNRESET"
    closed = [e for e in server.events() if e["event"] == "closed"]
    assert [(e["reason"], e["how"]) for e in closed] == [("linger0", "RST")]


def test_a_silent_server_lets_the_clients_settimeout_expire(tmp_path: Path) -> None:
    with Server(
        "tcp_server", "--port", "0", "--host", "127.0.0.1", "--silent", "--mode", "threaded", folder=tmp_path
    ) as server:
        client = run_app("tcp_client", "127.0.0.1", str(server.port), "--timeout", "0.5")
    assert client.returncode == 1
    error = client.named("error")[0]
    assert error["errno"] == "ETIMEDOUT" and error["timeout"] is True
    assert [e["event"] for e in server.events()].count("received") == 1
    assert "sent" not in [e["event"] for e in server.events()]


@pytest.mark.parametrize("option", [("--linger0",), ("--clients", "2"), ("--silent",)])
def test_connection_options_need_a_blocking_mode(option: tuple[str, ...]) -> None:
    done = run_app("tcp_server", "--port", "0", "--mode", "selectors", *option, timeout=10)
    assert done.returncode == 2
    assert "blocking modes" in done.named("error")[0]["message"]


def test_one_conduct_at_a_time() -> None:
    done = run_app("tcp_server", "--port", "0", "--linger0", "--silent", timeout=10)
    assert done.returncode == 2
    assert done.named("error")[0]["message"] == "give one of --close-after, --linger0 and --silent"


@pytest.mark.parametrize("module", ["tcp_server", "udp_server"])
def test_servers_are_dual_stack_by_default(tmp_path: Path, module: str) -> None:
    if not has_ipv6():
        pytest.skip("no IPv6 here")
    client = "tcp_client" if module == "tcp_server" else "udp_client"
    with Server(module, "--port", "0", folder=tmp_path) as server:
        assert server.listening["dual_stack"] is True
        assert server.listening["address"] == f"[::]:{server.port}"
        for host in ("127.0.0.1", "::1"):
            done = run_app(client, host, str(server.port))
            assert done.returncode == 0, (host, done.stderr)
    created = server.events()[0]
    assert (created["event"], created["family"], created["dual_stack"]) == ("created", "inet6", True)
    peers = [e["peer"] for e in server.events() if e["event"] == "received"]
    # the IPv4 client is shown as the IPv4 address it is, not as ::ffff:127.0.0.1
    assert peers[0].startswith("127.0.0.1:") and peers[1].startswith("[::1]:")


def test_a_host_or_a_family_makes_a_single_stack_server(tmp_path: Path) -> None:
    with Server("tcp_server", "--port", "0", "--family", "inet", folder=tmp_path) as server:
        assert server.listening["dual_stack"] is False
        assert server.listening["address"] == f"0.0.0.0:{server.port}"


def events_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_udp_client_tries_the_next_address_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = Endpoint(socket.AF_INET, ("127.0.0.1", closed_port()))
    with Server("udp_server", "--port", "0", "--host", "127.0.0.1", folder=tmp_path) as server:
        good = Endpoint(socket.AF_INET, ("127.0.0.1", server.port))
        monkeypatch.setattr(udp_client, "resolve_endpoints", lambda *_: [refused, good])
        code = udp_client.main(["web", "5002", "--count", "3", "--timeout", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    events = events_of(out)
    retry = next(e for e in events if e["event"] == "retry")
    assert retry["errno"] == "ECONNREFUSED" and retry["next"] == f"127.0.0.1:{server.port}"
    assert "retry" not in err and "ECONNREFUSED" not in err  # quiet: recorded, not shown
    summary = events[-1]
    assert (summary["event"], summary["sent"], summary["received"]) == ("summary", 3, 3)
    assert summary["peer"] == f"127.0.0.1:{server.port}"


def test_udp_client_reports_the_last_address_when_none_answers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ports = [closed_port(), closed_port()]
    monkeypatch.setattr(
        udp_client,
        "resolve_endpoints",
        lambda *_: [Endpoint(socket.AF_INET, ("127.0.0.1", p)) for p in ports],
    )
    code = udp_client.main(["web", "5002", "--timeout", "1"])
    out, err = capsys.readouterr()
    assert code == 1
    assert [e["event"] for e in events_of(out) if e["event"] in ("retry", "error")] == ["retry", "error"]
    assert f"ECONNREFUSED (111): connection refused by 127.0.0.1:{ports[1]}" in err


def test_tcp_client_retry_is_quiet_but_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = Endpoint(socket.AF_INET, ("127.0.0.1", closed_port()))
    with Server("tcp_server", "--port", "0", "--host", "127.0.0.1", folder=tmp_path) as server:
        good = Endpoint(socket.AF_INET, ("127.0.0.1", server.port))
        monkeypatch.setattr(tcp_client, "resolve_endpoints", lambda *_: [refused, good])
        code = tcp_client.main(["web", "5000"])
    out, err = capsys.readouterr()
    assert code == 0, err
    names = [e["event"] for e in events_of(out)]
    assert names[:5] == ["resolved", "created", "retry", "created", "connected"]
    assert "ECONNREFUSED" not in err and "retry" not in err


def test_parallel_clients_start_together(tmp_path: Path) -> None:
    with Server(
        "tcp_server",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--mode",
        "iterative",
        "--delay",
        "0.2",
        folder=tmp_path,
    ) as server:
        done = run_app("tcp_client", "127.0.0.1", str(server.port), "--parallel", "3")
    assert done.returncode == 0, done.stderr
    connected = [e["ts"] for e in done.named("connected")]
    closed = [e["ts"] for e in done.named("closed")]
    assert len(connected) == len(closed) == 3
    # all three connected at once; the iterative server then served them one by one
    assert max(connected) - min(connected) < max(closed) - min(closed)
    assert len({e["local"] for e in done.named("connected")}) == 3
