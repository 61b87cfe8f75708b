"""The program list `socklab validate` knows (socklab/topology/node_programs.txt) is exactly
what a node of the node image has on its PATH (Docker's docker-init included), so that the
two cannot drift apart.

After a change of the image recipe's packages, rewrite the list with
``SOCKLAB_WRITE_NODE_PROGRAMS=1 pytest tests/integration/test_node_programs.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from socklab import Lab
from socklab.nodes import COMMANDS
from socklab.topology.programs import PROGRAMS_FILE, image_programs

LIST_PROGRAMS = """\
import os
names = set()
for d in os.environ["PATH"].split(":"):
    if os.path.isdir(d):
        for n in os.listdir(d):
            p = os.path.join(d, n)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                names.add(n)
print("\\n".join(sorted(names)))
"""
HEADER = """\
# Programs on the PATH of the socklab node image, one a line, without the built-in apps
# (socklab.nodes.COMMANDS). Checked against the image by tests/integration/test_node_programs.py.
"""


def test_validate_knows_exactly_the_node_images_programs(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab({"networks": {"lan": {}}, "nodes": {"n": {"networks": ["lan"]}}}, "progs")
    listed = lab.node("n").exec(["python3", "-c", LIST_PROGRAMS])
    assert listed.ok, listed.stderr
    on_path = set(listed.stdout.split())
    assert set(COMMANDS) <= on_path  # every built-in app is installed
    programs = on_path - set(COMMANDS)
    if os.environ.get("SOCKLAB_WRITE_NODE_PROGRAMS"):
        PROGRAMS_FILE.write_text(HEADER + "".join(f"{p}\n" for p in sorted(programs)))
        image_programs.cache_clear()
    assert image_programs() == programs, (
        f"missing from the list: {sorted(programs - image_programs())}; not in the image: "
        f"{sorted(image_programs() - programs)}; rewrite it: {__doc__}"
    )
