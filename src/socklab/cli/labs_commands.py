"""``socklab labs``: the shipped labs (the course), one lab shown, one copied out to edit."""

from pathlib import Path
from typing import Annotated

import typer

from socklab import render
from socklab.cli.app import JsonOpt, command_group

labs_app = command_group(
    "labs", "The labs shipped with socklab: one per topic of the course.", invoke_without_command=True
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="a shipped lab (`socklab labs`)")]


@labs_app.callback()
def labs(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the shipped labs in the order of the course: name, topic, what it shows."""
    if ctx.invoked_subcommand is not None:
        return
    from socklab.catalog import shipped_labs

    found = shipped_labs()
    if as_json:
        render.print_json(
            [
                {"name": s.name, "topic": s.topic or None, "description": s.description, "path": str(s.path)}
                for s in found
            ]
        )
        return
    render.table(
        None, ["LAB", "TOPIC", "WHAT IT SHOWS"], [(s.name, s.topic or "-", s.summary) for s in found]
    )


@labs_app.command("show")
def show(name: NameArg, as_json: JsonOpt = False) -> None:
    """What a lab teaches, how to run it, and its topology file (with its comments)."""
    from rich.syntax import Syntax

    from socklab.catalog import shipped_lab
    from socklab.topology import load_topology

    lab = shipped_lab(name)
    topo = load_topology(lab.path)
    text = lab.path.read_text(encoding="utf-8")
    if as_json:
        render.print_json(
            {
                "name": lab.name,
                "topic": lab.topic,
                "description": lab.description,
                "path": str(lab.path),
                "networks": list(topo.networks),
                "nodes": [i for i, _, _ in topo.instances()],
                "scenarios": sorted(topo.scenarios),
                "yaml": text,
            }
        )
        return
    render.out.print(f"[bold]{lab.name}[/]" + (f" — {lab.topic}" if lab.topic else ""))
    render.out.print(lab.description, markup=False)
    render.out.print(
        f"run it: socklab run {lab.name}    copy it: socklab labs copy {lab.name}    "
        f"the course: docs/labs.md#{lab.name}",
        markup=False,
    )
    render.out.print()
    render.out.print(
        Syntax(text, "yaml", background_color="default") if render.out.is_terminal else text, markup=False
    )


@labs_app.command("copy")
def copy(
    name: NameArg,
    folder: Annotated[
        Path, typer.Argument(metavar="DIR", help="where to put NAME.yml (default: here)")
    ] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="overwrite NAME.yml there")] = False,
) -> None:
    """Copy a shipped lab's file out, to edit and run as your own."""
    from socklab.catalog import copy_lab

    target = copy_lab(name, folder, force)
    render.out.print(f"copied lab '{name}' to {target}; edit it, then `socklab run {target}`", markup=False)
