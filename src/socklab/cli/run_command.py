"""`socklab run`: a scenario end to end, with a line per step and a summary."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.markup import escape

from socklab import interrupt, render
from socklab.cli.app import EngineOpt, JsonOpt, app, engine_named
from socklab.errors import LabError

if TYPE_CHECKING:
    from socklab.lab import Lab
    from socklab.scenario.results import StepResult


@app.command("run")
def run_(
    lab: Annotated[
        str | None,
        typer.Argument(
            metavar="LAB", help="topology file or shipped lab; default ./socklab.yml, else the echo lab"
        ),
    ] = None,
    scenario: Annotated[
        str | None, typer.Option(metavar="NAME", help="scenario name (default: 'default')")
    ] = None,
    keep: Annotated[bool, typer.Option("--keep", help="leave the lab up afterwards")] = False,
    report: Annotated[
        Path | None, typer.Option(metavar="DIR", help="run folder (default runs/LAB-TIME)")
    ] = None,
    junit: Annotated[Path | None, typer.Option(metavar="FILE", help="also write JUnit XML here")] = None,
    engine: EngineOpt = "docker",
    as_json: JsonOpt = False,
) -> None:
    """Deploy, run a scenario's steps, collect, report, destroy. Exit 1 if a step failed."""
    from socklab.catalog import default_lab_file, find_lab_file
    from socklab.lab import Lab
    from socklab.scenario import run as scenario_run

    path = find_lab_file(lab) if lab else default_lab_file()
    if path is None:
        raise LabError(
            f"topology file not found: {lab}", "give a path to a YAML file, or a shipped lab (`socklab labs`)"
        )
    the_lab = Lab.load(path, engine=engine_named(engine))
    live = not as_json
    status = render.out.status("deploying", spinner="dots")
    if live and render.out.is_terminal:
        status.start()

    def step_started(index: str, title: str) -> None:
        status.update(f"step {index}: {escape(title)}")

    def step_done(step: "StepResult") -> None:
        if not live:
            return
        mark = "[green]✓[/]" if step.passed else "[red]✗[/]"
        indent = "  " * step.index.count(".")
        render.out.print(f"{indent}{mark} {step.index} {escape(step.title)} [dim]({step.duration:.2f} s)[/]")
        if not step.passed:
            render.out.print(f"{indent}    [red]{escape(step.detail)}[/]")

    def deploy_progress(phase: str, done: int, total: int) -> None:
        status.update(f"deploying {the_lab.name}: {phase} {done}/{total}")

    folder = report or scenario_run.default_run_dir(the_lab.name)
    try:
        result = the_lab.run(
            scenario or scenario_run.DEFAULT_SCENARIO,
            folder,
            keep=keep,
            junit=junit,
            progress=deploy_progress,
            on_step_start=step_started,
            on_step=step_done,
        )
    except KeyboardInterrupt as exc:  # run() wrote what it had and took the lab down first
        status.stop()
        _interrupted(the_lab, folder, exc)
    finally:
        status.stop()
    if as_json:
        sys.stdout.write(result.to_json() + "\n")
    else:
        steps = result.all_steps()
        passed = sum(s.passed for s in steps)
        verdict = "[green]PASSED[/]" if result.passed else "[red]FAILED[/]"
        render.out.print(
            f"{verdict} {the_lab.name}/{result.scenario}: {passed} of {len(steps)} "
            f"steps passed in {result.duration:.1f} s"
        )
        render.out.print(f"report: {Path(result.run_dir) / 'report.html'}", markup=False)
        if keep:
            render.out.print(f"the lab is still up: `socklab down --lab {the_lab.name}`")
    raise typer.Exit(0 if result.passed else 1)


def _interrupted(lab: "Lab", folder: Path, exc: KeyboardInterrupt) -> NoReturn:
    """Ctrl-C, SIGTERM or SIGHUP: say what is left of the lab and where the partial report
    is; exit 130, 143 or 129."""
    how = f"interrupted ({interrupt.describe(exc)})"
    said = (
        f"{how}: lab '{lab.name}' is still up (--keep): `socklab down --lab {lab.name}`"
        if lab.is_up()
        else f"{how}: lab '{lab.name}' was removed"
    )
    render.err.print(said, markup=False)
    if (folder / "report.html").exists():
        render.err.print(f"partial report: {folder / 'report.html'}", markup=False)
    raise typer.Exit(interrupt.exit_code(exc))
