# ruff: noqa: E501  (golden error lines are long by nature)
"""Impairments, routers and fault steps in the topology: values, errors, cross-checks and
the planned routes, without a daemon."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from socklab.topology import TopologyError, parse_topology
from socklab.topology.impair import Impairment, format_rate, parse_ms, parse_percent, parse_rate
from socklab.topology.netsetup import NetSetup
from socklab.topology.plan import LABEL_BASE, LABEL_NET, plan


def errors(text: str) -> list[str]:
    with pytest.raises(TopologyError) as info:
        parse_topology(text, "lab.yml")
    assert info.value.exit_code == 2
    return str(info.value).splitlines()


def test_impairment_values_in_their_written_forms() -> None:
    imp = Impairment.model_validate({"loss": "5%", "delay": "40ms", "jitter": 10, "rate": "1mbit"})
    assert (imp.loss, imp.delay, imp.jitter, imp.rate) == (5.0, 40.0, 10.0, 1_000_000)
    assert imp.describe() == "loss 5% delay 40ms jitter 10ms rate 1mbit"
    assert parse_ms("1.5s") == 1500.0 and parse_ms("250us") == 0.25
    assert parse_rate("2mbps") == 16_000_000 and format_rate(500_000) == "500kbit"
    assert parse_percent(0.5) == 0.5
    for bad, call in (
        ("150", parse_percent),
        ("-5", parse_ms),
        ("fast", parse_rate),
        ("0", parse_percent),
        ("61s", parse_ms),
        ("1kbit", parse_rate),
    ):
        with pytest.raises(ValueError):
            call(bad)
    assert Impairment(loss=5).merged(Impairment(loss=1, rate=8000)) == Impairment(loss=1, rate=8000)


LAB = """\
name: lab
networks:
  lan: {impair: {loss: 5%, delay: 40ms}}
  wan: {}
nodes:
  r: {networks: [lan, wan], router: true}
  a: {networks: {lan: {impair: {loss: 1%, rate: 1mbit}}}}
  b: {networks: [wan], replicas: 2}
scenarios:
  default:
"""


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param(
            """\
    - fault: {partition: [a, b]}
    - fault: {heal: [a, b]}
    - fault: {heal: [lan, wan]}
""",
            [
                "lab.yml:13: scenarios.default[2].fault.heal: 'lan' and 'wan' are not partitioned at this step — partition them first (`fault: {partition: [lan, wan]}`), or remove this step"
            ],
            id="heal_after_heal",
        ),
        pytest.param(
            """\
    - fault: {partition: [a, wann]}
    - fault: {loss: {node: bb, pct: 30}}
    - fault: {delay: {node: a, ms: 40ms, net: wan}}
    - fault: {kil: a}
""",
            [
                "lab.yml:11: scenarios.default[0].fault.partition[1]: no node or network matches 'wann' — did you mean 'wan'?",
                "lab.yml:12: scenarios.default[1].fault.loss.node: no node matches 'bb' — did you mean 'b'?",
                "lab.yml:13: scenarios.default[2].fault.delay.net: a is not on network 'wan' — a is on: lan",
                "lab.yml:14: scenarios.default[3].fault: unknown fault 'kil' — did you mean 'kill'?",
            ],
            id="names",
        ),
        pytest.param(
            """\
    - fault: {loss: {node: a, pct: 150}}
    - fault: {delay: {node: a, ms: -5}}
    - fault: {rate: {node: a, rate: fast}}
    - fault: {heal: [a]}
""",
            [
                "lab.yml:11: scenarios.default[0].fault.loss.pct: loss 150% is out of range — give a percentage in 0..100 (more than 0)",
                "lab.yml:12: scenarios.default[1].fault.delay.ms: delay -5ms is not a duration — give a time more than 0, such as 40ms",
                "lab.yml:13: scenarios.default[2].fault.rate.rate: bad rate 'fast' — give a number and a unit such as 1mbit, 500kbit or 2mbps (units: bit, kbit, mbit, gbit, bps, kbps, mbps, gbps)",
                "lab.yml:14: scenarios.default[3].fault.heal: expected two sides [A, B], got 1 — e.g. [client, server]",
            ],
            id="values",
        ),
        pytest.param(
            """\
    - fault: {resume: a}
    - fault: {kill: b}
    - fault: {pause: b-2}
    - fault: {restart: b}
    - fault: {connect: {node: r, net: lan}}
    - parallel:
        - fault: {disconnect: {node: r, net: lan}}
    - fault: {connect: {node: r, net: lan}}
    - fault: {heal: all}
""",
            [
                "lab.yml:11: scenarios.default[0].fault.resume: node 'a' is not paused at this step — pause it first: `fault: {pause: a}`",
                "lab.yml:13: scenarios.default[2].fault.pause: node 'b-2' is killed at this step — bring it back first: `fault: {restart: b-2}`",
                "lab.yml:15: scenarios.default[4].fault.connect: node 'r' is connected to 'lan' at this step — disconnect it first: `fault: {disconnect: {node: r, net: lan}}`",
                "lab.yml:19: scenarios.default[7].fault.heal: nothing is partitioned at this step — add a `fault: {partition: [A, B]}` step before it",
            ],
            id="order",
        ),
        pytest.param(
            """\
    - fault: {partition: [r, lan]}
""",
            [
                "lab.yml:11: scenarios.default[0].fault.partition: 'r' and 'lan' leave no node to cut: a node on both sides is cut from neither — partition two sides that each have nodes of their own (e.g. [client, server])"
            ],
            id="router_on_both_sides",
        ),
    ],
)
def test_fault_steps_are_checked_by_validate(steps: str, expected: list[str]) -> None:
    assert errors(LAB + steps) == expected


def test_a_good_fault_scenario_and_a_lonely_router() -> None:
    topo = parse_topology(
        LAB
        + """\
    - fault: {partition: [lan, b]}
    - fault: {loss: {node: b, pct: 30%, net: wan, proto: udp}}
    - fault: {delay: {node: a, ms: 40ms, jitter: 5ms}}
    - fault: {rate: {node: 'b-*', rate: 500kbit}}
    - fault: {clear: a}
    - fault: {pause: a}
    - fault: {resume: a}
    - fault: {disconnect: {node: a, net: lan}}
    - fault: {connect: {node: a, net: lan}}
    - fault: {heal: [b-1, a]}
    - fault: {heal: all}
    - fault: {kill: a}
    - fault: {restart: a}
""",
        "lab.yml",
    )
    assert len(topo.scenarios["default"]) == 13
    assert errors(LAB.replace("[lan, wan], router", "[lan], router") + "    - sleep: 1\n") == [
        "lab.yml:6: nodes.r.router: a router needs two networks or more — attach it to the networks it joins, or remove 'router: true'"
    ]


ROUTED = """\
name: routed
networks:
  lan: {subnet: 10.77.1.0/24}
  mid: {subnet: 10.77.2.0/24, impair: {delay: 10ms}}
  wan: {subnet: 10.77.3.0/24}
  iso: {}
nodes:
  r1: {networks: [lan, mid], router: true}
  r2: {networks: [mid, wan], router: true}
  client: {networks: {lan: {impair: {loss: 5%}}}}
  server: {networks: {wan: {aliases: [www]}}, ports: ["8080:80"]}
  outside: {networks: [iso], ports: ["0.0.0.0:8081:80"]}
"""


def test_routes_through_routers_hosts_and_no_way_out() -> None:
    p = plan(parse_topology(ROUTED, "lab.yml"))
    nets = {n.name: n for n in p.networks}
    assert [n for n, x in nets.items() if x.internal] == []  # routed or published
    assert nets["lan"].options == {"com.docker.network.bridge.enable_ip_masquerade": "false"}
    c = {x.instance: x for x in p.containers}
    routes = {i: [(str(r.dest), str(r.via)) for r in x.net.routes] for i, x in c.items()}
    assert routes["client"] == [("10.77.2.0/24", "10.77.1.2"), ("10.77.3.0/24", "10.77.1.2")]
    assert routes["server"] == [("10.77.1.0/24", "10.77.3.2"), ("10.77.2.0/24", "10.77.3.2")]
    assert routes["r1"] == [("10.77.3.0/24", "10.77.2.3")]  # two routers away
    assert routes["outside"] == []
    assert c["r1"].sysctls == {"net.ipv4.ip_forward": "1"}
    assert c["client"].sysctls == {}
    assert ("www", "10.77.3.3") in c["client"].extra_hosts
    assert ("server.routed.test", "10.77.3.3") in c["client"].extra_hosts
    assert not any(name.startswith("outside") for name, _ in c["client"].extra_hosts)
    assert c["client"].net.impair["lan"] == Impairment(loss=5)
    assert c["r2"].net.impair["mid"] == Impairment(delay=10)
    # no default route, unless outside clients must get answers (a non-loopback port)
    assert c["server"].net.drop_default_route and c["client"].net.drop_default_route
    assert not c["outside"].net.drop_default_route
    label = c["client"].labels
    assert label[LABEL_BASE] == "client"
    assert NetSetup.from_json(label[LABEL_NET]) == c["client"].net
    assert c["client"].net.links["lan"].ip == IPv4Address("10.77.1.3")
    assert c["client"].net.routes[0].dest == IPv4Network("10.77.2.0/24")


def test_a_lab_without_routers_or_ports_needs_no_helper() -> None:
    p = plan(
        parse_topology(
            "name: l\nnetworks: {lan: {}, wan: {}}\nnodes:\n"
            "  a: {networks: [lan, wan]}\n  b: {networks: [lan]}\n",
            "l.yml",
        )
    )
    assert all(n.internal and not n.options for n in p.networks)
    assert not any(c.net.needed for c in p.containers)
    assert p.containers[0].sysctls == {"net.ipv4.ip_forward": "0"}  # only routers forward
