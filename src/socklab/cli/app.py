"""The typer application, its one error handler, and what every command shares."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
import typer.core
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from socklab import render
from socklab.catalog import find_lab_file
from socklab.errors import LabError
from socklab.lab import Lab


class _Group(typer.core.TyperGroup):
    """Turns every LabError into one or two lines and its exit code; never a traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LabError as exc:
            _debug_traceback(ctx)
            render.error(escape(exc.message), exc.hint and escape(exc.hint))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            render.err.print("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:  # `socklab logs LAB | head`: the reader left, nothing is wrong
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except Exception as exc:
            if isinstance(exc, typer.Exit | typer.Abort) or hasattr(exc, "exit_code"):
                raise  # the CLI framework's own exits and usage errors
            _debug_traceback(ctx)
            render.error(f"unexpected {type(exc).__name__}: {escape(str(exc))}",
                         "run again with --debug for the traceback, and report it")
            raise typer.Exit(1) from None


def _debug_traceback(ctx: Any) -> None:
    if (ctx.obj or {}).get("debug") or os.environ.get("SOCKLAB_DEBUG"):
        traceback.print_exc()


app = typer.Typer(cls=_Group, no_args_is_help=True, pretty_exceptions_enable=False,
                  add_completion=False, help="A containerized multi-node sockets lab.")
image_app = typer.Typer(no_args_is_help=True, help="Build or inspect the node image.")
app.add_typer(image_app, name="image")

LabArg = Annotated[str, typer.Argument(metavar="LAB", help="topology file, shipped lab name, "
                                       "or the name of a lab that is up")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


@app.callback()
def _main(ctx: typer.Context,
          debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False) -> None:
    ctx.obj = {"debug": debug}


def open_lab(arg: str, *, up: bool = False) -> Lab:
    """A LAB argument: a topology file, a shipped lab's name, or a lab that is up.
    With ``up``, the lab must be up (commands that look into its nodes)."""
    path = find_lab_file(arg)
    if path is not None:
        lab = Lab.load(path)
        if up and not lab.is_up():
            raise LabError(f"lab '{lab.name}' is not up", f"start it with `socklab up {arg}`")
        return lab
    if "/" not in arg and not arg.endswith((".yml", ".yaml")):
        lab = Lab.named(arg)
        if lab.is_up():
            return lab
    raise LabError(f"topology file not found: {arg}",
                   "give a path to a YAML file, a shipped lab (`socklab labs`) or a lab that is "
                   "up (`socklab ls`)")


@contextmanager
def progress_display(enabled: bool = True) -> Iterator[Any]:
    """A live progress display on stderr; yields the ``progress(phase, done, total)`` callback."""
    bar = Progress(SpinnerColumn(), TextColumn("{task.description:<16}"), BarColumn(),
                   MofNCompleteColumn(), console=render.err, transient=True,
                   disable=not enabled)
    tasks: dict[str, Any] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done)

    with bar:
        yield progress


def build_line(line: str) -> None:
    render.err.print(f"[dim]image: {escape(line)}[/]")
