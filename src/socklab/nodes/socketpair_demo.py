"""``socketpair``: sockets instead of pipes. One pair, two processes, both ways.

``socket.socketpair(AF_UNIX, SOCK_STREAM)`` gives two connected, unnamed sockets; after
fork() the parent keeps one end and the child the other, and unlike a pipe each end
both reads and writes.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Optional

from socklab.nodes.arguments import app_parser
from socklab.nodes.events import EventLog
from socklab.nodes.receiving import read_to_eof

APP = "socketpair"


def child(end: socket.socket, log: EventLog) -> int:
    request = end.recv(4096)
    log.emit(
        "received",
        role="child",
        data=request.decode(),
        text=f"child {os.getpid()} read {request!r}",
    )
    reply = f"pong from child {os.getpid()}".encode()
    end.sendall(reply)
    log.emit("sent", role="child", data=reply.decode(), text=f"child wrote {reply!r} on the same socket")
    end.close()
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    args = app_parser(APP, "socketpair(): a bidirectional pair between two processes.").parse_args(argv)
    log = EventLog(APP, human=args.human)
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    log.emit(
        "created",
        family="AF_UNIX",
        type="SOCK_STREAM",
        fds=[parent_end.fileno(), child_end.fileno()],
        text=f"socketpair(AF_UNIX, SOCK_STREAM) -> fds {parent_end.fileno()} and {child_end.fileno()}",
    )
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            parent_end.close()
            code = child(child_end, log)
        finally:
            os._exit(code)
    child_end.close()
    log.emit(
        "forked",
        child=pid,
        text=f"fork(): parent {os.getpid()} keeps one end, child {pid} the other",
    )
    request = f"ping from parent {os.getpid()}".encode()
    parent_end.sendall(request)
    log.emit("sent", role="parent", data=request.decode(), text=f"parent wrote {request!r}")
    reply = read_to_eof(parent_end)
    log.emit("received", role="parent", data=reply.decode(), text=f"parent read {reply!r}, then EOF")
    parent_end.close()
    _, status = os.waitpid(pid, 0)
    ok = reply.startswith(b"pong from child") and os.waitstatus_to_exitcode(status) == 0
    log.emit(
        "done",
        ok=ok,
        text="both ends read and wrote: a bidirectional pipe" if ok else "exchange failed",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
