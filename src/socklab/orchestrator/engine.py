"""The Docker adapter: the only module of socklab that imports the docker SDK.

:class:`DockerEngine` implements :class:`~socklab.orchestrator.engine_api.Engine` over
one Docker daemon and turns every answer into that interface's dataclasses, so the rest
of the code deals in plain values and :class:`~socklab.errors.LabError`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import secrets
import select
import signal
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import requests.exceptions

from socklab.errors import CommandNotFound, DaemonUnavailable, ExecTimeout, LabError, NodeNotRunning
from socklab.orchestrator.engine_api import (
    HELPER_TIMEOUT,
    LABEL_HELPER,
    LABEL_TARGET,
    ContainerInfo,
    DaemonInfo,
    EndpointInfo,
    ExecResult,
    ExecStream,
    HelperSpec,
    ImageInfo,
    NetworkInfo,
    PortInfo,
    PortTaken,
)
from socklab.topology.plan import LABEL_LAB, ContainerPlan, Endpoint, NetworkPlan

DAEMON_HINT = "start Docker (e.g. `systemctl start docker`) or set DOCKER_HOST; `docker info` must work"
NOT_RUNNING_HINT = "is the node running? `socklab status LAB`"


class SubnetTaken(LabError):
    """A network's subnet overlaps one that Docker already has."""

    def __init__(self, net: NetworkPlan) -> None:
        super().__init__(
            f"subnet {net.subnet} of network '{net.name}' is taken by another Docker network",
            "pick another `subnet:` or leave it out to have one allocated "
            "(`docker network ls` shows what is there)",
        )
        self.network = net


class DockerEngine:
    """A connection to one Docker daemon (the local engine of socklab)."""

    def __init__(self, client: Any = None) -> None:
        try:
            self._client = client or docker.from_env(timeout=120)
            self._client.ping()
        except docker.errors.DockerException as exc:
            raise DaemonUnavailable(f"Docker daemon not reachable: {_reason(exc)}", DAEMON_HINT) from exc
        self._api = self._client.api

    def on_this_host(self) -> bool:
        """Whether the client talks to the daemon over a local UNIX socket."""
        return local_url(str(self._api.base_url))

    def daemon(self) -> DaemonInfo:
        version: dict[str, Any] = self._api.version()
        info: dict[str, Any] = self._api.info()
        return DaemonInfo(
            version=str(version.get("Version", "?")),
            api_version=str(version.get("ApiVersion", "?")),
            kernel=str(info.get("KernelVersion", "?")),
            swarm=str((info.get("Swarm") or {}).get("LocalNodeState", "?")),
        )

    # -- images -------------------------------------------------------------

    def image(self, ref: str) -> ImageInfo | None:
        """A local image, or None when it is absent."""
        try:
            info: dict[str, Any] = self._api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            return None
        config = info.get("Config") or {}
        return ImageInfo(
            id=str(info["Id"]),
            tags=tuple(info.get("RepoTags") or ()),
            size=int(info.get("Size") or 0),
            created=str(info.get("Created") or ""),
            labels=dict(config.get("Labels") or {}),
            entrypoint=tuple(config.get("Entrypoint") or ()),
            command=tuple(config.get("Cmd") or ()),
        )

    def import_image(
        self, tar_path: Path, repository: str, tag: str, *, changes: list[str] | None = None
    ) -> None:
        """``docker import`` a rootfs tarball as ``repository:tag`` (``changes``: like
        ``--change``, Dockerfile ENV/CMD/LABEL lines)."""
        self._api.import_image_from_file(
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
        stream = self._api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            pull=pull,
            rm=True,
            forcerm=True,
            decode=True,
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
        return [
            t
            for img in self._api.images(name=repository)
            for t in img.get("RepoTags") or []
            if t.startswith(f"{repository}:")
        ]

    def untag_image(self, ref: str) -> None:
        """Remove a tag unless a container uses the image (then it stays)."""
        with contextlib.suppress(docker.errors.APIError):
            self._api.remove_image(ref, noprune=False)

    def remove_image(self, ref: str) -> None:
        with contextlib.suppress(docker.errors.ImageNotFound):
            self._api.remove_image(ref, force=True)

    # -- networks -----------------------------------------------------------

    def subnets_in_use(self) -> list[IPv4Network | IPv6Network]:
        """Every subnet of every Docker network on the host."""
        return [s for net in self._api.networks() for s in _network_info(net).subnets]

    def networks(self, labels: Mapping[str, str]) -> list[NetworkInfo]:
        """The networks carrying all these labels (an empty value: any value)."""
        return [_network_info(n) for n in self._api.networks(filters={"label": _label_filter(labels)})]

    def create_network(self, net: NetworkPlan) -> str:
        pools = [docker.types.IPAMPool(subnet=str(net.subnet), gateway=str(net.gateway))]
        if net.ipv6_subnet:
            pools.append(docker.types.IPAMPool(subnet=str(net.ipv6_subnet), gateway=str(net.ipv6_gateway)))
        try:
            made = self._api.create_network(
                net.docker_name,
                driver="bridge",
                internal=net.internal,
                labels=net.labels,
                options=net.options or None,
                enable_ipv6=bool(net.ipv6_subnet),
                ipam=docker.types.IPAMConfig(pool_configs=pools),
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
                self._api.remove_network(ident)
                return
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if "active endpoints" not in str(exc):
                    raise LabError(f"cannot remove network {name or ident}: {_reason(exc)}") from exc
                time.sleep(0.1)
        raise LabError(
            f"network {name or ident} still has an endpoint of a removed container",
            "a known Docker bug (moby#42119) after parallel removals; restarting the Docker daemon clears it",
        )

    # -- containers ---------------------------------------------------------

    def containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """The containers (as `docker ps -a` lists them) carrying all these labels."""
        found = self._api.containers(all=True, filters={"label": _label_filter(labels)})
        return [_summary_info(c) for c in found]

    def container(self, ident: str) -> ContainerInfo:
        """One container by id or name (inspected: its added capabilities are known)."""
        try:
            info: dict[str, Any] = self._api.inspect_container(ident)
        except docker.errors.NotFound as exc:
            raise LabError(f"container {ident} not found", "is the lab up? `socklab ls`") from exc
        return _inspect_info(info)

    def create_container(
        self,
        spec: ContainerPlan,
        image: str,
        env: Mapping[str, str],
        command: Sequence[str] | None,
        entrypoint: Sequence[str] | None = None,
    ) -> str:
        """Create (not start) a node's container on its first network."""
        first = spec.endpoints[0]
        bindings: dict[str, list[tuple[str, int | None]]] = {}
        for p in spec.ports:  # one container port may be published on several host ports
            bindings.setdefault(f"{p.container_port}/{p.protocol}", []).append((str(p.host_ip), p.host_port))
        host_config = self._api.create_host_config(
            init=True,
            cap_add=list(spec.cap_add) or None,
            port_bindings=bindings or None,
            network_mode=first.docker_network,
            # names outside the lab never resolve (its networks lead nowhere): fail in 2 s, not 10
            dns_opt=["timeout:1", "attempts:2"],
            sysctls=spec.sysctls or None,
            extra_hosts=[f"{name}:{ip}" for name, ip in spec.extra_hosts] or None,
        )
        made = self._api.create_container(
            image,
            command=list(command) if command is not None else None,
            entrypoint=list(entrypoint) if entrypoint is not None else None,
            name=spec.container_name,
            hostname=spec.hostname,
            domainname=spec.domainname,
            environment=dict(env),
            labels=spec.labels,
            ports=[(p.container_port, p.protocol) for p in spec.ports] or None,
            host_config=host_config,
            networking_config=self._api.create_networking_config(
                {first.docker_network: self._endpoint_config(first)}
            ),
        )
        ident = str(made["Id"])
        for extra in spec.endpoints[1:]:
            self._api.connect_container_to_network(
                ident,
                extra.docker_network,
                ipv4_address=str(extra.ip),
                ipv6_address=str(extra.ipv6) if extra.ipv6 else None,
                aliases=list(extra.aliases),
            )
        return ident

    def image_has(self, ref: str, paths: Sequence[str], lab: str = "") -> bool:
        labels = {LABEL_HELPER: "probe", **({LABEL_LAB: lab} if lab else {})}
        made = self._api.create_container(
            ref, entrypoint=["/socklab-probe"], labels=labels, network_disabled=True
        )
        try:
            for path in paths:
                try:
                    stream, _ = self._api.get_archive(made["Id"], path)
                except docker.errors.NotFound:
                    continue
                for _chunk in stream:  # a program or its symlink: small; read to the end
                    pass
                return True
            return False
        finally:
            self.remove_container(made["Id"])

    def _endpoint_config(self, ep: Endpoint) -> Any:
        return self._api.create_endpoint_config(
            ipv4_address=str(ep.ip),
            ipv6_address=str(ep.ipv6) if ep.ipv6 else None,
            aliases=list(ep.aliases),
        )

    def put_archive(self, ident: str, path: str, tar: bytes) -> None:
        """Unpack a tar archive into a (created or running) container at ``path``."""
        self._api.put_archive(ident, path, tar)

    def start(self, ident: str) -> None:
        """Start a created container; PortTaken when a host port it publishes is held."""
        try:
            self._api.start(ident)
        except docker.errors.APIError as exc:
            taken = _PORT_TAKEN.search(str(exc.explanation or exc))
            if taken is None:
                raise LabError(f"cannot start container {ident[:12]}: {_reason(exc)}") from exc
            proto, ip, port = taken["proto"], taken["ip"].strip("[]"), int(taken["port"])
            raise PortTaken(ip, port, proto) from exc

    def stop(self, ident: str, *, timeout: float = 2.0) -> None:
        self._call(self._api.stop, ident, timeout=max(1, round(timeout)))

    def kill(self, ident: str) -> None:
        self._call(self._api.kill, ident)

    def pause(self, ident: str) -> None:
        self._call(self._api.pause, ident)

    def unpause(self, ident: str) -> None:
        self._call(self._api.unpause, ident)

    def connect(self, ident: str, endpoint: Endpoint) -> None:
        self._call(
            self._api.connect_container_to_network,
            ident,
            endpoint.docker_network,
            ipv4_address=str(endpoint.ip),
            ipv6_address=str(endpoint.ipv6) if endpoint.ipv6 else None,
            aliases=list(endpoint.aliases),
        )

    @staticmethod
    def _call(method: Callable[..., Any], ident: str, *args: Any, **kwargs: Any) -> None:
        """One container call; the daemon's refusal as a LabError."""
        try:
            method(ident, *args, **kwargs)
        except docker.errors.NotFound as exc:
            raise LabError(f"container {ident} not found", "is the lab up? `socklab ls`") from exc
        except docker.errors.APIError as exc:
            raise LabError(f"{ident}: {_reason(exc)}") from exc

    def disconnect(self, ident: str, network: str) -> None:
        try:
            self._api.disconnect_container_from_network(ident, network)
        except docker.errors.APIError as exc:
            raise LabError(f"cannot disconnect {ident} from {network}: {_reason(exc)}") from exc

    def remove_container(self, ident: str) -> None:
        try:
            self._api.remove_container(ident, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):  # (else: another process removes it)
                raise LabError(f"cannot remove container {ident[:12]}: {_reason(exc)}") from exc

    def logs(self, ident: str, *, tail: int | str = "all", stderr: bool = True, stdout: bool = True) -> str:
        data: bytes = self._api.logs(ident, stdout=stdout, stderr=stderr, tail=tail)
        return data.decode("utf-8", "replace")

    def follow_logs(self, ident: str, *, tail: int | str = "all") -> Iterator[str]:
        """Lines of a container's output as they come, until it stops."""
        return iter_lines(self._api.logs(ident, stream=True, follow=True, tail=tail))

    def exec(
        self,
        ident: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run a command in a running container to completion (no shell): ``stdin`` is fed to
        it (then closed); after ``timeout`` s it is killed and ExecTimeout raised."""
        with _exec_errors(ident, argv):
            ex = self._api.exec_create(
                ident,
                list(argv),
                stdout=True,
                stderr=True,
                stdin=stdin is not None,
                environment=dict(env) if env else None,
            )
            if stdin is None and timeout is None:
                out, err = self._api.exec_start(ex["Id"], demux=True)
            else:
                out, err = self._exec_talk(ex["Id"], argv, stdin, timeout)
            code = self._api.exec_inspect(ex["Id"])["ExitCode"]
        said = _text(out)
        if code == 126 and said.startswith("OCI runtime exec failed"):  # it never started
            if "not found" in said or "no such file" in said:
                raise CommandNotFound(
                    f"no command '{argv[0]}'", "a program of the node's image, or an absolute path"
                )
            raise LabError(f"cannot run '{argv[0]}': {said.rsplit(': ', 2)[-2]}", exit_code=126)
        return ExecResult(int(code if code is not None else -1), said, _text(err))

    def ask(self, ident: str, argv: Sequence[str]) -> str:
        with _exec_errors(ident, argv):
            ex = self._api.exec_create(ident, list(argv), stdout=True, stderr=False)
            out: bytes | None = self._api.exec_start(ex["Id"])
        return _text(out)

    def _exec_talk(
        self, exec_id: str, argv: Sequence[str], stdin: bytes | None, timeout: float | None
    ) -> tuple[bytes, bytes]:
        """Start an exec on a raw socket: write ``stdin`` (then close its write side, which
        closes the command's stdin) while reading its output until it ends or ``timeout``."""
        sock = self._api.exec_start(exec_id, socket=True)
        raw = getattr(sock, "_sock", sock)
        deadline = None if timeout is None else time.monotonic() + timeout
        out: dict[int, list[bytes]] = {1: [], 2: []}

        def feed() -> None:
            with contextlib.suppress(OSError):
                if stdin:
                    raw.sendall(stdin)
                raw.shutdown(socket.SHUT_WR)

        threading.Thread(target=feed, daemon=True).start()
        try:
            for stream, data in _frames(raw, deadline):
                out.setdefault(stream, []).append(data)
        except TimeoutError:
            self._kill_exec(exec_id)
            raise ExecTimeout(
                f"'{argv[0]}' did not finish in {timeout:g} s (killed)",
                "give it more time with a larger timeout",
                stdout=_text(b"".join(out[1])),
                stderr=_text(b"".join(out[2])),
            ) from None
        finally:
            with contextlib.suppress(OSError):
                sock.close()
        return b"".join(out[1]), b"".join(out[2])

    def _kill_exec(self, exec_id: str) -> None:
        """Kill a command still running, and what it started (the daemon has no call for
        it: its processes, when the daemon runs on this machine)."""
        pid = self._api.exec_inspect(exec_id).get("Pid") or 0
        for each in _process_tree(pid) if pid > 0 else []:
            with contextlib.suppress(OSError):
                os.kill(each, signal.SIGKILL)

    def exec_stream(self, ident: str, argv: Sequence[str]) -> ExecStream:
        """Start a command in a running container; its output chunks as they come."""
        try:
            ex = self._api.exec_create(ident, list(argv), stdout=True, stderr=True)
            chunks = self._api.exec_start(ex["Id"], stream=True, demux=True)
        except docker.errors.APIError as exc:
            raise LabError(f"cannot run {argv[0]!r}: {_reason(exc)}", NOT_RUNNING_HINT) from exc

        def exit_code() -> int | None:
            info = self._api.exec_inspect(ex["Id"])
            return None if info.get("Running") else int(info.get("ExitCode") or 0)

        return ExecStream(chunks, exit_code)

    def read_file(self, ident: str, path: str) -> bytes:
        """One regular file of a container (as ``docker cp`` copies it out)."""
        try:
            stream, _ = self._api.get_archive(ident, path)
            archive = b"".join(stream)
        except docker.errors.NotFound as exc:
            raise LabError(f"no file {path} in container {ident}") from exc
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            member = tar.next()
            handle = tar.extractfile(member) if member is not None else None
            if handle is None:
                raise LabError(f"{path} in container {ident} is not a regular file")
            return handle.read()

    # -- helper containers --------------------------------------------------

    def run_helper(self, spec: HelperSpec, *, timeout: float = HELPER_TIMEOUT) -> ExecResult:
        """Run a helper to completion in the target's namespaces; removed afterwards."""
        ident = self._create_helper(spec)
        try:
            self._start_helper(ident, spec)
            try:
                code = int(self._api.wait(ident, timeout=timeout)["StatusCode"])
            except requests.exceptions.RequestException as exc:  # the wait timed out
                raise LabError(
                    f"helper {spec.purpose!r} ({spec.argv[0]}) still running after "
                    f"{timeout:g} s; it was stopped"
                ) from exc
            out = self._api.logs(ident, stdout=True, stderr=False)
            err = self._api.logs(ident, stdout=False, stderr=True)
        finally:
            self.remove_container(ident)
        return ExecResult(code, _text(out), _text(err))

    def start_helper(self, spec: HelperSpec) -> str:
        """Start a long-running helper, detached; its id."""
        ident = self._create_helper(spec)
        try:
            self._start_helper(ident, spec)
        except BaseException:
            self.remove_container(ident)
            raise
        return ident

    def _start_helper(self, ident: str, spec: HelperSpec) -> None:
        try:
            self._api.start(ident)
        except docker.errors.APIError as exc:  # e.g. its target stopped since it was made
            raise LabError(
                f"cannot start a {spec.purpose!r} helper: {_reason(exc)}", NOT_RUNNING_HINT
            ) from exc

    def _create_helper(self, spec: HelperSpec) -> str:
        target_id = ""
        name = f"{spec.lab if spec.lab.startswith('socklab-') else f'socklab-{spec.lab}'}-{spec.purpose}"
        if spec.target:
            target = self.container(spec.target)
            name = f"{target.name}-{spec.purpose}"
            if target.state not in ("running", "paused"):  # a paused node's namespaces are there
                raise LabError(
                    f"container {target.name} is not running (it is {target.state})", NOT_RUNNING_HINT
                )
            target_id = target.id
        joined = f"container:{target_id}" if target_id else None
        host_config = self._api.create_host_config(
            init=True,
            network_mode=joined or "none",
            pid_mode=joined if spec.pid else None,
            cap_add=list(spec.cap_add) or None,
        )
        try:
            made = self._api.create_container(
                spec.image,
                name=f"{name}-{secrets.token_hex(3)}",  # what `docker ps` shows
                entrypoint=list(spec.argv),
                environment=dict(spec.env) or None,
                labels={LABEL_LAB: spec.lab, LABEL_HELPER: spec.purpose, LABEL_TARGET: target_id},
                host_config=host_config,
            )
        except docker.errors.ImageNotFound as exc:
            raise LabError(
                f"helper image {spec.image} is not on this host", "build it with `socklab image build`"
            ) from exc
        except docker.errors.APIError as exc:
            raise LabError(f"cannot make a {spec.purpose!r} helper: {_reason(exc)}") from exc
        return str(made["Id"])


def local_url(base_url: str) -> bool:
    """Whether the docker SDK's base URL is a local UNIX socket (``unix://`` in DOCKER_HOST);
    ``tcp://`` and ``ssh://`` daemons may run on another host."""
    return base_url == "http+docker://localhost"


def _label_filter(labels: Mapping[str, str]) -> list[str]:
    return [f"{k}={v}" if v else k for k, v in labels.items()]


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc or type(exc).__name__).splitlines()[0]
    return text[:200]


def _process_tree(pid: int) -> list[int]:
    """A process and its descendants, as this machine's /proc shows them."""
    found, todo = [], [pid]
    while todo:
        each = todo.pop()
        found.append(each)
        for task in Path(f"/proc/{each}/task").glob("*/children"):
            with contextlib.suppress(OSError, ValueError):
                todo += [int(c) for c in task.read_text().split()]
    return found


def _frames(raw: socket.socket, deadline: float | None) -> Iterator[tuple[int, bytes]]:
    """The (stream, data) frames of an exec's multiplexed output (8-byte headers: stream,
    three zeros, a big-endian length); TimeoutError once ``deadline`` passes."""
    buf = b""
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not select.select([raw], [], [], wait)[0]:
            raise TimeoutError
        chunk = raw.recv(65536)
        if not chunk:
            return
        buf += chunk
        while len(buf) >= 8 and len(buf) >= 8 + int.from_bytes(buf[4:8], "big"):
            size = int.from_bytes(buf[4:8], "big")
            yield buf[0], buf[8 : 8 + size]
            buf = buf[8 + size :]


@contextlib.contextmanager
def _exec_errors(ident: str, argv: Sequence[str]) -> Iterator[None]:
    """The daemon's refusal of an exec as NodeNotRunning (a stopped or paused container) or
    LabError."""
    try:
        yield
    except docker.errors.APIError as exc:
        if "is not running" in str(exc) or "is paused" in str(exc):
            raise NodeNotRunning(f"container {ident} is not running", NOT_RUNNING_HINT) from exc
        raise LabError(f"cannot run {argv[0]!r}: {_reason(exc)}", NOT_RUNNING_HINT) from exc


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")


def _endpoints(networks: dict[str, Any] | None) -> dict[str, EndpointInfo]:
    return {
        name: EndpointInfo(
            ip=n.get("IPAddress") or "",
            prefix=int(n.get("IPPrefixLen") or 0),
            ipv6=n.get("GlobalIPv6Address") or "",
            ipv6_prefix=int(n.get("GlobalIPv6PrefixLen") or 0),
            aliases=tuple(n.get("Aliases") or ()),
        )
        for name, n in (networks or {}).items()
    }


_EXITED = re.compile(r"^Exited \((-?\d+)\)")
# "Bind for 127.0.0.1:8080 failed: port is already allocated" (another container has it),
# "listen tcp4 127.0.0.1:8080: bind: address already in use" (a process of the host has it)
_PORT_TAKEN = re.compile(
    r"(?:Bind for |listen (?P<proto>tcp|udp)[46]? )(?P<ip>\[[0-9a-fA-F:.]+\]|[0-9.]+|[0-9a-fA-F:]+)"
    r":(?P<port>\d+)(?:: bind: address already in use| failed: port is already allocated)"
)


def _summary_info(c: dict[str, Any]) -> ContainerInfo:
    """A `docker ps -a` entry (the exit code is only in its status text)."""
    exited = _EXITED.match(c.get("Status") or "")
    return ContainerInfo(
        id=str(c["Id"]),
        name=(c.get("Names") or ["/?"])[0].lstrip("/"),
        state=str(c["State"]),
        labels=dict(c.get("Labels") or {}),
        image=str(c.get("Image") or ""),
        networks=_endpoints((c.get("NetworkSettings") or {}).get("Networks")),
        exit_code=int(exited.group(1)) if exited else None,
        ports=tuple(
            PortInfo(
                int(p["PrivatePort"]),
                str(p.get("Type") or "tcp"),
                str(p.get("IP") or ""),
                int(p["PublicPort"]),
            )
            for p in c.get("Ports") or ()
            if p.get("PublicPort")
        ),
    )


def _inspect_info(info: dict[str, Any]) -> ContainerInfo:
    state = info.get("State") or {}
    config = info.get("Config") or {}
    return ContainerInfo(
        id=str(info["Id"]),
        name=str(info.get("Name", "")).lstrip("/"),
        state=str(state.get("Status", "")),
        labels=dict(config.get("Labels") or {}),
        image=str(config.get("Image") or ""),
        networks=_endpoints((info.get("NetworkSettings") or {}).get("Networks")),
        exit_code=int(state["ExitCode"]) if state.get("Status") == "exited" else None,
        cap_add=tuple((info.get("HostConfig") or {}).get("CapAdd") or ()),
        pid=int(state.get("Pid") or 0),
        ports=tuple(
            PortInfo(
                int(key.split("/")[0]),
                key.partition("/")[2] or "tcp",
                str(b.get("HostIp") or ""),
                int(b["HostPort"]),
            )
            for key, bound in ((info.get("NetworkSettings") or {}).get("Ports") or {}).items()
            for b in bound or ()
            if b.get("HostPort")
        ),
    )


def _network_info(n: dict[str, Any]) -> NetworkInfo:
    subnets: list[IPv4Network | IPv6Network] = []
    for cfg in (n.get("IPAM") or {}).get("Config") or []:
        with contextlib.suppress(KeyError, ValueError):
            subnets.append(ip_network(cfg["Subnet"], strict=False))
    return NetworkInfo(
        id=str(n["Id"]),
        name=str(n["Name"]),
        labels=dict(n.get("Labels") or {}),
        subnets=tuple(subnets),
        internal=bool(n.get("Internal")),
    )


@functools.cache
def default_engine() -> DockerEngine:
    """One shared connection per process."""
    return DockerEngine()


def iter_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Split a byte stream of log chunks into text lines."""
    buf = b""
    try:
        for chunk in chunks:
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace")
        if buf:
            yield buf.decode("utf-8", "replace")
    finally:  # a reader that stops early ends the stream (and its connection)
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
