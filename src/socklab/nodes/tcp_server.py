"""``tcp-server``: an echo server, iterative or concurrent (threads, processes or one event loop).

The notes' server steps, each logged: create the socket (``created``), bind it to the
service port (``bound``), listen (``listening``), then loop: accept a connection
(``accepted``), read a request, (``--delay``: work), send the reply, until the client
closes. Without ``--family`` or ``--host`` the server is dual-stack: one IPv6 socket with
IPV6_V6ONLY off takes IPv4 clients too (IPv4 where the node has no IPv6).
``--mode`` picks how clients are served:

- ``iterative``: one loop in one process; the next client waits in the backlog.
- ``threaded``: a thread per connection.
- ``forking``: a child process per connection; the parent reaps them on SIGCHLD.
- ``selectors``: one event loop multiplexes every socket; ``--delay`` is a timer in the loop.

What a blocking mode does with each connection can be changed: ``--close-after N`` (the
server closes first, so its end waits in TIME_WAIT), ``--linger0`` (read one request, then
close with SO_LINGER 0: RST, the client's recv() fails with ECONNRESET), ``--silent``
(never answer); ``--clients N`` serves N connections, then closes the listening socket and
exits.
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

from socklab.nodes.addresses import FAMILY_CONSTANTS, family_name, format_address, wildcard_host
from socklab.nodes.arguments import (
    FAMILIES,
    add_family_option,
    app_parser,
    bind_port,
    positive_float,
)
from socklab.nodes.echo import Conduct, serve_connection
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
    parser.add_argument(
        "--close-after",
        type=int,
        metavar="N",
        help="close each connection after N echoes: the server closes first (TIME_WAIT here)",
    )
    parser.add_argument(
        "--linger0",
        action="store_true",
        help="read one request, then close with SO_LINGER 0: RST (the client gets ECONNRESET)",
    )
    parser.add_argument("--silent", action="store_true", help="accept and read, never answer (a silent peer)")
    parser.add_argument("--clients", type=int, metavar="N", help="serve N connections, then close and exit")
    add_bind_options(parser)
    return parser


def add_bind_options(parser: argparse.ArgumentParser) -> None:
    """``--family``, ``--path`` and ``--host``: with ``--port``, what bind_address() reads."""
    add_family_option(parser, default=None, unset="dual-stack (IPv6 and IPv4 on one socket)")
    parser.add_argument("--path", help="socket path to bind (required with --family unix)")
    parser.add_argument("--host", help="address to bind (default: every address of the family)")


def address_missing(args: argparse.Namespace, log: EventLog) -> bool:
    """inet and inet6 servers need ``--port`` (0: any free port); a unix one needs ``--path``."""
    if args.family == "unix":
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


def ipv6_available() -> bool:
    """Whether this node can bind an IPv6 socket (Linux may have IPv6 switched off)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::", 0))
        return True
    except OSError:
        return False


def server_family(args: argparse.Namespace) -> "tuple[int, bool]":
    """(address family, dual-stack) of a server: ``--family``, else ``--host``'s, else
    dual-stack IPv6 where the node has IPv6, else IPv4."""
    if args.family:
        return FAMILIES[args.family], False
    if args.host:
        return (socket.AF_INET6 if ":" in args.host else socket.AF_INET), False
    if ipv6_available():
        return socket.AF_INET6, True
    return socket.AF_INET, False


def bind_address(args: argparse.Namespace, family: int) -> Any:
    if family == socket.AF_UNIX:
        return args.path
    return (args.host or wildcard_host(family), args.port)


SOCKET_TYPES: "dict[int, str]" = {socket.SOCK_STREAM: "SOCK_STREAM", socket.SOCK_DGRAM: "SOCK_DGRAM"}


def open_server_socket(
    args: argparse.Namespace, kind: int, log: EventLog
) -> "Optional[tuple[socket.socket, bool]]":
    """socket() and bind() (and for TCP listen()), each step an event, each failure reported
    with its errno. Returns the socket and whether it is dual-stack."""
    family, dual = server_family(args)
    address = bind_address(args, family)
    call = f"socket({FAMILY_CONSTANTS[family]}, {SOCKET_TYPES[kind]})"
    try:
        sock = socket.socket(family, kind)
    except OSError as exc:
        log.error(exc, action=call)
        return None
    try:
        if dual:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        log.emit(
            "created",
            family=family_name(family),
            type=SOCKET_TYPES[kind],
            fd=sock.fileno(),
            dual_stack=dual,
            text=f"{call} -> fd {sock.fileno()}" + (" (IPV6_V6ONLY 0: dual-stack)" if dual else ""),
        )
        if getattr(args, "reuseaddr", False):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_UNIX:
            prepare_unix_path(address, kind)
        sock.bind(address)
        bound = format_address(sock.getsockname())
        log.emit("bound", address=bound, reuseaddr=getattr(args, "reuseaddr", False), text=f"bind({bound})")
        if kind == socket.SOCK_STREAM:
            sock.listen(args.backlog)
    except OSError as exc:
        what = "bind/listen" if kind == socket.SOCK_STREAM else "bind"
        log.error(exc, target=format_address(address), action=what)
        sock.close()
        return None
    return sock, dual


def prepare_unix_path(path: str, kind: int) -> None:
    """A stream server's stale socket file is removed when no one answers on it; a datagram
    socket file cannot be probed for a live owner, so it is removed."""
    if kind == socket.SOCK_STREAM:
        remove_stale_unix_socket(path)
    elif os.path.exists(path):
        os.unlink(path)


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


def run_iterative(listener: socket.socket, log: EventLog, conduct: Conduct, clients: Optional[int]) -> None:
    served = 0
    while clients is None or served < clients:
        accepted = accept_one(listener, log)
        if accepted is not None:
            serve_connection(accepted[0], accepted[1], log, conduct)
            served += 1


def run_threaded(listener: socket.socket, log: EventLog, conduct: Conduct, clients: Optional[int]) -> None:
    workers: list[threading.Thread] = []
    while clients is None or len(workers) < clients:
        accepted = accept_one(listener, log)
        if accepted is None:
            continue
        conn, peer = accepted
        worker = threading.Thread(
            target=serve_connection,
            args=(conn, peer, log, conduct),
            name=f"echo {peer}",
            daemon=True,
        )
        try:
            worker.start()
        except RuntimeError as exc:  # no thread left: refuse this client, keep serving
            log.failure(f"cannot start a thread for {peer}: {exc}", peer=peer)
            conn.close()
            continue
        if clients is not None:
            workers.append(worker)
    for worker in workers:
        worker.join()


def run_forking(listener: socket.socket, log: EventLog, conduct: Conduct, clients: Optional[int]) -> None:
    """A child process per connection. SIGCHLD reaps the children at once; its wakeup fd
    makes the loop report them (writing events inside a signal handler could re-enter a write)."""
    reaped: list[tuple[int, int]] = []
    children: set[int] = set()
    forked = 0

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
        while clients is None or forked < clients or children:
            accepting = clients is None or forked < clients
            watched = [listener.fileno(), wake_r] if accepting else [wake_r]
            readable, _, _ = select.select(watched, [], [], None if accepting else 1.0)
            if wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
            while reaped:
                pid, status = reaped.pop(0)
                children.discard(pid)
                log.emit("reaped", child=pid, status=os.waitstatus_to_exitcode(status))
            if listener.fileno() in readable:
                accepted = accept_one(listener, log)
                if accepted is not None:
                    child = fork_child(listener, accepted[0], accepted[1], log, conduct, (wake_r, wake_w))
                    if child is not None:
                        children.add(child)
                        forked += 1
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
    conduct: Conduct,
    parent_fds: "tuple[int, int]",
) -> Optional[int]:
    try:
        pid = os.fork()
    except OSError as exc:  # EAGAIN, ENOMEM: refuse this client, keep serving
        log.error(exc, target=peer, action="fork")
        conn.close()
        return None
    if pid == 0:  # child: serve this client only, then exit without running the parent's cleanup
        code = 0
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_DFL)
            listener.close()
            for fd in parent_fds:
                os.close(fd)
            serve_connection(conn, peer, log, conduct)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    conn.close()
    log.emit("forked", peer=peer, child=pid)
    return pid


Runner = Callable[[socket.socket, EventLog, Conduct, Optional[int]], None]


def runner_for(mode: str) -> Runner:
    runners: "dict[str, Runner]" = {
        "iterative": run_iterative,
        "threaded": run_threaded,
        "forking": run_forking,
        "selectors": lambda listener, log, conduct, _clients: run_selectors(listener, log, conduct.delay),
    }
    return runners[mode]


def conduct_of(args: argparse.Namespace, log: EventLog) -> Optional[Conduct]:
    """The per-connection options, or None (reported) when they do not fit together."""
    changed = [
        name
        for name, on in (
            ("--close-after", args.close_after is not None),
            ("--linger0", args.linger0),
            ("--silent", args.silent),
            ("--clients", args.clients is not None),
        )
        if on
    ]
    if changed and args.mode == "selectors":
        log.failure(
            f"{', '.join(changed)}: for the blocking modes (iterative, threaded, forking); "
            "--mode selectors only echoes"
        )
        return None
    if args.linger0 + args.silent + (args.close_after is not None) > 1:
        log.failure("give one of --close-after, --linger0 and --silent")
        return None
    for name, value in (("--close-after", args.close_after), ("--clients", args.clients)):
        if value is not None and value < 1:
            log.failure(f"{name} {value}: give a positive number")
            return None
    return Conduct(args.delay, args.close_after, args.linger0, args.silent)


def listening_fields(args: argparse.Namespace, listener: socket.socket, dual: bool) -> "dict[str, Any]":
    """The ``listening`` event's fields."""
    address = listener.getsockname()
    fields: "dict[str, Any]" = {
        "proto": "tcp",
        "family": family_name(listener.family),
        "address": format_address(address),
        "dual_stack": dual,
        "mode": args.mode,
        "delay": args.delay,
        "backlog": args.backlog,
        "reuseaddr": args.reuseaddr,
    }
    for name in ("close_after", "linger0", "silent", "clients"):
        if getattr(args, name):
            fields[name] = getattr(args, name)
    if listener.family != socket.AF_UNIX:
        fields["port"] = address[1]
    return fields


def close_server_socket(sock: socket.socket) -> None:
    """Close a server socket; a UNIX socket's file goes with it."""
    address = sock.getsockname()
    family = sock.family
    sock.close()
    if family == socket.AF_UNIX and isinstance(address, str) and address:
        with contextlib.suppress(OSError):
            os.unlink(address)


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
    conduct = conduct_of(args, log)
    if conduct is None:
        return 2
    # before listen(): a stop that comes as soon as the socket listens is a clean stop
    install_stop_handlers()
    listener: Optional[socket.socket] = None
    try:
        opened = open_server_socket(args, socket.SOCK_STREAM, log)
        if opened is None:
            return 1
        listener, dual = opened
        fields = listening_fields(args, listener, dual)
        text = f"listening on {fields['address']} (tcp, {args.mode}, delay {args.delay}s)"
        log.emit("listening", text=text, **fields)
        runner_for(args.mode)(listener, log, conduct, args.clients)
        reason = f"served {args.clients} clients"
    except (StopServer, KeyboardInterrupt) as stop:
        reason = str(stop) or "interrupt"
    finally:
        if listener is not None:
            close_server_socket(listener)
    log.emit("stopped", reason=reason)  # the listening socket is closed by now
    return 0


if __name__ == "__main__":
    sys.exit(main())
