"""The course: every row of the design's curriculum has a shipped lab with that topic, and
`socklab labs` lists, shows and copies them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from socklab.catalog import COURSE, TOPICS, shipped_labs
from socklab.cli import app
from socklab.topology import load_topology

# The first column of the curriculum table of the design (DESIGN.md, "Curriculum: every
# topic of the notes is a shipped lab that passes in CI"), as written there.
CURRICULUM = [
    "socket = IP + port + protocol; 2^16 ports; a bound port can't be reopened",
    "client\u2013server model; iterative vs concurrent server",  # an en dash, as written
    "server steps (create, bind, listen, loop) / client steps (create, resolve, send, wait, parse)",
    "domains PF_UNIX/PF_LOCAL, PF_INET, PF_INET6",
    "types STREAM, DGRAM, RAW, SEQPACKET, RDM",
    "accept() returns a new socket + peer address",
    "close() vs shutdown(SHUT_RD/WR/RDWR)",
    "settimeout",
    "send/recv, sendto/recvfrom, out-of-band data",
    "makefile, socketpair instead of pipes",
    "getsockname / getpeername",
    "netstat -a",
    "socket options: SO_REUSEADDR, TCP_NODELAY, getsockopt/setsockopt",
    "address conversion inet_pton/ntop/aton/ntoa, byte order",
    "resolver: gethostbyname(_ex), gethostbyaddr, getaddrinfo, getfqdn, services",
    "errno table",
]
ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_every_row_of_the_curriculum_is_a_topic_of_the_course() -> None:
    assert [t.notes for t in COURSE] == [row.replace("\u2013", "-") for row in CURRICULUM]
    assert len(set(TOPICS)) == len(CURRICULUM)


@pytest.mark.parametrize("topic", TOPICS)
def test_every_topic_has_a_shipped_lab_with_a_scenario(topic: str) -> None:
    labs = [lab for lab in shipped_labs() if lab.topic == topic]
    assert labs, f"no shipped lab has topic {topic!r}"
    for lab in labs:
        assert "default" in load_topology(lab.path).scenarios, lab.name


@pytest.mark.parametrize("lab", shipped_labs(), ids=lambda lab: lab.name)
def test_every_shipped_lab_says_what_it_teaches(lab: object) -> None:
    from socklab.catalog import ShippedLab

    assert isinstance(lab, ShippedLab)
    topo = load_topology(lab.path)
    assert topo.topic and len(topo.description) > 80, lab.name
    assert "default" in topo.scenarios
    assert f"## {lab.name}" in (ROOT / "docs" / "labs.md").read_text(), (
        f"docs/labs.md has no section for {lab.name}"
    )


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_labs_lists_them_in_the_order_of_the_course() -> None:
    code, out, _ = cli("labs", "--json")
    assert code == 0
    found = json.loads(out)
    assert [f["name"] for f in found][:3] == ["ports", "concurrency", "echo"]
    assert {"name", "topic", "description", "path"} == set(found[0])
    order = [TOPICS.index(f["topic"]) for f in found if f["topic"] in TOPICS]
    assert order == sorted(order)
    code, out, _ = cli("labs")
    assert code == 0 and "LAB" in out and "TOPIC" in out
    assert "ports and addresses" in out and "errno" in out


def test_labs_show_prints_what_it_teaches_and_the_topology() -> None:
    code, out, _ = cli("labs", "show", "errno")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "errno — errno"
    assert "run it: socklab run errno" in out
    assert "name: errno" in out and "cap_add: [NET_ADMIN]" in out  # the file, comments too
    code, out, _ = cli("labs", "show", "ports", "--json")
    shown = json.loads(out)
    assert shown["topic"] == "ports and addresses" and shown["nodes"] == ["server", "other", "client"]
    assert shown["scenarios"] == ["default"] and shown["yaml"].startswith("name: ports")


def test_labs_show_an_unknown_name_says_the_near_one() -> None:
    code, _, err = cli("labs", "show", "erno")
    assert code == 2
    assert "no shipped lab named 'erno'" in err and "did you mean 'errno'?" in err


def test_labs_copy_writes_the_file_to_edit_and_never_overwrites_by_surprise(tmp_path: Path) -> None:
    code, out, _ = cli("labs", "copy", "shutdown", str(tmp_path / "mine"))
    assert code == 0
    copied = tmp_path / "mine" / "shutdown.yml"
    assert f"copied lab 'shutdown' to {copied}" in out
    assert copied.read_text() == (ROOT / "labs" / "shutdown.yml").read_text()
    assert load_topology(copied).name == "shutdown"
    code, _, err = cli("labs", "copy", "shutdown", str(tmp_path / "mine"))
    assert code == 2 and "already exists" in err and "--force" in err
    code, _, _ = cli("labs", "copy", "shutdown", str(tmp_path / "mine"), "--force")
    assert code == 0
