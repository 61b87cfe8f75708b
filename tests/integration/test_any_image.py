"""Any image as a node: an image with no python3 in it runs its own CMD (or `command:`), and
exec, logs, sockets (pid and program, through a helper), capture and faults work on it."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from socklab import CommandNotFound, Lab, LabError
from socklab.observe.capture import capture
from socklab.orchestrator.engine_api import Engine

from .conftest import NOT_SOCKLAB, leftovers


@pytest.fixture(scope="module")
def lab(
    no_python_image: str, entrypoint_image: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lab]:
    from .conftest import lab_name

    doc = {
        "name": lab_name("anyimg"),
        "networks": {"lan": {}},
        "nodes": {
            "svc": {"networks": ["lan"], "image": no_python_image},
            "cmd": {
                "networks": ["lan"],
                "image": no_python_image,
                "command": ["sh", "-c", "echo started by command; exec nc -lk 9000"],
            },
            "client": {"networks": ["lan"]},
            # python3 and an ENTRYPOINT of its own: socklab's supervisor runs its start:
            "ep": {"networks": ["lan"], "image": entrypoint_image, "start": ["udp-server --port 5454"]},
        },
    }
    with Lab.from_yaml(doc, engine=engine) as up:
        yield up
    assert leftovers(engine, up.name) == []  # the tools helpers went with the lab


def test_its_own_program_runs_and_exec_reaches_it(lab: Lab) -> None:
    svc = lab.node("svc")
    assert svc.exec("cat /etc/hostname").stdout.strip() == "svc"
    with pytest.raises(CommandNotFound, match="no command 'python3' in node svc"):
        svc.exec("python3 -c pass")
    lab.wait_listening("svc", "tcp/8080", timeout=30)
    answer = lab.node("client").exec("nc -w 5 svc 8080")
    assert answer.stdout == "hello from the service\n", answer.stderr


def test_command_and_logs(lab: Lab) -> None:
    assert "started by command" in lab.wait_log("cmd", "started by command", timeout=30)
    lab.wait_listening("cmd", "tcp/9000", timeout=30)


def test_an_image_with_python3_and_its_own_entrypoint_runs_the_start_commands(lab: Lab) -> None:
    lab.wait_listening("ep", "udp/5454", timeout=30)  # `up` waited for it: no wait here
    assert NOT_SOCKLAB not in lab.node("ep").logs()


def test_sockets_name_the_program_and_its_pid(lab: Lab) -> None:
    lab.wait_listening("svc", "tcp/8080", timeout=30)
    rows = [r for r in lab.sockets("svc") if r.state == "LISTEN" and r.local_port == 8080]
    assert len(rows) == 1 and rows[0].program == "nc" and rows[0].pid
    assert str(rows[0].pid) in lab.node("svc").exec(["sh", "-c", "echo /proc/[0-9]*"]).stdout


def test_capture_in_a_node_without_tcpdump(lab: Lab, tmp_path: Path) -> None:
    ready = threading.Event()
    out: list[object] = []
    runner = threading.Thread(
        target=lambda: out.append(
            capture(
                lab.node("svc").tools(),
                tmp_path / "svc.pcap",
                bpf="tcp port 8080",
                seconds=6,
                on_ready=ready.set,
            )
        )
    )
    runner.start()
    assert ready.wait(60)
    lab.wait_listening("svc", "tcp/8080", timeout=30)
    assert lab.node("client").exec("nc -w 5 svc 8080").ok
    runner.join(60)
    result = out[0]
    assert (tmp_path / "svc.pcap").stat().st_size > 0
    assert any(c.server.endswith(":8080") and c.handshake[:1] == ["SYN"] for c in result.conversations)  # type: ignore[attr-defined]


def test_faults_work_on_it(lab: Lab) -> None:
    lab.wait_listening("svc", "tcp/8080", timeout=30)
    lab.fault.partition("client", "svc")
    try:
        assert not lab.node("client").exec("nc -w 2 svc 8080").stdout
    finally:
        lab.fault.heal()
    lab.wait_listening("svc", "tcp/8080", timeout=30)
    assert lab.node("client").exec("nc -w 5 svc 8080").stdout == "hello from the service\n"


def test_start_on_an_image_without_python_is_refused_at_up(
    no_python_image: str, write_lab: Callable[..., Path], engine: Engine
) -> None:
    path = write_lab(
        {
            "networks": {"lan": {}},
            "nodes": {
                "svc": {"networks": ["lan"], "image": no_python_image, "start": ["tcp-server --port 7000"]}
            },
        },
        "anystart",
    )
    with pytest.raises(LabError) as err:
        Lab.load(path, engine=engine).up()
    assert err.value.message == (
        f"node 'svc': image '{no_python_image}' has no python3, so socklab cannot run its `start:` commands"
    )
    assert err.value.hint and "command:" in err.value.hint
    assert leftovers(engine, Lab.load(path).name) == []
    checked = subprocess.run(
        [sys.executable, "-m", "socklab.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 2
    assert f"nodes.svc.start: {err.value.message} — leave `start:` out" in checked.stderr


def test_restart_brings_its_own_program_back(lab: Lab) -> None:
    """No supervisor: restart waits for no ready event (and releases no held start)."""
    lab.wait_listening("svc", "tcp/8080", timeout=30)
    result = lab.fault.restart("svc")
    assert result.message == "restarted svc: its program runs again"
    lab.wait_listening("svc", "tcp/8080", timeout=30)
    assert lab.node("client").exec("nc -w 5 svc 8080").stdout == "hello from the service\n"


def test_nothing_is_started_in_it_in_the_background(lab: Lab) -> None:
    for node in ("svc", "cmd"):
        with pytest.raises(LabError, match=f"node '{node}' runs its own program") as err:
            lab.node(node).start("tcp-server --port 7000")
        assert err.value.hint and "exec" in err.value.hint


def test_a_program_that_exits_at_once_fails_up_with_what_it_said(
    no_python_image: str, write_lab: Callable[..., Path], engine: Engine
) -> None:
    path = write_lab(
        {
            "networks": {"lan": {}},
            "nodes": {
                "svc": {
                    "networks": ["lan"],
                    "image": no_python_image,
                    "ports": [8080],
                    "command": ["sh", "-c", "echo no such flag: -ll; exit 3"],
                },
                "client": {"networks": ["lan"]},
            },
        },
        "anyexit",
    )
    with pytest.raises(LabError) as err:
        Lab.load(path, engine=engine).up()
    assert err.value.message.splitlines()[1:3] == [
        "  svc: its program `sh -c 'echo no such flag: -ll; exit 3'` exited at once (code 3), saying:",
        "    no such flag: -ll",
    ]
    assert leftovers(engine, Lab.load(path).name) == []
