"""socklab.compose, pure: a lab as a compose or stack file, a compose file as a lab (golden files).

The golden files are in tests/unit/golden/compose; after a deliberate change of the output,
rewrite them with ``SOCKLAB_UPDATE_GOLDEN=1 pytest tests/unit/test_compose.py`` and read the diff.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from socklab.compose import Images, export_compose, stack_plan, unsupported
from socklab.compose.importer import import_compose, safe_name
from socklab.errors import LabError
from socklab.topology import parse_topology
from socklab.topology.loader import read_document
from socklab.topology.plan import plan

GOLDEN = Path(__file__).parent / "golden" / "compose"
LAB = GOLDEN / "lab.yml"
IMAGES = Images("socklab/node:0123456789ab")


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SOCKLAB_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"differs from {path}"


def exported(swarm: bool) -> tuple[str, list[str]]:
    text = LAB.read_text()
    topo = parse_topology(text, "lab.yml")
    result = export_compose(topo, plan(topo), IMAGES, swarm=swarm, source=read_document(text, "lab.yml"))
    return result.yaml(), [str(w) for w in result.warnings]


def test_local_export_golden() -> None:
    text, warnings = exported(swarm=False)
    golden("lab.compose.yml", text)
    assert warnings == [
        "lab.yml: web, db, client-1, client-2, dns keep their default route (`socklab up` "
        "removes it so that nothing leaves the lab; masquerading stays off, so outside hosts "
        "cannot answer them)",
        "lab.yml:27: scenarios: not in the file: compose has no scenarios "
        "(`socklab run` runs them on a lab it brings up)",
    ]


def test_local_export_runs_what_socklab_up_runs() -> None:
    doc = yaml.safe_load(exported(swarm=False)[0])
    assert doc["version"] == "2.4"
    web = doc["services"]["web"]
    assert (web["container_name"], web["hostname"], web["domainname"]) == (
        "socklab-shop-web",
        "web",
        "shop.test",
    )
    assert web["image"] == IMAGES.node and web["init"] is True
    assert web["command"] == ["socklab-node"]
    # start commands as argv lists, never through a shell; '$' escaped from compose's variables
    assert json.loads(web["environment"]["SOCKLAB_START"].replace("$$", "$")) == [
        ["tcp-server", "--port", "5000", "--mode", "threaded"],
        ["sh", "-c", 'echo "home is $HOME"'],
    ]
    assert "$$HOME" in web["environment"]["SOCKLAB_START"]
    assert web["environment"]["GREETING"] == "hi"
    assert web["labels"] == {"io.socklab.lab": "shop", "io.socklab.node": "web", "io.socklab.index": "0"}
    assert web["networks"]["front"] == {
        "ipv4_address": "10.77.1.10",
        "aliases": ["web", "web.shop.test", "www"],
        "priority": 200,
    }
    assert web["networks"]["back"]["ipv6_address"] == "fd00:77:2::2"
    assert web["ports"] == ["127.0.0.1:8080:5000/tcp"]
    # replicas are one service each, with their own name and address, sharing the base alias
    assert [doc["services"][c]["networks"]["front"]["ipv4_address"] for c in ("client-1", "client-2")] == [
        "10.77.1.2",
        "10.77.1.3",
    ]
    assert "client" in doc["services"]["client-2"]["networks"]["front"]["aliases"]
    # the lab's DNS: its server node starts dnsmasq first; the others ask it and start after it
    dns = doc["services"]["dns"]
    dnsmasq = json.loads(dns["environment"]["SOCKLAB_START"])[0]
    assert dnsmasq["argv"][0] == "/usr/sbin/dnsmasq" and dnsmasq["wait"] == "udp/53"
    assert "nameserver 10.77.1.4" in doc["services"]["client-1"]["environment"]["SOCKLAB_RESOLV_CONF"]
    assert doc["services"]["client-1"]["depends_on"] == {"dns": {"condition": "service_healthy"}}
    assert dns["healthcheck"]["test"][:2] == ["CMD", "dig"]  # they start once dnsmasq answers
    back = doc["networks"]["back"]
    assert back["name"] == "socklab-shop-back" and back["enable_ipv6"] is True
    assert back["ipam"]["config"] == [
        {"subnet": "10.77.2.0/24", "gateway": "10.77.2.1"},
        {"subnet": "fd00:77:2::/64", "gateway": "fd00:77:2::1"},
    ]
    # internal unless a node on it publishes ports, as `socklab up` makes it
    assert (doc["networks"]["front"]["internal"], back["internal"]) == (False, False)


def test_swarm_export_golden() -> None:
    text, warnings = exported(swarm=True)
    golden("lab.stack.yml", text)
    golden("lab.stack.warnings.txt", "\n".join(warnings) + "\n")


def test_swarm_stack_replicas_are_slots_and_nothing_is_dropped_silently() -> None:
    topo = parse_topology(LAB.read_text())
    stack = stack_plan(topo, plan(topo), IMAGES)
    by_name = {s.name: s for s in stack.services}
    assert list(by_name) == ["web", "db", "client"]  # no dns node: Swarm cannot have one
    client = by_name["client"]
    assert (client.replicas, client.hostname) == (2, "client-{{.Task.Slot}}")
    assert (client.instance(1), client.instance(2)) == ("client-1", "client-2")
    assert client.env["SOCKLAB_NODE"] == "client-{{.Task.Slot}}"
    assert client.networks[0].aliases == ("client",)
    assert "dnsmasq" not in by_name["web"].env["SOCKLAB_START"]
    assert "SOCKLAB_RESOLV_CONF" not in by_name["web"].env
    paths = {w.path for w in stack.warnings}
    assert {
        "nodes.web.networks.front.ip",
        "nodes.web.networks.back.ip",
        "nodes.web.ports[0]",
        "networks.back.ipv6",
        "dns",
        "nodes.web.cap_add",
        "nodes.web.ports",
        "scenarios",
    } <= paths
    assert [w.path for w in unsupported(topo)] == [
        "nodes.web.networks.front.ip",
        "nodes.web.networks.back.ip",
        "nodes.web.ports[0]",
        "networks.back.ipv6",
        "dns",
    ]


def test_a_lab_swarm_can_run_has_no_unsupported_keys() -> None:
    topo = parse_topology(
        "name: sw\nnetworks: {lan: {}}\nnodes:\n"
        "  s: {networks: [lan], ports: ['0.0.0.0:8080:80']}\n"
        "  c: {replicas: 3, networks: [lan], cap_add: [NET_RAW]}\n"
    )
    assert unsupported(topo) == []


def test_import_golden() -> None:
    text = (GOLDEN / "docker-compose.yml").read_text()
    result = import_compose(text, "docker-compose.yml", default_name="shop")
    golden("docker-compose.lab.yml", result.yaml())
    golden("docker-compose.warnings.txt", "\n".join(map(str, result.warnings)) + "\n")


def test_import_maps_each_modelled_key() -> None:
    result = import_compose((GOLDEN / "docker-compose.yml").read_text(), "docker-compose.yml")
    topo = parse_topology(result.yaml())  # the written topology is valid as it is
    assert result.lab == "compose"
    assert list(topo.nodes) == ["app", "gateway", "batch-worker", "cache"]  # depends_on first
    app, gateway = topo.nodes["app"], topo.nodes["gateway"]
    assert app.image is None
    assert [c.argv for c in app.start] == [["tcp-server", "--port", "5000", "--mode", "threaded"]]
    assert app.env == {"MODE": "fast", "HOME_DIR": "$HOME", "USER_NAME": "${USER}"}
    assert app.cap_add == ["NET_RAW"]
    back = app.networks["back"]
    assert (str(back.ip), str(back.ipv6), back.aliases) == ("172.28.0.10", "fd00:28::10", ["backend"])
    assert str(topo.networks["back"].subnet) == "172.28.0.0/24"
    assert str(topo.networks["back"].ipv6) == "fd00:28::/64"
    # hostname: the node is named after it; its service name stays a name that resolves
    assert gateway.image == "nginx:alpine" and gateway.networks["front"].aliases == ["shop", "proxy"]
    assert [str(p.host_ip) for p in gateway.ports] == ["127.0.0.1"] * 2 + ["0.0.0.0"] * 2
    assert [(p.host_port, p.container_port, p.protocol) for p in gateway.ports] == [
        (8080, 80, "tcp"),
        (8443, 443, "tcp"),
        (9000, 9000, "udp"),
        (9001, 9001, "udp"),
    ]
    assert gateway.env == {"TZ": "UTC"}  # through the << merge of an x- template
    assert topo.nodes["batch-worker"].replicas == 3
    worker = topo.nodes["batch-worker"]  # its own program, as compose runs it
    assert (worker.entrypoint, worker.command) == (["sh", "-c"], ["sleep 1000"])
    assert topo.nodes["cache"].networks == {"default": topo.nodes["cache"].networks["default"]}


def test_import_warns_each_key_it_drops_with_its_line() -> None:
    result = import_compose((GOLDEN / "docker-compose.yml").read_text(), "docker-compose.yml")
    found = {(w.line, w.path) for w in result.warnings}
    assert {
        (16, "services.proxy.restart"),
        (23, "services.app.environment[2]"),
        (24, "services.app.environment[3]"),
        (25, "services.app.cap_add[1]"),
        (33, "services.app.deploy.resources"),
        (34, "services.app.healthcheck"),
        (36, "services.batch_worker"),
        (42, "services.batch_worker.volumes"),
        (45, "services.cache.domainname"),
        (47, "services.cache.depends_on.app.condition"),
        (59, "networks.legacy.external"),
        (60, "volumes"),
    } <= found
    assert all(w.file == "docker-compose.yml" for w in result.warnings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: '3'\n", "no `services:` mapping"),
        (
            "services:\n  a: {networks: {n: {ipv4_address: 10.0.0.5}}}\n"
            "networks: {n: {ipam: {config: [{subnet: 10.9.0.0/24}]}}}\n",
            "c.yml:2: services.a.networks.n.ipv4_address: 10.0.0.5 is outside the subnet of "
            "network 'n' (10.9.0.0/24)",
        ),
    ],
)
def test_import_errors_are_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(LabError) as info:
        import_compose(text, "c.yml")
    assert message in info.value.message


def test_safe_names() -> None:
    assert safe_name("My_Project") == "my-project"
    assert safe_name("2fast") == "n-2fast"
    assert safe_name("back_net", underscore=True) == "back_net"
    assert safe_name("x" * 50) == "x" * 31


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
@pytest.mark.parametrize("swarm", [False, True])
def test_docker_compose_accepts_the_exported_file(tmp_path: Path, swarm: bool) -> None:
    """docker-compose's own schema validation (`config` needs no daemon)."""
    path = tmp_path / "c.yml"
    path.write_text(exported(swarm)[0])
    done = subprocess.run(
        ["docker-compose", "-f", str(path), "-p", "shop", "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_cli_import_writes_a_valid_lab_and_warns_on_stderr(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from socklab.cli import app

    project = tmp_path / "My_Shop"
    project.mkdir()
    (project / "docker-compose.yml").write_text((GOLDEN / "docker-compose.yml").read_text())
    out = tmp_path / "lab.yml"
    result = CliRunner().invoke(
        app, ["compose", "import", str(project / "docker-compose.yml"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and "lab 'my-shop', 4 nodes" in result.stdout
    assert "docker-compose.yml:16: services.proxy.restart:" in result.stderr
    assert parse_topology(out.read_text()).name == "my-shop"
    as_json = CliRunner().invoke(
        app, ["compose", "import", str(project / "docker-compose.yml"), "--json", "--name", "other"]
    )
    data = json.loads(as_json.stdout)
    assert data["lab"] == "other" and data["topology"]["nodes"]["app"]["cap_add"] == ["NET_RAW"]
    assert {
        "file": str(project / "docker-compose.yml"),
        "line": 16,
        "path": "services.proxy.restart",
        "message": "'restart' is not modelled by socklab: not imported",
    } in data["warnings"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compose", "import", "/nonexistent/c.yml"], "compose file not found"),
        (["compose", "import", str(GOLDEN / "lab.yml")], "no `services:` mapping"),
        (
            ["compose", "import", str(GOLDEN / "docker-compose.yml"), "-o", "/nonexistent/x.yml"],
            "cannot write /nonexistent/x.yml",
        ),
    ],
)
def test_cli_import_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from socklab.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_import_placement_on_a_host_and_export_it_back() -> None:
    text = (
        "services:\n  s:\n    image: socklab/node:x\n    deploy:\n      placement:\n"
        "        constraints: [node.hostname == worker-2, node.role == manager]\n"
    )
    result = import_compose(text, "c.yml", name="placed")
    assert result.topology["nodes"]["s"]["host"] == "worker-2"
    assert [(w.line, w.path) for w in result.warnings if "constraint" in w.message] == [
        (6, "services.s.deploy.placement.constraints[1]")
    ]
    topo = parse_topology(result.yaml())
    stack = stack_plan(topo, plan(topo), IMAGES)
    assert stack.services[0].constraints == ("node.hostname == worker-2",)
    local = export_compose(topo, plan(topo), IMAGES)
    assert [w.path for w in local.warnings] == ["nodes.s.host"]


ROUTED = """name: routed
networks:
  lan: {subnet: 10.77.1.0/24, impair: {loss: 5%, delay: 40ms}}
  wan: {subnet: 10.77.2.0/24}
nodes:
  r: {networks: [lan, wan], router: true}
  a: {networks: {lan: {impair: {rate: 1mbit}}}}
  b: {networks: [wan]}
"""


def test_routes_and_impairments_are_listed_as_not_exported() -> None:
    topo = parse_topology(ROUTED, "routed.yml")
    source = read_document(ROUTED, "routed.yml")
    local = export_compose(topo, plan(topo), IMAGES, source=source)
    found = {(w.line, w.path) for w in local.warnings}
    assert {(6, "nodes.r.router"), (7, "nodes.a.networks.lan.impair"), (3, "networks.lan.impair")} <= found
    doc = local.document
    # what a file can hold of a routed lab: forwarding in the router only, hosts entries,
    # no masquerading on its networks
    assert doc["services"]["r"]["sysctls"]["net.ipv4.ip_forward"] == "1"
    assert doc["services"]["a"]["extra_hosts"] == ["b:10.77.2.3", "b.routed.test:10.77.2.3"]
    assert doc["networks"]["lan"]["driver_opts"] == {
        "com.docker.network.bridge.enable_ip_masquerade": "false"
    }
    # Swarm: refused (addresses unknown in advance; the helper runs on the local engine)
    assert {w.path for w in unsupported(topo)} >= {
        "nodes.r.router",
        "nodes.a.networks.lan.impair",
        "networks.lan.impair",
    }


def test_entrypoint_and_command_travel_as_compose_runs_them() -> None:
    """A service's `entrypoint: [sh, -c]` with `command: [...]` (the usual way to run a
    shell line) is imported as the node's entrypoint and command, and exported back as the
    same keys in the compose file and the stack file (where Swarm runs them as a task's
    Command and Args)."""
    text = (
        "services:\n"
        "  job:\n"
        "    image: busybox\n"
        "    entrypoint: [sh, -c]\n"
        "    command: ['while true; do sleep 1; done']\n"
        "  tool:\n"
        "    image: socklab/node:0123456789ab\n"
        "    entrypoint: tcp-server\n"
        "    command: --port 5000\n"
        "    network_mode: host\n"
    )
    result = import_compose(text, "c.yml")
    topo = parse_topology(result.yaml())
    job, tool = topo.nodes["job"], topo.nodes["tool"]
    assert (job.entrypoint, job.command) == (["sh", "-c"], ["while true; do sleep 1; done"])
    assert (tool.entrypoint, tool.command, tool.start) == (["tcp-server"], ["--port", "5000"], [])
    assert [w.path for w in result.warnings].count("services.tool.network_mode") == 1
    specs = {c.instance: c for c in plan(topo).containers}
    assert not specs["job"].supervised and not specs["tool"].supervised
    local = yaml.safe_load(export_compose(topo, plan(topo), IMAGES, swarm=False).yaml())
    assert local["services"]["job"]["entrypoint"] == ["sh", "-c"]
    assert local["services"]["job"]["command"] == ["while true; do sleep 1; done"]
    assert "SOCKLAB_START" not in local["services"]["tool"]["environment"]
    # its container says it runs its own program (`socklab fault restart` waits for no supervisor)
    assert local["services"]["job"]["labels"]["io.socklab.program"] == "own"
    stack = yaml.safe_load(export_compose(topo, plan(topo), IMAGES, swarm=True).yaml())
    assert stack["services"]["job"]["labels"]["io.socklab.program"] == "own"
    assert stack["services"]["job"]["entrypoint"] == ["sh", "-c"]
    assert stack["services"]["job"]["command"] == ["while true; do sleep 1; done"]
    services = {s.name: s for s in stack_plan(topo, plan(topo), IMAGES).services}
    assert (services["tool"].entrypoint, services["tool"].command) == (("tcp-server",), ("--port", "5000"))


@pytest.mark.parametrize("swarm", [False, True])
def test_an_own_image_without_its_supervised_image_is_used_as_it_is_with_a_warning(swarm: bool) -> None:
    topo = parse_topology(
        "name: own\nnetworks: {lan: {}}\nnodes:\n"
        "  app: {networks: [lan], image: 'shop/app:1', start: [tcp-server --port 80]}\n"
        "  job: {networks: [lan], image: 'shop/job:1', command: [run-job]}\n"
    )
    made = export_compose(topo, plan(topo), IMAGES, swarm=swarm)
    services = made.document["services"]
    assert (services["app"]["image"], services["job"]["image"]) == ("shop/app:1", "shop/job:1")
    assert [(w.path, w.message[:34]) for w in made.warnings if "used as it is" in w.message] == [
        ("nodes.app.image", "'shop/app:1' is used as it is: its")
    ]
    with_supervisor = Images(IMAGES.node, {"shop/app:1": "socklab/supervised:abc"})
    made = export_compose(topo, plan(topo), with_supervisor, swarm=swarm)
    app = made.document["services"]["app"]
    assert app["image"] == "socklab/supervised:abc"
    # the supervisor is the entrypoint: an ENTRYPOINT of the image would take it as an argument
    assert app["entrypoint"] == ["socklab-node"] and "command" not in app
    assert not any("used as it is" in w.message for w in made.warnings)


def test_a_container_name_stays_a_name_that_resolves() -> None:
    result = import_compose(
        "services:\n  db:\n    image: postgres\n    container_name: mydb\n"
        "  app:\n    image: busybox\n    networks: [a, b]\n    container_name: app\n"
        "networks: {a: {}, b: {}}\n",
        "c.yml",
    )
    topo = parse_topology(result.yaml())
    assert topo.nodes["db"].networks["default"].aliases == ["mydb"]
    assert all(not att.aliases for att in topo.nodes["app"].networks.values())  # its own name
    assert [str(w) for w in result.warnings if "container_name" in w.path] == [
        "c.yml:4: services.db.container_name: the container is named socklab-<lab>-db; 'mydb' "
        "stays a name that resolves (an alias)",
        "c.yml:8: services.app.container_name: the container is named socklab-<lab>-app; 'app' "
        "stays a name that resolves (an alias)",
    ]


def test_a_service_compose_builds_runs_the_image_compose_tags() -> None:
    """docker-compose 1.x tags what it builds `<project>_<service>`, the project being the
    file's folder (lower case, letters, digits, '-' and '_' only), not the file's name."""
    text = "services:\n  web:\n    build: .\n  api:\n    build: ./api\n    image: shop/api:2\n"
    result = import_compose(text, "docker-compose.yml", default_name="My.Shop")
    topo = parse_topology(result.yaml())
    assert (topo.nodes["web"].image, topo.nodes["api"].image) == ("myshop_web", "shop/api:2")
    built = [w.message for w in result.warnings if w.path.endswith(".build")]
    assert built[0].endswith("the node runs the image compose tags (myshop_web)")
    assert built[1].endswith("the node runs the image compose tags")  # its `image:`
