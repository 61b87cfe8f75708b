"""The host side of the network controls: how a helper's answer becomes a result or an error."""

from __future__ import annotations

import pytest

from socklab.errors import LabError
from socklab.orchestrator.engine_api import ContainerInfo, ExecResult, HelperSpec
from socklab.orchestrator.netcontrol import NetControl

from .fake_engine import FakeEngine

TRACEBACK = """Traceback (most recent call last):
  File "/opt/socklab/socklab/nodes/netctl.py", line 146, in <dictcomp>
    k: (float(v) if k in NUMBERS else v) for k, v in op["set"].items() if k in IMPAIR_KEYS
        ^^^^^^^^
TypeError: float() argument must be a string or a real number, not 'NoneType'
"""


class CrashingHelper(FakeEngine):
    def run_helper(self, spec: HelperSpec, *, timeout: float = 0) -> ExecResult:
        return ExecResult(1, "", TRACEBACK)


def test_a_crashed_helper_is_named_by_its_last_line_not_a_cut_traceback() -> None:
    node = ContainerInfo(id="c1", name="socklab-x-a", state="running", labels={"io.socklab.node": "a"})
    with pytest.raises(LabError) as caught:
        NetControl(CrashingHelper(), "x", "socklab/node:t").show(node)
    assert caught.value.message == (
        "a: the network helper failed (exit 1): "
        "TypeError: float() argument must be a string or a real number, not 'NoneType'"
    )
    assert caught.value.exit_code == 1
