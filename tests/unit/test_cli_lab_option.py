"""`--lab NAME` in place of LAB (status, sockets, exec, logs, connections): the arguments shift, mistakes are
one line and a hint (no daemon is asked before the arguments are understood)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from socklab.cli import app
from socklab.cli.app import lab_first
from socklab.errors import LabError


def test_lab_first_takes_the_option_or_the_first_argument() -> None:
    assert lab_first("x", ["client-1", "--", "ls"], "exec") == ("x", ["client-1", "--", "ls"])
    assert lab_first(None, ["lab.yml", "client-1"], "exec") == ("lab.yml", ["client-1"])
    with pytest.raises(LabError, match="no LAB given"):
        lab_first(None, [], "status LAB")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status"], "error: no LAB given"),
        (["status", "a", "--lab", "b"], "error: give LAB or --lab NAME, not both"),
        (["exec", "--lab", "x", "client-1"], "error: missing argument NODE"),
        (["exec", "--lab", "x", "client-1", "--"], "error: missing argument '-- CMD'"),
        (["sockets"], "error: no LAB given"),
        (["logs"], "error: no LAB given"),
        (["logs", "--lab", "x", "a", "b"], "error: give one NODE at most"),
        (["connections"], "error: no LAB given"),
        (["connections", "a", "--lab", "b"], "error: give LAB or --lab NAME, not both"),
        (["exec", "lab.yml", "--", "ls"], "error: missing argument NODE"),
        (["exec", "lab.yml", "n", "--timeout"], "error: option --timeout requires an argument"),
        (["exec", "lab.yml", "n", "--timeout", "x", "--", "ls"], "error: --timeout takes seconds, not 'x'"),
        (["exec", "lab.yml", "n", "--timeot", "1", "--", "ls"], "error: no such option: --timeot"),
        (
            ["exec", "lab.yml", "n", "--timeout=0", "--", "ls"],
            "error: --timeout must be more than 0 seconds, not 0",
        ),
    ],
)
def test_mistakes_are_one_line_and_a_hint(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == message
    assert result.stderr.splitlines()[1].startswith("hint: ")


def test_exec_takes_timeout_after_node_too() -> None:
    from socklab.cli.lab_commands import _options_after_node

    assert _options_after_node(["--timeout", "2", "--", "sleep", "3"]) == (2.0, ["sleep", "3"])
    assert _options_after_node(["--timeout=2.5", "sleep", "3"]) == (2.5, ["sleep", "3"])
    assert _options_after_node(["--", "sh", "-c", "echo --timeout"]) == (None, ["sh", "-c", "echo --timeout"])
    assert _options_after_node(["ls", "--timeout", "1"]) == (None, ["ls", "--timeout", "1"])
