"""A routed lab that publishes a port, set up from this host (root, local daemon: no helper
container) and through helpers (SOCKLAB_NETSETUP=helper): the same routes, in place before
the start commands run, and no default route in any node of a network Docker gives a
gateway."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from socklab import Lab
from socklab.orchestrator.engine import DockerEngine
from socklab.orchestrator.engine_api import ExecResult, HelperSpec
from socklab.orchestrator.hostnet import SETTING

from .conftest import free_subnet

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="entering a node's namespace needs root")

AT_START = "sh -c 'ip -4 route > /tmp/at-start; ip -6 route >> /tmp/at-start; exec sleep 100000'"


class CountingEngine(DockerEngine):
    """The local Docker engine, counting the helpers it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.helpers: list[str] = []

    def run_helper(self, spec: HelperSpec, *, timeout: float = 60.0) -> ExecResult:
        self.helpers.append(spec.purpose)
        return super().run_helper(spec, timeout=timeout)


def routes_at_start(lab: Lab) -> dict[str, list[str]]:
    """What each node's start command saw: its routes, without the kernel's own."""
    out = {}
    for node in ("web", "r", "far"):
        text = lab.node(node).exec(["cat", "/tmp/at-start"]).stdout
        out[node] = sorted(
            line.split(" proto ")[0].split(" metric ")[0].strip()
            for line in text.splitlines()
            if "proto kernel" not in line
        )
    return out


def test_routes_from_the_host_equal_the_helpers(
    write_lab: Callable[..., Path], node_image: str, ipv6_unsupported: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = CountingEngine()
    lan, wan = free_subnet(engine), free_subnet(engine)
    networks: dict[str, Any] = {"lan": {"subnet": str(lan)}, "wan": {"subnet": str(wan)}}
    if not ipv6_unsupported:
        networks["lan"]["ipv6"] = True
    path = write_lab(
        {
            "networks": networks,
            "nodes": {
                "web": {"networks": ["lan"], "ports": [80], "start": [AT_START]},
                "r": {"router": True, "networks": ["lan", "wan"], "start": [AT_START]},
                "far": {"networks": ["wan"], "start": [AT_START]},
            },
        },
        "netsetup",
    )
    seen = {}
    for how in ("host", "helper"):
        if how == "helper":
            monkeypatch.setenv(SETTING, "helper")
        lab = Lab.load(path, engine=engine)
        engine.helpers.clear()
        with lab:
            seen[how] = routes_at_start(lab)
            used = list(engine.helpers)
        assert used == ([] if how == "host" else ["fault", "fault", "fault"]), how
    assert seen["host"] == seen["helper"]
    host = seen["host"]
    assert not [line for routes in host.values() for line in routes if line.startswith("default")]
    r_lan = str(lan.network_address + 3)  # web .2, r .3, far on wan
    assert f"{wan} via {r_lan} dev eth0" in host["web"]
    assert any(line.startswith(f"{lan} via ") for line in host["far"])
