"""Commands on a lab's life: validate, schema, up, down, status, ls, exec, shell, logs, labs."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from typing import Annotated, Any

import typer

from socklab import interrupt, render
from socklab.catalog import find_lab_file, shipped_labs
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
from socklab.errors import LabError
from socklab.lab import Lab, down_all, running_labs
from socklab.topology import json_schema, load_topology
from socklab.topology.errors import Problem


@app.command()
def validate(file: Annotated[str, typer.Argument(
                 metavar="FILE", help="a topology file or a shipped lab's name")],
             as_json: JsonOpt = False) -> None:
    """Check a topology file; print every problem with its line and a hint (exit 2)."""
    path = find_lab_file(file)
    try:
        topo = load_topology(path or file)
    except LabError as exc:
        if not as_json:
            raise
        problems = getattr(exc, "problems", None) or [
            Problem(str(path or file), None, "", exc.message, exc.hint)]
        render.print_json({"valid": False, "problems": [
            {"file": p.file, "line": p.line, "path": p.path, "message": p.message, "hint": p.hint}
            for p in problems]})
        raise typer.Exit(exc.exit_code) from None
    summary = {"lab": topo.name, "networks": len(topo.networks),
               "nodes": len(topo.instances()), "scenarios": sorted(topo.scenarios)}
    if as_json:
        render.print_json({"valid": True, **summary})
    else:
        render.out.print(f"[green]✓[/] {topo.name}: {render.plural(len(topo.networks), 'network')}, "
                         f"{render.plural(len(topo.instances()), 'node')}, "
                         f"{render.plural(len(topo.scenarios), 'scenario')}")


@app.command()
def schema() -> None:
    """Print the topology format's JSON Schema (for editors)."""
    render.print_json(json_schema())


@app.command()
def up(lab: LabArg, engine: EngineOpt = "docker", as_json: JsonOpt = False) -> None:
    """Start every node of a lab; returns when all run and their start commands are started."""
    the_lab = open_lab(lab, engine=engine_named(engine))
    try:
        with progress_display(sys.stderr.isatty()) as progress:
            the_lab.up(progress=progress, on_build=build_line)
    except KeyboardInterrupt as exc:  # up() removed what it had made before it let go
        render.err.print(f"interrupted ({interrupt.describe(exc)}): lab '{the_lab.name}' was "
                         "removed", markup=False)
        raise typer.Exit(interrupt.exit_code(exc)) from None
    _print_status(the_lab, as_json)


@app.command()
def down(
    lab: Annotated[str | None, typer.Argument(metavar="LAB", help="topology file or lab name")] = None,
    name: Annotated[str | None, typer.Option(
        "--lab", metavar="NAME", help="a lab's name (no file needed)")] = None,
    all_labs: Annotated[bool, typer.Option("--all", help="every socklab lab on this host")] = False,
) -> None:
    """Remove a lab's containers and networks by label. Idempotent."""
    if sum(x is not None and x is not False for x in (lab, name, all_labs)) != 1:
        raise LabError("give exactly one of LAB, --lab NAME or --all",
                       "name the lab's file, e.g. `socklab down labs/hello.yml` "
                       "(`socklab ls` lists the labs that are up)")
    if all_labs:
        containers, networks = down_all()
        target = "all labs"
    else:
        the_lab = Lab.named(name) if name else _lab_for_down(lab or "")
        containers, networks = the_lab.down()
        target = f"lab '{the_lab.name}'"
    if containers or networks:
        render.out.print(f"removed {render.plural(containers, 'container')} and "
                         f"{render.plural(networks, 'network')} of {target}")
    else:
        render.out.print(f"nothing to remove: {target} is not up")


def _lab_for_down(arg: str) -> Lab:
    """The lab brought up from this file (whatever the file says now), else the one it names."""
    path = find_lab_file(arg)
    if path is not None or arg.endswith((".yml", ".yaml")) or "/" in arg:
        up_from_file = Lab.brought_up_from(path or arg)
        if up_from_file is not None:
            return up_from_file
        if path is not None:
            return Lab.load(path)
        raise LabError(f"topology file not found: {arg}",
                       "to remove a lab whose file is gone use `socklab down --lab NAME` "
                       "(`socklab ls` lists them) or `socklab down --all`")
    return Lab.named(arg)


@app.command()
def status(lab: OptionalLabArg = None, name: LabOpt = None, as_json: JsonOpt = False) -> None:
    """The lab's nodes: container, state and addresses per network."""
    lab_arg, rest = lab_first(name, [lab] if lab else [], "status LAB")
    if rest:
        raise LabError("give LAB or --lab NAME, not both", f"e.g. `socklab status --lab {name}`")
    _print_status(open_lab(lab_arg), as_json)


def _print_status(lab: Lab, as_json: bool) -> None:
    nodes = lab.status()
    if as_json:
        render.print_json([n.as_dict() for n in nodes])
        return
    if not nodes:
        render.out.print(f"lab '{lab.name}' is not up")
        return
    render.table(f"lab {lab.name}", ["NODE", "CONTAINER", "STATE", "NETWORKS"], [
        (n.node, n.container, render.state(n.state),
         "  ".join(f"{k}={v}" + (f" {n.ipv6[k]}" if k in n.ipv6 else "")
                   for k, v in n.networks.items())) for n in nodes
    ])


@app.command("ls")
def list_labs(as_json: JsonOpt = False) -> None:
    """Labs that are up on this host."""
    found = running_labs()
    if as_json:
        render.print_json([{"lab": k, **v} for k, v in found.items()])
    elif not found:
        render.out.print("no lab is up")
    else:
        render.table(None, ["LAB", "NODES", "RUNNING", "NETWORKS"],
                     [(k, v["nodes"], v["running"], v["networks"]) for k, v in found.items()])


@app.command("exec", context_settings={"ignore_unknown_options": True,
                                       "allow_interspersed_args": False})
def exec_(lab: LabArg, node: NodeArg,
          cmd: Annotated[list[str], typer.Argument(
              metavar="-- CMD", help="the command and its arguments (no shell)")],
          name: LabOpt = None) -> None:
    """Run a command in a node (no shell); its output and exit code pass through."""
    lab_arg, args = lab_first(name, [lab, node, *cmd], "exec LAB NODE -- CMD")
    node_arg, command = args[0], args[1:]
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise LabError("no command given",
                       f"e.g. `socklab exec {lab_arg} {node_arg} -- ip addr`")
    result = open_lab(lab_arg, up=True).node(node_arg).exec(command)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    raise typer.Exit(result.exit_code)


@app.command()
def shell(lab: LabArg, node: NodeArg) -> None:
    """An interactive shell in a node (needs the docker CLI)."""
    target = open_lab(lab, up=True).node(node)
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise LabError("the docker CLI is not installed",
                       f"use `socklab exec {lab} {node} -- CMD` instead")
    tty = "-it" if sys.stdin.isatty() else "-i"  # a pipe or a file gives the shell its commands
    os.execv(docker_cli, ["docker", "exec", tty, target.container, "bash"])


@app.command()
def logs(lab: LabArg,
         node: Annotated[str | None, typer.Argument(metavar="NODE", help="only this node's output")] = None,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing")] = False,
         timeline: Annotated[bool, typer.Option(
             "--timeline", help="the apps' events of all nodes merged by time")] = False,
         as_json: Annotated[bool, typer.Option("--json", help="the timeline as JSON")] = False,
         ) -> None:
    """The output of a node's apps (every node's, prefixed with its name, without NODE)."""
    the_lab = open_lab(lab, up=True)
    targets = [the_lab.node(node)] if node else the_lab.nodes()
    if timeline or as_json:
        if follow:
            raise LabError("--timeline and --json do not combine with --follow",
                           "run `socklab logs LAB --timeline` again to see new events")
        _print_timeline(the_lab, targets, as_json)
        return
    width = max((len(t.name) for t in targets), default=0)

    def prefix(name: str, line: str) -> str:
        return line if node else f"{name:<{width}} | {line}"

    if not follow:
        for t in targets:
            for line in t.logs().splitlines():
                sys.stdout.write(prefix(t.name, line) + "\n")
        return
    lock = threading.Lock()

    def pump(t: Any) -> None:
        for line in t.follow_logs():
            with lock:
                sys.stdout.write(prefix(t.name, line) + "\n")
                sys.stdout.flush()

    threads = [threading.Thread(target=pump, args=(t,), daemon=True) for t in targets]
    for th in threads:
        th.start()
    for th in threads:
        while th.is_alive():
            th.join(0.2)


@app.command("labs")
def labs_(as_json: JsonOpt = False) -> None:
    """The labs shipped with socklab."""
    found = shipped_labs()
    if as_json:
        render.print_json([{"name": s.name, "path": str(s.path), "description": s.description}
                           for s in found])
    else:
        render.table(None, ["LAB", "DESCRIPTION"], [(s.name, s.description) for s in found])


def _print_timeline(lab: Lab, targets: list[Any], as_json: bool) -> None:
    events = lab.events([t.name for t in targets])
    if as_json:
        render.print_json([e.as_dict() for e in events])
        return

    def detail(fields: dict[str, Any]) -> str:
        text = " ".join(f"{k}={v}" for k, v in fields.items()
                        if v not in (None, "") and not isinstance(v, dict | list))
        return text if len(text) <= 60 else text[:59] + "…"

    render.print_wide(render.wide_table(None, ["TIME", "NODE", "APP", "EVENT", "PEER", "DETAIL"], [
        (e.time[11:], e.node, e.app, e.event, e.peer or "", detail(e.fields)) for e in events]))
