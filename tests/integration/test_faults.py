"""Faults against real Docker: what clients see, what the node keeps, what the host keeps."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from socklab import Lab
from socklab.cli import app
from socklab.orchestrator.doctor import probe_kernel
from socklab.orchestrator.engine_api import LABEL_HELPER, Engine
from socklab.scenario.expect import reported_errno
from socklab.scenario.run import run
from socklab.topology.plan import LABEL_LAB

runner = CliRunner()

ECHO = {
    "networks": {"lan": {}},
    "nodes": {
        "server": {
            "networks": ["lan"],
            "start": ["tcp-server --port 5000 --mode threaded", "udp-server --port 5001"],
        },
        "client": {"replicas": 2, "networks": ["lan"]},
    },
}
ROUTED = {
    "networks": {"lan": {}, "wan": {}},
    "nodes": {
        "router": {"networks": ["lan", "wan"], "router": True},
        "client": {"networks": ["lan"]},
        "server": {
            "networks": {"wan": {"aliases": ["www"]}},
            "start": ["tcp-server --port 5000 --mode threaded"],
        },
    },
}


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), terminal_width=200)
    return result.exit_code, result.stdout + result.stderr


def echo(lab: Lab, node: str, host: str, *args: str) -> tuple[int, str | None, str]:
    """``tcp-client HOST 5000 --timeout 2``: its exit code, the errno it reported, stdout."""
    r = lab.node(node).exec(["tcp-client", host, "5000", "--timeout", "2", *args])
    return r.exit_code, reported_errno(r.stdout), r.stdout


def address(lab: Lab, node: str, net: str = "lan") -> str:
    return next(s for s in lab.status() if s.node == node).networks[net].split("/")[0]


def events(stdout: str, kind: str) -> list[dict[str, object]]:
    found = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [e for e in found if e.get("event") == kind]


def test_partition_times_out_others_still_reach_heal_restores_no_capability_added(
    make_lab: Callable[..., Lab], engine: Engine
) -> None:
    lab = make_lab(ECHO, "part")
    code, out = cli("fault", lab.name, "partition", "client-1", "server")
    assert code == 0 and "partitioned client-1 | server" in out, out
    assert echo(lab, "client-1", "server")[:2] == (1, "ETIMEDOUT")  # not ECONNREFUSED
    assert echo(lab, "client-2", "server")[0] == 0
    code, out = cli("fault", lab.name, "list", "--json")
    rows = {r["node"]: r for r in json.loads(out)}
    assert rows["client-1"]["partitioned_from"] == ["server"]
    assert rows["server"]["partitioned_from"] == ["client-1"]
    assert rows["client-2"]["partitioned_from"] == []
    # the node under fault gained nothing, and cannot see or undo the fault itself
    for node in ("server", "client-1"):
        assert engine.container(lab.node(node).container).cap_add == ()
    assert not lab.node("client-1").exec(["iptables", "-t", "raw", "-F"]).ok
    assert engine.containers({LABEL_LAB: lab.name, LABEL_HELPER: "fault"}) == []
    assert cli("fault", lab.name, "heal", "client-1", "server")[0] == 0
    assert echo(lab, "client-1", "server")[0] == 0
    code, out = cli("fault", lab.name, "heal")
    assert code == 2 and "nothing is partitioned" in out


def test_udp_loses_about_its_share_while_tcp_delivers_every_byte(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(ECHO, "loss")
    lab.fault.loss("client-1", 30)
    r = lab.node("client-1").exec(["udp-client", "server", "5001", "--count", "200", "--timeout", "0.1"])
    summary = events(r.stdout, "summary")[0]
    assert summary["sent"] == 200
    assert 30 <= int(summary["lost"]) <= 90, summary  # 15..45 % of 200
    code, errno, out = echo(
        lab, "client-1", "server", "--count", "3", "--message", "x" * 10_000, "--timeout", "30"
    )
    assert (code, errno) == (0, None)
    assert sum(int(e["bytes"]) for e in events(out, "received")) == 30_000  # every byte
    assert (
        lab.node("client-2").exec(["udp-client", "server", "5001", "--count", "50", "--timeout", "0.5"]).ok
    )  # only client-1 loses


def transfer_seconds(lab: Lab) -> float:
    """250 KB sent by client-1 (five 50 KB messages, each echoed): from its first ``sent`` to
    its last ``received``, as the app stamped them."""
    code, _, out = echo(
        lab, "client-1", "server", "--count", "5", "--message", "x" * 50_000, "--timeout", "30"
    )
    assert code == 0, out
    return float(events(out, "received")[-1]["ts"]) - float(events(out, "sent")[0]["ts"])


def test_a_1mbit_rate_makes_250kb_take_about_2_seconds(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(ECHO, "rate")
    unshaped = transfer_seconds(lab)
    lab.fault.rate("client-1", "1mbit")
    shaped = transfer_seconds(lab)
    expected = 250_000 * 8 / 1_000_000  # 2.0 s on the wire at 1 Mbit/s
    assert 0.8 <= (shaped - unshaped) / expected <= 1.5, (shaped, unshaped)
    lab.fault.clear("client-1")
    assert transfer_seconds(lab) < shaped / 4


def test_a_delay_without_jitter_from_the_cli(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(ECHO, "delay")
    code, out = cli("fault", lab.name, "delay", "client-1", "100")
    assert code == 0 and "delay 100ms on client-1" in out, out
    rows = {r["node"]: r for r in json.loads(cli("fault", lab.name, "list", "--json")[1])}
    assert rows["client-1"]["impair"] == {"lan": {"delay": 100.0, "src": "runtime"}}
    ping = lab.node("client-1").exec(["ping", "-c", "3", "-i", "0.2", "server"]).stdout
    rtts = [float(t) for t in re.findall(r"time=([\d.]+) ms", ping)]
    assert len(rtts) == 3 and min(rtts) >= 100, ping


def test_kill_pause_restart_change_what_clients_see(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(ECHO, "life")
    ip = address(lab, "server")
    r = lab.node("client-1").exec(["tcp-client", ip, "5999", "--timeout", "2"])
    assert reported_errno(r.stdout) == "ECONNREFUSED"  # a live host answers a closed port
    lab.fault.pause("server")
    # frozen: its kernel still completes the handshake, the echo never comes
    code, errno, out = echo(lab, "client-1", ip)
    assert (code, errno) == (1, "ETIMEDOUT") and events(out, "connected")
    lab.fault.resume("server")
    assert echo(lab, "client-1", ip)[0] == 0
    lab.fault.kill("server")
    code, errno, _ = echo(lab, "client-1", ip)
    assert code == 1 and errno in ("ETIMEDOUT", "EHOSTUNREACH")  # no RST from a dead host
    code, out = cli("fault", lab.name, "pause", "server")
    assert code == 2 and "not running" in out and "restart server" in out
    lab.fault.restart("server")  # returns once its servers listen again: no wait step
    assert echo(lab, "client-1", "server")[0] == 0
    assert {s.node: s.state for s in lab.status()}["server"] == "running"


def test_routed_lab_reaches_through_the_router_without_nat_and_a_partition_cuts_it(
    make_lab: Callable[..., Lab],
) -> None:
    lab = make_lab(ROUTED, "routed")
    client_ip = address(lab, "client")
    assert echo(lab, "client", "www")[0] == 0  # by name (an alias on the other network)
    code, _, out = echo(lab, "client", address(lab, "server", "wan"))  # by address
    assert code == 0, out
    accepted = [e for e in lab.events(["server"]) if e.event == "accepted"]
    assert accepted and {e.peer.rsplit(":", 1)[0] for e in accepted if e.peer} == {client_ip}
    # nothing leaves the lab: no default route, in the client nor in the router
    assert "default" not in lab.node("client").exec(["ip", "route"]).stdout
    assert echo(lab, "client", "192.0.2.1")[1] == "ENETUNREACH"
    assert echo(lab, "router", "192.0.2.1")[1] == "ENETUNREACH"
    lab.fault.partition("router", "client")
    assert echo(lab, "client", "www")[1] == "ETIMEDOUT"
    lab.fault.heal("router", "client")
    lab.fault.restart("router")  # its forwarding and routes come back with it
    assert echo(lab, "client", "www")[0] == 0


def test_disconnect_and_connect_keep_the_address(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(ECHO, "link")
    before = address(lab, "client-1")
    lab.fault.disconnect("client-1", "lan")
    assert echo(lab, "client-1", address(lab, "server"))[1] == "ENETUNREACH"
    assert [r.disconnected for r in lab.fault.list() if r.node == "client-1"] == [("lan",)]
    lab.fault.connect("client-1", "lan")
    assert address(lab, "client-1") == before
    assert echo(lab, "client-1", "server")[0] == 0


def test_bad_fault_input_is_one_line_exit_2_and_changes_nothing(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(ECHO, "bad")
    for args, words in (
        (["loss", "client-1", "150"], "out of range"),
        (["delay", "client-1", "-5"], "not a duration"),
        (["rate", "client-1", "fast"], "bad rate 'fast'"),
        (["loss", "nobody", "5"], "no node matches 'nobody'"),
        (["loss", "client-1", "5", "--net", "wan"], "unknown network 'wan'"),
        (["partition", "client-1", "lann"], "did you mean 'lan'?"),
        (["heal", "client-1", "server"], "not partitioned"),
        (["resume", "server"], "not paused"),
    ):
        code, out = cli("fault", lab.name, *args)
        assert code == 2 and words in out, (args, out)
        assert "Traceback" not in out and out.count("\n") <= 2
    assert all(not r.lines() for r in lab.fault.list())
    code, out = cli("fault", "t-not-up-lab", "kill", "server")
    assert code == 2
    if not probe_kernel(lab.engine)["netem"]:
        code, out = cli("fault", lab.name, "corrupt", "client-1", "1")
        assert code == 2 and "sch_netem" in out and "socklab doctor" in out


def test_impairments_of_the_topology_are_in_force_before_start_commands(make_lab: Callable[..., Lab]) -> None:
    doc = {
        "networks": {"lan": {"impair": {"delay": "100ms"}}},
        "nodes": {
            "server": {"networks": ["lan"], "start": ["tcp-server --port 5000"]},
            # the first thing this node ever does is already delayed
            "client": {
                "networks": {"lan": {"impair": {"loss": "1%"}}},
                "start": [["sh", "-c", "ping -c 3 -i 0.2 -W 5 server > /tmp/ping.txt"]],
            },
        },
    }
    lab = make_lab(doc, "topoimp")
    rows = {r.node: r for r in lab.fault.list()}
    assert rows["server"].impair["lan"]["delay"] == 100 and rows["server"].impair["lan"]["src"] == "topology"
    assert rows["client"].impair["lan"]["loss"] == 1 and rows["client"].impair["lan"]["delay"] == 100
    done = "for i in $(seq 100); do grep -q transmitted /tmp/ping.txt && break; sleep 0.1; done"
    pings = lab.node("client").exec(["sh", "-c", f"{done}; cat /tmp/ping.txt"]).stdout
    rtts = [float(t) for t in re.findall(r"time=([\d.]+) ms", pings)]
    assert rtts and min(rtts) >= 150, pings  # 100 ms each way, from the very first packet


def _host_tables() -> tuple[list[str], list[str]]:
    save = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    rules = [re.sub(r"\[\d+:\d+\]", "", ln) for ln in save.splitlines() if not ln.startswith("#")]
    qdiscs = subprocess.run(
        ["tc", "qdisc", "show"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return rules, qdiscs


def _ours(lines: list[str], marks: list[str]) -> list[str]:
    return [ln for ln in lines if any(m in ln for m in marks)]


@pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v iptables-save && command -v tc"], capture_output=True).returncode
    != 0,
    reason="needs the host's iptables-save and tc",
)
def test_the_hosts_iptables_and_qdiscs_are_never_touched(
    write_lab: Callable[..., Path], engine: Engine, node_image: str
) -> None:
    rules0, qdiscs0 = _host_tables()
    lab = Lab.load(
        write_lab(
            {**ROUTED, "networks": {"lan": {"impair": {"rate": "1mbit"}}, "wan": {"impair": {"loss": "1%"}}}},
            "host",
        ),
        engine=engine,
    )
    try:
        lab.up()
        lab.fault.partition("client", "server")
        lab.fault.delay("client", "30ms", jitter="5ms")
        rules, qdiscs = _host_tables()
        bridges = [f"br-{n.id[:12]}" for n in engine.networks({LABEL_LAB: lab.name})]
        subnets = [str(s) for n in engine.networks({LABEL_LAB: lab.name}) for s in n.subnets]
        assert not [ln for ln in rules if "SOCKLAB" in ln or "statistic" in ln or "NFQUEUE" in ln]
        assert not [ln for ln in qdiscs if "tbf" in ln or "5ab:" in ln or "htb" in ln]
        assert not [ln for ln in _ours(rules, subnets) if "MASQUERADE" in ln]  # no NAT
    finally:
        lab.down()
    rules1, qdiscs1 = _host_tables()
    # what other labs of a shared daemon did meanwhile is theirs (one may have our subnets
    # by now: Docker's rules for it name its own bridge); ours left no trace
    theirs = re.compile(f"br-(?!{'|'.join(b[3:] for b in bridges)})[0-9a-f]{{12}}")
    left = [ln for ln in _ours(rules1, bridges + subnets) if not theirs.search(ln)]
    assert not left and not _ours(qdiscs1, bridges)
    # other networks' rules (labs, the default bridge, a swarm's gateway bridge and ingress)
    foreign = re.compile(r"br-[0-9a-f]{12}|veth|docker0|docker_gwbridge|DOCKER-INGRESS|10\.100\.|fd5c:")
    assert [ln for ln in rules0 if not foreign.search(ln)] == [ln for ln in rules1 if not foreign.search(ln)]
    assert [ln for ln in qdiscs0 if not foreign.search(ln)] == [
        ln for ln in qdiscs1 if not foreign.search(ln)
    ]


def test_faults_as_scenario_steps_pass_and_fail(
    write_lab: Callable[..., Path], engine: Engine, node_image: str, tmp_path: Path
) -> None:
    doc = {
        **ECHO,
        "scenarios": {
            "default": [
                {"wait": {"node": "server", "listening": "tcp/5000"}},
                {"fault": {"partition": ["client-1", "server"]}},
                {
                    "run": {
                        "node": "client-1",
                        "cmd": "tcp-client server 5000 --timeout 2",
                        "expect": {"errno": "ETIMEDOUT"},
                    }
                },
                {"run": {"node": "client-2", "cmd": "tcp-client server 5000 --timeout 2"}},
                {"fault": {"heal": "all"}},
                {"fault": {"loss": {"node": "client-2", "pct": "100%", "proto": "udp"}}},
                {
                    "run": {
                        "node": "client-2",
                        "cmd": "udp-client server 5001 --timeout 0.5",
                        "expect": {"exit": 1},
                    }
                },
                {"fault": {"restart": "server"}},
                {"run": {"node": "client-1", "cmd": "tcp-client server 5000 --timeout 2"}},
            ],
            "failing": [
                {"fault": {"partition": ["client-1", "server"]}},
                {"run": {"node": "client-1", "cmd": "tcp-client server 5000 --timeout 2"}},
            ],
        },
    }
    path = write_lab(doc, "steps")
    good = run(Lab.load(path, engine=engine), run_dir=tmp_path / "good")
    assert good.passed, [(s.title, s.detail) for s in good.all_steps()]
    report = json.loads((tmp_path / "good" / "report.json").read_text())
    faults = [s for s in report["steps"] if s["kind"] == "fault"]
    assert [f["title"] for f in faults] == [
        "fault partition client-1 | server",
        "fault heal all",
        "fault loss client-2 100% (udp)",
        "fault restart server",
    ]
    assert faults[0]["fault"]["nodes"] == ["client-1", "server"]
    timeline = [e for e in report["timeline"] if e["event"] == "fault"]
    assert {(e["node"], e["fields"]["action"]) for e in timeline} >= {
        ("client-1", "partition"),
        ("server", "partition"),
        ("server", "restart"),
    }
    html = (tmp_path / "good" / "report.html").read_text()
    assert "fault partition client-1 | server" in html
    bad = run(Lab.load(path, engine=engine), "failing", run_dir=tmp_path / "bad")
    assert not bad.passed
    failed = [s for s in bad.all_steps() if s.status == "failed"]
    assert [s.index for s in failed] == ["2"] and "ETIMEDOUT" in failed[0].detail


def test_a_published_port_lab_has_no_route_out(make_lab: Callable[..., Lab]) -> None:
    doc = {
        "networks": {"lan": {}},
        "nodes": {
            "server": {"networks": ["lan"], "start": ["tcp-server --port 5000"], "ports": ["5000"]},
            "client": {"networks": ["lan"]},
        },
    }
    lab = make_lab(doc, "ports")
    for node in ("server", "client"):
        assert echo(lab, node, "192.0.2.1")[1] == "ENETUNREACH"
    port = subprocess.run(
        ["docker", "port", lab.node("server").container, "5000/tcp"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split(":")[-1]
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as s:
        s.sendall(b"hi")
        assert s.recv(2) == b"hi"  # the published port still answers the host
