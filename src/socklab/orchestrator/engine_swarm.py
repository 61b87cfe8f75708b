"""The Swarm adapter: a lab as a stack of services on the Swarm the Docker client talks to.

:class:`SwarmEngine` is the engine interface over a Swarm manager. A lab's nodes are the
tasks of its services, found by label: instance ``client-3`` is the task in slot 3 of the
lab's service ``client``. Everything done in a node (exec, logs, files, helpers) goes
to the container of that task, through the Docker daemon of the host that runs it: this
one, or another host's daemon when it can be reached (``SOCKLAB_SWARM_DOCKER_HOST``, a URL
template with ``{addr}`` and ``{hostname}``; default ``tcp://{addr}:2375``), else a clear
error. Images, local networks and the helpers of other labs are this host's, as for the
local engine.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import docker
import docker.errors
import docker.types

from socklab.compose.stack import LABEL_REPLICAS, LABEL_STACK, ServicePlan
from socklab.errors import LabError
from socklab.orchestrator.engine import DockerEngine, SubnetTaken, default_engine
from socklab.orchestrator.engine_api import (
    HELPER_TIMEOUT,
    ContainerInfo,
    EndpointInfo,
    ExecResult,
    ExecStream,
    HelperSpec,
)
from socklab.topology.plan import LABEL_LAB, LABEL_NODE, Endpoint, NetworkPlan

SWARM_HINT = (
    "make this Docker engine a single-node Swarm with `docker swarm init` (or join "
    "one with `docker swarm join`), or leave out `--engine swarm`"
)
DAEMON_URL = "tcp://{addr}:2375"
DNS_OPTIONS = ["timeout:1", "attempts:2"]
_TASK_ID = "com.docker.swarm.task.id"
_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Task:
    """One task of a lab's service: a node instance wherever it runs."""

    id: str
    lab: str
    instance: str
    service: str
    slot: int
    node_id: str
    state: str
    error: str
    container_id: str
    labels: Mapping[str, str]
    networks: Mapping[str, EndpointInfo]
    image: str
    exit_code: int | None

    @property
    def name(self) -> str:
        """Its name as `docker service ps` shows it: ``<service>.<slot>`` (its container's
        name adds the task id)."""
        return f"{self.service}.{self.slot}"

    def info(self) -> ContainerInfo:
        return ContainerInfo(
            id=self.container_id or self.id,
            name=self.name,
            state=self.state,
            labels=self.labels,
            networks=self.networks,
            image=self.image,
            exit_code=self.exit_code,
        )


@dataclass(frozen=True)
class SwarmHost:
    id: str
    hostname: str
    addr: str
    state: str
    availability: str

    @property
    def ready(self) -> bool:
        return self.state == "ready" and self.availability == "active"


class SwarmEngine(DockerEngine):
    """A Swarm manager's Docker daemon: labs are stacks, their nodes are tasks."""

    def __init__(self, client: Any = None) -> None:
        super().__init__(client)
        swarm = self._api.info().get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active":
            raise LabError("this Docker engine is not in a Swarm", SWARM_HINT)
        if not swarm.get("ControlAvailable"):
            raise LabError(
                "this Docker engine is a Swarm worker: a stack is deployed from a manager",
                "run socklab on a manager (`docker node ls` there lists "
                "the hosts), or point DOCKER_HOST at one",
            )
        self.node_id = str(swarm.get("NodeID") or "")
        self._local = DockerEngine(self._client)
        self._remote: dict[str, DockerEngine] = {}
        self._lock = threading.Lock()
        self._cache: tuple[float, list[Task]] = (0.0, [])

    # -- hosts ----------------------------------------------------------------------------

    def hosts(self) -> list[SwarmHost]:
        """The hosts of the Swarm."""
        return [
            SwarmHost(
                id=str(n["ID"]),
                hostname=str((n.get("Description") or {}).get("Hostname") or ""),
                addr=str((n.get("Status") or {}).get("Addr") or ""),
                state=str((n.get("Status") or {}).get("State") or ""),
                availability=str((n.get("Spec") or {}).get("Availability") or ""),
            )
            for n in self._api.nodes()
        ]

    # -- stacks ---------------------------------------------------------------------------

    def create_network(self, net: NetworkPlan) -> str:
        """An attachable overlay network with the planned subnet (IPv4 only)."""
        try:
            made = self._api.create_network(
                net.docker_name,
                driver="overlay",
                attachable=True,
                internal=net.internal,
                labels={**net.labels, LABEL_STACK: net.labels.get(LABEL_LAB, "")},
                ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(net.subnet))]),
                check_duplicate=True,
            )
        except docker.errors.APIError as exc:
            text = _reason(exc)
            if "overlap" in text.lower() or "pool" in text.lower():
                raise SubnetTaken(net) from exc
            raise LabError(f"cannot create network '{net.name}': {text}") from exc
        return str(made["Id"])

    def create_service(self, lab: str, svc: ServicePlan) -> str:
        """Create (and so start) a node's service: its replicas are its tasks."""
        labels = {**svc.labels, LABEL_STACK: lab}
        spec = docker.types.ContainerSpec(
            svc.image,
            # as in a stack file: `entrypoint` is the task's Command, `command` its Args
            command=list(svc.entrypoint) if svc.entrypoint is not None else None,
            args=list(svc.command) if svc.command is not None else None,
            hostname=svc.hostname,
            env=[f"{k}={v}" for k, v in svc.env.items()],
            labels=labels,
            init=True,
            cap_add=list(svc.cap_add) or None,
            dns_config=docker.types.DNSConfig(options=list(DNS_OPTIONS)),
        )
        template = docker.types.TaskTemplate(
            container_spec=spec,
            restart_policy=docker.types.RestartPolicy(condition="none"),
            placement=docker.types.Placement(constraints=list(svc.constraints)) if svc.constraints else None,
            networks=[
                docker.types.NetworkAttachmentConfig(a.docker_network, aliases=list(a.aliases))
                for a in svc.networks
            ],
        )
        endpoint = docker.types.EndpointSpec(mode="dnsrr")
        if svc.ports:  # dnsrr has no routing mesh: published by the host that runs the task
            endpoint["Ports"] = [
                {
                    "Protocol": p.protocol,
                    "TargetPort": p.container_port,
                    "PublishMode": "host",
                    **({"PublishedPort": p.host_port} if p.host_port else {}),
                }
                for p in svc.ports
            ]
        try:
            made = self._api.create_service(
                template,
                name=f"{lab}_{svc.name}",
                labels=labels,
                mode=docker.types.ServiceMode("replicated", replicas=svc.replicas),
                endpoint_spec=endpoint,
            )
        except docker.errors.APIError as exc:
            raise LabError(f"cannot create the service of node '{svc.node}': {_reason(exc)}") from exc
        self._forget()
        return str(made["ID"])

    def services(self, lab: str | None) -> list[dict[str, Any]]:
        """The services of a lab (of every lab with None), as the daemon has them."""
        label = f"{LABEL_LAB}={lab}" if lab else LABEL_LAB
        found: list[dict[str, Any]] = self._api.services(filters={"label": label})
        return found

    def remove_service(self, ident: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self._api.remove_service(ident)
        self._forget()

    def stack_containers(self, lab: str) -> list[str]:
        """The ids of this host's containers of the lab's tasks (they go after the services)."""
        found = self._api.containers(all=True, filters={"label": [f"{LABEL_LAB}={lab}", _TASK_ID]})
        return [str(c["Id"]) for c in found if _TASK_ID in (c.get("Labels") or {})]

    def tasks(self, lab: str | None) -> list[Task]:
        """The current task of each slot of each service of a lab (of every lab with None)."""
        with self._lock:
            at, cached = self._cache
            if time.monotonic() - at < _CACHE_SECONDS and lab is None:
                return cached
        out: list[Task] = []
        for svc in self.services(lab):
            out.extend(self._tasks_of(svc))
        if lab is None:
            with self._lock:
                self._cache = (time.monotonic(), out)
        return out

    def _tasks_of(self, svc: dict[str, Any]) -> list[Task]:
        spec = svc.get("Spec") or {}
        labels = dict(spec.get("Labels") or {})
        lab, node = labels.get(LABEL_LAB, ""), labels.get(LABEL_NODE, "")
        template = spec.get("TaskTemplate") or {}
        aliases = {a.get("Target"): tuple(a.get("Aliases") or ()) for a in template.get("Networks") or []}
        net_names = {
            str(n["Id"]): str(n["Name"]) for n in self._api.networks(filters={"label": f"{LABEL_LAB}={lab}"})
        }
        try:
            found = self._api.tasks(filters={"service": svc["ID"]})
        except docker.errors.NotFound:
            return []
        latest: dict[int, dict[str, Any]] = {}
        for t in sorted(found, key=lambda t: (t.get("Version") or {}).get("Index", 0)):
            latest[int(t.get("Slot") or 0)] = t
        out = []
        for slot, t in sorted(latest.items()):
            status = t.get("Status") or {}
            cstatus = status.get("ContainerStatus") or {}
            instance = f"{node}-{slot}" if LABEL_REPLICAS in labels else node
            networks = {}
            for att in t.get("NetworksAttachments") or []:
                net = att.get("Network") or {}
                name = net_names.get(str(net.get("ID")), (net.get("Spec") or {}).get("Name", ""))
                if not name.startswith(f"socklab-{lab}-"):
                    continue
                ip, _, prefix = ((att.get("Addresses") or [""])[0]).partition("/")
                networks[name] = EndpointInfo(
                    ip=ip, prefix=int(prefix or 0), aliases=aliases.get(net.get("ID"), ())
                )
            state = str(status.get("State") or "")
            out.append(
                Task(
                    id=str(t["ID"]),
                    lab=lab,
                    instance=instance,
                    service=str(spec.get("Name")),
                    slot=slot,
                    node_id=str(t.get("NodeID") or ""),
                    state=state,
                    error=str(status.get("Err") or ""),
                    container_id=str(cstatus.get("ContainerID") or ""),
                    labels={**labels, LABEL_NODE: instance},
                    networks=networks,
                    image=str(((template.get("ContainerSpec") or {}).get("Image")) or ""),
                    exit_code=int(cstatus["ExitCode"])
                    if state in ("complete", "failed") and cstatus.get("ExitCode") is not None
                    else None,
                )
            )
        return out

    def _forget(self) -> None:
        with self._lock:
            self._cache = (0.0, [])

    # -- the engine interface: nodes are tasks ---------------------------------------------

    def containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """The lab's tasks (as containers, node label = instance) and this host's other
        containers with these labels (helpers)."""
        lab = labels.get(LABEL_LAB) or None
        out = [t.info() for t in self.tasks(lab) if _matches(t.labels, labels)]
        out += [c for c in self._local.containers(labels) if _TASK_ID not in c.labels]
        return out

    def container(self, ident: str) -> ContainerInfo:
        engine, cid, task = self._locate(ident)
        if task is not None and not task.container_id:
            return task.info()
        info = engine.container(cid)
        return info if task is None else replace(info, labels=task.labels)  # (its ports kept)

    def create_container(self, *_: Any, **__: Any) -> str:
        raise LabError(
            "a Swarm lab's nodes are the tasks of its services",
            "deploy it with `socklab up LAB --engine swarm`",
        )

    def start(self, ident: str) -> None:
        engine, cid, _ = self._locate(ident)
        engine.start(cid)

    def remove_container(self, ident: str) -> None:
        engine, cid, _ = self._locate(ident)
        engine.remove_container(cid)

    def stop(self, ident: str, *, timeout: float = 2.0) -> None:
        engine, cid, _ = self._locate(ident)
        engine.stop(cid, timeout=timeout)

    def kill(self, ident: str) -> None:
        engine, cid, _ = self._locate(ident)
        engine.kill(cid)

    def pause(self, ident: str) -> None:
        engine, cid, _ = self._locate(ident)
        engine.pause(cid)

    def unpause(self, ident: str) -> None:
        engine, cid, _ = self._locate(ident)
        engine.unpause(cid)

    def connect(self, ident: str, endpoint: Endpoint) -> None:
        engine, cid, _ = self._locate(ident)
        engine.connect(cid, endpoint)

    def disconnect(self, ident: str, network: str) -> None:
        engine, cid, _ = self._locate(ident)
        engine.disconnect(cid, network)

    def put_archive(self, ident: str, path: str, tar: bytes) -> None:
        engine, cid, _ = self._locate(ident)
        engine.put_archive(cid, path, tar)

    def read_file(self, ident: str, path: str) -> bytes:
        engine, cid, _ = self._locate(ident)
        return engine.read_file(cid, path)

    def logs(self, ident: str, *, tail: int | str = "all", stderr: bool = True, stdout: bool = True) -> str:
        engine, cid, _ = self._locate(ident)
        return engine.logs(cid, tail=tail, stderr=stderr, stdout=stdout)

    def follow_logs(self, ident: str, *, tail: int | str = "all") -> Iterator[str]:
        engine, cid, _ = self._locate(ident)
        return engine.follow_logs(cid, tail=tail)

    def exec(
        self,
        ident: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        engine, cid, _ = self._locate(ident)
        return engine.exec(cid, argv, env=env, stdin=stdin, timeout=timeout)

    def exec_stream(self, ident: str, argv: Sequence[str]) -> ExecStream:
        engine, cid, _ = self._locate(ident)
        return engine.exec_stream(cid, argv)

    def ask(self, ident: str, argv: Sequence[str]) -> str:
        engine, cid, _ = self._locate(ident)
        return engine.ask(cid, argv)

    def run_helper(self, spec: HelperSpec, *, timeout: float = HELPER_TIMEOUT) -> ExecResult:
        engine, cid, _ = self._locate(spec.target)
        return engine.run_helper(_retarget(spec, cid), timeout=timeout)

    def start_helper(self, spec: HelperSpec) -> str:
        engine, cid, _ = self._locate(spec.target)
        return engine.start_helper(_retarget(spec, cid))

    def _locate(self, ident: str) -> tuple[DockerEngine, str, Task | None]:
        """The daemon that runs a container and its id there. ``ident`` is a task's
        container (id or name), a node's name under the local engine
        (``socklab-<lab>-<instance>``), or any container of this host."""
        for task in self.tasks(None):
            if ident in (
                task.container_id,
                task.id,
                task.name,
                f"{task.name}.{task.id}",
                f"socklab-{task.lab}-{task.instance}",
            ):
                if not task.container_id:
                    raise LabError(
                        f"node '{task.instance}' has no container yet (its task is "
                        f"{task.state}{': ' + task.error if task.error else ''})",
                        f"see `docker service ps {task.service}`",
                    )
                return self._daemon(task), task.container_id, task
        return self._local, ident, None

    def _daemon(self, task: Task) -> DockerEngine:
        """The Docker daemon of the host that runs a task (reached once, then kept)."""
        if task.node_id == self.node_id:
            return self._local
        with self._lock:
            known = self._remote.get(task.node_id)
        if known is not None:
            return known
        host = next((h for h in self.hosts() if h.id == task.node_id), None)
        name = host.hostname if host else task.node_id
        url = os.environ.get("SOCKLAB_SWARM_DOCKER_HOST", DAEMON_URL).format(
            addr=host.addr if host else "", hostname=name
        )
        try:
            remote = DockerEngine(docker.DockerClient(base_url=url, timeout=30))
        except (LabError, docker.errors.DockerException) as exc:
            raise LabError(
                f"node '{task.instance}' runs on Swarm host '{name}', whose Docker daemon "
                f"socklab cannot reach at {url}: {_reason(exc)}",
                "set SOCKLAB_SWARM_DOCKER_HOST (e.g. ssh://user@{addr} or tcp://{addr}:2376 "
                "with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH), or run socklab on that host",
            ) from None
        with self._lock:
            self._remote[task.node_id] = remote
        return remote


def _matches(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
    """Docker's label filter: every key present, with the value when one is given."""
    return all(k in have and (not v or have[k] == v) for k, v in want.items())


def _retarget(spec: HelperSpec, container_id: str) -> HelperSpec:
    return replace(spec, target=container_id)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, LabError):
        return exc.message
    text = str(getattr(exc, "explanation", None) or exc or type(exc).__name__).splitlines()[0]
    return text[:200]


def swarm_engine() -> SwarmEngine:
    """The Swarm of the daemon the Docker client talks to (LabError when there is none)."""
    return SwarmEngine(_client_of(default_engine()))


def engine_for(lab: str | None) -> DockerEngine:
    """The engine a lab runs on: the Swarm when the daemon manages a stack of that lab,
    else the local Docker engine."""
    local = default_engine()
    swarm = local_swarm()
    if swarm is not None and lab and swarm.services(lab):
        return swarm
    return local


def local_swarm() -> SwarmEngine | None:
    """The Swarm when the local daemon is one of its managers, else None."""
    local = default_engine()
    info = _client_of(local).api.info().get("Swarm") or {}
    if info.get("LocalNodeState") != "active" or not info.get("ControlAvailable"):
        return None
    return SwarmEngine(_client_of(local))


def _client_of(engine: DockerEngine) -> Any:
    return engine._client  # the adapters share one connection
