"""When a node's routes are set from this host instead of by a helper container."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from socklab.orchestrator.hostnet import host_setup
from socklab.topology.impair import Impairment
from socklab.topology.netsetup import NetSetup, Route

ROUTED = NetSetup(
    routes=(Route(IPv4Network("10.0.2.0/24"), IPv4Address("10.0.1.3"), "lan"),), drop_default_route=True
)
IMPAIRED = NetSetup(impair={"lan": Impairment(loss=5)}, drop_default_route=True)


@pytest.mark.parametrize(
    ("setting", "euid", "local", "setup", "expected"),
    [
        (None, 0, True, ROUTED, True),
        ("auto", 0, True, ROUTED, True),
        ("helper", 0, True, ROUTED, False),  # asked for
        (" HELPER ", 0, True, ROUTED, False),
        (None, 1000, True, ROUTED, False),  # not root: no way into another user's namespace
        (None, 0, False, ROUTED, False),  # the daemon is elsewhere: its pids are not this host's
        (None, 0, True, IMPAIRED, False),  # tc and iptables: the helper's tools
    ],
)
def test_when_routes_are_set_from_this_host(
    setting: str | None, euid: int, local: bool, setup: NetSetup, expected: bool
) -> None:
    assert host_setup(setting, euid, local, setup) is expected
