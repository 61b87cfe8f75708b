# ruff: noqa: E501  (golden error lines are long by nature)
"""Bad topologies: each asserts the exact rendered error lines and exit code 2.

Every problem of a file is reported in one pass, one line each, as
``FILE:LINE: PATH: MESSAGE — HINT`` (``FILE:LINE:COL:`` for YAML syntax errors).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from socklab.errors import LabError
from socklab.topology import TopologyError, load_topology, parse_topology
from socklab.topology import loader as topology_loader


def errors(text: str, filename: str = "lab.yml") -> list[str]:
    with pytest.raises(TopologyError) as info:
        parse_topology(text, filename)
    assert info.value.exit_code == 2
    assert isinstance(info.value, LabError)
    lines = str(info.value).splitlines()
    assert lines == [str(p) for p in info.value.problems]
    return lines


BAD = [
    pytest.param(
        """\
name: lab
networks:
  lan: {}
nodes:
  client:
    networks: [lan, lann]
""",
        [
            "lab.yml:6: nodes.client.networks[1]: unknown network 'lann' — did you mean 'lan'?",
        ],
        id="unknown_network_list",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {}
  wan: {}
nodes:
  server:
    networks:
      lan: {}
      dmz: {}
""",
        [
            "lab.yml:9: nodes.server.networks.dmz: unknown network 'dmz' — declared networks: lan, wan",
        ],
        id="unknown_network_map",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {subnet: 10.77.1.0/24}
nodes:
  server:
    networks: {lan: {ip: 10.77.2.5}}
""",
        [
            "lab.yml:6: nodes.server.networks.lan.ip: 10.77.2.5 is outside the subnet of network 'lan' (10.77.1.0/24) — pick an address in 10.77.1.2-10.77.1.254",
        ],
        id="ip_outside_subnet",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {subnet: 10.77.1.0/24}
nodes:
  server:
    networks: {lan: {ip: 10.77.1.0}}
""",
        [
            "lab.yml:6: nodes.server.networks.lan.ip: 10.77.1.0 is the network address of 10.77.1.0/24 — pick an address in 10.77.1.2-10.77.1.254",
        ],
        id="ip_network_address",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {subnet: 10.77.1.0/24}
nodes:
  server:
    networks: {lan: {ip: 10.77.1.255}}
""",
        [
            "lab.yml:6: nodes.server.networks.lan.ip: 10.77.1.255 is the broadcast address of 10.77.1.0/24 — pick an address in 10.77.1.2-10.77.1.254",
        ],
        id="ip_broadcast",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {subnet: 10.77.1.0/24}
nodes:
  server:
    networks: {lan: {ip: 10.77.1.1}}
""",
        [
            "lab.yml:6: nodes.server.networks.lan.ip: 10.77.1.1 is the gateway of network 'lan' (its first address) — pick an address in 10.77.1.2-10.77.1.254",
        ],
        id="ip_gateway",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {}
nodes:
  server:
    networks: {lan: {ip: 10.77.1.10}}
""",
        [
            "lab.yml:6: nodes.server.networks.lan.ip: a static IP needs the network's subnet — add 'subnet:' to network 'lan' (an allocated subnet is not known in advance)",
        ],
        id="ip_without_subnet",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {ipv6: true}
nodes:
  server:
    networks: {lan: {ipv6: "fd00:77::10"}}
""",
        [
            "lab.yml:6: nodes.server.networks.lan.ipv6: a static IPv6 address needs the network's IPv6 subnet — set 'ipv6: fd00:...::/64' on network 'lan' instead of 'ipv6: true'",
        ],
        id="ipv6_without_subnet",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {ipv6: "fd00:77:1::/64"}
nodes:
  server:
    networks: {lan: {ipv6: "fd00:77:2::10"}}
""",
        [
            "lab.yml:6: nodes.server.networks.lan.ipv6: fd00:77:2::10 is outside the subnet of network 'lan' (fd00:77:1::/64) — pick an address in fd00:77:1::2-fd00:77:1:0:ffff:ffff:ffff:ffff",
        ],
        id="ipv6_outside",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {subnet: 10.77.1.0/24}
nodes:
  a:
    networks: {lan: {ip: 10.77.1.10}}
  b:
    networks: {lan: {ip: 10.77.1.10}}
""",
        [
            "lab.yml:8: nodes.b.networks.lan.ip: 10.77.1.10 is already used by node 'a' on network 'lan' — give each node its own address",
        ],
        id="duplicate_ip",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {subnet: 10.77.0.0/16}
  wan: {subnet: 10.77.5.0/24}
nodes:
  a:
    networks: [lan, wan]
""",
        [
            "lab.yml:4: networks.wan.subnet: 10.77.5.0/24 overlaps network 'lan' (10.77.0.0/16) — give each network its own subnet",
        ],
        id="overlapping_subnets",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {}
nodes:
  client:
    replicas: 2
    networks: [lan]
  client-2:
    networks: [lan]
""",
        [
            "lab.yml:8: nodes.client-2: node 'client-2' clashes with a replica of 'client' (replicas: 2 makes client-1 .. client-2) — rename the node, or lower the replicas of 'client'",
        ],
        id="replica_clash",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {subnet: 10.77.1.0/24}
nodes:
  client:
    replicas: 3
    networks:
      lan: {ip: 10.77.1.10}
""",
        [
            "lab.yml:8: nodes.client.networks.lan.ip: a static address on a replicated node would be shared by its 3 replicas — remove 'ip' (addresses are allocated) or remove 'replicas'",
        ],
        id="ip_on_replicas",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {}
nodes:
  server:
    networks: {lan: {aliases: [echo, client]}}
  client:
    networks: [lan]
""",
        [
            "lab.yml:6: nodes.server.networks.lan.aliases[1]: alias 'client' is the name of node 'client' — choose another alias: node names already resolve",
        ],
        id="alias_is_node_name",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {}
nodes:
  a:
    networks: {lan: {aliases: [www]}}
  b:
    networks: {lan: {aliases: [WWW]}}
""",
        [
            "lab.yml:8: nodes.b.networks.lan.aliases[0]: alias 'WWW' is already used by node 'a' on network 'lan' — an alias names one node (replicas of a node share their aliases)",
        ],
        id="alias_two_nodes",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {}
nodes:
  a:
    networks: {lan: {aliases: [www, www]}}
""",
        [
            "lab.yml:6: nodes.a.networks.lan.aliases[1]: alias 'www' is listed twice — remove one",
        ],
        id="alias_twice",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {}
nodes:
  server:
    networks: [lan]
  client:
    replicas: 2
    networks: [lan]
scenarios:
  default:
    - run: {node: server, cmd: tcp-server}
    - run: {node: clinet-*, cmd: tcp-client server 5000}
""",
        [
            "lab.yml:13: scenarios.default[1].run.node: no node matches 'clinet-*' — did you mean 'client-*'?",
        ],
        id="step_node_unknown",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {}
nodes:
  server:
    networks: [lan]
  client:
    replicas: 2
    networks: [lan]
scenarios:
  default:
    - parallel:
        - wait: {node: server, listening: tcp/5000}
        - run: {node: nobody, cmd: hostname}
""",
        [
            "lab.yml:14: scenarios.default[0].parallel[1].run.node: no node matches 'nobody' — nodes are: server, client-1, client-2",
        ],
        id="step_node_in_parallel",
    ),
    pytest.param(
        """\
name: Echo_Lab
networks:
  LAN: {}
nodes:
  Server:
    networks: [lan]
    env: {1X: y}
""",
        [
            "lab.yml:1: name: invalid lab name 'Echo_Lab' — use a-z, 0-9 and '-', starting with a letter, at most 31 characters",
            "lab.yml:3: networks.LAN: invalid network name 'LAN' — use a-z, 0-9, '-' and '_', starting with a letter, at most 31 characters",
            "lab.yml:5: nodes.Server: invalid node name 'Server' — use a-z, 0-9 and '-', starting with a letter, at most 41 characters",
            "lab.yml:6: nodes.Server.networks[0]: unknown network 'lan' — declared networks: LAN",
            "lab.yml:7: nodes.Server.env.1X: invalid environment variable name '1X' — use letters, digits and '_', not starting with a digit",
        ],
        id="bad_names",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {}
nodes: {}
""",
        [
            "lab.yml:4: nodes: a lab needs at least one node — add one under 'nodes:'",
        ],
        id="no_nodes",
    ),
    pytest.param(
        """\
name: lab
nodes:
  a:
    networks: []
""",
        [
            "lab.yml:1: networks: missing key 'networks' — required keys: name, networks, nodes",
            "lab.yml:4: nodes.a.networks: a node needs at least one network — e.g. 'networks: [lan]'",
        ],
        id="no_networks",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {subnet: 10.77.1.0/24
nodes: {}
""",
        [
            "lab.yml:4:6: YAML syntax error: did not find expected ',' or '}' (while parsing a flow mapping started on line 3) — check the indentation and quoting here",
        ],
        id="yaml_syntax",
    ),
    pytest.param(
        """\
name: lab
description: a: b
""",
        [
            "lab.yml:2:15: YAML syntax error: mapping values are not allowed in this context — quote a value that contains ': '",
        ],
        id="yaml_colon_in_value",
    ),
    pytest.param(
        "name: lab\nnetworks:\n\tlan: {}\n",
        [
            "lab.yml:3:1: YAML syntax error: a tab character — indent with spaces, not tabs",
        ],
        id="tab_indent",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {}
nodes:
  a:
    networks: [lan]
    image: debian
    image: alpine
  a:
    networks: [lan]
""",
        [
            "lab.yml:8: nodes.a.image: duplicate key 'image' (first on line 7) — remove one of them",
            "lab.yml:9: nodes.a: duplicate key 'a' (first on line 5) — remove one of them",
        ],
        id="duplicate_key",
    ),
    pytest.param(
        """\
name: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
""",
        [
            "lab.yml:1: the document expands to more than 100000 values — aliases ('*name') repeat their anchor's content: use fewer of them",
        ],
        id="billion_laughs",
    ),
    pytest.param(
        """\
name: lab
nodes: &n
  a: *n
""",
        [
            "lab.yml:2: nodes.a: an alias refers to its own anchor — remove the recursion",
        ],
        id="recursive_alias",
    ),
    pytest.param(
        """\
name: !!python/object/apply:os.system ["echo pwned"]
networks: !custom {lan: {}}
""",
        [
            "lab.yml:1: name: tag '!!python/object/apply:os.system' is not allowed — socklab topologies are plain YAML: remove the tag",
            "lab.yml:2: networks: tag '!custom' is not allowed — socklab topologies are plain YAML: remove the tag",
        ],
        id="python_tag",
    ),
    pytest.param(
        "- name: lab\n",
        [
            "lab.yml:1: the document is a list, not a mapping — a topology is a mapping with name, networks and nodes",
        ],
        id="list_root",
    ),
    pytest.param(
        "just text\n",
        [
            "lab.yml:1: the document is a single value, not a mapping — a topology is a mapping with name, networks and nodes",
        ],
        id="scalar_root",
    ),
    pytest.param(
        "# nothing\n",
        [
            "lab.yml:1: the file is empty — a topology is a mapping with name, networks and nodes",
        ],
        id="empty",
    ),
    pytest.param(
        """\
name: a
---
name: b
""",
        [
            "lab.yml:2:1: YAML syntax error: the file holds more than one YAML document — a topology is one document: remove the second '---'",
        ],
        id="multi_document",
    ),
    pytest.param(
        """\
name: lab
description: [a, b]
networks:
  lan: {subnet: 5, ipv6: maybe}
nodes:
  a:
    networks: lan
    replicas: three
    start: 5
    env: {X: [1]}
""",
        [
            "lab.yml:2: description: expected a string, got a list",
            "lab.yml:4: networks.lan.ipv6: expected true/false or an IPv6 subnet such as fd00:77:1::/64, got 'maybe'",
            "lab.yml:4: networks.lan.subnet: expected a subnet such as 10.77.1.0/24, got 5",
            "lab.yml:7: nodes.a.networks: expected a list of network names or a mapping, got 'lan'",
            "lab.yml:8: nodes.a.replicas: expected an integer, got 'three'",
            "lab.yml:9: nodes.a.start: expected a command or a list of commands, got 5",
            "lab.yml:10: nodes.a.env.X: expected a string, got a list",
        ],
        id="wrong_types",
    ),
    pytest.param(
        """\
name: lab
networks: {lan: {}}
nodes:
  a:
    networks: [lan]
    start:
      - {cmd: tcp-server, wait: tcp/99999}
      - {cmd: sleep 1, wait: soon}
      - {cmd: "true", wait: 0}
      - {wait: none}
  b:
    networks: [lan]
    start: {cmd: tcp-server, wait: later}
""",
        [
            "lab.yml:7: nodes.a.start[0].wait: expected auto, none, tcp/PORT, udp/PORT or a number of seconds, got 'tcp/99999' — e.g. `wait: tcp/8000`",
            "lab.yml:8: nodes.a.start[1].wait: expected auto, none, tcp/PORT, udp/PORT or a number of seconds, got 'soon' — e.g. `wait: tcp/8000`",
            "lab.yml:9: nodes.a.start[2].wait: wait 0 s is out of range — give seconds in (0, 3600]",
            "lab.yml:10: nodes.a.start[3].cmd: missing key 'cmd' — required keys: cmd",
            "lab.yml:13: nodes.b.start.wait: expected auto, none, tcp/PORT, udp/PORT or a number of seconds, got 'later' — e.g. `wait: tcp/8000`",
        ],
        id="start_wait",
    ),
    pytest.param(
        """\
name: lab
senarios: {}
networks:
  lan: {subnet: 10.77.1.0/24}
nodes:
  a:
    networks:
      lan: {ip: 10.77.1.10, mac: "02:42:ac:11:00:02"}
    imgae: debian
scenarios:
  default:
    - run: {node: a, cmd: hostname, timout: 5}
""",
        [
            "lab.yml:2: senarios: unknown key 'senarios' — did you mean 'scenarios'?",
            "lab.yml:8: nodes.a.networks.lan.mac: unknown key 'mac' — allowed keys: ip, ipv6, aliases, impair",
            "lab.yml:9: nodes.a.imgae: unknown key 'imgae' — did you mean 'image'?",
            "lab.yml:12: scenarios.default[0].run.timout: unknown key 'timout' — did you mean 'timeout'?",
        ],
        id="unknown_keys",
    ),
    pytest.param(
        """\
name: lab
networks: {lan: {}}
nodes:
  a: {networks: [lan]}
scenarios:
  default:
    - runn: {node: a, cmd: hostname}
    - run: {node: a, cmd: hostname}
      wait: {node: a, listening: tcp/1}
    - just a string
    - {}
    - snapshot: socket
    - sleep: -1
    - wait: {node: a}
    - run: {node: a}
    - expect_sockets: {node: a, state: ESTABLISHD}
""",
        [
            "lab.yml:7: scenarios.default[0]: unknown step 'runn' — did you mean 'run'?",
            "lab.yml:8: scenarios.default[1]: a step has exactly one key, found 2: run, wait — start each step with '- ', and indent a step's options under its key",
            "lab.yml:10: scenarios.default[2]: expected a step, got 'just a string' — a step is a mapping with one key: start, run, parallel, wait, expect_sockets, fault, sleep, snapshot, expect_timeline, expect_ratio, capture, expect_capture, compare_sockets",
            "lab.yml:11: scenarios.default[3]: empty step — a step is a mapping with one key: start, run, parallel, wait, expect_sockets, fault, sleep, snapshot, expect_timeline, expect_ratio, capture, expect_capture, compare_sockets",
            "lab.yml:12: scenarios.default[4].snapshot: invalid value 'socket' — did you mean 'sockets'?",
            "lab.yml:13: scenarios.default[5].sleep: must be at least 0, got -1",
            "lab.yml:14: scenarios.default[6].wait: give exactly one of 'listening: tcp/PORT' or 'connected: HOST:PORT'",
            "lab.yml:15: scenarios.default[7].run.cmd: missing key 'cmd' — required keys: node, cmd",
            "lab.yml:16: scenarios.default[8].expect_sockets.state: invalid value 'ESTABLISHD' — did you mean 'ESTABLISHED'?",
        ],
        id="bad_steps",
    ),
    pytest.param(
        """\
name: lab
topic: "two\\nlines"
networks: {lan: {}}
nodes:
  a: {networks: [lan]}
  c: {networks: [lan], replicas: 2}
scenarios:
  default:
    - expect_ratio: {of: fast, to: slow, min: 2}
    - run: {node: a, cmd: date, id: fast, expect: {stdout_matches: "a(b", events: [{event: Connected}, {node: b, event: x}]}}
    - run: {node: a, cmd: date, id: fast}
    - expect_ratio: {of: fast, to: fats}
    - expect_ratio: {of: fast, to: fast, min: 1}
    - capture: {node: c, id: cap}
    - expect_capture: {capture: cpa}
    - expect_capture: {capture: cap, handshake: SYN, max: 0, min: 1}
    - expect_capture: {capture: cap}
    - expect_timeline: {events: []}
    - expect_timeline: {events: [{nod: a, event: listening}]}
    - compare_sockets: {node: a, tool: lsof}
""",
        [
            "lab.yml:2: topic: a topic is one line — put the rest in `description:`",
            "lab.yml:9: scenarios.default[0].expect_ratio.of: no earlier run step has id 'fast' — give the run steps to compare an `id:`, before this step",
            "lab.yml:9: scenarios.default[0].expect_ratio.to: no earlier run step has id 'slow' — give the run steps to compare an `id:`, before this step",
            "lab.yml:10: scenarios.default[1].run.expect.events[0].event: 'Connected' is not an event name — events are named in lower case, as the apps print them (listening, accepted, connected, sent...)",
            "lab.yml:10: scenarios.default[1].run.expect.events[1].node: no node matches 'b' — nodes are: a, c-1, c-2",
            "lab.yml:10: scenarios.default[1].run.expect.stdout_matches: bad regular expression 'a(b': missing ), unterminated subpattern at position 1 — fix it, or use stdout_contains for plain text",
            "lab.yml:11: scenarios.default[2].run.id: id 'fast' is used twice — give each step its own id",
            "lab.yml:12: scenarios.default[3].expect_ratio: give min, max or both",
            "lab.yml:12: scenarios.default[3].expect_ratio.to: no earlier run step has id 'fats' — did you mean 'fast'?",
            "lab.yml:13: scenarios.default[4].expect_ratio: 'of' and 'to' are both 'fast' — compare two different steps",
            "lab.yml:14: scenarios.default[5].capture.node: a capture runs in one node; 'c' matches 2 — name one node (e.g. the server: it sees every client's packets)",
            "lab.yml:15: scenarios.default[6].expect_capture.capture: no earlier capture step has id 'cpa' — did you mean 'cap'?",
            "lab.yml:16: scenarios.default[7].expect_capture.max: max 0 is less than min 1 — make max at least min",
            "lab.yml:18: scenarios.default[9].expect_timeline.events: needs at least 1 item(s)",
            "lab.yml:19: scenarios.default[10].expect_timeline.events[0].nod: unknown key 'nod' — did you mean 'node'?",
            "lab.yml:20: scenarios.default[11].compare_sockets.tool: invalid value 'lsof' — use one of: netstat, ss",
        ],
        id="course_steps",
    ),
    pytest.param(
        """\
name: lab
networks: {lan: {}}
nodes:
  a:
    networks: [lan]
    ports: ["80:80:80", 70000, "8080:80/sctp", {container_port: 80, host_ip: nope}]
""",
        [
            "lab.yml:6: nodes.a.ports[0]: bad port '80:80:80' — use CONTAINER, HOST:CONTAINER or IP:HOST:CONTAINER, with /udp for UDP",
            "lab.yml:6: nodes.a.ports[1].container_port: must be at most 65535, got 70000",
            "lab.yml:6: nodes.a.ports[2]: bad port '8080:80/sctp' — use CONTAINER, HOST:CONTAINER or IP:HOST:CONTAINER, with /udp for UDP",
            "lab.yml:6: nodes.a.ports[3].host_ip: expected an IPv4 address or an IPv6 address, got 'nope'",
        ],
        id="bad_ports",
    ),
    pytest.param(
        """\
name: lab
networks: {lan: {}}
nodes:
  a:
    networks: [lan]
    ports: ["8080:80"]
  b:
    networks: [lan]
    ports: ["0.0.0.0:8080:81", "8080:81/udp"]
  c:
    replicas: 2
    networks: [lan]
    ports: ["9090:80"]
""",
        [
            "lab.yml:9: nodes.b.ports[0]: host port 8080/tcp is already published by node 'a' — use another host port",
            "lab.yml:13: nodes.c.ports[0]: host port 9090 would be published by each of the 2 replicas — leave out the host port (a free one is chosen), or remove 'replicas'",
        ],
        id="host_port_clash",
    ),
    pytest.param(
        """\
name: lab
networks: {lan: {}}
nodes:
  a:
    networks: [lan]
    start: ["", "echo 'unclosed"]
scenarios:
  default:
    - run: {node: a, cmd: []}
    - start: {node: a, cmd: "  "}
""",
        [
            "lab.yml:6: nodes.a.start[0]: empty command — give a command line or an argv list",
            'lab.yml:6: nodes.a.start[1]: cannot split command "echo \'unclosed": No closing quotation — close the quote, or give an argv list',
            "lab.yml:9: scenarios.default[0].run.cmd: empty command — give a command line or an argv list",
            "lab.yml:10: scenarios.default[1].start.cmd: empty command — give a command line or an argv list",
        ],
        id="empty_commands",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {subnet: 10.77.1.5/24}
  wan: {subnet: 10.77.2.0/30}
  dmz: {subnet: 300.1.1.0/24}
nodes:
  a:
    networks: {lan: {ip: 5}, wan: {}, dmz: {}}
""",
        [
            "lab.yml:3: networks.lan.subnet: '10.77.1.5/24' has host bits set — did you mean '10.77.1.0/24'?",
            "lab.yml:4: networks.wan.subnet: subnet 10.77.2.0/30 is too small — use a prefix of /29 or shorter",
            "lab.yml:5: networks.dmz.subnet: expected an IPv4 subnet such as 10.77.1.0/24, got '300.1.1.0/24'",
            "lab.yml:8: nodes.a.networks.lan.ip: expected an address such as 10.77.1.10, got 5",
        ],
        id="subnet_values",
    ),
    pytest.param(
        """\
name: lab
networks: {lan: {}}
nodes:
  a:
    networks: [lan, lan]
    cap_add: [SYS_ADMIN, net_raw]
    replicas: 0
  b:
    networks: [lan, {wan: {ip: 1.2.3.4}}]
  c:
    networks:
      lan: {ip: 10.77.1.300, aliases: ["bad alias"]}
""",
        [
            "lab.yml:5: nodes.a.networks: network 'lan' is listed twice — list it once",
            "lab.yml:6: nodes.a.cap_add[1]: invalid capability 'net_raw' — use a capability name such as NET_ADMIN or NET_RAW",
            "lab.yml:7: nodes.a.replicas: must be at least 1, got 0",
            "lab.yml:9: nodes.b.networks: item 1 is a mapping, not a network name — to give addresses, write 'networks: {lan: {ip: ...}}'",
            "lab.yml:12: nodes.c.networks.lan.aliases[0]: invalid alias 'bad alias' — use letters, digits, '-' and '.', at most 63 characters",
            "lab.yml:12: nodes.c.networks.lan.ip: expected an IPv4 address, got '10.77.1.300'",
        ],
        id="node_fields",
    ),
    pytest.param(
        """\
name: lab
networks: {lan: {}}
nodes:
  a: {networks: [lan]}
scenarios:
  default:
    - run: {node: a, cmd: hostname, expect: {errno: ECONREFUSED, exit: 300, duration_min: 5, duration_max: 1}}
    - run: {node: a, cmd: hostname, expect: {errno: EAI_NONAM}}
    - run: {node: a, cmd: hostname, expect: {errno: econnrefused, exit: -1}}
    - expect_sockets: {node: a, min: 5, max: 2}
    - wait: {node: a, listening: tcp/99999}
    - wait: {node: a, listening: udp6/0}
    - wait: {node: a, connected: "nohost:0"}
""",
        [
            "lab.yml:7: scenarios.default[0].run.expect.duration_min: duration_min 5 is more than duration_max 1 — no run can last both: make duration_min at most duration_max",
            "lab.yml:7: scenarios.default[0].run.expect.errno: unknown errno name 'ECONREFUSED' — did you mean 'ECONNREFUSED'?",
            "lab.yml:7: scenarios.default[0].run.expect.exit: must be at most 255, got 300",
            "lab.yml:8: scenarios.default[1].run.expect.errno: unknown errno name 'EAI_NONAM' — did you mean 'EAI_NONAME'?",
            "lab.yml:9: scenarios.default[2].run.expect.errno: invalid errno name 'econnrefused' — use an errno name such as ECONNREFUSED",
            "lab.yml:9: scenarios.default[2].run.expect.exit: must be at least 0, got -1",
            "lab.yml:10: scenarios.default[3].expect_sockets.max: max 2 is less than min 5 — make max at least min",
            "lab.yml:11: scenarios.default[4].wait.listening: port 99999 is out of range — use a port in 1..65535",
            "lab.yml:12: scenarios.default[5].wait.listening: port 0 is out of range — use a port in 1..65535",
            "lab.yml:13: scenarios.default[6].wait.connected: port 0 is out of range — use a port in 1..65535",
        ],
        id="scenario_values",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {}
nodes:
  server:
    networks: [lan]
    imgae: debian
  dns:
    networks: [lan]
scenarios:
  default:
    - run: {node: server, cmd: hostname, timout: 5}
dns:
  - {name: www, cname: nosuch}
  - {name: six, aaaa: server}
  - {name: bad, a: ["not an address!"]}
  - {name: web, cname: bad}
  - {name: ttl, a: 10.1.1.1, ttl: 5}
  - {ptr: 10.1.1.1, name: p}
  - {ptr: 10.1.1.1, name: q}
""",
        [
            "lab.yml:7: nodes.server.imgae: unknown key 'imgae' — did you mean 'image'?",
            "lab.yml:12: scenarios.default[0].run.timout: unknown key 'timout' — did you mean 'timeout'?",
            "lab.yml:13: dns: a node is already named 'dns' — run the DNS server there with `server: dns`, or rename that node",
            "lab.yml:14: dns[0].cname: 'nosuch' is neither a node nor a name with `a:`/`aaaa:` records — dnsmasq answers a CNAME only when it holds the target's addresses",
            "lab.yml:15: dns[1].aaaa: node 'server' has no IPv6 address — give one of its networks `ipv6: true`",
            "lab.yml:16: dns[2].a: 'not an address!' is neither an IPv4 address nor a node name",
            "lab.yml:18: dns[4].ttl: unknown key 'ttl' — allowed keys: name, a, aaaa, cname, ptr",
            "lab.yml:20: dns[6].ptr: 10.1.1.1 already has a PTR record (dns[5]) — give each address one reverse name",
        ],
        id="dns_checked_beside_other_errors",
    ),
    pytest.param(
        """\
name: lab
networks:
  lan: {ipv6: maybe}
  wan: {}
nodes:
  a:
    networks: [lan]
  b:
    networks: {wan: {ipv6: nope}}
  c:
    networks: [lann]
  d:
    networks: [wan]
dns:
  server: Bad
  records:
    - {name: x, aaaa: [a, b, c, d]}
    - {name: dns, a: 10.1.1.1}
    - {name: y, a: [10.1.1.300]}
    - {name: z, cname: y}
""",
        [
            "lab.yml:3: networks.lan.ipv6: expected true/false or an IPv6 subnet such as fd00:77:1::/64, got 'maybe'",
            "lab.yml:9: nodes.b.networks.wan.ipv6: expected an IPv6 address, got 'nope'",
            "lab.yml:11: nodes.c.networks[0]: unknown network 'lann' — did you mean 'lan'?",
            "lab.yml:15: dns.server: invalid node name 'Bad' — name a node: a-z, 0-9 and '-', starting with a letter",
            "lab.yml:17: dns.records[0].aaaa: node 'd' has no IPv6 address — give one of its networks `ipv6: true`",
            "lab.yml:19: dns.records[2].a: '10.1.1.300' is neither an IPv4 address nor a node name",
        ],
        id="dns_no_follow_on_errors",
    ),
    pytest.param(
        """name: lab
networks: {lan: {}}
nodes:
  web:
    networks: [lan]
    image: shop/web:1
    command: serve
  client: {networks: [lan], replicas: 2}
scenarios:
  default:
    - parallel:
        - start: {node: web, cmd: tcp-server --port 5000}
    - start: {node: client, cmd: tcp-server --port 5000}
""",
        [
            "lab.yml:12: scenarios.default[0].parallel[0].start.node: node 'web' runs its own program "
            "(its `command:`), not socklab's supervisor: nothing can be started there in the "
            "background — use a `run` step (the command runs to completion), or drop `command:` "
            "from the node",
        ],
        id="start_step_on_a_node_of_its_own_program",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_topology(text: str, expected: list[str]) -> None:
    assert errors(text) == expected


def test_problem_fields() -> None:
    with pytest.raises(TopologyError) as info:
        parse_topology("name: lab\nnetworks: {lan: {}}\nnodes:\n  a: {networks: [lann]}\n", "x.yml")
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.path) == ("x.yml", 4, "nodes.a.networks[0]")
    assert (problem.message, problem.hint) == ("unknown network 'lann'", "did you mean 'lan'?")
    assert info.value.message == str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(LabError) as info:
        load_topology(missing)
    assert info.value.exit_code == 2
    assert str(info.value) == (
        f"topology file not found: {missing}\n"
        "Hint: check the path; `socklab labs` lists the labs shipped with socklab"
    )


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(LabError) as info:
        load_topology(tmp_path)
    assert str(info.value) == f"{tmp_path} is a directory, not a topology file\nHint: give a .yml file"


def test_file_too_large(tmp_path: Path) -> None:
    big = tmp_path / "big.yml"
    big.write_text("# " + "x" * (2 * 1024 * 1024) + "\n")
    assert errors_of_file(big) == [
        f"{big}: file too large (2097155 bytes) — a topology file is at most 2 MiB"
    ]


def test_not_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yml"
    bad.write_bytes(b"name: lab\ndescription: caf\xe9\n")
    assert errors_of_file(bad) == [f"{bad}:2: the file is not UTF-8 text — save it as UTF-8"]


def test_errors_name_the_file(tmp_path: Path) -> None:
    lab = tmp_path / "lab.yml"
    lab.write_text("name: lab\nnetworks: {lan: {}}\nnodes: {a: {networks: [lan], image: [x]}}\n")
    assert errors_of_file(lab) == [f"{lab}:3: nodes.a.image: expected a string, got a list"]


def errors_of_file(path: Path) -> list[str]:
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    assert info.value.exit_code == 2
    return str(info.value).splitlines()


def test_deep_nesting() -> None:
    assert errors("name: " + "[" * 100_000) == [
        "lab.yml:1: nested more than 64 levels deep — a topology is a few levels of mappings and lists"
    ]


PURE_PYTHON_CASES = [
    (
        "name: lab\nname: lab2\n",
        ["lab.yml:2: name: duplicate key 'name' (first on line 1) — remove one of them"],
    ),
    (
        "name: !!python/name:os.system x\n",
        [
            "lab.yml:1: name: tag '!!python/name:os.system' is not allowed — socklab topologies are plain YAML: remove the tag"
        ],
    ),
    (
        "name: " + "[" * 5000,
        ["lab.yml:1: nested more than 64 levels deep — a topology is a few levels of mappings and lists"],
    ),
    (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{k}: &{k} [{', '.join([f'*{p}'] * 10)}]\n" for p, k in zip("abcde", "bcdef", strict=True)
        ),
        [
            "lab.yml:1: the document expands to more than 100000 values — aliases ('*name') repeat their anchor's content: use fewer of them"
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), PURE_PYTHON_CASES)
def test_pure_python_loader(monkeypatch: pytest.MonkeyPatch, text: str, expected: list[str]) -> None:
    """Without libyaml, the same guards hold with PyYAML's own parser."""
    monkeypatch.setattr(topology_loader, "TopologyLoader", topology_loader.safe_loader(yaml.SafeLoader))
    assert errors(text) == expected


def test_dns_problems_are_located() -> None:
    text = """\
name: lab
networks: {lan: {}}
nodes:
  a: {networks: [lan]}
dns:
  server: b
"""
    (line,) = errors(text)
    assert line.startswith("lab.yml:6: dns.server: ")


def test_scenario_values_at_their_limits_and_resolver_errnos_are_accepted() -> None:
    parse_topology("""\
name: lab
networks: {lan: {}}
nodes:
  a: {networks: [lan]}
scenarios:
  default:
    - run: {node: a, cmd: hostname, expect: {exit: 255, duration_min: 1, duration_max: 1}}
    - run: {node: a, cmd: hostname, expect: {exit: 0, errno: EWOULDBLOCK}}
    - run: {node: a, cmd: hostname, expect: {errno: EAI_NONAME}}
    - run: {node: a, cmd: hostname, expect: {errno: EAI_AGAIN}}
    - run: {node: a, cmd: hostname, expect: {errno: HOST_NOT_FOUND}}
    - run: {node: a, cmd: hostname, expect: {errno: ETIMEDOUT}}
    - expect_sockets: {node: a, min: 2, max: 2}
    - wait: {node: a, listening: tcp6/65535}
    - wait: {node: a, connected: "a:1"}
""")


def test_mangled_files_give_lab_errors_never_tracebacks() -> None:
    """Random edits of a good file: each result is a topology or a located LabError."""
    import random

    good = """\
name: lab
networks:
  lan: {subnet: 10.77.1.0/24}
nodes:
  server: &server
    networks: {lan: {ip: 10.77.1.10, aliases: [echo]}}
    start: [tcp-server --port 5000]
    ports: ["8080:80"]
  client:
    replicas: 2
    networks: [lan]
scenarios:
  default:
    - wait: {node: server, listening: tcp/5000}
    - parallel:
        - run: {node: client-*, cmd: tcp-client echo 5000}
    - sleep: 1
"""
    parse_topology(good)
    rnd = random.Random(7)
    lines = good.splitlines()
    tokens = ["[", "]", "{", "}", ":", "- ", "~", "-1", "true", "[]", "*server", "'", "\t", "!!str", ","]
    for _ in range(300):
        mangled = list(lines)
        i = rnd.randrange(len(mangled))
        j = rnd.randrange(len(mangled[i]) + 1)
        mangled[i] = mangled[i][:j] + rnd.choice(tokens) + mangled[i][j:]
        if rnd.random() < 0.3:
            del mangled[rnd.randrange(len(mangled))]
        try:
            parse_topology("\n".join(mangled) + "\n", "f.yml")
        except LabError as exc:
            assert exc.exit_code == 2
            assert all(line.startswith("f.yml") for line in str(exc).splitlines()), str(exc)
