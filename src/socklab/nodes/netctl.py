"""``socklab-netctl``: socklab's network controls, run by a helper container that joins a
node's network namespace (with NET_ADMIN; the node itself never has it for this).

``socklab-netctl show LINKS`` prints what is in force; ``socklab-netctl apply REQUEST``
changes it; ``socklab-netctl probe [--traffic]`` says which kernel features work.
LINKS maps each network of the node to its IPv4 address (to find its interface);
REQUEST is ``{"links": {...}, "ops": [...]}`` in JSON, the ops being

- ``{"op": "setup", "setup": {...}, "impair": true}``: routes, default route and (with
  ``impair``) the topology's impairments, as planned (``socklab.topology.netsetup``);
- ``{"op": "impair", "nets": [...], "set": {"loss": 30, "proto": "udp", ...}}``: merge
  settings into those networks' impairments; ``{"op": "clear", "nets": [...]}``;
- ``{"op": "partition", "peer": NAME, "addresses": [...]}``: drop what comes from them;
  ``{"op": "heal", "peers": [...]}`` or ``{"op": "heal", "all": true}``;
- ``{"op": "restore", "state": STATE}``: put back what ``show`` printed (after a restart).

The kernel itself holds the state, so it is never out of date: a partition is a rule of
the raw table's ``SOCKLAB-PARTITION`` chain (jumped to from PREROUTING: what is dropped
there never reaches the node, forwarded or not), an impairment is a comment rule of the
filter table's ``SOCKLAB-RECORD`` chain (never jumped to) plus what does the work:
netem when the kernel has it, else an iptables ``statistic`` DROP (loss), an NFQUEUE
rule served by ``socklab-netdelay`` (delay, jitter) and a tbf or htb qdisc (rate), in the
``SOCKLAB-EGRESS`` chain (jumped to from OUTPUT and FORWARD: a router's forwarded
packets are impaired too). Every change is computed and checked first, then applied;
a missing kernel feature changes nothing and exits 3 naming it.

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time

from socklab.nodes import nfqueue

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional

    State = Dict[str, Any]

EGRESS = "SOCKLAB-EGRESS"
RECORD = "SOCKLAB-RECORD"
PARTITION = "SOCKLAB-PARTITION"
HANDLE = "5ab:"
QUEUE_WAIT = 5.0
IMPAIR_KEYS = ("loss", "proto", "delay", "jitter", "rate", "corrupt", "duplicate")
NUMBERS = ("loss", "delay", "jitter", "corrupt", "duplicate")


class Refused(Exception):
    """A request that cannot be applied; nothing was changed. ``code`` is the exit code
    (2 a bad request, 3 a missing kernel feature) and ``missing`` names that feature."""

    def __init__(self, message: str, code: int = 2, missing: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.missing = missing


# -- the kernel's state --------------------------------------------------------------


def parse_state(save4: str, save6: str = "") -> State:
    """Impairments and partitions from ``iptables-save`` (and ``ip6tables-save``) text."""
    impair: Dict[str, Dict[str, Any]] = {}
    partition: Dict[str, List[str]] = {}
    for text in (save4, save6):
        for line in text.splitlines():
            if not line.startswith(("-A %s " % RECORD, "-A %s " % PARTITION)):
                continue
            words = shlex.split(line)
            fields = _comment_fields(words)
            if words[1] == RECORD and fields.get("kind") == "impair" and "net" in fields:
                net = fields.pop("net")
                impair[net] = _typed(fields)
            elif words[1] == PARTITION and "peer" in fields and "-s" in words:
                address = words[words.index("-s") + 1].split("/")[0]
                partition.setdefault(fields["peer"], []).append(address)
    return {"impair": impair, "partition": partition}


def _comment_fields(words: List[str]) -> Dict[str, str]:
    """``--comment "socklab impair net=lan loss=5"`` -> ``{"kind": "impair", "net": ...}``."""
    if "--comment" not in words:
        return {}
    text = words[words.index("--comment") + 1].split()
    if not text or text[0] != "socklab":
        return {}
    fields = {"kind": text[1] if len(text) > 1 else ""}
    for item in text[2:]:
        key, _, value = item.partition("=")
        fields[key] = value
    return fields


def _typed(fields: Dict[str, str]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in fields.items():
        if key == "kind":
            continue
        if key in NUMBERS:
            out[key] = float(value)
        elif key in ("rate", "queue", "lqueue"):
            out[key] = int(value)
        else:
            out[key] = value
    return out


def _comment(kind: str, fields: Dict[str, Any]) -> str:
    parts = ["socklab", kind]
    for key in sorted(fields):
        value = fields[key]
        if value is None:
            continue
        parts.append("%s=%s" % (key, ("%g" % value) if isinstance(value, float) else value))
    return " ".join(parts)


# -- requests -> the new state -----------------------------------------------------


def apply_ops(state: State, ops: List[Dict[str, Any]], nets: List[str]) -> Dict[str, Any]:
    """Change ``state`` in place by the ops; what they did (``healed`` peers...)."""
    done: Dict[str, Any] = {"healed": [], "cleared": []}
    impair = state["impair"]
    partition = state["partition"]
    for op in ops:
        kind = op.get("op")
        if kind == "setup":
            if op.get("impair"):
                for net, settings in op["setup"].get("impair", {}).items():
                    impair[net] = _fresh_queue(state, dict(settings, src="topology"), None)
        elif kind == "impair":
            given = {k: v for k, v in op["set"].items() if k in IMPAIR_KEYS and v is not None}
            for net in op["nets"]:
                _known(net, nets)
                old = impair.get(net, {})
                merged = dict(old, **{k: (float(v) if k in NUMBERS else v) for k, v in given.items()})
                if "loss" in given and "proto" not in given:
                    merged.pop("proto", None)
                if "delay" in given and "jitter" not in given:
                    merged.pop("jitter", None)
                merged["src"] = "runtime"
                impair[net] = _fresh_queue(state, merged, old)
        elif kind == "clear":
            for net in op["nets"]:
                if impair.pop(net, None) is not None:
                    done["cleared"].append(net)
        elif kind == "partition":
            partition[op["peer"]] = sorted(set(op["addresses"]))
        elif kind == "heal":
            peers = list(partition) if op.get("all") else [p for p in op["peers"] if p in partition]
            for peer in peers:
                del partition[peer]
            done["healed"] += peers
        elif kind == "restore":
            impair.clear()
            impair.update(op["state"].get("impair", {}))
            partition.clear()
            partition.update(op["state"].get("partition", {}))
        elif kind != "setup":
            raise Refused("unknown op %r" % kind)
    return done


def _known(net: str, nets: List[str]) -> None:
    if net not in nets:
        raise Refused("network %r is not one of this node's (%s)" % (net, ", ".join(nets)))


def _fresh_queue(state: State, settings: Dict[str, Any], old: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Queue numbers for the NFQUEUE backends: ``lqueue`` takes the packets a loss drops
    (kept while there is a loss), ``queue`` the packets a delay holds (a new number
    whenever the delay changes, so that the delayer's binding of it proves that it serves
    the new delay; the old queue goes with its rule)."""
    used = {i.get(k) for i in state["impair"].values() for k in ("queue", "lqueue")}
    used |= {settings.get("lqueue"), settings.get("queue")}

    def new() -> int:
        queue = max([q for q in used if isinstance(q, int)] + [0]) % 65000 + 1
        while queue in used:
            queue += 1
        used.add(queue)
        return queue

    if settings.get("loss") is None:
        settings.pop("lqueue", None)
    elif not settings.get("lqueue"):
        settings["lqueue"] = new()
    if settings.get("delay") is None:
        settings.pop("queue", None)
    elif not (
        old
        and old.get("queue")
        and (old.get("delay"), old.get("jitter")) == (settings.get("delay"), settings.get("jitter"))
    ):
        settings["queue"] = new()
    return settings


# -- the state -> what the kernel is told --------------------------------------------


def backends(settings: Dict[str, Any], features: Dict[str, bool]) -> Dict[str, str]:
    """Which mechanism does each setting of one network's impairment; Refused (exit 3)
    when this kernel has none."""
    netem = features.get("netem", False)
    out: Dict[str, str] = {}
    for key in ("corrupt", "duplicate"):
        if settings.get(key) is not None:
            if not netem:
                raise Refused(
                    "%s needs the kernel's netem qdisc (sch_netem), which this kernel does not have" % key,
                    3,
                    "sch_netem",
                )
            out[key] = "netem"
    if settings.get("loss") is not None:
        if netem and not settings.get("proto"):
            out["loss"] = "netem"
        elif features.get("statistic") and features.get("nfqueue"):
            out["loss"] = "iptables statistic"
        else:
            raise Refused(
                "loss needs netem (sch_netem), or the iptables statistic match with NFQUEUE "
                "(xt_statistic, nfnetlink_queue); this kernel has neither",
                3,
                "sch_netem" if features.get("statistic") else "xt_statistic",
            )
    if settings.get("delay") is not None:
        if netem:
            out["delay"] = "netem"
        elif features.get("nfqueue"):
            out["delay"] = "nfqueue"
        else:
            raise Refused(
                "delay needs netem (sch_netem) or NFQUEUE (nfnetlink_queue); this kernel has neither",
                3,
                "sch_netem, nfnetlink_queue",
            )
    if settings.get("rate") is not None:
        for name in ("netem", "tbf", "htb"):
            if features.get(name):
                out["rate"] = name
                break
        else:
            raise Refused(
                "rate needs a tbf, htb or netem qdisc (sch_tbf, sch_htb, sch_netem); this kernel has none",
                3,
                "sch_tbf",
            )
    return out


def iptables_text(state: State, ifaces: Dict[str, str], features: Dict[str, bool], family: int = 4) -> str:
    """``iptables-restore --noflush`` input that rewrites socklab's chains (and only them)."""
    egress: List[str] = []
    records: List[str] = []
    for net in sorted(state["impair"]):
        settings = state["impair"][net]
        if family == 4:
            records.append(
                "-A %s -m comment --comment %s -j RETURN"
                % (RECORD, _quote(_comment("impair", dict(settings, net=net))))
            )
        iface = ifaces.get(net)
        if iface is None:
            continue  # disconnected: kept, and applied again when it is connected
        how = backends(settings, features)
        if how.get("loss") == "iptables statistic":
            proto = " -p %s" % settings["proto"] if settings.get("proto") else ""
            egress.append(
                "-A %s -o %s%s -m statistic --mode random --probability %.6f "
                "-m comment --comment %s -j NFQUEUE --queue-num %d --queue-bypass"
                % (
                    EGRESS,
                    iface,
                    proto,
                    settings["loss"] / 100.0,
                    _quote(_comment("loss", {"net": net})),
                    settings["lqueue"],
                )
            )  # dropped by the delayer: a DROP here would fail the sender's send() with EPERM
        if how.get("delay") == "nfqueue":
            egress.append(
                "-A %s -o %s -m comment --comment %s -j NFQUEUE --queue-num %d "
                "--queue-bypass"
                % (
                    EGRESS,
                    iface,
                    _quote(
                        _comment(
                            "delay",
                            {
                                "net": net,
                                "ms": float(settings["delay"]),
                                "jitter": float(settings.get("jitter") or 0),
                            },
                        )
                    ),
                    settings["queue"],
                )
            )
    drops: List[str] = []
    for peer in sorted(state["partition"]):
        for address in state["partition"][peer]:
            if (":" in address) == (family == 6):
                drops.append(
                    "-A %s -s %s -m comment --comment %s -j DROP"
                    % (PARTITION, address, _quote(_comment("partition", {"peer": peer})))
                )
    lines = ["*filter", ":%s - [0:0]" % EGRESS]
    if family == 4:
        lines.append(":%s - [0:0]" % RECORD)
    lines += egress + records + ["COMMIT", "*raw", ":%s - [0:0]" % PARTITION]
    return "\n".join(lines + drops + ["COMMIT", ""])


def _quote(text: str) -> str:
    return '"%s"' % text


def tc_commands(
    iface: str, settings: Optional[Dict[str, Any]], features: Dict[str, bool], mtu: int = 1500
) -> List[List[str]]:
    """The tc commands that give ``iface`` its qdisc; ``[]`` when it needs none (the
    executor then removes socklab's own, if there is one)."""
    if not settings:
        return []
    how = backends(settings, features)
    netem = [k for k, v in how.items() if v == "netem"]
    root = ["tc", "qdisc", "replace", "dev", iface, "root", "handle", HANDLE]
    if netem:
        args = []
        if "delay" in netem:
            args += ["delay", "%gms" % settings["delay"]]
            if settings.get("jitter"):
                args.append("%gms" % settings["jitter"])
        for key in ("loss", "corrupt", "duplicate"):
            if key in netem:
                args += [key, "%g%%" % settings[key]]
        if "rate" in netem:
            args += ["rate", "%dbit" % settings["rate"]]
        return [[*root, "netem", *args]]
    rate = settings.get("rate")
    if rate is None:
        return []
    if how["rate"] == "tbf":
        burst = max(2 * (mtu + 14), rate // 8 // 50)  # 20 ms of traffic, two frames at least
        return [[*root, "tbf", "rate", "%dbit" % rate, "burst", str(burst), "latency", "1s"]]
    return [
        [*root, "htb", "default", "1"],
        [
            "tc",
            "class",
            "replace",
            "dev",
            iface,
            "parent",
            HANDLE,
            "classid",
            HANDLE + "1",
            "htb",
            "rate",
            "%dbit" % rate,
            "ceil",
            "%dbit" % rate,
        ],
    ]


# -- the node's namespace --------------------------------------------------------------


def _run(argv: List[str], stdin: Optional[str] = None, check: bool = True) -> str:
    proc = subprocess.run(
        argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True
    )
    if check and proc.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv[:4]), (proc.stderr or proc.stdout).strip()))
    return proc.stdout if proc.returncode == 0 else ""


def interfaces(links: Dict[str, str]) -> Dict[str, Dict[str, Any]]:
    """Each network's interface (name, mtu) found by the node's address on it; a network
    the node is disconnected from is absent."""
    found: Dict[str, Dict[str, Any]] = {}
    for entry in json.loads(_run(["ip", "-j", "addr", "show"]) or "[]"):
        for addr in entry.get("addr_info", []):
            for net, ip in links.items():
                if addr.get("local") == ip:
                    found[net] = {"name": entry["ifname"], "mtu": int(entry.get("mtu", 1500))}
    return found


def _ip6tables() -> bool:
    return bool(_run(["ip6tables-save", "-t", "raw"], check=False))


def read() -> State:
    return parse_state(_run(["iptables-save"]), _run(["ip6tables-save"], check=False))


def probe(traffic: bool = False) -> Dict[str, bool]:
    """Which kernel features work in this network namespace, tried for real."""
    out: Dict[str, bool] = {}
    for name, args in (
        ("netem", ["netem", "delay", "1ms"]),
        ("tbf", ["tbf", "rate", "1mbit", "burst", "32kb", "latency", "50ms"]),
        ("htb", ["htb", "default", "1"]),
        ("prio", ["prio"]),
    ):
        out[name] = _tc_ok(args)
    chain = "SOCKLAB-PROBE"
    _run(["iptables", "-N", chain], check=False)
    out["statistic"] = _ok(
        [
            "iptables",
            "-A",
            chain,
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            "0.5",
            "-j",
            "RETURN",
        ]
    )
    out["nfqueue_target"] = _ok(["iptables", "-A", chain, "-j", "NFQUEUE", "--queue-num", "65001"])
    _run(["iptables", "-F", chain], check=False)
    _run(["iptables", "-X", chain], check=False)
    out["nfqueue"] = out["nfqueue_target"] and _nfqueue_binds(traffic)
    out["ipv6"] = _readable("/proc/net/if_inet6")
    out["ip6tables"] = _ip6tables()
    out["br_netfilter"] = _readable("/proc/sys/net/bridge/bridge-nf-call-iptables")
    return out


def _tc_ok(args: List[str]) -> bool:
    if not _ok(["tc", "qdisc", "add", "dev", "lo", "root", "handle", "5ac:", *args]):
        return False
    _run(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
    return True


def _ok(argv: List[str]) -> bool:
    return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def _readable(path: str) -> bool:
    try:
        with open(path):
            return True
    except OSError:
        return False


def _nfqueue_binds(traffic: bool) -> bool:
    """Bind a queue (and with ``traffic``, pass one datagram on loopback through it)."""
    import socket

    try:
        queue = nfqueue.Queue()
    except OSError:
        return False
    try:
        queue.bind(65001)
        if not traffic:
            return True
        rule = ["OUTPUT", "-o", "lo", "-p", "udp", "--dport", "9", "-j", "NFQUEUE", "--queue-num", "65001"]
        if not _ok(["iptables", "-I", *rule]):
            return False
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"probe", ("127.0.0.1", 9))
            queue.sock.settimeout(2.0)
            packets = queue.packets()
            for q, packet in packets:
                queue.accept(q, packet)
            return bool(packets)
        finally:
            _run(["iptables", "-D", *rule], check=False)
    except OSError:
        return False
    finally:
        queue.close()


def _ensure_jumps(v6: bool) -> None:
    for tool in ("iptables", "ip6tables") if v6 else ("iptables",):
        for table, chain, target in (
            ("filter", "OUTPUT", EGRESS),
            ("filter", "FORWARD", EGRESS),
            ("raw", "PREROUTING", PARTITION),
        ):
            if not _ok([tool, "-t", table, "-C", chain, "-j", target]):
                _run([tool, "-t", table, "-I", chain, "1", "-j", target])


def _set_qdiscs(
    state: State, before: State, ifaces: Dict[str, Dict[str, Any]], features: Dict[str, bool]
) -> None:
    """Give each interface the qdisc its impairment needs; one that is already socklab's
    and whose settings did not change is left alone (its queued packets with it)."""
    for net, iface in sorted(ifaces.items()):
        settings = state["impair"].get(net)
        commands = tc_commands(iface["name"], settings, features, iface["mtu"])
        current = _run(["tc", "qdisc", "show", "dev", iface["name"], "root"], check=False)
        ours = " %s " % HANDLE in " %s " % current
        if ours and commands and settings == before["impair"].get(net):
            continue
        if ours:
            _run(["tc", "qdisc", "del", "dev", iface["name"], "root"])
        for argv in commands:
            _run(argv)


def _routes(setup: Dict[str, Any], ifaces: Dict[str, Dict[str, Any]]) -> List[str]:
    done = []
    for route in setup.get("routes", []):
        if route.get("network") in ifaces:
            family = "-6" if ":" in route["dest"] else "-4"
            _run(["ip", family, "route", "replace", route["dest"], "via", route["via"]])
            done.append("%s via %s" % (route["dest"], route["via"]))
    if setup.get("drop_default_route"):
        for family in ("-4", "-6"):
            while _ok(["ip", family, "route", "del", "default"]):
                done.append("no default route (%s)" % family[1:].replace("4", "IPv4").replace("6", "IPv6"))
    return done


def apply(request: Dict[str, Any]) -> Dict[str, Any]:
    """Apply a request; the state after it, and what changed."""
    links: Dict[str, str] = request.get("links", {})
    ops: List[Dict[str, Any]] = request.get("ops", [])
    ifaces = interfaces(links)
    before = read()
    state = json.loads(json.dumps(before))
    done = apply_ops(state, ops, list(links))
    features = probe() if _needs_features(state) else {}
    names = {net: i["name"] for net, i in ifaces.items()}
    v6 = _ip6tables()
    text4 = iptables_text(state, names, features, 4)  # raises Refused before any change
    text6 = iptables_text(state, names, features, 6) if v6 else ""
    for net, iface in ifaces.items():
        tc_commands(iface["name"], state["impair"].get(net), features, iface["mtu"])
    try:
        _run(["iptables-restore", "--noflush"], text4)
        if v6:
            _run(["ip6tables-restore", "--noflush"], text6)
        _ensure_jumps(v6)
        _set_qdiscs(state, before, ifaces, features)
        setups = [op for op in ops if op.get("op") == "setup"]
        done["routes"] = [r for op in setups for r in _routes(op["setup"], ifaces)]
    except RuntimeError:
        _undo(before, names, ifaces, features, v6)
        raise
    queues = queues_served(state, list(ifaces), features)
    _wait_bound(queues)
    done["backends"] = {net: backends(s, features) for net, s in state["impair"].items()}
    done["queues"] = queues
    return {"state": state, "before": before, "ifaces": names, "done": done}


def _needs_features(state: State) -> bool:
    return bool(state["impair"])


def _undo(
    before: State,
    names: Dict[str, str],
    ifaces: Dict[str, Dict[str, Any]],
    features: Dict[str, bool],
    v6: bool,
) -> None:
    """Put the state back as it was (best effort) after a failed change."""
    try:
        _run(["iptables-restore", "--noflush"], iptables_text(before, names, features, 4))
        if v6:
            _run(["ip6tables-restore", "--noflush"], iptables_text(before, names, features, 6))
        _set_qdiscs(before, {"impair": {}, "partition": {}}, ifaces, features)
    except (RuntimeError, Refused):
        pass


def queues_served(state: State, nets: List[str], features: Dict[str, bool]) -> List[int]:
    """The NFQUEUE queues ``socklab-netdelay`` must serve for the connected networks."""
    out = []
    for net, settings in sorted(state["impair"].items()):
        if net not in nets:
            continue
        how = backends(settings, features)
        if how.get("loss") == "iptables statistic":
            out.append(settings["lqueue"])
        if how.get("delay") == "nfqueue":
            out.append(settings["queue"])
    return out


def _wait_bound(queues: List[int]) -> None:
    """Wait until ``socklab-netdelay`` serves every queue (it binds them within 0.2 s)."""
    deadline = time.monotonic() + QUEUE_WAIT
    while True:
        missing = sorted(set(queues) - set(nfqueue.bound_queues()))
        if not missing:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                "no delayer serves NFQUEUE queue %s: is the socklab delay "
                "helper of this node running?" % missing[0]
            )
        time.sleep(0.05)


def show(links: Dict[str, str]) -> Dict[str, Any]:
    ifaces = interfaces(links)
    routes = json.loads(_run(["ip", "-j", "route", "show"]) or "[]")
    return {
        "state": read(),
        "ifaces": {net: i["name"] for net, i in ifaces.items()},
        "routes": ["%s via %s" % (r["dst"], r["gateway"]) for r in routes if r.get("gateway")],
        "default_route": any(r.get("dst") == "default" for r in routes),
        "queues_bound": nfqueue.bound_queues(),
        "unserved": sorted(set(_rule_queues()) - set(nfqueue.bound_queues())),
    }


def _rule_queues() -> List[int]:
    """The NFQUEUE queues socklab's rules send packets to."""
    out = []
    for tool in ("iptables-save", "ip6tables-save"):
        for line in _run([tool, "-t", "filter"], check=False).splitlines():
            words = line.split()
            if line.startswith("-A %s " % EGRESS) and "--queue-num" in words:
                out.append(int(words[words.index("--queue-num") + 1]))
    return out


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("show", "apply", "probe"):
        sys.stderr.write("usage: socklab-netctl show LINKS | apply REQUEST | probe [--traffic]\n")
        return 2
    try:
        if args[0] == "probe":
            result: Dict[str, Any] = probe("--traffic" in args[1:])
        elif args[0] == "show":
            result = show(json.loads(args[1]) if len(args) > 1 else {})
        else:
            result = apply(json.loads(args[1]))
    except Refused as exc:
        print(json.dumps({"error": str(exc), "missing": exc.missing}))
        return exc.code
    except (RuntimeError, ValueError, KeyError, IndexError) as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
