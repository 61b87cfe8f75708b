"""Iterative vs concurrent echo servers: wall time for 1, 10 and 50 simultaneous clients.

Each server mode of ``tcp-server`` runs as its own process on host loopback with
``--delay`` seconds of simulated work per reply; N client threads connect at once and
each waits for its echo. An iterative server needs about N x delay, a concurrent one
about one delay whatever N.

    python3 bench/concurrency.py [--clients 1 10 50] [--delay 0.2] [--json]
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


def render(table: dict[str, dict[int, float]], clients: list[int], delay: float) -> str:
    lines = [f"tcp-server --delay {delay}: seconds until every client got its echo (host loopback)"]
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
    args = parser.parse_args()
    table = measure(args.clients, args.delay)
    if args.json:
        print(json.dumps({"delay": args.delay, "seconds": table}))
    else:
        print(render(table, args.clients, args.delay))
    return 0


if __name__ == "__main__":
    sys.exit(main())
