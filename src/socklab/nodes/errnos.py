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


class ErrnoInfo(NamedTuple):
    """One row of the notes' errno table, in English, with the spelling the notes use."""

    name: str
    perror: str
    cause: str
    as_written: str = ""


# The errno table of the lecture notes ("Posibles valores de errno") plus the errnos the
# notes name elsewhere (accept, socketpair, inet_pton) and those the curriculum adds.
NOTES_TABLE = (
    ErrnoInfo("EACCES", "permission denied", "the program has no access to this socket"),
    ErrnoInfo(
        "EADDRINUSE", "socket address is already in use", "the given address is already in use"
    ),
    ErrnoInfo(
        "EADDRNOTAVAIL",
        "socket address not usable",
        "the given address is not available on the local machine",
    ),
    ErrnoInfo(
        "EAFNOSUPPORT",
        "address family not supported",
        "the address family is not supported (the notes' ENAMOUNT)",
        "ENAMOUNT",
    ),
    ErrnoInfo(
        "EALREADY", "operation already in progress", "a non-blocking connect() is still in progress"
    ),
    ErrnoInfo(
        "EINVAL",
        "unsupported socket addressing family / previous connection not completed",
        "an invalid argument: an inconsistent address, a socket already bound",
    ),
    ErrnoInfo("EBADF", "file or socket not open", "the descriptor is not an open file", "EBAUDF"),
    ErrnoInfo(
        "ECONNABORTED",
        "connection aborted by local network software",
        "the local networking software aborted the connection",
    ),
    ErrnoInfo(
        "ECONNREFUSED",
        "destination host refused socket connection",
        "the destination host refused the connection",
    ),
    ErrnoInfo("ECONNRESET", "connection reset by peer", "the remote socket reset the connection"),
    ErrnoInfo(
        "EDESTADDRREQ",
        "socket operation requires destination address",
        "the socket needs a destination address",
        "ESTDADREQ",
    ),
    ErrnoInfo("EHOSTDOWN", "destination host is down", "the destination host is down"),
    ErrnoInfo(
        "EHOSTUNREACH", "destination host is unreachable", "the destination host is unreachable"
    ),
    ErrnoInfo(
        "EINPROGRESS",
        "socket connection in progress",
        "a non-blocking connection started and goes on; select() tells when it completes",
    ),
    ErrnoInfo("EISCONN", "socket is already connected", "connect() on a socket already connected"),
    ErrnoInfo("EMFILE", "too many open files", "the process has too many descriptors open"),
    ErrnoInfo(
        "EMSGSIZE",
        "message too large for datagram socket",
        "the message is too long to fit in one datagram",
    ),
    ErrnoInfo(
        "ENETDOWN",
        "local host's network down or inaccessible",
        "the local network is down or the program cannot talk to it",
    ),
    ErrnoInfo(
        "ENETRESET",
        "remote host dropped network communications",
        "the remote host dropped the connection when the network reset",
    ),
    ErrnoInfo(
        "ENETUNREACH",
        "destination network is unreachable",
        "the local host finds no route to the destination network",
        "ENETREACH",
    ),
    ErrnoInfo(
        "ENOBUFS",
        "insufficient buffers in network software",
        "the system has no memory left for the operation",
        "ENOSRBUFS",
    ),
    ErrnoInfo(
        "ENOPROTOOPT",
        "option not supported for protocol type",
        "the option (or its level) is not valid for this socket",
        "ENPROTOPT",
    ),
    ErrnoInfo("ENOTCONN", "socket not connected", "the socket is not connected"),
    ErrnoInfo(
        "ENOTSOCK", "descriptor not associated with a socket", "the descriptor is not a socket"
    ),
    ErrnoInfo(
        "EOPNOTSUPP",
        "operation not supported on socket",
        "the operation is not supported by this type of socket",
    ),
    ErrnoInfo(
        "EPERM", "operation not permitted", "the process lacks the capability (e.g. raw sockets)"
    ),
    ErrnoInfo(
        "EPFNOSUPPORT",
        "unsupported socket protocol family",
        "the protocol family is unknown or not supported",
    ),
    ErrnoInfo(
        "EPIPE",
        "broken pipe or socket connection",
        "the connection was closed for writing before all was sent",
        "EPPIPE",
    ),
    ErrnoInfo(
        "EPROTONOSUPPORT",
        "unsupported socket protocol",
        "the protocol is unknown or not supported",
        "EPROTOSUPPORT",
    ),
    ErrnoInfo(
        "EPROTOTYPE",
        "protocol inconsistent with socket type",
        "the protocol does not match the socket type",
    ),
    ErrnoInfo("ESHUTDOWN", "connection has been shut down", "the connection was already shut down"),
    ErrnoInfo(
        "ESOCKTNOSUPPORT",
        "socket type not allowed",
        "the socket type is not supported in this family",
    ),
    ErrnoInfo(
        "ESYS",
        "operating system interface failure",
        "an abnormal failure of the TCP/IP software or the OS",
    ),
    ErrnoInfo(
        "ETIMEDOUT",
        "socket connection attempt timed out",
        "the destination did not answer the connection request",
    ),
    ErrnoInfo(
        "EWOULDBLOCK",
        "socket operation would block",
        "a non-blocking socket has nothing to do now (not an error: try again)",
    ),
)

NOTES_BY_NAME = {info.name: info for info in NOTES_TABLE}


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
