"""``socklab run``: deploy, drive the scenario's steps, collect, report, destroy."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from socklab import interrupt
from socklab.errors import LabError
from socklab.lab import Lab
from socklab.observe.connections import connections
from socklab.observe.sockets import SocketRow
from socklab.observe.timeline import Event, merge, output_events
from socklab.orchestrator.deploy import Progress
from socklab.scenario import folder as run_folder
from socklab.scenario import report
from socklab.scenario.results import RunResult
from socklab.scenario.steps import StepHook, StepRunner, describe
from socklab.topology.graph import lab_graph
from socklab.topology.model import Strict, Topology
from socklab.topology.plan import plan

DEFAULT_SCENARIO = "default"


def pick_scenario(topo: Topology, name: str | None) -> tuple[str, list[Strict]]:
    """The named scenario, else ``default``, else the only one; exit 2 when none fits."""
    names = sorted(topo.scenarios)
    if not names:
        raise LabError(
            f"lab '{topo.name}' has no scenarios", "add `scenarios: {default: [steps...]}` to the topology"
        )
    if name is None:
        name = DEFAULT_SCENARIO if DEFAULT_SCENARIO in topo.scenarios or len(names) > 1 else names[0]
    if name not in topo.scenarios:
        raise LabError(f"unknown scenario '{name}' in lab '{topo.name}'", "scenarios: " + ", ".join(names))
    return name, list(topo.scenarios[name])


def default_run_dir(lab: str) -> Path:
    return Path("runs") / f"{lab}-{time.strftime('%Y%m%d-%H%M%S')}"


def run(
    lab: Lab,
    scenario: str | None = None,
    *,
    run_dir: Path | None = None,
    keep: bool = False,
    junit: Path | None = None,
    progress: Progress | None = None,
    on_step_start: Callable[[str, str], None] | None = None,
    on_step: StepHook | None = None,
    deploy: bool = True,
) -> RunResult:
    """Run a scenario end to end; the lab is destroyed afterwards unless kept. Interrupted (Ctrl-C,
    SIGTERM, SIGHUP: a KeyboardInterrupt), it still collects what it can, writes the report
    marked ``interrupted`` and takes the lab down before the interruption goes on. Without
    ``deploy`` the steps run on the lab as it is up, and it stays up."""
    topo = lab.topology
    if topo is None:
        raise LabError(f"lab '{lab.name}' has no topology loaded", "run it from its file")
    name, steps = pick_scenario(topo, scenario)
    if junit is not None:
        run_folder.prepare_junit(junit)
    folder = run_folder.prepare(run_dir or default_run_dir(lab.name))
    result = RunResult(
        lab=lab.name,
        scenario=name,
        topology=topo.model_dump(mode="json"),
        started=time.time(),
        run_dir=str(folder),
        graph=lab_graph(plan(topo, ())).as_dict(),
    )
    t0 = time.monotonic()
    deployed = False
    runner: StepRunner | None = None
    try:
        if deploy:
            lab.up(progress=progress)
        deployed = True
        runner = StepRunner(lab, folder, on_step)
        for i, step in enumerate(steps, 1):
            if on_step_start:
                on_step_start(str(i), describe(step))
            result.steps.append(runner.run(step, str(i)))
    except KeyboardInterrupt as exc:
        where = (
            f"during step {len(result.steps) + 1} of {len(steps)}"
            if deployed
            else "while the lab was coming up"
        )
        result.interrupted = interrupt.describe(exc)
        result.error = f"interrupted ({result.interrupted}) {where}"
        raise
    finally:
        with interrupt.held():  # a second Ctrl-C or SIGTERM waits for the report and the down
            try:
                if runner is not None:
                    runner.close()
                if deployed or result.interrupted:
                    if deployed:
                        try:
                            _collect(lab, folder, result)
                        except LabError:
                            if not result.interrupted:
                                raise
                    result.duration = time.monotonic() - t0
                    report.write_all(result, folder, junit)
            finally:
                if deploy and not keep:
                    lab.down()
    return result


def fault_events(result: RunResult) -> list[Event]:
    """One ``fault`` event per node a fault step changed, when the step was done."""
    return [
        Event(
            ts=s.started + s.duration,
            node=node,
            app="socklab",
            pid=0,
            event="fault",
            fields={"action": s.fault["action"], "step": s.index, "detail": s.fault["message"]},
        )
        for s in result.all_steps()
        if s.fault
        for node in s.fault["nodes"]
    ]


def _collect(lab: Lab, folder: Path, result: RunResult) -> None:
    """Logs into ``logs/<node>.log``, the merged timeline (started apps' logs and the events of
    commands the steps ran), the nodes' addresses and the lab's graph with them, and who was
    connected to whom at the last socket snapshot (or now, when the scenario took none)."""
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    status = lab.status()
    result.nodes = [s.as_dict() for s in status]
    result.graph = lab.graph(status).as_dict()
    texts = lab.logs([s["node"] for s in result.nodes])
    for node, text in texts.items():
        (logs / f"{node}.log").write_text(text)
    ran = [e for s in result.all_steps() for o in s.outputs for e in output_events(o.node, o.stdout)]
    events = merge(texts.items(), [*ran, *fault_events(result)])
    result.timeline = [e.as_dict() for e in events]
    shots = [s.snapshot for s in result.all_steps() if s.snapshot is not None]
    rows = [SocketRow(**r) for rs in shots[-1].values() for r in rs] if shots else lab.sockets()
    pairs = Counter((c.client.node, c.server.node, c.server.local_port) for c in connections(rows))
    result.connections = [
        {"client": a, "server": b, "port": port, "count": n} for (a, b, port), n in sorted(pairs.items())
    ]
