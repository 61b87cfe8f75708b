"""The lab graph (pure): networks, nodes, addresses and aliases as Mermaid, DOT and text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from socklab.cli import app
from socklab.topology import parse_topology
from socklab.topology.graph import FORMATS, LabGraph, lab_graph, render
from socklab.topology.plan import plan

GOLDEN = Path(__file__).parent / "golden" / "compose"


def graph_of_lab() -> LabGraph:
    return lab_graph(plan(parse_topology((GOLDEN / "lab.yml").read_text())))


@pytest.mark.parametrize("fmt", FORMATS)
def test_graph_golden(fmt: str) -> None:
    text = render(graph_of_lab(), fmt)  # type: ignore[arg-type]
    path = GOLDEN / f"lab.graph.{'mmd' if fmt == 'mermaid' else fmt}"
    if os.environ.get("SOCKLAB_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_graph_model_has_every_address_and_alias() -> None:
    g = graph_of_lab()
    assert [n.name for n in g.networks] == ["front", "back"]
    assert g.networks[1].ipv6_subnet == "fd00:77:2::/64"
    assert [(n.name, n.role) for n in g.nodes] == [
        ("web", "node"),
        ("db", "node"),
        ("client-1", "node"),
        ("client-2", "node"),
        ("dns", "dns"),
    ]
    web = [link for link in g.links if link.node == "web"]
    assert [(x.network, x.ip, x.ipv6, x.aliases) for x in web] == [
        ("front", "10.77.1.10", None, ("www",)),
        ("back", "10.77.2.10", "fd00:77:2::2", ()),
    ]
    assert g.as_dict()["links"][0]["node"] == "web"


def test_running_addresses_replace_the_planned_ones() -> None:
    topo = parse_topology((GOLDEN / "lab.yml").read_text())
    g = lab_graph(plan(topo), {"client-1": {"front": ("10.77.1.99", "")}})
    link = next(x for x in g.links if x.node == "client-1")
    assert (link.ip, link.ipv6) == ("10.77.1.99", None)


def test_mermaid_labels_cannot_break_the_syntax() -> None:
    topo = parse_topology(
        "name: q\nnetworks: {lan: {}}\nnodes:\n  a: {networks: {lan: {aliases: [x.y]}}, image: 'img\"x'}\n"
    )
    text = render(lab_graph(plan(topo)), "mermaid")
    assert "image img#quot;x" in text and 'img"x' not in text


def test_unknown_format_is_a_clear_error(tmp_path: Path) -> None:
    lab = tmp_path / "l.yml"
    lab.write_text("name: g\nnetworks: {lan: {}}\nnodes: {a: {networks: [lan]}}\n")
    result = CliRunner().invoke(app, ["graph", str(lab), "--format", "png"])
    assert result.exit_code == 2
    assert "unknown format 'png'" in result.output


def test_routers_and_impairments_are_marked() -> None:
    topo = parse_topology(
        "name: routed\nnetworks:\n"
        "  lan: {subnet: 10.77.1.0/24, impair: {loss: 5%, delay: 40ms}}\n"
        "  wan: {subnet: 10.77.2.0/24}\n"
        "nodes:\n  r: {networks: [lan, wan], router: true}\n"
        "  a: {networks: {lan: {impair: {rate: 1mbit}}}}\n  b: {networks: [wan]}\n"
    )
    g = lab_graph(plan(topo))
    assert [(n.name, n.role) for n in g.nodes] == [("r", "router"), ("a", "node"), ("b", "node")]
    assert [(x.node, x.network, x.impair) for x in g.links] == [
        ("r", "lan", "loss 5% delay 40ms"),
        ("r", "wan", None),
        ("a", "lan", "loss 5% delay 40ms rate 1mbit"),
        ("b", "wan", None),
    ]
    assert [n.marks for n in g.networks] == [("impaired links",), ()]
    mermaid = render(g, "mermaid")
    assert 'node0{"r<br/>router"}' in mermaid  # a router is a rhombus
    assert "impaired: loss 5% delay 40ms rate 1mbit" in mermaid
    assert "  a  10.77.1.3  impaired: loss 5% delay 40ms rate 1mbit" in render(g, "text")
