"""What a published port costs at `up`: N nodes on a network where one node publishes a
port (every node there loses the default route Docker gives it, before its start commands
run) against the same N nodes on an internal network (nothing to set up).

Three variants alternate, best of ``--rounds``: internal; published, set up from this host
(root, local daemon: the routes go through netlink in each node's namespace); published,
set up by one helper container per node (``SOCKLAB_NETSETUP=helper``, the path of a user
who is not root or of a remote daemon).

    .venv/bin/python bench/netsetup.py [--nodes 30] [--rounds 1] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from common import RUN, keep_image, machine, node_image, rounds_of, row, timed

from socklab import Lab
from socklab.orchestrator import hostnet

ROUND = itertools.count(1)


def up_down(tmp: Path, nodes: int, published: bool, helper: bool = False) -> float:
    spec: dict[str, Any] = {
        "node": {"replicas": nodes - 1, "networks": ["lan"]},
        "web": {"networks": ["lan"]},
    }
    if published:
        spec["web"]["ports"] = [80]
    name = f"{RUN}-net-{next(ROUND)}"
    path = tmp / f"{name}.yml"
    path.write_text(yaml.safe_dump({"name": name, "networks": {"lan": {}}, "nodes": spec}))
    lab = Lab.load(path)
    if helper:
        os.environ[hostnet.SETTING] = "helper"
    try:
        took = timed(lab.up)
    finally:
        os.environ.pop(hostnet.SETTING, None)
        lab.down()
    return took


def measure(nodes: int, rounds: int) -> dict[str, Any]:
    tag = node_image()
    with keep_image(tag), tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        print(f"  netsetup: {nodes} nodes...", file=sys.stderr, flush=True)
        runs = rounds_of(
            {
                "internal": lambda: up_down(tmp, nodes, False),
                "host": lambda: up_down(tmp, nodes, True),
                "helper": lambda: up_down(tmp, nodes, True, helper=True),
            },
            rounds,
        )
    what = f"up of {nodes} nodes on a network with a published port vs the same lab internal"
    out = {
        f"netsetup_{nodes}_helper": row(
            what + ", a helper container per node",
            runs["helper"],
            runs["internal"],
            "(measured)",
            lambda s, b: True,
        )
    }
    if os.geteuid() == 0:
        out[f"netsetup_{nodes}"] = row(
            what + ", set up from this host (root)",
            runs["host"],
            runs["internal"],
            "(measured)",
            lambda s, b: True,
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure(args.nodes, args.rounds)
    if args.json:
        print(json.dumps({"machine": machine(), "rows": rows}, indent=2))
        return 0
    for key, r in rows.items():
        print(f"{key:<20} {r['socklab_s']:6.2f}s vs internal {r['baseline_s']:6.2f}s: {r['ratio']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
