"""The node-side network controls without a kernel: what socklab-netctl tells iptables
and tc, how it reads its state back, and how socklab-netdelay holds packets."""

from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time

import pytest

from socklab.nodes import netctl, netdelay, nfqueue
from socklab.nodes.netctl import Refused

NO_NETEM = {"netem": False, "tbf": True, "htb": True, "statistic": True, "nfqueue": True}
NETEM = {**NO_NETEM, "netem": True}


def state(**impair: dict[str, object]) -> dict[str, object]:
    return {"impair": impair, "partition": {}}


def test_rules_are_read_back_as_the_state_they_came_from() -> None:
    s = {
        "impair": {
            "lan": {"loss": 30.0, "proto": "udp", "rate": 1_000_000, "lqueue": 3, "src": "runtime"},
            "wan": {"delay": 40.0, "jitter": 10.0, "queue": 7, "src": "topology"},
        },
        "partition": {"server": ["10.0.0.3", "fd00::3"]},
    }
    ifaces = {"lan": "eth0", "wan": "eth1"}
    text4 = netctl.iptables_text(s, ifaces, NO_NETEM, 4)
    text6 = netctl.iptables_text(s, ifaces, NO_NETEM, 6)
    assert (
        "-A SOCKLAB-EGRESS -o eth0 -p udp -m statistic --mode random --probability 0.300000 "
        '-m comment --comment "socklab loss net=lan" -j NFQUEUE --queue-num 3' in text4
    )  # the delayer drops them: a DROP on the way out would fail send() with EPERM
    assert (
        '-o eth1 -m comment --comment "socklab delay jitter=10 ms=40 net=wan" -j NFQUEUE --queue-num 7'
        in text4
    )
    assert "-A SOCKLAB-PARTITION -s 10.0.0.3 " in text4 and "fd00::3" not in text4
    assert "-A SOCKLAB-PARTITION -s fd00::3 " in text6 and "SOCKLAB-RECORD" not in text6
    # iptables-save prints addresses with a prefix length; the state reads the same
    saved4 = text4.replace("-s 10.0.0.3 ", "-s 10.0.0.3/32 ")
    saved6 = text6.replace("-s fd00::3 ", "-s fd00::3/128 ")
    assert netctl.parse_state(saved4, saved6) == s


def test_a_disconnected_network_keeps_its_impairment_but_has_no_rule() -> None:
    text = netctl.iptables_text(state(lan={"loss": 5.0, "lqueue": 1}), {}, NO_NETEM)
    assert "SOCKLAB-EGRESS -o" not in text and "socklab impair loss=5 lqueue=1 net=lan" in text


def test_impair_ops_merge_and_renew_the_delay_queue() -> None:
    s = state()
    netctl.apply_ops(s, [{"op": "impair", "nets": ["lan"], "set": {"loss": 30, "proto": "udp"}}], ["lan"])
    netctl.apply_ops(s, [{"op": "impair", "nets": ["lan"], "set": {"delay": 40}}], ["lan"])
    first = s["impair"]["lan"]["queue"]
    assert s["impair"]["lan"] == {
        "loss": 30.0,
        "proto": "udp",
        "lqueue": 1,  # the loss's drop queue, kept while there is a loss
        "delay": 40.0,
        "queue": first,
        "src": "runtime",
    }
    assert first != 1
    netctl.apply_ops(s, [{"op": "impair", "nets": ["lan"], "set": {"loss": 10}}], ["lan"])
    assert s["impair"]["lan"]["queue"] == first and "proto" not in s["impair"]["lan"]
    netctl.apply_ops(s, [{"op": "impair", "nets": ["lan"], "set": {"delay": 80}}], ["lan"])
    assert s["impair"]["lan"]["queue"] != first  # served once the delayer binds the new one
    with pytest.raises(Refused, match="not one of this node's"):
        netctl.apply_ops(s, [{"op": "impair", "nets": ["dmz"], "set": {"loss": 1}}], ["lan"])
    done = netctl.apply_ops(s, [{"op": "clear", "nets": ["lan"]}], ["lan"])
    assert done["cleared"] == ["lan"] and s["impair"] == {}


def test_an_option_not_given_is_none_and_means_none() -> None:
    """The host sends every option of an action, None where the user gave none
    (``fault LAB delay NODE 50`` has no jitter, ``loss NODE 5`` no protocol)."""
    s = state()
    netctl.apply_ops(s, [{"op": "impair", "nets": ["lan"], "set": {"delay": 40, "jitter": 5}}], ["lan"])
    netctl.apply_ops(s, [{"op": "impair", "nets": ["lan"], "set": {"delay": 50.0, "jitter": None}}], ["lan"])
    assert s["impair"]["lan"]["delay"] == 50.0 and "jitter" not in s["impair"]["lan"]
    netctl.apply_ops(s, [{"op": "impair", "nets": ["lan"], "set": {"loss": 5, "proto": "udp"}}], ["lan"])
    netctl.apply_ops(s, [{"op": "impair", "nets": ["lan"], "set": {"loss": 5.0, "proto": None}}], ["lan"])
    assert s["impair"]["lan"]["loss"] == 5.0 and "proto" not in s["impair"]["lan"]


def test_partition_and_heal_ops() -> None:
    s = state()
    netctl.apply_ops(
        s,
        [
            {"op": "partition", "peer": "b", "addresses": ["10.0.0.3"]},
            {"op": "partition", "peer": "c", "addresses": ["10.0.0.4"]},
        ],
        [],
    )
    assert netctl.apply_ops(s, [{"op": "heal", "peers": ["b", "x"]}], [])["healed"] == ["b"]
    assert netctl.apply_ops(s, [{"op": "heal", "all": True}], [])["healed"] == ["c"]
    assert s["partition"] == {}


def test_backends_without_netem_and_what_needs_it() -> None:
    assert netctl.backends({"loss": 5, "delay": 40, "rate": 8000}, NO_NETEM) == {
        "loss": "iptables statistic",
        "delay": "nfqueue",
        "rate": "tbf",
    }
    assert netctl.backends({"loss": 5, "delay": 40}, NETEM) == {"loss": "netem", "delay": "netem"}
    assert netctl.backends({"loss": 5, "proto": "udp"}, NETEM) == {"loss": "iptables statistic"}
    with pytest.raises(Refused) as err:
        netctl.backends({"corrupt": 1}, NO_NETEM)
    assert (err.value.code, err.value.missing) == (3, "sch_netem")
    with pytest.raises(Refused, match="NFQUEUE") as err:
        netctl.backends({"delay": 40}, {**NO_NETEM, "nfqueue": False})
    assert err.value.code == 3
    assert netctl.backends({"rate": 8000}, {**NO_NETEM, "tbf": False}) == {"rate": "htb"}


def test_qdiscs_tbf_htb_and_netem() -> None:
    assert netctl.tc_commands("eth0", {"loss": 5.0}, NO_NETEM) == []  # iptables does loss
    assert netctl.tc_commands("eth0", {"rate": 1_000_000}, NO_NETEM, mtu=1400) == [
        [
            "tc",
            "qdisc",
            "replace",
            "dev",
            "eth0",
            "root",
            "handle",
            "5ab:",
            "tbf",
            "rate",
            "1000000bit",
            "burst",
            "2828",
            "latency",
            "1s",
        ]
    ]
    htb = netctl.tc_commands("eth0", {"rate": 8000}, {**NO_NETEM, "tbf": False})
    assert htb[0][-3:] == ["htb", "default", "1"] and htb[1][-4:] == ["rate", "8000bit", "ceil", "8000bit"]
    assert netctl.tc_commands(
        "eth1", {"delay": 40.0, "jitter": 10.0, "loss": 5.0, "duplicate": 1.0, "rate": 8000}, NETEM
    )[0][8:] == ["netem", "delay", "40ms", "10ms", "loss", "5%", "duplicate", "1%", "rate", "8000bit"]


def test_the_delayer_reads_its_queues_from_the_rules() -> None:
    text = netctl.iptables_text(
        state(lan={"delay": 40.0, "jitter": 5.0, "queue": 3}), {"lan": "eth0"}, NO_NETEM
    )
    assert netdelay.queue_rules(text) == {3: (40.0, 5.0)}
    rand = random.Random(1)
    holds = [netdelay.hold_time(40, 5, rand) for _ in range(1000)]
    assert 0.035 <= min(holds) < 0.036 and 0.044 < max(holds) <= 0.045
    assert netdelay.hold_time(1, 10, rand) >= 0


class FakeQueue:
    def __init__(self) -> None:
        self.bound: set[int] = set()
        self.accepted: list[tuple[int, int]] = []
        self.dropped: list[tuple[int, int]] = []
        self.incoming: list[tuple[int, int]] = []
        self.pending: list[tuple[int, int]] = []

    def bind(self, q: int) -> None:
        self.bound.add(q)

    def unbind(self, q: int) -> None:
        self.bound.discard(q)

    def packets(self) -> list[tuple[int, int]]:
        out, self.incoming = self.incoming, []
        return out

    def accept(self, q: int, packet: int) -> None:
        self.accepted.append((q, packet))

    def drop(self, q: int, packet: int) -> None:
        self.dropped.append((q, packet))


def test_the_delayer_lets_packets_go_in_time_and_on_reconfiguration() -> None:
    fake = FakeQueue()
    d = netdelay.Delayer(fake, seed=0)  # type: ignore[arg-type]
    d.configure({1: (100.0, 0.0), 2: (10.0, 0.0)})
    assert fake.bound == {1, 2}
    fake.incoming = [(1, 11), (2, 21), (1, 12)]
    d.receive(now=0.0)
    d.due(now=0.05)
    assert fake.accepted == [(2, 21)]
    d.configure({2: (10.0, 0.0)})  # queue 1's rule is gone: its packets go at once
    assert fake.accepted == [(2, 21), (1, 11), (1, 12)] and fake.bound == {2}
    d.configure({2: (10.0, 0.0), 5: None})  # a loss queue: what comes is dropped at once
    fake.incoming = [(5, 51)]
    d.receive(now=1.0)
    assert fake.dropped == [(5, 51)] and not d.held


class PipeQueue(FakeQueue):
    """A fake queue the packet loop can select on: a byte written means a packet came."""

    def __init__(self) -> None:
        super().__init__()
        self.read_fd, self.write_fd = os.pipe()

    def fileno(self) -> int:
        return self.read_fd

    def arrive(self, q: int, packet: int) -> None:
        self.incoming.append((q, packet))
        os.write(self.write_fd, b".")

    def packets(self) -> list[tuple[int, int]]:
        os.read(self.read_fd, 4096)
        return super().packets()


def test_held_packets_go_on_time_while_the_rules_are_being_read() -> None:
    """iptables-save can take 0.1 s on a loaded host: the rules are read by a thread of
    their own, and the packet loop never waits for it."""
    fake = PipeQueue()
    delayer = netdelay.Delayer(fake, seed=0)  # type: ignore[arg-type]
    stuck, reads = threading.Event(), []

    def read() -> dict[int, tuple[float, float] | None]:
        reads.append(1)
        if len(reads) > 1:
            stuck.wait(10)  # the second read hangs until the end of the test
        return {1: (10.0, 0.0)}

    rules = netdelay.RuleReader(read)
    stopping: list[int] = []
    loop = threading.Thread(target=netdelay.serve, args=(delayer, rules, stopping))
    rules.start()
    loop.start()
    try:
        deadline = time.monotonic() + 5
        while fake.bound != {1} or len(reads) < 2:
            assert time.monotonic() < deadline, "the first rules were not applied"
            time.sleep(0.01)
        fake.arrive(1, 7)  # the reader is stuck in its second read now
        while fake.accepted != [(1, 7)]:
            assert time.monotonic() < deadline, "a held packet waited for the rules reader"
            time.sleep(0.01)
    finally:
        stopping.append(1)
        stuck.set()
        loop.join(5)
        rules.stopping.set()


class OneRead:
    """A netlink socket whose next read holds a packet of queue 1 and then the ACK of a
    config request: both came while the request waited."""

    def __init__(self) -> None:
        packet = (
            struct.pack("=BBH", 0, 0, socket.htons(1))
            + struct.pack("=HH", 11, 1)
            + struct.pack(">IHB", 42, 0x0800, 3)
            + b"\0"
        )
        ack = struct.pack("=i", 0) + b"\0" * 16
        self.reads = [
            struct.pack("=IHHII", 16 + len(packet), 3 << 8, 0, 0, 0)
            + packet
            + struct.pack("=IHHII", 16 + len(ack), 2, 0, 1, 0)
            + ack
        ]

    def send(self, data: bytes) -> int:
        return len(data)

    def recv(self, size: int, flags: int = 0) -> bytes:
        if not self.reads:
            raise BlockingIOError
        return self.reads.pop(0)


def test_a_packet_that_comes_during_a_config_request_keeps_its_turn() -> None:
    queue = nfqueue.Queue.__new__(nfqueue.Queue)
    queue.sock, queue._seq, queue.pending = OneRead(), 0, []  # type: ignore[assignment]
    queue.unbind(2)  # binding or unbinding a queue while queue 1 has traffic
    assert queue.packets() == [(1, 42)]  # given to the delayer, not left without a verdict
