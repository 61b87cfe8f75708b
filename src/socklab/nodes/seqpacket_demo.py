"""``seqpacket``: SOCK_SEQPACKET on a UNIX socket: connected, reliable, and message boundaries kept.

Like a stream it has listen/accept/connect and EOF; like datagrams, one send() is one
recv(). A message longer than the buffer given to recv() is cut, and the rest of it is
discarded (recvmsg() reports MSG_TRUNC).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from typing import Optional

from socklab.nodes.arguments import app_parser
from socklab.nodes.events import EventLog

APP = "seqpacket"
MESSAGES = (b"one", b"a longer second message", b"3")


def main(argv: Optional[list[str]] = None) -> int:
    args = app_parser(
        APP, "SOCK_SEQPACKET: connected sockets that keep message boundaries."
    ).parse_args(argv)
    log = EventLog(APP, human=args.human)
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
