"""`socklab compose export|import` (a lab as a compose or stack file, a compose file as a lab)
and `socklab graph` (a lab's networks and nodes as Mermaid, DOT or text)."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from socklab import render
from socklab.cli.app import JsonOpt, LabArg, app, build_line, command_group, open_lab
from socklab.errors import LabError

if TYPE_CHECKING:
    from socklab.compose import ComposeWarning
    from socklab.lab import Lab

compose_app = command_group(
    "compose", "A lab as a compose or Swarm stack file; a compose file as a lab.", no_args_is_help=True
)

OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", metavar="FILE", help="write here instead of stdout")
]


@compose_app.command("export")
def compose_export(
    lab: LabArg,
    output: OutputOpt = None,
    swarm: Annotated[bool, typer.Option("--swarm", help="a stack file for `docker stack deploy`")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The lab as a docker-compose file (`--swarm`: a Swarm stack file); what the file
    cannot hold is listed as warnings on stderr."""
    exported = _with_topology(lab).export_compose(swarm=swarm, on_build=build_line)
    _warn(exported.warnings)
    if output is not None:
        _write(output, exported.yaml())
    if as_json:
        render.print_json({**exported.as_dict(), "file": str(output) if output else None})
    elif output is None:
        sys.stdout.write(exported.yaml())
    else:
        how = (
            f"docker stack deploy -c {output} {exported.lab}"
            if swarm
            else f"docker-compose -f {output} -p {exported.lab} up -d"
        )
        services = exported.document["services"]
        render.out.print(
            f"wrote {escape(str(output))}: "
            f"{render.plural(len(services), 'service')}, "
            f"{render.plural(len(exported.document['networks']), 'network')}, "
            f"{render.plural(len(exported.warnings), 'warning')}; run it with "
            f"`{escape(how)}`"
        )


@compose_app.command("import")
def compose_import(
    file: Annotated[Path, typer.Argument(metavar="COMPOSE.yml", help="a compose file (v2 or v3)")],
    output: OutputOpt = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="the lab's name (default: the file's `name:`, else its folder's name)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A compose project as a socklab topology; every key socklab does not model is listed
    with its file and line on stderr."""
    from socklab.compose.importer import import_compose

    text = _read(file)
    imported = import_compose(text, str(file), name=name, default_name=file.resolve().parent.name)
    _warn(imported.warnings)
    if output is not None:
        _write(output, imported.yaml())
    if as_json:
        render.print_json({**imported.as_dict(), "file": str(output) if output else None})
    elif output is None:
        sys.stdout.write(imported.yaml())
    else:
        nodes = imported.topology["nodes"]
        render.out.print(
            f"wrote {escape(str(output))}: lab '{imported.lab}', "
            f"{render.plural(len(nodes), 'node')}, "
            f"{render.plural(len(imported.topology['networks']), 'network')}, "
            f"{render.plural(len(imported.warnings), 'warning')}; start it with "
            f"`socklab up {escape(str(output))}`"
        )


@app.command()
def graph(
    lab: LabArg,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", metavar="mermaid|dot|text", help="Mermaid (GitHub renders it), Graphviz DOT or text"
        ),
    ] = "mermaid",
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The lab's networks and nodes, with addresses and aliases (the running ones when the
    lab is up)."""
    from socklab.topology.graph import FORMATS
    from socklab.topology.graph import render as render_graph

    if fmt not in FORMATS:  # narrows fmt to the Format literal
        raise LabError(f"unknown format '{fmt}'", "use mermaid, dot or text")
    the_graph = _with_topology(lab).graph()
    text = render_graph(the_graph, fmt)
    if output is not None:
        _write(output, text)
    if as_json:
        render.print_json({**the_graph.as_dict(), fmt: text})
    elif output is None:
        sys.stdout.write(text)
    else:
        render.out.print(f"wrote {escape(str(output))}")


def _with_topology(arg: str) -> "Lab":
    return open_lab(arg).with_topology()


def _warn(warnings: "tuple[ComposeWarning, ...]") -> None:
    for w in warnings:
        render.err.print(f"[yellow]warning:[/] {escape(str(w))}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LabError(f"compose file not found: {path}", "check the path") from None
    except IsADirectoryError:
        raise LabError(f"{path} is a directory", "give its docker-compose.yml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise LabError(
            f"cannot write {path}: {exc.strerror or exc}",
            "give -o a path in a folder that exists and you can write to",
        ) from None
