"""``report.html``: one self-contained page (no scripts, no fetches) about a run.

Sections: summary, topology diagram (inline SVG), steps, connection map, socket
tables per snapshot, timeline.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from socklab.scenario.results import RunResult, StepResult

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{margin:0 0 .2em}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 8px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}th{background:#f6f6f6}
.passed{color:#176f2c}.failed,.error{color:#b3261e}.badge{padding:2px 8px;border-radius:4px;
color:#fff}.badge.passed{background:#2e7d32}.badge.failed{background:#c62828}
pre{background:#f8f8f8;padding:6px;overflow:auto;max-height:20em;margin:0}
code{font:12px ui-monospace,monospace}svg text{font:12px system-ui,sans-serif}
"""


def render(result: RunResult) -> str:
    status = "passed" if result.passed else "failed"
    steps = result.all_steps()
    passed = sum(s.passed for s in steps)
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>socklab {escape(result.lab)} '
        f"— {escape(result.scenario)}</title><style>{STYLE}</style></head><body>",
        f'<h1>{escape(result.lab)} / {escape(result.scenario)} '
        f'<span class="badge {status}" id="verdict">{status.upper()}</span></h1>',
        f'<p id="summary">{passed} of {len(steps)} steps passed in {result.duration:.1f} s</p>',
    ]
    if result.error:
        parts.append(f'<p class="failed">{escape(result.error)}</p>')
    parts += [
        "<h2>Topology</h2>", topology_svg(result.topology, result.nodes),
        "<h2>Steps</h2>", steps_table(result.steps),
        "<h2>Connections</h2>", connections_svg(result),
        "<h2>Sockets</h2>", snapshots(steps),
        "<h2>Timeline</h2>", timeline(result.timeline),
        "</body></html>",
    ]
    return "\n".join(parts)


def topology_svg(topo: dict[str, Any], nodes: list[dict[str, Any]]) -> str:
    """Nodes as boxes on top, networks as bars below, a line per attachment labelled with its IP."""
    addrs = {n["node"]: n.get("networks", {}) for n in nodes}
    names = [n["node"] for n in nodes] or list(topo.get("nodes", {}))
    nets = list(topo.get("networks", {}))
    width = max(140 * len(names) + 40, 400)
    height = 110 + 60 * len(nets)
    out = [f'<svg id="topology" width="{width}" height="{height}" '
           f'xmlns="http://www.w3.org/2000/svg" role="img">']
    net_y = {net: 120 + 60 * i for i, net in enumerate(nets)}
    for net, y in net_y.items():
        out.append(f'<line x1="10" y1="{y}" x2="{width - 10}" y2="{y}" stroke="#1565c0" '
                   f'stroke-width="4"/><text x="12" y="{y + 16}">{escape(net)}</text>')
    for i, name in enumerate(names):
        x = 30 + 140 * i
        for net, cidr in addrs.get(name, {}).items():
            if net in net_y:
                out.append(f'<line x1="{x + 55}" y1="60" x2="{x + 55}" y2="{net_y[net]}" '
                           f'stroke="#888"/><text x="{x + 58}" y="{net_y[net] - 6}">'
                           f"{escape(cidr)}</text>")
        out.append(f'<rect class="node" x="{x}" y="20" width="110" height="40" rx="6" '
                   f'fill="#e3f2fd" stroke="#1565c0"/><text x="{x + 8}" y="45">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def steps_table(steps: list[StepResult]) -> str:
    rows = []
    for step in (leaf for s in steps for leaf in s.leaves()):
        outputs = "".join(
            f"<details><summary>{escape(o.node)}: exit {o.exit_code}, {o.duration:.2f} s"
            f"</summary><pre><code>{escape(o.stdout + o.stderr)}</code></pre></details>"
            for o in step.outputs
        )
        rows.append(
            f'<tr class="step {step.status}"><td>{escape(step.index)}</td>'
            f"<td>{escape(step.kind)}</td><td>{escape(step.title)}</td>"
            f'<td class="{step.status}">{step.status}</td><td>{step.duration:.2f} s</td>'
            f"<td>{escape(step.detail)}{outputs}</td></tr>"
        )
    return ('<table id="steps"><tr><th>#</th><th>kind</th><th>step</th><th>status</th>'
            "<th>time</th><th>detail</th></tr>" + "".join(rows) + "</table>")


def connections_svg(result: RunResult) -> str:
    """Who was connected to whom at the last snapshot: nodes on a circle, an arrow per pair."""
    pairs = result.connections
    if not pairs:
        return "<p>No ESTABLISHED connection was seen in a snapshot.</p>"
    names = sorted({p["client"] for p in pairs} | {p["server"] for p in pairs})
    r, cx, cy = 120, 200, 160
    pos = {n: (cx + r * math.cos(2 * math.pi * i / len(names)),
               cy + r * math.sin(2 * math.pi * i / len(names))) for i, n in enumerate(names)}
    out = ['<svg id="connections" width="420" height="330" xmlns="http://www.w3.org/2000/svg">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
           'markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z" fill="#555"/></marker></defs>']
    for p in pairs:
        (x1, y1), (x2, y2) = pos[p["client"]], pos[p["server"]]
        out.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" '
                   f'stroke="#555" marker-end="url(#arrow)"/>')
    for n, (x, y) in pos.items():
        out.append(f'<circle cx="{x:.0f}" cy="{y:.0f}" r="6" fill="#1565c0"/>'
                   f'<text x="{x + 8:.0f}" y="{y - 8:.0f}">{escape(n)}</text>')
    out.append("</svg>")
    rows = "".join(f"<tr><td>{escape(p['client'])}</td><td>{escape(p['server'])}</td>"
                   f"<td>{p['port']}</td><td>{p['count']}</td></tr>" for p in pairs)
    return "".join(out) + ("<table><tr><th>client</th><th>server</th><th>port</th>"
                           f"<th>connections</th></tr>{rows}</table>")


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
                "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in (
                    r["proto"], r["recv_q"], r["send_q"], f"{r['local_ip']}:{r['local_port']}",
                    f"{r['remote_ip']}:{r['remote_port']}", r["state"],
                    f"{r['pid'] or '-'}/{r['program'] or '-'}")) + "</tr>"
                for r in rows if r["proto"] != "unix"
            )
            head = "".join(f"<th>{c}</th>" for c in COLUMNS)
            out.append(f"<h4>{escape(node)}</h4><table><tr>{head}</tr>{body}</table>")
    return "".join(out)


def timeline(events: list[dict[str, Any]]) -> str:
    if not events:
        return "<p>No app events.</p>"
    t0 = events[0]["ts"]
    rows = "".join(
        f"<tr><td>+{e['ts'] - t0:.3f} s</td><td>{escape(str(e.get('node', '')))}</td>"
        f"<td>{escape(str(e.get('app', '')))}</td><td>{escape(str(e.get('event', '')))}</td>"
        f"<td>{escape(str(e.get('peer') or ''))}</td></tr>"
        for e in events[:2000]
    )
    return ('<table id="timeline"><tr><th>time</th><th>node</th><th>app</th><th>event</th>'
            f"<th>peer</th></tr>{rows}</table>")
