"""``seqpacket``: SOCK_SEQPACKET on a UNIX socket: connected, reliable, and message boundaries kept.

Like a stream it has listen/accept/connect and EOF; like datagrams, one send() is one
recv(). A message longer than the buffer given to recv() is cut, and the rest of it is
discarded (recvmsg() reports MSG_TRUNC). ``--listen [--path P]`` / ``--connect P`` put the
two ends in two processes: Linux has SOCK_SEQPACKET for AF_UNIX (and SCTP, a module lab
nodes do not have), so its two ends share a host.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
from typing import Optional

from socklab.nodes.arguments import app_parser
from socklab.nodes.events import EventLog
from socklab.nodes.tcp_server import StopServer, install_stop_handlers

APP = "seqpacket"
MESSAGES = (b"one", b"a longer second message", b"3")
PATH = "/tmp/seqpacket.sock"


def serve(path: str, log: EventLog) -> int:
    """Each connection: every message apart, then the list of them back as one message."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(4)
    install_stop_handlers()
    log.emit(
        "listening",
        proto="seqpacket",
        family="unix",
        address="unix:" + path,
        text=f"SOCK_SEQPACKET listening on {path}",
    )
    try:
        while True:
            conn, _ = listener.accept()
            with conn:
                got = []
                while True:
                    message = conn.recv(4096)
                    if not message:
                        break
                    got.append(message.decode())
                    log.emit(
                        "received",
                        bytes=len(message),
                        data=message.decode(),
                        text=f"server: recv(4096) -> {message!r} (one message)",
                    )
                conn.send(json.dumps(got).encode())
    except (StopServer, KeyboardInterrupt) as stop:
        log.emit("stopped", reason=str(stop) or "interrupt")
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
    return 0


def client_half(path: str, log: EventLog) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        sock.settimeout(5)
        sock.connect(path)
        for message in MESSAGES:
            sock.send(message)
        log.emit(
            "sent",
            messages=[m.decode() for m in MESSAGES],
            text=f"client: {len(MESSAGES)} send() calls to {path}",
        )
        sock.shutdown(socket.SHUT_WR)
        seen = json.loads(sock.recv(65536) or b"[]")
    ok = bool(seen == [m.decode() for m in MESSAGES])
    log.emit(
        "done",
        ok=ok,
        server_received=seen,
        text=f"client: the server's recv() calls got {seen}: "
        + ("one message each, boundaries kept" if ok else "not the messages sent"),
    )
    return ok


def main(argv: Optional[list[str]] = None) -> int:
    parser = app_parser(APP, "SOCK_SEQPACKET: connected sockets that keep message boundaries.")
    role = parser.add_mutually_exclusive_group()
    role.add_argument("--listen", action="store_true", help="the server half, on --path")
    role.add_argument("--connect", metavar="PATH", help="the client half, to the server's PATH")
    parser.add_argument("--path", default=PATH, help=f"with --listen (default {PATH})")
    args = parser.parse_args(argv)
    log = EventLog(APP, human=args.human)
    if args.listen:
        return serve(args.path, log)
    if args.connect:
        try:
            return 0 if client_half(args.connect, log) else 1
        except OSError as exc:
            log.error(exc, target="unix:" + args.connect, action="seqpacket")
            return 1
    folder = tempfile.mkdtemp(prefix="socklab-seqpacket-")
    path = os.path.join(folder, "server.sock")
    ok = True
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as listener:
            listener.bind(path)
            listener.listen(1)
            log.emit(
                "listening",
                proto="seqpacket",
                family="unix",
                address="unix:" + path,
                text=f"SOCK_SEQPACKET listening on {path}",
            )
            client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            client.connect(path)
            server, _ = listener.accept()
        with client, server:
            server.settimeout(5)
            for message in MESSAGES:
                client.send(message)
            log.emit(
                "sent",
                messages=[m.decode() for m in MESSAGES],
                text=f"client: {len(MESSAGES)} send() calls: {[m.decode() for m in MESSAGES]}",
            )
            for message in MESSAGES:
                got = server.recv(4096)
                log.emit(
                    "received",
                    bytes=len(got),
                    data=got.decode(),
                    text=f"server: recv(4096) -> {got!r} (one message, boundary kept)",
                )
                ok = ok and got == message
            client.send(b"0123456789")
            client.send(b"next")
            data, _ancillary, flags, _address = server.recvmsg(4)
            truncated = bool(flags & socket.MSG_TRUNC)
            log.emit(
                "received",
                bytes=len(data),
                data=data.decode(),
                truncated=truncated,
                text=f"server: recvmsg(4) of a 10-byte message -> {data!r}, MSG_TRUNC={truncated}",
            )
            following = server.recv(4096)
            log.emit(
                "received",
                data=following.decode(),
                text=f"server: next recv() -> {following!r}: the cut bytes are gone",
            )
            client.close()
            eof = server.recv(4096)
            log.emit(
                "eof",
                text=f"server: recv() after the client closed -> {eof!r} (EOF, like a stream)",
            )
            ok = ok and data == b"0123" and truncated and following == b"next" and eof == b""
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    log.emit("done", ok=ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
