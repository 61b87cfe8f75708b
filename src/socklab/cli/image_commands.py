"""`socklab image build|status`: the node image."""

from typing import Annotated

import typer

from socklab import render
from socklab.cli.app import JsonOpt, build_line, image_app
from socklab.errors import LabError


@image_app.command("build")
def image_build(
    method: Annotated[str, typer.Option(metavar="METHOD", help="auto | pull | bootstrap")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="rebuild even when present")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build the node image (bootstrap: a Debian rootfs from this host's apt sources)."""
    from socklab.orchestrator import image
    from socklab.orchestrator.engine import default_engine

    if method not in ("auto", "pull", "bootstrap"):
        raise LabError(f"unknown method '{method}'", "use auto, pull or bootstrap")
    result = image.build(default_engine(), method, force=force, on_progress=build_line)  # type: ignore[arg-type]
    if as_json:
        render.print_json(
            {
                "tag": result.tag,
                "method": result.method,
                "built": result.built,
                "seconds": round(result.seconds, 1),
            }
        )
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
    data = {
        "tag": st.tag,
        "present": st.present,
        "size_mb": round((st.size_bytes or 0) / 1e6, 1),
        "created": st.created,
        "base_present": st.base_present,
    }
    if as_json:
        render.print_json(data)
    else:
        render.table(
            None,
            ["TAG", "PRESENT", "SIZE (MB)", "CREATED"],
            [
                (
                    st.tag,
                    "yes" if st.present else "no — `socklab image build`",
                    data["size_mb"] if st.present else "",
                    st.created or "",
                )
            ],
        )
