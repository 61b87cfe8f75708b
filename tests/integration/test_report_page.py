"""The report page in a real browser (Debian's headless chromium) at a desktop and a phone
width: nothing makes the page wider than the window, no time, address or status wraps,
no diagram's text leaves its diagram. (No Docker needed: the run is a sample.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from socklab.scenario import html
from tests.report_sample import sample_run

from .browser import measure, screenshot


@pytest.mark.parametrize("width", [1400, 390])
def test_report_page_fits_and_never_wraps_a_time(width: int, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(html.render(sample_run()))
    found = measure(page, width, tmp_path)
    assert found["width"] == width  # the window is really that wide
    assert found["scroll"] <= width, "the page is wider than the window"
    assert found["wrapped"] == []
    assert found["times"] >= 6  # step times and timeline times were measured
    assert found["outside"] == []
    assert found["overlaps"] == []
    assert found["spill"] == []
    assert screenshot(page, width, tmp_path / f"report-{width}.png", tmp_path).stat().st_size > 10_000
