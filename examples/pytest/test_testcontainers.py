"""socklab with testcontainers: a testcontainers container joins a lab network and is
reached by its alias from the lab's nodes; a lab node goes to code written for a
testcontainers container (host, exposed port, logs)."""

import socket
import time

from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import LogMessageWaitStrategy

from socklab.orchestrator.image import node_image_tag


def echo_once(container, port: int, text: bytes) -> bytes:
    """Code written for a testcontainers container: its host, its exposed port, its logs."""
    host = container.get_container_host_ip()
    with socket.create_connection((host, int(container.get_exposed_port(port))), timeout=10) as conn:
        conn.sendall(text)
        answer = conn.recv(len(text))
    deadline = time.monotonic() + 30  # the server's log says it accepted (a moment later)
    while b"accepted" not in container.get_logs()[0]:
        assert time.monotonic() < deadline, "the server never logged the connection"
        time.sleep(0.2)
    return answer


def test_a_testcontainers_container_on_the_lab_network(socklab_lab):
    lab = socklab_lab("lab.yml")
    # any image of yours; here socklab's own node image, which has a TCP server
    cache = (
        DockerContainer(node_image_tag())
        .with_command("tcp-server --port 6379")
        .with_network(lab.network("lan"))
        .with_network_aliases("cache")
        .waiting_for(LogMessageWaitStrategy('"event": "listening"'))
    )
    with cache:  # started once its server listens
        reached = lab.node("client-1").exec("tcp-client cache 6379 --count 1 --timeout 20")
        assert reached.ok, reached.stdout + reached.stderr


def test_a_lab_node_where_a_testcontainers_container_is_expected(socklab_lab):
    server = socklab_lab("lab.yml").node("server")
    assert echo_once(server, 7000, b"ping") == b"ping"
