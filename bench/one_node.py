"""A 1-node lab: `up` and `down` against one raw docker-SDK ``containers.run`` and removal.

socklab's ``Lab.load(file).up()`` / ``.down()`` of a lab with one node on one network, and
the raw SDK making a network, running one container of the node image in it, then removing
both, alternating; the best of ``--rounds`` of each.

    .venv/bin/python bench/one_node.py [--rounds 5] [--json]

Goals (issue 14): up <= 1.5x raw; down within 0.15 s of raw.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from common import RUN, RawSDK, keep_image, machine, node_image, rounds_of, row, timed

from socklab import Lab


def measure(rounds: int) -> dict[str, Any]:
    tag = node_image()
    raw = RawSDK(tag, "one")
    with keep_image(tag), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one.yml"
        path.write_text(
            yaml.safe_dump(
                {"name": f"{RUN}-one", "networks": {"lan": {}}, "nodes": {"node": {"networks": ["lan"]}}}
            )
        )

        def socklab_pair() -> tuple[float, float]:
            lab = Lab.load(path)
            return timed(lab.up), timed(lab.down)

        def raw_pair() -> tuple[float, float]:
            return timed(lambda: raw.up(1)), timed(raw.down)

        runs = rounds_of({"socklab": socklab_pair, "raw": raw_pair}, rounds)
    ups = {k: [u for u, _ in v] for k, v in runs.items()}
    downs = {k: [d for _, d in v] for k, v in runs.items()}
    return {
        "up_1": row(
            "up of a 1-node lab vs raw SDK network + containers.run",
            ups["socklab"],
            ups["raw"],
            "<= 1.5x",
            lambda s, b: s <= 1.5 * b,
        ),
        "down_1": row(
            "down of a 1-node lab vs raw SDK removal",
            downs["socklab"],
            downs["raw"],
            "<= raw + 0.15 s",
            lambda s, b: s <= b + 0.15,
            baseline_stuck_networks=raw.stuck,
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure(args.rounds)
    if args.json:
        print(json.dumps({"machine": machine(), "rows": rows}, indent=2))
        return 0
    for key, r in rows.items():
        print(
            f"{key:<7} socklab {r['socklab_s']:.3f}s  raw {r['baseline_s']:.3f}s  "
            f"{r['ratio']:.2f}x  (+{r['over_s']:.3f}s)  goal {r['goal']}: "
            f"{'met' if r['met'] else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
