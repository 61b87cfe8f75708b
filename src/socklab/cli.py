"""The ``socklab`` command: parse arguments, call the library, render. No logic of its own."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from socklab import render
from socklab.catalog import default_lab_file, find_lab_file, shipped_labs
from socklab.errors import LabError
from socklab.lab import Lab, down_all, running_labs
from socklab.scenario.results import StepResult
from socklab.topology import json_schema, load_topology


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


def open_lab(arg: str) -> Lab:
    """A LAB argument: a topology file, a shipped lab's name, or a lab that is up."""
    path = find_lab_file(arg)
    if path is not None:
        return Lab.load(path)
    if "/" not in arg and not arg.endswith((".yml", ".yaml")):
        lab = Lab.named(arg)
        if lab.is_up():
            return lab
    raise LabError(f"topology file not found: {arg}",
                   "give a path to a YAML file, or a shipped lab (`socklab labs`)")


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


def _build_line(line: str) -> None:
    render.err.print(f"[dim]image: {escape(line)}[/]")


@app.command()
def validate(file: Annotated[str, typer.Argument(metavar="FILE")], as_json: JsonOpt = False) -> None:
    """Check a topology file; print every problem with its line and a hint (exit 2)."""
    path = find_lab_file(file)
    topo = load_topology(path or file)
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
def up(lab: LabArg, as_json: JsonOpt = False) -> None:
    """Start every node of a lab; returns when all run and their start commands are started."""
    the_lab = open_lab(lab)
    with progress_display(sys.stderr.isatty()) as progress:
        the_lab.up(progress=progress, on_build=_build_line)
    _print_status(the_lab, as_json)


@app.command()
def down(
    lab: Annotated[str | None, typer.Argument(metavar="[LAB]", help="topology file or lab name")] = None,
    name: Annotated[str | None, typer.Option("--lab", help="a lab's name (no file needed)")] = None,
    all_labs: Annotated[bool, typer.Option("--all", help="every socklab lab on this host")] = False,
) -> None:
    """Remove a lab's containers and networks by label. Idempotent."""
    if sum(x is not None and x is not False for x in (lab, name, all_labs)) != 1:
        raise LabError("give exactly one of LAB, --lab NAME or --all",
                       "e.g. `socklab down labs/hello.yml` or `socklab down --all`")
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
    path = find_lab_file(arg)
    if path is not None:
        return Lab.load(path)
    if arg.endswith((".yml", ".yaml")) or "/" in arg:
        gone = Lab.from_gone_file(arg)
        if gone is not None:
            return gone
        raise LabError(f"topology file not found: {arg}",
                       "to remove a lab whose file is gone use `socklab down --lab NAME` "
                       "(`socklab ls` lists them) or `socklab down --all`")
    return Lab.named(arg)


@app.command()
def status(lab: LabArg, as_json: JsonOpt = False) -> None:
    """The lab's nodes: container, state and addresses per network."""
    _print_status(open_lab(lab), as_json)


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
         "  ".join(f"{k}={v}" for k, v in n.networks.items())) for n in nodes
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
def exec_(lab: LabArg, node: Annotated[str, typer.Argument(metavar="NODE")],
          cmd: Annotated[list[str], typer.Argument(metavar="-- CMD...")]) -> None:
    """Run a command in a node (no shell); its output and exit code pass through."""
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise LabError("no command given", f"e.g. `socklab exec {lab} {node} -- ip addr`")
    result = open_lab(lab).node(node).exec(cmd)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    raise typer.Exit(result.exit_code)


@app.command()
def shell(lab: LabArg, node: Annotated[str, typer.Argument(metavar="NODE")]) -> None:
    """An interactive shell in a node (needs the docker CLI)."""
    target = open_lab(lab).node(node)
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise LabError("the docker CLI is not installed",
                       f"use `socklab exec {lab} {node} -- CMD` instead")
    os.execv(docker_cli, ["docker", "exec", "-it", target.container, "bash"])


@app.command()
def logs(lab: LabArg,
         node: Annotated[str | None, typer.Argument(metavar="[NODE]")] = None,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing")] = False,
         timeline: Annotated[bool, typer.Option(
             "--timeline", help="the apps' events of all nodes merged by time")] = False,
         as_json: Annotated[bool, typer.Option("--json", help="the timeline as JSON")] = False,
         ) -> None:
    """The output of a node's apps (every node's, prefixed with its name, without NODE)."""
    the_lab = open_lab(lab)
    targets = [the_lab.node(node)] if node else the_lab.nodes()
    if timeline or as_json:
        if follow:
            raise LabError("--timeline and --json do not combine with --follow",
                           "run `socklab logs LAB --timeline` again to see new events")
        _print_timeline(targets, as_json)
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


# -- socket state, connections, timeline, lookups and captures (issue 5) -------------

SOCKET_COLUMNS = ["Proto", "Recv-Q", "Send-Q", "Local Address", "Foreign Address", "State",
                  "PID/Program"]


def _table(title: str | None, columns: list[str], rows: list[tuple[Any, ...]]) -> Any:
    """A rich table whose cells never wrap (addresses and paths stay whole, as in netstat)."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", title_style="bold", header_style="bold",
              box=None, pad_edge=False)
    for col in columns:
        t.add_column(col, justify="right" if col.endswith("-Q") else "left", no_wrap=True)
    for row in rows:
        t.add_row(*(str(cell) if cell is not None else "" for cell in row))
    return t


def _print_wide(renderable: Any) -> None:
    """Print as wide as the content needs; the terminal wraps long lines, as with netstat."""
    from rich.console import Console

    Console(width=max(render.out.width, 250), highlight=False).print(renderable)


@app.command()
def sockets(
    lab: LabArg,
    nodes: Annotated[list[str] | None, typer.Argument(metavar="[NODE]...")] = None,
    proto: Annotated[str | None, typer.Option(
        help="tcp | udp | unix | raw (default: tcp and udp, like netstat -tuan)")] = None,
    state: Annotated[str | None, typer.Option(help="LISTEN, ESTABLISHED, TIME_WAIT...")] = None,
    names: Annotated[bool, typer.Option("--names", help="node names instead of lab IPs")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="refresh every second")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Every socket of the lab's nodes, like `netstat -tuanp` (all nodes read in parallel)."""
    from rich.console import Group
    from rich.live import Live

    from socklab.observe.sockets import SocketRow, address_names, filter_rows, with_names

    the_lab = open_lab(lab)
    filter_rows([], proto, state)  # a bad --proto or --state fails before any reading
    order = nodes or [s.node for s in the_lab.status() if s.state == "running"]
    lab_names = address_names(the_lab) if names else {}

    def snapshot() -> dict[str, list[SocketRow]]:
        rows = filter_rows(the_lab.sockets(order), proto, state)
        if proto is None:
            rows = [r for r in rows if r.kind in ("tcp", "udp")]
        grouped: dict[str, list[SocketRow]] = {n: [] for n in order}
        for r in with_names(rows, lab_names) if names else rows:
            grouped[r.node].append(r)
        return grouped

    def tables(grouped: dict[str, list[SocketRow]]) -> Group:
        out = []
        for node, rows in grouped.items():
            out.append(_table(node, SOCKET_COLUMNS, [
                (r.proto, r.recv_q, r.send_q, r.local, r.remote, r.state, r.owner) for r in rows
            ]) if rows else f"[bold]{node}[/]\n  (no sockets)")
        return Group(*out)

    if as_json:
        render.print_json({n: [r.as_dict() for r in rows] for n, rows in snapshot().items()})
    elif not watch:
        _print_wide(tables(snapshot()))
    else:
        with Live(tables(snapshot()), console=render.out, auto_refresh=False) as live:
            try:
                while True:
                    threading.Event().wait(1.0)
                    live.update(tables(snapshot()), refresh=True)
            except KeyboardInterrupt:
                pass


@app.command()
def connections(lab: LabArg, as_json: JsonOpt = False) -> None:
    """Who is connected to whom: ESTABLISHED TCP sockets matched end to end, and Mermaid."""
    from socklab.observe.connections import connections as matched
    from socklab.observe.connections import mermaid

    the_lab = open_lab(lab)
    order = [s.node for s in the_lab.status() if s.state == "running"]
    found = matched(the_lab.sockets(order))
    graph = mermaid(found, order)
    if as_json:
        render.print_json({"connections": [c.as_dict() for c in found], "mermaid": graph})
        return
    if found:
        _print_wide(_table(None, ["CLIENT", "LOCAL", "SERVER", "REMOTE", "PROGRAMS"], [
            (c.client.node, c.client.local, c.server.node, c.server.local,
             f"{c.client.program or '-'} → {c.server.program or '-'}") for c in found]))
    else:
        render.out.print("no established TCP connection between nodes of the lab")
    render.out.print("\n```mermaid\n" + escape(graph) + "\n```")


@app.command()
def resolve(lab: LabArg, node: Annotated[str, typer.Argument(metavar="NODE")],
            name: Annotated[str, typer.Argument(metavar="NAME", help="a name or an address")],
            every: Annotated[bool, typer.Option("--all", help="every socket type, reverse "
                                                "names of all addresses")] = False,
            as_json: JsonOpt = False) -> None:
    """The resolver's answers for NAME as seen from NODE (gethostbyname_ex, getaddrinfo...)."""
    from socklab.observe.resolver import resolve as lookup
    from socklab.observe.resolver import rows

    answer = lookup(open_lab(lab).node(node), name, every=every)
    if as_json:
        render.print_json(answer)
    else:
        _print_wide(_table(f"resolve {name} in {node}", ["CALL", "ARGUMENT", "ANSWER"],
                           rows(answer)))
    if not answer.get("resolved"):
        raise typer.Exit(1)


@app.command()
def capture(
    lab: LabArg,
    node: Annotated[str, typer.Argument(metavar="NODE")],
    output: Annotated[Path, typer.Option("--output", "-o", help="pcap file to write")],
    iface: Annotated[str, typer.Option(help="interface in the node")] = "any",
    bpf: Annotated[str, typer.Option("--filter", help="tcpdump filter, e.g. 'tcp port 5000'")
                   ] = "",
    count: Annotated[int | None, typer.Option(help="stop after N packets")] = None,
    seconds: Annotated[float | None, typer.Option(help="stop after S seconds")] = None,
    as_json: JsonOpt = False,
) -> None:
    """tcpdump in a node until --count, --seconds or Ctrl-C; the pcap is copied out and every
    TCP connection's handshake and teardown is summarized."""
    from socklab.observe.capture import capture as run_capture

    if count is not None and seconds is not None:
        raise LabError("give --count or --seconds, not both")
    target = open_lab(lab).node(node)
    until = f"{count} packets" if count else f"{seconds:g} s" if seconds else "Ctrl-C"
    result = run_capture(target, output, iface=iface, bpf=bpf, count=count, seconds=seconds,
                         on_ready=lambda: render.err.print(
                             f"capturing on {iface} in {node} until {until}..."))
    if as_json:
        render.print_json(result.as_dict())
        return
    render.out.print(f"{len(result.packets)} packets from {node} ({iface}) written to {output}")
    if result.conversations:
        _print_wide(_table(None, ["CONNECTION", "PACKETS", "DATA", "HANDSHAKE", "TEARDOWN",
                                  "OUTCOME"], [
            (f"{c.client} → {c.server}", c.packets, f"{c.payload} B", " ".join(c.handshake),
             ", ".join(c.teardown), c.outcome) for c in result.conversations]))
    if result.other:
        render.out.print("other: " + ", ".join(f"{v} {k}" for k, v in result.other.items()))


def _print_timeline(targets: list[Any], as_json: bool) -> None:
    from socklab.observe.timeline import timeline

    events = timeline(targets)
    if as_json:
        render.print_json([e.as_dict() for e in events])
        return

    def detail(fields: dict[str, Any]) -> str:
        text = " ".join(f"{k}={v}" for k, v in fields.items()
                        if v not in (None, "") and not isinstance(v, dict | list))
        return escape(text if len(text) <= 60 else text[:59] + "…")

    _print_wide(_table(None, ["TIME", "NODE", "APP", "EVENT", "PEER", "DETAIL"], [
        (e.time[11:], e.node, e.app, e.event, e.peer or "", detail(e.fields)) for e in events]))


@app.command("run")
def run_(
    lab: Annotated[str | None, typer.Argument(metavar="[LAB]", help="topology file or shipped "
                                              "lab; default ./socklab.yml, else the echo lab")] = None,
    scenario: Annotated[str | None, typer.Option(help="scenario name (default: 'default')")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="leave the lab up afterwards")] = False,
    report: Annotated[Path | None, typer.Option(help="run folder (default runs/LAB-TIME)")] = None,
    junit: Annotated[Path | None, typer.Option(help="also write JUnit XML here")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Deploy, run a scenario's steps, collect, report, destroy. Exit 1 if a step failed."""
    from socklab.scenario import run as scenario_run

    path = find_lab_file(lab) if lab else default_lab_file()
    if path is None:
        raise LabError(f"topology file not found: {lab}",
                       "give a path to a YAML file, or a shipped lab (`socklab labs`)")
    the_lab = Lab.load(path)
    live = not as_json
    status = render.out.status("deploying", spinner="dots")
    if live and render.out.is_terminal:
        status.start()

    def step_started(index: str, title: str) -> None:
        status.update(f"step {index}: {escape(title)}")

    def step_done(step: StepResult) -> None:
        if not live:
            return
        mark = "[green]✓[/]" if step.passed else "[red]✗[/]"
        indent = "  " * step.index.count(".")
        render.out.print(f"{indent}{mark} {step.index} {escape(step.title)} "
                         f"[dim]({step.duration:.2f} s)[/]")
        if not step.passed:
            render.out.print(f"{indent}    [red]{escape(step.detail)}[/]")

    def deploy_progress(phase: str, done: int, total: int) -> None:
        status.update(f"deploying {the_lab.name}: {phase} {done}/{total}")

    try:
        result = scenario_run.run(
            the_lab, scenario, run_dir=report, keep=keep, junit=junit,
            progress=deploy_progress, on_step_start=step_started, on_step=step_done,
        )
    finally:
        status.stop()
    if as_json:
        sys.stdout.write(result.to_json() + "\n")
    else:
        steps = result.all_steps()
        passed = sum(s.passed for s in steps)
        verdict = "[green]PASSED[/]" if result.passed else "[red]FAILED[/]"
        render.out.print(f"{verdict} {the_lab.name}/{result.scenario}: {passed} of {len(steps)} "
                         f"steps passed in {result.duration:.1f} s")
        render.out.print(f"report: {Path(result.run_dir) / 'report.html'}")
        if keep:
            render.out.print(f"the lab is still up: `socklab down --lab {the_lab.name}`")
    raise typer.Exit(0 if result.passed else 1)


@app.command("labs")
def labs_(as_json: JsonOpt = False) -> None:
    """The labs shipped with socklab."""
    found = shipped_labs()
    if as_json:
        render.print_json([{"name": s.name, "path": str(s.path), "description": s.description}
                           for s in found])
    else:
        render.table(None, ["LAB", "DESCRIPTION"], [(s.name, s.description) for s in found])


@image_app.command("build")
def image_build(
    method: Annotated[str, typer.Option(help="auto | pull | bootstrap")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="rebuild even when present")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build the node image (bootstrap: a Debian rootfs from this host's apt sources)."""
    from socklab.orchestrator import image
    from socklab.orchestrator.engine import default_engine

    if method not in ("auto", "pull", "bootstrap"):
        raise LabError(f"unknown method '{method}'", "use auto, pull or bootstrap")
    result = image.build(default_engine(), method, force=force, on_progress=_build_line)  # type: ignore[arg-type]
    if as_json:
        render.print_json({"tag": result.tag, "method": result.method, "built": result.built,
                           "seconds": round(result.seconds, 1)})
    elif result.built:
        render.out.print(f"built {result.tag} ({result.method}) in {result.seconds:.1f} s")
    else:
        render.out.print(f"{result.tag} is up to date")


@image_app.command("status")
def image_status(as_json: JsonOpt = False) -> None:
    """Whether the node image for this version of socklab is present."""
    from socklab.orchestrator import image
    from socklab.orchestrator.engine import default_engine

    st = image.status(default_engine())
    data = {"tag": st.tag, "present": st.present, "size_mb": round((st.size_bytes or 0) / 1e6, 1),
            "created": st.created, "base_present": st.base_present}
    if as_json:
        render.print_json(data)
    else:
        render.table(None, ["TAG", "PRESENT", "SIZE (MB)", "CREATED"],
                     [(st.tag, "yes" if st.present else "no — `socklab image build`",
                       data["size_mb"] if st.present else "", st.created or "")])


def main() -> None:
    app()


if __name__ == "__main__":
    main()
