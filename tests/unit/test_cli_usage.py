"""Usage errors, help and --version as a user sees them: one line and a hint, exit 2."""

from __future__ import annotations

import re
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from socklab.cli import app

runner = CliRunner()


def invoke(args: list[str], **kwargs: Any) -> Result:
    return runner.invoke(app, args, prog_name="socklab", **kwargs)


def _two_lines(args: list[str]) -> tuple[str, str]:
    result = invoke(args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: ")
    assert not re.search("[╭╰│]", result.stderr), "no framework box"
    return lines[0], lines[1]


def test_a_missing_argument_is_one_line_with_the_usage_as_hint() -> None:
    error, hint = _two_lines(["up"])
    assert error == "error: missing argument LAB"
    assert hint == "hint: usage: socklab up [OPTIONS] LAB (`socklab up --help` for more)"


def test_a_missing_second_argument_names_it() -> None:
    error, hint = _two_lines(["exec", "hello"])
    assert error == "error: missing argument NODE"
    assert "socklab exec [OPTIONS] LAB NODE -- CMD..." in hint


def test_an_unknown_option_suggests_the_near_one() -> None:
    error, hint = _two_lines(["run", "--kep"])
    assert error == "error: no such option: --kep"
    assert hint.startswith("hint: did you mean --keep? usage: socklab run [OPTIONS] [LAB]")


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["frob"],
        ["image", "biuld"],
        ["capture", "hello", "n", "-o", "x.pcap", "--count", "x"],
        ["status", "hello", "--jsn"],
    ],
)
def test_every_usage_error_is_one_line_and_a_hint(args: list[str]) -> None:
    _two_lines(args)


def test_an_unknown_command_suggests_the_near_one() -> None:
    error, hint = _two_lines(["image", "biuld"])
    assert error == "error: no such command biuld"
    assert hint.startswith("hint: did you mean build?")


def test_down_without_a_lab_suggests_the_file_form() -> None:
    error, hint = _two_lines(["down"])
    assert "LAB" in error
    assert "`socklab down labs/hello.yml`" in hint and "--all" not in hint


def test_no_arguments_still_prints_the_help() -> None:
    result = invoke([])
    assert "Usage: socklab" in result.output and "Commands" in result.output


@pytest.mark.parametrize(
    "command",
    [
        "run",
        "up",
        "sockets",
        "capture",
        "logs",
        "down",
        "image build",
        "compose export",
        "fault x partition",
        "doctor",
    ],
)
def test_flags_show_no_value_placeholder(command: str) -> None:
    result = invoke([*command.split(), "--help"], terminal_width=120)
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout
    assert "--help" in result.stdout


def test_value_options_name_their_value() -> None:
    result = invoke(["run", "--help"], terminal_width=120)
    assert re.search(r"--report\s+DIR", result.stdout)
    assert re.search(r"--junit\s+FILE", result.stdout)


@pytest.mark.parametrize("command", ["exec", "shell", "resolve", "capture", "logs", "sockets"])
def test_node_arguments_have_help(command: str) -> None:
    result = invoke([command, "--help"], terminal_width=200)
    node_line = next(line for line in result.stdout.splitlines() if re.match(r"^\W*NODE\s", line))
    assert "a node of the lab" in node_line or "only th" in node_line


def test_version() -> None:
    from importlib.metadata import version

    result = invoke(["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"socklab {version('socklab')}\n"


def test_arguments_are_named_in_capitals() -> None:
    error, hint = _two_lines(["fault", "hello", "partition"])
    assert error == "error: missing argument A"
    assert "socklab fault LAB partition [OPTIONS] A B" in hint


@pytest.mark.parametrize(
    "args",
    [
        ["capture", "hello", "server", "-o", "/proc/x.pcap", "--seconds", "1"],
        ["labs", "copy", "echo", "/proc/x"],
    ],
)
def test_an_output_that_cannot_be_written_is_one_line_before_any_work(args: list[str]) -> None:
    error, hint = _two_lines(args)
    assert error.startswith("error: cannot ") and "/proc/x" in error
    assert "No such file or directory" in error and "unexpected" not in error
    assert "you can write to" in hint


@pytest.mark.parametrize(
    ("args", "option", "near"),
    [
        (["fault", "x", "loss", "a", "5", "--nett", "lan"], "--nett", "--net"),
        (["fault", "x", "delay", "a", "5", "--jiter=3"], "--jiter", "--jitter"),
    ],
)
def test_a_mistyped_option_of_a_command_taking_numbers_is_named(
    args: list[str], option: str, near: str
) -> None:
    """`fault ... delay n -5` takes a negative number as a value to refuse, yet an unknown
    option there is still called one (not "unexpected extra arguments")."""
    error, hint = _two_lines(args)
    assert error == f"error: no such option: {option}"
    assert hint.startswith(f"hint: did you mean {near}? usage: socklab fault LAB")
