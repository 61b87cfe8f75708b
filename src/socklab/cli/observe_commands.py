"""Commands that look into a running lab: sockets, connections, resolve, capture (and the timeline)."""

import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from socklab import render
from socklab.cli.app import JsonOpt, LabArg, LabOpt, NodeArg, OptionalLabArg, app, lab_first, open_lab
from socklab.errors import LabError

SOCKET_COLUMNS = ["Proto", "Recv-Q", "Send-Q", "Local Address", "Foreign Address", "State", "PID/Program"]


@app.command()
def sockets(
    lab: OptionalLabArg = None,
    nodes: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="NODE",
            help="only these nodes: names, replicated nodes' names, globs (default: all running nodes)",
        ),
    ] = None,
    name: LabOpt = None,
    proto: Annotated[
        str | None,
        typer.Option(
            metavar="PROTO", help="tcp | udp | unix | raw (default: tcp and udp, like netstat -tuan)"
        ),
    ] = None,
    state: Annotated[
        str | None, typer.Option(metavar="STATE", help="LISTEN, ESTABLISHED, TIME_WAIT...")
    ] = None,
    names: Annotated[bool, typer.Option("--names", help="node names instead of lab IPs")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="refresh every second")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Every socket of the lab's nodes, like `netstat -tuanp` (all nodes read in parallel)."""
    from rich.console import Group
    from rich.live import Live

    from socklab.observe.sockets import SocketRow, filter_rows, with_names

    lab_arg, nodes = lab_first(name, ([lab] if lab else []) + (nodes or []), "sockets LAB")
    the_lab = open_lab(lab_arg, up=True)
    filter_rows([], proto, state)  # a bad --proto or --state fails before any reading
    order = (
        list(dict.fromkeys(n for sel in nodes for n in the_lab.select(sel)))
        if nodes
        else [s.node for s in the_lab.status() if s.state == "running"]
    )
    lab_names = the_lab.address_names() if names else {}

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
            out.append(
                render.wide_table(
                    node,
                    SOCKET_COLUMNS,
                    [(r.proto, r.recv_q, r.send_q, r.local, r.remote, r.state, r.owner) for r in rows],
                )
                if rows
                else f"[bold]{escape(node)}[/]\n  (no sockets)"
            )
        return Group(*out)

    if as_json:
        render.print_json({n: [r.as_dict() for r in rows] for n, rows in snapshot().items()})
    elif not watch:
        render.print_wide(tables(snapshot()))
    else:
        with Live(tables(snapshot()), console=render.out, auto_refresh=False) as live:
            try:
                while True:
                    threading.Event().wait(1.0)
                    live.update(tables(snapshot()), refresh=True)
            except KeyboardInterrupt:
                pass


@app.command()
def connections(lab: OptionalLabArg = None, name: LabOpt = None, as_json: JsonOpt = False) -> None:
    """Who is connected to whom: ESTABLISHED TCP sockets matched end to end, and Mermaid."""
    lab, rest = lab_first(name, [lab] if lab else [], "connections LAB")
    if rest:
        raise LabError("give LAB or --lab NAME, not both", f"e.g. `socklab connections --lab {name}`")
    from socklab.observe.connections import connections as matched
    from socklab.observe.connections import mermaid
    from socklab.observe.sockets import ip_port, unmapped

    the_lab = open_lab(lab, up=True)
    order = [s.node for s in the_lab.status() if s.state == "running"]
    found = matched(the_lab.sockets(order))
    graph = mermaid(found, order)
    if as_json:
        render.print_json({"connections": [c.as_dict() for c in found], "mermaid": graph})
        return
    if found:
        render.print_wide(
            render.wide_table(
                None,
                ["CLIENT", "LOCAL", "SERVER", "REMOTE", "PROGRAMS"],
                [
                    (
                        c.client.node,
                        ip_port(unmapped(c.client.local_ip), c.client.local_port),
                        c.server.node,
                        ip_port(unmapped(c.server.local_ip), c.server.local_port),
                        f"{c.client.program or '-'} → {c.server.program or '-'}",
                    )
                    for c in found
                ],
            )
        )
    else:
        render.out.print("no established TCP connection between nodes of the lab")
    render.out.print("\n```mermaid\n" + escape(graph) + "\n```")


@app.command()
def resolve(
    lab: LabArg,
    node: NodeArg,
    name: Annotated[str, typer.Argument(metavar="NAME", help="a name or an address")],
    every: Annotated[
        bool, typer.Option("--all", help="every socket type, reverse names of all addresses")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The resolver's answers for NAME as seen from NODE (gethostbyname_ex, getaddrinfo...)."""
    from socklab.observe.resolver import resolve as lookup
    from socklab.observe.resolver import rows

    the_lab = open_lab(lab, up=True)
    the_lab.node(node)  # a node that is not there is named with the lab's nodes
    answer = lookup(the_lab.tools_exec, node, name, every=every)
    if as_json:
        render.print_json(answer)
    else:
        render.print_wide(
            render.wide_table(f"resolve {name} in {node}", ["CALL", "ARGUMENT", "ANSWER"], rows(answer))
        )
    if not answer.get("resolved"):
        raise typer.Exit(1)


@app.command()
def capture(
    lab: LabArg,
    node: NodeArg,
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE", help="pcap file to write")],
    iface: Annotated[str, typer.Option(metavar="IF", help="interface in the node")] = "any",
    bpf: Annotated[
        str, typer.Option("--filter", metavar="BPF", help="tcpdump filter, e.g. 'tcp port 5000'")
    ] = "",
    count: Annotated[int | None, typer.Option(metavar="N", help="stop after N packets")] = None,
    seconds: Annotated[float | None, typer.Option(metavar="S", help="stop after S seconds")] = None,
    as_json: JsonOpt = False,
) -> None:
    """tcpdump in a node until --count, --seconds or Ctrl-C; the pcap is copied out and every
    TCP connection's handshake and teardown is summarized."""
    from socklab.observe.capture import capture as run_capture

    if count is not None and seconds is not None:
        raise LabError("give --count or --seconds, not both")
    _check_writable(output)
    target = open_lab(lab, up=True).node(node).tools()
    until = f"{count} packets" if count else f"{seconds:g} s" if seconds else "Ctrl-C"
    result = run_capture(
        target,
        output,
        iface=iface,
        bpf=bpf,
        count=count,
        seconds=seconds,
        on_ready=lambda: render.err.print(f"capturing on {escape(iface)} in {escape(node)} until {until}..."),
    )
    if as_json:
        render.print_json(result.as_dict())
        return
    render.out.print(f"{len(result.packets)} packets from {node} ({iface}) written to {output}", markup=False)
    if result.conversations:
        render.print_wide(
            render.wide_table(
                None,
                ["CONNECTION", "PACKETS", "DATA", "HANDSHAKE", "TEARDOWN", "OUTCOME"],
                [
                    (
                        f"{c.client} → {c.server}",
                        c.packets,
                        f"{c.payload} B",
                        " ".join(c.handshake),
                        ", ".join(c.teardown),
                        c.outcome,
                    )
                    for c in result.conversations
                ],
            )
        )
    if result.other:
        render.out.print("other: " + ", ".join(f"{v} {k}" for k, v in result.other.items()), markup=False)


def _check_writable(output: Path) -> None:
    """Refuse, before capturing, a file that cannot be written (the check leaves no file)."""
    existed = output.exists()
    try:
        with output.open("ab"):
            pass
    except OSError as exc:
        raise LabError(
            f"cannot write {output}: {exc.strerror or exc}",
            "give -o a file in a folder that exists and you can write to",
        ) from None
    if not existed:
        output.unlink()
