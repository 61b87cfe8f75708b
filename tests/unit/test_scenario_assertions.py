"""The scenario assertions the course labs need: event order, duration ratios, stdout
patterns, captures, and socklab's socket table beside netstat/ss. Pure: no Docker."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from socklab.observe import netstat
from socklab.observe.pcap import TcpConversation
from socklab.observe.sockets import SocketRow
from socklab.observe.timeline import Event
from socklab.scenario import expect
from socklab.scenario.results import NodeOutput, StepResult
from socklab.scenario.steps import StepFailed, StepRunner, _conversation_matches, describe
from socklab.topology.model import (
    EventPattern,
    Expect,
    ExpectCaptureSpec,
    ExpectRatioSpec,
    RunSpec,
    RunStep,
    Topology,
)


def ev(node: str, event: str, ts: float, app: str = "tcp-server", **fields: Any) -> Event:
    peer = fields.pop("peer", None)
    return Event(ts=ts, node=node, app=app, pid=1, event=event, peer=peer, fields=fields)


def pat(event: str, **kw: Any) -> EventPattern:
    return EventPattern.model_validate({"event": event, **kw})


TIMELINE = [
    ev("server", "created", 1.0, family="inet6"),
    ev("server", "bound", 1.1, address="[::]:5000"),
    ev("server", "listening", 1.2, port=5000),
    ev("client-1", "connected", 2.0, app="tcp-client", peer="10.0.0.2:5000"),
    ev("server", "accepted", 2.1, local="10.0.0.2:5000"),
    ev("client-2", "connected", 2.2, app="tcp-client", peer="10.0.0.2:5000"),
    ev("client-1", "closed", 3.0, app="tcp-client", how="FIN"),
]


def test_events_are_found_in_order_with_others_between() -> None:
    patterns = [
        pat("created"),
        pat("listening", fields={"port": 5000}),
        pat("connected", node="client-1"),
        pat("closed", app="tcp-*"),
    ]
    matched, missing = expect.match_in_order(patterns, TIMELINE)
    assert missing is None
    assert [(e.node, e.event) for e in matched] == [
        ("server", "created"),
        ("server", "listening"),
        ("client-1", "connected"),
        ("client-1", "closed"),
    ]


def test_order_matters_and_the_failure_says_what_came_last() -> None:
    patterns = [pat("accepted"), pat("connected", node="client-1")]
    matched, missing = expect.match_in_order(patterns, TIMELINE)
    assert missing == 1 and [e.event for e in matched] == ["accepted"]
    assert expect.missing_event(patterns, matched, missing, TIMELINE) == (
        "expected event 2 of 2, client-1 connected after server tcp-server accepted"
        " (it happened, but earlier); 1 matched in order"
    )


def test_fields_match_by_value_or_by_text_and_peer_is_a_field() -> None:
    listening = TIMELINE[2]
    assert expect.pattern_matches(pat("listening", fields={"port": "5000"}), listening)
    assert not expect.pattern_matches(pat("listening", fields={"port": 5001}), listening)
    assert not expect.pattern_matches(pat("listening", fields={"mode": "x"}), listening)
    connected = TIMELINE[3]
    assert expect.pattern_matches(pat("connected", fields={"peer": "10.0.0.2:5000"}), connected)
    flag = ev("n", "listening", 1, dual_stack=True)
    assert expect.pattern_matches(pat("listening", fields={"dual_stack": True}), flag)
    assert not expect.pattern_matches(pat("listening", fields={"dual_stack": 1}), flag)


def test_a_replicated_name_matches_its_replicas() -> None:
    topo = Topology.model_validate(
        {
            "name": "t",
            "networks": {"lan": {}},
            "nodes": {"server": {"networks": ["lan"]}, "client": {"replicas": 2, "networks": ["lan"]}},
        }
    )

    def nodes_of(p: str) -> set[str]:
        return set(topo.match_nodes(p))

    patterns = [pat("connected", node="client"), pat("connected", node="client")]
    matched, missing = expect.match_in_order(patterns, TIMELINE, nodes_of)
    assert missing is None and [e.node for e in matched] == ["client-1", "client-2"]


def run_output(stdout: str) -> NodeOutput:
    return NodeOutput("client-1", 0, stdout, "", 0.1)


def test_run_expectations_on_the_apps_events_and_stdout_patterns() -> None:
    lines = [
        json.dumps({"ts": 1.0 + i, "app": "tcp-client", "event": e, "pid": 7})
        for i, e in enumerate(["resolved", "created", "connected", "closed"])
    ]
    out = run_output("\n".join(lines) + "\n")
    good = Expect(events=[pat("created"), pat("closed")], stdout_matches=r'"event": "conn\w+"')
    assert expect.check(good, out, 10) == []
    bad = Expect(events=[pat("closed"), pat("created")], stdout_matches=r"^nothing$")
    problems = expect.check(bad, out, 10)
    assert problems[0].startswith("expected stdout to match '^nothing$', got exit 0")
    assert problems[1].startswith(
        "expected event 2 of 2, created after client-1 tcp-client closed (it happened, but earlier)"
    )


def runner_with(durations: dict[str, float]) -> StepRunner:
    runner = StepRunner(SimpleNamespace(topology=None), Path("/nonexistent"))  # type: ignore[arg-type]
    for ident, seconds in durations.items():
        runner.by_id[ident] = StepResult(ident, "run", ident, "passed", 0.0, seconds)
    return runner


def test_the_ratio_of_two_run_steps() -> None:
    runner = runner_with({"iterative": 2.4, "threaded": 0.6})
    result = StepResult("3", "expect_ratio", "", "passed", 0.0, 0.0)
    runner._expect_ratio(ExpectRatioSpec(of="iterative", to="threaded", min=3), result)
    assert result.detail == "iterative 2.40 s / threaded 0.60 s = 4.00"
    with pytest.raises(StepFailed, match=r"expected a ratio between 5 and 8, got iterative"):
        runner._expect_ratio(ExpectRatioSpec(of="iterative", to="threaded", min=5, max=8), result)


def test_a_run_step_is_known_by_its_id_once_it_ran() -> None:
    runner = runner_with({})
    runner._run = lambda spec, result: None  # type: ignore[method-assign]
    runner.run(RunStep(run=RunSpec(node="a", cmd=["x"], id="first")), "1")
    assert runner.by_id["first"].kind == "run" and runner.results[0].index == "1"


def test_capture_conditions() -> None:
    closed = TcpConversation(
        "10.0.0.3:40000",
        "10.0.0.2:5000",
        9,
        10,
        ["SYN", "SYN-ACK", "ACK"],
        ["FIN client", "FIN server", "ACK"],
    )
    refused = TcpConversation("10.0.0.3:40002", "10.0.0.2:5999", 2, 0, ["SYN", "RST-ACK"], [])
    spec = ExpectCaptureSpec.model_validate(
        {"capture": "c", "handshake": "SYN SYN-ACK ACK", "server_port": 5000, "outcome": "closed"}
    )
    assert _conversation_matches(spec, closed) and not _conversation_matches(spec, refused)
    assert _conversation_matches(ExpectCaptureSpec(capture="c", outcome="refused"), refused)


def test_step_titles() -> None:
    from socklab.topology.model import (
        CaptureStep,
        CompareSocketsStep,
        ExpectCaptureStep,
        ExpectRatioStep,
        ExpectTimelineStep,
    )

    assert (
        describe(ExpectRatioStep.model_validate({"expect_ratio": {"of": "a", "to": "b", "min": 3}}))
        == "expect_ratio a / b at least 3"
    )
    assert describe(
        CaptureStep.model_validate({"capture": {"node": "srv", "id": "hs", "filter": "tcp port 5000"}})
    ) == ("capture hs in srv: tcp port 5000")
    assert describe(
        ExpectCaptureStep.model_validate(
            {"expect_capture": {"capture": "hs", "server_port": 5000, "outcome": "closed"}}
        )
    ) == ("expect_capture hs: >= 1 connections with server port 5000, outcome closed")
    assert (
        describe(
            ExpectTimelineStep.model_validate(
                {
                    "expect_timeline": {
                        "events": [
                            {"node": "srv", "event": "listening"},
                            {"event": "connected", "fields": {"host": "x"}},
                        ]
                    }
                }
            )
        )
        == "expect_timeline srv listening → connected (host=x)"
    )
    assert (
        describe(CompareSocketsStep.model_validate({"compare_sockets": {"node": "srv"}}))
        == "compare_sockets srv with netstat"
    )


NETSTAT = """\
Active Internet connections (servers and established)
Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name
tcp        0      0 127.0.0.11:35665        0.0.0.0:*               LISTEN      -
tcp        0      0 10.100.0.3:41000        10.100.0.2:5000         TIME_WAIT   -
tcp6       0      0 :::5000                 :::*                    LISTEN      14/tcp-server
tcp6       0      5 10.100.0.2:5000         10.100.0.4:3999         ESTABLISHED 14/tcp-server
udp        0      0 127.0.0.11:54909        0.0.0.0:*                           -
udp6       0      0 :::5002                 :::*                                9/udp-server
"""

SS = """\
tcp   LISTEN    0      4096          127.0.0.11:35665      0.0.0.0:*
tcp   TIME-WAIT 0      0             10.100.0.3:41000   10.100.0.2:5000
tcp   LISTEN    0      128                    *:5000             *:*    users:(("tcp-server",pid=14,fd=3))
tcp ESTAB 0 5 [::ffff:10.100.0.2]:5000 [::ffff:10.100.0.4]:3999 users:(("tcp-server",pid=14,fd=4))
udp   UNCONN    0      0             127.0.0.11:54909      0.0.0.0:*
udp   UNCONN    0      0                      *:5002             *:*    users:(("udp-server",pid=9,fd=3))
"""


def reader(*rows: tuple[Any, ...]) -> list[SocketRow]:
    return [
        SocketRow("n", proto, lip, lport, rip, rport, state, 0, sq, 1, pid, "tcp-server" if pid else None)
        for proto, lip, lport, rip, rport, state, sq, pid in rows
    ]


OURS = reader(
    ("tcp", "127.0.0.11", 35665, "0.0.0.0", 0, "LISTEN", 0, None),
    ("tcp", "10.100.0.3", 41000, "10.100.0.2", 5000, "TIME_WAIT", 0, None),
    ("tcp6", "::", 5000, "::", 0, "LISTEN", 0, 14),
    ("tcp6", "::ffff:10.100.0.2", 5000, "::ffff:10.100.0.4", 3999, "ESTABLISHED", 5, 14),
    ("udp", "127.0.0.11", 54909, "0.0.0.0", 0, "UNCONN", 0, None),
    ("udp6", "::", 5002, "::", 0, "UNCONN", 0, 9),
    ("unix", "/run/socklab/supervisor.sock", 0, "", 0, "LISTENING", 0, 1),
)


@pytest.mark.parametrize(
    ("tool", "text", "parse"), [("netstat", NETSTAT, netstat.parse_netstat), ("ss", SS, netstat.parse_ss)]
)
def test_the_reader_and_the_tools_agree_row_for_row(tool: netstat.Tool, text: str, parse: Any) -> None:
    theirs = parse(text)
    assert len(theirs) == 6
    ours = netstat.reader_rows(OURS, tool)
    assert ours == theirs
    found = netstat.Comparison("n", tool, ours, theirs, text)
    assert found.agree and found.differences() == []


def test_a_difference_is_named_row_by_row() -> None:
    theirs = netstat.parse_netstat(NETSTAT)
    ours = netstat.reader_rows(OURS[:-2], "netstat")
    found = netstat.Comparison("n", "netstat", ours, theirs, NETSTAT)
    assert not found.agree
    assert found.differences() == ["only netstat: udp6 :::5002 :::0 UNCONN 0/0 9"]


def test_a_variable_binds_a_value_that_later_events_must_carry() -> None:
    events = [
        ev("client-1", "connected", 1.0, app="tcp-client", local="10.0.0.3:4001"),
        ev("client-2", "connected", 1.1, app="tcp-client", local="10.0.0.4:4002"),
        ev("server", "accepted", 1.2, peer="10.0.0.4:4002"),
        ev("server", "accepted", 1.3, peer="10.0.0.3:4001"),
    ]
    same = [
        pat("connected", node="client-1", fields={"local": "$c1"}),
        pat("accepted", fields={"peer": "$c1"}),
    ]
    matched, missing = expect.match_in_order(same, events)
    assert missing is None and matched[1].peer == "10.0.0.3:4001"  # not the first accepted
    other = [
        pat("connected", node="client-1", fields={"local": "$c"}),
        pat("connected", node="client-2", fields={"local": "$c"}),
    ]
    assert expect.match_in_order(other, events)[1] == 1


def test_a_ratio_by_events_divides_the_apps_own_time() -> None:
    runner = runner_with({})

    def step(ident: str, duration: float, stamps: list[float]) -> None:
        lines = [json.dumps({"ts": t, "app": "tcp-client", "event": "sent", "pid": 1}) for t in stamps]
        result = StepResult(ident, "run", ident, "passed", 0.0, duration)
        result.outputs = [NodeOutput("client", 0, "\n".join(lines), "", duration)]
        runner.by_id[ident] = result

    step("slow", 6.0, [100.0, 101.0, 104.0])  # 4 s of events in a 6 s step
    step("fast", 3.0, [200.0, 201.0])  # 1 s of events in a 3 s step: start-up cost
    result = StepResult("9", "expect_ratio", "", "passed", 0.0, 0.0)
    runner._expect_ratio(ExpectRatioSpec(of="slow", to="fast", min=3, by="events"), result)
    assert result.detail == "slow 4.00 s / fast 1.00 s = 4.00 (first to last event)"
    with pytest.raises(StepFailed):  # by duration it would be 2
        runner._expect_ratio(ExpectRatioSpec(of="slow", to="fast", min=3), result)


def test_events_in_any_order_bind_variables_too() -> None:
    events = [
        ev("server", "names", 1.0, sockname="10.0.0.2:6002", peername="10.0.0.3:4001"),
        ev("client", "names", 1.1, sockname="10.0.0.3:4001", peername="10.0.0.2:6002"),
    ]
    patterns = [
        pat("names", node="client", fields={"sockname": "$c", "peername": "$s"}),
        pat("names", node="server", fields={"sockname": "$s", "peername": "$c"}),
    ]
    assert expect.match_in_order(patterns, events)[1] == 1  # in order: the server spoke first
    matched, missing = expect.match_in_order(patterns, events, in_order=False)
    assert missing is None and [e.node for e in matched] == ["client", "server"]
    wrong = [patterns[0], pat("names", node="server", fields={"sockname": "$c"})]
    assert expect.match_in_order(wrong, events, in_order=False)[1] == 1
