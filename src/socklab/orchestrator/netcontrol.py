"""socklab's hands in a node's network namespace: ``socklab-netctl`` run by a short-lived
helper container (the node image, NET_ADMIN on the helper only, labelled with the lab so
``down`` removes it), and the long-running ``socklab-netdelay`` helper that serves delays
on kernels without netem. Used at ``up`` (routes, impairments of the topology) and by
every fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from socklab.errors import LabError
from socklab.orchestrator.engine_api import LABEL_HELPER, LABEL_TARGET, ContainerInfo, Engine, HelperSpec
from socklab.orchestrator.image import IN_BIN
from socklab.topology.netsetup import NetSetup
from socklab.topology.plan import LABEL_LAB, LABEL_NET

NET_ADMIN = ("NET_ADMIN",)
FAULT = "fault"
DELAY = "delay"
HOLD_SECONDS = "60"
"""how long a node's supervisor holds its start commands for the setup (SOCKLAB_HOLD)"""


def setup_of(node: ContainerInfo) -> NetSetup:
    """A node's planned network setup, from its label (empty for a node without one)."""
    return NetSetup.from_json(node.labels.get(LABEL_NET, ""))


def links(setup: NetSetup) -> dict[str, str]:
    return {net: str(link.ip) for net, link in setup.links.items()}


@dataclass
class NetControl:
    """Runs the network controls of one lab's nodes."""

    engine: Engine
    lab: str
    image: str
    """the node image, which carries socklab-netctl and socklab-netdelay"""

    def _spec(self, node: ContainerInfo, purpose: str, *argv: str) -> HelperSpec:
        return HelperSpec(
            target=node.id, lab=self.lab, purpose=purpose, image=self.image, argv=argv, cap_add=NET_ADMIN
        )

    def _netctl(self, node: ContainerInfo, *argv: str) -> dict[str, Any]:
        result = self.engine.run_helper(self._spec(node, FAULT, "socklab-netctl", *argv))
        try:
            answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            said = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
            raise LabError(
                f"{node.node}: the network helper failed (exit {result.exit_code}): {said[-1]}",
                exit_code=1,
            ) from None
        if result.exit_code == 3:  # a kernel feature is missing: nothing was changed
            raise LabError(
                answer["error"],
                f"`socklab doctor` lists what this kernel has; missing here: {answer.get('missing')}",
            )
        if result.exit_code == 2:
            raise LabError(f"{node.node}: {answer.get('error')}")
        if result.exit_code != 0:
            raise LabError(f"{node.node}: {answer.get('error')}", exit_code=1)
        return answer

    def apply(self, node: ContainerInfo, ops: list[dict[str, Any]]) -> dict[str, Any]:
        """Apply netctl ops in a node (its delayer is started first when a delay may need
        it); the state before and after, and what was done."""
        if any(_uses_queues(op) for op in ops):
            self.ensure_delayer(node)
        request = {"links": links(setup_of(node)), "ops": ops}
        return self._netctl(node, "apply", json.dumps(request, separators=(",", ":")))

    def show(self, node: ContainerInfo) -> dict[str, Any]:
        return self._netctl(node, "show", json.dumps(links(setup_of(node))))

    def probe(self, node: ContainerInfo, traffic: bool = False) -> dict[str, bool]:
        return self._netctl(node, "probe", *(["--traffic"] if traffic else []))

    # -- the delayer ---------------------------------------------------------------

    def delayers(self, node: ContainerInfo) -> list[ContainerInfo]:
        return self.engine.containers({LABEL_LAB: self.lab, LABEL_HELPER: DELAY, LABEL_TARGET: node.id})

    def ensure_delayer(self, node: ContainerInfo) -> None:
        """Start the node's ``socklab-netdelay`` unless it runs (it exits at once where the
        kernel has netem)."""
        found = self.delayers(node)
        if any(d.running for d in found):
            return
        for old in found:
            self.engine.remove_container(old.id)
        self.engine.start_helper(self._spec(node, DELAY, "socklab-netdelay"))

    def remove_delayers(self, node: ContainerInfo) -> None:
        for helper in self.delayers(node):
            self.engine.remove_container(helper.id)

    # -- the supervisor's hold -------------------------------------------------------

    def release(self, node: ContainerInfo) -> None:
        """Let the node's supervisor start its start commands (it holds them for the setup)."""
        result = self.engine.exec(node.id, ["python3", f"{IN_BIN}/socklab-start", "--release"])
        if not result.ok:
            raise LabError(
                f"{node.node}: cannot release its start commands: {(result.stderr or result.stdout).strip()}",
                exit_code=1,
            )


def _uses_queues(op: dict[str, Any]) -> bool:
    """Whether an op may need the delayer (a delay, or a loss, where netem is missing)."""
    keys = ("delay", "loss")
    if op.get("op") == "impair":
        return any(k in op.get("set", {}) for k in keys)
    if op.get("op") == "setup":
        return bool(op.get("impair")) and any(
            k in i for i in op.get("setup", {}).get("impair", {}).values() for k in keys
        )
    if op.get("op") == "restore":
        return any(k in i for i in op.get("state", {}).get("impair", {}).values() for k in keys)
    return False


def setup_ops(setup: NetSetup, *, impair: bool) -> list[dict[str, Any]]:
    """The op that installs a node's planned setup (with its topology impairments when the
    namespace is new)."""
    return [{"op": "setup", "setup": json.loads(setup.to_json()), "impair": impair}]
