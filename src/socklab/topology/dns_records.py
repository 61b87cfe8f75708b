"""The lab DNS as a topology writes it: ``dns:`` and its records (planning is in ``dns``)."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Any

from pydantic import (
    StringConstraints,
    field_validator,
    model_validator,
)

from socklab.topology.fields import (
    NODE_NAME,
    NodeName,
    Strict,
)

DNS_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})"
DnsName = Annotated[str, StringConstraints(max_length=253, pattern=rf"^{DNS_LABEL}(\.{DNS_LABEL})*\.?$")]
"""A DNS name: one without a dot is in the lab's domain (``www`` -> ``www.<lab>.test``)."""


def _addresses_or_nodes(value: Any, family: type[IPv4Address] | type[IPv6Address]) -> Any:
    """A record's ``a:``/``aaaa:``: one entry or a list, each an address of ``family`` or a node."""
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list):
        return entries
    for entry in entries:
        if not isinstance(entry, str):
            raise ValueError(f"{entry!r} is not an address or a node name")
        try:
            family(entry)
        except ValueError:
            if not re.fullmatch(NODE_NAME, entry):
                kind = "an IPv4" if family is IPv4Address else "an IPv6"
                raise ValueError(f"{entry!r} is neither {kind} address nor a node name") from None
    return entries


class DnsRecord(Strict):
    """One name of the lab's DNS: addresses (``a``/``aaaa``: IPs or node names), an alias
    (``cname``: a node or a name with addresses), or a reverse name (``ptr``: an address)."""

    name: DnsName
    """The name (one without a dot is in the lab's domain: `www` is `www.<lab>.test`)."""
    a: list[IPv4Address | NodeName] = []
    """Its IPv4 addresses: addresses or node names (a node's addresses)."""
    aaaa: list[IPv6Address | NodeName] = []
    """Its IPv6 addresses: addresses or node names."""
    cname: DnsName | None = None
    """The name it is an alias of (a node, or a name with addresses)."""
    ptr: IPv4Address | IPv6Address | None = None
    """The address whose reverse lookup answers this name."""

    _a = field_validator("a", mode="before")(lambda cls, v: _addresses_or_nodes(v, IPv4Address))
    _aaaa = field_validator("aaaa", mode="before")(lambda cls, v: _addresses_or_nodes(v, IPv6Address))

    @model_validator(mode="after")
    def _one_kind(self) -> DnsRecord:
        kinds = [
            k
            for k, on in (
                ("a/aaaa", bool(self.a or self.aaaa)),
                ("cname", self.cname is not None),
                ("ptr", self.ptr is not None),
            )
            if on
        ]
        if len(kinds) != 1:
            raise ValueError(
                "a record has `a:`/`aaaa:` addresses, or a `cname:` target, or a `ptr:` address"
                + (f" (this one has {' and '.join(kinds)})" if kinds else "")
            )
        return self


class Dns(Strict):
    """The lab's DNS server (dnsmasq): on ``server``, or on a node ``dns`` socklab adds."""

    server: NodeName | None = None
    """The node that runs the DNS server (default: a node `dns` that socklab adds)."""
    records: list[DnsRecord] = []
    """The lab's DNS records."""

    @model_validator(mode="before")
    @classmethod
    def _records_only(cls, value: Any) -> Any:
        """``dns: [records...]`` is short for ``dns: {records: [...]}``."""
        return {"records": value} if isinstance(value, list) else value
