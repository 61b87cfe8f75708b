"""Scenario pieces that need no Docker: expectations, scenario choice, JUnit and HTML reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from socklab.errors import LabError
from socklab.scenario import expect, html, report
from socklab.scenario.results import NodeOutput, RunResult, StepResult
from socklab.scenario.run import pick_scenario
from socklab.topology.graph import lab_graph
from socklab.topology.model import Expect, Topology
from socklab.topology.plan import plan

REFUSED = json.dumps(
    {"ts": 1.0, "app": "tcp-client", "event": "error", "errno": "ECONNREFUSED", "errno_number": 111}
)


def out(code: int = 0, stdout: str = "", stderr: str = "", duration: float = 0.1) -> NodeOutput:
    o = NodeOutput("client-1", code, stdout, stderr, duration)
    o.errno = expect.reported_errno(stdout)
    return o


def test_errno_is_read_from_the_apps_error_event() -> None:
    assert expect.reported_errno('{"event": "connected"}\n' + REFUSED) == "ECONNREFUSED"
    assert expect.reported_errno("not json\n") is None


def test_expected_errno_seen_passes_whatever_the_exit_code() -> None:
    assert expect.check(Expect(errno="ECONNREFUSED"), out(1, REFUSED), 60) == []


def test_expected_errno_missing_says_what_happened() -> None:
    events = [
        {"event": "connected"},
        {"event": "sent"},
        {"event": "received", "data": "hello"},
        {"event": "sent"},
        {"event": "received", "data": "hello"},
        {"event": "closed"},
    ]
    got = out(0, "".join(json.dumps(e) + "\n" for e in events), "tcp-client: closed\n")
    assert expect.check(Expect(errno="ECONNREFUSED"), got, 60) == [
        "expected ECONNREFUSED, got exit 0: \"connected, sent, received 'hello', sent, "
        "received 'hello', closed\""
    ]
    got = out(0, "", "some tool said this\n")
    assert expect.check(Expect(errno="ECONNREFUSED"), got, 60) == [
        "expected ECONNREFUSED, got exit 0: 'some tool said this'"
    ]


def test_default_expectation_is_exit_zero_and_timeouts_are_named() -> None:
    assert expect.check(Expect(), out(0), 60) == []
    assert expect.check(Expect(), out(137, duration=2.0), 2) == ["expected exit 0, got a timeout after 2 s"]
    assert expect.check(Expect(exit=3), out(3), 60) == []


def test_stdout_and_duration_bounds() -> None:
    assert expect.check(Expect(stdout_contains="pong"), out(0, "ping"), 60) == [
        "expected stdout to contain 'pong', got exit 0: 'ping'"
    ]
    assert expect.check_duration(Expect(duration_max=1), 1.5) == ["expected at most 1 s, took 1.50 s"]
    assert expect.check_duration(Expect(duration_min=2), 1.5) == ["expected at least 2 s, took 1.50 s"]
    assert expect.check_duration(Expect(duration_min=1, duration_max=2), 1.5) == []


def topo(scenarios: dict[str, object]) -> Topology:
    return Topology.model_validate(
        {"name": "t", "networks": {"lan": {}}, "nodes": {"a": {"networks": ["lan"]}}, "scenarios": scenarios}
    )


def test_scenario_choice() -> None:
    assert pick_scenario(topo({"only": [{"sleep": 0}]}), None)[0] == "only"
    assert pick_scenario(topo({"default": [], "x": []}), None)[0] == "default"
    with pytest.raises(LabError, match="unknown scenario 'y'") as err:
        pick_scenario(topo({"default": [], "x": []}), "y")
    assert err.value.hint == "scenarios: default, x" and err.value.exit_code == 2
    with pytest.raises(LabError, match="has no scenarios"):
        pick_scenario(topo({}), None)


def test_fault_steps_are_part_of_a_scenario() -> None:
    t = topo({"default": [{"parallel": [{"fault": {"kill": "a"}}]}]})
    assert len(pick_scenario(t, None)[1]) == 1


def result() -> RunResult:
    ok = StepResult("1", "run", "run a: true", "passed", 0.0, 0.1, outputs=[out(0, "hi")])
    bad = StepResult(
        "2.1",
        "run",
        "run a: tcp-client a 1",
        "failed",
        0.0,
        0.2,
        detail="a: expected ECONNREFUSED, got exit 0",
    )
    par = StepResult(
        "2",
        "parallel",
        "parallel (1 steps)",
        "failed",
        0.0,
        0.2,
        detail="1 of 1 parallel steps failed",
        children=[bad],
    )
    topology = topo({})
    graph = lab_graph(plan(topology), {"a": {"lan": ("10.0.0.2", "")}})
    return RunResult(
        "t",
        "default",
        topology.model_dump(mode="json"),
        0.0,
        1.0,
        steps=[ok, par],
        nodes=[{"node": "a", "networks": {"lan": "10.0.0.2/24"}}],
        graph=graph.as_dict(),
    )


def test_junit_has_one_testcase_per_step_and_the_failures_messages() -> None:
    suite = ET.fromstring(report.junit(result())).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "2", "0")
    names = [c.get("name") for c in suite.iter("testcase")]
    assert names == ["step 1 run a: true", "step 2 parallel (1 steps)", "step 2.1 run a: tcp-client a 1"]
    failures = [f.get("message") for f in suite.iter("failure")]
    assert failures == ["1 of 1 parallel steps failed", "a: expected ECONNREFUSED, got exit 0"]


def test_html_is_self_contained_and_lists_every_step() -> None:
    page = html.render(result())
    assert page.count('<tr class="step ') == 3
    assert "FAILED" in page and ">10.0.0.2<" in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
