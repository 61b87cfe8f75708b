"""``socklab doctor``: what this host can do for socklab, each line ok or missing.

The kernel's features are tried for real from a helper container in a network namespace
of its own (a netem, tbf, htb qdisc added and removed, an iptables ``statistic`` rule, a
datagram sent through an NFQUEUE queue), never read from the host's own tables. With a
topology, the features it uses (its impairments, IPv6 networks, fault steps) are marked
as needed, and a needed one that is missing makes the doctor fail.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from ipaddress import IPv4Network
from typing import Any

from socklab.errors import LabError
from socklab.orchestrator import image
from socklab.orchestrator.engine_api import Engine, HelperSpec
from socklab.topology.faults import fault_kind
from socklab.topology.model import ParallelStep, Strict, Topology, step_kind
from socklab.topology.plan import AUTO_POOL, AUTO_PREFIX

DOCTOR_LAB = "socklab-doctor"
NETEM_HINT = "a kernel built with CONFIG_NET_SCH_NETEM (`modprobe sch_netem`)"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    hint: str | None = None
    needed: bool = False
    """the lab asked about (or socklab itself) uses it: a needed check that is not ok makes
    the doctor fail"""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": "ok" if self.ok else "missing"}


#: feature -> (what it gives, what happens without it, hint)
FEATURES: dict[str, tuple[str, str, str]] = {
    "netem": (
        "loss, delay, rate, corrupt, duplicate",
        "corrupt and duplicate cannot work; the rest use the fallbacks below",
        NETEM_HINT,
    ),
    "tbf": ("rate", "rate uses htb", "CONFIG_NET_SCH_TBF"),
    "htb": ("rate where tbf is missing", "rate needs tbf or netem", "CONFIG_NET_SCH_HTB"),
    "statistic": (
        "iptables statistic match: picks the packets a loss drops without netem",
        "loss needs netem",
        "CONFIG_NETFILTER_XT_MATCH_STATISTIC",
    ),
    "nfqueue": (
        "NFQUEUE: delay, jitter and loss (the drops) without netem",
        "delay and loss need netem",
        "CONFIG_NETFILTER_NETLINK_QUEUE and CONFIG_NETFILTER_XT_TARGET_NFQUEUE",
    ),
    "ipv6": ("IPv6 networks", "`ipv6:` networks cannot work", "boot without ipv6.disable=1"),
    "br_netfilter": (
        "bridged packets pass the host's iptables: routed networks are made non-internal",
        "nothing to do",
        "",
    ),
}


def probe_kernel(engine: Engine) -> dict[str, bool]:
    """The kernel's features, tried in a helper's own network namespace (the node image)."""
    tag = image.node_image_tag()
    if engine.image(tag) is None:
        raise LabError(f"the node image {tag} is missing", "`socklab image build`")
    result = engine.run_helper(
        HelperSpec(
            target="",
            lab=DOCTOR_LAB,
            purpose="doctor",
            image=tag,
            argv=("socklab-netctl", "probe", "--traffic"),
            cap_add=("NET_ADMIN",),
        )
    )
    try:
        found: dict[str, bool] = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise LabError(f"the kernel probe failed: {result.stderr.strip()[-200:]}") from None
    return found


def needs(topo: Topology | None) -> set[str]:
    """The kernel features a topology asks for; each entry is ``a|b+c`` when ``a``, or ``b``
    and ``c`` together, will do."""
    if topo is None:
        return set()
    out: set[str] = set()
    impairs = [n.impair for n in topo.networks.values() if n.impair]
    impairs += [a.impair for node in topo.nodes.values() for a in node.networks.values() if a.impair]
    for imp in impairs:
        out |= _impair_needs(imp.model_dump(exclude_none=True))
    if any(n.ipv6 for n in topo.networks.values()):
        out.add("ipv6")
    for steps in topo.scenarios.values():
        for step in _walk(list(steps)):
            if step_kind(step) == "fault":
                fault = step.fault  # type: ignore[attr-defined]
                kind = fault_kind(fault)
                spec = getattr(fault, kind)
                keys: dict[str, dict[str, Any]] = {
                    "loss": {"loss": 1, "proto": getattr(spec, "proto", None)},
                    "delay": {"delay": 1},
                    "rate": {"rate": 1},
                    "corrupt": {"corrupt": 1},
                    "duplicate": {"duplicate": 1},
                }
                out |= _impair_needs(keys.get(kind, {}))
    return out


def _impair_needs(settings: dict[str, Any]) -> set[str]:
    out = set()
    if "loss" in settings:
        out.add("statistic+nfqueue" if settings.get("proto") else "netem|statistic+nfqueue")
    if "delay" in settings:
        out.add("netem|nfqueue")
    if "rate" in settings:
        out.add("netem|tbf|htb")
    out |= {"netem" for key in ("corrupt", "duplicate") if key in settings}
    return out


def _walk(steps: list[Strict]) -> list[Strict]:
    out = []
    for step in steps:
        out.append(step)
        if isinstance(step, ParallelStep):
            out += _walk(list(step.parallel))
    return out


def run(connect: Any, topo: Topology | None = None) -> list[Check]:
    """Every check; ``connect()`` gives the engine (it raises when the daemon is away)."""
    checks: list[Check] = []
    try:
        engine: Engine | None = connect()
    except LabError as exc:
        engine = None
        checks.append(Check("docker daemon", False, exc.message, exc.hint, needed=True))
    if engine is not None:
        daemon = engine.daemon()
        checks.append(
            Check(
                "docker daemon", True, f"{daemon.version} (API {daemon.api_version}), kernel {daemon.kernel}"
            )
        )
    image_checks = _image(engine)
    checks += image_checks
    checks += _kernel(engine, needs(topo))
    tool = shutil.which("mmdebstrap")
    checks.append(
        Check(
            "mmdebstrap",
            tool is not None,
            tool or "not found",
            None
            if tool
            else "`apt-get install mmdebstrap` (builds the node image where no registry is reachable)",
            needed=tool is None and engine is not None and not image_checks[0].ok,
        )
    )
    if engine is not None:
        swarm = daemon.swarm
        checks.append(
            Check(
                "swarm",
                True,
                f"{swarm}" + (" (only `--engine swarm` needs it)" if swarm == "inactive" else ""),
            )
        )
        checks.append(_address_space(engine))
    return checks


def _image(engine: Engine | None) -> list[Check]:
    if engine is None:
        return [Check("node image", False, "not checked: no daemon")]
    st = image.status(engine)
    if st.present:
        return [Check("node image", True, f"{st.tag} present (built from this socklab's code)")]
    return [
        Check(
            "node image",
            False,
            f"{st.tag} not built yet",
            "`socklab image build` (or any `socklab up`, which builds it)",
        )
    ]


def _kernel(engine: Engine | None, wanted: set[str]) -> list[Check]:
    if engine is None:
        return [Check("kernel features", False, "not probed: no daemon")]
    try:
        found = probe_kernel(engine)
    except LabError as exc:
        return [Check("kernel features", False, f"not probed: {exc.message}", exc.hint, needed=bool(wanted))]
    out = []
    for name, (what, without, hint) in FEATURES.items():
        ok = bool(found.get(name))
        needed = any(_serves(name, w, found) for w in wanted)
        detail = what if ok else f"{what}: absent ({without})"
        if name == "br_netfilter":
            ok = True
        out.append(Check(name, ok, detail, None if ok else hint or None, needed=needed))
    return out


def _serves(name: str, want: str, found: dict[str, bool]) -> bool:
    """Whether feature ``name`` is needed for ``want`` (``a|b+c``): it is part of the first
    alternative this kernel has, or, where it has none, of any alternative."""
    alternatives = [alt.split("+") for alt in want.split("|")]
    usable = [alt for alt in alternatives if all(found.get(x) for x in alt)]
    return name in usable[0] if usable else any(name in alt for alt in alternatives)


def _address_space(engine: Engine) -> Check:
    used = [n for n in engine.subnets_in_use() if isinstance(n, IPv4Network)]
    subnets = list(AUTO_POOL.subnets(new_prefix=AUTO_PREFIX))
    free = sum(1 for s in subnets if not any(s.overlaps(u) for u in used))
    return Check(
        "address space",
        free > 0,
        f"{free} of {len(subnets)} /{AUTO_PREFIX} subnets of {AUTO_POOL} free",
        None if free else "`socklab down --all`, or give networks a `subnet:`",
        needed=free == 0,
    )


def failed(checks: list[Check]) -> list[Check]:
    """The checks that make the doctor fail: needed and missing."""
    return [c for c in checks if c.needed and not c.ok]
