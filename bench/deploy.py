"""Deploy speed: `up` and `down` of N nodes against the raw docker SDK (and docker-compose).

For each size, socklab (``Lab.load(file).up()`` / ``.down()``, one network, N nodes of the
node image) and the raw SDK baseline (``containers.run`` x N with 8 workers, then
``remove(force=True)`` x N with 8 workers) run alternating; docker-compose (``up -d`` /
``down -t 0`` of the same N services) is a second baseline up to ``--compose-max`` nodes.
A third, ``raw_node``, is the raw SDK running the node image's own command (the node
supervisor, as a socklab node) instead of ``sleep``: socklab against it is what socklab's
orchestration adds, the rest of the gap to ``raw`` is the node's own process starting.
The best of ``--rounds`` of each is kept; the ratios are the figures.

    .venv/bin/python bench/deploy.py [--sizes 30 200] [--rounds 2] [--big] [--json]

Goals (issue 14): up <= 1.10x raw SDK; down <= 1.10x raw SDK; ``--big`` adds 500 nodes
(it needs about 25 MiB of available memory a node), which must come up without error with a cost
per node close to that of the smaller sizes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from common import LABEL, RUN, RawSDK, free_subnet, keep_image, machine, node_image, rounds_of, row, timed

from socklab import Lab

BIG = 500
ROUND = itertools.count(1)
MIB_PER_NODE = 25  # measured here: about 13 MiB a node (supervisor, docker-init, containerd shim)


def socklab_lab(n: int, tmp: Path) -> Lab:
    """N nodes on one network: one replicated node (``replicas:`` goes to 200), more when N
    is larger (``node``, ``node2``...)."""
    lan: dict[str, Any] = {} if n <= 250 else {"subnet": str(free_subnet(n))}
    sizes = [min(200, n - i) for i in range(0, n, 200)]
    nodes = {f"node{i or ''}": {"replicas": k, "networks": ["lan"]} for i, k in enumerate(sizes)}
    path = tmp / f"socklab-{n}.yml"
    path.write_text(
        yaml.safe_dump({"name": f"{RUN}-socklab-{n}-{next(ROUND)}", "networks": {"lan": lan}, "nodes": nodes})
    )
    return Lab.load(path)


def compose_file(n: int, tag: str, tmp: Path) -> list[str]:
    services = {
        f"node-{i}": {
            "image": tag,
            "command": ["sleep", "infinity"],
            "init": True,
            "hostname": f"node-{i}",
            "networks": ["lan"],
            "labels": {LABEL: f"{RUN}-compose"},
        }
        for i in range(1, n + 1)
    }
    doc = {
        "version": "2.4",
        "services": services,
        "networks": {
            "lan": {
                "labels": {LABEL: f"{RUN}-compose"},
                "ipam": {"config": [{"subnet": str(free_subnet(n))}]},
            }
        },
    }
    path = tmp / f"compose-{n}.yml"
    path.write_text(yaml.safe_dump(doc))
    return ["docker-compose", "-p", f"{RUN}-compose", "-f", str(path)]


def measure_size(n: int, rounds: int, tag: str, tmp: Path, compose: bool) -> dict[str, Any]:
    raw = RawSDK(tag)
    raw_node = RawSDK(tag, "rawnode", command=[])  # the node image's CMD: the node supervisor

    def socklab_pair() -> tuple[float, float]:
        lab = socklab_lab(n, tmp)
        return timed(lab.up), timed(lab.down)

    def raw_pair() -> tuple[float, float]:
        return timed(lambda: raw.up(n)), timed(raw.down)

    def compose_pair() -> tuple[float, float]:
        base = compose_file(n, tag, tmp)

        def run(*args: str) -> None:
            subprocess.run([*base, *args], check=True, capture_output=True)

        return timed(lambda: run("up", "-d")), timed(lambda: run("down", "-t", "0"))

    def raw_node_pair() -> tuple[float, float]:
        return timed(lambda: raw_node.up(n)), timed(raw_node.down)

    variants = {"socklab": socklab_pair, "raw": raw_pair, "raw_node": raw_node_pair}
    if compose:
        variants["compose"] = compose_pair
    runs = rounds_of(variants, rounds)
    ups = {k: [u for u, _ in v] for k, v in runs.items()}
    downs = {k: [d for _, d in v] for k, v in runs.items()}
    extra: dict[str, Any] = {  # what socklab adds to containers that run the node supervisor
        "raw_node_s": round(min(ups["raw_node"]), 4),
        "ratio_raw_node": round(min(ups["socklab"]) / min(ups["raw_node"]), 3),
    }
    if compose:
        extra |= {
            "compose_s": round(min(ups["compose"]), 4),
            "ratio_compose": round(min(ups["socklab"]) / min(ups["compose"]), 3),
            "compose_down_s": round(min(downs["compose"]), 4),
        }
    return {
        f"up_{n}": row(
            f"up of {n} nodes vs raw SDK containers.run x {n}, 8 workers",
            ups["socklab"],
            ups["raw"],
            "<= 1.10x",
            lambda s, b: s <= 1.10 * b,
            per_node_s=round(min(ups["socklab"]) / n, 4),
            **extra,
        ),
        f"down_{n}": row(
            f"down of {n} nodes vs raw SDK removal, 8 workers",
            downs["socklab"],
            downs["raw"],
            "<= 1.10x",
            lambda s, b: s <= 1.10 * b,
            baseline_stuck_networks=raw.stuck,
        ),
    }


def memory_available_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) // 1024
    return 0


def measure(sizes: list[int], rounds: int, compose_max: int = 30, big: bool = False) -> dict[str, Any]:
    tag = node_image()
    rows: dict[str, Any] = {}
    if big:
        need = BIG * MIB_PER_NODE + 2048
        if memory_available_mib() < need:
            rows[f"up_{BIG}"] = {
                "what": f"up of {BIG} nodes",
                "skipped": f"needs {need} MiB of available memory, {memory_available_mib()} here",
            }
            big = False
    with keep_image(tag), tempfile.TemporaryDirectory() as tmpdir:
        for n in [*sizes, *([BIG] if big else [])]:
            print(f"  deploy: {n} nodes...", file=sys.stderr, flush=True)
            rows.update(measure_size(n, rounds if n < BIG else 1, tag, Path(tmpdir), n <= compose_max))
    if big and f"up_{BIG}" in rows:
        small = min(sizes)
        flat = rows[f"up_{BIG}"]["per_node_s"] / rows[f"up_{small}"]["per_node_s"]
        rows[f"up_{BIG}"]["per_node_vs_{small}"] = round(flat, 3)
    return rows


def render(rows: dict[str, Any]) -> str:
    lines = [f"{'row':<10} {'socklab':>9} {'baseline':>9} {'ratio':>7}  goal      met"]
    for key, r in rows.items():
        if "skipped" in r:
            lines.append(f"{key:<10} skipped: {r['skipped']}")
            continue
        lines.append(
            f"{key:<10} {r['socklab_s']:>8.2f}s {r['baseline_s']:>8.2f}s "
            f"{r['ratio']:>6.2f}x  {r['goal']:<9} {'yes' if r['met'] else 'NO'}"
        )
        if "compose_s" in r:
            lines.append(
                f"{'':<10} docker-compose up {r['compose_s']:.2f}s: socklab {r['ratio_compose']:.2f}x of it"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 200])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--compose-max", type=int, default=30, help="docker-compose as a second baseline up to this size"
    )
    parser.add_argument("--big", action="store_true", help=f"also {BIG} nodes (one round)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure(args.sizes, args.rounds, args.compose_max, args.big)
    print(json.dumps({"machine": machine(), "rows": rows}, indent=2) if args.json else render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
