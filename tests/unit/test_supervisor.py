"""The node supervisor, run as a real process on the host (no Docker).

It runs from a copy of ``socklab.nodes`` under an empty ``socklab/__init__.py``
with ``python3 -S`` (no site-packages), as in the image: standard library only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

import socklab.nodes
from socklab.nodes.supervisor import STOP_GRACE


def _stamp(n: Node, text: str) -> float:
    """The time the supervisor wrote on its first line that holds ``text``."""
    line = next(line for line in n.lines if text in line)
    return datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (?P<app>\S+)\[(?P<pid>\d+)\] (?P<text>.*)$")


@pytest.fixture(scope="module")
def pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("image")
    nodes = Path(socklab.nodes.__file__).parent
    shutil.copytree(nodes, root / "socklab" / "nodes", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "socklab" / "__init__.py").write_text("")
    return root


def _entry(pkg: Path, module: str) -> list[str]:
    code = (
        f"import sys; sys.path.insert(0, {str(pkg)!r}); "
        f"from socklab.nodes.{module} import main; sys.exit(main())"
    )
    return [sys.executable, "-S", "-c", code]


def _script(directory: Path, name: str, body: str) -> str:
    path = directory / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


class Node:
    """A running supervisor whose stdout lines are collected."""

    def __init__(self, pkg: Path, run_dir: Path, start: list[list[str]], **env: str) -> None:
        self.pkg, self.run_dir = pkg, run_dir
        self.env = {
            **os.environ,
            "SOCKLAB_RUN_DIR": str(run_dir),
            "SOCKLAB_START": json.dumps(start),
            **env,
        }
        self.proc = subprocess.Popen(
            _entry(pkg, "supervisor"),
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.set_blocking(self.proc.stdout.fileno(), False)  # type: ignore[union-attr]
        self.lines: list[str] = []

    def _poll(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.readline():
            self.lines.append(chunk.rstrip("\n"))

    def events(self) -> list[dict[str, object]]:
        self._poll()
        found = []
        for line in self.lines:
            m = LINE.match(line)
            if m and m["app"] == "socklab-node":
                found.append(json.loads(m["text"]))
        return found

    def wait_for(self, check: Callable[[list[dict[str, object]]], bool], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check(self.events()):
                return
            time.sleep(0.02)
        raise AssertionError("timed out; output:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(10)
        self._poll()
        return code

    def start(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_entry(self.pkg, "supervisor_start"), *argv],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )


@pytest.fixture
def node(pkg: Path, tmp_path: Path) -> Iterator[Callable[..., Node]]:
    made: list[Node] = []

    def make(start: list[list[str]], **env: str) -> Node:
        made.append(Node(pkg, tmp_path / "run", start, **env))
        return made[-1]

    yield make
    for n in made:
        if n.proc.poll() is None:
            n.proc.kill()
            n.proc.wait()
        for stream in (n.proc.stdout, n.proc.stderr):
            if stream:
                stream.close()


def _ready(events: list[dict[str, object]]) -> bool:
    return any(e["event"] == "ready" for e in events)


def test_tags_lines_and_reports_ready(node: Callable[..., Node]) -> None:
    n = node(
        [
            [
                sys.executable,
                "-c",
                "import sys; print('out line'); print('err line', file=sys.stderr)",
            ]
        ]
    )
    n.wait_for(lambda ev: _ready(ev) and any(e["event"] == "exited" for e in ev))
    app = Path(sys.executable).name
    spawned = next(e for e in n.events() if e["event"] == "spawned")
    assert spawned["app"] == app and spawned["argv"][0] == sys.executable  # type: ignore[index]
    assert f"{app}[{spawned['pid']}] out line" in "\n".join(n.lines)
    assert all(LINE.match(line) for line in n.lines), n.lines
    assert n.stop() == 0
    assert assert_err_line(n, f"{app}[{spawned['pid']}] err line")
    ready = [e for e in n.events() if e["event"] == "ready"]
    assert ready == [{"event": "ready", "apps": [app], "failed": [], "states": {app: "exited"}, "errors": {}}]
    assert f'{n.proc.pid}] {{"event": "ready"' in "\n".join(n.lines)  # the supervisor's own pid


def assert_err_line(n: Node, text: str) -> bool:
    assert n.proc.stderr is not None
    err = n.proc.stderr.read().splitlines()
    assert all(LINE.match(line) for line in err), err
    return any(line.endswith(text) for line in err)


def test_ready_with_no_commands(node: Callable[..., Node]) -> None:
    n = node([])
    n.wait_for(_ready)
    assert n.stop() == 0


def test_survives_crash_and_missing_command_names_repeats(node: Callable[..., Node]) -> None:
    crash = [sys.executable, "-c", "raise SystemExit(3)"]
    killed = [sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"]
    n = node([crash, ["no-such-command-xyz"], crash, killed])
    n.wait_for(lambda ev: _ready(ev) and sum(e["event"] == "exited" for e in ev) == 3)
    ev = n.events()
    app = Path(sys.executable).name
    codes = {e["app"]: e["code"] for e in ev if e["event"] == "exited"}
    assert codes == {app: 3, f"{app}#2": 3, f"{app}#3": -9}
    failed = next(e for e in ev if e["event"] == "spawn-failed")
    assert failed["app"] == "no-such-command-xyz" and "ENOENT" in str(failed["error"])
    # still alive: it starts one more app after all of that
    assert n.start(sys.executable, "-c", "pass").returncode == 0
    assert n.proc.poll() is None
    assert n.stop() == 0


def test_server_ready_waits_for_listening(node: Callable[..., Node], tmp_path: Path) -> None:
    server = _script(
        tmp_path,
        "slow-server",
        """
        import json, time
        time.sleep(0.5)
        print(json.dumps({"event": "listening", "port": 5000}), flush=True)
        time.sleep(60)
    """,
    )
    n = node([[server], [sys.executable, "-c", "import time; time.sleep(60)"]])
    n.wait_for(_ready)
    text = "\n".join(n.lines)
    assert text.index('"event": "listening"') < text.index('"event": "ready"')
    assert n.stop() == 0
    exits = {e["app"]: e["code"] for e in n.events() if e["event"] == "exited"}
    assert exits == {"slow-server": -15, Path(sys.executable).name: -15}


def test_a_port_that_never_listens_fails_the_app(node: Callable[..., Node], tmp_path: Path) -> None:
    """Its name does not matter (``mute-server``); ``wait: tcp/PORT`` does."""
    server = _script(tmp_path, "mute-server", "import time\ntime.sleep(60)\n")
    quiet = [sys.executable, "-c", "import time; time.sleep(60)"]
    n = node([{"argv": [server], "wait": "tcp/1"}, quiet], SOCKLAB_READY_TIMEOUT="0.5")
    n.wait_for(_ready)
    events = n.events()
    names = [e["event"] for e in events]
    assert names.index("not-listening") < names.index("ready")
    ready = next(e for e in events if e["event"] == "ready")
    assert ready["failed"] == ["mute-server"]  # an idle app with no port to wait for runs
    assert ready["states"] == {"mute-server": "failed", Path(sys.executable).name: "running"}
    assert n.stop() == 0


def test_sigterm_kills_stubborn_children_after_grace(node: Callable[..., Node], tmp_path: Path) -> None:
    stubborn = _script(
        tmp_path,
        "stubborn",
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
        time.sleep(60)
    """,
    )
    n = node([[stubborn]])
    n.wait_for(lambda ev: _ready(ev) and any("ignoring SIGTERM" in line for line in n.lines))
    assert n.stop() == 0
    assert [e["code"] for e in n.events() if e["event"] == "exited"] == [-9]
    # SIGKILL came after the grace: by the supervisor's own clock, not this test's
    stopping, exited = (_stamp(n, f'"event": "{e}"') for e in ("stopping", "exited"))
    assert exited - stopping >= STOP_GRACE - 0.01


def test_socklab_start_adds_an_app(node: Callable[..., Node], tmp_path: Path) -> None:
    server = _script(
        tmp_path,
        "late-server",
        """
        import json, sys, time
        time.sleep(0.3)
        print(json.dumps({"event": "listening", "port": int(sys.argv[1])}), flush=True)
        time.sleep(60)
    """,
    )
    n = node([])
    n.wait_for(_ready)
    done = n.start(server, "6000")
    assert done.returncode == 0, done.stderr
    spawned = json.loads(done.stdout)
    assert spawned["event"] == "spawned" and spawned["app"] == "late-server"
    assert spawned["argv"] == [server, "6000"]
    n.wait_for(lambda ev: True)  # the listening line was out before socklab-start returned:
    listening = f'late-server[{spawned["pid"]}] {{"event": "listening", "port": 6000}}'
    assert any(line.endswith(listening) for line in n.lines)
    again = n.start(server, "6001")
    assert json.loads(again.stdout)["app"] == "late-server#2"

    missing = n.start("no-such-command-xyz")
    assert missing.returncode == 1 and "ENOENT" in missing.stderr
    crashing = _script(tmp_path, "crash-server", "raise SystemExit(4)\n")
    crashed = n.start(crashing)
    assert crashed.returncode == 1 and "exited with code 4 before it was ready" in crashed.stderr
    assert n.stop() == 0
    assert not (n.run_dir / "supervisor.sock").exists()


def test_socklab_start_without_supervisor(pkg: Path, tmp_path: Path) -> None:
    env = {**os.environ, "SOCKLAB_RUN_DIR": str(tmp_path)}
    done = subprocess.run(
        [*_entry(pkg, "supervisor_start"), "true"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "no supervisor" in done.stderr


def test_bad_start_json_is_a_config_error(pkg: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SOCKLAB_RUN_DIR": str(tmp_path),
        "SOCKLAB_START": '["tcp-server --port 1"]',
    }
    done = subprocess.run(_entry(pkg, "supervisor"), env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and '"event": "config-error"' in done.stdout


def test_every_line_of_an_instance_carries_the_supervisor_name(
    node: Callable[..., Node], pkg: Path, tmp_path: Path
) -> None:
    """The second tcp-server is `tcp-server#2` in the supervisor's events, in its line tags,
    and in the `app` of its own events (JSON on stdout, readable lines on stderr)."""
    server = _script(
        tmp_path,
        "tcp-server",
        f"""
        import sys
        sys.path.insert(0, {str(pkg)!r})
        from socklab.nodes.tcp_server import main
        sys.exit(main())
    """,
    )
    argv = [server, "--port", "0", "--host", "127.0.0.1"]
    n = node([argv, argv])
    # both listen (their stop handlers are in place) before they are stopped
    n.wait_for(lambda ev: _ready(ev) and sum('"event": "listening"' in line for line in n.lines) == 2)
    pids = {e["app"]: e["pid"] for e in n.events() if e["event"] == "spawned"}
    assert set(pids) == {"tcp-server", "tcp-server#2"}
    assert n.stop() == 0
    assert n.proc.stderr is not None
    err = n.proc.stderr.read().splitlines()
    for name, pid in pids.items():
        out = [m for m in map(LINE.match, n.lines) if m and m["pid"] == str(pid)]
        events = [json.loads(m["text"]) for m in out]
        assert [e["event"] for e in events] == ["created", "bound", "listening", "stopped"], n.lines
        assert {m["app"] for m in out} == {e["app"] for e in events} == {name}
        readable = [m for m in map(LINE.match, err) if m and m["pid"] == str(pid)]
        assert readable[0]["text"].startswith(f"{name}: socket(AF_INET, SOCK_STREAM)"), err
        assert readable[2]["text"].startswith(f"{name}: listening on 127.0.0.1:"), err
        assert all(m["app"] == name and m["text"].startswith(f"{name}: ") for m in readable), err


def test_hold_keeps_start_commands_until_released(node: Callable[..., Node]) -> None:
    n = node([[sys.executable, "-c", "print('started')"]], SOCKLAB_HOLD="30")
    deadline = time.monotonic() + 10
    while not (Path(n.env["SOCKLAB_RUN_DIR"]) / "supervisor.sock").exists():
        assert time.monotonic() < deadline, n.lines
        time.sleep(0.02)
    time.sleep(0.3)
    assert not any(e["event"] == "spawned" for e in n.events())  # held
    released = n.start("--release")
    assert released.returncode == 0, released.stderr
    n.wait_for(lambda ev: _ready(ev) and any(e["event"] == "exited" for e in ev))
    assert n.stop() == 0


def test_hold_ends_with_a_warning_after_its_time(node: Callable[..., Node]) -> None:
    n = node([[sys.executable, "-c", "pass"]], SOCKLAB_HOLD="0.3")
    n.wait_for(_ready)
    warning = next(e for e in n.events() if e["event"] == "warning")
    assert "network setup not done" in str(warning["message"])
    assert n.stop() == 0


def _states(n: Node) -> dict[str, object]:
    return next(e for e in n.events() if e["event"] == "ready")["states"]  # type: ignore[return-value]


def _apps_file(n: Node) -> dict[str, dict[str, object]]:
    return {a["app"]: a for a in json.loads((n.run_dir / "apps.json").read_text())}


def test_any_program_that_listens_is_ready_once_it_listens(node: Callable[..., Node]) -> None:
    """No `listening` event and no `-server` name: a child of `sh` that binds a port."""
    web = ["sh", "-c", f"{sys.executable} -m http.server 0 --bind 127.0.0.1 >/dev/null 2>&1"]
    n = node([web, ["true"], ["sh", "-c", "echo oops >&2; exit 3"]])
    n.wait_for(_ready)
    assert _states(n) == {"sh": "listening", "true": "exited", "sh#2": "failed"}
    ready = next(e for e in n.events() if e["event"] == "ready")
    assert ready["failed"] == ["sh#2"]
    assert ready["errors"] == {"sh#2": "exited with code 3 before it was ready"}
    apps = _apps_file(n)
    [port] = apps["sh"]["ports"]  # type: ignore[misc]
    assert re.fullmatch(r"tcp/\d+", port) and apps["sh"]["state"] == "listening"
    assert apps["true"]["code"] == 0
    assert apps["sh#2"]["error"] == "exited with code 3 before it was ready"
    assert n.stop() == 0
    after = _apps_file(n)
    assert after["sh"]["state"] == "exited" and after["sh"]["code"] == -15


def test_wait_none_and_seconds_do_not_wait_for_a_port(node: Callable[..., Node]) -> None:
    late = ["sh", "-c", "sleep 5; echo late"]
    busy = [sys.executable, "-c", "while True: pass"]  # never idle: `auto` would wait longer
    n = node([{"argv": late, "wait": "none"}, {"argv": busy, "wait": 0.2}], SOCKLAB_READY_TIMEOUT="60")
    n.wait_for(_ready)
    assert not any(line.endswith(" late") for line in n.lines)  # ready came first
    assert _states(n) == {"sh": "running", Path(sys.executable).name: "running"}
    assert n.stop() == 0


def test_a_port_wait_outlives_a_launcher_that_leaves_a_daemon(
    node: Callable[..., Node], tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pidfile = tmp_path / "daemon.pid"
    daemon = (
        f"setsid {sys.executable} -c 'import time; time.sleep(0.5); "
        f"import http.server as h; h.test(h.SimpleHTTPRequestHandler, port={port}, "
        f'bind="127.0.0.1")\' >/dev/null 2>&1 & echo $! > {pidfile}'
    )
    n = node([{"argv": ["sh", "-c", daemon], "wait": f"tcp/{port}"}])
    try:
        n.wait_for(_ready)
        ready = next(e for e in n.events() if e["event"] == "ready")
        assert ready["failed"] == [] and ready["states"] == {"sh": "exited"}
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the port was listening when the node said ready
    finally:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
    assert n.stop() == 0


def test_answers_the_socket_table_to_whoever_connects(node: Callable[..., Node]) -> None:
    n = node([])
    n.wait_for(_ready)
    where = str(n.run_dir / "sockets.sock")
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(where)
        mine = os.fstat(conn.fileno()).st_ino
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    rows = json.loads(answer)
    listening = {r["local_ip"]: r for r in rows if r["proto"] == "unix" and r["state"] == "LISTENING"}
    for name in ("supervisor.sock", "sockets.sock"):  # its own, owned by it
        assert listening[str(n.run_dir / name)]["pid"] == n.proc.pid
    # the asking end and the answering end of this connection are not in the table
    assert not [r for r in rows if r["inode"] == mine or r["pid"] == os.getpid()]
    assert not [r for r in rows if r["pid"] == n.proc.pid and r["state"] != "LISTENING"]
    assert n.stop() == 0
    assert not (n.run_dir / "sockets.sock").exists()
