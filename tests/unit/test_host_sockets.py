"""The host-side snapshot on a fake /proc tree, and when a snapshot may use it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from socklab.nodes import sockstat
from socklab.observe.host_sockets import HostProc, host_reading
from socklab.orchestrator.engine import local_url

from .test_sockstat import _fake_proc

CID = "3f" * 32
NODE_NS, HOST_NS = "pid:[4026532001]", "pid:[4026531836]"


def _host_view(container: Path, host: Path) -> int:
    """The node of ``container`` (a fake /proc as the node sees it) as its host sees it: each
    pid p is host pid 5000 + p in the node's pid namespace, and a host process outside it
    shares one of its sockets. The node's first process (pid 1) is returned."""
    pids = [1, *(int(p.name) for p in container.iterdir() if p.name.isdigit())]
    for pid in pids:
        mine = host / str(5000 + pid)
        mine.mkdir(parents=True)
        (mine / "status").write_text(f"Name:\tx\nNSpid:\t{5000 + pid}\t{pid}\n")
        (mine / "ns").mkdir()
        (mine / "ns" / "pid").symlink_to(NODE_NS)
        (mine / "comm").write_text(
            "docker-init\n" if pid == 1 else (container / str(pid) / "comm").read_text()
        )
        (mine / "fd").mkdir()
        for fd in (container / str(pid) / "fd").iterdir() if pid != 1 else []:
            (mine / "fd" / fd.name).symlink_to(fd.readlink())
    first = host / "5001"
    (first / "cgroup").write_text(f"12:pids:/docker/{CID}\n0::/docker/{CID}\n")
    (first / "net").symlink_to(container / "net")
    other = host / "77"  # a host process holding the node's socket 1001: not the node's
    (other / "ns").mkdir(parents=True)
    (other / "ns" / "pid").symlink_to(HOST_NS)
    (other / "status").write_text("NSpid:\t77\n")
    (other / "comm").write_text("intruder\n")
    (other / "fd").mkdir()
    (other / "fd" / "3").symlink_to("socket:[1001]")
    return 5001


@pytest.mark.skipif(sys.byteorder != "little", reason="fixtures are little-endian")
def test_host_view_gives_the_rows_the_node_gives(tmp_path: Path) -> None:
    container = _fake_proc(tmp_path / "node")
    first = _host_view(container, tmp_path / "host")
    in_node = sockstat.read_sockets(proc=str(container))
    from_host = HostProc(str(tmp_path / "host")).sockets(first, CID)
    assert from_host == in_node
    owned = {r["inode"]: (r["pid"], r["program"]) for r in from_host if r["pid"] is not None}
    assert owned[1001] == (12, "tcp-server")  # the node's pid, the lowest of two holders


def test_a_pid_that_is_not_the_containers_is_refused(tmp_path: Path) -> None:
    first = _host_view(_fake_proc(tmp_path / "node"), tmp_path / "host")
    proc = HostProc(str(tmp_path / "host"))
    assert proc.sockets(first, "another" + CID[7:]) is None  # its cgroup names another container
    assert proc.sockets(0, CID) is None  # not running
    assert proc.sockets(4242, CID) is None  # no such process here


@pytest.mark.parametrize(
    ("setting", "euid", "local", "expected"),
    [
        (None, 0, True, True),
        ("auto", 0, True, True),
        ("exec", 0, True, False),  # asked for
        (" EXEC ", 0, True, False),
        (None, 1000, True, False),  # not root: another user's /proc/<pid>/fd is not readable
        (None, 0, False, False),  # the daemon is elsewhere: its pids are not this host's
    ],
)
def test_when_a_snapshot_reads_the_host(setting: str | None, euid: int, local: bool, expected: bool) -> None:
    assert host_reading(setting, euid, local) is expected


@pytest.mark.parametrize(
    ("docker_host", "local"),
    [
        ("unix:///var/run/docker.sock", True),
        ("unix:///run/user/1000/docker.sock", True),
        ("tcp://127.0.0.1:2375", False),
        ("tcp://10.0.0.5:2376", False),
    ],
)
def test_only_a_unix_socket_is_this_host(docker_host: str, local: bool) -> None:
    import docker

    client = docker.APIClient(base_url=docker_host, version="1.41")
    assert local_url(client.base_url) is local
