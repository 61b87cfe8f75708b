"""Command-line pieces every node app shares: ``--human`` and ``--family``."""

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


def add_family_option(parser: argparse.ArgumentParser, default: "str | None" = "inet") -> None:
    parser.add_argument(
        "--family",
        choices=sorted(FAMILIES),
        default=default,
        help="address family: inet (IPv4), inet6 (IPv6) or unix (a filesystem path)"
        + ("" if default else "; default: whatever the name resolves to"),
    )


def positive_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value
