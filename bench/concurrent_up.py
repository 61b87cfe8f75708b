"""N labs brought up at the same moment with allocated subnets, for R rounds: zero failures.

Each round starts N `socklab up` processes at once (each lab: two networks without
`subnet:`, two nodes), waits for all, checks that every one succeeded and that no two
labs share a subnet, then takes them down.

    .venv/bin/python bench/concurrent_up.py [--labs 8] [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from socklab import Lab
from socklab.orchestrator import image
from socklab.orchestrator.engine import default_engine


def one_round(tmp: Path, index: int, labs: int) -> dict[str, object]:
    paths = []
    for i in range(labs):
        path = tmp / f"r{index}-{i}.yml"
        path.write_text(
            yaml.safe_dump(
                {
                    "name": f"b{os.getpid()}-par-{index}-{i}",
                    "networks": {"lan": {}, "wan": {}},
                    "nodes": {"a": {"networks": ["lan", "wan"]}, "b": {"networks": ["wan"]}},
                }
            )
        )
        paths.append(path)
    t0 = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "socklab.cli", "up", str(p)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in paths
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    seconds = time.monotonic() - t0
    failures = [err.strip().splitlines()[:2] for p, (_, err) in zip(procs, outs, strict=True) if p.returncode]
    per_lab = [
        {addr.rsplit(".", 1)[0] for node in Lab.load(p).status() for addr in node.networks.values()}
        for p in paths
    ]
    for path in paths:
        Lab.load(path).down()
    distinct = len(set().union(*per_lab)) == sum(len(s) for s in per_lab)
    return {"round": index, "seconds": round(seconds, 1), "failures": failures, "distinct": distinct}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    image.ensure(default_engine())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            res = one_round(Path(tmp), r, args.labs)
            results.append(res)
            print(json.dumps(res), flush=True)
    failed = sum(len(r["failures"]) for r in results)  # type: ignore[arg-type]
    print(
        json.dumps(
            {
                "labs": args.labs,
                "rounds": args.rounds,
                "ups": args.labs * args.rounds,
                "failed_ups": failed,
                "rounds_with_shared_subnets": sum(not r["distinct"] for r in results),
            }
        )
    )
    return 1 if failed or not all(r["distinct"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
