"""Which removal order leaves no stale endpoint behind (moby#42119) on this Docker?

Docker 20.10 sometimes keeps an endpoint count on a network after its containers are
gone: the network then refuses removal ("has active endpoints") until the daemon
restarts. libnetwork stores that count as one key per network and updates it with a
compare-and-swap when an endpoint is made or deleted; an update that loses the race is
only logged ("failed to decrement endpoint count"). Two ways to lose it were found here:

- a container removed while its start is still in flight (an ``up`` killed with starts
  under way): ``--burst`` below, 2 stuck networks in 8 cycles with ``parallel``, none in
  20 with ``inspect``;
- two endpoints of one network deleted at once (8 containers removed in parallel): with
  ``inspect`` (no start in flight any more), ``--real`` got 1 stuck network in 12 cycles
  and ``bench/interrupt_cycles.py`` 1 in 20.

Measured on this Docker 20.10 (2 cores, shared): socklab's order (``socklab``: inspect,
disconnect one endpoint of a network at a time, then remove in parallel) left no stuck
network in 115 cycles of 20-node, two-network labs: ``--real`` 40 cycles,
``bench/interrupt_cycles.py`` 2 x 30 SIGTERM and 15 SIGKILL cycles. Its ``down`` of a
20-node lab takes 1.3x a raw parallel removal (``bench/deploy.py``).

Two harnesses. The raw one makes N containers on two networks the way ``socklab up``
does (8 workers: create on the first network, connect the second, start), is "killed"
at a random moment (no worker issues another call, but the calls in flight go on in
the daemon), and removes the containers with STRATEGY (``--burst``: every container is
made first, then all are started at once, so that many starts are in flight when the
kill comes). ``--real`` runs socklab's own ``up`` of a 20-node lab in a child process
(``bench/removal_study_child.py``), SIGTERMs it at a random moment, and its rollback
removes the containers with STRATEGY. Strategies:

- ``parallel``: force-remove every container, 8 at a time (socklab's ``down`` before)
- ``serial``: force-remove the containers one by one (raw: no inspect; real: inspect)
- ``inspect``: inspect each container (the daemon answers only once a start in flight
  is done), then force-remove it, 8 at a time
- ``disconnect`` (raw) / ``socklab`` (real, socklab's ``down`` now): inspect each
  container, disconnect the containers from each network one at a time, then
  force-remove them 8 at a time

A network that still refuses removal after 5 s is stuck and left as it is (only a
daemon restart clears it): these are labelled ``io.socklab.study``, not as a lab, and
sit on 10.199.0.0/16, away from socklab's pool.

    .venv/bin/python bench/removal_order.py --real --strategy socklab --cycles 30
    .venv/bin/python bench/removal_order.py --burst --strategy inspect --cycles 20
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types

from socklab.orchestrator import image
from socklab.orchestrator.engine import default_engine

LABEL = "io.socklab.study"
WORKERS = 8
RUN = f"study{os.getpid()}"
_subnets = itertools.count(1)


class Killed(Exception):
    """The simulated ``up`` was killed: its workers make no further call."""


def _free_subnet(api: Any) -> str:
    used = {cfg.get("Subnet") for n in api.networks() for cfg in (n.get("IPAM") or {}).get("Config") or []}
    while True:
        subnet = f"10.199.{next(_subnets) % 250}.0/24"
        if subnet not in used:
            return subnet


def one_cycle(
    api: Any, tag: str, strategy: str, nodes: int, cycle: int, kill_after: float, burst: bool
) -> dict[str, Any]:
    """One up/kill/remove cycle: timings, and which networks got stuck."""
    name = f"{RUN}-{cycle}"
    labels = {LABEL: name}
    nets = []
    for net in ("a", "b"):
        pool = docker.types.IPAMPool(subnet=_free_subnet(api))
        made = api.create_network(
            f"{name}-{net}",
            driver="bridge",
            internal=True,
            labels=labels,
            ipam=docker.types.IPAMConfig(pool_configs=[pool]),
        )
        nets.append((made["Id"], f"{name}-{net}"))
    killed = threading.Event()

    def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if killed.is_set():
            raise Killed
        return fn(*args, **kwargs)

    def create(i: int) -> str:
        made = call(
            api.create_container,
            tag,
            command=["sleep", "infinity"],
            name=f"{name}-n{i}",
            labels=labels,
            host_config=api.create_host_config(init=True, network_mode=nets[0][1]),
            networking_config=api.create_networking_config(
                {nets[0][1]: api.create_endpoint_config(aliases=[f"n{i}"])}
            ),
        )
        call(api.connect_container_to_network, made["Id"], nets[1][1], aliases=[f"n{i}"])
        return str(made["Id"])

    def create_start(i: int) -> None:
        call(api.start, create(i))

    if burst:  # every container made first, then all started at once: the most starts in flight
        with ThreadPoolExecutor(WORKERS) as makers:
            made = list(makers.map(create, range(nodes)))
        pool = ThreadPoolExecutor(nodes)
        futures = [pool.submit(call, api.start, ident) for ident in made]
    else:
        pool = ThreadPoolExecutor(WORKERS)
        futures = [pool.submit(create_start, i) for i in range(nodes)]
    t0 = time.monotonic()
    time.sleep(kill_after)
    killed.set()
    in_flight = sum(f.running() for f in futures)

    names = [n for _, n in nets]
    ids = [c["Id"] for c in api.containers(all=True, filters={"label": f"{LABEL}={name}"})]
    STRATEGIES[strategy](api, ids, names)
    t_remove = time.monotonic() - t0 - kill_after
    pool.shutdown(wait=True)
    late = [c["Id"] for c in api.containers(all=True, filters={"label": f"{LABEL}={name}"})]
    _parallel(api, late, names)  # made after the listing: not a fault of the strategy
    stuck = [n for ident, n in nets if not _remove_network(api, ident)]
    return {
        "cycle": cycle,
        "killed_at": kill_after,
        "in_flight": in_flight,
        "containers": len(ids),
        "remove_s": round(t_remove, 2),
        "late": len(late),
        "stuck": stuck,
    }


def _remove(api: Any, ident: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        api.remove_container(ident, force=True, v=True)


def _parallel(api: Any, ids: list[str], _nets: list[str]) -> None:
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda i: _remove(api, i), ids))


def _serial(api: Any, ids: list[str], _nets: list[str]) -> None:
    for ident in ids:
        _remove(api, ident)


def _disconnect(api: Any, ids: list[str], nets: list[str]) -> None:
    for ident in ids:
        for net in nets:
            with contextlib.suppress(docker.errors.APIError):
                api.disconnect_container_from_network(ident, net, force=True)
    _parallel(api, ids, nets)


def _inspect(api: Any, ids: list[str], _nets: list[str]) -> None:
    def one(ident: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            api.inspect_container(ident)  # waits for a start in flight (the container's lock)
            api.remove_container(ident, force=True, v=True)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, ids))


STRATEGIES: dict[str, Callable[[Any, list[str], list[str]], None]] = {
    "parallel": _parallel,
    "serial": _serial,
    "disconnect": _disconnect,
    "inspect": _inspect,
}


def _remove_network(api: Any, ident: str, patience: float = 5.0) -> bool:
    deadline = time.monotonic() + patience
    while True:
        try:
            api.remove_network(ident)
            return True
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            if "active endpoints" not in str(exc) or time.monotonic() > deadline:
                return False
            time.sleep(0.1)


def real_cycle(api: Any, strategy: str, nodes: int, cycle: int, delay: float) -> dict[str, Any]:
    """socklab's own up (bench/removal_study_child.py), SIGTERM'd after ``delay`` s from its
    first container; its rollback removes the containers with the strategy."""
    name = f"{RUN}-real-{cycle}"
    child = Path(__file__).with_name("removal_study_child.py")
    proc = subprocess.Popen(
        [sys.executable, str(child), name, str(nodes), strategy],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    found = {"label": f"{LABEL}={name}"}
    while not api.containers(all=True, filters=found) and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(delay)
    made = len(api.containers(all=True, filters=found))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    left = api.containers(all=True, filters=found)
    nets = api.networks(filters=found)
    stuck = [n["Name"] for n in nets if not _remove_network(api, n["Id"])]
    return {
        "cycle": cycle,
        "signal_after_s": round(delay, 2),
        "containers": made,
        "exit": proc.returncode,
        "containers_left": len(left),
        "stuck": stuck,
        "said": err.decode(errors="replace").strip().splitlines()[-1:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strategy", choices=sorted({*STRATEGIES, "socklab"}), required=True)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument(
        "--burst",
        action="store_true",
        help="create every container first, then start them all at once and kill "
        "0.05-1.5 s into the starts (many starts in flight)",
    )
    parser.add_argument(
        "--real", action="store_true", help="socklab's own up, SIGTERM'd; its rollback uses the strategy"
    )
    parser.add_argument("--seed", type=int, default=42119)
    parser.add_argument(
        "--stop-at-first",
        action="store_true",
        help="stop after the first stuck network (each lasts until a daemon restart)",
    )
    args = parser.parse_args()
    if (args.strategy == "socklab") != args.real and args.strategy not in ("parallel", "serial", "inspect"):
        parser.error("--strategy socklab is for --real; disconnect is for the raw harness")
    tag = image.ensure(default_engine())
    api = docker.from_env(timeout=120).api
    rng = random.Random(args.seed)
    results = []
    for cycle in range(args.cycles):
        if args.real:
            res = real_cycle(api, args.strategy, args.nodes, cycle, rng.uniform(0, 3))
        else:
            kill_after = rng.uniform(0.05, 1.5) if args.burst else rng.uniform(0.3, 4)
            res = one_cycle(api, tag, args.strategy, args.nodes, cycle, round(kill_after, 2), args.burst)
        results.append(res)
        print(json.dumps(res), flush=True)
        if res["stuck"] and args.stop_at_first:
            break
    stuck = sum(len(r["stuck"]) for r in results)
    print(
        json.dumps(
            {
                "strategy": args.strategy,
                "burst": args.burst,
                "real": args.real,
                "cycles": len(results),
                "nodes": args.nodes,
                "stuck_networks": stuck,
            }
        )
    )
    return 1 if stuck else 0


if __name__ == "__main__":
    sys.exit(main())
