"""socklab's pytest plugin (registered through the ``pytest11`` entry point).

- ``socklab_lab``: a factory, ``lab = socklab_lab("lab.yml")`` (a path, YAML text or a
  dict), that brings a lab up (its start commands started: servers listening) and takes
  it down after the test; ``scope="module"``/``"session"``, or the ``socklab_lab_module``
  and ``socklab_lab_session`` fixtures, for labs that live longer. ``socklab_lab()`` with
  no argument is the lab of the test's ``@pytest.mark.socklab``.
- ``@pytest.mark.socklab("lab.yml", scenario=None)``: a module's lab, and optionally one of
  its scenarios run as the test (the result in the ``socklab_run`` fixture).
- every lab gets this run's id in its name and labels, so that pytest-xdist workers and
  two sessions on one host never collide nor remove each other's labs;
- on a failure, the labs' node logs, socket tables and timeline go into the report (and
  JUnit's ``system-out``) and into ``--socklab-artifacts DIR``;
- ``--socklab-keep``, ``--socklab-reuse``, ``--socklab-image``;
- without a reachable Docker daemon, tests that use a lab are skipped, not errored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _pytest.outcomes import Failed

from socklab import interrupt
from socklab.errors import DaemonUnavailable, LabError
from socklab.lab import Lab
from socklab.observe.sockets import SocketRow
from socklab.orchestrator import deploy
from socklab.orchestrator.engine import default_engine
from socklab.orchestrator.engine_api import Engine
from socklab.scenario.results import RunResult

LABEL_RUN = "io.socklab.run"
"""on every resource of a lab the plugin made: the id of its test run"""
LABEL_OWNER = "io.socklab.owner"
"""``host:pid:start``: the pytest process that removes the lab (none on kept labs)"""
SECTION = "socklab"
LOG_LINES = 40
TIMELINE_EVENTS = 60

Source = str | os.PathLike[str] | Mapping[str, Any]
LabFactory = Callable[..., Lab]

_RUN = pytest.StashKey["SocklabRun"]()
_USED = pytest.StashKey[list[Lab]]()
_RESULT = pytest.StashKey[RunResult]()
_MARKED = pytest.StashKey[Lab]()
_WORKER_RUN = "socklab_run"
_KEPT = "socklab_kept"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("socklab", "socket labs in Docker (socklab)")
    group.addoption(
        "--socklab-keep",
        action="store_true",
        help="leave the labs up after the tests (the summary says how to remove them)",
    )
    group.addoption(
        "--socklab-reuse",
        action="store_true",
        help="reuse a lab already up from the same file and content (and keep it)",
    )
    group.addoption(
        "--socklab-image", metavar="IMAGE", help="node image to use instead of building socklab/node:<hash>"
    )
    group.addoption(
        "--socklab-artifacts",
        metavar="DIR",
        help="where failed tests' node logs, socket tables and timelines go "
        "(default: socklab/ under pytest's basetemp)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "socklab(lab, scenario=None): the module's lab (a path, YAML text or a "
        "dict), up for the marked tests; with scenario, that scenario runs as the test",
    )
    # pytest-xdist workers share their controller's run id (a worker's own id in lab names)
    shared = getattr(config, "workerinput", {}).get(_WORKER_RUN)
    worker = getattr(config, "workerinput", {}).get("workerid", "")
    config.stash[_RUN] = SocklabRun(config, id=shared, worker=worker) if shared else SocklabRun(config)
    config.pluginmanager.register(JunitSystemOut(config), "socklab-junit")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist's controller starting a worker: it gets this run's id."""
    node.workerinput[_WORKER_RUN] = node.config.stash[_RUN].id


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """A pytest-xdist worker is done: the labs it kept are listed with the controller's."""
    node.config.stash[_RUN].kept += getattr(node, "workeroutput", {}).get(_KEPT, [])


def pytest_sessionstart(session: pytest.Session) -> None:
    if session.config.pluginmanager.hasplugin("dsession"):
        # a pytest-xdist controller: a SIGTERM or SIGHUP ends the session like Ctrl-C (its
        # workers are stopped, their labs removed), not the controller alone
        interrupt.install((signal.SIGTERM, signal.SIGHUP), only_default=True)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """An interrupted pytest-xdist controller passes the signal on to the workers that hold
    labs of this run, before it stops them: they tear their labs down as it would."""
    fired = interrupt.fired()
    if fired is not None and session.config.pluginmanager.hasplugin("dsession"):
        session.config.stash[_RUN].signal_owners(fired)


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(_RUN, None)
    if run is not None:
        run.finish()


@dataclass
class SocklabRun:
    """This pytest process's labs: its run id, the labs by scope, what to clean up."""

    config: pytest.Config
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    worker: str = ""
    """the pytest-xdist worker this process is (``gw0``), which shares its controller's id"""
    labs: dict[tuple[str, str], Lab] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    """the labs left up (``--socklab-keep``), a pytest-xdist controller's workers' too"""
    current: pytest.Item | None = None
    """the test being run: the labs it asks for are its evidence when it fails"""
    _finalizers: set[str] = field(default_factory=set)
    _made: int = 0
    _engine: Engine | None = None
    _swept: bool = False

    @property
    def keep(self) -> bool:
        return bool(self.config.getoption("socklab_keep") or self.config.getoption("socklab_reuse"))

    @property
    def reuse(self) -> bool:
        return bool(self.config.getoption("socklab_reuse"))

    def engine(self) -> Engine:
        """The Docker engine; a skip (not an error) when no daemon answers."""
        if self._engine is None:
            try:
                self._engine = default_engine()
            except DaemonUnavailable as exc:
                pytest.skip(f"socklab: {exc.message}")
            # from the first lab on, a cancelled CI job (SIGTERM) or a closed terminal
            # (SIGHUP) ends the session like Ctrl-C: the labs are torn down
            interrupt.install((signal.SIGTERM, signal.SIGHUP), only_default=True)
            self._sweep()
        return self._engine

    def _sweep(self) -> None:
        """Remove the labs of earlier test runs on this host whose pytest process is gone
        (killed with -9: nothing of it could clean up)."""
        if self._swept or self._engine is None:
            return
        self._swept = True
        engine = self._engine
        owned = {(c.lab, c.labels[LABEL_OWNER]) for c in engine.containers({LABEL_OWNER: ""})}
        owned |= {(n.lab, n.labels[LABEL_OWNER]) for n in engine.networks({LABEL_OWNER: ""})}
        here = f"{socket.gethostname()}:"
        gone = {owner for _, owner in owned if owner.startswith(here) and _local_owner(owner) is None}
        for lab in sorted({lab for lab, owner in owned if owner in gone}):  # every lab of each
            deploy.down(engine, lab)

    def artifacts(self) -> Path:
        given = self.config.getoption("socklab_artifacts")
        if given:
            return Path(given)
        factory = getattr(self.config, "_tmp_path_factory", None)
        base = factory.getbasetemp() if factory is not None else Path(tempfile.gettempdir())
        return Path(base) / "socklab"

    def lab(self, source: Source, where: Path, scope: str, request: pytest.FixtureRequest) -> Lab:
        """The lab of ``source`` for this scope of the request: brought up once, taken down
        at the end of the scope."""
        engine = self.engine()
        scope_key = _scope_key(request, scope)
        key = (scope_key, _source_key(source, where))
        lab = self.labs.get(key)
        if lab is None:
            lab = self._load(source, where, engine)
            try:
                lab.up(reuse=self.reuse)
            except DaemonUnavailable as exc:
                pytest.skip(f"socklab: {exc.message}")
            self.labs[key] = lab
        if scope_key not in self._finalizers:
            self._finalizers.add(scope_key)
            _scope_node(request, scope).addfinalizer(lambda: self.release(scope_key))
        if self.current is not None:
            used = self.current.stash.setdefault(_USED, [])
            if lab not in used:
                used.append(lab)
        return lab

    def _load(self, source: Source, where: Path, engine: Engine) -> Lab:
        labels = {LABEL_RUN: self.id}
        if not self.keep:
            labels[LABEL_OWNER] = _owner()
        image = self.config.getoption("socklab_image")
        if isinstance(source, Mapping) or (isinstance(source, str) and _is_yaml(source)):
            lab = Lab.from_yaml(source, engine=engine, labels=labels, image=image)
        else:
            lab = Lab.load(_find(source, where), engine=engine, labels=labels, image=image)
        self._made += 1
        lab.rename(_run_name(lab.name, "-".join(filter(None, (self.id, self.worker, str(self._made))))))
        return lab

    def release(self, scope_key: str) -> None:
        """The end of a scope: its labs go down (or are kept)."""
        self._finalizers.discard(scope_key)
        for key in [k for k in self.labs if k[0] == scope_key]:
            lab = self.labs.pop(key)
            if self.keep:
                self.kept.append(lab.name)
                if hasattr(self.config, "workeroutput"):  # a pytest-xdist worker tells them
                    self.config.workeroutput.setdefault(_KEPT, []).append(lab.name)
            else:
                lab.down()

    def finish(self) -> None:
        """The end of the session: whatever is left of this run's labs is removed (by a
        pytest-xdist controller: its workers' too, once they are stopped)."""
        for key in list(self.labs):
            self.release(key[0])
        engine = self._engine or (self._connect() if self._controls_workers else None)
        if engine is None or self.keep:
            return
        # a worker's own labs only: the other workers of the run may still use theirs
        mine = {LABEL_RUN: self.id, **({} if self._controls_workers else {LABEL_OWNER: _owner()})}
        for name in sorted({c.lab for c in engine.containers(mine)} | {n.lab for n in engine.networks(mine)}):
            deploy.down(engine, name)

    def signal_owners(self, signum: int) -> None:
        """Send a signal to the live processes on this host that own labs of this run."""
        engine = self._connect()
        found = engine.containers({LABEL_RUN: self.id}) if engine else []
        pids = {_local_owner(c.labels.get(LABEL_OWNER, "")) for c in found}
        for pid in filter(None, pids):
            with contextlib.suppress(OSError):
                os.kill(pid, signum)

    @property
    def _controls_workers(self) -> bool:
        return self.config.pluginmanager.hasplugin("dsession")

    def _connect(self) -> Engine | None:
        try:
            return default_engine()
        except DaemonUnavailable:
            return None


def _local_owner(owner: str) -> int | None:
    """The pid of the live process on this host that an owner label (``host:pid:start``)
    names; None when it is gone (or on another host)."""
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    try:
        return int(pid) if host == socket.gethostname() and _start_time(int(pid)) == start else None
    except (OSError, ValueError):
        return None


def _start_time(pid: int) -> str:
    """A process's start time (clock ticks since boot), to tell it from a later one with
    the same pid."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[19]


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _run_name(name: str, run: str) -> str:
    """The lab's name with the run id (lab names are at most 31 characters)."""
    return f"{name[: 30 - len(run)].rstrip('-')}-{run}"


def _is_yaml(text: str) -> bool:
    return "\n" in text or text.lstrip().startswith(("name:", "{"))


def _find(source: str | os.PathLike[str], where: Path) -> Path:
    """A topology path: as given, else next to the test file."""
    path = Path(source)
    if not path.is_absolute() and not path.exists() and (where / path).exists():
        return where / path
    return path


def _source_key(source: Source, where: Path) -> str:
    if isinstance(source, Mapping):
        text = json.dumps(source, sort_keys=True, default=str)
    elif isinstance(source, str) and _is_yaml(source):
        text = source
    else:
        return str(_find(source, where).resolve())
    return hashlib.sha256(text.encode()).hexdigest()


def _scope_key(request: pytest.FixtureRequest, scope: str) -> str:
    if scope == "session":
        return "session"
    if scope == "module":
        return f"module:{request.node.nodeid.split('::')[0]}"
    return f"function:{request.node.nodeid}"


def _scope_node(request: pytest.FixtureRequest, scope: str) -> pytest.Item | pytest.Collector:
    node: pytest.Item | pytest.Collector = request.node
    if scope == "session":
        return request.session
    if scope == "module":
        return node.getparent(pytest.Module) or request.session
    return node


def _here(run: SocklabRun, request: pytest.FixtureRequest) -> Path:
    """The folder of the test asking for a lab (a relative topology path starts there)."""
    item = run.current
    return Path(item.path).parent if item is not None else request.config.rootpath


def _factory(request: pytest.FixtureRequest, default_scope: str) -> LabFactory:
    run = request.config.stash[_RUN]

    def make(source: Source | None = None, *, scope: str | None = None) -> Lab:
        if source is None:
            marked = run.current.stash.get(_MARKED, None) if run.current is not None else None
            if marked is None:
                raise LabError(
                    "socklab_lab() needs a lab: a path, YAML text or a dict",
                    'or mark the test with @pytest.mark.socklab("lab.yml")',
                )
            return marked
        scope = scope or default_scope
        if scope not in ("function", "module", "session"):
            raise LabError(f"unknown scope {scope!r}", "function, module or session")
        return run.lab(source, _here(run, request), scope, request)

    return make


@pytest.fixture
def socklab_lab(request: pytest.FixtureRequest) -> LabFactory:
    """A factory: ``socklab_lab("lab.yml")`` (or YAML text, or a dict) brings the lab up
    and gives the :class:`socklab.Lab`; it is taken down after the test (``scope="module"``
    or ``"session"``: after the module or the session)."""
    return _factory(request, "function")


@pytest.fixture(scope="module")
def socklab_lab_module(request: pytest.FixtureRequest) -> LabFactory:
    """As ``socklab_lab``, the labs living until the end of the module."""
    return _factory(request, "module")


@pytest.fixture(scope="session")
def socklab_lab_session(request: pytest.FixtureRequest) -> LabFactory:
    """As ``socklab_lab``, the labs living until the end of the session."""
    return _factory(request, "session")


@pytest.fixture
def socklab_run(request: pytest.FixtureRequest) -> RunResult:
    """The result of the scenario ``@pytest.mark.socklab(..., scenario=...)`` ran."""
    result: RunResult | None = request.node.stash.get(_RESULT, None)
    if result is None:
        raise LabError(
            "no scenario ran for this test",
            'mark it with @pytest.mark.socklab("lab.yml", scenario="default")',
        )
    return result


@pytest.fixture(autouse=True)
def _socklab_marker(request: pytest.FixtureRequest) -> None:
    """A test marked ``socklab``: its module's lab up; the scenario run, if it names one."""
    marker = request.node.get_closest_marker("socklab")
    if marker is None:
        return
    if not marker.args:
        raise LabError("@pytest.mark.socklab needs a lab", '@pytest.mark.socklab("lab.yml")')
    run = request.config.stash[_RUN]
    lab = run.lab(marker.args[0], _here(run, request), "module", request)
    request.node.stash[_MARKED] = lab
    scenario = marker.kwargs.get("scenario")
    if scenario:
        folder = run.artifacts() / _safe(request.node.nodeid) / f"{lab.name}-{scenario}"
        request.node.stash[_RESULT] = lab.run(scenario, folder)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A marked test's scenario is the test: its failed steps fail it before its body runs."""
    result = item.stash.get(_RESULT, None)
    if result is not None and not result.passed:
        failed = [s for s in result.all_steps() if not s.passed]
        lines = [f"step {s.index} {s.title}: {s.detail}" for s in failed]
        if result.error:
            lines.append(result.error)
        raise ScenarioFailed(
            f"scenario {result.lab}/{result.scenario} failed "
            f"(report: {Path(result.run_dir) / 'report.html'}):\n" + "\n".join(lines),
            pytrace=False,
        )
    yield


class ScenarioFailed(Failed):
    """A marked test's scenario had a failed step: shown as its failed steps, without a
    traceback (the plugin's, not the test's)."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that used a lab: the labs' evidence into the report and the run folder."""
    report = yield
    if report.failed and report.when in ("call", "setup"):
        run = item.config.stash[_RUN]
        for lab in item.stash.get(_USED, []):
            folder = run.artifacts() / _safe(item.nodeid) / lab.name
            try:
                text = collect_artifacts(lab, folder)
            except LabError as exc:
                text = f"(could not collect: {exc.message})"
            report.sections.append((f"{SECTION}: lab {lab.name}", text))
    return report


class JunitSystemOut:
    """The labs' evidence of a failed test as JUnit ``system-out`` (with ``--junitxml``)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        texts = [
            f"--- {name} ---\n{text}" for name, text in report.sections if name.startswith(f"{SECTION}: ")
        ]
        if not texts or report.when not in ("call", "setup"):
            return
        try:
            from _pytest.junitxml import xml_key
        except ImportError:  # another pytest: the report sections still carry it
            return
        xml = self.config.stash.get(xml_key, None)
        if xml is not None:
            tag = ET.Element("system-out")
            tag.text = "\n".join(texts)
            xml.node_reporter(report).append(tag)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> None:
    item.config.stash[_RUN].current = item


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    run = config.stash.get(_RUN, None)
    if run is None:
        return
    if run.kept:
        terminalreporter.section("socklab")
        for name in run.kept:
            terminalreporter.write_line(f"lab '{name}' is still up: socklab down --lab {name}")


def collect_artifacts(lab: Lab, folder: Path) -> str:
    """Write a lab's node logs, socket tables and timeline under ``folder``; the text shown
    in the failure report (the tails, and where the rest is)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    logs = lab.logs()
    for node, text in logs.items():
        (folder / "logs" / f"{node}.log").write_text(text)
    running = [s.node for s in lab.status() if s.state == "running"]
    rows = lab.sockets(running) if running else []
    (folder / "sockets.json").write_text(
        json.dumps({n: [r.as_dict() for r in rows if r.node == n] for n in running}, indent=2)
    )
    table = sockets_text(rows, running)
    (folder / "sockets.txt").write_text(table)
    events = lab.timeline()
    (folder / "timeline.json").write_text(json.dumps([e.as_dict() for e in events], indent=2))
    timeline = "\n".join(_event_line(e) for e in events)
    (folder / "timeline.txt").write_text(timeline + "\n")
    parts = [
        f"artifacts: {folder}",
        "",
        "sockets:",
        table,
        "",
        f"timeline (last {TIMELINE_EVENTS} events):",
        "\n".join(timeline.splitlines()[-TIMELINE_EVENTS:]),
        "",
    ]
    for node, text in logs.items():
        tail = text.splitlines()[-LOG_LINES:]
        parts += [f"logs of {node} (last {len(tail)} lines):", *tail, ""]
    return "\n".join(parts)


def sockets_text(rows: list[SocketRow], nodes: list[str]) -> str:
    """Socket tables like ``netstat -tuanp``, one per node."""
    out = []
    for node in nodes:
        mine = [r for r in rows if r.node == node and r.kind in ("tcp", "udp")]
        out.append(node)
        table = [
            ("Proto", "Recv-Q", "Send-Q", "Local Address", "Foreign Address", "State", "PID/Program")
        ] + [(r.proto, str(r.recv_q), str(r.send_q), r.local, r.remote, r.state, r.owner) for r in mine]
        widths = [max(len(row[i]) for row in table) for i in range(7)]
        out += [
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
        ]
    return "\n".join(out)


def _event_line(e: Any) -> str:
    detail = " ".join(
        f"{k}={v}" for k, v in e.fields.items() if v not in (None, "") and not isinstance(v, dict | list)
    )
    return f"{e.time[11:]}  {e.node:<12} {e.app:<14} {e.event:<10} {e.peer or '':<22} {detail}"


def _safe(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:120]
