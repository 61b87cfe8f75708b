"""The event lines and errno wording every node app shares (in-process, no sockets opened)."""

from __future__ import annotations

import io
import json
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from socklab.nodes.addresses import format_address
from socklab.nodes.errnos import describe_error, error_fields
from socklab.nodes.events import EventLog


def test_json_line_on_stdout_readable_line_on_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    log = EventLog("tcp-server", out=out, err=err)
    log.emit("listening", text="listening on 0.0.0.0:5000", port=5000)
    line = out.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert '"event": "listening"' in line
    record = json.loads(line)
    assert list(record)[:4] == ["ts", "app", "event", "pid"]
    assert record["app"] == "tcp-server" and record["port"] == 5000
    assert err.getvalue() == "tcp-server: listening on 0.0.0.0:5000\n"


def test_human_mode_writes_only_readable_stdout() -> None:
    out, err = io.StringIO(), io.StringIO()
    EventLog("tcp-client", human=True, out=out, err=err).emit("sent", peer="10.0.0.2:5000", bytes=5)
    assert out.getvalue() == "tcp-client: sent 10.0.0.2:5000 bytes=5\n" and err.getvalue() == ""


def test_error_event_carries_errno_name_number_and_message() -> None:
    out = io.StringIO()
    exc = ConnectionRefusedError(111, "Connection refused")
    record = EventLog("tcp-client", out=out, err=io.StringIO()).error(
        exc, target="server:5999", action="connect"
    )
    assert record["errno"] == "ECONNREFUSED" and record["errno_number"] == 111
    assert record["message"] == "ECONNREFUSED (111): connection refused by server:5999"
    assert json.loads(out.getvalue())["peer"] == "server:5999"


def test_errno_names_of_timeouts_resolver_and_aliases() -> None:
    assert error_fields(TimeoutError("timed out"))["errno"] == "ETIMEDOUT"
    assert (
        error_fields(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))["errno"] == "EAI_NONAME"
    )
    assert error_fields(OSError(95, "Operation not supported"))["errno"] == "EOPNOTSUPP"
    assert error_fields(BlockingIOError(11, "Resource temporarily unavailable"))["errno"] == "EWOULDBLOCK"
    assert describe_error(OSError(22, "Invalid argument")) == "EINVAL (22): invalid argument"


def test_addresses() -> None:
    assert format_address(("10.0.0.1", 80)) == "10.0.0.1:80"
    assert format_address(("::1", 80, 0, 0)) == "[::1]:80"
    assert format_address("/tmp/x.sock") == "unix:/tmp/x.sock"
    assert format_address("") == "unix:(unnamed)"


def test_app_is_the_name_the_supervisor_gave_this_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setenv("SOCKLAB_APP", "tcp-server#2")
    EventLog("tcp-server", out=out, err=io.StringIO()).emit("listening", port=5000)
    assert json.loads(out.getvalue())["app"] == "tcp-server#2"
    # a name given to another command (the parent that started this app) is not this app's
    for given in ("tcp-client#3", "tcp-server-x#2", "python3"):
        monkeypatch.setenv("SOCKLAB_APP", given)
        assert EventLog("tcp-server").app == "tcp-server"
