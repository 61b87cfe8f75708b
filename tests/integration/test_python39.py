"""The node code on Python 3.9, the oldest it claims: its unit tests run in a container of
Debian bullseye (Python 3.9), whose rootfs mmdebstrap makes from this host's own apt
mirrors (no registry), imported once as ``socklab/test-py39:<hash>`` and kept.

The tests that run there are the node apps', the socket reader's and the supervisor's
(``NODE_TESTS``): keep them Python 3.9 code (ruff's UP rules are off for them).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from socklab.errors import LabError
from socklab.orchestrator import bootstrap
from socklab.orchestrator.engine_api import Engine
from socklab.orchestrator.image import RECIPE_DIR

from .conftest import lab_name

SUITE = "bullseye"  # Debian 11: Python 3.9
PACKAGES = ["python3", "python3-pytest", "iproute2", "procps", "net-tools", "netcat-openbsd"]
REPO = "socklab/test-py39"
ROOT = Path(__file__).resolve().parents[2]
NODE_TESTS = sorted(
    [
        *(ROOT / "tests/unit").glob("test_node_apps_*.py"),
        ROOT / "tests/unit/test_sockstat.py",
        *(ROOT / "tests/unit").glob("test_supervisor*.py"),
    ]
)


@pytest.fixture(scope="module")
def py39_image(engine: Engine) -> str:
    tag = hashlib.sha256(f"{SUITE} {' '.join(PACKAGES)}".encode()).hexdigest()[:12]
    if engine.image(f"{REPO}:{tag}") is not None:
        return f"{REPO}:{tag}"
    mmdebstrap = shutil.which("mmdebstrap")
    assert mmdebstrap, "mmdebstrap is needed (`make deps` installs it)"
    with tempfile.TemporaryDirectory(prefix="socklab-py39-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        try:
            bootstrap.make_rootfs(
                mmdebstrap,
                rootfs,
                PACKAGES,
                RECIPE_DIR / "dpkg-excludes.cfg",
                lambda _line: None,
                suite=SUITE,
            )
        except LabError as exc:
            if "Release" in exc.message:  # the host's mirror does not carry bullseye (any more)
                pytest.skip(f"no Debian {SUITE} on this host's apt mirror: {exc.message}")
            raise
        engine.import_image(
            rootfs, REPO, tag, changes=["ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8"]
        )
    return f"{REPO}:{tag}"


def _tree() -> bytes:
    """/work: the node package twice (importable as ``socklab.nodes`` with an empty
    ``socklab/__init__.py``, as in the node image; and under ``src/`` for the tests that
    copy it), and the node tests."""
    files: dict[str, bytes] = {
        "py/socklab/__init__.py": b"",
        "tests/__init__.py": b"",
        "tests/unit/__init__.py": b"",
    }
    for path in sorted((ROOT / "src/socklab/nodes").glob("*.py")):
        files[f"py/socklab/nodes/{path.name}"] = path.read_bytes()
        files[f"src/socklab/nodes/{path.name}"] = path.read_bytes()
    for path in [*NODE_TESTS, ROOT / "tests/unit/test_node_apps_support.py"]:
        files[f"tests/unit/{path.name}"] = path.read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"work/{name}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def container(py39_image: str) -> Iterator[object]:
    from testcontainers.core.container import DockerContainer

    # ::1 and NET_ADMIN, as the node tests have on the host: none of them is skipped
    box = (
        DockerContainer(py39_image)
        .with_command("sleep infinity")
        .with_kwargs(
            labels={"io.socklab.lab": lab_name("py39")},
            init=True,
            cap_add=["NET_ADMIN"],
            sysctls={"net.ipv6.conf.all.disable_ipv6": "0", "net.ipv6.conf.lo.disable_ipv6": "0"},
        )
    )
    with box:
        wrapped = box.get_wrapped_container()
        assert wrapped.put_archive("/", _tree())
        yield wrapped


def test_the_node_code_passes_its_tests_on_python_3_9(container: object) -> None:
    version = container.exec_run(["python3", "--version"])  # type: ignore[attr-defined]
    assert version.output.decode().startswith("Python 3.9."), version.output
    names = [f"tests/unit/{p.name}" for p in NODE_TESTS]
    done = container.exec_run(  # type: ignore[attr-defined]
        ["python3", "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *names],
        workdir="/work",
        environment={"PYTHONPATH": "/work/py"},
    )
    output = done.output.decode(errors="replace")
    print(
        "\n".join(
            line
            for line in output.splitlines()
            if line.startswith(("SKIPPED", "FAILED")) or " passed" in line
        )
    )
    assert done.exit_code == 0, output[-4000:]
