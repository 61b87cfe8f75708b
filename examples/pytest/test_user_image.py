"""Your own service image (no python3 in it) as a lab node, observed like socklab's apps."""

import os
from pathlib import Path

import pytest
from testcontainers.core.image import DockerImage

from socklab.orchestrator.image import base_image_tag


@pytest.fixture(scope="session")
def service_image():
    """Build the service's image once per session (removed afterwards)."""
    context = Path(__file__).parent / "service"
    with DockerImage(
        path=context, tag=f"socklab-example/shop:{os.getpid()}", buildargs={"BASE": base_image_tag()}
    ) as built:
        yield str(built)


def test_your_service_as_a_node(socklab_lab, service_image):
    lab = socklab_lab(
        {
            "name": "shop",
            "networks": {"lan": {}},
            "nodes": {
                "shop": {"networks": ["lan"], "image": service_image},  # runs the image's CMD
                "client": {"networks": ["lan"]},
            },
        }
    )
    lab.wait_listening("shop", "tcp/8080")  # read through a helper: the image has no tools
    greeting = lab.node("client").exec("nc -w 5 shop 8080")
    assert greeting.stdout == "hello from the shop\n"
    lab.wait_listening("shop", "tcp/8080")  # its loop starts a new `nc -l` after each client
    [listener] = [r for r in lab.sockets("shop") if r.state == "LISTEN" and r.local_port == 8080]
    assert listener.program == "nc"  # the program and pid of your service's socket
