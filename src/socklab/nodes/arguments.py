"""Command-line pieces every node app shares: ``--human``, ``--family`` and port numbers."""

from __future__ import annotations

import argparse
import socket

FAMILIES = {"inet": socket.AF_INET, "inet6": socket.AF_INET6, "unix": socket.AF_UNIX}


def app_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--human",
        action="store_true",
        help="print readable lines on stdout instead of JSON events",
    )
    return parser


def add_family_option(
    parser: argparse.ArgumentParser,
    default: "str | None" = "inet",
    unset: str = "whatever the name resolves to",
) -> None:
    parser.add_argument(
        "--family",
        choices=sorted(FAMILIES),
        default=default,
        help="address family: inet (IPv4), inet6 (IPv6) or unix (a filesystem path)"
        + ("" if default else f"; default: {unset}"),
    )


def positive_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def port_number(text: str) -> int:
    """A port to connect to: 1..65535 (argparse ``type``; anything else is a usage error)."""
    return _port(text, 1)


def bind_port(text: str) -> int:
    """A port to bind: 0..65535, 0 for any free port (argparse ``type``)."""
    return _port(text, 0)


def _port(text: str, lowest: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port: {text!r}") from None
    if not lowest <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port ({lowest}..65535)")
    return value
