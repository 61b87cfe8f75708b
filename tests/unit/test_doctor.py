"""socklab doctor without a daemon: what a topology needs, and when the doctor fails."""

from __future__ import annotations

import pytest

from socklab.errors import LabError
from socklab.orchestrator import doctor
from socklab.topology import parse_topology

from .fake_engine import FakeEngine

LAB = """\
name: lab
networks:
  lan: {impair: {delay: 40ms, rate: 1mbit}}
  v6: {ipv6: true}
nodes:
  a: {networks: [lan, v6]}
scenarios:
  default:
    - fault: {loss: {node: a, pct: 30, proto: udp}}
    - fault: {corrupt: {node: a, pct: 1}}
"""
THIS_KERNEL = {
    "netem": False,
    "tbf": True,
    "htb": True,
    "statistic": True,
    "nfqueue": True,
    "ipv6": True,
    "br_netfilter": True,
}


def test_what_a_topology_needs() -> None:
    assert doctor.needs(parse_topology(LAB, "lab.yml")) == {
        "netem|nfqueue",
        "netem|tbf|htb",
        "ipv6",
        "statistic+nfqueue",
        "netem",
    }
    assert doctor.needs(None) == set()


def test_a_needed_feature_that_is_missing_fails_the_doctor(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = FakeEngine()
    monkeypatch.setattr(doctor, "probe_kernel", lambda _engine: THIS_KERNEL)
    monkeypatch.setattr(doctor.shutil, "which", lambda _name: "/usr/bin/mmdebstrap")
    checks = doctor.run(lambda: engine, parse_topology(LAB, "lab.yml"))
    by_name = {c.name: c for c in checks}
    assert by_name["docker daemon"].ok and not by_name["netem"].ok
    assert [c.name for c in doctor.failed(checks)] == ["netem"]  # corrupt: nothing else will do
    no_nfqueue = {**THIS_KERNEL, "nfqueue": False}
    monkeypatch.setattr(doctor, "probe_kernel", lambda _engine: no_nfqueue)
    failed = doctor.failed(doctor.run(lambda: engine, parse_topology(LAB, "lab.yml")))
    assert [c.name for c in failed] == ["netem", "nfqueue"]
    # without a topology, a missing netem is only reported
    assert doctor.failed(doctor.run(lambda: engine)) == []


def test_needed_marks_what_the_lab_uses_here_also_when_it_is_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(doctor.shutil, "which", lambda _name: "/usr/bin/mmdebstrap")
    topo = parse_topology(LAB, "lab.yml")
    monkeypatch.setattr(doctor, "probe_kernel", lambda _engine: THIS_KERNEL)
    needed = {c.name: c.ok for c in doctor.run(lambda: FakeEngine(), topo) if c.needed}
    # delay by NFQUEUE, rate by tbf (not htb), loss by statistic, IPv6; corrupt needs netem
    assert needed == {"netem": False, "tbf": True, "statistic": True, "nfqueue": True, "ipv6": True}
    with_netem = {**THIS_KERNEL, "netem": True}
    monkeypatch.setattr(doctor, "probe_kernel", lambda _engine: with_netem)
    needed = {c.name: c.ok for c in doctor.run(lambda: FakeEngine(), topo) if c.needed}
    assert needed == {"netem": True, "statistic": True, "nfqueue": True, "ipv6": True}


def test_no_daemon_is_a_failed_doctor() -> None:
    def away() -> FakeEngine:
        raise LabError("Docker daemon not reachable: refused", "start Docker")

    checks = doctor.run(away)
    assert [c.name for c in doctor.failed(checks)] == ["docker daemon"]
    assert checks[0].hint == "start Docker"
