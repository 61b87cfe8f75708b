"""`socklab --help` and `socklab validate` start light: the Docker SDK, requests and the
progress display are imported by the commands that use them, not before arguments are
parsed (bench/cli_start.py times it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[2] / "src" / "socklab" / "labs" / "echo.yml"
HEAVY = (
    "docker",
    "requests",
    "urllib3",
    "rich.progress",
    "socklab.lab",
    "socklab.orchestrator.engine",
    "typer.rich_utils",  # typer's rich help: 35 ms of markdown-it and rich.traceback
)
PROBE = """
import json, sys
sys.argv = ["socklab", *json.loads(sys.argv[1])]
from socklab.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.stderr.write("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules)}) + "\\n")
"""


def loaded(*args: str) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))], capture_output=True, text=True, check=False
    )
    result = json.loads(done.stderr.strip().splitlines()[-1])
    return result["code"], set(result["modules"])


@pytest.mark.parametrize(
    "args", [["--help"], ["validate", str(LAB)], ["validate", "--json", str(LAB)], ["schema"], ["labs"]]
)
def test_commands_without_docker_do_not_import_it(args: list[str]) -> None:
    code, modules = loaded(*args)
    assert code == 0
    assert not [m for m in HEAVY if m in modules]


def test_a_command_that_needs_docker_still_gets_it() -> None:
    code, modules = loaded("ls", "--json")
    assert "socklab.lab" in modules and "docker" in modules
    assert code in (0, 1)  # 1: no daemon here (one line, not a traceback)
