"""``socklab doctor [LAB] [--json]``: what this host can do for socklab."""

from typing import Annotated

import typer
from rich.text import Text

from socklab import render
from socklab.cli.app import JsonOpt, app
from socklab.errors import LabError


@app.command()
def doctor(
    lab: Annotated[
        str | None, typer.Argument(metavar="[LAB]", help="a topology file: the features it uses must work")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Daemon, node image, kernel features (netem, tbf, htb, statistic, NFQUEUE, IPv6,
    br_netfilter), mmdebstrap, swarm, free subnets: each ok or missing, with a fix."""
    from socklab.catalog import find_lab_file
    from socklab.orchestrator import doctor as checks
    from socklab.orchestrator.engine import default_engine
    from socklab.topology import load_topology

    topo = None
    if lab is not None:
        path = find_lab_file(lab)
        if path is None:
            raise LabError(
                f"topology file not found: {lab}",
                "give a path to a YAML file or a shipped lab (`socklab labs`)",
            )
        topo = load_topology(path)
    found = checks.run(default_engine, topo)
    bad = checks.failed(found)
    if as_json:
        render.print_json({"ok": not bad, "checks": [c.as_dict() for c in found]})
    else:
        render.table(
            None,
            ["STATUS", "CHECK", "DETAIL"],
            [
                (
                    Text(
                        "ok" if c.ok else "missing",
                        style="green" if c.ok else "bold red" if c.needed else "yellow",
                    ),
                    c.name,
                    c.detail + (f"\nfix: {c.hint}" if c.hint and not c.ok else ""),
                )
                for c in found
            ],
        )
        if bad:
            render.error(
                f"{', '.join(c.name for c in bad)}: needed"
                + (f" by {topo.name}" if topo else "")
                + ", missing",
                bad[0].hint,
            )
    if bad:
        raise typer.Exit(1)
