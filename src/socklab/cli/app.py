"""The typer application, its one error handler, and what every command shares."""

import difflib
import os
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
import typer.core
from rich.markup import escape

from socklab import interrupt, render
from socklab.errors import LabError

if TYPE_CHECKING:  # the command modules import what a command needs when it runs: `socklab
    # --help` and `socklab validate` never load docker, requests or the orchestrator
    from socklab.lab import Lab
    from socklab.orchestrator.engine_api import Engine

#: The CLI framework's usage error (click's, vendored by recent typer): BadParameter's base.
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _Group(typer.core.TyperGroup):
    """Turns every LabError and usage error into one line and a hint with its exit code;
    never a traceback, nor the framework's multi-line box."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except UsageError as exc:
            _usage_error(exc)

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain_flags(command.get_params(ctx))
            if command.short_help is None and command.help:  # the list shows the whole first
                command.short_help = command.help.split("\n\n")[0]  # paragraph, not 45 chars
        return command

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            _usage_error(exc)
        except LabError as exc:
            _debug_traceback(ctx)
            render.error(exc.message, exc.hint)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            render.err.print(f"interrupted ({interrupt.describe(exc)})", markup=False)
            raise typer.Exit(interrupt.exit_code(exc)) from None
        except BrokenPipeError:  # `socklab logs LAB | head`: the reader left, nothing is wrong
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except Exception as exc:
            if isinstance(exc, typer.Exit | typer.Abort) or hasattr(exc, "exit_code"):
                raise  # the CLI framework's own exits and usage errors
            _debug_traceback(ctx)
            render.error(
                f"unexpected {type(exc).__name__}: {exc}",
                "run again with --debug for the traceback, and report it",
            )
            raise typer.Exit(1) from None


def _usage_error(exc: Any) -> NoReturn:
    """One line for a usage error (a missing argument, an unknown option...) and a hint with
    the command's usage; ``socklab`` alone still prints the help."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        raise exc
    text, _, suggestion = exc.format_message().partition(". Did you mean ")
    text = re.sub(r"\s*\(Possible options: .*\)$", "", text)
    message = re.sub(r"'(-*\w[\w.-]*)'", r"\1", text).rstrip(".")  # 'LAB' -> LAB
    message = message[:1].lower() + message[1:]
    option, possibilities = getattr(exc, "option_name", ""), getattr(exc, "possibilities", None)
    extra = re.fullmatch(r"got unexpected extra argument(?:\(s\)|s)? \((--[\w-]+).*\)", message)
    if extra and exc.ctx is not None:  # a command that takes negative numbers (`delay n -5`)
        option = extra.group(1)
        message = f"no such option: {option}"
        possibilities = [
            o for p in exc.ctx.command.params for o in getattr(p, "opts", []) if o.startswith("--")
        ]
    close = difflib.get_close_matches(option, possibilities or [], n=1)
    suggestion = close[0] if close else suggestion.rstrip("?").strip("'")
    hint = f"did you mean {suggestion}? " if suggestion else ""
    ctx = exc.ctx
    if ctx is not None:
        usage = re.sub(r"\{([^}]*)\}", r"\1", ctx.get_usage()).removeprefix("Usage: ")
        path = re.sub(r"\{([^}]*)\}", r"\1", ctx.command_path)
        hint += f"usage: {usage} (`{path} --help` for more)"
    render.error(message, hint or None)
    raise typer.Exit(2)


def _plain_flags(params: list[Any]) -> list[Any]:
    """Flags show no value placeholder in the help (``--keep``, not ``--keep <bool>``), and
    an argument is named in capitals (``A``, not ``a``)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif param.param_type_name == "argument" and param.metavar is None and param.name:
            param.metavar = param.name.upper()
    return params


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        render.out.print(f"socklab {version('socklab')}")
        raise typer.Exit(0)


def _debug_traceback(ctx: Any) -> None:
    if (ctx.obj or {}).get("debug") or os.environ.get("SOCKLAB_DEBUG"):
        traceback.print_exc()


app = typer.Typer(
    cls=_Group,
    rich_markup_mode=None,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="A containerized multi-node sockets lab.",
)


def command_group(name: str, help: str, **options: Any) -> typer.Typer:
    """A group of subcommands (``socklab image ...``) with the app's error handling and plain
    help: typer's rich help would import markdown-it and rich.traceback on every start."""
    group = typer.Typer(cls=_Group, rich_markup_mode=None, help=help, **options)
    app.add_typer(group, name=name)
    return group


image_app = command_group("image", "Build or inspect the node image.", no_args_is_help=True)

LabArg = Annotated[
    str,
    typer.Argument(metavar="LAB", help="topology file, shipped lab name, or the name of a lab that is up"),
]
NodeArg = Annotated[
    str,
    typer.Argument(metavar="NODE", help="a node of the lab, e.g. client-1 (`socklab status LAB` lists them)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
OptionalLabArg = Annotated[
    str | None,
    typer.Argument(
        metavar="LAB",
        help="topology file, shipped lab name, or the name of a lab that is up (or give --lab NAME)",
        show_default=False,
    ),
]
LabOpt = Annotated[
    str | None,
    typer.Option(
        "--lab",
        metavar="NAME",
        help="a lab that is up, by name (or its docker-compose project or stack name); then LAB is left out",
    ),
]


def lab_first(name: str | None, args: list[str], usage: str) -> tuple[str, list[str]]:
    """The LAB of a command that takes ``LAB ARGS...`` or ``--lab NAME ARGS...``, and the
    arguments after it."""
    if name is not None:
        return name, args
    if not args:
        raise LabError("no LAB given", f"e.g. `socklab {usage}` or `--lab NAME`")
    return args[0], args[1:]


@app.callback()
def _main(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print socklab's version")
    ] = False,
) -> None:
    ctx.obj = {"debug": debug}


EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        metavar="docker|swarm",
        help="docker: this host's Docker engine; swarm: a stack on the Swarm this host manages",
    ),
]


def engine_named(name: str) -> "Engine | None":
    """The engine of an ``--engine`` option (None: the default, the local Docker engine)."""
    if name == "docker":
        return None
    if name == "swarm":
        from socklab.orchestrator.engine_swarm import swarm_engine

        return swarm_engine()
    raise LabError(f"unknown engine '{name}'", "use docker (the default) or swarm")


def open_lab(arg: str, *, up: bool = False, engine: "Engine | None" = None) -> "Lab":
    """A LAB argument (see :meth:`Lab.open`)."""
    from socklab.lab import Lab

    return Lab.open(arg, up=up, engine=engine)


@contextmanager
def progress_display(enabled: bool = True) -> Iterator[Any]:
    """A live progress display on stderr; yields the ``progress(phase, done, total)`` callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=render.err,
        transient=True,
        disable=not enabled,
    )
    tasks: dict[str, Any] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done)

    with bar:
        yield progress


def build_line(line: str) -> None:
    render.err.print(f"[dim]image: {escape(line)}[/]")
