"""Every bench of issue 14 in one run (`make bench`): one JSON file with every figure.

Rows: up and down of 30 and 200 nodes (``--big``: 500 too) against the raw docker SDK and
docker-compose, a 1-node lab, CLI start, the socket snapshot of 40 nodes (from the host and
through exec), the default lab end to end, and what a published port costs at ``up``.
Each row is socklab against its baseline, side by side in this process, alternating, best
of N. The table printed at the end is the one of the README's performance section.

    .venv/bin/python bench/run_all.py [--out runs/bench.json] [--big] [--only deploy cli ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cli_start
import deploy
import netsetup
import one_node
import run_overhead
import sockets
from common import ROOT, cleanup, machine

BENCHES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "cli": lambda a: cli_start.measure(10),
    "one": lambda a: one_node.measure(5),
    "deploy": lambda a: deploy.measure([30, 200], 2, compose_max=30, big=a.big),
    "sockets": lambda a: sockets.measure(40, 7),
    "run": lambda a: run_overhead.measure(2),
    "netsetup": lambda a: netsetup.measure(30, 1),
}


def table(rows: dict[str, Any]) -> str:
    lines = ["| row | socklab | baseline | ratio | goal | met |", "|---|---|---|---|---|---|"]
    for key, r in rows.items():
        if "skipped" in r:
            lines.append(f"| {key} | skipped: {r['skipped']} | | | | |")
        elif key == "run_default":
            lines.append(
                f"| {key} | {r['total_s']:.2f} s total | {r['steps_s']:.2f} s of steps "
                f"| overhead {r['overhead_pct']:.0f} % | {r['goal']} | "
                f"{'yes' if r['met'] else 'no'} |"
            )
        else:
            node = f"; {r['ratio_raw_node']:.2f}x raw with the supervisor" if "ratio_raw_node" in r else ""
            lines.append(
                f"| {key} | {r['socklab_s']:.3f} s | {r['baseline_s']:.3f} s | "
                f"{r['ratio']:.2f}x (+{r['over_s']:.3f} s){node} | {r['goal']} | "
                f"{'yes' if r['met'] else 'no'} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench.json")
    parser.add_argument("--big", action="store_true", help="also up/down of 500 nodes")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHES), default=list(BENCHES))
    args = parser.parse_args()
    started = time.time()
    result: dict[str, Any] = {
        "machine": machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rows": {},
    }
    try:
        for name in args.only:
            print(f"{name}...", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            result["rows"].update(BENCHES[name](args))
            result.setdefault("seconds", {})[name] = round(time.monotonic() - t0, 1)
    finally:
        cleanup()
        result["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
        result["total_seconds"] = round(time.time() - started, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result["rows"]))
    print(f"\n{args.out} ({result['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
