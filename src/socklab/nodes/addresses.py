"""Socket addresses as people read them, and name resolution for the clients."""

from __future__ import annotations

import socket
import time
from typing import Any, Callable, NamedTuple, Optional

FAMILY_NAMES: "dict[int, str]" = {socket.AF_INET: "inet", socket.AF_INET6: "inet6", socket.AF_UNIX: "unix"}
#: The constants' names, as a socket() call is written.
FAMILY_CONSTANTS: "dict[int, str]" = {
    socket.AF_INET: "AF_INET",
    socket.AF_INET6: "AF_INET6",
    socket.AF_UNIX: "AF_UNIX",
}


class Endpoint(NamedTuple):
    family: int
    address: Any  # a sockaddr as the socket module takes it


def format_address(address: Any) -> str:
    """``ip:port``, ``[ip6]:port`` or ``unix:PATH`` (``unix:(unnamed)``: an unbound UNIX socket).

    An IPv4 peer of a dual-stack socket (``::ffff:10.0.0.3``, IPv4-mapped) is written as the
    IPv4 address it is."""
    if isinstance(address, tuple) and len(address) == 2:
        return f"{address[0]}:{address[1]}"
    if isinstance(address, tuple) and len(address) == 4:
        host = str(address[0])
        if host.startswith("::ffff:") and "." in host:
            return f"{host[7:]}:{address[1]}"
        return f"[{host}]:{address[1]}"
    if isinstance(address, bytes):
        address = address.decode("utf-8", "replace")
    if isinstance(address, str):
        if not address:
            return "unix:(unnamed)"
        if address.startswith("\0"):
            return "unix:@" + address[1:]
        return "unix:" + address
    return str(address)


def family_name(family: int) -> str:
    return FAMILY_NAMES.get(family, str(family))


def wildcard_host(family: int) -> str:
    return "::" if family == socket.AF_INET6 else "0.0.0.0"


RESOLVE_ATTEMPTS = 5


def getaddrinfo(
    host: str,
    port: Optional[int],
    family: int,
    socktype: int,
    on_retry: "Optional[Callable[[socket.gaierror], None]]" = None,
) -> "list[Any]":
    """socket.getaddrinfo(), asked again (up to 5 times in all) when it fails with EAI_AGAIN:
    the resolver's own word for "try again" (a DNS server slow to answer, a SERVFAIL)."""
    for attempt in range(1, RESOLVE_ATTEMPTS + 1):
        try:
            return socket.getaddrinfo(host, port, family, socktype)
        except socket.gaierror as exc:
            if exc.errno != socket.EAI_AGAIN or attempt == RESOLVE_ATTEMPTS:
                raise
            if on_retry is not None:
                on_retry(exc)
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def resolve_endpoints(
    host: str,
    port: Optional[int],
    family: Optional[int],
    socktype: int,
    on_retry: "Optional[Callable[[socket.gaierror], None]]" = None,
) -> list[Endpoint]:
    """Every address of ``host`` for ``socktype`` in the resolver's order (UNIX: the path)."""
    if family == socket.AF_UNIX:
        return [Endpoint(socket.AF_UNIX, host)]
    infos = getaddrinfo(host, port, family or socket.AF_UNSPEC, socktype, on_retry)
    endpoints: list[Endpoint] = []
    for af, _type, _proto, _canon, sockaddr in infos:
        endpoint = Endpoint(af, sockaddr)
        if endpoint not in endpoints:
            endpoints.append(endpoint)
    return endpoints


def target_text(host: str, port: Optional[int], family: Optional[int]) -> str:
    if family == socket.AF_UNIX:
        return "unix:" + host
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"
