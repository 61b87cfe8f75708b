"""``socklab-node``: the main process of every node container (under docker-init).

Starts the commands of ``SOCKLAB_START`` (a JSON list whose entries are argv lists,
or ``{"argv": [...], "wait": W}``; never run through a shell) as children, tags
each line they print as ``<UTC time> <app>[<pid>] <line>`` (stdout to stdout,
stderr to stderr), keeps the node alive when they exit, and prints
``{"event": "ready", "apps": [...], "failed": [...], "states": {...}, "errors": {...}}``
once every app is *started*, as its ``wait`` says:

- ``auto`` (the default): once its process tree listens (a TCP socket in LISTEN or a
  bound UDP socket, seen in ``/proc``; or the app printed its ``listening`` event);
  or it exited (code 0: ``exited``; another code: failed); or it has run for a
  grace period (``SOCKLAB_START_GRACE``, 1 s) and is idle (no CPU time used), else
  once it has run ``SOCKLAB_READY_TIMEOUT`` seconds (15): ``running``.
- ``tcp/PORT`` or ``udp/PORT``: once anything in the node listens on that port
  (a daemon that forks away counts); failed if the app exits first or the port is
  not there after ``SOCKLAB_READY_TIMEOUT`` seconds (a ``not-listening`` event).
- a number of seconds: as ``auto``, but ``running`` after that many seconds.
- ``none``: once spawned.

An app that could not be spawned is failed. The state of every app (``listening``,
``running``, ``exited`` with its code, ``failed``) is kept in
``$SOCKLAB_RUN_DIR/apps.json``. SIGTERM/SIGINT stop the children (SIGTERM, then
SIGKILL after 2 s) and exit 0. ``<app>`` is the command's name, ``#N`` added for its
N-th instance (``tcp-server#2``); the child gets that name in ``SOCKLAB_APP``, and the
node apps put it in their own events' ``app`` field, so every line agrees.

``socklab-start ARGV...`` (:func:`start_main`) asks the running supervisor,
through the UNIX socket ``$SOCKLAB_RUN_DIR/supervisor.sock`` (``/run/socklab``
by default), to start one more app (``wait: auto``), and prints its ``spawned``
event once it is started.

Whoever connects to ``$SOCKLAB_RUN_DIR/sockets.sock`` gets the node's socket table, as
``socklab-sockets --json`` prints it, and the connection closed: a snapshot reads it
with ``nc -U``, which costs the node far less than starting a Python program.

``SOCKLAB_HOLD=SECONDS`` holds the start commands until ``socklab-start --release``
(sent once socklab's helper has set up the node's network: routes, impairments) or
for that long at most (then a ``warning`` event says so).

``SOCKLAB_RESOLV_CONF``, when set, is written to /etc/resolv.conf before any app
starts (the lab's DNS server; Docker writes that file at every container start,
so the supervisor writes it again after each start or restart).

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import sys
import threading
import time

from socklab.nodes import APP_NAME_ENV  # not via events: the supervisor starts light
from socklab.nodes.json_text import dumps

TYPE_CHECKING = False
if TYPE_CHECKING:  # not imported at run time: every node starts this program
    import subprocess
    from typing import IO, Any, Dict, List, Optional, Tuple

# json (it reads what apps print), subprocess and socklab.nodes.readiness are imported by
# the first app started: a node without start commands never needs them.

SELF = "socklab-node"
DEFAULT_RUN_DIR = "/run/socklab"
SOCKET_NAME = "supervisor.sock"
SOCKETS_NAME = "sockets.sock"
STATE_NAME = "apps.json"
STOP_GRACE = 2.0
START_GRACE = 1.0
POLL = 0.05
IDLE_WINDOW = 0.25
MAX_LINE = 65536


def _now() -> str:
    """UTC, to the microsecond (without the datetime module: the supervisor starts light)."""
    seconds, micros = divmod(time.time_ns() // 1000, 1000000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".%06dZ" % micros


def run_dir() -> str:
    return os.environ.get("SOCKLAB_RUN_DIR", DEFAULT_RUN_DIR)


def socket_path() -> str:
    """Where the supervisor listens for runtime starts."""
    return os.path.join(run_dir(), SOCKET_NAME)


def sockets_path() -> str:
    """Where the supervisor answers with the node's socket table."""
    return os.path.join(run_dir(), SOCKETS_NAME)


class Output:
    """Tagged, line-buffered writes to the supervisor's stdout and stderr."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def line(self, app: str, pid: int, text: str, err: bool = False) -> None:
        stream = sys.stderr if err else sys.stdout
        with self._lock:
            try:
                stream.write("%s %s[%d] %s\n" % (_now(), app, pid, text))
                stream.flush()
            except (OSError, ValueError):
                pass

    def event(self, event: str, **fields: Any) -> Dict[str, Any]:
        record: Dict[str, Any] = {"event": event}
        record.update(fields)
        self.line(SELF, os.getpid(), dumps(record))
        return record


class App:
    """One child process and its readiness (see the module's ``wait`` values)."""

    def __init__(self, name: str, argv: List[str], wait: Any = "auto") -> None:
        self.name = name
        self.argv = argv
        self.wait = wait
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.error: Optional[str] = None
        self.state = "starting"  # then listening, running, exited or failed
        self.decided = False  # readiness decided (``started`` is set once that is saved)
        self.code: Optional[int] = None
        self.ports: List[str] = []
        self.started = threading.Event()  # readiness decided
        self.done = threading.Event()  # exit reported (or never spawned)
        self.spawned: Dict[str, Any] = {}

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    def record(self) -> Dict[str, Any]:
        return {
            "app": self.name,
            "pid": self.proc.pid if self.proc else None,
            "argv": self.argv,
            "wait": self.wait,
            "state": self.state,
            "code": self.code,
            "ports": self.ports,
            "error": self.error,
        }


class Supervisor:
    """The children of one node."""

    def __init__(
        self, out: Output, ready_timeout: float, grace: float = START_GRACE, state_path: Optional[str] = None
    ) -> None:
        self.out = out
        self.ready_timeout = ready_timeout
        self.grace = grace
        self.state_path = state_path
        self.apps: List[App] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._names: Dict[str, int] = {}
        self.released = threading.Event()

    # -- starting ---------------------------------------------------------------

    def start(self, argv: List[str], wait: Any = "auto") -> App:
        """Spawn one app; failures are reported as events, never raised."""
        with self._lock:
            base = os.path.basename(argv[0]) or argv[0]
            count = self._names.get(base, 0) + 1
            self._names[base] = count
            app = App(base if count == 1 else "%s#%d" % (base, count), argv, wait)
            self.apps.append(app)
            if self.stopping.is_set():
                app.error = "supervisor is stopping"
            else:
                self._spawn(app)
        if app.proc is None:
            self._decide(app, "failed")
            app.done.set()
        else:
            self.save()
        return app

    def _decide(self, app: App, state: str) -> None:
        """The app's readiness is known: it is listening, running, exited or failed."""
        with self._lock:
            if app.decided:
                return
            app.decided = True
            app.state = "exited" if app.code is not None and state != "failed" else state
        self.save()  # before anyone hears it is started: the state file says so already
        app.started.set()

    def save(self) -> None:
        """Write every app's state to the state file (replaced whole, never half-written)."""
        if self.state_path is None:
            return
        with self._save_lock:  # one writer at a time: a later state never loses to an older
            with self._lock:
                text = dumps([a.record() for a in self.apps])
            tmp = self.state_path + ".tmp"
            try:
                with open(tmp, "w") as f:
                    f.write(text + "\n")
                os.replace(tmp, self.state_path)
            except OSError:
                pass

    def _spawn(self, app: App) -> None:
        import subprocess

        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for key in ("SOCKLAB_START", "SOCKLAB_RESOLV_CONF"):
            env.pop(key, None)
        env[APP_NAME_ENV] = app.name  # the apps tag their events with it (tcp-server#2)
        try:
            app.proc = subprocess.Popen(
                app.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            code = getattr(exc, "errno", None)
            name = errno.errorcode.get(code, "") if isinstance(code, int) else ""
            reason = getattr(exc, "strerror", None) or str(exc)
            app.error = "%s: %s: %s" % (name, reason, app.argv[0]) if name else str(exc)
            self.out.event("spawn-failed", app=app.name, error=app.error)
            return
        proc = app.proc
        app.spawned = self.out.event("spawned", app=app.name, pid=proc.pid, argv=app.argv)
        readers = [
            threading.Thread(target=self._read, args=(app, proc.stdout, False), daemon=True),
            threading.Thread(target=self._read, args=(app, proc.stderr, True), daemon=True),
        ]
        for thread in readers:
            thread.start()
        threading.Thread(target=self._wait, args=(app, readers), daemon=True).start()
        if app.wait == "none":
            app.state, app.decided = "running", True
            app.started.set()
        else:
            threading.Thread(target=self._watch, args=(app,), daemon=True).start()

    def _read(self, app: App, pipe: Optional[IO[bytes]], err: bool) -> None:
        from socklab.nodes import readiness

        assert pipe is not None and app.proc is not None
        pid = app.proc.pid
        with pipe:
            for raw in iter(lambda: pipe.readline(MAX_LINE), b""):
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.out.line(app.name, pid, text, err)
                if not err and not app.decided and app.wait == "auto" and _is_listening(text):
                    app.ports = readiness.tree_listening(pid)  # it printed that after listen()
                    self._decide(app, "listening")

    def _wait(self, app: App, readers: List[threading.Thread]) -> None:
        assert app.proc is not None
        code = app.proc.wait()
        # let the last lines out first (a grandchild may hold the pipe): a failure's reason
        # is in them, so a failed app is waited for longer
        until = time.monotonic() + (0.5 if code == 0 else 3.0)
        for thread in readers:
            thread.join(max(0.0, until - time.monotonic()))
        self.out.event("exited", app=app.name, pid=app.proc.pid, code=code)
        app.code = code
        port_wait = isinstance(app.wait, str) and "/" in app.wait
        if not app.decided and (code != 0 or not port_wait):  # ended before it was ready
            if code != 0:
                app.error = "exited with code %d before %s" % (
                    code,
                    "listening on %s" % app.wait if port_wait else "it was ready",
                )
            self._decide(app, "failed" if app.error else "exited")
        # else a launcher that left a daemon: its port is still awaited (``_watch``)
        if app.state != "failed":
            app.state = "exited"
        self.save()
        app.done.set()

    def _watch(self, app: App) -> None:
        """Decide when a spawned app is ready, as its ``wait`` says (until it exits)."""
        from socklab.nodes import readiness

        assert app.proc is not None
        pid = app.proc.pid
        t0 = time.monotonic()
        port = app.wait if isinstance(app.wait, str) and "/" in app.wait else None
        seconds = app.wait if isinstance(app.wait, (int, float)) else None
        grace_end = t0 + (seconds if seconds is not None else self.grace)
        idle_check, ticks = t0, -1
        while not app.started.wait(POLL):
            now = time.monotonic()
            if port is not None:
                if readiness.port_listening(port):
                    app.ports = [port]
                    self._decide(app, "listening")
                elif now - t0 >= self.ready_timeout:
                    app.error = "not listening on %s after %g s" % (port, self.ready_timeout)
                    self.out.event("not-listening", app=app.name, port=port, seconds=self.ready_timeout)
                    self._decide(app, "failed")
                continue
            found = readiness.tree_listening(pid)
            if found:
                app.ports = found
                self._decide(app, "listening")
            elif now >= grace_end and (seconds is not None or now - t0 >= self.ready_timeout):
                self._decide(app, "running")
            elif now >= grace_end and now - idle_check >= IDLE_WINDOW:
                used = readiness.cpu_ticks(readiness.session_pids(pid))
                if used == ticks:  # idle for a while: waiting for something, not starting up
                    self._decide(app, "running")
                idle_check, ticks = now, used

    def announce_ready(self, apps: List[App]) -> None:
        """Print the ``ready`` event once all of ``apps`` are started."""
        for app in apps:
            app.started.wait()
        if not self.stopping.is_set():
            self.out.event(
                "ready",
                apps=[a.name for a in apps if not a.failed],
                failed=[a.name for a in apps if a.failed],
                states={a.name: a.state for a in apps},
                errors={a.name: a.error for a in apps if a.failed},
            )

    # -- stopping ---------------------------------------------------------------

    def stop(self) -> None:
        """SIGTERM every live child's process group, SIGKILL what is left after 2 s."""
        with self._lock:
            self.stopping.set()
            live = [a for a in self.apps if a.proc is not None and not a.done.is_set()]
        for app in live:
            _signal(app, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for app in live:
            app.done.wait(max(0.0, deadline - time.monotonic()))
        for app in live:
            if not app.done.is_set():
                _signal(app, signal.SIGKILL)
        for app in live:
            app.done.wait(1.0)


def _signal(app: App, sig: int) -> None:
    assert app.proc is not None
    try:
        os.killpg(app.proc.pid, sig)
    except OSError:
        with contextlib.suppress(OSError):
            app.proc.send_signal(sig)


def _is_listening(text: str) -> bool:
    if '"listening"' not in text:
        return False
    import json

    start = text.find("{")
    try:
        record = json.loads(text[start:]) if start >= 0 else None
    except ValueError:
        return False
    return isinstance(record, dict) and record.get("event") == "listening"


# -- runtime starts (UNIX socket) ---------------------------------------------


def _serve(sup: Supervisor, listener: socket.socket) -> None:
    while not sup.stopping.is_set():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_handle, args=(sup, conn), daemon=True).start()


def _serve_sockets(sup: Supervisor, listener: socket.socket) -> None:
    while not sup.stopping.is_set():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_answer_sockets, args=(conn,), daemon=True).start()


def _answer_sockets(conn: socket.socket) -> None:
    """The node's socket table (``socklab-sockets --json``) to whoever connects: a snapshot
    through ``docker exec nc -U`` starts no Python. The connection itself and the sockets
    of the process on its other end are left out: they exist only for the asking."""
    import struct

    from socklab.nodes import sockstat  # only when a snapshot asks

    with conn:
        try:
            peer = struct.unpack(
                "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            )[0]
            mine = os.fstat(conn.fileno()).st_ino
            rows = [
                r
                for r in sockstat.read_sockets()
                if r["inode"] != mine and (r["pid"] is None or r["pid"] != peer)
            ]
            conn.sendall((sockstat.to_json(rows) + "\n").encode("utf-8"))
        except OSError:
            pass


def _handle(sup: Supervisor, conn: socket.socket) -> None:
    with conn, conn.makefile("rwb") as stream:
        try:
            import json

            request = json.loads(stream.readline(MAX_LINE).decode("utf-8"))
            release = isinstance(request, dict) and request.get("release") is True
            argv: Any = request.get("argv") if isinstance(request, dict) else None
            if not release and not _is_argv(argv):
                raise ValueError('expected {"argv": [non-empty list of strings]}')
        except ValueError as exc:
            reply: Dict[str, Any] = {"ok": False, "error": "bad request: %s" % exc}
        else:
            if release:
                sup.released.set()
                reply = {"ok": True, "released": True}
            else:
                app = sup.start(argv)
                app.started.wait()
                reply = _start_reply(app)
        try:
            stream.write((dumps(reply) + "\n").encode("utf-8"))
            stream.flush()
        except OSError:
            pass


def _start_reply(app: App) -> Dict[str, Any]:
    if app.proc is None:
        return {"ok": False, "error": app.error or "not started"}
    if app.failed:
        return {"ok": False, "error": "%s %s" % (app.name, app.error), "spawned": app.spawned}
    return {"ok": True, "spawned": app.spawned, "state": app.state}


def _is_argv(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(a, str) for a in value)
        and value[0] != ""
    )


def _listen(path: str) -> Optional[socket.socket]:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(16)
        return listener
    except OSError:
        return None


# -- entry points ---------------------------------------------------------------


def _parse_start(text: str) -> List[Tuple[List[str], Any]]:
    """``(argv, wait)`` of every entry: an argv list, or ``{"argv": [...], "wait": W}``."""
    if text.strip() in ("", "[]"):  # no start commands: no json module either
        return []
    import json

    entries = json.loads(text)
    out: List[Tuple[List[str], Any]] = []
    for entry in entries if isinstance(entries, list) else [None]:
        argv, wait = (
            (entry.get("argv"), entry.get("wait", "auto")) if isinstance(entry, dict) else (entry, "auto")
        )
        if not isinstance(argv, list) or not _is_argv(argv) or not _is_wait(wait):
            raise ValueError(
                "SOCKLAB_START must be a JSON list of argv lists (non-empty string "
                'lists) or {"argv": [...], "wait": "auto"|"none"|"tcp/PORT"|'
                '"udp/PORT"|SECONDS}'
            )
        out.append((argv, wait))
    return out


def _is_wait(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return value > 0
    if value in ("auto", "none"):
        return True
    kind, _, port = str(value).partition("/")
    return kind in ("tcp", "udp") and port.isdigit() and 0 < int(port) < 65536


def write_resolv_conf(out: Output, text: str, path: str = "/etc/resolv.conf") -> None:
    """Replace the resolver configuration in place (it is a bind mount: no rename)."""
    try:
        with open(path, "w") as conf:
            conf.write(text)
    except OSError as exc:
        out.event("warning", message="cannot write %s: %s" % (path, exc))
        return
    nameservers = [
        line.split()[1]
        for line in text.splitlines()
        if line.startswith("nameserver") and len(line.split()) > 1
    ]
    out.event("resolv-conf", path=path, nameservers=nameservers)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the node: start the apps, tag their output, stay up until SIGTERM/SIGINT."""
    out = Output()
    if os.environ.get("SOCKLAB_RESOLV_CONF"):
        write_resolv_conf(out, os.environ["SOCKLAB_RESOLV_CONF"])
    try:
        commands = _parse_start(os.environ.get("SOCKLAB_START", ""))
        ready_timeout = float(os.environ.get("SOCKLAB_READY_TIMEOUT", "15"))
        grace = float(os.environ.get("SOCKLAB_START_GRACE", START_GRACE))
        hold = float(os.environ.get("SOCKLAB_HOLD") or 0)
    except ValueError as exc:
        out.event("config-error", error=str(exc))
        return 2
    with contextlib.suppress(OSError):
        os.makedirs(run_dir(), exist_ok=True)
    sup = Supervisor(out, ready_timeout, grace, os.path.join(run_dir(), STATE_NAME))
    sup.save()  # no app yet: the state file says so (a node without one has no supervisor)
    stop = threading.Event()
    received: List[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    path = socket_path()
    listener = _listen(path)
    if listener is None:
        out.event("warning", message="cannot listen on %s; socklab-start will not work" % path)
    else:
        threading.Thread(target=_serve, args=(sup, listener), daemon=True).start()
    answerer = _listen(sockets_path())
    if answerer is not None:  # without it, socklab reads the sockets with socklab-sockets
        threading.Thread(target=_serve_sockets, args=(sup, answerer), daemon=True).start()
    if hold > 0 and not sup.released.wait(hold):
        out.event("warning", message="network setup not done after %gs; starting anyway" % hold)
    apps = [sup.start(argv, wait) for argv, wait in commands]
    threading.Thread(target=sup.announce_ready, args=(apps,), daemon=True).start()
    while not stop.wait(1.0):
        pass
    out.event("stopping", signal=signal.Signals(received[0]).name if received else None)
    for sock, where in ((listener, path), (answerer, sockets_path())):
        if sock is not None:
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(where)
    sup.stop()
    return 0


def start_main(argv: Optional[List[str]] = None) -> int:
    """``socklab-start ARGV...``: start one more app in the running node supervisor."""
    import json

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--"]:
        args = args[1:]
    if not args or args[0] in ("-h", "--help"):
        sys.stderr.write(
            "usage: socklab-start COMMAND [ARG...] | socklab-start --release\n"
            "Start COMMAND as one more app of this node's supervisor (--release: start the\n"
            "start commands it holds until the node's network is set up).\n"
        )
        return 0 if args else 2
    path = socket_path()
    request = {"release": True} if args == ["--release"] else {"argv": args}
    deadline = time.monotonic() + (10.0 if "release" in request else 0.0)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(float(os.environ.get("SOCKLAB_READY_TIMEOUT", "15")) + 15)
            while True:  # a release may come while the supervisor is starting
                try:
                    conn.connect(path)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            with conn.makefile("rwb") as stream:
                stream.write((json.dumps(request) + "\n").encode("utf-8"))
                stream.flush()
                line = stream.readline(MAX_LINE)
    except OSError as exc:
        sys.stderr.write("socklab-start: no supervisor at %s: %s\n" % (path, exc))
        return 2
    try:
        reply = json.loads(line.decode("utf-8"))
    except ValueError:
        sys.stderr.write("socklab-start: bad reply from the supervisor: %r\n" % line[:200])
        return 2
    if reply.get("spawned"):
        sys.stdout.write(json.dumps(reply["spawned"]) + "\n")
        sys.stdout.flush()
    if reply.get("warning"):
        sys.stderr.write("socklab-start: warning: %s\n" % reply["warning"])
    if not reply.get("ok"):
        sys.stderr.write("socklab-start: %s\n" % reply.get("error", "failed"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
