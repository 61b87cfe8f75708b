"""tcp-server, udp-server and their clients as real processes over 127.0.0.1, ::1 and UNIX."""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from .test_node_apps_support import (
    Server,
    app_command,
    echo_once,
    parse_events,
    run_app,
    wait_until,
)

MODES = ["iterative", "threaded", "forking", "selectors"]
CONCURRENT = ["threaded", "forking", "selectors"]


def has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def start_tcp(folder: Path, mode: str, *extra: str) -> Server:
    return Server("tcp_server", "--port", "0", "--host", "127.0.0.1", "--mode", mode, *extra, folder=folder)


def test_the_server_steps_are_events_in_order(tmp_path: Path) -> None:
    with start_tcp(tmp_path, "threaded") as server:
        first_three = server.events()[:3]
    assert [e["event"] for e in first_three] == ["created", "bound", "listening"]
    created, bound, _ = first_three
    assert created["family"] == "inet" and created["type"] == "SOCK_STREAM"
    assert bound["address"] == f"127.0.0.1:{server.port}"
    listening = server.listening
    assert listening["app"] == "tcp-server" and listening["proto"] == "tcp"
    assert listening["address"] == f"127.0.0.1:{listening['port']}"
    assert isinstance(listening["ts"], float) and listening["pid"] == server.pid
    assert server.events()[-1]["event"] == "stopped"


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_echoes_over_inet(tmp_path: Path, mode: str) -> None:
    with start_tcp(tmp_path, mode) as server:
        assert echo_once(socket.AF_INET, ("127.0.0.1", server.port), b"hello") == b"hello"
        client = run_app("tcp_client", "127.0.0.1", str(server.port), "--count", "3", "--message", "abc")
        assert client.returncode == 0, client.stderr
        assert [e["event"] for e in client.events] == ["resolved", "created", "connected"] + [
            "sent",
            "received",
        ] * 3 + ["closed"]
        assert all(e["data"] == "abc" for e in client.named("received"))
        assert client.named("connected")[0]["peer"] == f"127.0.0.1:{server.port}"
        # the client has exited; the server logs each close once it has seen the EOF
        assert wait_until(lambda: closes(server) == 2)
    events = server.events()
    accepted = [e for e in events if e["event"] == "accepted"]
    closed = [e for e in events if e["event"] == "closed"]
    assert len(accepted) == 2 and len(closed) == 2
    assert closed[-1]["bytes_received"] == 9 and closed[-1]["bytes_sent"] == 9
    if mode == "forking":
        assert {e["event"] for e in events} >= {"forked", "reaped"}
        # each connection was served by its own child process
        assert closed[-1]["pid"] != server.pid


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_echoes_over_inet6(tmp_path: Path, mode: str) -> None:
    if not has_ipv6():
        pytest.skip("no IPv6 loopback here")
    server = Server(
        "tcp_server",
        "--port",
        "0",
        "--family",
        "inet6",
        "--host",
        "::1",
        "--mode",
        mode,
        folder=tmp_path,
    )
    with server:
        assert server.listening["address"] == f"[::1]:{server.port}"
        client = run_app("tcp_client", "::1", str(server.port), "--family", "inet6")
        assert client.returncode == 0, client.stderr
        assert client.named("connected")[0]["peer"] == f"[::1]:{server.port}"


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_echoes_over_unix(tmp_path: Path, mode: str) -> None:
    path = str(tmp_path / "echo.sock")
    with Server("tcp_server", "--family", "unix", "--path", path, "--mode", mode, folder=tmp_path) as server:
        assert server.listening["address"] == "unix:" + path
        client = run_app("tcp_client", path, "--family", "unix", "--count", "2")
        assert client.returncode == 0, client.stderr
        assert echo_once(socket.AF_UNIX, path, b"unix!") == b"unix!"
    assert not Path(path).exists()  # the server removed its socket file on SIGTERM


@pytest.mark.parametrize("mode", MODES)
def test_half_close_gets_every_echo_then_eof(tmp_path: Path, mode: str) -> None:
    with start_tcp(tmp_path, mode, "--delay", "0.05") as server:
        client = run_app("tcp_client", "127.0.0.1", str(server.port), "--count", "3", "--shutdown", "wr")
    assert client.returncode == 0, client.stderr
    assert client.named("shutdown")[0]["how"] == "SHUT_WR"
    assert client.named("eof")[0]["bytes"] == 15


def serve_clients_at_once(port: int, clients: int) -> None:
    """``clients`` simultaneous clients, each gets one echo."""
    errors: list[BaseException] = []
    start = threading.Barrier(clients + 1)

    def one(index: int) -> None:
        start.wait()
        try:
            payload = f"client {index}".encode()
            assert echo_once(socket.AF_INET, ("127.0.0.1", port), payload, timeout=20) == payload
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join(30)
    assert not errors, errors


def most_at_once(events: list[dict[str, Any]]) -> int:
    """The most connections the server held at once, from its ``accepted`` and ``closed``
    events in time order (an order of events, not a duration)."""
    held = most = 0
    for e in sorted(events, key=lambda e: (e["ts"], e["event"] != "closed")):
        if e["event"] == "accepted":
            held += 1
            most = max(most, held)
        elif e["event"] == "closed":
            held -= 1
    return most


def closes(server: Server) -> int:
    return sum(e["event"] == "closed" for e in server.events())


def test_iterative_serves_one_at_a_time_concurrent_modes_overlap(tmp_path: Path) -> None:
    held = {}
    for mode in MODES:
        with start_tcp(tmp_path, mode, "--delay", "0.2") as server:
            serve_clients_at_once(server.port, 10)
            # the server logs a close when it reads the client's EOF: wait for all ten
            assert wait_until(lambda: closes(server) == 10, timeout=20), (mode, closes(server))
        held[mode] = most_at_once(server.events())
    assert held["iterative"] == 1, held  # each connection closed before the next accepted
    for mode in CONCURRENT:
        assert held[mode] >= 2, held  # a connection accepted while another was served


def test_second_server_on_the_same_port_fails_with_eaddrinuse(tmp_path: Path) -> None:
    with start_tcp(tmp_path, "iterative", "--reuseaddr") as server:
        second = run_app("tcp_server", "--port", str(server.port), "--host", "127.0.0.1", "--reuseaddr")
    assert second.returncode == 1
    error = second.named("error")[0]
    assert (error["errno"], error["errno_number"]) == ("EADDRINUSE", 98)
    assert error["message"] == f"EADDRINUSE (98): address 127.0.0.1:{server.port} is already in use"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_client_reports_econnrefused_and_exits_1() -> None:
    port = closed_port()
    client = run_app("tcp_client", "127.0.0.1", str(port))
    assert client.returncode == 1
    error = client.named("error")[0]
    assert error["errno"] == "ECONNREFUSED" and error["errno_number"] == 111
    assert error["peer"] == f"127.0.0.1:{port}"
    expected = f"ECONNREFUSED (111): connection refused by 127.0.0.1:{port}"
    assert error["message"] == expected
    assert expected in client.stderr
    human = run_app("tcp_client", "127.0.0.1", str(port), "--human")
    assert human.stdout.splitlines() == [
        f"tcp-client: getaddrinfo(127.0.0.1) -> 127.0.0.1:{port}",
        "tcp-client: socket(AF_INET, SOCK_STREAM) -> fd 3",
        f"tcp-client: {expected}",
    ]


def test_client_timeout_is_reported_as_etimedout() -> None:
    # a listener whose accept queue is full drops the SYN: the client's settimeout expires
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        # the accept queue of listen(0) is full once one of them is connected
        assert select.select([], fillers, [], 10)[1], "no connection completed"
        client = run_app("tcp_client", "127.0.0.1", str(listener.getsockname()[1]), "--timeout", "0.5")
    finally:
        for sock in [*fillers, listener]:
            sock.close()
    assert client.returncode == 1
    error = client.named("error")[0]
    assert error["errno"] == "ETIMEDOUT" and error["timeout"] is True


def test_client_linger0_resets_and_the_server_survives(tmp_path: Path) -> None:
    with start_tcp(tmp_path, "threaded") as server:
        client = run_app("tcp_client", "127.0.0.1", str(server.port), "--linger0")
        assert client.returncode == 0
        assert client.named("closed")[0]["how"] == "RST"
        assert echo_once(socket.AF_INET, ("127.0.0.1", server.port)) == b"ping"


def test_unknown_host_is_a_resolver_error() -> None:
    client = run_app("tcp_client", "no-such-host.invalid", "5000")
    assert client.returncode == 1
    assert client.named("error")[0]["errno"].startswith("EAI_")


@pytest.mark.parametrize("family", ["inet", "inet6", "unix"])
def test_udp_echo(tmp_path: Path, family: str) -> None:
    if family == "inet6" and not has_ipv6():
        pytest.skip("no IPv6 loopback here")
    if family == "unix":
        path = str(tmp_path / "udp.sock")
        server_args: tuple[str, ...] = ("--family", "unix", "--path", path)
        target: tuple[str, ...] = (path, "--family", "unix")
    else:
        host = "::1" if family == "inet6" else "127.0.0.1"
        server_args = ("--port", "0", "--family", family, "--host", host)
        target = (host,)
    with Server("udp_server", *server_args, folder=tmp_path) as server:
        if family != "unix":
            target = (target[0], str(server.port))
        client = run_app("udp_client", *target, "--count", "5")
    assert client.returncode == 0, client.stderr
    summary = client.named("summary")[0]
    assert (summary["sent"], summary["received"], summary["lost"]) == (5, 5, 0)
    assert len([e for e in server.events() if e["event"] == "received"]) == 5


def test_udp_client_to_a_closed_port_gets_econnrefused() -> None:
    client = run_app("udp_client", "127.0.0.1", str(closed_port()), "--timeout", "1")
    assert client.returncode == 1
    assert client.named("error")[0]["errno"] == "ECONNREFUSED"


@pytest.mark.parametrize(
    ("module", "args", "shown"),
    [
        ("tcp_client", ("echo", "99999"), "argument PORT: 99999 is not a port (1..65535)"),
        ("tcp_client", ("echo", "0"), "argument PORT: 0 is not a port (1..65535)"),
        ("udp_client", ("echo", "65536"), "argument PORT: 65536 is not a port (1..65535)"),
        ("udp_client", ("echo", "-5"), "argument PORT: -5 is not a port (1..65535)"),
        ("tcp_server", ("--port", "70000"), "argument --port: 70000 is not a port (0..65535)"),
        ("udp_server", ("--port", "-1"), "argument --port: -1 is not a port (0..65535)"),
        ("tcp_client", ("echo", "http"), "argument PORT: invalid port: 'http'"),
    ],
)
def test_a_port_out_of_range_is_an_argument_error(module: str, args: tuple[str, ...], shown: str) -> None:
    # 99999 used to be truncated to 16 bits by the kernel: a connect to port 34463
    done = run_app(module, *args, timeout=10)
    assert done.returncode == 2 and done.events == []
    assert done.stderr.startswith("usage: ") and done.stderr.rstrip().endswith(shown)


@pytest.mark.parametrize("module", ["tcp_server", "udp_server"])
def test_a_unix_server_needs_a_path(tmp_path: Path, module: str) -> None:
    done = run_app(module, "--family", "unix", timeout=10)
    assert done.returncode == 2
    assert done.named("error")[0]["message"] == (
        "--path is required for --family unix (the socket file to bind)"
    )
    assert "listening" not in done.stdout
    assert "--path" in run_app(module, "--help").stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("attempt", range(10))
def test_a_stop_as_soon_as_the_port_listens_is_a_clean_stop(tmp_path: Path, attempt: int) -> None:
    """The supervisor calls a server ready once its socket listens: a SIGTERM from then on
    ends it with a ``stopped`` event and exit 0, never a traceback."""
    port = free_port()
    out = tmp_path / "server.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            app_command("tcp_server", "--port", str(port), "--host", "127.0.0.1"),
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
        )

    def listens() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    assert wait_until(listens, interval=0.001)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert parse_events(out.read_text())[-1]["event"] == "stopped"
