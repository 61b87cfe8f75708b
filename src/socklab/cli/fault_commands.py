"""``socklab fault LAB ACTION ...``: faults at run time (``lab.fault`` of the library)."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from socklab import render
from socklab.cli.app import JsonOpt, LabArg, command_group, open_lab

if TYPE_CHECKING:
    from socklab.orchestrator.faults import FaultResult, Faults

fault_app = command_group(
    "fault",
    "Faults at run time: partition, heal, loss, delay, rate, corrupt, duplicate, clear, "
    "kill, pause, resume, restart, disconnect, connect, list.",
    no_args_is_help=True,
)

Node = Annotated[
    str,
    typer.Argument(metavar="NODE", help="a node, a replica, a replicated node's name or a glob ('client-*')"),
]
Side = Annotated[
    str,
    typer.Argument(
        help="a node, a replica, a replicated node's name, a glob or a network name (every node on it)"
    ),
]
NetOpt = Annotated[
    str | None, typer.Option("--net", metavar="NET", help="only on this network (default: all of its)")
]
Net = Annotated[str, typer.Argument(metavar="NET", help="a network of the lab")]
NUMBERS = {"ignore_unknown_options": True}
"""a negative number (``delay n -5``) is a value to refuse with its reason, not an option"""
Percent = Annotated[str, typer.Argument(metavar="PCT", help="a percentage: 30 or 30%")]


@fault_app.callback()
def _fault(ctx: typer.Context, lab: LabArg) -> None:
    """Faults at run time, applied from helper containers (the nodes gain no capability)."""
    ctx.obj = {**(ctx.obj or {}), "fault_lab": lab}


def _do(ctx: typer.Context, action: "Callable[[Faults], FaultResult]", as_json: bool) -> None:
    result = action(open_lab(ctx.obj["fault_lab"], up=True).fault)
    if as_json:
        render.print_json(result.as_dict())
    else:
        render.out.print(result.message, markup=False)  # addresses print as they are


@fault_app.command()
def partition(ctx: typer.Context, a: Side, b: Side, as_json: JsonOpt = False) -> None:
    """Drop all traffic between A and B, both ways (a connect then ends in ETIMEDOUT)."""
    _do(ctx, lambda f: f.partition(a, b), as_json)


@fault_app.command()
def heal(
    ctx: typer.Context,
    a: Annotated[str | None, typer.Argument(metavar="[A]", help="one side")] = None,
    b: Annotated[str | None, typer.Argument(metavar="[B]", help="the other side")] = None,
    as_json: JsonOpt = False,
) -> None:
    """End the partition between A and B; with no arguments, every partition."""
    _do(ctx, lambda f: f.heal(a, b), as_json)


@fault_app.command(context_settings=NUMBERS)
def loss(
    ctx: typer.Context,
    node: Node,
    pct: Percent,
    net: NetOpt = None,
    proto: Annotated[str | None, typer.Option("--proto", metavar="PROTO", help="udp or tcp only")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Drop PCT percent of the packets NODE sends."""
    _do(ctx, lambda f: f.loss(node, pct, net, proto), as_json)


@fault_app.command(context_settings=NUMBERS)
def delay(
    ctx: typer.Context,
    node: Node,
    ms: Annotated[str, typer.Argument(metavar="MS", help="milliseconds, or 40ms, 1s")],
    jitter: Annotated[
        str | None, typer.Option("--jitter", metavar="MS", help="± this much, uniformly")
    ] = None,
    net: NetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delay the packets NODE sends by MS milliseconds."""
    _do(ctx, lambda f: f.delay(node, ms, jitter, net), as_json)


@fault_app.command(context_settings=NUMBERS)
def rate(
    ctx: typer.Context,
    node: Node,
    value: Annotated[str, typer.Argument(metavar="RATE", help="e.g. 1mbit, 500kbit")],
    net: NetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Limit what NODE sends to RATE."""
    _do(ctx, lambda f: f.rate(node, value, net), as_json)


@fault_app.command(context_settings=NUMBERS)
def corrupt(
    ctx: typer.Context, node: Node, pct: Percent, net: NetOpt = None, as_json: JsonOpt = False
) -> None:
    """Corrupt PCT percent of what NODE sends (needs the kernel's netem)."""
    _do(ctx, lambda f: f.corrupt(node, pct, net), as_json)


@fault_app.command(context_settings=NUMBERS)
def duplicate(
    ctx: typer.Context, node: Node, pct: Percent, net: NetOpt = None, as_json: JsonOpt = False
) -> None:
    """Duplicate PCT percent of what NODE sends (needs the kernel's netem)."""
    _do(ctx, lambda f: f.duplicate(node, pct, net), as_json)


@fault_app.command()
def clear(ctx: typer.Context, node: Node, net: NetOpt = None, as_json: JsonOpt = False) -> None:
    """Remove NODE's impairments (loss, delay, rate...; the topology's too)."""
    _do(ctx, lambda f: f.clear(node, net), as_json)


@fault_app.command()
def kill(ctx: typer.Context, node: Node, as_json: JsonOpt = False) -> None:
    """Stop NODE's container at once: a crashed host (peers get no answer)."""
    _do(ctx, lambda f: f.kill(node), as_json)


@fault_app.command()
def pause(ctx: typer.Context, node: Node, as_json: JsonOpt = False) -> None:
    """Freeze NODE's processes: a hung host (peers time out)."""
    _do(ctx, lambda f: f.pause(node), as_json)


@fault_app.command()
def resume(ctx: typer.Context, node: Node, as_json: JsonOpt = False) -> None:
    """Unfreeze a paused NODE."""
    _do(ctx, lambda f: f.resume(node), as_json)


@fault_app.command()
def restart(ctx: typer.Context, node: Node, as_json: JsonOpt = False) -> None:
    """Restart NODE: its start commands run again; returns when its servers listen."""
    _do(ctx, lambda f: f.restart(node), as_json)


@fault_app.command()
def disconnect(ctx: typer.Context, node: Node, net: Net, as_json: JsonOpt = False) -> None:
    """Unplug NODE from network NET."""
    _do(ctx, lambda f: f.disconnect(node, net), as_json)


@fault_app.command()
def connect(ctx: typer.Context, node: Node, net: Net, as_json: JsonOpt = False) -> None:
    """Plug NODE back into NET, with its address and aliases."""
    _do(ctx, lambda f: f.connect(node, net), as_json)


@fault_app.command("list")
def list_faults(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """What is in force, per node and network."""
    the_lab = open_lab(ctx.obj["fault_lab"], up=True)
    rows = the_lab.fault.list()
    if as_json:
        render.print_json([r.as_dict() for r in rows])
        return
    render.table(
        f"faults of lab {the_lab.name}",
        ["NODE", "STATE", "IN FORCE"],
        [(r.node, render.state(r.state), "\n".join(r.lines()) or "-") for r in rows],
    )
