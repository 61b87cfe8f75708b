"""What the benches share: timing, best-of rounds, the machine, raw docker-SDK baselines.

Every bench runs socklab and its baseline side by side in one process, alternating (the
order turns each round), and keeps the best of N rounds of each: on a shared machine the
best is the run the least disturbed by others, and the ratio of two bests is what the
goals of issue 14 are written in.

Baseline containers and networks are labelled ``io.socklab.bench`` (not a lab: ``socklab
ls`` never shows them) and their networks get an explicit subnet of 10.201.0.0/16, so that
one the daemon keeps after a parallel removal (moby#42119, a raw baseline does not avoid
it) never takes a range of Docker's default pools.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import platform
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 8
LABEL = "io.socklab.bench"
RUN = f"b{os.getpid()}"
POOL = IPv4Network("10.201.0.0/16")


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rounds_of(variants: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[Any]]:
    """Each variant once per round, the order turned by one each round; every result kept."""
    names = list(variants)
    out: dict[str, list[Any]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            out[name].append(variants[name]())
    return out


def row(
    what: str,
    mine: list[float],
    base: list[float],
    goal: str,
    ok: Callable[[float, float], bool],
    **extra: Any,
) -> dict[str, Any]:
    """One row of the table: the best of each side, their ratio and difference, the goal."""
    s, b = min(mine), min(base)
    return {
        "what": what,
        "socklab_s": round(s, 4),
        "baseline_s": round(b, 4),
        "ratio": round(s / b, 3),
        "over_s": round(s - b, 4),
        "goal": goal,
        "met": ok(s, b),
        "socklab_rounds": [round(x, 4) for x in mine],
        "baseline_rounds": [round(x, 4) for x in base],
        **extra,
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    mem = next(
        (int(line.split()[1]) // 1024 for line in _lines("/proc/meminfo") if line.startswith("MemTotal")), 0
    )
    with contextlib.suppress(docker.errors.DockerException):
        version = docker.from_env().version().get("Version", "?")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mib": mem,
        "kernel": platform.release(),
        "docker": version,
        "python": platform.python_version(),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
        "root": os.geteuid() == 0,
    }


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def node_image() -> str:
    """socklab's node image tag (built when missing)."""
    from socklab.orchestrator import image
    from socklab.orchestrator.engine import default_engine

    return image.ensure(default_engine())


@contextlib.contextmanager
def keep_image(tag: str) -> Iterator[None]:
    """A container holds the image while the bench runs: another checkout building its node
    image untags the unused older ones, and a rebuild would be timed as part of an ``up``."""
    client = docker.from_env()
    keeper = client.containers.run(
        tag,
        ["sleep", "infinity"],
        detach=True,
        init=True,
        network_mode="none",
        labels={LABEL: f"{RUN}-keeper"},
        name=f"{RUN}-keeper",
    )
    try:
        yield
    finally:
        keeper.remove(force=True)


def free_subnet(hosts: int) -> IPv4Network:
    """A free subnet of 10.201.0.0/16 with room for ``hosts`` addresses (and the gateway)."""
    prefix = 32
    while 2 ** (32 - prefix) - 3 < hosts:
        prefix -= 1
    used = [
        IPv4Network(c["Subnet"])
        for n in docker.from_env().api.networks()
        for c in (n.get("IPAM") or {}).get("Config") or []
        if "." in c.get("Subnet", "")
    ]
    free = [s for s in POOL.subnets(new_prefix=prefix) if not any(s.overlaps(u) for u in used)]
    if not free:
        raise SystemExit(f"no free /{prefix} left in {POOL}")
    return random.choice(free)


_RAW_NETWORKS = itertools.count(1)


class RawSDK:
    """The baseline: the docker SDK's ``containers.run`` of N containers with 8 workers on one
    new network, and their removal (``remove(force=True)``, 8 at a time)."""

    def __init__(self, tag: str, name: str = "raw", command: list[str] | None = None) -> None:
        self.client = docker.from_env(timeout=600)
        self.tag = tag
        self.command = ["sleep", "infinity"] if command is None else command  # []: the image's CMD
        self.base = f"{RUN}-{name}"
        self.name = self.base
        self.stuck: list[str] = []

    def up(self, n: int) -> None:
        # a name of its own each time (in this run): a network left stuck keeps its name
        self.name = f"{self.base}{next(_RAW_NETWORKS)}"
        subnet = free_subnet(n)
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet))])
        net = self.client.networks.create(
            self.name, driver="bridge", ipam=ipam, labels={LABEL: self.name}, check_duplicate=True
        )

        def one(i: int) -> None:
            self.client.containers.run(
                self.tag,
                self.command or None,
                name=f"{self.name}-{i}",
                hostname=f"node-{i}",
                network=net.id,
                labels={LABEL: self.name},
                detach=True,
                init=True,
            )

        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(one, range(1, n + 1)))

    def down(self) -> None:
        found = self.client.containers.list(all=True, filters={"label": f"{LABEL}={self.name}"})
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda c: c.remove(force=True), found))
        for net in self.client.networks.list(filters={"label": f"{LABEL}={self.name}"}):
            for _ in range(50):  # the daemon may still be detaching the removed containers
                try:
                    net.remove()
                    break
                except docker.errors.NotFound:
                    break
                except docker.errors.APIError:
                    time.sleep(0.1)
            else:  # moby#42119: it stays until the daemon restarts (labelled, on the bench's range)
                self.stuck.append(net.id[:12])


def cleanup() -> None:
    """Remove whatever a bench of this process left (an interrupted round)."""
    client = docker.from_env()
    for c in client.containers.list(all=True, filters={"label": LABEL}):
        if c.labels.get(LABEL, "").startswith(RUN):
            c.remove(force=True)
    for n in client.networks.list(filters={"label": LABEL}):
        if n.attrs.get("Labels", {}).get(LABEL, "").startswith(RUN):
            with contextlib.suppress(docker.errors.APIError):
                n.remove()
