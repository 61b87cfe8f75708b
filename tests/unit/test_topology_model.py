# ruff: noqa: E501  (the YAML under test has long lines)
"""Good topologies: the short forms, replicas, ports, commands, scenarios, and the JSON Schema."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from socklab.topology import Topology, json_schema, load_topology, parse_topology
from socklab.topology.errors import format_path
from socklab.topology.loader import read_document
from socklab.topology.model import (
    STEP_KINDS,
    ExpectCaptureStep,
    ExpectSocketsStep,
    ExpectTimelineStep,
    FaultStep,
    ParallelStep,
    Port,
    RunStep,
    SleepStep,
    SnapshotStep,
    StartStep,
    WaitStep,
    step_kind,
)

ROOT = Path(__file__).resolve().parents[2]

FULL = """\
name: full
description: every form the format allows
networks:
  lan: {subnet: 10.77.1.0/24, ipv6: "fd00:77:1::/64"}
  wan:
  v6: {ipv6: true}
nodes:
  server: &server
    networks:
      lan: {ip: 10.77.1.10, ipv6: "fd00:77:1::10", aliases: [echo, www]}
      wan:
    start: tcp-server --port 5000 --mode 'threaded pool'
    env: {PORT: 5000, DEBUG: true, NAME: srv}
    cap_add: [NET_ADMIN, CAP_NET_RAW]
    ports: [80, "8080:80", "127.0.0.1:8081:81/udp", "[::1]:9000:90", {container_port: 82, host_ip: 0.0.0.0}]
  backup:
    <<: *server
    networks: [lan, v6]
    ports: []
  client:
    replicas: 3
    networks: [lan]
    image: python:3.12-slim
    start:
      - [sleep, 5]
      - "tcp-client echo 5000 --message \\"a b\\""
scenarios:
  default:
    - start: {node: backup, cmd: tcp-server --port 6000}
    - wait: {node: server, listening: tcp/5000, timeout: 5}
    - wait: {node: client-1, connected: "server:5000"}
    - parallel:
        - run: {node: client-*, cmd: tcp-client echo 5000 --count 20}
        - run: {node: client, cmd: [tcp-client, server, 5000]}
        - parallel:
            - sleep: 1
    - expect_sockets: {node: server, state: TIME_WAIT, proto: tcp, local_port: 5000, min: 1, max: 30}
    - run: {node: client-1, cmd: tcp-client server 5999, expect: {errno: ECONNREFUSED}}
    - fault: {partition: [client-2, server]}
    - run: {node: "client-[23]", cmd: tcp-client server 5000, timeout: 2, expect: {errno: ETIMEDOUT, duration_max: 3}}
    - sleep: 0.5
    - snapshot: sockets
    - capture: {node: server, id: hs, filter: tcp port 5000}
    - run: {node: client-1, cmd: tcp-client echo 5000, id: one, expect: {stdout_matches: '^\\{.*connected', events: [{event: connected, fields: {peer: "10.77.1.10:5000"}}]}}
    - run: {node: client-2, cmd: tcp-client echo 5000, id: two}
    - expect_ratio: {of: one, to: two, min: 0.5, max: 2}
    - expect_timeline: {events: [{node: server, event: listening}, {node: client, app: tcp-client, event: connected, fields: {host: echo}}]}
    - expect_capture: {capture: hs, handshake: SYN SYN-ACK ACK, server_port: 5000, outcome: closed, min: 2}
    - compare_sockets: {node: server, tool: ss}
  smoke:
    - run: {node: server, cmd: "true"}
"""


@pytest.fixture(scope="module")
def full() -> Topology:
    return parse_topology(FULL, "full.yml")


def test_networks(full: Topology) -> None:
    lan, wan, v6 = full.networks["lan"], full.networks["wan"], full.networks["v6"]
    assert lan.subnet == IPv4Network("10.77.1.0/24") and lan.ipv6 == IPv6Network("fd00:77:1::/64")
    assert (wan.subnet, wan.ipv6) == (None, False)
    assert (v6.subnet, v6.ipv6) == (None, True)


def test_list_and_map_networks(full: Topology) -> None:
    server, backup = full.nodes["server"], full.nodes["backup"]
    att = server.networks["lan"]
    assert att.ip == IPv4Address("10.77.1.10") and att.ipv6 == IPv6Address("fd00:77:1::10")
    assert att.aliases == ["echo", "www"]
    assert server.networks["wan"].ip is None and server.networks["wan"].aliases == []
    assert list(backup.networks) == ["lan", "v6"]
    assert all(a.ip is None and a.aliases == [] for a in backup.networks.values())


def test_list_form_equals_empty_map_form() -> None:
    head = "name: x\nnetworks: {lan: {}, wan: {}}\nnodes:\n  a:\n    networks: "
    as_list = parse_topology(head + "[lan, wan]\n")
    as_map = parse_topology(head + "{lan: {}, wan: }\n")
    assert as_list == as_map


def test_merge_keys(full: Topology) -> None:
    backup = full.nodes["backup"]
    assert backup.start == full.nodes["server"].start
    assert backup.env == {"PORT": "5000", "DEBUG": "true", "NAME": "srv"}
    assert backup.ports == []


def test_replicas(full: Topology) -> None:
    names = [inst for inst, _, _ in full.instances()]
    assert names == ["server", "backup", "client-1", "client-2", "client-3"]
    assert full.match_nodes("client") == ["client-1", "client-2", "client-3"]
    assert full.match_nodes("client-*") == ["client-1", "client-2", "client-3"]
    assert full.match_nodes("client-[23]") == ["client-2", "client-3"]
    assert full.match_nodes("server") == ["server"]
    assert full.domain == "full.test"


def test_ports_short_forms(full: Topology) -> None:
    assert full.nodes["server"].ports == [
        Port(container_port=80),
        Port(container_port=80, host_port=8080),
        Port(container_port=81, host_port=8081, protocol="udp"),
        Port(container_port=90, host_port=9000, host_ip=IPv6Address("::1")),
        Port(container_port=82, host_ip=IPv4Address("0.0.0.0")),
    ]
    assert full.nodes["server"].ports[0].host_ip == IPv4Address("127.0.0.1")


def test_commands_split_with_shell_rules(full: Topology) -> None:
    assert [c.argv for c in full.nodes["server"].start] == [
        ["tcp-server", "--port", "5000", "--mode", "threaded pool"]
    ]
    assert [c.argv for c in full.nodes["client"].start] == [
        ["sleep", "5"],
        ["tcp-client", "echo", "5000", "--message", "a b"],
    ]


def test_env_and_caps(full: Topology) -> None:
    assert full.nodes["server"].env == {"PORT": "5000", "DEBUG": "true", "NAME": "srv"}
    assert full.nodes["server"].cap_add == ["NET_ADMIN", "NET_RAW"]
    assert full.nodes["client"].image == "python:3.12-slim"


def test_every_step_kind(full: Topology) -> None:
    steps = full.scenarios["default"]
    kinds = [step_kind(s) for s in steps]
    assert kinds == [
        "start",
        "wait",
        "wait",
        "parallel",
        "expect_sockets",
        "run",
        "fault",
        "run",
        "sleep",
        "snapshot",
        "capture",
        "run",
        "run",
        "expect_ratio",
        "expect_timeline",
        "expect_capture",
        "compare_sockets",
    ]
    assert set(kinds) == set(STEP_KINDS)
    types = (StartStep, WaitStep, WaitStep, ParallelStep, ExpectSocketsStep, RunStep, FaultStep)
    assert all(isinstance(s, t) for s, t in zip(steps, types, strict=False))
    assert [getattr(getattr(s, step_kind(s)), "node", None) for s in steps] == [
        "backup",
        "server",
        "client-1",
        None,
        "server",
        "client-1",
        None,
        "client-[23]",
        None,
        None,
        "server",
        "client-1",
        "client-2",
        None,
        None,
        None,
        "server",
    ]
    start = steps[0]
    assert isinstance(start, StartStep) and start.start.cmd == ["tcp-server", "--port", "6000"]
    parallel = steps[3]
    assert isinstance(parallel, ParallelStep)
    inner = parallel.parallel
    assert isinstance(inner[1], RunStep) and inner[1].run.cmd == ["tcp-client", "server", "5000"]
    assert isinstance(inner[2], ParallelStep) and isinstance(inner[2].parallel[0], SleepStep)
    run = steps[7]
    assert isinstance(run, RunStep)
    assert (run.run.timeout, run.run.expect.errno, run.run.expect.duration_max) == (2, "ETIMEDOUT", 3)
    assert isinstance(steps[9], SnapshotStep) and steps[9].snapshot == "sockets"
    one = steps[11]
    assert isinstance(one, RunStep) and one.run.id == "one"
    assert one.run.expect.events[0].fields == {"peer": "10.77.1.10:5000"}
    timeline = steps[14]
    assert isinstance(timeline, ExpectTimelineStep)
    assert [(e.node, e.app, e.event) for e in timeline.expect_timeline.events] == [
        ("server", None, "listening"),
        ("client", "tcp-client", "connected"),
    ]
    captured = steps[15]
    assert isinstance(captured, ExpectCaptureStep)
    assert captured.expect_capture.handshake == ["SYN", "SYN-ACK", "ACK"]
    smoke = full.scenarios["smoke"][0]
    assert isinstance(smoke, RunStep) and smoke.run.cmd == ["true"]


def test_yaml_core_scalars() -> None:
    """YAML 1.2 core: ``8080:80`` is not base 60, ``no`` is not false."""
    doc = read_document("a: 8080:80\nb: no\nc: on\nd: 0o17\ne: 1.5\nf: ~\ng: 2024-01-01\nh: True\n")
    assert doc.data == {
        "a": "8080:80",
        "b": "no",
        "c": "on",
        "d": 15,
        "e": 1.5,
        "f": None,
        "g": "2024-01-01",
        "h": True,
    }


def test_source_map_lines() -> None:
    doc = read_document(FULL, "full.yml")
    assert doc.line(("nodes", "server", "ports", 2)) == 15
    assert doc.line(("nodes", "client", "start", 1)) == 26
    assert doc.line(("scenarios", "default", 3, "parallel", 2, "parallel", 0)) == 36
    assert doc.line(("nodes", "backup", "networks")) == 18  # written in backup itself
    assert doc.line(("nodes", "backup", "env")) == 13  # merged from the anchor
    assert doc.line(("nodes", "nope", "x")) == 7  # the closest ancestor written
    assert format_path(("scenarios", "default", 3, "parallel", 0, "run", "cmd")) == (
        "scenarios.default[3].parallel[0].run.cmd"
    )


def test_load_file(tmp_path: Path) -> None:
    path = tmp_path / "full.yml"
    path.write_text(FULL, encoding="utf-8")
    assert load_topology(path) == parse_topology(FULL)
    assert load_topology(str(path)).name == "full"


def shipped_labs() -> list[Path]:
    return sorted({*ROOT.glob("labs/*.yml"), *ROOT.glob("src/socklab/labs/*.yml")})


@pytest.mark.parametrize("lab", shipped_labs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_labs_load(lab: Path) -> None:
    assert load_topology(lab).nodes


# -- JSON Schema -----------------------------------------------------------------------------


def test_json_schema_golden() -> None:
    schema = json_schema()
    assert json.loads(json.dumps(schema)) == schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "socklab topology"
    assert "$id" not in schema
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert {"name", "description", "networks", "nodes", "scenarios"} <= set(schema["properties"])
    assert schema["required"] == ["name", "networks", "nodes"]
    nodes = schema["properties"]["nodes"]
    assert nodes["propertyNames"] == {"pattern": "^[a-z][a-z0-9-]{0,40}$"}
    assert nodes["additionalProperties"] == {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}
    node_networks = schema["$defs"]["Node"]["properties"]["networks"]["anyOf"]
    assert [s["type"] for s in node_networks] == ["object", "array"]
    assert [s.get("type") for s in schema["$defs"]["Port"]["anyOf"]] == [
        "object",
        "integer",
        "string",
    ]


def _validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    return jsonschema.Draft202012Validator(json_schema())


def test_json_schema_accepts_good_topologies() -> None:
    import yaml

    validator = _validator()
    validator.validate(read_document(FULL).data)
    for lab in shipped_labs():
        validator.validate(yaml.safe_load(lab.read_text(encoding="utf-8")))


def test_json_schema_rejects_bad_names_and_keys() -> None:
    validator = _validator()
    base: dict[str, Any] = {"name": "x", "networks": {"lan": None}, "nodes": {"a": {"networks": ["lan"]}}}
    assert validator.is_valid(base)
    assert not validator.is_valid({**base, "nodes": {"A": {"networks": ["lan"]}}})
    assert not validator.is_valid({**base, "nodes": {"a": {"networks": ["lan"], "imgae": "x"}}})
    assert not validator.is_valid({**base, "scenarios": {"d": [{"runn": {}}]}})
    assert validator.is_valid({**base, "scenarios": {"d": [{"run": {"node": "a", "cmd": "x y"}}]}})


def test_json_schema_accepts_impairments_faults_and_commands_as_written() -> None:
    """``5%``, ``40ms``, ``1mbit`` and a command string, as the README writes them."""
    validator = _validator()
    impair = {"loss": "5%", "delay": "40ms", "jitter": "10ms", "rate": "1mbit", "corrupt": 1}
    base: dict[str, Any] = {
        "name": "x",
        "networks": {"lan": {"impair": impair}, "wan": {}},
        "nodes": {
            "a": {"networks": {"lan": {"impair": {"delay": 100}}, "wan": None}, "router": True},
            "b": {"networks": ["lan"], "command": "nc -l -p 5000"},
        },
        "scenarios": {
            "d": [
                {"fault": {"loss": {"node": "a", "pct": "30%", "proto": "udp"}}},
                {"fault": {"delay": {"node": "a", "ms": "40ms", "jitter": "5ms", "net": "lan"}}},
                {"fault": {"rate": {"node": "a", "rate": "500kbit"}}},
                {"fault": {"duplicate": {"node": "a", "pct": "1%"}}},
            ]
        },
    }
    assert not list(validator.iter_errors(base))
    for bad in ({"loss": "5 percent"}, {"loss": 150}, {"delay": "soon"}, {"rate": 10}):
        doc = {**base, "networks": {"lan": {"impair": bad}, "wan": {}}}
        assert not validator.is_valid(doc), bad


def test_the_schema_describes_every_step_kind_and_every_key() -> None:
    """An editor shows a description for every key of a step (and of the lab's other models)."""
    from socklab.topology import json_schema
    from socklab.topology.model import STEP_KINDS

    defs = json_schema()["$defs"]
    step_models = {m.__name__ for m in STEP_KINDS.values()}
    specs = {"StartSpec", "RunSpec", "WaitSpec", "ExpectSocketsSpec", "Expect"}
    from socklab.topology.faults import FAULT_KINDS

    specs |= {m.__name__ for m in FAULT_KINDS.values()} | {
        "Impairment",
        "LossSpec",
        "DelaySpec",
        "RateSpec",
        "CorruptSpec",
        "DuplicateSpec",
        "ClearSpec",
        "LinkSpec",
    }
    for name in step_models | specs | {"Node", "Network", "Attachment", "DnsRecord", "Dns"}:
        assert defs[name].get("description"), name
        for key, prop in defs[name].get("properties", {}).items():
            assert prop.get("description"), f"{name}.{key}"
    assert "step" in defs["RunStep"]["description"]
    assert "argv" in defs["RunSpec"]["properties"]["cmd"]["description"]
