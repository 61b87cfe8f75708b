"""UDP and TCP on a dual-stack network: names resolve to IPv6 first, servers listen on both
families by default, and clients try every address a name has (a refused one is a quiet
retry: recorded in the events, not printed as an error)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from socklab import Lab
from socklab.orchestrator.engine_api import Engine

from .conftest import lab_name

DUAL = {
    "networks": {"lan": {"ipv6": True}},
    "nodes": {
        "web": {
            "networks": ["lan"],
            "start": [
                "udp-server --port 5002",
                "tcp-server --port 5000",
                "udp-server --port 5003 --family inet",
                "tcp-server --port 5001 --family inet",
            ],
        },
        "client": {"networks": ["lan"]},
    },
}


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def lab(
    ipv6_unsupported: str | None, engine: Engine, node_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lab]:
    if ipv6_unsupported:
        pytest.skip(f"the Docker daemon cannot make IPv6 networks: {ipv6_unsupported}")
    path = tmp_path_factory.mktemp("dual") / "dual.yml"
    path.write_text(yaml.safe_dump({"name": lab_name("dual"), **DUAL}))
    the_lab = Lab.load(path, engine=engine).up()
    yield the_lab
    the_lab.down()


def test_udp_client_reaches_a_dual_stack_server_by_name(lab: Lab) -> None:
    done = lab.node("client").exec(["udp-client", "web", "5002", "--count", "3"])
    assert done.ok, done.stdout + done.stderr
    found = events(done.stdout)
    resolved = next(e for e in found if e["event"] == "resolved")
    assert resolved["addresses"][0].startswith("[fd")  # IPv6 first
    assert found[-1]["event"] == "summary" and found[-1]["received"] == 3
    assert found[-1]["peer"] == resolved["addresses"][0]  # the server answered on IPv6


@pytest.mark.parametrize(("client", "port"), [("udp-client", "5003"), ("tcp-client", "5001")])
def test_an_ipv4_only_server_is_reached_after_a_quiet_retry(lab: Lab, client: str, port: str) -> None:
    done = lab.node("client").exec([client, "web", port])
    assert done.ok, done.stdout + done.stderr
    found = events(done.stdout)
    retry = next(e for e in found if e["event"] == "retry")
    assert retry["errno"] == "ECONNREFUSED" and retry["peer"].startswith("[fd")
    assert "." in retry["next"]  # then the IPv4 address
    assert "ECONNREFUSED" not in done.stderr and "error" not in [e["event"] for e in found]


def test_the_timeline_keeps_the_retry_of_a_started_client(lab: Lab) -> None:
    started = lab.node("client").exec(["socklab-start", "tcp-client", "web", "5001"])
    assert started.ok, started.stderr

    def seen() -> list[str]:
        return [e.event for e in lab.timeline() if e.node == "client" and e.event in ("retry", "closed")]

    deadline = time.monotonic() + 10
    while len(seen()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert seen() == ["retry", "closed"]
