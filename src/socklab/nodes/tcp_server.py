"""``tcp-server``: an echo server, iterative or concurrent (threads, processes or one event loop).

The notes' server steps, each logged: create the socket, bind it to the service
port, listen, then loop: accept a connection, read a request, (``--delay``: work),
send the reply, until the client closes. ``--mode`` picks how clients are served:

- ``iterative``: one loop in one process; the next client waits in the backlog.
- ``threaded``: a thread per connection.
- ``forking``: a child process per connection; the parent reaps them on SIGCHLD.
- ``selectors``: one event loop multiplexes every socket; ``--delay`` is a timer in the loop.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import select
import signal
import socket
import stat
import sys
import threading
import time
from typing import Any, Callable, Optional

from socklab.nodes.addresses import family_name, format_address, wildcard_host
from socklab.nodes.arguments import (
    FAMILIES,
    add_family_option,
    app_parser,
    bind_port,
    positive_float,
)
from socklab.nodes.echo import serve_connection
from socklab.nodes.events import EventLog
from socklab.nodes.tcp_event_loop import run_selectors

APP = "tcp-server"
MODES = ("iterative", "threaded", "forking", "selectors")


class StopServer(Exception):
    """Raised in the main thread by SIGTERM/SIGINT to end the accept loop cleanly."""


def build_parser() -> argparse.ArgumentParser:
    parser = app_parser(APP, "TCP echo server: iterative or concurrent.")
    parser.add_argument("--port", type=bind_port, help="port to listen on (0: any free port)")
    parser.add_argument("--mode", choices=MODES, default="iterative")
    parser.add_argument(
        "--delay",
        type=positive_float,
        default=0.0,
        help="seconds of simulated work before each reply",
    )
    parser.add_argument("--backlog", type=int, default=128, help="listen() backlog")
    parser.add_argument("--reuseaddr", action="store_true", help="set SO_REUSEADDR before bind()")
    add_bind_options(parser)
    return parser


def add_bind_options(parser: argparse.ArgumentParser) -> None:
    """``--family``, ``--path`` and ``--host``: with ``--port``, what bind_address() reads."""
    add_family_option(parser)
    parser.add_argument("--path", help="socket path to bind (required with --family unix)")
    parser.add_argument("--host", help="address to bind (default: every address of the family)")


def address_missing(args: argparse.Namespace, log: EventLog) -> bool:
    """inet and inet6 servers need ``--port`` (0: any free port); a unix one needs ``--path``."""
    if FAMILIES[args.family] == socket.AF_UNIX:
        if not args.path:
            log.failure("--path is required for --family unix (the socket file to bind)")
            return True
    elif args.port is None:
        log.failure("--port is required for inet and inet6")
        return True
    return False


def remove_stale_unix_socket(path: str) -> None:
    """Remove a socket file left by a dead server; leave anything else (bind() then fails)."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return
    except FileNotFoundError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
    except OSError:
        pass
    finally:
        probe.close()


def bind_address(args: argparse.Namespace) -> Any:
    family = FAMILIES[args.family]
    if family == socket.AF_UNIX:
        return args.path
    return (args.host or wildcard_host(family), args.port)


def open_listener(args: argparse.Namespace, log: EventLog) -> Optional[socket.socket]:
    """socket() + bind() + listen(), each failure reported with its errno."""
    family = FAMILIES[args.family]
    address = bind_address(args)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if args.reuseaddr:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_UNIX:
            remove_stale_unix_socket(address)
        sock.bind(address)
        sock.listen(args.backlog)
    except OSError as exc:
        log.error(exc, target=format_address(address), action="bind/listen")
        sock.close()
        return None
    return sock


def accept_one(listener: socket.socket, log: EventLog) -> Optional["tuple[socket.socket, str]"]:
    """accept(); a failing accept (EMFILE, ECONNABORTED...) is reported and the loop goes on."""
    try:
        conn, address = listener.accept()
    except OSError as exc:
        log.error(exc, action="accept")
        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            time.sleep(0.1)  # let connections close before trying again
        return None
    peer = format_address(address)
    try:
        local = format_address(conn.getsockname())
    except OSError as exc:  # gone between accept() and now
        log.error(exc, target=peer, action="getsockname")
        conn.close()
        return None
    log.emit("accepted", peer=peer, local=local)
    return conn, peer


def run_iterative(listener: socket.socket, log: EventLog, delay: float) -> None:
    while True:
        accepted = accept_one(listener, log)
        if accepted is not None:
            serve_connection(accepted[0], accepted[1], log, delay)


def run_threaded(listener: socket.socket, log: EventLog, delay: float) -> None:
    while True:
        accepted = accept_one(listener, log)
        if accepted is None:
            continue
        conn, peer = accepted
        worker = threading.Thread(
            target=serve_connection, args=(conn, peer, log, delay), name=f"echo {peer}", daemon=True
        )
        try:
            worker.start()
        except RuntimeError as exc:  # no thread left: refuse this client, keep serving
            log.failure(f"cannot start a thread for {peer}: {exc}", peer=peer)
            conn.close()


def run_forking(listener: socket.socket, log: EventLog, delay: float) -> None:
    """A child process per connection. SIGCHLD reaps the children at once; its wakeup fd
    makes the loop report them (writing events inside a signal handler could re-enter a write)."""
    reaped: list[tuple[int, int]] = []

    def reap(_signum: int, _frame: Any) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            reaped.append((pid, status))

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    previous_wakeup = signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, reap)
    try:
        while True:
            readable, _, _ = select.select([listener.fileno(), wake_r], [], [])
            if wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
            while reaped:
                pid, status = reaped.pop(0)
                log.emit("reaped", child=pid, status=os.waitstatus_to_exitcode(status))
            if listener.fileno() in readable:
                accepted = accept_one(listener, log)
                if accepted is not None:
                    fork_child(listener, accepted[0], accepted[1], log, delay, (wake_r, wake_w))
    finally:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.set_wakeup_fd(previous_wakeup)
        os.close(wake_r)
        os.close(wake_w)


def fork_child(
    listener: socket.socket,
    conn: socket.socket,
    peer: str,
    log: EventLog,
    delay: float,
    parent_fds: "tuple[int, int]",
) -> None:
    try:
        pid = os.fork()
    except OSError as exc:  # EAGAIN, ENOMEM: refuse this client, keep serving
        log.error(exc, target=peer, action="fork")
        conn.close()
        return
    if pid == 0:  # child: serve this client only, then exit without running the parent's cleanup
        code = 0
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_DFL)
            listener.close()
            for fd in parent_fds:
                os.close(fd)
            serve_connection(conn, peer, log, delay)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    conn.close()
    log.emit("forked", peer=peer, child=pid)


def runner_for(mode: str) -> Callable[[socket.socket, EventLog, float], None]:
    runners = {
        "iterative": run_iterative,
        "threaded": run_threaded,
        "forking": run_forking,
        "selectors": run_selectors,
    }
    return runners[mode]


def install_stop_handlers() -> None:
    def stop(signum: int, _frame: Any) -> None:
        raise StopServer(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    log = EventLog(APP, human=args.human)
    if address_missing(args, log):
        return 2
    family = FAMILIES[args.family]
    listener = open_listener(args, log)
    if listener is None:
        return 1
    address = listener.getsockname()
    fields: dict[str, Any] = {
        "proto": "tcp",
        "family": family_name(family),
        "address": format_address(address),
        "mode": args.mode,
        "delay": args.delay,
        "backlog": args.backlog,
        "reuseaddr": args.reuseaddr,
    }
    if family != socket.AF_UNIX:
        fields["port"] = address[1]
    install_stop_handlers()
    text = f"listening on {fields['address']} (tcp, {args.mode}, delay {args.delay}s)"
    log.emit("listening", text=text, **fields)
    try:
        runner_for(args.mode)(listener, log, args.delay)
    except (StopServer, KeyboardInterrupt) as stop:
        log.emit("stopped", reason=str(stop) or "interrupt")
    finally:
        listener.close()
        if family == socket.AF_UNIX and isinstance(address, str) and address:
            with contextlib.suppress(OSError):
                os.unlink(address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
