"""The socket snapshot read from this host's /proc (root, local daemon) gives exactly the
rows ``docker exec socklab-sockets`` gives, and the exec path is taken, with the same rows,
when asked (``SOCKLAB_SNAPSHOT=exec``) or when the daemon is reached over TCP."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from socklab import Lab, LabNode
from socklab.observe.host_sockets import SETTING
from socklab.observe.sockets import SocketRow
from socklab.orchestrator.engine import DockerEngine
from socklab.orchestrator.engine_api import ExecResult

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the host's /proc of root processes")

HOLD = (
    "import socket, time; s = [socket.create_connection(({host!r}, {port})) for _ in "
    "range({n})]; time.sleep(600)"
)
UNIX_HOLD = (
    "import socket, time; s = socket.socket(socket.AF_UNIX); s.connect('/tmp/u.sock');"
    " d = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); d.connect(('server', 5001));"
    " time.sleep(600)"
)
LAB = {
    "networks": {"lan": {"ipv6": True}},
    "nodes": {
        "server": {
            "networks": ["lan"],
            "start": [
                "tcp-server --port 5000 --mode threaded",  # one IPv6 socket, dual-stack
                "udp-server --port 5001",
                "tcp-server --family unix --path /tmp/u.sock --mode threaded",
                "tcp-server --port 5002 --family inet --mode forking",
            ],
        },
        "client": {"replicas": 2, "networks": ["lan"]},
    },
}


def start(node: LabNode, code: str) -> None:
    done = node.exec(["socklab-start", "python3", "-c", code])
    assert done.ok, done.stdout + done.stderr


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, engine: object, node_image: str) -> Iterator[Lab]:
    import yaml

    from .conftest import lab_name

    path = Path(tmp_path_factory.mktemp("snap")) / "snap.yml"
    path.write_text(yaml.safe_dump({"name": lab_name("snap"), **LAB}))
    with Lab.load(path) as up:
        server = up.node("server")
        start(server, UNIX_HOLD)  # a UNIX connection and a connected UDP socket in the server
        for client in ("client-1", "client-2"):
            start(up.node(client), HOLD.format(host="server", port=5000, n=2))  # over IPv6
        start(up.node("client-1"), HOLD.format(host=f"{_ipv4(up)}", port=5002, n=1))
        _settle(up)
        yield up


def _ipv4(lab: Lab) -> str:
    return lab.node("server").ip()


def _settle(lab: Lab) -> None:
    """Until every connection is in place (the forking server's children too)."""
    for _ in range(100):
        rows = lab.sockets()
        est = [r for r in rows if r.state == "ESTABLISHED" and r.proto.startswith("tcp")]
        unix = [r for r in rows if r.proto == "unix" and r.node == "server" and r.state == "CONNECTED"]
        if len(est) >= 10 and len(unix) >= 2:
            return
        threading.Event().wait(0.2)
    raise AssertionError(f"the lab's connections did not settle: {rows}")


def _same_twice(
    read: Callable[[], list[SocketRow]], other: Callable[[], list[SocketRow]]
) -> tuple[list[SocketRow], list[SocketRow]]:
    """Both reads, taken again when something moved in between (at most 3 times)."""
    for _ in range(3):
        a, b = read(), other()
        if a == b:
            break
    return a, b


def test_host_snapshot_equals_exec_row_for_row(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_exec(ident: str, argv: list[str], **_: object) -> ExecResult:
        raise AssertionError(f"the host path ran a command in {ident}: {argv}")

    def host() -> list[SocketRow]:
        with monkeypatch.context() as m:
            m.setattr(lab.engine, "exec", no_exec)  # the fast path needs no exec at all
            m.setattr(lab.engine, "ask", no_exec)
            return lab.sockets()

    def through_exec() -> list[SocketRow]:
        with monkeypatch.context() as m:
            m.setenv(SETTING, "exec")
            return lab.sockets()

    fast, slow = _same_twice(host, through_exec)
    assert fast == slow
    protos = {r.proto for r in fast}
    assert {"tcp", "tcp6", "udp6", "unix"} <= protos, protos
    server = [r for r in fast if r.node == "server"]
    owners = {r.pid for r in server if r.pid is not None}
    assert len(owners) >= 5  # supervisor, four servers, the holder (forked children too)
    assert any(r.program == "tcp-server" and r.state == "LISTEN" and r.local_port == 5002 for r in server)
    assert sum(r.state == "ESTABLISHED" and r.local_port == 5000 for r in server) == 4


def test_exec_path_is_taken_when_asked(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []
    real = lab.engine.ask

    def counted(ident: str, argv: list[str]) -> str:
        ran.append(ident.removeprefix(f"socklab-{lab.name}-"))
        return real(ident, argv)

    monkeypatch.setenv(SETTING, "exec")
    monkeypatch.setattr(lab.engine, "ask", counted)
    rows = lab.sockets()
    assert sorted(ran) == ["client-1", "client-2", "server"]  # each node's supervisor asked
    assert {r.node for r in rows} == {"client-1", "client-2", "server"}


@pytest.fixture
def tcp_daemon() -> Iterator[str]:
    """``tcp://127.0.0.1:PORT``: the local daemon's socket forwarded over TCP, as a daemon on
    another host would be reached."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            daemon = socket.socket(socket.AF_UNIX)
            daemon.connect("/var/run/docker.sock")
            for a, b in ((conn, daemon), (daemon, conn)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


def test_a_daemon_over_tcp_is_read_through_exec(
    lab: Lab, tcp_daemon: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", tcp_daemon)
    remote = Lab.named(lab.name, engine=DockerEngine())
    assert not remote.engine.on_this_host()
    ran: list[str] = []
    real = remote.engine.ask

    def counted(ident: str, argv: list[str]) -> str:
        ran.append(ident.removeprefix(f"socklab-{lab.name}-"))
        return real(ident, argv)

    monkeypatch.setattr(remote.engine, "ask", counted)
    over_tcp, local = _same_twice(remote.sockets, lab.sockets)
    assert set(ran) == {"client-1", "client-2", "server"} and len(ran) % 3 == 0
    assert over_tcp == local
