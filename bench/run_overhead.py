"""Orchestration overhead of `socklab run` on the shipped default lab.

The run's wall time is compared with the sum of its steps' own durations (the part
the scenario asks for); the rest is deploy, collection, reports and teardown.

    .venv/bin/python bench/run_overhead.py [--rounds 3]

Goals (issue 6): overhead < 25 % of the total; total <= 15 s with a warm image.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from socklab import Lab
from socklab.catalog import DEFAULT_LAB, LABS_DIR
from socklab.orchestrator import image
from socklab.orchestrator.engine import default_engine
from socklab.scenario import run
from socklab.scenario.results import StepResult


def one_round(folder: Path) -> dict[str, float]:
    marks: dict[str, float] = {}
    lab = Lab.load(LABS_DIR / f"{DEFAULT_LAB}.yml")
    t0 = time.perf_counter()

    def step_started(index: str, title: str) -> None:
        marks.setdefault("deployed", time.perf_counter())

    def step_done(step: StepResult) -> None:
        marks["steps_done"] = time.perf_counter()

    result = run.run(lab, run_dir=folder, on_step_start=step_started, on_step=step_done)
    total = time.perf_counter() - t0
    if not result.passed:
        raise SystemExit(f"the default lab failed: see {folder}/report.html")
    steps = sum(s.duration for s in result.steps)
    return {"total": total, "steps": steps, "deploy": marks["deployed"] - t0,
            "after": t0 + total - marks["steps_done"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    image.ensure(default_engine())
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            rounds.append(one_round(Path(tmp) / str(i)))
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    overhead = med["total"] - med["steps"]
    print(f"default lab '{DEFAULT_LAB}', median of {args.rounds} runs (warm image)")
    print(f"  total            {med['total']:6.2f} s   (goal <= 15 s)")
    print(f"  steps' own time  {med['steps']:6.2f} s")
    print(f"  overhead         {overhead:6.2f} s = {100 * overhead / med['total']:.1f} % "
          f"(goal < 25 %)")
    print(f"    deploy         {med['deploy']:6.2f} s")
    print(f"    collect+report+teardown {med['after']:6.2f} s")


if __name__ == "__main__":
    main()
