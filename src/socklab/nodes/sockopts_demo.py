"""``sockopts``: socket options set with setsockopt() and read back with getsockopt().

Three levels, as in the notes: the socket itself (SOL_SOCKET: SO_REUSEADDR, SO_KEEPALIVE,
SO_RCVBUF, SO_SNDBUF, SO_LINGER), TCP (IPPROTO_TCP: TCP_NODELAY) and IP (IPPROTO_IP:
IP_TTL). Then SO_REUSEADDR for real: a port held by a TIME_WAIT connection cannot be
bound again without it (EADDRINUSE), and can with it. ``--listen`` / ``--connect HOST
[--test NAME...]`` show the options between two nodes and measure their effect
(``socklab.nodes.sockopts_effects``).
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any, Optional

from socklab.nodes import across, sockopts_effects
from socklab.nodes.arguments import app_parser
from socklab.nodes.events import EventLog
from socklab.nodes.loopback import tcp_pair

APP = "sockopts"
PORT = 6005

# (level name, level, option name, option, value to set, note)
OPTIONS: "tuple[tuple[str, int, str, int, Any, str], ...]" = (
    ("SOL_SOCKET", socket.SOL_SOCKET, "SO_REUSEADDR", socket.SO_REUSEADDR, 1, ""),
    ("SOL_SOCKET", socket.SOL_SOCKET, "SO_KEEPALIVE", socket.SO_KEEPALIVE, 1, ""),
    (
        "SOL_SOCKET",
        socket.SOL_SOCKET,
        "SO_RCVBUF",
        socket.SO_RCVBUF,
        65536,
        "Linux doubles the value asked for (room for its bookkeeping)",
    ),
    (
        "SOL_SOCKET",
        socket.SOL_SOCKET,
        "SO_SNDBUF",
        socket.SO_SNDBUF,
        65536,
        "Linux doubles the value asked for (room for its bookkeeping)",
    ),
    (
        "SOL_SOCKET",
        socket.SOL_SOCKET,
        "SO_LINGER",
        socket.SO_LINGER,
        (1, 0),
        "struct linger {on, seconds}: on with 0 s makes close() send RST",
    ),
    (
        "IPPROTO_TCP",
        socket.IPPROTO_TCP,
        "TCP_NODELAY",
        socket.TCP_NODELAY,
        1,
        "turns Nagle's algorithm off: small writes leave at once",
    ),
    ("IPPROTO_IP", socket.IPPROTO_IP, "IP_TTL", socket.IP_TTL, 32, ""),
)


def read_option(sock: socket.socket, level: int, option: int, linger: bool) -> Any:
    if linger:
        return list(struct.unpack("ii", sock.getsockopt(level, option, struct.calcsize("ii"))))
    return sock.getsockopt(level, option)


def show_options(log: EventLog) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock_type = sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
        log.emit(
            "option",
            level="SOL_SOCKET",
            option="SO_TYPE",
            value=sock_type,
            text=f"getsockopt(SOL_SOCKET, SO_TYPE) -> {sock_type} (SOCK_STREAM, read only)",
        )
        for level_name, level, name, option, value, note in OPTIONS:
            linger = name == "SO_LINGER"
            before = read_option(sock, level, option, linger)
            sock.setsockopt(level, option, struct.pack("ii", *value) if linger else value)
            after = read_option(sock, level, option, linger)
            shown = list(value) if linger else value
            log.emit(
                "option",
                level=level_name,
                option=name,
                default=before,
                set=shown,
                read_back=after,
                note=note,
                text=f"{level_name}.{name}: default {before}, set {shown}, "
                f"read back {after}" + (f" ({note})" if note else ""),
            )


def tcp_state(port: int) -> Optional[str]:
    """The /proc/net/tcp state code of the IPv4 socket bound to local ``port`` (06 is TIME_WAIT)."""
    try:
        with open("/proc/net/tcp") as table:
            next(table)
            for line in table:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return fields[3]
    except OSError:
        return None
    return None


def wait_for_state(port: int, code: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    state = tcp_state(port)
    while state != code and time.monotonic() < deadline:
        time.sleep(0.01)
        state = tcp_state(port)
    return {"06": "TIME_WAIT", "05": "FIN_WAIT2", "04": "FIN_WAIT1"}.get(state or "", str(state))


def time_wait_port(log: EventLog) -> int:
    """A port whose only socket is in TIME_WAIT: the server side closes first.

    Linux lets a new socket bind over a TIME_WAIT one only if both set SO_REUSEADDR,
    so the first server sets it too, as a restartable server does."""
    listener, client, server = tcp_pair(reuseaddr=True)
    port = int(listener.getsockname()[1])
    listener.close()
    server.close()  # active close: this side goes through FIN_WAIT to TIME_WAIT
    client.recv(1)  # EOF
    client.close()
    state = wait_for_state(port, "06", 1.0)
    log.emit(
        "time_wait",
        port=port,
        state=state,
        text=f"port {port}: the server (SO_REUSEADDR) closed first, its side waits in TIME_WAIT",
    )
    return port


def try_bind(port: int, reuse: bool, log: EventLog) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen(1)
        except OSError as exc:
            log.error(
                exc,
                target=f"127.0.0.1:{port}",
                action="bind",
                reuseaddr=reuse,
                hint="a TIME_WAIT connection still holds the port; SO_REUSEADDR allows it",
            )
            return False
        log.emit(
            "bound",
            port=port,
            reuseaddr=reuse,
            text=f"bind(127.0.0.1:{port}) with SO_REUSEADDR=1 succeeds despite TIME_WAIT",
        )
        return True


def main(argv: Optional[list[str]] = None) -> int:
    parser = app_parser(APP, "getsockopt/setsockopt at the socket, TCP and IP levels.")
    across.add_role_options(parser, PORT)
    parser.add_argument(
        "--test",
        action="append",
        choices=sockopts_effects.TESTS,
        help="with --connect: what to show (repeatable; default: "
        + ", ".join(sockopts_effects.DEFAULT_TESTS)
        + ")",
    )
    parser.add_argument("--off", action="store_true", help="--test keepalive without keepalive")
    args = parser.parse_args(argv)
    log = EventLog(APP, human=args.human)
    if args.listen:
        return across.serve(args.port, sockopts_effects.server_half, log, sockopts_effects.setup_listener)
    if args.connect:
        tests = args.test or list(sockopts_effects.DEFAULT_TESTS)
        try:
            ok = sockopts_effects.client_half(args.connect, args.port, args.timeout, tests, args.off, log)
        except OSError as exc:
            log.error(exc, target=f"{args.connect}:{args.port}", action="sockopts")
            return 1
        return 0 if ok else 1
    show_options(log)
    port = time_wait_port(log)
    refused = not try_bind(port, reuse=False, log=log)
    reused = try_bind(port, reuse=True, log=log)
    ok = refused and reused
    log.emit(
        "done",
        ok=ok,
        without_reuseaddr="EADDRINUSE" if refused else "bound",
        with_reuseaddr="bound" if reused else "failed",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
