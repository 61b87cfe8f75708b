"""The report page in Debian's headless chromium: screenshots, and the page's geometry
measured by a probe script added to a copy of the page (the report itself has none).

Headless chromium lays a window out at least 500 px wide, so the page is shown in an
iframe exactly as wide as the screen to test (a phone's 390 px): its layout viewport,
media queries included, is the iframe's width.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

#: Measures what must hold at any width and writes it, as JSON, into the framing page.
PROBE = r"""<script>
(() => {
  for (const d of document.querySelectorAll("details")) d.open = true;  // measure everything
  const out = {width: innerWidth, scroll: document.documentElement.scrollWidth,
               wrapped: [], outside: [], times: 0};
  // a time ("+1.234 s", "1.67 s"), a number, an address or a status: one line each
  const time = /^\+?\d+\.\d+\s+s$/;
  for (const el of document.querySelectorAll("td, .badge")) {
    const isTime = time.test(el.textContent.trim());
    if (!isTime && !el.matches("td.num, td.addr, td.status, .badge")) continue;
    const range = document.createRange();
    range.selectNodeContents(el);
    const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
    if (tops.size > 1) out.wrapped.push(el.textContent);
    if (isTime) out.times += 1;
  }
  for (const svg of document.querySelectorAll("svg[viewBox]")) {
    const box = svg.viewBox.baseVal;
    for (const t of svg.querySelectorAll("text")) {
      const b = t.getBBox();
      if (b.x < box.x - 1 || b.y < box.y - 1 || b.x + b.width > box.x + box.width + 1 ||
          b.y + b.height > box.y + box.height + 1) out.outside.push(t.textContent);
    }
  }
  // labels of a diagram (not the ones along its arrows) never cover one another
  out.overlaps = [];
  for (const svg of document.querySelectorAll("svg")) {
    const boxes = [...svg.querySelectorAll("text:not(.msg-label):not(.port)")].map(
      t => [t.textContent, t.getBoundingClientRect()]);
    boxes.forEach(([a, p], i) => boxes.slice(i + 1).forEach(([b, q]) => {
      if (p.left < q.right - 1 && q.left < p.right - 1 && p.top < q.bottom - 1 &&
          q.top < p.bottom - 1) out.overlaps.push(a + " / " + b);
    }));
  }
  // a box's text stays in its box (the sequence diagrams' headers, the topology's nodes)
  out.spill = [];
  for (const svg of document.querySelectorAll("svg")) {
    const rects = [...svg.querySelectorAll("rect")].map(r => r.getBoundingClientRect());
    for (const t of svg.querySelectorAll("text")) {
      const b = t.getBoundingClientRect();
      const home = rects.find(r => r.top <= b.top + b.height / 2 && b.top + b.height / 2 <= r.bottom
                                   && r.left <= b.left + b.width / 2 && b.left + b.width / 2 <= r.right);
      if (home && (b.left < home.left - 0.5 || b.right > home.right + 0.5)) out.spill.push(t.textContent);
    }
  }
  parent.document.getElementById("probe").textContent = JSON.stringify(out);
})();
</script>"""

FRAME = """<!DOCTYPE html><html><body style="margin:0"><pre id="probe"></pre>
<iframe src="{src}" style="width:{width}px;height:{height}px;border:0;display:block"></iframe>
</body></html>"""


def chromium() -> list[str]:
    found = shutil.which("chromium")
    assert found, "chromium is needed to check the HTML report (`make test-deps` installs it)"
    return [
        found,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        "--allow-file-access-from-files",
    ]


def _framed(page: Path, width: int, work: Path, probe: bool) -> Path:
    shown = work / f"{page.stem}-{width}{'-probed' if probe else ''}.html"
    text = page.read_text()
    shown.write_text(text.replace("</body>", PROBE + "</body>") if probe else text)
    frame = work / f"frame-{shown.name}"
    frame.write_text(FRAME.format(src=shown.name, width=width, height=2400))
    return frame


def measure(page: Path, width: int, work: Path) -> dict[str, Any]:
    """The probe's findings for ``page`` on a screen ``width`` CSS pixels wide."""
    frame = _framed(page, width, work, probe=True)
    dom = subprocess.run(
        [
            *chromium(),
            f"--user-data-dir={work / 'profile'}",
            f"--window-size={width + 20},1000",
            "--dump-dom",
            frame.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    start = dom.index('<pre id="probe">') + len('<pre id="probe">')
    return dict(json.loads(html.unescape(dom[start : dom.index("</pre>", start)])))


def screenshot(page: Path, width: int, out: Path, work: Path) -> Path:
    """A PNG of the page's top on a screen ``width`` CSS pixels wide."""
    frame = _framed(page, width, work, probe=False)
    subprocess.run(
        [
            *chromium(),
            f"--user-data-dir={work / 'profile'}",
            f"--window-size={width},2400",
            f"--screenshot={out}",
            frame.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return out
