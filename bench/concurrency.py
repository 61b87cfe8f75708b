"""Iterative vs concurrent echo servers: wall time for 1, 10 and 50 simultaneous clients.

Each server mode of ``tcp-server`` runs as its own process on host loopback with
``--delay`` seconds of simulated work per reply; N client threads connect at once and
each waits for its echo. An iterative server needs about N x delay, a concurrent one
about one delay whatever N.

With ``--lab`` the same table is measured across containers: a lab with a server node
(one ``tcp-server`` per mode) and two client nodes, each forking its half of the N
``tcp-client`` apps and releasing them together at one wall-clock instant; the time
is from the first connect to the last echo, from the clients' own events.

    python3 bench/concurrency.py [--clients 1 10 50] [--delay 0.2] [--lab] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"
MODES = ("iterative", "threaded", "forking", "selectors")


def start_server(mode: str, delay: float) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    args = ["--port", "0", "--host", "127.0.0.1", "--mode", mode, "--delay", str(delay)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "socklab.nodes.tcp_server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    listening = json.loads(proc.stdout.readline())
    assert listening["event"] == "listening", listening
    # keep reading its events so the server never blocks on a full pipe
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, int(listening["port"])


def echo(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("server closed before echoing")
            received += chunk
    if received != payload:
        raise ValueError(f"wrong echo {received!r}")


def wall_time(port: int, clients: int) -> float:
    barrier = threading.Barrier(clients + 1)
    failures: list[BaseException] = []

    def client(index: int) -> None:
        barrier.wait()
        try:
            echo(port, f"client {index}".encode())
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    if failures:
        raise RuntimeError(f"{len(failures)} clients failed: {failures[0]!r}")
    return elapsed


def measure(clients: list[int], delay: float) -> dict[str, dict[int, float]]:
    table: dict[str, dict[int, float]] = {}
    for mode in MODES:
        proc, port = start_server(mode, delay)
        try:
            table[mode] = {n: wall_time(port, n) for n in clients}
        finally:
            proc.terminate()
            proc.wait(10)
    return table


# Runs in a client node: fork N tcp-client apps (already imported), release them together
# at START (wall clock, shared by every container of the host), print their events.
CROWD = r"""
import json, os, sys, time
sys.path.insert(0, "/opt/socklab")
from socklab.nodes import tcp_client
host, port, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
kids = []
for _ in range(n):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 1)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        time.sleep(max(0.0, start - time.time()))
        code = tcp_client.main([host, port, "--count", "1", "--timeout", "120"])
        sys.stdout.flush()
        os._exit(code)
    os.close(w)
    kids.append((pid, r))
out = []
for pid, r in kids:
    with os.fdopen(r) as f:
        text = f.read()
    _, status = os.waitpid(pid, 0)
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    out.append({"code": os.waitstatus_to_exitcode(status), "events": events})
print(json.dumps(out))
"""


def measure_lab(clients: list[int], delay: float) -> dict[str, dict[int, float]]:
    """The same table across containers (needs Docker and the node image)."""
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    import yaml

    from socklab import Lab

    ports = {mode: 5001 + i for i, mode in enumerate(MODES)}
    doc = {
        "name": f"bench-conc-{os.getpid()}",
        "networks": {"lan": {}},
        "nodes": {
            "server": {
                "networks": ["lan"],
                "start": [
                    f"tcp-server --port {port} --mode {mode} --delay {delay}" for mode, port in ports.items()
                ],
            },
            "client": {"replicas": 2, "networks": ["lan"]},
        },
    }
    table: dict[str, dict[int, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "concurrency.yml"
        path.write_text(yaml.safe_dump(doc))
        with Lab.load(path) as lab:
            for mode, port in ports.items():
                row = table.setdefault(mode, {})
                for n in clients:
                    start = time.time() + 1.5
                    halves = {"client-1": n - n // 2, "client-2": n // 2}

                    def run(
                        node: str, count: int, port: int = port, start: float = start
                    ) -> list[dict[str, Any]]:
                        if not count:
                            return []
                        done = lab.node(node).exec(
                            ["python3", "-c", CROWD, "server", str(port), str(count), f"{start:.3f}"]
                        )
                        if not done.ok:
                            raise RuntimeError(f"{node}: {done.stderr[-500:]}")
                        result: list[dict[str, Any]] = json.loads(done.stdout)
                        return result

                    with ThreadPoolExecutor(2) as pool:
                        results = [r for part in pool.map(run, halves, halves.values()) for r in part]
                    failed = [r for r in results if r["code"] != 0]
                    if failed:
                        raise RuntimeError(f"{len(failed)} of {n} clients failed ({mode})")
                    stamps = [(e["event"], float(e["ts"])) for r in results for e in r["events"]]
                    first = min(ts for event, ts in stamps if event == "connected")
                    last = max(ts for event, ts in stamps if event == "received")
                    row[n] = last - first
    return table


def render(
    table: dict[str, dict[int, float]],
    clients: list[int],
    delay: float,
    where: str = "host loopback",
) -> str:
    lines = [f"tcp-server --delay {delay}: seconds until every client got its echo ({where})"]
    header = f"{'mode':<10}" + "".join(f"{f'{n} clients':>14}" for n in clients)
    lines += [header, "-" * len(header)]
    for mode, row in table.items():
        lines.append(f"{mode:<10}" + "".join(f"{row[n]:>14.3f}" for n in clients))
    lines.append("")
    lines.append(f"{'speed-up':<10}" + "".join(f"{f'{n} clients':>14}" for n in clients))
    for mode in MODES[1:]:
        ratios = "".join(f"{table['iterative'][n] / table[mode][n]:>13.1f}x" for n in clients)
        lines.append(f"{mode:<10}" + ratios)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--lab", action="store_true", help="across containers: a server node and two client nodes"
    )
    args = parser.parse_args()
    table = (measure_lab if args.lab else measure)(args.clients, args.delay)
    where = "across containers" if args.lab else "host loopback"
    if args.json:
        print(json.dumps({"delay": args.delay, "where": where, "seconds": table}))
    else:
        print(render(table, args.clients, args.delay, where))
    return 0


if __name__ == "__main__":
    sys.exit(main())
