"""The programs a command may name in a node of the socklab image, known without the image.

``node_programs.txt`` lists the executables on the node image's ``PATH`` (its Debian
packages' programs); the built-in apps are ``socklab.nodes.COMMANDS``. An integration test
lists the real image's programs and compares, so the file cannot drift from the recipe
(``SOCKLAB_WRITE_NODE_PROGRAMS=1`` makes that test rewrite it).
"""

from __future__ import annotations

import functools
from pathlib import Path

from socklab.nodes import COMMANDS
from socklab.topology.errors import did_you_mean, listing

PROGRAMS_FILE = Path(__file__).with_name("node_programs.txt")


@functools.cache
def image_programs() -> frozenset[str]:
    """The node image's own programs (its packages'), without the built-in apps."""
    lines = PROGRAMS_FILE.read_text().splitlines()
    return frozenset(ln for ln in lines if ln and not ln.startswith("#"))


def unknown_program(argv0: str) -> tuple[str, str] | None:
    """``(message, hint)`` when ``argv0`` is neither a built-in app, nor a path, nor a
    program of the node image; None when it is one of them."""
    if "/" in argv0 or argv0 in COMMANDS or argv0 in image_programs():
        return None
    apps = [c for c in COMMANDS if not c.startswith("socklab-")]
    hint = (
        did_you_mean(argv0, COMMANDS)
        or did_you_mean(argv0, image_programs())
        or (f"name a built-in app ({listing(apps, 4)}), a program of the node image or an absolute path")
    )
    return f"no program {argv0!r} in the node image", hint
