"""CLI start: `socklab --help` and `socklab validate FILE` against `python3 -c pass`.

Each command runs as its own process (the installed ``socklab`` script, with the same
Python), alternating with the baseline; the best of ``--rounds`` of each, as wall time and
as CPU time. ``python -X importtime`` of each command lists the heavy libraries it
imported: neither may import docker, requests or rich.progress.

    .venv/bin/python bench/cli_start.py [--rounds 10] [--json]

Goal (issue 14): each command <= 0.15 s over `python3 -c pass`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import ROOT, machine, rounds_of, row

SOCKLAB = str(Path(sys.executable).with_name("socklab"))
LAB_FILE = str(ROOT / "src" / "socklab" / "labs" / "echo.yml")
COMMANDS = {"cli_help": ["--help"], "cli_validate": ["validate", LAB_FILE]}
#: What each command cannot start without, imported by a bare Python: the CLI framework,
#: and for validate the topology's model library and YAML parser.
FLOORS = {
    "cli_help": "import typer",
    "cli_validate": "import typer, yaml; from pydantic import BaseModel",
}
HEAVY = (
    "docker",
    "requests",
    "urllib3",
    "rich.progress",
    "rich.table",
    "pydantic",
    "yaml",
    "socklab.lab",
    "socklab.orchestrator.engine",
    "socklab.scenario.run",
)
MUST_NOT = ("docker", "requests", "rich.progress")


def run(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one process."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = os.times()
    return wall, (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


def imported(args: list[str]) -> list[str]:
    """The heavy modules a command imports (``-X importtime`` lists every import)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", SOCKLAB, *args], capture_output=True, text=True, check=False
    )
    names = {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return [m for m in HEAVY if m in names]


def measure(rounds: int) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for key, args in COMMANDS.items():
        runs = rounds_of(
            {
                "socklab": lambda a=args: run([SOCKLAB, *a]),  # type: ignore[misc]
                "python": lambda: run([sys.executable, "-c", "pass"]),
                "floor": lambda k=key: run([sys.executable, "-c", FLOORS[k]]),  # type: ignore[misc]
            },
            rounds,
        )
        heavy = imported(args)
        wall = {k: [w for w, _ in v] for k, v in runs.items()}
        cpu = {k: [c for _, c in v] for k, v in runs.items()}
        rows[key] = row(
            f"socklab {' '.join(args).replace(LAB_FILE, 'labs/echo.yml')} vs python3 -c pass",
            wall["socklab"],
            wall["python"],
            "<= +0.15 s",
            lambda s, b: s - b <= 0.15,
            cpu_socklab_s=round(min(cpu["socklab"]), 4),
            cpu_baseline_s=round(min(cpu["python"]), 4),
            libraries_s=round(min(wall["floor"]), 4),
            libraries=FLOORS[key],
            heavy_imports=heavy,
            forbidden_imports=[m for m in heavy if m in MUST_NOT],
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure(args.rounds)
    if args.json:
        print(json.dumps({"machine": machine(), "rows": rows}, indent=2))
        return 0
    for key, r in rows.items():
        print(
            f"{key:<13} {r['socklab_s']:.3f}s vs {r['baseline_s']:.3f}s: +{r['over_s']:.3f}s "
            f"(cpu +{r['cpu_socklab_s'] - r['cpu_baseline_s']:.3f}s) goal {r['goal']}: "
            f"{'met' if r['met'] else 'NOT met'}; `python3 -c '{r['libraries']}'` alone "
            f"{r['libraries_s']:.3f}s; imports {', '.join(r['heavy_imports']) or '-'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
