"""The report page's pieces without a browser: conversations of a timeline, the sequence
diagrams, the connection map's arrows, the topology's addresses, what must never wrap."""

from __future__ import annotations

import html as htmllib
import math
import re
import xml.etree.ElementTree as ET

from socklab.scenario import html
from socklab.scenario.conversations import conversations
from socklab.scenario.sequence import CLIENT_X, SERVER_X, sequence_svg
from socklab.topology.graph import link_lines, render
from tests.report_sample import CLIENT, T0, V4, V6, sample_graph, sample_run

SVG = "{http://www.w3.org/2000/svg}"


def svg_of(page: str, ident: str) -> ET.Element:
    found = re.search(rf'<svg id="{ident}".*?</svg>', page, re.S)
    assert found, ident
    return ET.fromstring(found.group(0))


def test_conversations_pair_both_ends_in_causal_order() -> None:
    run = sample_run()
    convs = conversations(run.timeline, run.nodes)
    assert [(c.client.node, c.server.node, c.proto, c.outcome) for c in convs] == [
        (CLIENT, "server", "tcp", "closed"),
        (CLIENT, "server", "tcp", "ECONNREFUSED"),
        ("peer-2", "server", "tcp", "closed"),
        ("peer-2", "server", "udp", "open"),
        (CLIENT, "peer-2", "tcp", "ETIMEDOUT"),
    ]
    first = convs[0]
    assert first.client.address == f"[{V6[CLIENT]}]:41000"
    assert first.server.address == f"[{V6['server']}]:5000" and first.server.app == "tcp-server"
    kinds = [(side, e["event"]) for side, e in first.events]
    assert kinds[:2] == [("client", "connected"), ("server", "accepted")]
    # each received after the other end's matching sent, though stamped a little earlier
    sent = {"client": 0, "server": 0}
    for side, event in kinds:
        other = "server" if side == "client" else "client"
        if event == "sent":
            sent[side] += 1
        if event == "received":
            assert sent[other] > 0
            sent[other] -= 1
    assert kinds[-2:] == [("client", "closed"), ("server", "closed")]
    udp = convs[3]
    assert udp.server.app == "udp-server" and [s for s, _ in udp.events].count("server") == 2


def test_sequence_diagram_arrows_go_down_between_the_lifelines() -> None:
    run = sample_run()
    conv = conversations(run.timeline, run.nodes)[0]
    svg = ET.fromstring(sequence_svg(conv, T0))
    arrows = [a for a in svg.iter(f"{SVG}line") if "msg" in a.get("class", "")]
    labels = [t.text for t in svg.iter(f"{SVG}text") if "msg-label" in t.get("class", "")]
    assert labels == ["SYN · SYN-ACK · ACK", "'hello'", "'hello'", "'hello'", "'hello'", "FIN"]
    for a in arrows:
        x1, y1, x2, y2 = (float(a.get(k, "0")) for k in ("x1", "y1", "x2", "y2"))
        assert y2 > y1  # an effect is drawn after its cause
        assert (min(x1, x2), max(x1, x2)) == (CLIENT_X + 5, SERVER_X - 5)  # short of the dots
    texts = "".join(t.text or "" for t in svg.iter(f"{SVG}text"))
    assert f"[{V6[CLIENT]}]:41000" in texts and "+0.100 s" in texts


def test_a_long_conversation_shows_its_beginning_and_end() -> None:
    run = sample_run()
    long = conversations(run.timeline, run.nodes)[2]
    assert len(long.events) == 2 + 40 * 4 + 2
    svg = sequence_svg(long, T0)
    assert "⋮ 142 more events (all in report.json)" in svg
    assert "closed eof" in svg


def test_a_refused_connection_is_a_syn_answered_by_rst() -> None:
    run = sample_run()
    refused = conversations(run.timeline, run.nodes)[1]
    svg = ET.fromstring(sequence_svg(refused, T0))
    labels = [t.text for t in svg.iter(f"{SVG}text") if "msg-label" in t.get("class", "")]
    assert labels == ["SYN", "RST: ECONNREFUSED"]


def test_connection_arrows_end_at_the_dots_edge_and_carry_the_port() -> None:
    page = html.render(sample_run())
    svg = svg_of(page, "connections")
    dots = [
        (float(c.get("cx", 0)), float(c.get("cy", 0)), float(c.get("r", 0))) for c in svg.iter(f"{SVG}circle")
    ]
    paths = [p.get("d", "") for p in svg.iter(f"{SVG}path") if p.get("class") == "conn"]
    assert len(paths) == 3
    for d in paths:
        nums = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", d)]
        for x, y in ((nums[0], nums[1]), (nums[4], nums[5])):  # start, end
            nearest = min(math.hypot(x - cx, y - cy) - r for cx, cy, r in dots)
            assert 1 < nearest < 6, d  # beside a dot, not under it
    ports = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "port"]
    assert sorted(ports) == ["tcp/5000", "tcp/5000 (2 connections)", "tcp/7000"]


def test_the_topology_is_the_labs_graph_with_its_marks() -> None:
    """The diagram draws `socklab graph`'s model: every link's lines (IPv4, IPv6, aliases,
    impairment) at its node's stem, the router and the lab DNS server marked in their boxes,
    impaired links dashed; the same graph as Mermaid text beside it."""
    run = sample_run()
    graph = sample_graph()
    page = html.render(run)
    svg = svg_of(page, "topology")
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    for link in graph.links:
        assert set(link_lines(link)) <= set(texts), link
    for node in ("server", CLIENT, "peer-2"):
        assert V4[node] in texts and V6[node] in texts
    assert {"echo", "www", "impaired: loss 5% delay 40ms"} <= set(texts)
    assert "lan · 10.100.7.0/24 · fd5c:10:0:1::/64" in texts
    assert "wan · 10.100.8.0/24 · impaired links" in texts
    boxes = {r.get("class"): r for r in svg.iter(f"{SVG}rect")}
    assert {"node node", "node router", "node dns"} <= set(boxes)
    marks = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "mark"]
    assert sorted(marks) == ["lab DNS server", "router"]
    impaired = [x for x in svg.iter(f"{SVG}line") if x.get("class") == "impaired"]
    assert len(impaired) == 3 and all(x.get("stroke-dasharray") for x in impaired)
    mermaid = re.search(r'<details id="mermaid">.*?<pre><code>(.*?)</code>', page, re.S)
    assert mermaid and htmllib.unescape(mermaid.group(1)) == render(graph, "mermaid")


def test_a_result_without_a_graph_says_so() -> None:
    run = sample_run()
    run.graph = None
    page = html.render(run)
    assert 'id="topology"' not in page and "No graph of the lab" in page


def test_times_never_wrap_and_the_page_is_self_contained() -> None:
    page = html.render(sample_run())
    assert '<td class="num time">1.67&nbsp;s</td>' in page
    assert re.search(r"td\.num[^{]*\{[^}]*white-space:nowrap", page)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert page.count('<details class="conv"') == 5 and 'id="timeline"' in page


def test_the_events_table_says_what_each_event_carried_a_fault_included() -> None:
    run = sample_run()
    ts = run.timeline[-1]["ts"] + 1
    run.timeline.append(
        {
            "time": "",
            "ts": ts,
            "node": "server",
            "app": "socklab",
            "pid": 0,
            "event": "fault",
            "peer": None,
            "fields": {
                "action": "partition",
                "step": "3",
                "detail": "partitioned peer-2 | server: dropped both ways",
            },
        }
    )
    table = re.search(r'<table id="timeline">.*?</table>', html.render(run), re.S)
    assert table and "<th>detail</th>" in table.group(0)
    last = table.group(0).split("<tr>")[-1]
    assert ">fault<" in last
    assert "action=partition step=3 detail=partitioned peer-2 | server: dropped both ways" in last
