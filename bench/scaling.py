"""Multi-worker scaling (issue 25 item 2): 32 keep-alive clients against `bangui serve --workers 1` and
`--workers 2`, side by side.

    python -m bench.scaling [--duration 2] [--rounds 3] [--connections 32] [--history-rows 100000]

One private fail2ban (the default jails), two bangui servers running at once on data dirs of their own, each
with the same archive of `--history-rows` ban events (bench/history_big.py's generator, 365 days, 20 jails), an
admin (`BANGUI_ADMIN_PASSWORD`), its session cookie and a bouncer key (`bangui bouncer add`). wrk (`-t2 -cC -dDs
--latency`) runs each endpoint against one server at a time, alternating servers and rotating the endpoint
order every round, so the other load of a shared machine hits both alike. The idle server costs nothing
meanwhile (a follower waits in the kernel; the leader's jobs are a few wakeups a second).

Endpoints: `GET /api/v1/health/live` (public), `GET /api/v1/auth/session` (cookie),
`GET /api/v1/history?limit=50`, `GET /api/v1/stats?range=30d` (cookie), the CrowdSec poll
`GET /v1/decisions/stream` (bouncer key; startup=false), and `GET /api/v1/jails` (asks fail2ban).
Targets: reads that do not ask fail2ban, 2 workers >= 1.7x the throughput of 1 and p99 < 50 ms at 32
clients; auth/session >= 0.8x health/live on the same server; /jails: where the limit is, bangui's share
(server CPU per request over the whole pipeline's) < 30 %. Medians over rounds. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx

from bench.auth_throughput import WRK, login_cookie
from bench.common import ADMIN_PASSWORD, ServerProcess, bangui, cli, cpu_seconds, machine, table, verdict, work_dir
from bench.history_big import generate
from f2b.instance import started
from store.history import Archive

ENDPOINTS = {  # name -> (path, credential)
    "health/live": ("/api/v1/health/live", "none"),
    "auth/session": ("/api/v1/auth/session", "cookie"),
    "history?limit=50": ("/api/v1/history?limit=50", "cookie"),
    "stats?range=30d": ("/api/v1/stats?range=30d", "cookie"),
    "decisions poll": ("/v1/decisions/stream?startup=false", "bouncer"),
    "jails": ("/api/v1/jails", "cookie"),
}
NO_FAIL2BAN = ("auth/session", "history?limit=50", "stats?range=30d", "decisions poll")
SCALING_TARGET, P99_TARGET_MS, AUTH_TARGET, SHARE_TARGET = 1.7, 50.0, 0.8, 0.30


def wrk(url: str, headers: dict[str, str], seconds: float, connections: int,
        strict: bool = True) -> tuple[float, float, int]:
    """(requests/s, p99 ms, requests) of one wrk run; raises when a response was not 2xx (unless not `strict`:
    bench/memory.py only wants the load)."""
    args = [WRK, "-t2", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=seconds + 30).stdout
    if strict and re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"wrk {url}: not every response succeeded\n{out}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    if not strict:
        return float(rps.group(1)) if rps else 0.0, 0.0, int(count.group(1)) if count else 0
    if not rps or not count or not p99:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return float(rps.group(1)), float(p99.group(1)) * scale, int(count.group(1))


@contextlib.contextmanager
def server(tmp: Path, name: str, f2b: object, workers: int, rows: int, now: float) -> Iterator[ServerProcess]:
    data = tmp / name
    archive = Archive.in_dir(data, clock=lambda: now)
    generate(archive, rows, now, random.Random(25))
    archive.close()
    with bangui(data, f2b, workers=workers, env={"BANGUI_ADMIN_PASSWORD": ADMIN_PASSWORD},  # type: ignore[arg-type]
                retry_for=300) as running:
        yield running


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--history-rows", type=int, default=100_000)
    args, _ = parser.parse_known_args(argv)
    print(f"# scaling: {machine()}; load average before: {os.getloadavg()[0]:.2f}")
    print(f"# wrk -t2 -c{args.connections} -d{args.duration:g}s --latency, {args.rounds} rounds")
    now = time.time()
    rps: dict[tuple[int, str], list[float]] = {}
    p99: dict[tuple[int, str], list[float]] = {}
    cpu_us: dict[tuple[int, str], list[float]] = {}
    f2b_us: list[float] = []
    with (work_dir("bench-scaling-") as tmp, started(tmp / "f2b") as f2b,
          server(tmp, "one", f2b, 1, args.history_rows, now) as one,
          server(tmp, "two", f2b, 2, args.history_rows, now) as two):
        servers = {1: one, 2: two}
        headers: dict[int, dict[str, dict[str, str]]] = {}
        for workers, running in servers.items():
            cookie = login_cookie(running.url)
            key = cli("bouncer", "add", "bench", data_dir=running.data_dir).strip()
            headers[workers] = {"none": {}, "cookie": {"Cookie": f"bangui_session={cookie}"},
                                "bouncer": {"X-Api-Key": key}}
            for path, credential in ENDPOINTS.values():  # check each once, then warm up
                reply = httpx.get(running.url + path, headers=headers[workers][credential], timeout=30)
                if reply.status_code != 200:
                    raise RuntimeError(f"{workers} workers: GET {path}: {reply.status_code} {reply.text[:300]}")
                wrk(running.url + path, headers[workers][credential], 1, args.connections)
        f2b_pid = int(f2b.pidfile.read_text().strip())
        names = list(ENDPOINTS)
        for n in range(args.rounds):
            order = names[n % len(names):] + names[:n % len(names)]
            for name in order if n % 2 == 0 else order[::-1]:
                path, credential = ENDPOINTS[name]
                for workers in ((1, 2) if n % 2 == 0 else (2, 1)):
                    running = servers[workers]
                    assert running.proc is not None
                    cpu0 = cpu_seconds(running.proc.pid)
                    f2b0 = cpu_seconds(f2b_pid) if f2b_pid else 0.0
                    r, q, count = wrk(running.url + path, headers[workers][credential], args.duration,
                                      args.connections)
                    rps.setdefault((workers, name), []).append(r)
                    p99.setdefault((workers, name), []).append(q)
                    cpu_us.setdefault((workers, name), []).append(
                        (cpu_seconds(running.proc.pid) - cpu0) * 1e6 / max(1, count))
                    if name == "jails" and f2b_pid:
                        f2b_us.append((cpu_seconds(f2b_pid) - f2b0) * 1e6 / max(1, count))
    med = statistics.median
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print(table(["endpoint", "workers", "req/s (median)", "range", "p99 ms (median)", "server CPU us/req"],
                [[name, w, f"{med(rps[(w, name)]):.0f}",
                  f"{min(rps[(w, name)]):.0f}-{max(rps[(w, name)]):.0f}", f"{med(p99[(w, name)]):.1f}",
                  f"{med(cpu_us[(w, name)]):.0f}"] for name in ENDPOINTS for w in (1, 2)]))
    rows = []
    for name in NO_FAIL2BAN:
        ratio = med(rps[(2, name)]) / med(rps[(1, name)])
        rows.append([f"{name}: 2 workers / 1", f"{ratio:.2f}", f">= {SCALING_TARGET}",
                     verdict(ratio, SCALING_TARGET, True)])
        worst = max(med(p99[(w, name)]) for w in (1, 2))
        rows.append([f"{name}: p99 at {args.connections} clients (worse of 1, 2 workers)", f"{worst:.1f} ms",
                     f"< {P99_TARGET_MS:g} ms", verdict(worst, P99_TARGET_MS, False)])
    for w in (1, 2):
        ratio = med(rps[(w, "auth/session")]) / med(rps[(w, "health/live")])
        rows.append([f"auth/session / health/live, {w} worker(s)", f"{ratio:.2f}", f">= {AUTH_TARGET}",
                     verdict(ratio, AUTH_TARGET, True)])
    if f2b_us:
        ours, theirs = med(cpu_us[(2, "jails")]), med(f2b_us)
        share = ours / (ours + theirs)
        rows.append(["jails: bangui's share of CPU per request (bangui / (bangui + fail2ban))", f"{share:.0%}",
                     f"< {SHARE_TARGET:.0%}", verdict(share, SHARE_TARGET, False)])
        rows.append(["jails: fail2ban CPU us/req, bangui CPU us/req (info)", f"{theirs:.0f}, {ours:.0f}", "", ""])
    print()
    print(table(["ratio", "measured", "target", "result"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
