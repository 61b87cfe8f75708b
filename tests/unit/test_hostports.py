"""Who holds a port of this host, read from /proc (the process running this test)."""

from __future__ import annotations

import os
import socket

from socklab.orchestrator.hostports import holder


def test_the_process_that_listens_is_named() -> None:
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        me = f"(pid {os.getpid()})"
        found = holder(tcp.getsockname()[1])
        assert found is not None and found.endswith(me)
        assert holder(tcp.getsockname()[1], "udp") is None  # a TCP port is not a UDP port
        found_udp = holder(udp.getsockname()[1], "udp")
        assert found_udp is not None and found_udp.endswith(me)
        assert holder(udp.getsockname()[1], None) == found_udp


def test_a_port_nobody_listens_on_has_no_holder() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # bound, not listening: not a holder of the port
        assert holder(probe.getsockname()[1]) is None
