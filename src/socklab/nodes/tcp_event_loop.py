"""``tcp-server --mode selectors``: one process, one thread, one ``selectors`` event loop.

Every socket is non-blocking. The loop waits for readiness (accept, read, write) and for
the next timer: with ``--delay`` each reply is scheduled on a timer heap instead of
sleeping, so a slow reply to one client never holds up the others.
"""

from __future__ import annotations

import heapq
import itertools
import selectors
import socket
import time
from typing import Optional

from socklab.nodes.addresses import format_address
from socklab.nodes.echo import BUFSIZE, preview
from socklab.nodes.events import EventLog


class Connection:
    """What the loop knows about one client."""

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.outbox = bytearray()  # echoes due, not yet written
        self.pending = 0  # echoes still waiting on their timer
        self.eof = False  # the client sent FIN: read no more, finish the echoes, then close
        self.closed = False
        self.interest = 0  # the events registered with the selector (0: not registered)
        self.received = 0
        self.sent = 0


class EchoEventLoop:
    def __init__(self, listener: socket.socket, log: EventLog, delay: float) -> None:
        self.listener = listener
        self.log = log
        self.delay = delay
        self.selector = selectors.DefaultSelector()
        self.timers: list[tuple[float, int, Connection, bytes]] = []
        self._order = itertools.count()
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, None)

    def run_forever(self) -> None:
        try:
            while True:
                self.run_once()
        finally:
            self.selector.close()

    def run_once(self) -> None:
        timeout: Optional[float] = None
        if self.timers:
            timeout = max(0.0, self.timers[0][0] - time.monotonic())
        for key, mask in self.selector.select(timeout):
            if key.data is None:
                self.accept_all()
                continue
            conn: Connection = key.data
            if mask & selectors.EVENT_READ and not conn.closed:
                self.read(conn)
            if mask & selectors.EVENT_WRITE and not conn.closed:
                self.write(conn)
        self.fire_due_timers()

    def accept_all(self) -> None:
        while True:
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.log.error(exc, action="accept")
                return
            sock.setblocking(False)
            conn = Connection(sock, format_address(address))
            try:
                local = format_address(sock.getsockname())
            except OSError as exc:  # gone between accept() and now
                self.log.error(exc, target=conn.peer, action="getsockname")
                sock.close()
                continue
            self.log.emit("accepted", peer=conn.peer, local=local)
            self.update_interest(conn)

    def read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(BUFSIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.log.error(exc, target=conn.peer, action="recv")
            self.close(conn, "error")
            return
        if not data:
            conn.eof = True
        else:
            conn.received += len(data)
            self.log.emit("received", peer=conn.peer, bytes=len(data), data=preview(data))
            if self.delay:
                conn.pending += 1
                due = time.monotonic() + self.delay
                heapq.heappush(self.timers, (due, next(self._order), conn, data))
            else:
                conn.outbox += data
        self.settle(conn)

    def write(self, conn: Connection) -> None:
        try:
            count = conn.sock.send(conn.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.log.error(exc, target=conn.peer, action="send")
            self.close(conn, "error")
            return
        del conn.outbox[:count]
        conn.sent += count
        self.log.emit("sent", peer=conn.peer, bytes=count)
        self.settle(conn)

    def fire_due_timers(self) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _due, _order, conn, data = heapq.heappop(self.timers)
            if conn.closed:
                continue
            conn.pending -= 1
            conn.outbox += data
            self.settle(conn)

    def settle(self, conn: Connection) -> None:
        """Close a finished connection, or register what it now waits for."""
        if conn.closed:
            return
        if conn.eof and not conn.outbox and not conn.pending:
            self.close(conn, "eof")
        else:
            self.update_interest(conn)

    def update_interest(self, conn: Connection) -> None:
        wanted = 0 if conn.eof else selectors.EVENT_READ
        if conn.outbox:
            wanted |= selectors.EVENT_WRITE
        if wanted == conn.interest:
            return
        if conn.interest == 0:
            self.selector.register(conn.sock, wanted, conn)
        elif wanted == 0:  # half-closed and waiting on a timer: nothing to watch until it fires
            self.selector.unregister(conn.sock)
        else:
            self.selector.modify(conn.sock, wanted, conn)
        conn.interest = wanted

    def close(self, conn: Connection, reason: str) -> None:
        if conn.interest:
            self.selector.unregister(conn.sock)
            conn.interest = 0
        conn.closed = True
        conn.sock.close()
        self.log.emit(
            "closed",
            peer=conn.peer,
            reason=reason,
            bytes_received=conn.received,
            bytes_sent=conn.sent,
        )


def run_selectors(listener: socket.socket, log: EventLog, delay: float) -> None:
    EchoEventLoop(listener, log, delay).run_forever()
