"""examples/pytest run as a user runs it: plain pytest, and two pytest-xdist workers, with
the plugin found through its entry point; nothing is left behind either way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from socklab.orchestrator.engine_api import Engine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pytest"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_examples_pass(workers: list[str], engine: Engine, node_image: str, tmp_path: Path) -> None:
    before = {c.id for c in engine.containers({"io.socklab.run": ""})}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            *workers,
            f"--junitxml={tmp_path / 'junit.xml'}",
            str(EXAMPLES),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
    left = {c.name for c in engine.containers({"io.socklab.run": ""}) if c.id not in before}
    # the examples' labs are all named `shop` (and get the run id): other pytest sessions on
    # this daemon (the plugin's own tests, run alongside by xdist) have labs of other names
    assert {name for name in left if name.startswith("socklab-shop-")} == set()
