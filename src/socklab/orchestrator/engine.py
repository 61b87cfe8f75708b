"""The Docker adapter: the only module of socklab that imports the docker SDK.

Every call that reaches the daemon goes through :class:`Engine`, so the rest
of the code deals in plain values and :class:`~socklab.errors.LabError`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import tarfile
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types

from socklab.errors import LabError
from socklab.topology.plan import ContainerPlan, Endpoint, NetworkPlan

DAEMON_HINT = "start Docker (e.g. `systemctl start docker`) or set DOCKER_HOST; `docker info` must work"


class SubnetTaken(LabError):
    """A network's subnet overlaps one that Docker already has."""

    def __init__(self, net: NetworkPlan) -> None:
        super().__init__(
            f"subnet {net.subnet} of network '{net.name}' is taken by another Docker network",
            "pick another `subnet:` or leave it out to have one allocated "
            "(`docker network ls` shows what is there)",
        )
        self.network = net


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

    def import_image(
        self, tar_path: Path, repository: str, tag: str, *, changes: list[str] | None = None
    ) -> None:
        """``docker import`` a rootfs tarball as ``repository:tag`` (``changes``: like
        ``--change``, Dockerfile ENV/CMD/LABEL lines)."""
        self.api.import_image_from_file(
            str(tar_path), repository=repository, tag=tag, changes=changes or None
        )

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

    def image_tags(self, repository: str) -> list[str]:
        """Every ``repository:tag`` of that repository on the host."""
        return [t for img in self.api.images(name=repository) for t in img.get("RepoTags") or []
                if t.startswith(f"{repository}:")]

    def untag_image(self, ref: str) -> None:
        """Remove a tag unless a container uses the image (then it stays)."""
        with contextlib.suppress(docker.errors.APIError):
            self.api.remove_image(ref, noprune=False)

    def remove_image(self, ref: str) -> None:
        with contextlib.suppress(docker.errors.ImageNotFound):
            self.api.remove_image(ref, force=True)


    # -- networks -----------------------------------------------------------

    def subnets_in_use(self) -> list[IPv4Network | IPv6Network]:
        """Every subnet of every Docker network on the host."""
        out: list[IPv4Network | IPv6Network] = []
        for net in self.api.networks():
            for cfg in (net.get("IPAM") or {}).get("Config") or []:
                with contextlib.suppress(KeyError, ValueError):
                    out.append(ip_network(cfg["Subnet"], strict=False))
        return out

    def networks(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api.networks(filters={"label": _label_filter(labels)})
        return found

    def create_network(self, net: NetworkPlan) -> str:
        pools = [docker.types.IPAMPool(subnet=str(net.subnet), gateway=str(net.gateway))]
        if net.ipv6_subnet:
            pools.append(docker.types.IPAMPool(
                subnet=str(net.ipv6_subnet), gateway=str(net.ipv6_gateway)
            ))
        try:
            made = self.api.create_network(
                net.docker_name, driver="bridge", internal=net.internal, labels=net.labels,
                enable_ipv6=bool(net.ipv6_subnet), ipam=docker.types.IPAMConfig(pool_configs=pools),
                check_duplicate=True,
            )
        except docker.errors.APIError as exc:
            text = _reason(exc)
            if "overlap" in text.lower():
                raise SubnetTaken(net) from exc
            raise LabError(f"cannot create network '{net.name}': {text}") from exc
        return str(made["Id"])

    def remove_network(self, ident: str, name: str = "") -> None:
        """Remove a network; the daemon may still be detaching removed containers: retry."""
        for _ in range(30):
            try:
                self.api.remove_network(ident)
                return
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if "active endpoints" not in str(exc):
                    raise LabError(f"cannot remove network {name or ident}: {_reason(exc)}") from exc
                time.sleep(0.1)
        raise LabError(
            f"network {name or ident} still has an endpoint of a removed container",
            "a known Docker bug (moby#42119) after parallel removals; restarting the Docker "
            "daemon clears it",
        )

    # -- containers ---------------------------------------------------------

    def containers(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Summaries (as `docker ps -a`) of the containers carrying all these labels."""
        found: list[dict[str, Any]] = self.api.containers(
            all=True, filters={"label": _label_filter(labels)}
        )
        return found

    def create_container(
        self, spec: ContainerPlan, image: str, env: dict[str, str], command: list[str]
    ) -> str:
        """Create (not start) a node's container on its first network."""
        first = spec.endpoints[0]
        bindings: dict[str, list[tuple[str, int | None]]] = {}
        for p in spec.ports:  # one container port may be published on several host ports
            bindings.setdefault(f"{p.container_port}/{p.protocol}", []).append(
                (str(p.host_ip), p.host_port))
        host_config = self.api.create_host_config(
            init=True,
            cap_add=list(spec.cap_add) or None,
            port_bindings=bindings or None,
            network_mode=first.docker_network,
            # names outside the lab never resolve (its networks lead nowhere): fail in 2 s, not 10
            dns_opt=["timeout:1", "attempts:2"],
            sysctls=(
                {"net.ipv6.conf.all.disable_ipv6": "0"}
                if any(e.ipv6 for e in spec.endpoints) else None
            ),
        )
        made = self.api.create_container(
            image,
            command=command,
            name=spec.container_name,
            hostname=spec.hostname,
            domainname=spec.domainname,
            environment=env,
            labels=spec.labels,
            ports=[(p.container_port, p.protocol) for p in spec.ports] or None,
            host_config=host_config,
            networking_config=self.api.create_networking_config(
                {first.docker_network: self._endpoint_config(first)}
            ),
        )
        ident = str(made["Id"])
        for extra in spec.endpoints[1:]:
            self.api.connect_container_to_network(
                ident, extra.docker_network, ipv4_address=str(extra.ip),
                ipv6_address=str(extra.ipv6) if extra.ipv6 else None,
                aliases=list(extra.aliases),
            )
        return ident

    def _endpoint_config(self, ep: Endpoint) -> Any:
        return self.api.create_endpoint_config(
            ipv4_address=str(ep.ip), ipv6_address=str(ep.ipv6) if ep.ipv6 else None,
            aliases=list(ep.aliases),
        )

    def put_archive(self, ident: str, path: str, tar: bytes) -> None:
        """Unpack a tar archive into a (created or running) container at ``path``."""
        self.api.put_archive(ident, path, tar)

    def start(self, ident: str) -> None:
        self.api.start(ident)

    def remove_container(self, ident: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.api.remove_container(ident, force=True, v=True)

    def inspect(self, ident: str) -> dict[str, Any]:
        try:
            info: dict[str, Any] = self.api.inspect_container(ident)
        except docker.errors.NotFound as exc:
            raise LabError(f"container {ident} not found", "is the lab up? `socklab ls`") from exc
        return info

    def logs(self, ident: str, *, tail: int | str = "all", stderr: bool = True) -> str:
        data: bytes = self.api.logs(ident, stdout=True, stderr=stderr, tail=tail)
        return data.decode("utf-8", "replace")

    def follow_logs(self, ident: str, *, tail: int | str = "all") -> Iterator[str]:
        """Lines of a container's output as they come, until it stops."""
        return iter_lines(self.api.logs(ident, stream=True, follow=True, tail=tail))

    def exec(
        self, ident: str, argv: list[str], *, env: dict[str, str] | None = None
    ) -> tuple[int, bytes, bytes]:
        """Run a command in a running container; its exit code, stdout and stderr."""
        try:
            ex = self.api.exec_create(ident, argv, stdout=True, stderr=True, environment=env)
            out, err = self.api.exec_start(ex["Id"], demux=True)
            code = self.api.exec_inspect(ex["Id"])["ExitCode"]
        except docker.errors.APIError as exc:
            raise LabError(f"cannot run {argv[0]!r}: {_reason(exc)}",
                           "is the node running? `socklab status FILE`") from exc
        return int(code if code is not None else -1), out or b"", err or b""

    def exec_stream(
        self, ident: str, argv: list[str]
    ) -> tuple[str, Iterator[tuple[bytes | None, bytes | None]]]:
        """Start a command in a container; its exec id and its (stdout, stderr) chunks as
        they come (the iterator ends when the command does: see :meth:`exec_exit_code`)."""
        try:
            ex = self.api.exec_create(ident, argv, stdout=True, stderr=True)
            chunks = self.api.exec_start(ex["Id"], stream=True, demux=True)
        except docker.errors.APIError as exc:
            raise LabError(f"cannot run {argv[0]!r}: {_reason(exc)}",
                           "is the node running? `socklab status FILE`") from exc
        return str(ex["Id"]), chunks

    def exec_exit_code(self, exec_id: str) -> int | None:
        """The exit code of a finished exec, None while it runs."""
        info = self.api.exec_inspect(exec_id)
        return None if info.get("Running") else int(info.get("ExitCode") or 0)

    def read_file(self, ident: str, path: str) -> bytes:
        """One regular file of a container (as ``docker cp`` copies it out)."""
        try:
            stream, _ = self.api.get_archive(ident, path)
            archive = b"".join(stream)
        except docker.errors.NotFound as exc:
            raise LabError(f"no file {path} in container {ident}") from exc
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            member = tar.next()
            handle = tar.extractfile(member) if member is not None else None
            if handle is None:
                raise LabError(f"{path} in container {ident} is not a regular file")
            return handle.read()


def _label_filter(labels: dict[str, str]) -> list[str]:
    return [f"{k}={v}" if v else k for k, v in labels.items()]


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc or type(exc).__name__).splitlines()[0]
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
