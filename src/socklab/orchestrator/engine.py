"""The Docker adapter: the only module of socklab that imports the docker SDK.

Every call that reaches the daemon goes through :class:`Engine`, so the rest
of the code deals in plain values and :class:`~socklab.errors.LabError`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors

from socklab.errors import LabError

LAB_LABEL = "io.socklab.lab"

DAEMON_HINT = "start Docker (e.g. `systemctl start docker`) or set DOCKER_HOST; `docker info` must work"


class Engine:
    """A connection to one Docker daemon."""

    def __init__(self, client: Any = None) -> None:
        try:
            self._client = client or docker.from_env(timeout=120)
            self._client.ping()
        except docker.errors.DockerException as exc:
            raise LabError(f"Docker daemon not reachable: {_reason(exc)}", DAEMON_HINT) from exc
        self.api = self._client.api

    # -- images -------------------------------------------------------------

    def image_info(self, ref: str) -> dict[str, Any] | None:
        """The daemon's inspect data for an image, or None when it is absent."""
        try:
            info: dict[str, Any] = self.api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            return None
        return info

    def import_image(self, tar_path: Path, repository: str, tag: str) -> None:
        """``docker import`` a rootfs tarball as ``repository:tag``."""
        self.api.import_image_from_file(str(tar_path), repository=repository, tag=tag)

    def build_image(
        self,
        context: Path,
        tag: str,
        *,
        dockerfile: str = "Dockerfile",
        pull: bool = False,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        """``docker build`` a local context; raises LabError with the build's last lines."""
        tail: list[str] = []
        stream = self.api.build(
            path=str(context), dockerfile=dockerfile, tag=tag, pull=pull, rm=True,
            forcerm=True, decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                raise LabError(
                    f"image build failed: {chunk['error'].strip()}",
                    "\n".join(tail[-5:]) or None,
                )
            line = str(chunk.get("stream", "")).rstrip()
            if line:
                tail.append(line)
                if on_line:
                    on_line(line)

    def remove_image(self, ref: str) -> None:
        try:
            self.api.remove_image(ref, force=True)
        except docker.errors.ImageNotFound:
            pass


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


@functools.cache
def default_engine() -> Engine:
    """One shared connection per process."""
    return Engine()


def iter_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Split a byte stream of log chunks into text lines."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace")
    if buf:
        yield buf.decode("utf-8", "replace")
