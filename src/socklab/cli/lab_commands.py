"""Commands on a lab's life: validate, schema, up, down, status, ls, exec, shell, logs."""

import os
import shutil
import stat
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from socklab import interrupt, render
from socklab.cli.app import (
    EngineOpt,
    JsonOpt,
    LabArg,
    LabOpt,
    NodeArg,
    OptionalLabArg,
    app,
    build_line,
    engine_named,
    lab_first,
    open_lab,
    progress_display,
)
from socklab.errors import ExecTimeout, LabError

if TYPE_CHECKING:
    from socklab.lab import Lab, LabNode


@app.command()
def validate(
    file: Annotated[str, typer.Argument(metavar="FILE", help="a topology file or a shipped lab's name")],
    as_json: JsonOpt = False,
) -> None:
    """Check a topology file; print every problem with its line and a hint (exit 2)."""
    from socklab.catalog import find_lab_file
    from socklab.topology import load_topology
    from socklab.topology.errors import Problem

    path = find_lab_file(file)
    try:
        topo = load_topology(path or file)
        if any(n.image for n in topo.nodes.values()):
            _check_images(Path(path or file))
    except LabError as exc:
        if not as_json:
            raise
        problems = getattr(exc, "problems", None) or [
            Problem(str(path or file), None, "", exc.message, exc.hint)
        ]
        render.print_json(
            {
                "valid": False,
                "problems": [
                    {"file": p.file, "line": p.line, "path": p.path, "message": p.message, "hint": p.hint}
                    for p in problems
                ],
            }
        )
        raise typer.Exit(exc.exit_code) from None
    summary = {
        "lab": topo.name,
        "networks": len(topo.networks),
        "nodes": len(topo.instances()),
        "scenarios": sorted(topo.scenarios),
    }
    if as_json:
        render.print_json({"valid": True, **summary})
    else:
        render.out.print(
            f"[green]✓[/] {topo.name}: {render.plural(len(topo.networks), 'network')}, "
            f"{render.plural(len(topo.instances()), 'node')}, "
            f"{render.plural(len(topo.scenarios), 'scenario')}"
        )


def _check_images(path: Path) -> None:
    """The nodes' own images as `up` would find them, when a Docker daemon answers (else
    they go unchecked): TopologyError for an image that is not here, or one without python3
    for a node with `start:`."""
    from socklab.errors import DaemonUnavailable
    from socklab.lab import Lab
    from socklab.orchestrator.engine import default_engine
    from socklab.topology import TopologyError

    try:
        engine = default_engine()
    except DaemonUnavailable:
        return
    problems = Lab.load(path, engine=engine).image_problems()
    if problems:
        raise TopologyError(problems)


@app.command()
def schema() -> None:
    """Print the topology format's JSON Schema (for editors)."""
    from socklab.topology import json_schema

    render.print_json(json_schema())


@app.command()
def up(lab: LabArg, engine: EngineOpt = "docker", as_json: JsonOpt = False) -> None:
    """Start every node of a lab; returns when all run and their start commands are started."""
    the_lab = open_lab(lab, engine=engine_named(engine))
    try:
        with progress_display(sys.stderr.isatty()) as progress:
            the_lab.up(progress=progress, on_build=build_line)
    except KeyboardInterrupt as exc:  # up() removed what it had made before it let go
        render.err.print(
            f"interrupted ({interrupt.describe(exc)}): lab '{the_lab.name}' was removed", markup=False
        )
        raise typer.Exit(interrupt.exit_code(exc)) from None
    _print_status(the_lab, as_json)


@app.command()
def down(
    lab: Annotated[str | None, typer.Argument(metavar="LAB", help="topology file or lab name")] = None,
    name: Annotated[
        str | None, typer.Option("--lab", metavar="NAME", help="a lab's name (no file needed)")
    ] = None,
    all_labs: Annotated[bool, typer.Option("--all", help="every socklab lab on this host")] = False,
) -> None:
    """Remove a lab's containers and networks by label. Idempotent."""
    if sum(x is not None and x is not False for x in (lab, name, all_labs)) != 1:
        raise LabError(
            "give exactly one of LAB, --lab NAME or --all",
            "name the lab's file, e.g. `socklab down labs/hello.yml` "
            "(`socklab ls` lists the labs that are up)",
        )
    from socklab.lab import Lab, down_all

    if all_labs:
        containers, networks = down_all()
        target = "all labs"
    else:
        the_lab = Lab.up_as(name) if name else Lab.to_remove(lab or "")
        containers, networks = the_lab.down()
        target = f"lab '{the_lab.name}'"
    if containers or networks:
        render.out.print(
            f"removed {render.plural(containers, 'container')} and "
            f"{render.plural(networks, 'network')} of {target}"
        )
    else:
        render.out.print(f"nothing to remove: {target} is not up")


@app.command()
def status(lab: OptionalLabArg = None, name: LabOpt = None, as_json: JsonOpt = False) -> None:
    """The lab's nodes in topology order: container, state, addresses per network, and apps
    (listening, running, exited with their code)."""
    lab_arg, rest = lab_first(name, [lab] if lab else [], "status LAB")
    if rest:
        raise LabError("give LAB or --lab NAME, not both", f"e.g. `socklab status --lab {name}`")
    _print_status(open_lab(lab_arg), as_json)


def _print_status(lab: "Lab", as_json: bool) -> None:
    nodes = lab.status(apps=True)
    if as_json:
        render.print_json([n.as_dict() for n in nodes])
        return
    if not nodes:
        render.out.print(f"lab '{lab.name}' is not up")
        return
    render.table(
        f"lab {lab.name}",
        ["NODE", "CONTAINER", "STATE", "NETWORKS", "APPS"],
        [
            (
                n.node,
                n.container,
                render.state(n.state),
                "  ".join(
                    f"{k}={v}" + (f" {n.ipv6[k]}" if k in n.ipv6 else "") for k, v in n.networks.items()
                ),
                "-" if n.apps is None else ", ".join(map(str, n.apps)),
            )
            for n in nodes
        ],
    )


@app.command("ls")
def list_labs(as_json: JsonOpt = False) -> None:
    """Labs that are up on this host."""
    from socklab.lab import running_labs

    found = running_labs()
    if as_json:
        render.print_json([{"lab": k, **v} for k, v in found.items()])
    elif not found:
        render.out.print("no lab is up")
    else:
        render.table(
            None,
            ["LAB", "NODES", "RUNNING", "NETWORKS"],
            [(k, v["nodes"], v["running"], v["networks"]) for k, v in found.items()],
        )


@app.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
def exec_(
    lab: LabArg,
    node: NodeArg,
    cmd: Annotated[
        list[str], typer.Argument(metavar="-- CMD", help="the command and its arguments (no shell)")
    ],
    name: LabOpt = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            help="kill the command after this long (exit 124)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a command in a node (no shell); its output and exit code pass through, piped
    input goes to it. NODE may select several (a replicated node's name, a glob): each
    runs it, its lines prefixed with its name."""
    lab_arg, args = lab_first(name, [lab, node, *cmd], "exec LAB NODE -- CMD")
    node_arg = args[0]
    if node_arg == "--":
        raise LabError("missing argument NODE", EXEC_USAGE)
    after, command = _options_after_node(args[1:])
    timeout = after if after is not None else timeout
    if not command:
        raise LabError("no command given", f"e.g. `socklab exec {lab_arg} {node_arg} -- ip addr`")
    if timeout is not None and timeout <= 0:
        raise LabError(f"--timeout must be more than 0 seconds, not {timeout:g}", "e.g. --timeout 5")
    targets = open_lab(lab_arg, up=True).nodes(node_arg)
    stdin = _piped_stdin()
    if len(targets) == 1:
        try:
            result = targets[0].exec(command, timeout=timeout, stdin=stdin)
        except ExecTimeout as exc:
            sys.stdout.write(exc.stdout)
            sys.stderr.write(exc.stderr)
            raise
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        raise typer.Exit(result.exit_code)
    with ThreadPoolExecutor(min(16, len(targets))) as pool:
        results = list(pool.map(lambda t: _exec_or_error(t, command, timeout, stdin), targets))
    width = max(len(t.name) for t in targets)
    codes = []
    for t, (code, out, err) in zip(targets, results, strict=True):
        for line in out.splitlines():
            sys.stdout.write(f"{t.name:<{width}} | {line}\n")
        for line in err.splitlines():
            sys.stderr.write(f"{t.name:<{width}} | {line}\n")
        codes.append(code)
    raise typer.Exit(next((c for c in codes if c), 0))


EXEC_USAGE = "usage: socklab exec [OPTIONS] LAB NODE -- CMD... (`socklab exec --help` for more)"


def _options_after_node(rest: list[str]) -> tuple[float | None, list[str]]:
    """``--timeout S`` written after NODE (``exec LAB NODE --timeout 5 -- CMD``, as well as
    before LAB), and the command that follows."""
    timeout = None
    while rest and rest[0].startswith("--") and rest[0] != "--":
        option, eq, value = rest[0].partition("=")
        if option != "--timeout":
            raise LabError(f"no such option: {option}", EXEC_USAGE)
        if not eq:
            if len(rest) < 2:
                raise LabError("option --timeout requires an argument", EXEC_USAGE)
            value, rest = rest[1], rest[1:]
        rest = rest[1:]
        try:
            timeout = float(value)
        except ValueError:
            raise LabError(f"--timeout takes seconds, not '{value}'", EXEC_USAGE) from None
    return timeout, rest[1:] if rest[:1] == ["--"] else rest


def _piped_stdin() -> bytes | None:
    """What is piped or redirected into socklab (never a terminal's, nor an idle stdin)."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return None
    return sys.stdin.buffer.read() if stat.S_ISFIFO(mode) or stat.S_ISREG(mode) else None


def _exec_or_error(
    target: "LabNode", command: list[str], timeout: float | None, stdin: bytes | None
) -> tuple[int, str, str]:
    """One node's run of a command for a multi-node exec: its exit code and output (an
    error as its stderr and exit code)."""
    try:
        result = target.exec(command, timeout=timeout, stdin=stdin)
    except ExecTimeout as exc:
        return exc.exit_code, exc.stdout, exc.stderr + exc.message + "\n"
    except LabError as exc:
        return exc.exit_code, "", exc.message + "\n"
    return result.exit_code, result.stdout, result.stderr


@app.command()
def shell(lab: LabArg, node: NodeArg) -> None:
    """An interactive shell in a node (needs the docker CLI)."""
    target = open_lab(lab, up=True).node(node)
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise LabError("the docker CLI is not installed", f"use `socklab exec {lab} {node} -- CMD` instead")
    tty = "-it" if sys.stdin.isatty() else "-i"  # a pipe or a file gives the shell its commands
    os.execv(docker_cli, ["docker", "exec", tty, target.container, "bash"])


@app.command()
def logs(
    lab: OptionalLabArg = None,
    node: Annotated[
        str | None,
        typer.Argument(
            metavar="NODE", help="only these nodes' output (a node, a replicated node's name, a glob)"
        ),
    ] = None,
    name: LabOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing")] = False,
    timeline: Annotated[
        bool, typer.Option("--timeline", help="the apps' events of all nodes merged by time")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the timeline as JSON")] = False,
) -> None:
    """The output of a node's apps (every node's, prefixed with its name, without NODE)."""
    lab_arg, rest = lab_first(name, [a for a in (lab, node) if a], "logs LAB [NODE]")
    if len(rest) > 1:
        raise LabError("give one NODE at most", "a glob takes several: `socklab logs LAB 'client-*'`")
    node = rest[0] if rest else None
    the_lab = open_lab(lab_arg, up=True)
    targets = the_lab.nodes(node)
    if timeline or as_json:
        if follow:
            raise LabError(
                "--timeline and --json do not combine with --follow",
                "run `socklab logs LAB --timeline` again to see new events",
            )
        _print_timeline(the_lab, targets, as_json)
        return
    width = max((len(t.name) for t in targets), default=0)
    one = len(targets) == 1 and node is not None

    def prefix(name: str, line: str) -> str:
        return line if one else f"{name:<{width}} | {line}"

    if not follow:
        for t in targets:
            for line in t.logs().splitlines():
                sys.stdout.write(prefix(t.name, line) + "\n")
        return
    for name, line in the_lab.follow(node):
        sys.stdout.write(prefix(name, line) + "\n")
        sys.stdout.flush()


def _print_timeline(lab: "Lab", targets: list[Any], as_json: bool) -> None:
    from socklab.observe.timeline import fields_text

    events = lab.events([t.name for t in targets])
    if as_json:
        render.print_json([e.as_dict() for e in events])
        return
    render.print_wide(
        render.wide_table(
            None,
            ["TIME", "NODE", "APP", "EVENT", "PEER", "DETAIL"],
            [(e.time[11:], e.node, e.app, e.event, e.peer or "", fields_text(e.fields, 60)) for e in events],
        )
    )
