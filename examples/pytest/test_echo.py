"""A client/server test, a refused connection and a network partition, against real
containers brought up by the `socklab_lab` fixture."""

import json
import socket

import pytest


def events(stdout: str) -> list[dict]:
    """The JSON events a socklab app printed."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_the_client_gets_its_echo(socklab_lab):
    lab = socklab_lab("lab.yml")  # up, its server listening; down after the test
    result = lab.node("client-1").exec("tcp-client echo 7000 --count 2 --message hi")
    assert result.exit_code == 0, result.stderr
    received = [e for e in events(result.stdout) if e["event"] == "received"]
    assert [e["data"] for e in received] == ["hi", "hi"]


def test_a_closed_port_refuses_the_connection(socklab_lab):
    lab = socklab_lab("lab.yml", scope="module")  # shared by the module's tests
    result = lab.node("client-2").exec("tcp-client server 7999")
    assert result.exit_code != 0
    assert events(result.stdout)[-1]["errno"] == "ECONNREFUSED"


def test_the_server_sees_both_clients(socklab_lab):
    lab = socklab_lab("lab.yml", scope="module")
    for client in lab.nodes("client"):  # a replicated node's name selects every replica
        assert client.exec("tcp-client server 7000 --count 1").ok
        # the server's log says whom it accepted (wait: logs reach Docker a moment later)
        lab.wait_log("server", rf'"event": "accepted".*"peer": "[^"]*{client.ip()}:', timeout=30)
    accepted = [e for e in lab.timeline() if e.node == "server" and e.event == "accepted"]
    assert len(accepted) >= 2


def test_the_published_port_answers_on_the_host(socklab_lab):
    server = socklab_lab("lab.yml", scope="module").node("server")
    with socket.create_connection(("127.0.0.1", server.host_port(7000)), timeout=10) as conn:
        conn.sendall(b"from the host")
        assert conn.recv(64) == b"from the host"


def test_a_partition_times_the_client_out(socklab_lab):
    lab = socklab_lab("lab.yml")
    lab.fault.partition("client-1", "server")
    cut = lab.node("client-1").exec("tcp-client server 7000 --timeout 2")
    assert cut.exit_code != 0
    assert events(cut.stdout)[-1]["errno"] in ("ETIMEDOUT", "EAGAIN")
    assert lab.node("client-2").exec("tcp-client server 7000").ok  # the other side is fine
    lab.fault.heal()
    assert lab.node("client-1").exec("tcp-client server 7000").ok


@pytest.mark.socklab("lab.yml", scenario="default")
def test_the_default_scenario(socklab_run):
    """The scenario of lab.yml is the test; its report is in the socklab artifacts."""
    assert socklab_run.passed
