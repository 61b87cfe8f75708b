"""The ``socklab`` command: parse arguments, call the library, render. No logic of its own."""

# the order of registration is the order of `socklab --help`
from socklab.cli import run_command  # isort: skip
from socklab.cli import lab_commands  # isort: skip
from socklab.cli import labs_commands  # isort: skip
from socklab.cli import observe_commands  # isort: skip
from socklab.cli import compose_commands  # isort: skip
from socklab.cli import fault_commands  # isort: skip
from socklab.cli import doctor_command  # isort: skip
from socklab.cli import image_commands  # isort: skip
from socklab import interrupt
from socklab.cli.app import app

__all__ = [
    "app",
    "compose_commands",
    "doctor_command",
    "fault_commands",
    "image_commands",
    "lab_commands",
    "labs_commands",
    "main",
    "observe_commands",
    "run_command",
]


def main() -> None:
    interrupt.install()  # SIGTERM and SIGHUP (a cancelled CI job) act like Ctrl-C
    app()
