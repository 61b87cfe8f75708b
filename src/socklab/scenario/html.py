"""``report.html``: one self-contained page (no scripts, no fetches) about a run.

Sections: summary, topology diagram (the lab's graph, as ``socklab graph`` gives it, in
inline SVG and as Mermaid text), steps, connection map, socket tables per snapshot,
timeline (a sequence diagram per connection, then every event).
The page fits a phone's width: wide tables and the topology scroll in their own box,
diagrams scale down, and times and addresses never wrap.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from socklab.observe.sockets import ip_port
from socklab.observe.timeline import fields_text
from socklab.scenario.conversations import conversations
from socklab.scenario.results import RunResult, StepResult
from socklab.scenario.sequence import MARKERS, sequence_svg
from socklab.scenario.sequence import STYLE as SEQUENCE_STYLE
from socklab.topology.graph import LabGraph, link_lines, net_lines, node_lines
from socklab.topology.graph import render as render_graph

#: Conversations drawn at most (the others are counted); the first few are open.
MAX_DIAGRAMS, OPEN_DIAGRAMS = 40, 4
MAX_EVENTS = 2000

STYLE = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;padding:1em 1.5em;color:#222;
max-width:1200px}
h1{margin:0 0 .2em;font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 8px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}th{background:#f6f6f6;white-space:nowrap}
td.num,td.addr,td.status{white-space:nowrap}td.num{text-align:right}
td.text{min-width:12em;overflow-wrap:anywhere}
.passed{color:#176f2c}.failed,.error{color:#b3261e}.badge{padding:2px 8px;border-radius:4px;
color:#fff;white-space:nowrap}.badge.passed{background:#2e7d32}.badge.failed{background:#c62828}
pre{background:#f8f8f8;padding:6px;overflow:auto;max-height:20em;margin:0;max-width:60em}
code{font:12px ui-monospace,monospace}
svg text{font:12px system-ui,sans-serif}svg .addr{font:11px ui-monospace,monospace;fill:#333}
svg.map{display:block;max-width:100%;height:auto}
details.conv>summary{cursor:pointer;padding:2px 0}details.conv>summary .addr{font:12px ui-monospace,monospace}
@media (max-width:640px){body{padding:.6em .8em}
#steps,#steps tbody{display:block}#steps tr{display:flex;flex-wrap:wrap;border-bottom:1px solid #ddd;
padding:3px 0}#steps tr:first-child,#steps td.kind{display:none}#steps td{border:0;padding:1px 4px}
#steps td.status{order:1}#steps td.time{order:2}#steps td.step-text{order:3;flex-basis:100%}
#steps td.detail{order:4;flex-basis:100%}#steps td.detail:empty{display:none}}
"""


def render(result: RunResult) -> str:
    status = "passed" if result.passed else "failed"
    steps = result.all_steps()
    passed = sum(s.passed for s in steps)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>socklab {escape(result.lab)} — {escape(result.scenario)}</title>"
        f"<style>{STYLE}{SEQUENCE_STYLE}</style></head><body>",
        f"<h1>{escape(result.lab)} / {escape(result.scenario)} "
        f'<span class="badge {status}" id="verdict">{status.upper()}</span></h1>',
        f'<p id="summary">{passed} of {len(steps)} steps passed in {result.duration:.1f} s</p>',
    ]
    if result.error:
        parts.append(f'<p class="failed">{escape(result.error)}</p>')
    parts += [
        "<h2>Topology</h2>",
        topology(result),
        "<h2>Steps</h2>",
        steps_table(result.steps),
        "<h2>Connections</h2>",
        connections_svg(result),
        "<h2>Sockets</h2>",
        snapshots(steps),
        "<h2>Timeline</h2>",
        timeline(result),
        "</body></html>",
    ]
    return "\n".join(parts)


def topology(result: RunResult) -> str:
    """The lab's graph (the one ``socklab graph`` gives) as a diagram, and as Mermaid text
    to paste where Mermaid renders (GitHub)."""
    if result.graph is None:
        return "<p>No graph of the lab in this run's result.</p>"
    graph = LabGraph.from_dict(result.graph)
    return (
        f'<div class="scroll">{topology_svg(graph)}</div>'
        '<details id="mermaid"><summary>as Mermaid (<code>socklab graph</code>; GitHub renders '
        f"it)</summary><pre><code>{escape(render_graph(graph, 'mermaid'))}</code></pre></details>"
    )


#: A node's box by its role: fill and stroke.
NODE_COLOURS = {
    "node": ("#e3f2fd", "#1565c0"),
    "router": ("#fff3e0", "#e65100"),
    "dns": ("#f3e5f5", "#6a1b9a"),
}
LINE = 15  # px between two lines of text


def topology_svg(graph: LabGraph) -> str:
    """Nodes as boxes on top (a router and the lab's DNS server in their own colours, with
    their marks), networks as bars below, a segment of the node's stem per attachment (a
    dot where it joins the bar) labelled as the graph's links are: the node's addresses
    there (IPv4, IPv6), its aliases, its impairment (the segment dashed red)."""
    names = [n.name for n in graph.nodes]
    link = {(x.node, x.network): x for x in graph.links}
    texts = [t for n in graph.nodes for t in node_lines(n)]
    texts += [t for x in graph.links for t in link_lines(x)]
    col = max(150, 8 * max((len(t) for t in texts), default=0) + 40)
    heading = {n.name: " · ".join(net_lines(n)) for n in graph.networks}
    width = max(col * len(names) + 30, 400, 8 * max((len(h) for h in heading.values()), default=0) + 30)
    box = 12 + LINE * max((len(node_lines(n)) for n in graph.nodes), default=1)
    net_y: dict[str, int] = {}
    y = 20 + box
    for net in graph.networks:  # each bar below the labels of its links, stacked upwards
        lines = max((len(link_lines(x)) for x in graph.links if x.network == net.name), default=1)
        y += 28 + LINE * lines
        net_y[net.name] = y
        y += 6
    height = y + 24
    out = [
        f'<svg id="topology" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" role="img">'
    ]
    for net in graph.networks:
        y = net_y[net.name]
        out.append(
            f'<line x1="10" y1="{y}" x2="{width - 10}" y2="{y}" stroke="#1565c0" '
            f'stroke-width="4"/><text class="network" x="12" y="{y + 17}">'
            f"{escape(heading[net.name])}</text>"
        )
    for i, node in enumerate(graph.nodes):
        x = 20 + col * i
        stem, top = x + 24, 20 + box
        for name, y in net_y.items():
            found = link.get((node.name, name))
            if found is None:
                continue
            dashed = ' stroke-dasharray="6 4"' if found.impair else ""
            colour = "#c62828" if found.impair else "#888"
            out.append(
                f'<line class="{"impaired" if found.impair else "link"}" x1="{stem}" '
                f'y1="{top}" x2="{stem}" y2="{y}" stroke="{colour}"{dashed}/>'
                f'<circle cx="{stem}" cy="{y}" r="4" fill="{colour}"/>'
            )
            top = y  # the next network's segment starts at this one's bar
            for j, line in enumerate(reversed(link_lines(found))):
                out.append(f'<text class="addr" x="{stem + 5}" y="{y - 7 - LINE * j}">{escape(line)}</text>')
        fill, stroke = NODE_COLOURS[node.role]
        out.append(
            f'<rect class="node {node.role}" x="{x}" y="20" width="{col - 20}" '
            f'height="{box}" rx="6" fill="{fill}" stroke="{stroke}"/>'
        )
        for j, line in enumerate(node_lines(node)):
            out.append(
                f'<text class="{"node-name" if j == 0 else "mark"}" x="{x + 10}" '
                f'y="{38 + LINE * j}">{escape(line)}</text>'
            )
    out.append("</svg>")
    return "".join(out)


def steps_table(steps: list[StepResult]) -> str:
    rows = []
    for step in (leaf for s in steps for leaf in s.leaves()):
        outputs = "".join(
            f"<details><summary>{escape(o.node)}: exit {o.exit_code}, {o.duration:.2f}&nbsp;s"
            f"</summary><pre><code>{escape(o.stdout + o.stderr)}</code></pre></details>"
            for o in step.outputs
        )
        rows.append(
            f'<tr class="step {step.status}"><td class="num">{escape(step.index)}</td>'
            f'<td class="kind">{escape(step.kind)}</td>'
            f'<td class="text step-text">{escape(step.title)}</td>'
            f'<td class="status {step.status}">{step.status}</td>'
            f'<td class="num time">{step.duration:.2f}&nbsp;s</td>'
            f'<td class="text detail">{escape(step.detail)}{outputs}</td></tr>'
        )
    return (
        '<div class="scroll"><table id="steps"><tr><th>#</th><th>kind</th><th>step</th>'
        "<th>status</th><th>time</th><th>detail</th></tr>" + "".join(rows) + "</table></div>"
    )


def connections_svg(result: RunResult) -> str:
    """Who was connected to whom at the last snapshot: nodes on a circle, an arrow from
    client to server per pair, labelled with the server's port (and the count)."""
    pairs = result.connections
    if not pairs:
        return "<p>No ESTABLISHED connection was seen in a snapshot.</p>"
    names = sorted({p["client"] for p in pairs} | {p["server"] for p in pairs})
    r = max(90, 24 * len(names))
    turn = math.pi / 2 if len(names) > 2 else 0.0  # the first node on top, two side by side
    pos = {
        n: (
            r * math.cos(2 * math.pi * i / len(names) - turn),
            r * math.sin(2 * math.pi * i / len(names) - turn),
        )
        for i, n in enumerate(names)
    }
    margin_x, margin_y = 16 + 7 * max(len(n) for n in names), 44
    left, top = min(x for x, _ in pos.values()) - margin_x, min(y for _, y in pos.values()) - margin_y
    width = max(x for x, _ in pos.values()) + margin_x - left
    height = max(y for _, y in pos.values()) + margin_y - top
    out = [
        f'<svg id="connections" class="map" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="{left:.0f} {top:.0f} {width:.0f} {height:.0f}" '
        'xmlns="http://www.w3.org/2000/svg">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#555"/></marker></defs>',
    ]
    for p in pairs:
        out.append(_connection_arrow(pos[p["client"]], pos[p["server"]], p))
    for n, (x, y) in pos.items():
        right = x >= -1
        out.append(
            f'<circle class="node" cx="{x:.1f}" cy="{y:.1f}" r="{DOT}" fill="#1565c0"/>'
            f'<text x="{x + (DOT + 5 if right else -DOT - 5):.1f}" '
            f'y="{y + (-DOT - 3 if y < -1 else DOT + 13):.1f}" '
            f'text-anchor="{"start" if right else "end"}">{escape(n)}</text>'
        )
    out.append("</svg>")
    rows = "".join(
        f"<tr><td>{escape(p['client'])}</td><td>{escape(p['server'])}</td>"
        f'<td class="num">{p["port"]}</td><td class="num">{p["count"]}</td></tr>'
        for p in pairs
    )
    return "".join(out) + (
        '<div class="scroll"><table><tr><th>client</th><th>server</th>'
        f"<th>port</th><th>connections</th></tr>{rows}</table></div>"
    )


DOT = 7
BEND = 0.18  # a curve, so that a pair connected both ways shows two arrows


def _connection_arrow(a: tuple[float, float], b: tuple[float, float], pair: dict[str, Any]) -> str:
    """A curved arrow from a's dot to b's dot, ending at the dot's edge (not under it)."""
    (x1, y1), (x2, y2) = a, b
    dx, dy = x2 - x1, y2 - y1
    length = math.hypot(dx, dy) or 1.0
    # control point: off the middle, to the right of the direction of travel
    qx, qy = (x1 + x2) / 2 - dy * BEND, (y1 + y2) / 2 + dx * BEND
    start = _towards((x1, y1), (qx, qy), DOT + 2)
    end = _towards((x2, y2), (qx, qy), DOT + 3)
    count = pair.get("count", 1)
    label = f"tcp/{pair['port']}" + (f" ({count} connections)" if count > 1 else "")
    # the curve's middle (t = 1/2 of the quadratic), the label just beside it
    mx, my = (x1 + 2 * qx + x2) / 4, (y1 + 2 * qy + y2) / 4
    nx, ny = -dy / length, dx / length
    return (
        f'<path class="conn" d="M{start[0]:.1f},{start[1]:.1f} Q{qx:.1f},{qy:.1f} '
        f'{end[0]:.1f},{end[1]:.1f}" fill="none" stroke="#555" stroke-width="1.4" '
        f'marker-end="url(#arrow)"/><text class="port" x="{mx + nx * 12:.1f}" '
        f'y="{my + ny * 12 + 4:.1f}" text-anchor="middle">{escape(label)}</text>'
    )


def _towards(p: tuple[float, float], q: tuple[float, float], d: float) -> tuple[float, float]:
    """The point at distance ``d`` from ``p`` towards ``q``."""
    length = math.hypot(q[0] - p[0], q[1] - p[1]) or 1.0
    return p[0] + (q[0] - p[0]) * d / length, p[1] + (q[1] - p[1]) * d / length


COLUMNS = ("proto", "recv_q", "send_q", "local", "remote", "state", "program")


def snapshots(steps: list[StepResult]) -> str:
    shots = [s for s in steps if s.snapshot is not None]
    if not shots:
        return "<p>No socket snapshot was taken (add a <code>snapshot: sockets</code> step).</p>"
    out = []
    for step in shots:
        out.append(f'<h3 class="snapshot">Step {escape(step.index)}: {escape(step.detail)}</h3>')
        for node, rows in sorted((step.snapshot or {}).items()):
            body = "".join(
                "<tr>"
                + "".join(
                    f'<td class="{cls}">{escape(str(cell))}</td>'
                    for cls, cell in (
                        ("", r["proto"]),
                        ("num", r["recv_q"]),
                        ("num", r["send_q"]),
                        ("addr", ip_port(r["local_ip"], r["local_port"])),
                        ("addr", ip_port(r["remote_ip"], r["remote_port"])),
                        ("", r["state"]),
                        ("addr", f"{r['pid'] or '-'}/{r['program'] or '-'}"),
                    )
                )
                + "</tr>"
                for r in rows
                if r["proto"] != "unix"
            )
            head = "".join(f"<th>{c}</th>" for c in COLUMNS)
            out.append(
                f'<h4>{escape(node)}</h4><div class="scroll"><table><tr>{head}</tr>{body}</table></div>'
            )
    return "".join(out)


def timeline(result: RunResult) -> str:
    """A sequence diagram per connection, then every event of the run in a table."""
    events = result.timeline
    if not events:
        return "<p>No app events.</p>"
    t0 = events[0]["ts"]
    convs = conversations(events, result.nodes)
    out = [MARKERS]
    if convs:
        out.append(
            f"<p>{len(convs)} connection{'s' if len(convs) != 1 else ''}, each from its "
            "client (left) to its server (right), time going down.</p>"
        )
    for i, conv in enumerate(convs[:MAX_DIAGRAMS]):
        client = conv.client.node or conv.client.address
        server = conv.server.node or "outside the lab"
        out.append(
            f'<details class="conv"{" open" if i < OPEN_DIAGRAMS else ""}><summary>'
            f'{escape(client)} → {escape(server)} <span class="addr">'
            f"{escape(conv.server.address)}</span> ({conv.proto}, {escape(conv.outcome)})"
            f"</summary>{sequence_svg(conv, t0)}</details>"
        )
    if len(convs) > MAX_DIAGRAMS:
        out.append(
            f"<p>{len(convs) - MAX_DIAGRAMS} more connections are not drawn; every "
            "event is below and in report.json.</p>"
        )
    rows = "".join(
        f'<tr><td class="num time">+{e["ts"] - t0:.3f}&nbsp;s</td>'
        f"<td>{escape(str(e.get('node', '')))}</td>"
        f"<td>{escape(str(e.get('app', '')))}</td><td>{escape(str(e.get('event', '')))}</td>"
        f'<td class="addr">{escape(str(e.get("peer") or ""))}</td>'
        f'<td class="text">{escape(fields_text(e.get("fields") or {}))}</td></tr>'
        for e in events[:MAX_EVENTS]
    )
    shown = f"the first {MAX_EVENTS} of " if len(events) > MAX_EVENTS else ""
    out.append(
        f"<details><summary>All events ({shown}{len(events)}), node by node in time "
        "order</summary>"
        '<div class="scroll"><table id="timeline"><tr><th>time</th><th>node</th>'
        f"<th>app</th><th>event</th><th>peer</th><th>detail</th></tr>{rows}</table></div>"
        "</details>"
    )
    return "".join(out)
