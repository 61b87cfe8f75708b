"""The node image ``socklab/node:<hash>``: its tag, build (pull or bootstrap), status.

The image is two layers of work: a *base* (Debian plus the lab's tools, tagged
``socklab/base:<hash of the recipe>``) and a thin *node layer* with the code of
:mod:`socklab.nodes` and one wrapper per command of ``socklab.nodes.COMMANDS``.
A change of node code therefore rebuilds only the node layer.

Two ways to get a base: ``pull`` (``docker build`` FROM a Python slim image, needs
a registry) and ``bootstrap`` (a Debian rootfs made by ``mmdebstrap`` from the
host's own apt sources, see :mod:`socklab.orchestrator.bootstrap`, then
``docker import``-ed; needs no registry).
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import io
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import socklab.nodes
from socklab.errors import LabError
from socklab.orchestrator import bootstrap
from socklab.orchestrator.engine_api import Engine

Method = Literal["auto", "pull", "bootstrap"]
Progress = Callable[[str], None]

NODE_REPO = "socklab/node"
BASE_REPO = "socklab/base"
RECIPE_DIR = Path(__file__).parent / "recipe"
NODES_DIR = Path(socklab.nodes.__file__).parent
IN_IMAGE_ROOT = "/opt/socklab"
IN_BIN = "/usr/local/bin"


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build` did: ``built`` is False when the image was already there.

    ``method`` is ``pull`` or ``bootstrap`` (the base was made), ``base-reused`` (only
    the node layer was built) or ``present`` (nothing to do).
    """

    tag: str
    method: str
    seconds: float
    built: bool


@dataclass(frozen=True)
class ImageStatus:
    """The node image of this code on the daemon."""

    tag: str
    present: bool
    size_bytes: int | None
    created: str | None
    base_present: bool


# -- tags ---------------------------------------------------------------------


def _read_tree(root: Path, pattern: str) -> dict[str, bytes]:
    """A snapshot of the files of a tree: relative path -> content."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob(pattern))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _digest(**trees: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for prefix, files in trees.items():
        for rel, data in sorted(files.items()):
            name = f"{prefix}/{rel}".encode()
            h.update(b"%d:%s%d:" % (len(name), name, len(data)))
            h.update(data)
    return h.hexdigest()[:12]


def _tags(nodes: dict[str, bytes], recipe: dict[str, bytes]) -> tuple[str, str]:
    """The node and base image tags of these snapshots."""
    return (
        f"{NODE_REPO}:{_digest(nodes=nodes, recipe=recipe)}",
        f"{BASE_REPO}:{_digest(recipe=recipe)}",
    )


def node_image_tag() -> str:
    """``socklab/node:<12 hex>``: a hash of the node code and of the image recipe."""
    return _tags(_read_tree(NODES_DIR, "*.py"), _read_tree(RECIPE_DIR, "*"))[0]


def base_image_tag() -> str:
    """``socklab/base:<12 hex>``: a hash of the image recipe only."""
    return _tags({}, _read_tree(RECIPE_DIR, "*"))[1]


# -- public API ---------------------------------------------------------------


def status(engine: Engine) -> ImageStatus:
    """Whether the node image of this code (and its base) is on the daemon."""
    tag = node_image_tag()
    info = engine.image(tag)
    return ImageStatus(
        tag=tag,
        present=info is not None,
        size_bytes=info.size if info else None,
        created=info.created if info else None,
        base_present=engine.image(base_image_tag()) is not None,
    )


def ensure(engine: Engine, on_progress: Progress | None = None) -> str:
    """The node image tag, built with method ``auto`` when it is missing."""
    return build(engine, "auto", on_progress=on_progress).tag


def build(
    engine: Engine,
    method: Method = "auto",
    *,
    force: bool = False,
    on_progress: Progress | None = None,
) -> BuildResult:
    """Build the node image (and its base when missing, or always with ``force``).

    ``auto`` reuses a present base, else tries ``pull`` and falls back at once to
    ``bootstrap``. Builds from concurrent processes are serialized by a lock file.
    """
    if method not in ("auto", "pull", "bootstrap"):
        raise LabError(f"unknown image build method {method!r}", "use auto, pull or bootstrap")
    say = on_progress or (lambda _line: None)
    # one snapshot of the code: the tag names exactly what goes into the image
    nodes, recipe = _read_tree(NODES_DIR, "*.py"), _read_tree(RECIPE_DIR, "*")
    tag, base = _tags(nodes, recipe)
    start = time.monotonic()
    if not force and engine.image(tag) is not None:
        return BuildResult(tag, "present", 0.0, built=False)
    with _build_lock(say):
        if not force and engine.image(tag) is not None:  # another process built it
            return BuildResult(tag, "present", time.monotonic() - start, built=False)
        if force or engine.image(base) is None:
            used = _build_base(engine, method, base, say)
        else:
            used = "base-reused"
            say(f"reusing base image {base}")
        say("building node layer")
        _build_node_layer(engine, base, tag, nodes, recipe, say)
        _prune(engine, tag.split(":")[0], keep=tag)
    return BuildResult(tag, used, time.monotonic() - start, built=True)


def _prune(engine: Engine, repository: str, keep: str) -> None:
    """Untag the node images of older node code (those still used by a container stay)."""
    for old in engine.image_tags(repository):
        if old != keep:
            engine.untag_image(old)


# -- base ---------------------------------------------------------------------


def _build_base(engine: Engine, method: Method, base: str, say: Progress) -> str:
    if method == "bootstrap":
        _bootstrap_base(engine, base, say)
        return "bootstrap"
    try:
        _pull_base(engine, base, say)
        return "pull"
    except LabError as exc:
        if method == "pull":
            raise LabError(
                f"pull build failed: {exc.message}",
                "no registry reachable? build without one: socklab image build --method bootstrap",
            ) from exc
        say(f"pull failed ({exc.message}); falling back to bootstrap")
    _bootstrap_base(engine, base, say)
    return "bootstrap"


def _image_config() -> list[str]:
    """The base's ENV/LABEL/CMD lines (recipe/image-config.dockerfile)."""
    text = (RECIPE_DIR / "image-config.dockerfile").read_text()
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _pull_base(engine: Engine, base: str, say: Progress) -> None:
    say("docker build FROM python:3.11-slim (pull)")
    with tempfile.TemporaryDirectory(prefix="socklab-pull-") as tmp:
        context = Path(tmp)
        for name in ("packages.txt", "dpkg-excludes.cfg"):
            shutil.copyfile(RECIPE_DIR / name, context / name)
        dockerfile = (RECIPE_DIR / "Dockerfile.pull").read_text()
        (context / "Dockerfile").write_text(dockerfile + "\n".join(_image_config()) + "\n")
        try:
            engine.build_image(context, base, pull=True, on_line=lambda line: say(f"pull: {line}"))
        except LabError:
            raise
        except Exception as exc:  # the SDK's own errors; image.py does not import docker
            raise LabError(f"image build failed: {exc}") from exc


def _bootstrap_base(engine: Engine, base: str, say: Progress) -> None:
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise LabError("mmdebstrap not found", "install it: apt-get install mmdebstrap")
    repo, _, tag = base.partition(":")
    packages = [
        line.strip()
        for line in (RECIPE_DIR / "packages.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    with tempfile.TemporaryDirectory(prefix="socklab-bootstrap-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        bootstrap.make_rootfs(mmdebstrap, rootfs, packages, RECIPE_DIR / "dpkg-excludes.cfg", say)
        say(f"importing rootfs ({rootfs.stat().st_size // 2**20} MiB)")
        engine.import_image(rootfs, repo, tag, changes=_image_config())


# -- node layer -----------------------------------------------------------------


def _build_node_layer(
    engine: Engine,
    base: str,
    tag: str,
    nodes: dict[str, bytes],
    recipe: dict[str, bytes],
    say: Progress,
) -> None:
    with tempfile.TemporaryDirectory(prefix="socklab-node-") as tmp:
        context = Path(tmp)
        _fill_node_context(context, base, nodes, recipe)
        engine.build_image(context, tag, on_line=lambda line: say(f"node layer: {line}"))


def _fill_node_context(context: Path, base: str, nodes: dict[str, bytes], recipe: dict[str, bytes]) -> None:
    """Dockerfile (FROM base + the recipe's node layer) and rootfs/: node code, wrappers."""
    (context / "Dockerfile").write_bytes(f"FROM {base}\n".encode() + recipe["Dockerfile.node"])
    # -S: no site module (the node code is standard library only): every socklab program
    # in a node starts a few ms sooner
    for rel, (data, mode) in _node_files(nodes, recipe, "/usr/bin/python3 -S").items():
        _write(context / "rootfs" / rel, data, mode)


def _node_files(
    nodes: dict[str, bytes], recipe: dict[str, bytes], python: str
) -> dict[str, tuple[bytes, int]]:
    """The node layer's files (path relative to / -> data, mode): node code and wrappers.

    ``python`` is the wrappers' interpreter: a direct path keeps the command's name as the
    process name (``tcp-server`` in netstat), ``/usr/bin/env python3`` works in any image."""
    package = f"{IN_IMAGE_ROOT.lstrip('/')}/socklab"
    files = {f"{package}/__init__.py": (b"", 0o644)}  # not the host's: it imports pydantic
    files.update({f"{package}/nodes/{rel}": (data, 0o644) for rel, data in nodes.items()})
    template = recipe["wrapper.py.in"].decode().replace("@ROOT@", IN_IMAGE_ROOT)
    template = template.replace("@PYTHON@", python)
    for command, module in sorted(_commands(nodes.get("__init__.py", b"")).items()):
        wrapper = template.replace("@MODULE@", module).encode()
        files[f"{IN_BIN.lstrip('/')}/{command}"] = (wrapper, 0o755)
    return files


def node_tree_tar() -> bytes:
    """The node layer as a tar archive, to put into a container of any image with python3."""
    files = _node_files(_read_tree(NODES_DIR, "*.py"), _read_tree(RECIPE_DIR, "*"), "/usr/bin/env python3")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(rel)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _commands(init_source: bytes) -> dict[str, str]:
    """``COMMANDS`` of this snapshot of socklab/nodes/__init__.py (a dict literal there);
    the imported ``socklab.nodes.COMMANDS`` when it is not a literal."""
    for stmt in ast.parse(init_source).body:
        if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == "COMMANDS" for t in targets):
                with contextlib.suppress(ValueError):
                    value = ast.literal_eval(stmt.value)
                    if isinstance(value, dict):
                        return {str(k): str(v) for k, v in value.items()}
    return dict(socklab.nodes.COMMANDS)


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a file of the image, with modes independent of the umask."""
    for parent in reversed(path.relative_to(path.anchor).parents[:-1]):
        directory = Path(path.anchor) / parent
        if not directory.is_dir():
            directory.mkdir()
            directory.chmod(0o755)
    path.write_bytes(data)
    path.chmod(mode)


@contextlib.contextmanager
def _build_lock(say: Progress) -> Iterator[None]:
    path = Path(tempfile.gettempdir()) / "socklab-image-build.lock"
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another socklab image build to finish")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- another image with the node supervisor ------------------------------------

SUPERVISED_REPO = "socklab/supervised"


def supervised(engine: Engine, ref: str, on_progress: Progress | None = None) -> str:
    """An image of ``ref`` plus the node code and commands (what ``socklab up`` copies into a
    node of that image at start), for files that run without socklab: compose, stacks.
    Tagged ``socklab/supervised:<hash of the image and the node code>``, built once."""
    info = engine.image(ref)
    if info is None:
        raise LabError(
            f"image '{ref}' is not on this host", "build or load it first (no registry is used to pull it)"
        )
    nodes, recipe = _read_tree(NODES_DIR, "*.py"), _read_tree(RECIPE_DIR, "*")
    tag = f"{SUPERVISED_REPO}:{_digest(nodes=nodes, recipe=recipe, image={'id': info.id.encode()})}"
    if engine.image(tag) is not None:
        return tag
    with tempfile.TemporaryDirectory(prefix="socklab-supervised-") as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(
            f"FROM {info.id}\nCOPY rootfs/ /\nENV PYTHONUNBUFFERED=1\n"
            f"LABEL io.socklab.image=supervised io.socklab.from={ref}\n"
        )
        for rel, (data, mode) in _node_files(nodes, recipe, "/usr/bin/env python3").items():
            _write(context / "rootfs" / rel, data, mode)
        engine.build_image(
            context,
            tag,
            on_line=lambda line: (on_progress or (lambda _: None))(f"{ref} + node supervisor: {line}"),
        )
    for old in engine.image_tags(SUPERVISED_REPO):  # the same image with older node code
        found = engine.image(old) if old != tag else None
        if found is not None and found.labels.get("io.socklab.from") == ref:
            engine.untag_image(old)
    return tag
