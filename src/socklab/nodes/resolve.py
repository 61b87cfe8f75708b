"""``resolve NAME_OR_ADDR``: the resolver library of the notes, call by call.

gethostbyname, gethostbyname_ex (canonical name, aliases, addresses), gethostbyaddr
(reverse name of each address), getaddrinfo (families, types), getfqdn, the services
database (getservbyname/getservbyport), and the address conversions (inet_pton/ntop,
inet_aton/ntoa) and byte orders (htons/ntohs) for the addresses found. A failing call
is part of the answer, with its error, and a ``failed`` event of its own (call, argument,
errno: EAI_* for getaddrinfo and gethostbyname, the h_errno name for gethostbyname_ex and
gethostbyaddr). ``--all`` adds every socket type to getaddrinfo, the reverse name of every
address and more services; ``--port P`` adds P to the byte orders shown; ``--json`` prints
one object.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any, Callable, Optional

from socklab.nodes.arguments import app_parser, port_number
from socklab.nodes.errnos import describe_error, error_fields
from socklab.nodes.events import EventLog

APP = "resolve"
SERVICES = (("echo", "tcp"), ("domain", "udp"), ("http", "tcp"))
MORE_SERVICES = (("ssh", "tcp"), ("smtp", "tcp"), ("https", "tcp"), ("ntp", "udp"))
PORTS = ((7, "tcp"), (53, "udp"), (80, "tcp"))
MORE_PORTS = ((22, "tcp"), (25, "tcp"), (443, "tcp"), (123, "udp"))
_FAMILY_NAMES: "dict[int, str]" = {
    socket.AF_INET: "AF_INET",
    socket.AF_INET6: "AF_INET6",
    socket.AF_UNIX: "AF_UNIX",
}
_TYPE_NAMES = {
    socket.SOCK_STREAM: "SOCK_STREAM",
    socket.SOCK_DGRAM: "SOCK_DGRAM",
    socket.SOCK_RAW: "SOCK_RAW",
}
# the report's entries, one ``resolved`` event each, in this order
CALLS = (
    "gethostbyname",
    "gethostbyname_ex",
    "getaddrinfo",
    "gethostbyaddr",
    "getfqdn",
    "conversions",
    "services",
    "byte_order",
)


def build_parser() -> argparse.ArgumentParser:
    parser = app_parser(APP, "Resolver probe: every lookup of the notes for one name or address.")
    parser.add_argument("query", metavar="NAME_OR_ADDR")
    parser.add_argument(
        "--all",
        action="store_true",
        help="every socket type, the reverse name of every address, more services",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object of all results")
    parser.add_argument("--port", type=port_number, help="a port whose byte orders to show too (htons/ntohs)")
    return parser


def call(function: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """``{"result": ...}`` or ``{"error": ..., "errno": ...}``: a failed lookup is an answer too."""
    try:
        return {"result": function(*args)}
    except (OSError, UnicodeError) as exc:
        fields = error_fields(exc)
        return {
            "error": describe_error(exc),
            "errno": fields["errno"],
            "errno_number": fields["errno_number"],
        }


def address_family(text: str) -> Optional[int]:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
        except OSError:
            continue
        return family
    return None


def fqdn(name: str) -> str:
    """getfqdn(), which gives back a name it cannot look up; it raises UnicodeError instead
    for a name the IDNA codec refuses (``bad..name``, a label over 63 characters): that name
    comes back too, and the other calls of the report carry the error."""
    try:
        return socket.getfqdn(name)
    except UnicodeError:
        return name


def host_entry(found: dict[str, Any]) -> dict[str, Any]:
    if "result" not in found:
        return found
    name, aliases, addresses = found["result"]
    return {"result": {"name": name, "aliases": aliases, "addresses": addresses}}


def addrinfo(query: str, every_type: bool) -> dict[str, Any]:
    socktype = 0 if every_type else socket.SOCK_STREAM
    found = call(socket.getaddrinfo, query, None, socket.AF_UNSPEC, socktype, 0, socket.AI_CANONNAME)
    if "result" not in found:
        return found
    rows = []
    for family, kind, proto, canonname, sockaddr in found["result"]:
        rows.append(
            {
                "family": _FAMILY_NAMES.get(family, str(family)),
                "type": _TYPE_NAMES.get(kind, str(kind)),
                "proto": proto,
                "canonname": canonname,
                "address": sockaddr[0],
            }
        )
    return {"result": rows}


def conversions(address: str) -> dict[str, Any]:
    """inet_pton/ntop for any address; inet_aton/ntoa and the integer value for IPv4."""
    family = address_family(address)
    if family is None:
        return {"error": f"{address} is not an IPv4 or IPv6 address"}
    packed = socket.inet_pton(family, address)
    entry: dict[str, Any] = {
        "family": _FAMILY_NAMES[family],
        "inet_pton": packed.hex(),
        "inet_ntop": socket.inet_ntop(family, packed),
    }
    if family == socket.AF_INET:
        entry["inet_aton"] = socket.inet_aton(address).hex()
        entry["inet_ntoa"] = socket.inet_ntoa(packed)
        entry["network_order_int"] = int.from_bytes(packed, "big")
        entry["host_order_int"] = int.from_bytes(packed, sys.byteorder)
    return entry


def byte_order(port: int) -> dict[str, Any]:
    network = socket.htons(port)
    return {
        "port": port,
        "host_byte_order": sys.byteorder,
        "htons": network,
        "htons_hex": f"0x{network:04x}",
        "ntohs": socket.ntohs(network),
        "wire_bytes": port.to_bytes(2, "big").hex(),
    }


def services(every: bool) -> dict[str, Any]:
    names = SERVICES + (MORE_SERVICES if every else ())
    ports = PORTS + (MORE_PORTS if every else ())
    return {
        "getservbyname": [dict(name=n, proto=p, **call(socket.getservbyname, n, p)) for n, p in names],
        "getservbyport": [dict(port=n, proto=p, **call(socket.getservbyport, n, p)) for n, p in ports],
    }


def lookup(query: str, every: bool, port: Optional[int] = None) -> dict[str, Any]:
    """Every result of the resolver for ``query``, as one JSON-ready object."""
    is_address = address_family(query) is not None
    report: dict[str, Any] = {"query": query, "is_address": is_address}
    report["gethostname"] = socket.gethostname()
    report["gethostbyname"] = call(socket.gethostbyname, query)
    report["gethostbyname_ex"] = host_entry(call(socket.gethostbyname_ex, query))
    report["getaddrinfo"] = addrinfo(query, every)
    report["getfqdn"] = fqdn(query)
    found = [query] if is_address else []
    found += report["gethostbyname_ex"].get("result", {}).get("addresses", [])
    found += [row["address"] for row in report["getaddrinfo"].get("result", [])]
    addresses = list(dict.fromkeys(found))  # unique, in the order found
    report["addresses"] = addresses
    reverse_of = addresses if every else addresses[:1]
    report["gethostbyaddr"] = {a: host_entry(call(socket.gethostbyaddr, a)) for a in reverse_of}
    report["conversions"] = {a: conversions(a) for a in addresses}
    report["services"] = services(every)
    ports = (7, 80, 5000) if port is None or port in (7, 80, 5000) else (7, 80, 5000, port)
    report["byte_order"] = [byte_order(p) for p in ports]
    report["resolved"] = bool(addresses)
    return report


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    report = lookup(args.query, args.all, args.port)
    status = 0 if report["resolved"] else 1
    if args.json:
        print(json.dumps(report, default=str), flush=True)
        return status
    log = EventLog(APP, human=args.human)
    for key in CALLS:
        value = report[key]
        log.emit(
            "resolved",
            text=f"{key}({args.query}): {json.dumps(value, default=str)}",
            call=key,
            query=args.query,
            answer=value,
        )
    for call_name, argument, entry in failures(report):
        log.emit(
            "failed",
            text=f"{call_name}({argument}) -> {entry['error']}",
            call=call_name,
            argument=argument,
            errno=entry["errno"],
            errno_number=entry["errno_number"],
            message=entry["error"],
        )
    if not report["resolved"]:
        log.emit(
            "error",
            text=f"{args.query}: no address found",
            **_first_error(report),
            query=args.query,
        )
    return status


def failures(report: dict[str, Any]) -> "list[tuple[str, str, dict[str, Any]]]":
    """(call, argument, entry) of every lookup of the report that failed."""
    found = []
    for key in ("gethostbyname", "gethostbyname_ex", "getaddrinfo"):
        if "error" in report[key]:
            found.append((key, report["query"], report[key]))
    for address, entry in report["gethostbyaddr"].items():
        if "error" in entry:
            found.append(("gethostbyaddr", address, entry))
    return found


def _first_error(report: dict[str, Any]) -> dict[str, Any]:
    for key in ("gethostbyname", "getaddrinfo"):
        entry = report[key]
        if "errno" in entry:
            return {
                "errno": entry["errno"],
                "errno_number": entry["errno_number"],
                "message": entry["error"],
            }
    return {"errno": None, "errno_number": None, "message": "no address"}


if __name__ == "__main__":
    sys.exit(main())
