"""Apply a lab plan to Docker, and take a lab down again by its labels.

Networks are made first, then every container is created, connected and
started by a bounded pool. Every node's outcome is kept; if any fails, or the
user presses Ctrl-C, everything the lab owns is removed again.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shlex
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from socklab import interrupt
from socklab.errors import LabAlreadyUp, LabError
from socklab.nodes import supervisor
from socklab.orchestrator import hostnet, hostports, netcontrol
from socklab.orchestrator.engine_api import LABEL_HELPER, ContainerInfo, Engine, PortTaken
from socklab.orchestrator.image import IN_BIN, node_tree_tar
from socklab.topology.plan import (
    LABEL_INDEX,
    LABEL_LAB,
    LABEL_NODE,
    ContainerPlan,
    LabPlan,
    node_environment,
)

WORKERS = 8
READY_WORKERS = 64
SUPERVISOR_APP = "socklab-node"
SUPERVISOR = f"{IN_BIN}/{SUPERVISOR_APP}"
READY_TIMEOUT = 30.0
CANCEL_POLL = 0.1
OWN_SETTLE = 1.0
"""seconds a node of its own program must have run for before ``up`` returns: a program
that ends sooner (a wrong ``command:``) fails ``up``"""
APPS_FILE = f"{supervisor.DEFAULT_RUN_DIR}/{supervisor.STATE_NAME}"
NODE_APPS = "start commands"
DNS_APPS = "the lab's DNS server (dnsmasq)"

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)`` while long work goes on."""


@dataclass(frozen=True)
class AppStatus:
    """One start command (or ``socklab-start`` app) of a node, as its supervisor last saw
    it: ``listening`` (with its ports), ``running``, ``exited`` (with its code), ``failed``
    (with why), or ``stopped`` (its node stopped before it exited)."""

    app: str
    state: str
    code: int | None = None
    ports: tuple[str, ...] = ()
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "state": self.state,
            "code": self.code,
            "ports": list(self.ports),
            **({"error": self.error} if self.error else {}),
        }

    def __str__(self) -> str:
        detail = (
            " ".join(self.ports)
            if self.state == "listening"
            else str(self.code)
            if self.state == "exited" and self.code is not None
            else ""
        )
        return f"{self.app} {self.state}" + (f" {detail}" if detail else "")


@dataclass(frozen=True)
class NodeStatus:
    node: str
    container: str
    state: str
    networks: dict[str, str]
    ipv6: dict[str, str] = field(default_factory=dict)
    apps: tuple[AppStatus, ...] | None = None
    """its apps, when asked for (None: not read, or the node keeps no state file)"""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "node": self.node,
            "container": self.container,
            "state": self.state,
            "networks": self.networks,
        }
        if self.ipv6:
            out["ipv6"] = self.ipv6
        if self.apps is not None:
            out["apps"] = [a.as_dict() for a in self.apps]
        return out


def up(
    engine: Engine,
    plan: LabPlan,
    image: str,
    progress: Progress | None = None,
    networks_made: Callable[[], None] | None = None,
) -> None:
    """Create the lab's networks and containers and start them; roll back on any failure.
    ``networks_made`` is called once the networks exist (the subnet lock is let go)."""
    if engine.containers(plan.labels) or engine.networks(plan.labels):
        raise LabAlreadyUp(
            f"a lab named '{plan.lab}' is already up",
            f"take it down first: `socklab down --lab {plan.lab}`",
        )
    report = progress or (lambda *_: None)
    # a node of another image gets the node code (supervisor, apps) put into its container
    tree = node_tree_tar() if any(c.image and c.supervised for c in plan.containers) else b""
    cancel = threading.Event()  # set on an interruption: the workers stop waiting at once
    try:
        report("networks", 0, len(plan.networks))
        for i, net in enumerate(plan.networks, 1):  # few and quick: one by one, first error as is
            engine.create_network(net)
            report("networks", i, len(plan.networks))
        if networks_made:
            networks_made()
        first = [c for c in plan.containers if plan.dns and c.instance == plan.dns.server]
        if first:  # the lab's DNS server answers before any node that asks it starts
            _pool_all(
                [partial(_bring_up, engine, first[0], image, DNS_APPS, tree, cancel)],
                "DNS server",
                report,
                [first[0].instance],
                cancel=cancel,
            )
        rest = [c for c in plan.containers if c not in first]
        names = [c.instance for c in rest]
        # every node: its supervisor's ready event also says that the lab DNS's resolv.conf
        # and its state file are written. Waiting costs the daemon nothing: a node is
        # waited for by a pool of its own from the moment it is started, and the 8 workers
        # go on starting the others.
        waits: dict[str, Future[None]] = {}
        own: dict[str, tuple[str, ContainerPlan, float]] = {}
        waiters = ThreadPoolExecutor(max_workers=READY_WORKERS, thread_name_prefix="socklab-ready")
        try:

            def start(spec: ContainerPlan) -> None:
                started: dict[str, str] = {}
                _start(engine, spec, image, tree, started)
                if not spec.supervised:
                    own[spec.instance] = (started[spec.instance], spec, time.monotonic())
                else:
                    waits[spec.instance] = waiters.submit(
                        wait_ready, engine, started[spec.instance], NODE_APPS, cancel
                    )

            _pool_all([partial(start, c) for c in rest], "nodes", report, names, cancel=cancel)
            waiting = [n for n in names if n in waits]
            _pool_all(
                [waits[n].result for n in waiting],
                "ready",
                report,
                waiting,
                cancel=cancel,
                workers=READY_WORKERS,
                what="nodes",
            )
        except BaseException:
            cancel.set()  # the waits still under way end at once
            raise
        finally:
            waiters.shutdown(wait=True, cancel_futures=True)
        # a node of its own program has no ready event: it must at least still run
        # ``OWN_SETTLE`` after its start (a wrong `command:` ends it at once)
        _pool_all(
            [partial(_still_running_after, engine, *own[n]) for n in names if n in own],
            "programs",
            lambda *_: None,
            [n for n in names if n in own],
            what="nodes of their own program",
        )
    except BaseException:
        down(engine, plan.lab)
        raise


def _bring_up(
    engine: Engine, spec: ContainerPlan, image: str, what: str, tree: bytes, cancel: threading.Event
) -> None:
    """Create and start a node's container, then wait until its supervisor is ready: its
    start commands (``what`` in errors) are started."""
    started: dict[str, str] = {}
    _start(engine, spec, image, tree, started)
    wait_ready(engine, started[spec.instance], what, cancel)


def _start(engine: Engine, spec: ContainerPlan, image: str, tree: bytes, started: dict[str, str]) -> None:
    """Create and start a node's container (its network set up, from this host or by a
    helper, when it needs it); its id in ``started``."""
    env = node_environment(spec)
    if spec.net.needed:  # routes, impairments: set up before the start commands run
        env["SOCKLAB_HOLD"] = netcontrol.HOLD_SECONDS
    if not spec.supervised:  # its image's own program (or its own entrypoint/command), as
        # compose runs it
        ident = engine.create_container(
            replace(spec, labels=spec.node_labels),
            spec.image or image,
            spec.env,
            spec.command,
            spec.entrypoint,
        )
    elif spec.image:
        # the supervisor as its entrypoint: an ENTRYPOINT of the image would take it as an
        # argument (and the image's CMD is dropped, as in compose)
        ident = engine.create_container(spec, spec.image, env, None, ["python3", SUPERVISOR])
        engine.put_archive(ident, "/", tree)
    else:
        ident = engine.create_container(spec, image, env, ["socklab-node"])
    try:
        engine.start(ident)
    except PortTaken as exc:  # name the node, and who holds the port when the host can tell
        who = (
            exc.holder
            or _publisher(engine, exc.host_port, exc.proto)
            or hostports.holder(exc.host_port, exc.proto)
        )
        raise PortTaken(exc.host_ip, exc.host_port, exc.proto, who, spec.instance) from exc
    except LabError:  # runc may fail to start a program that ends at once: say that instead
        if not spec.supervised:
            _still_running(engine, ident, spec)
        raise
    if spec.net.needed and not _set_up_from_host(engine, engine.container(ident), spec):
        ctl = netcontrol.NetControl(engine, spec.labels[LABEL_LAB], image)
        try:
            node = engine.container(ident)
            ctl.apply(node, netcontrol.setup_ops(spec.net, impair=True))
        except Exception:  # (the daemon's own error when the program has just ended)
            if not spec.supervised:
                _still_running(engine, ident, spec)
            raise
        if spec.supervised:  # (a node of its own program does not wait for the setup)
            ctl.release(node)
    started[spec.instance] = ident


def _still_running_after(engine: Engine, ident: str, spec: ContainerPlan, started: float) -> None:
    """:func:`_still_running`, once the node has run for ``OWN_SETTLE`` seconds."""
    time.sleep(max(0.0, started + OWN_SETTLE - time.monotonic()))
    _still_running(engine, ident, spec)


def _still_running(engine: Engine, ident: str, spec: ContainerPlan) -> None:
    """LabError when a node running its own program has already stopped: the program that
    ran (the image's ENTRYPOINT and CMD, or the node's), its exit code and last output."""
    info = engine.container(ident)
    if info.state != "exited":  # running (or never started: the engine's error says why)
        return
    image = engine.image(info.image) if info.image else None
    entrypoint = spec.entrypoint if spec.entrypoint is not None else (image.entrypoint if image else ())
    command = (
        spec.command
        if spec.command is not None
        else (image.command if image and spec.entrypoint is None else ())
    )
    program = shlex.join([*entrypoint, *command])
    hint = (
        "`command:` gives the arguments of the image's ENTRYPOINT, as in compose; `entrypoint:` replaces it"
        if spec.command is not None and spec.entrypoint is None and image and image.entrypoint
        else f"try the image by hand: `docker run --rm {info.image or 'IMAGE'}` (with its command), "
        "and fix its program or the node's `command:`"
    )
    said = [ln for ln in engine.logs(ident).splitlines() if ln.strip()]
    if len(said) > 6:  # its error may come first (then its usage) or last
        said = [*said[:2], "...", *said[-3:]]
    raise LabError(
        f"its program `{program}` exited at once (code {info.exit_code}), "
        "saying:\n" + ("\n".join(said) or "(nothing)"),
        hint,
    )


def _set_up_from_host(engine: Engine, node: ContainerInfo, spec: ContainerPlan) -> bool:
    """The node's routes set, and its supervisor let go, from this host when it can
    (:mod:`socklab.orchestrator.hostnet`); False: a helper is to do it (all of it again)."""
    if not hostnet.host_setup(os.environ.get(hostnet.SETTING), os.geteuid(), engine.on_this_host(), spec.net):
        return False
    try:
        hostnet.apply(node, spec.net)
        if spec.supervised:
            hostnet.release(node)
    except (OSError, ValueError):
        return False
    return True


def _publisher(engine: Engine, port: int, proto: str | None) -> str | None:
    """``container NAME`` for a running container that publishes this host port."""
    for c in engine.containers({}):
        if c.running and any(p.host_port == port and proto in (None, p.protocol) for p in c.ports):
            return f"container {c.name}"
    return None


def wait_ready(
    engine: Engine, ident: str, what: str = NODE_APPS, cancel: threading.Event | None = None, seen: int = 0
) -> None:
    """Until the node supervisor's next ``ready`` event (the first after the ``seen`` ones
    already in the log: it prints one at every start), read from the container's output as
    it comes; LabError (naming the failed apps, with the last output) when a start command did
    not start, the container stopped, nothing came within ``READY_TIMEOUT``, or at once when
    ``cancel`` is set (an interruption)."""
    lines: list[str] = []
    outcome: queue.Queue[dict[str, Any] | BaseException | None] = queue.Queue()

    def follow() -> None:
        stream = engine.follow_logs(ident)
        count = 0
        try:
            for line in stream:
                lines.append(line)
                event = supervisor_event(line)
                if event is not None and event.get("event") == "ready":
                    count += 1
                    if count > seen:
                        outcome.put(event)
                        return
            outcome.put(None)  # the output ended: the container stopped
        except Exception as exc:  # the engine's own error: reported by the waiting thread
            outcome.put(exc)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    threading.Thread(target=follow, daemon=True, name="socklab-ready").start()
    cancel = cancel or threading.Event()
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            event = outcome.get(timeout=CANCEL_POLL)
            break
        except queue.Empty:
            if cancel.is_set():
                raise LabError("interrupted") from None
            if time.monotonic() >= deadline:
                raise LabError(f"{what} not ready after {READY_TIMEOUT:g} s:\n{_tail(lines)}") from None
    said = [ln for ln in lines if supervisor_event(ln) is None]
    if event is None or isinstance(event, BaseException):
        why = f" ({event})" if event is not None else ""
        raise LabError(f"{what} did not start{why}:\n{_tail(lines)}")
    failed = [str(a) for a in event.get("failed") or []]
    if failed:
        errors = event.get("errors") or {}
        reasons = "".join(f"\n  {a}: {errors[a]}" for a in failed if errors.get(a))
        theirs = [ln for ln in said if _app_and_text(ln)[0] in failed]
        raise LabError(
            f"{what} did not start ({', '.join(failed)}){reasons}\nits last "
            f"output:\n{_tail(theirs or said, 6)}"
        )


def ready_count(engine: Engine, ident: str) -> int:
    """How many ready events the node's log has so far (one per start)."""
    events = (supervisor_event(line) for line in engine.logs(ident).splitlines())
    return sum(1 for e in events if e is not None and e.get("event") == "ready")


def supervisor_event(line: str) -> dict[str, Any] | None:
    """The event of a node supervisor's own output line (``<time> socklab-node[pid] {json}``),
    None for any other line."""
    app, text = _app_and_text(line)
    if app != SUPERVISOR_APP or not text.startswith("{"):
        return None
    try:
        event = json.loads(text)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


def _app_and_text(line: str) -> tuple[str, str]:
    """The app that printed a node's output line (``<time> <app>[<pid>] <text>``) and its
    text; two empty strings for a line of another form."""
    parts = line.split(" ", 2)
    if len(parts) < 3 or "[" not in parts[1]:
        return "", ""
    return parts[1].partition("[")[0], parts[2]


def _tail(lines: list[str], count: int = 5) -> str:
    return "\n".join([ln for ln in lines if ln.strip()][-count:])


def _pool_all(
    calls: list[Callable[[], Any]],
    phase: str,
    report: Progress,
    names: list[str],
    after: str = "; the lab was removed",
    cancel: threading.Event | None = None,
    workers: int = WORKERS,
    what: str | None = None,
) -> None:
    """Run calls in a bounded pool; raise one error naming every failure, in order. On an
    interruption, ``cancel`` is set and the calls under way are waited for (a start that
    is in flight goes on in the daemon anyway); the ones not begun are dropped."""
    done = 0
    report(phase, 0, len(calls))
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(calls))), thread_name_prefix="socklab")
    futures: list[Future[Any]] = []
    try:  # an interruption while submitting, too, waits for the calls under way
        futures += [pool.submit(call) for call in calls]
        for fut in futures:
            fut.exception()
            done += 1
            report(phase, done, len(calls))
    except BaseException:
        if cancel is not None:
            cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    failed = [
        (n, f.exception()) for n, f in zip(names, futures, strict=True) if not f.cancelled() and f.exception()
    ]
    if failed:
        lines = [f"  {name}: {_one_line(exc)}" for name, exc in failed]
        raise LabError(
            f"{len(failed)} of {len(calls)} {what or phase} failed{after}:\n" + "\n".join(lines),
            _first_hint(exc for _, exc in failed),
        )


def _one_line(exc: BaseException | None) -> str:
    if isinstance(exc, LabError):
        return exc.message.replace("\n", "\n    ")
    return str(getattr(exc, "explanation", None) or exc).splitlines()[0]


def _first_hint(excs: Iterable[BaseException | None]) -> str | None:
    return next((e.hint for e in excs if isinstance(e, LabError) and e.hint), None)


def down(engine: Engine, lab: str | None) -> tuple[int, int]:
    """Remove every container, then every network, labelled with the lab (all labs if None)."""
    with interrupt.held():
        return _down(engine, {LABEL_LAB: lab or ""})


def _down(engine: Engine, labels: dict[str, str]) -> tuple[int, int]:
    """Helpers first (they live in their nodes' namespaces), then nodes, then networks; again
    when a container came after the listing (an ``up`` killed meanwhile)."""
    removed: set[str] = set()
    while True:
        found = engine.containers(labels)
        helpers = [c.id for c in found if LABEL_HELPER in c.labels]
        if helpers:
            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                list(pool.map(engine.remove_container, helpers))
        _remove_containers(engine, [c for c in found if LABEL_HELPER not in c.labels])
        removed.update(c.id for c in found)
        networks = engine.networks(labels)
        try:
            if networks:
                _pool_all(
                    [partial(engine.remove_network, n.id, n.name) for n in networks],
                    "network removals",
                    lambda *_: None,
                    [n.name for n in networks],
                    after="",
                )
        except LabError:
            if not {c.id for c in engine.containers(labels)} - removed:
                raise
            continue
        return len(removed), len(networks)


def _remove_containers(engine: Engine, found: list[ContainerInfo]) -> None:
    """Remove containers so that no network keeps a stale endpoint (moby#42119: Docker 20.10
    loses an endpoint-count update when two endpoints of one network go at once, and the
    network then refuses removal until the daemon restarts; ``bench/removal_order.py``), and
    about as fast as removing them all at once (``bench/deploy.py``):

    1. a container that is not running or paused is looked up first: the daemon answers only
       once a start in flight (of an ``up`` that was killed) is done, so no endpoint appears
       behind our back; the others' networks are those of the listing;
    2. each network has a chain that disconnects its containers one at a time (the networks'
       chains run side by side); the last container of a chain is not disconnected: its
       removal deletes that endpoint, alone on the network by then;
    3. a container is force-removed as soon as every chain it is on has passed it, 8 at a
       time, while the chains go on.
    """

    def networks_of(c: ContainerInfo) -> list[str]:
        if c.state in ("running", "paused"):
            return list(c.networks)
        try:
            return list(engine.container(c.id).networks)
        except LabError:  # removed meanwhile
            return []

    if not found:
        return
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        nets = dict(zip([c.id for c in found], pool.map(networks_of, found), strict=True))
    chains: dict[str, list[str]] = {}
    for ident, names in nets.items():
        for net in names:
            chains.setdefault(net, []).append(ident)
    waiting = {ident: len(names) for ident, names in nets.items()}
    lock = threading.Lock()
    removals = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="socklab-rm")
    removing: list[Future[None]] = []

    def passed(ident: str) -> None:
        with lock:
            waiting[ident] -= 1
            if waiting[ident] == 0:
                removing.append(removals.submit(engine.remove_container, ident))

    def chain(net: str) -> None:
        *detach, last = chains[net]
        for ident in detach:
            with contextlib.suppress(LabError):  # not connected (any more): nothing to delete
                engine.disconnect(ident, net)
            passed(ident)
        passed(last)

    try:
        with lock:
            removing.extend(
                removals.submit(engine.remove_container, ident)
                for ident, count in waiting.items()
                if count == 0
            )
        if chains:
            with ThreadPoolExecutor(max_workers=min(WORKERS, len(chains))) as pool:
                list(pool.map(chain, chains))
    finally:
        removals.shutdown(wait=True)
    for done in removing:
        done.result()


def status(engine: Engine, lab: str, apps: bool = False) -> list[NodeStatus]:
    """Every node of a lab as the engine sees it, in topology order (its index label; by
    name, ``client-2`` before ``client-10``, for a node without one); with ``apps``, each
    node's apps from its supervisor's state file (read in parallel)."""
    found = ordered_nodes(engine, lab)
    states: list[tuple[AppStatus, ...] | None] = [None] * len(found)
    if apps and found:
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(found))) as pool:
            states = list(pool.map(partial(_apps_of, engine), found))
    return [
        NodeStatus(
            node=c.node,
            container=c.name,
            state=c.state,
            networks={_net_label(name, lab): e.cidr for name, e in c.networks.items()},
            ipv6={_net_label(name, lab): e.ipv6_cidr for name, e in c.networks.items() if e.ipv6},
            apps=node_apps,
        )
        for c, node_apps in zip(found, states, strict=True)
    ]


def _topology_order(c: ContainerInfo) -> tuple[int, list[int | str]]:
    index = c.labels.get(LABEL_INDEX, "")
    name = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", c.node)]
    return (int(index) if index.isdigit() else sys.maxsize, name)


def _apps_of(engine: Engine, c: ContainerInfo) -> tuple[AppStatus, ...] | None:
    """A node's apps from the state file its supervisor keeps (None when it has none)."""
    try:
        records = json.loads(engine.read_file(c.id, APPS_FILE))
    except (LabError, ValueError):
        return None
    if not isinstance(records, list):
        return None
    out = []
    for r in records:
        if not isinstance(r, dict):
            continue
        state = str(r.get("state", "?"))
        if not c.running and state in ("starting", "listening", "running"):
            state = "stopped"  # the node stopped (killed) before its supervisor saw the end
        out.append(
            AppStatus(
                str(r.get("app", "?")), state, r.get("code"), tuple(r.get("ports") or ()), r.get("error")
            )
        )
    return tuple(out)


def ordered_nodes(engine: Engine, lab: str) -> list[ContainerInfo]:
    """The node containers of a lab in topology order (see :func:`status`)."""
    return sorted(nodes_of(engine, lab), key=_topology_order)


def nodes_of(engine: Engine, lab: str) -> list[ContainerInfo]:
    """The node containers of a lab (its helpers left out)."""
    return engine.containers({LABEL_LAB: lab, LABEL_NODE: ""})


def _net_label(docker_name: str, lab: str) -> str:
    return docker_name.removeprefix(f"socklab-{lab}-")


def labs(engine: Engine) -> dict[str, dict[str, int]]:
    """Labs on this host: name -> counts of running and all containers, and networks."""
    out: dict[str, dict[str, int]] = {}
    for c in engine.containers({LABEL_LAB: ""}):  # helpers too: `down --all` removes them
        entry = out.setdefault(c.lab, {"running": 0, "nodes": 0, "networks": 0})
        entry["nodes"] += 1
        entry["running"] += c.running
    for n in engine.networks({LABEL_LAB: ""}):
        out.setdefault(n.lab or "?", {"running": 0, "nodes": 0, "networks": 0})["networks"] += 1
    return dict(sorted(out.items()))
