"""Cycles of `socklab up` / signal during the up / `socklab down` on a 20-node lab: nothing
may be left, and no network may be stuck with a stale endpoint (moby#42119).

Each cycle brings a lab with a fresh name up with the real CLI, sends the signal at a
random moment once its first container exists (SIGTERM: ``up`` rolls back itself and
must exit 143; SIGKILL: nothing runs, the starts in flight go on in the daemon), then
runs ``socklab down --lab NAME`` and checks that no container or network of the lab is
left. A stuck network is reported and left (only a daemon restart clears it).

    .venv/bin/python bench/interrupt_cycles.py [--cycles 30] [--nodes 20] [--signal TERM|KILL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from socklab.orchestrator import image
from socklab.orchestrator.engine import default_engine

LABEL = "io.socklab.lab"


def cycle(tmp: Path, index: int, nodes: int, sig: signal.Signals, delay: float) -> dict[str, object]:
    engine = default_engine()
    name = f"b{os.getpid()}-intr-{index}"
    path = tmp / f"{name}.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "networks": {"lan": {}, "wan": {}},
                "nodes": {
                    "server": {"networks": ["lan", "wan"], "start": ["tcp-server --port 5000"]},
                    "c": {"replicas": nodes - 1, "networks": ["lan", "wan"]},
                },
            }
        )
    )
    cli = [sys.executable, "-m", "socklab.cli"]
    proc = subprocess.Popen([*cli, "up", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while not engine.containers({LABEL: name}) and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(delay)
    made = len(engine.containers({LABEL: name}))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    t0 = time.monotonic()
    down = subprocess.run([*cli, "down", "--lab", name], capture_output=True, text=True, timeout=300)
    left = [c["Names"][0] for c in engine.containers({LABEL: name})] + [
        n["Name"] for n in engine.networks({LABEL: name})
    ]
    return {
        "cycle": index,
        "signal_after_s": round(delay, 2),
        "containers_at_signal": made,
        "up_exit": proc.returncode,
        "up_said": err.decode(errors="replace").strip().splitlines()[-1:],
        "down_exit": down.returncode,
        "down_s": round(time.monotonic() - t0, 2),
        "down_said": (down.stdout + down.stderr).strip().splitlines()[:1],
        "left": left,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--signal", choices=["TERM", "KILL"], default="TERM")
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    sig = signal.Signals[f"SIG{args.signal}"]
    image.ensure(default_engine())
    rng = random.Random(args.seed)
    expected = 143 if sig == signal.SIGTERM else -signal.SIGKILL
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.cycles):
            res = cycle(Path(tmp), i, args.nodes, sig, rng.uniform(0, 3))
            results.append(res)
            print(json.dumps(res), flush=True)
    bad = [r for r in results if r["left"] or r["down_exit"] != 0 or r["up_exit"] != expected]
    print(
        json.dumps(
            {
                "signal": args.signal,
                "cycles": len(results),
                "nodes": args.nodes,
                "cycles_with_leftovers": sum(bool(r["left"]) for r in results),
                "stuck_networks": sum(
                    1 for r in results for n in r["left"] if str(n).endswith(("-lan", "-wan"))
                ),
                "bad_exit_codes": sum(r["up_exit"] != expected or r["down_exit"] != 0 for r in results),
            }
        )
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
