"""Child of ``bench/removal_order.py --real``: socklab's own ``up`` of a lab, relabelled.

Everything is labelled ``io.socklab.study`` (not a lab: ``socklab ls`` never shows it, and a
stuck network is no lab's) on 10.199.0.0/16, and the rollback after SIGTERM removes the
containers with the STRATEGY under study instead of socklab's own.

    python bench/removal_study_child.py NAME NODES STRATEGY
"""

from __future__ import annotations

import contextlib
import sys
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network

from socklab import interrupt
from socklab.orchestrator import deploy, image
from socklab.orchestrator.engine import default_engine
from socklab.orchestrator.engine_api import ContainerInfo, Engine
from socklab.topology import Topology
from socklab.topology import plan as planning

LABEL = "io.socklab.study"
planning.LABEL_LAB = deploy.LABEL_LAB = LABEL  # type: ignore[misc]
planning.AUTO_POOL = IPv4Network("10.199.0.0/16")  # type: ignore[misc]


def _inspect_parallel(engine: Engine, found: list[ContainerInfo]) -> None:
    def one(ident: str) -> None:
        with contextlib.suppress(Exception):
            engine.container(ident)
        engine.remove_container(ident)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, [c.id for c in found]))


def _parallel(engine: Engine, found: list[ContainerInfo]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(engine.remove_container, [c.id for c in found]))


def _serial(engine: Engine, found: list[ContainerInfo]) -> None:
    for c in found:
        with contextlib.suppress(Exception):
            engine.container(c.id)
        engine.remove_container(c.id)


STRATEGIES = {
    "parallel": _parallel,
    "inspect": _inspect_parallel,
    "serial": _serial,
    "socklab": deploy._remove_containers,
}


def main() -> int:
    name, nodes, strategy = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    deploy._remove_containers = STRATEGIES[strategy]  # type: ignore[assignment]
    interrupt.install()
    engine = default_engine()
    tag = image.ensure(engine)
    topo = Topology.model_validate(
        {
            "name": name,
            "networks": {"lan": {}, "wan": {}},
            "nodes": {
                "server": {"networks": ["lan", "wan"], "start": ["tcp-server --port 5000"]},
                "c": {"replicas": nodes - 1, "networks": ["lan", "wan"]},
            },
        }
    )
    plan = planning.plan(topo, engine.subnets_in_use())
    print("planned", flush=True)
    try:
        deploy.up(engine, plan, tag)
    except KeyboardInterrupt:
        return 143
    return 0


if __name__ == "__main__":
    sys.exit(main())
