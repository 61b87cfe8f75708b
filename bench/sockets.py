"""Socket snapshot speed: `Lab.sockets()` of every node against N parallel `docker exec true`.

Both run side by side in one process against the same N-node lab (each node running a
TCP server with a few clients connected), alternating, so the machine's speed cancels
out in the ratio.

    .venv/bin/python bench/sockets.py [--nodes 40] [--rounds 7]

Goal (issue 5): one snapshot of all nodes <= 3x the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from socklab import Lab

HOLD = ("import socket, time; s = [socket.create_connection(('node-1', 5000)) for _ in range(3)];"
        " time.sleep(3600)")


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench-sockets.yml"
        path.write_text(yaml.safe_dump({
            "name": "bench-sockets", "networks": {"lan": {}},
            "nodes": {"node": {"replicas": args.nodes, "networks": ["lan"],
                               "start": ["tcp-server --port 5000 --mode threaded"]}},
        }))
        lab = Lab.load(path)
        print(f"bringing up {args.nodes} nodes...", flush=True)
        lab.up()
        try:
            run(lab, args.rounds)
        finally:
            lab.down()


def run(lab: Lab, rounds: int) -> None:
    nodes = lab.nodes()
    for node in nodes[1:6]:  # some ESTABLISHED sockets to read
        node.exec(["socklab-start", "python3", "-c", HOLD])
    engine = lab.engine

    def baseline() -> None:
        with ThreadPoolExecutor(len(nodes)) as pool:
            list(pool.map(lambda n: engine.exec(n.container, ["true"]), nodes))

    rows = lab.sockets()  # warm: the first exec of a node loads its page cache
    baseline()
    snap, base = [], []
    for _ in range(rounds):
        base.append(timed(baseline))
        snap.append(timed(lab.sockets))
    s, b = statistics.median(snap), statistics.median(base)
    print(f"{len(nodes)} nodes, {len(rows)} sockets per snapshot; median of {rounds} rounds")
    print(f"{'snapshot (Lab.sockets)':<28} {s * 1000:>8.0f} ms")
    print(f"{'baseline (docker exec true)':<28} {b * 1000:>8.0f} ms")
    print(f"{'ratio':<28} {s / b:>8.2f}x   (goal <= 3x)")


if __name__ == "__main__":
    main()
