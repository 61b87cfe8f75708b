"""`validate` catches what `up` would reject: unknown capabilities and commands that name no
program of the node image (a typo of a built-in app), each with a near name."""

from __future__ import annotations

from pathlib import Path

import pytest

from socklab.topology import parse_topology
from socklab.topology.capabilities import CAPABILITIES
from socklab.topology.errors import TopologyError
from socklab.topology.programs import image_programs


def problems(text: str) -> list[str]:
    with pytest.raises(TopologyError) as exc:
        parse_topology(text, "lab.yml")
    return [str(p) for p in exc.value.problems]


def test_a_typo_of_a_built_in_app_is_named_with_the_app() -> None:
    assert problems("""\
name: t
networks: {lan: {}}
nodes:
  a:
    networks: [lan]
    start: [tcp-servr --port 5000, tcp-server --port 5001]
  b:
    networks: [lan]
    start: udp-clent a 5000
""") == [
        "lab.yml:6: nodes.a.start[0]: no program 'tcp-servr' in the node image — did you mean 'tcp-server'?",
        "lab.yml:9: nodes.b.start: no program 'udp-clent' in the node image — did you mean 'udp-client'?",
    ]


def test_a_program_far_from_any_name_lists_the_built_in_apps() -> None:
    [problem] = problems("""\
name: t
networks: {lan: {}}
nodes: {a: {networks: [lan], start: [[zzqqx, --port, "5"]]}}
""")
    assert problem.startswith(
        "lab.yml:3: nodes.a.start[0]: no program 'zzqqx' in the node image "
        "— name a built-in app (tcp-server, tcp-client, "
    )


def test_image_programs_paths_and_built_in_apps_are_accepted() -> None:
    parse_topology(
        """\
name: t
networks: {lan: {}}
nodes:
  a:
    networks: [lan]
    start: [python3 -m http.server 8000, /opt/mine/serve, ./relative/x, tcp-server --port 1,
             sh -c 'sleep 1', dnsmasq --version, ss -ltn, socklab-start true]
""",
        "lab.yml",
    )


def test_nodes_of_another_image_or_their_own_path_are_not_checked() -> None:
    parse_topology(
        """\
name: t
networks: {lan: {}}
nodes:
  web: {networks: [lan], image: "nginx:local", start: [nginx -g 'daemon off;']}
  tool: {networks: [lan], env: {PATH: /opt/bin}, start: [mytool]}
scenarios:
  default:
    - run: {node: web, cmd: curl localhost}
    - start: {node: tool, cmd: mytool --serve}
""",
        "lab.yml",
    )


def test_step_commands_are_checked_in_parallel_steps_too() -> None:
    assert problems("""\
name: t
networks: {lan: {}}
nodes:
  a: {networks: [lan]}
  c: {networks: [lan], replicas: 2}
  web: {networks: [lan], image: "nginx:local"}
scenarios:
  default:
    - start: {node: a, cmd: tcp-sever --port 5000}
    - parallel:
        - run: {node: c-*, cmd: [tcp-clinet, a, "5000"]}
        - run: {node: "*", cmd: anything-goes-somewhere}
""") == [
        "lab.yml:9: scenarios.default[0].start.cmd: no program 'tcp-sever' in the node image "
        "— did you mean 'tcp-server'?",
        "lab.yml:11: scenarios.default[1].parallel[0].run.cmd: no program 'tcp-clinet' in the "
        "node image — did you mean 'tcp-client'?",
    ]


def test_unknown_capabilities_suggest_the_near_one() -> None:
    assert problems("""\
name: t
networks: {lan: {}}
nodes:
  a: {networks: [lan], cap_add: [SYS_ADMINN, CAP_NET_RAWW, NET_ADMIN, CAP_SYS_PTRACE, PERFMON]}
""") == [
        "lab.yml:4: nodes.a.cap_add[0]: unknown capability 'SYS_ADMINN' — did you mean "
        "'SYS_ADMIN'? socklab never grants it: nodes are never privileged",
        "lab.yml:4: nodes.a.cap_add[1]: unknown capability 'CAP_NET_RAWW' — did you mean 'NET_RAW'?",
    ]


def test_sys_admin_itself_is_still_refused() -> None:
    [problem] = problems(
        "name: t\nnetworks: {lan: {}}\nnodes: {a: {networks: [lan], cap_add: [SYS_ADMIN]}}\n"
    )
    assert "never privileged" in problem


def test_the_capability_list_is_this_kernels() -> None:
    last = Path("/proc/sys/kernel/cap_last_cap")
    if not last.exists():
        pytest.skip("not Linux")
    assert len(CAPABILITIES) == int(last.read_text()) + 1  # a newer kernel: add its names
    assert CAPABILITIES[12:14] == ("NET_ADMIN", "NET_RAW")  # capability numbers 12, 13


def test_the_program_list_is_the_images_own() -> None:
    programs = image_programs()
    assert {"python3", "sh", "ip", "tcpdump", "dnsmasq", "netstat", "nc", "ping"} <= programs
    assert "tcp-server" not in programs  # the built-in apps come from socklab.nodes
