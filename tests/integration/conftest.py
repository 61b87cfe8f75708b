"""Integration fixtures: a real Docker daemon, the node image, and labs named per test run.

Every lab made here is named ``t<run id>-...`` and removed by label after its test,
and once more at the end of the session, even when a test fails.
"""

from __future__ import annotations

import itertools
import os
import random
import uuid
from collections.abc import Callable, Iterator
from ipaddress import IPv4Network
from pathlib import Path

import pytest
import yaml

from socklab import Lab
from socklab.orchestrator import deploy, image
from socklab.orchestrator.engine import default_engine
from socklab.orchestrator.engine_api import Engine

RUN_ID = uuid.uuid4().hex[:6]
_counter = itertools.count(1)

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TC_HOST", "127.0.0.1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    eng = default_engine()
    yield eng
    for lab in deploy.labs(eng):
        if lab.startswith(f"t{RUN_ID}"):
            deploy.down(eng, lab)


@pytest.fixture(scope="session")
def node_image(engine: Engine) -> str:
    return image.ensure(engine)


NO_PYTHON_SERVICE = "while true; do echo hello from the service | nc -l -N 8080; done"
"""the CMD of :func:`no_python_image`: a greeting on port 8080"""


@pytest.fixture(scope="session")
def no_python_image(
    engine: Engine, node_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A user's service image without python3 (Debian's shell and netcat only), whose CMD
    is :data:`NO_PYTHON_SERVICE`."""
    context = tmp_path_factory.mktemp("nopy")
    (context / "Dockerfile").write_text(
        f"FROM {image.base_image_tag()}\n"
        "RUN rm -rf /usr/bin/python3* /usr/local/bin/python3* /usr/lib/python3* /opt/socklab\n"
        f'CMD ["sh", "-c", "{NO_PYTHON_SERVICE}"]\n'
    )
    tag = f"socklab-test/nopy:{RUN_ID}"
    engine.build_image(context, tag)
    yield tag
    remove_test_image(engine, tag)


def remove_test_image(engine: Engine, tag: str) -> None:
    """A test image, and the ``socklab/supervised`` images made of it (compose export)."""
    for other in engine.image_tags(image.SUPERVISED_REPO):
        found = engine.image(other)
        if found is not None and found.labels.get("io.socklab.from") == tag:
            engine.remove_image(other)
    engine.remove_image(tag)


def lab_name(tag: str) -> str:
    return f"t{RUN_ID}-{tag}-{next(_counter)}"[:31]


def free_subnet(engine: Engine) -> IPv4Network:
    """A /24 of 10.231.0.0/16 that no Docker network uses now, picked at random, for a test
    that needs a static subnet: two runs sharing a daemon do not pick the same one."""
    used = engine.subnets_in_use()
    free = [
        net
        for net in IPv4Network("10.231.0.0/16").subnets(new_prefix=24)
        if not any(net.overlaps(u) for u in used if u.version == 4)
    ]
    assert free, "every /24 of 10.231.0.0/16 is in use"
    return random.choice(free)


@pytest.fixture
def write_lab(tmp_path: Path) -> Callable[..., Path]:
    """Write a topology (a dict) to a file, under a lab name unique to this run."""

    def write(doc: dict[str, object], tag: str = "lab") -> Path:
        doc = {"name": lab_name(tag), **doc}
        path = tmp_path / f"{doc['name']}.yml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    return write


@pytest.fixture
def make_lab(write_lab: Callable[..., Path], engine: Engine, node_image: str) -> Iterator[Callable[..., Lab]]:
    """Bring up a lab from a topology dict; it is taken down after the test."""
    made: list[Lab] = []

    def make(doc: dict[str, object], tag: str = "lab") -> Lab:
        lab = Lab.load(write_lab(doc, tag), engine=engine)
        made.append(lab)
        return lab.up()

    yield make
    for lab in made:
        lab.down()


def leftovers(engine: Engine, lab: str) -> list[str]:
    """Names of containers and networks still labelled with this lab."""
    labels = {"io.socklab.lab": lab}
    return [c.name for c in engine.containers(labels)] + [n.name for n in engine.networks(labels)]


#: What the ENTRYPOINT of :func:`entrypoint_image` prints when it runs instead of socklab's.
NOT_SOCKLAB = "the image ENTRYPOINT ran"


@pytest.fixture(scope="session")
def entrypoint_image(
    engine: Engine, node_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A user's image with python3 and an ENTRYPOINT of its own (which would take socklab's
    supervisor as an argument, were it given as the command)."""
    context = tmp_path_factory.mktemp("entrypoint")
    (context / "Dockerfile").write_text(
        f"FROM {image.base_image_tag()}\n"
        f'ENTRYPOINT ["sh", "-c", "echo {NOT_SOCKLAB}; exec sleep infinity", "--"]\n'
    )
    tag = f"socklab-test/entrypoint:{RUN_ID}"
    engine.build_image(context, tag)
    yield tag
    remove_test_image(engine, tag)


@pytest.fixture(scope="session")
def ipv6_unsupported(engine: Engine) -> str | None:
    """Why this daemon cannot make an IPv6 network, or None when it can (a labelled probe
    network is made and removed)."""
    from socklab.errors import LabError
    from socklab.topology.model import Topology
    from socklab.topology.plan import plan

    name = lab_name("v6probe")
    probe = plan(
        Topology.model_validate(
            {"name": name, "networks": {"v6": {"ipv6": True}}, "nodes": {"n": {"networks": ["v6"]}}}
        ),
        engine.subnets_in_use(),
    )
    try:
        engine.create_network(probe.networks[0])
    except LabError as exc:
        return exc.message
    finally:
        deploy.down(engine, name)
    return None
