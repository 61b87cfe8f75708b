"""A conversation drawn as a sequence diagram: an inline SVG, no script.

The client's lifeline is on the left, the server's on the right, time flows down, one
row per event (its time since the run's first event on the left). An arrow goes from an
event to the one it caused at the other end: ``connected`` to ``accepted`` (the TCP
handshake), each ``sent`` to the other end's next ``received``, the first ``closed`` to
the other end's (FIN or RST); a refused connection is a SYN answered by RST.
"""

from __future__ import annotations

from html import escape
from typing import Any

from socklab.scenario.conversations import FAILURES, Conversation, End

WIDTH = 470
TIME_X = 62  # right edge of the time column
CLIENT_X, SERVER_X = 160, 372
BOX = 196  # header box width
HEAD = 56  # header boxes: node, app, address
ROW = 24
MAX_ROWS = 24  # longer conversations show their first and last events
FIRST, LAST = 14, 8
ARROW_GAP = 5  # arrows stop short of the lifeline's dot


def sequence_svg(conv: Conversation, t0: float) -> str:
    """The SVG of one conversation; ``t0`` is the run's first event time."""
    events = conv.events
    shown = list(range(len(events)))
    if len(events) > MAX_ROWS:
        shown = [*shown[:FIRST], -1, *shown[-LAST:]]  # -1: the gap
    row_of = {i: r for r, i in enumerate(shown) if i >= 0}
    failed = _failure(conv)
    height = HEAD + 20 + ROW * (len(shown) + (2 if failed else 0))
    out = [
        f'<svg class="seq" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        'xmlns="http://www.w3.org/2000/svg" role="img">',
        _lifeline(CLIENT_X, conv.client, "client", height),
        _lifeline(SERVER_X, conv.server, "server", height),
    ]
    for r, i in enumerate(shown):
        y = _y(r)
        if i < 0:
            more = len(events) - FIRST - LAST
            out.append(
                f'<text class="gap" x="{(CLIENT_X + SERVER_X) // 2}" y="{y + 4}" '
                f'text-anchor="middle">⋮ {more} more events (all in report.json)</text>'
            )
            continue
        side, e = events[i]
        x = CLIENT_X if side == "client" else SERVER_X
        out.append(
            f'<text class="t" x="{TIME_X}" y="{y + 4}" text-anchor="end">'
            f"+{e['ts'] - t0:.3f} s</text>"
            f'<circle cx="{x}" cy="{y}" r="3" class="{side}"/>'
        )
        label_x, anchor = (x - 8, "end") if side == "client" else (x + 8, "start")
        out.append(
            f'<text class="ev" x="{label_x}" y="{y + 4}" text-anchor="{anchor}">{escape(_label(e))}</text>'
        )
    for a, b, text, kind in _arrows(conv):
        if a in row_of and b in row_of:
            out.append(_arrow(events[a][0], _y(row_of[a]), _y(row_of[b]), text, kind))
    if failed:  # the attempt itself: refused (SYN answered by RST), or no answer at all
        y = _y(len(shown) - 1)
        if failed == "ECONNREFUSED":
            out.append(_arrow("client", y, y + ROW, "SYN", "data"))
            out.append(_arrow("server", y + ROW, y + 2 * ROW, "RST: ECONNREFUSED", "fail"))
        else:
            out.append(_arrow("client", y, y + ROW, f"SYN ✗ {failed}", "fail", to=(CLIENT_X + SERVER_X) / 2))
    out.append("</svg>")
    return "".join(out)


def _y(row: int) -> float:
    return HEAD + 22 + ROW * row


def _lifeline(x: int, end: End, role: str, height: int) -> str:
    lines = [
        (end.node or f"({role} outside the lab)", "who", 24),
        (end.app or "", "app", 28),
        (end.address or "(never connected)", "addr", 28),
    ]
    texts = "".join(
        f'<text x="{x}" y="{18 + 15 * i}" text-anchor="middle" class="{cls}">'
        f"{escape(_fit(text, chars))}</text>"
        for i, (text, cls, chars) in enumerate(lines)
        if text
    )
    return (
        f'<line x1="{x}" y1="{HEAD}" x2="{x}" y2="{height - 4}" class="life"/>'
        f'<rect x="{x - BOX // 2}" y="3" width="{BOX}" height="{HEAD - 8}" rx="5" '
        f'class="head"/>{texts}'
    )


def _fit(text: str, chars: int) -> str:
    """At most ``chars`` characters (the header box's width), the rest cut with an ellipsis."""
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _label(e: dict[str, Any]) -> str:
    fields, kind = e.get("fields") or {}, e["event"]
    if kind in FAILURES:
        return "failed"
    if kind in ("sent", "received") and "bytes" in fields:
        return f"{kind} {fields['bytes']} B"
    if kind == "closed":
        return f"closed {fields.get('how') or fields.get('reason') or ''}".strip()
    return str(kind)


def _arrows(conv: Conversation) -> list[tuple[int, int, str, str]]:
    """(from event, to event, label, kind) for each event that caused one at the other end."""
    out: list[tuple[int, int, str, str]] = []
    pending: dict[str, list[int]] = {"client": [], "server": []}
    opened: int | None = None
    closing: tuple[int, str] | None = None
    for i, (side, e) in enumerate(conv.events):
        kind, fields = e["event"], e.get("fields") or {}
        other = "server" if side == "client" else "client"
        if kind == "connected" and side == "client" and conv.proto == "tcp":
            opened = i
        elif kind == "accepted" and opened is not None:
            out.append((opened, i, "SYN · SYN-ACK · ACK", "open"))
        elif kind == "sent":
            pending[side].append(i)
        elif kind == "received" and pending[other]:
            j = pending[other].pop(0)
            data = (conv.events[j][1].get("fields") or {}).get("data") or fields.get("data")
            out.append((j, i, repr(data) if data else f"{fields.get('bytes', '?')} B", "data"))
        elif kind in ("closed", "eof"):
            if closing is None:
                how = str(fields.get("how") or "")
                closing = (i, "RST" if "RST" in how else "FIN")
            elif conv.events[closing[0]][0] == other:
                out.append((closing[0], i, closing[1], "close"))
    return out


def _arrow(side: str, y1: float, y2: float, text: str, kind: str, to: float | None = None) -> str:
    x1, x2 = (CLIENT_X, SERVER_X) if side == "client" else (SERVER_X, CLIENT_X)
    if to is not None:
        x2 = round(to)
    step = ARROW_GAP if x2 > x1 else -ARROW_GAP
    mid_x, mid_y = (x1 + x2) / 2, (y1 + y2) / 2
    return (
        f'<line x1="{x1 + step}" y1="{y1:.1f}" x2="{x2 - step}" y2="{y2:.1f}" '
        f'class="msg {kind}" marker-end="url(#seq-arrow-{kind})"/>'
        f'<text x="{mid_x:.0f}" y="{mid_y - 4:.1f}" text-anchor="middle" class="msg-label '
        f'{kind}">{escape(text)}</text>'
    )


def _failure(conv: Conversation) -> str | None:
    """The errno of an attempt that never reached a server app (refused, timed out...)."""
    if any(s == "server" for s, _ in conv.events) or not any(e["event"] in FAILURES for _, e in conv.events):
        return None
    return conv.outcome


#: Arrow heads, defined once per page (before the diagrams).
MARKERS = (
    '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
    + "".join(
        f'<marker id="seq-arrow-{kind}" viewBox="0 0 10 10" refX="10" refY="5" '
        f'markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" '
        f'fill="{color}"/></marker>'
        for kind, color in (("open", "#1565c0"), ("data", "#444"), ("close", "#6a1b9a"), ("fail", "#c62828"))
    )
    + "</defs></svg>"
)

STYLE = """
svg.seq{display:block;max-width:100%;height:auto;margin:.3em 0 1em}
svg.seq text{font:11px system-ui,sans-serif}svg.seq .who{font-weight:600;font-size:12px}
svg.seq .addr,svg.seq .t{font-family:ui-monospace,monospace;fill:#555}svg.seq .app{fill:#333}
svg.seq .t{font-size:10px}
svg.seq .head{fill:#e3f2fd;stroke:#1565c0}svg.seq .life{stroke:#90a4ae;stroke-dasharray:4 3}
svg.seq circle.client,svg.seq circle.server{fill:#1565c0}svg.seq .gap{fill:#777}
svg.seq .msg{stroke:#444;stroke-width:1.3}svg.seq .msg.open{stroke:#1565c0}
svg.seq .msg.close{stroke:#6a1b9a}svg.seq .msg.fail{stroke:#c62828}
svg.seq .msg-label{fill:#333;paint-order:stroke;stroke:#fff;stroke-width:3px;
stroke-linejoin:round}svg.seq .msg-label.fail{fill:#c62828}
"""
