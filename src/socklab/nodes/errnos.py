"""Errno names, numbers and meanings, including the errno table of the lecture notes.

``error_fields`` turns an exception into event fields; ``describe_error`` into the one
line people read (``ECONNREFUSED (111): connection refused by 10.0.0.2:5000``).
A ``socket.timeout`` (a ``settimeout`` that expired, which has no errno of its own)
is reported as ETIMEDOUT with ``timeout: true``; resolver failures (``socket.gaierror``)
by their ``EAI_*`` name.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any, NamedTuple, Optional

# Linux gives some numbers two names; sockets people know these ones.
_PREFERRED = {errno.EOPNOTSUPP: "EOPNOTSUPP", errno.EWOULDBLOCK: "EWOULDBLOCK"}

_EAI_NAMES = {
    getattr(socket, name): name
    for name in dir(socket)
    if name.startswith("EAI_") and isinstance(getattr(socket, name), int)
}

# h_errno of the old resolver calls (gethostbyaddr...), named as in the notes
_H_ERRNO_NAMES = {1: "HOST_NOT_FOUND", 2: "TRY_AGAIN", 3: "NO_RECOVERY", 4: "NO_DATA"}

# What a failure means, said about its target ("{target}" is "HOST:PORT", a path or a name).
_PHRASES = {
    "ECONNREFUSED": "connection refused by {target}",
    "ECONNRESET": "connection reset by {target}",
    "ECONNABORTED": "connection to {target} aborted by the local host",
    "ETIMEDOUT": "no answer from {target} in time",
    "EHOSTUNREACH": "no route to host {target}",
    "EHOSTDOWN": "host {target} is down",
    "ENETUNREACH": "network of {target} is unreachable",
    "ENETDOWN": "the local network towards {target} is down",
    "EADDRINUSE": "address {target} is already in use",
    "EADDRNOTAVAIL": "address {target} is not available on this host",
    "EACCES": "permission denied for {target}",
    "EPERM": "operation not permitted on {target}",
    "EPIPE": "broken pipe: {target} no longer accepts data",
    "ENOTCONN": "socket is not connected to {target}",
    "EAI_NONAME": "name {target} is not known",
    "EAI_AGAIN": "temporary failure resolving {target}",
    "EAI_NODATA": "name {target} has no address",
    "HOST_NOT_FOUND": "no host name for {target}",
}


class NotesRow(NamedTuple):
    """An errno the lecture notes name: in their table ("Posibles valores de errno", ``row``
    1..32) or in a call's list of errors (``row`` None, ``where`` says which call), in
    English, with the spelling the notes use and, where Linux differs, what it really does."""

    row: Optional[int]
    name: str  # the Linux name
    perror: str
    cause: str  # the notes' cause, translated
    as_written: str = ""  # the notes' spelling, when it is not the Linux name
    linux: str = ""  # what Linux really does, where the notes are wrong or silent
    where: str = "errno table"


_T = NotesRow
#: The notes' table, row by row (31 names, EINVAL twice).
NOTES_TABLE: "tuple[NotesRow, ...]" = (
    _T(1, "EACCES", "permission denied", "the program has no access to this socket"),
    _T(2, "EADDRINUSE", "socket address is already in use", "the given address is already in use"),
    _T(
        3,
        "EADDRNOTAVAIL",
        "socket address not usable",
        "the given address is not available on the local machine",
    ),
    _T(
        4,
        "EINVAL",
        "unsupported socket addressing family",
        "the address family is not supported, or not consistent with the given socket type",
        linux="an address of another family than the socket's, and too short for the socket's "
        "own (an IPv4 sockaddr given to an AF_UNIX or AF_INET6 socket), is EINVAL; a family "
        "Linux does not support at all is EAFNOSUPPORT",
    ),
    _T(
        5,
        "EINVAL",
        "previous connection not yet completed",
        "the socket that is being closed no longer exists",
        linux="close() of a descriptor that is no longer open is EBADF, not EINVAL; what the "
        "perror text says is Linux's EINVAL for listen() on a socket whose connect() has not "
        "completed yet (and a second connect() then is EALREADY)",
    ),
    _T(
        6,
        "EBADF",
        "file or socket not open or user-level file",
        "the given descriptor is not an open descriptor",
        as_written="EBAUDF",
    ),
    _T(
        7,
        "ECONNABORTED",
        "connection aborted by local network software",
        "the local communications system aborted the connection",
        linux="Linux returns it when the kernel aborts a connection under its owner "
        "(SOCK_DESTROY, what `ss -K` does), and from accept() for some connections aborted "
        "while they waited in the queue",
    ),
    _T(
        8,
        "ECONNREFUSED",
        "destination host refused socket connection",
        "the destination machine refused the connection",
        linux="the peer's kernel answers the SYN with RST: nothing listens on that port",
    ),
    _T(
        9,
        "ECONNRESET",
        "connection reset by peer",
        "the remote socket reset the connection",
        linux="an RST arrived: the peer closed with SO_LINGER 0, or with data it never read",
    ),
    _T(
        10,
        "EDESTADDRREQ",
        "socket operation requires destination address",
        "the socket needs to be given a destination address",
        as_written="ESTDADREQ",
    ),
    _T(
        11,
        "EHOSTDOWN",
        "destination host is down",
        "the destination host is down",
        linux="Linux reports it only for an ICMP 'destination host unknown' (code 7); a "
        "host that is switched off gives EHOSTUNREACH (no ARP answer) or ETIMEDOUT",
    ),
    _T(
        12,
        "EHOSTUNREACH",
        "destination host is unreachable",
        "the destination host cannot be reached",
        linux="no ARP answer on the local network, or an ICMP host unreachable/prohibited",
    ),
    _T(
        13,
        "EINPROGRESS",
        "socket connection in progress",
        "the connection has started and goes on; it is complete when select() says the "
        "descriptor is ready for reading",
        linux="ready for WRITING, not reading; getsockopt(SO_ERROR) then says whether the "
        "connection succeeded",
    ),
    _T(
        14,
        "EISCONN",
        "socket is already connected",
        "the process calls connect() on a socket already connected",
    ),
    _T(15, "EMSGSIZE", "message too large for datagram socket", "the message is too long for one datagram"),
    _T(
        16,
        "ENETDOWN",
        "local host's network down or inaccessible",
        "the program cannot talk to the local network software, or the local network is down",
        linux="a send on an interface that is down",
    ),
    _T(
        17,
        "ENETRESET",
        "remote host dropped network communications",
        "the remote host is not communicating over the network at the moment",
        linux="Linux TCP, UDP and UNIX sockets never return it: a peer that stops answering "
        "gives ETIMEDOUT, one that resets the connection ECONNRESET",
    ),
    _T(
        18,
        "ENETUNREACH",
        "destination network is unreachable",
        "the local host finds no route to the destination network",
        as_written="ENETREACH",
    ),
    _T(
        19,
        "ENOBUFS",
        "insufficient buffers in network software",
        "the operating system has not enough memory for the operation",
        linux="Linux also uses it for per-socket limits that are no shortage of memory, e.g. "
        "the 21st IP_ADD_MEMBERSHIP on one socket (net.ipv4.igmp_max_memberships is 20)",
    ),
    _T(
        20,
        "ENOPROTOOPT",
        "option not supported for protocol type",
        "the option (or its level) asked for is not valid for the socket",
        as_written="ENPROTOPT",
    ),
    _T(21, "ENOTCONN", "socket not connected", "the socket is not connected"),
    _T(
        22,
        "ENOTSOCK",
        "the descriptor not associated with a socket",
        "the descriptor is a file, not a socket, or is not assigned",
    ),
    _T(
        23,
        "EOPNOTSUPP",
        "operation not supported on socket",
        "the operation is not supported on this type of socket",
    ),
    _T(
        24,
        "EPFNOSUPPORT",
        "unsupported socket protocol family",
        "the protocol family is unknown or not supported by the TCP/IP software",
        linux="Linux answers an unknown or absent family with EAFNOSUPPORT; EPFNOSUPPORT is "
        "defined but its sockets never return it",
    ),
    _T(
        25,
        "EPIPE",
        "broken pipe or socket connection",
        "the remote process closed the socket (or pipe) before the local one finished writing",
        as_written="EPPIPE",
        linux="Python ignores SIGPIPE (which would kill the process) and raises "
        "BrokenPipeError; a send() after our own shutdown(SHUT_WR) is EPIPE too",
    ),
    _T(
        26,
        "EPROTONOSUPPORT",
        "unsupported socket protocol",
        "the protocol is unknown or not supported by the TCP/IP software",
        as_written="EPROTOSUPPORT",
    ),
    _T(
        27,
        "EPROTOTYPE",
        "protocol inconsistent with socket type",
        "socket() was called with a protocol neither 0 nor consistent with the type",
        linux="socket() with a protocol that does not fit the type is EPROTONOSUPPORT on "
        "Linux (socket(AF_INET, SOCK_STREAM, IPPROTO_UDP)); EPROTOTYPE comes from a UNIX "
        "socket connecting to a socket of another type",
    ),
    _T(
        28,
        "ESHUTDOWN",
        "connection has been shut down",
        "the connection was already shut down",
        linux="a send() after shutdown(SHUT_WR) is EPIPE on Linux TCP, UDP and UNIX sockets; "
        "ESHUTDOWN belongs to protocols a node does not load (SCTP, RDS, TIPC)",
    ),
    _T(
        29,
        "ESOCKTNOSUPPORT",
        "socket type not allowed",
        "the local process asked for a socket type the TCP/IP software does not support",
    ),
    _T(
        30,
        "ESYS",
        "operating system interface failure",
        "the TCP/IP software or its operating system met an abnormal failure; consider contacting the vendor",
        linux="not a Linux errno (errno.h has no ESYS): it comes from another system's socket library",
    ),
    _T(
        31,
        "ETIMEDOUT",
        "socket connection attempt timed out",
        "the destination socket did not answer a connection request",
        linux="the kernel's own timeout (SYN retries, TCP_USER_TIMEOUT, keepalive); a "
        "Python settimeout() that expires is socket.timeout ('timed out'), no errno",
    ),
    _T(
        32,
        "EWOULDBLOCK",
        "socket operation would block",
        "the socket has the blocking I/O option on and this call would block; not an error",
        linux="the socket is NON-blocking (setblocking(False), settimeout(0)) and the call "
        "would have to wait; EAGAIN and EWOULDBLOCK are one number (11) on Linux, Python "
        "raises BlockingIOError",
    ),
)

#: Errnos the notes name in the error lists of calls (accept, socketpair, getsockname,
#: inet_pton), where the table does not say them, or says them for another cause.
NOTES_ELSEWHERE: "tuple[NotesRow, ...]" = (
    _T(
        None,
        "EOPNOTSUPP",
        "the socket does not support this operation",
        "accept() on a socket that does not support it",
        as_written="EPROTONOSUPPORT",
        where="accept()",
        linux="accept() on a UDP socket is EOPNOTSUPP, not EPROTONOSUPPORT",
    ),
    _T(
        None,
        "EWOULDBLOCK",
        "no pending connections",
        "accept() when no connection is waiting",
        as_written="ENOPROTOOPT",
        where="accept()",
        linux="a non-blocking accept() with no connection waiting is EAGAIN (EWOULDBLOCK); a "
        "blocking one waits. ENOPROTOOPT is only for socket options",
    ),
    _T(
        None,
        "EMFILE",
        "too many open files",
        "the process has too many descriptors open",
        where="socketpair()",
    ),
    _T(
        None,
        "EAFNOSUPPORT",
        "domain not supported",
        "the domain (address family) is not supported",
        as_written="ENAMOUNT",
        where="socketpair(), inet_pton()/inet_ntop()",
        linux="socketpair(AF_INET, ...) is EOPNOTSUPP (only AF_UNIX makes pairs); an unknown "
        "family is EAFNOSUPPORT",
    ),
    _T(
        None,
        "EPROTONOSUPPORT",
        "protocol not supported",
        "the protocol is not supported, or does not make pairs",
        as_written="EPROTOSUPP",
        where="socketpair(), getsockname()/getpeername()",
        linux="a protocol that does not fit is EPROTONOSUPPORT; getpeername() on a socket "
        "without a peer is ENOTCONN",
    ),
    _T(
        None,
        "ENOBUFS",
        "not enough buffers",
        "not enough buffers for the request; for inet_pton: the address is not in the right format",
        as_written="ENOSRBUFS",
        where="getsockname()/getpeername(), inet_pton()",
        linux="inet_pton() of a malformed address fails without an errno (Python: OSError "
        "'illegal IP address string passed to inet_pton')",
    ),
)

#: What the notes spell differently: their spelling -> the Linux name.
NOTES_SPELLINGS: "dict[str, str]" = {
    "EBAUDF": "EBADF",
    "ESTDADREQ": "EDESTADDRREQ",
    "ENETREACH": "ENETUNREACH",
    "ENPROTOPT": "ENOPROTOOPT",
    "EPPIPE": "EPIPE",
    "EPROTOSUPPORT": "EPROTONOSUPPORT",
    "ENAMOUNT": "EAFNOSUPPORT",
    "ENOSRBUFS": "ENOBUFS",
    "EPROTOSUPP": "EPROTONOSUPPORT",
}


class ResolverFailure(NamedTuple):
    """A failure of the resolver: its h_errno (the old calls: gethostbyname_ex,
    gethostbyaddr; socket.herror) and its EAI_* (getaddrinfo, and gethostbyname which uses
    it in Python; socket.gaierror), and the DNS answer that causes it."""

    h_errno: str
    eai: str
    meaning: str
    dns_answer: str
    as_written: str


RESOLVER_FAILURES: "tuple[ResolverFailure, ...]" = (
    ResolverFailure("HOST_NOT_FOUND", "EAI_NONAME", "no such name", "NXDOMAIN (rcode 3)", "NO_RESOLVE_HOST"),
    ResolverFailure(
        "TRY_AGAIN",
        "EAI_AGAIN",
        "temporary failure: try again later",
        "SERVFAIL (rcode 2), or no answer in time (glibc also gives it when "
        "every server answered REFUSED or NOTIMP)",
        "NO_DATA_TRY AGAIN",
    ),
    ResolverFailure(
        "NO_RECOVERY",
        "EAI_FAIL",
        "a failure that will not go away",
        "FORMERR (rcode 1) (glibc's getaddrinfo reports that one as EAI_NONAME)",
        "NO_RECOVERY",
    ),
    ResolverFailure(
        "NO_DATA",
        "EAI_NODATA",
        "the name exists but has no address",
        "NOERROR with no answer of the type asked for",
        "NO_DATA",
    ),
)


def errno_name(number: Optional[int]) -> Optional[str]:
    if number is None:
        return None
    if number in _PREFERRED:
        return _PREFERRED[number]
    return errno.errorcode.get(number)


def errno_number(name: str) -> Optional[int]:
    value = getattr(errno, name, None)
    return value if isinstance(value, int) else None


def error_fields(exc: BaseException) -> dict[str, Any]:
    """``errno`` (name), ``errno_number`` and ``strerror`` of an exception."""
    if isinstance(exc, socket.gaierror):
        return {
            "errno": _EAI_NAMES.get(exc.errno, "EAI_UNKNOWN") if exc.errno is not None else None,
            "errno_number": exc.errno,
            "strerror": exc.strerror or str(exc),
        }
    if isinstance(exc, socket.herror):
        return {
            "errno": _H_ERRNO_NAMES.get(exc.errno, "HOST_ERROR") if exc.errno is not None else None,
            "errno_number": exc.errno,
            "strerror": exc.strerror or str(exc),
        }
    # socket.timeout is TimeoutError from Python 3.10 on, a class of its own on 3.9
    if isinstance(exc, (socket.timeout, TimeoutError)) and getattr(exc, "errno", None) is None:
        return {
            "errno": "ETIMEDOUT",
            "errno_number": errno.ETIMEDOUT,
            "strerror": "timed out (settimeout expired)",
            "timeout": True,
        }
    number = getattr(exc, "errno", None)
    if isinstance(exc, OSError) and number is not None:
        return {
            "errno": errno_name(number),
            "errno_number": number,
            "strerror": exc.strerror or os.strerror(number),
        }
    return {"errno": None, "errno_number": None, "strerror": str(exc) or type(exc).__name__}


def describe_error(exc: BaseException, target: str = "", action: str = "") -> str:
    """``NAME (number): what happened`` in one line."""
    fields = error_fields(exc)
    name = fields["errno"]
    phrase = _PHRASES.get(name or "") if target else None
    if phrase is not None:
        text = phrase.format(target=target)
    else:
        text = str(fields["strerror"]).lower()
        if target:
            text += f" ({action + ' ' if action else ''}{target})"
        elif action:
            text += f" ({action})"
    if name is None:
        return text
    return f"{name} ({fields['errno_number']}): {text}"
