"""Every shipped lab's default scenario passes across real containers.

Each lab runs under a name of this test run (and, where it fixes a subnet, on a free subnet
with the same host addresses), so runs sharing a daemon never clash, and leaves nothing
behind. The labs do not share anything but the daemon: they run three at a time, the
longest first, in a pool the whole module shares; each test waits for its own lab.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from socklab import Lab
from socklab.catalog import ShippedLab, shipped_labs
from socklab.orchestrator.engine_api import Engine
from socklab.scenario.results import RunResult
from socklab.scenario.run import run

from .conftest import free_subnet, lab_name, leftovers

WORKERS = 3
SLOW_FIRST = ("errno", "concurrency", "timeouts", "sockopts", "echo", "ports")
LABS = sorted(
    shipped_labs(), key=lambda lab: SLOW_FIRST.index(lab.name) if lab.name in SLOW_FIRST else len(SLOW_FIRST)
)


@dataclass
class Ran:
    lab: str  # the name it ran under
    result: RunResult
    seconds: float


def own_copy(lab: ShippedLab, engine: Engine, folder: Path) -> Path:
    """The lab's file under a name of this run; a fixed subnet moved to a free one (static
    addresses keep their host part)."""
    doc: dict[str, Any] = yaml.safe_load(lab.path.read_text())
    doc["name"] = lab_name(lab.name)
    moved: dict[str, tuple[IPv4Network, IPv4Network]] = {}
    for net_name, net in (doc.get("networks") or {}).items():
        if isinstance(net, dict) and net.get("subnet"):
            old = IPv4Network(net["subnet"])
            moved[net_name] = (old, free_subnet(engine))
            net["subnet"] = str(moved[net_name][1])
    for node in (doc.get("nodes") or {}).values():
        for net_name, attachment in (
            (node.get("networks") or {}).items() if isinstance(node.get("networks"), dict) else ()
        ):
            if net_name in moved and isinstance(attachment, dict) and attachment.get("ip"):
                old, new = moved[net_name]
                offset = int(IPv4Address(attachment["ip"])) - int(old.network_address)
                attachment["ip"] = str(new.network_address + offset)
    path = folder / f"{lab.name}.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def lab_runs(
    engine: Engine, node_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Ran]]]:
    folder = tmp_path_factory.mktemp("labs")

    def one(lab: ShippedLab) -> Ran:
        path = own_copy(lab, engine, folder)
        the_lab = Lab.load(path, engine=engine)
        started = time.monotonic()
        result = run(the_lab, run_dir=folder / f"{lab.name}-run")
        return Ran(the_lab.name, result, time.monotonic() - started)

    pool = ThreadPoolExecutor(max_workers=WORKERS)
    runs = {lab.name: pool.submit(one, lab) for lab in LABS}
    yield runs
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("name", [lab.name for lab in LABS])
def test_shipped_lab_passes(name: str, lab_runs: dict[str, Future[Ran]], engine: Engine) -> None:
    ran = lab_runs[name].result(timeout=280)
    failed = [f"step {s.index} {s.title}: {s.detail}" for s in ran.result.all_steps() if not s.passed]
    assert ran.result.passed, f"{name} ({ran.seconds:.1f} s): " + " | ".join(failed)
    assert ran.result.steps, f"{name} has no steps"
    assert leftovers(engine, ran.lab) == []
    print(f"{name}: {len(ran.result.all_steps())} steps passed in {ran.seconds:.1f} s")
