"""Deploy speed: `socklab up`/`down` against a raw parallel docker-SDK deploy and docker-compose.

All three deploy the same lab (N nodes on one network, the same node image) side
by side in one process; the figures are ratios, so the machine's speed cancels out.

    .venv/bin/python bench/deploy.py [--sizes 30 40] [--rounds 2]

Goals (issue 3): up <= 1.15x raw SDK, <= 0.8x docker-compose; down <= 1.5x raw SDK.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import yaml

from socklab import Lab
from socklab.orchestrator import image
from socklab.orchestrator.engine import default_engine

WORKERS = 8
LABEL = "io.socklab.bench"  # baselines are not labs: `socklab ls` never shows them
RUN = f"b{os.getpid()}"  # names of this run only: a stale network of another never clashes


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def bench_socklab(n: int, tmp: Path) -> tuple[float, float]:
    path = tmp / "socklab.yml"
    path.write_text(yaml.safe_dump({"name": f"{RUN}-socklab", "networks": {"lan": {}},
                                    "nodes": {"node": {"replicas": n, "networks": ["lan"]}}}))
    lab = Lab.load(path)
    return timed(lab.up), timed(lab.down)


def bench_raw_sdk(n: int, tag: str) -> tuple[float, float]:
    client = docker.from_env()
    labels = {LABEL: f"{RUN}-raw"}

    def up() -> None:
        net = client.networks.create(f"{RUN}-raw-lan", driver="bridge", labels=labels)

        def one(i: int) -> None:
            client.containers.run(tag, ["sleep", "infinity"], name=f"{RUN}-raw-{i}",
                                  hostname=f"node-{i}", network=net.name, labels=labels,
                                  detach=True, init=True)

        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(one, range(1, n + 1)))

    def down() -> None:
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda c: c.remove(force=True),
                          client.containers.list(all=True, filters={"label": f"{LABEL}={RUN}-raw"})))
        for net in client.networks.list(filters={"label": f"{LABEL}={RUN}-raw"}):
            for _ in range(50):  # the daemon may still be detaching the removed containers
                try:
                    net.remove()
                    break
                except docker.errors.APIError:
                    time.sleep(0.1)

    return timed(up), timed(down)


def bench_compose(n: int, tag: str, tmp: Path) -> tuple[float, float]:
    services = {
        f"node-{i}": {"image": tag, "command": ["sleep", "infinity"], "init": True,
                      "hostname": f"node-{i}", "networks": ["lan"],
                      "labels": {LABEL: f"{RUN}-compose"}}
        for i in range(1, n + 1)
    }
    doc = {"version": "2.4", "services": services,
           "networks": {"lan": {"labels": {LABEL: f"{RUN}-compose"}}}}
    path = tmp / "docker-compose.yml"
    path.write_text(yaml.safe_dump(doc))
    base = ["docker-compose", "-p", f"{RUN}-compose", "-f", str(path)]

    def run(*args: str) -> None:
        subprocess.run([*base, *args], check=True, capture_output=True)

    return timed(lambda: run("up", "-d")), timed(lambda: run("down", "-t", "0"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 40])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    tag = image.ensure(default_engine())
    print(f"node image {tag}; {WORKERS} workers for the raw SDK; median of {args.rounds} rounds\n")
    print(f"{'N':>3} {'socklab up':>11} {'raw up':>8} {'compose up':>11} {'up/raw':>7} "
          f"{'up/compose':>11} {'socklab down':>13} {'raw down':>9} {'down/raw':>9}")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for n in args.sizes:
            runs: dict[str, list[tuple[float, float]]] = {"socklab": [], "raw": [], "compose": []}
            for _ in range(args.rounds):
                runs["raw"].append(bench_raw_sdk(n, tag))
                runs["socklab"].append(bench_socklab(n, tmp))
                runs["compose"].append(bench_compose(n, tag, tmp))
            med = {k: (statistics.median(u for u, _ in v), statistics.median(d for _, d in v))
                   for k, v in runs.items()}
            s, r, c = med["socklab"], med["raw"], med["compose"]
            print(f"{n:>3} {s[0]:>10.2f}s {r[0]:>7.2f}s {c[0]:>10.2f}s {s[0] / r[0]:>6.2f}x "
                  f"{s[0] / c[0]:>10.2f}x {s[1]:>12.2f}s {r[1]:>8.2f}s {s[1] / r[1]:>8.2f}x")


if __name__ == "__main__":
    main()
