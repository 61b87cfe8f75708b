"""Socket snapshot speed: `Lab.sockets()` of N nodes against N parallel `docker exec true`.

On one N-node lab (each node running a TCP server, a few nodes holding connections), the
snapshot and the baseline run alternating, the best of ``--rounds`` of each: the snapshot as
it runs by default (read from this host's /proc when socklab is root and the daemon is
local) and forced through ``docker exec`` (``SOCKLAB_SNAPSHOT=exec``, the path of a remote
daemon or a user who is not root).

    .venv/bin/python bench/sockets.py [--nodes 40] [--rounds 7] [--json]

Goals (issue 14): <= 0.5x the baseline from the host (root, local daemon); <= 1.2x through
exec.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from common import RUN, keep_image, machine, node_image, rounds_of, row, timed

from socklab import Lab
from socklab.observe import host_sockets

HOLD = (
    "import socket, time; s = [socket.create_connection(('node-1', 5000)) for _ in range(3)];"
    " time.sleep(3600)"
)


def measure(nodes: int, rounds: int) -> dict[str, Any]:
    tag = node_image()
    with keep_image(tag), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sockets.yml"
        path.write_text(
            yaml.safe_dump(
                {
                    "name": f"{RUN}-sockets",
                    "networks": {"lan": {}},
                    "nodes": {
                        "node": {
                            "replicas": nodes,
                            "networks": ["lan"],
                            "start": ["tcp-server --port 5000 --mode threaded"],
                        }
                    },
                }
            )
        )
        print(f"  sockets: bringing up {nodes} nodes...", file=sys.stderr, flush=True)
        with Lab.load(path) as lab:
            return _measure(lab, rounds)


def _measure(lab: Lab, rounds: int) -> dict[str, Any]:
    nodes = lab.nodes()
    for node in nodes[1:6]:  # some ESTABLISHED sockets to read
        node.exec(["socklab-start", "python3", "-c", HOLD])
    engine = lab.engine
    host = host_sockets.host_reading(
        os.environ.get(host_sockets.SETTING), os.geteuid(), engine.on_this_host()
    )

    def baseline() -> float:
        def one(n: Any) -> None:
            engine.exec(n.container, ["true"])

        with ThreadPoolExecutor(len(nodes)) as pool:
            return timed(lambda: list(pool.map(one, nodes)))

    def through_exec() -> float:
        os.environ[host_sockets.SETTING] = "exec"
        try:
            return timed(lab.sockets)
        finally:
            os.environ.pop(host_sockets.SETTING)

    rows = lab.sockets()  # warm: the first exec of a node loads its page cache
    baseline()
    runs = rounds_of(
        {"snapshot": lambda: timed(lab.sockets), "exec": through_exec, "baseline": baseline}, rounds
    )
    n = len(nodes)
    what = f"snapshot of {n} nodes (Lab.sockets) vs {n} parallel docker exec true"
    out = {
        f"snapshot_{n}_exec": row(
            what + ", through docker exec",
            runs["exec"],
            runs["baseline"],
            "<= 1.2x",
            lambda s, b: s <= 1.2 * b,
            sockets=len(rows),
        ),
    }
    if host:
        out[f"snapshot_{n}"] = row(
            what + ", from this host's /proc (root, local daemon)",
            runs["snapshot"],
            runs["baseline"],
            "<= 0.5x",
            lambda s, b: s <= 0.5 * b,
            sockets=len(rows),
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure(args.nodes, args.rounds)
    if args.json:
        print(json.dumps({"machine": machine(), "rows": rows}, indent=2))
        return 0
    for key, r in rows.items():
        print(
            f"{key:<18} {r['socklab_s'] * 1000:6.0f} ms vs {r['baseline_s'] * 1000:6.0f} ms: "
            f"{r['ratio']:.2f}x  goal {r['goal']}: {'met' if r['met'] else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
