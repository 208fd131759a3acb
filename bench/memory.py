"""Memory of the workers (issue 25 item 5): 3 workers, 100,000 bans, mixed load.

    python -m bench.memory [--bans 100000] [--seconds 120] [--trace]

A private fail2ban with a no-op jail `bulk` holding `--bans` addresses (one `banip` call) and the default jails,
`bangui serve --workers 3` (admin from BANGUI_ADMIN_PASSWORD, a bouncer key), the leader found by the flock it
holds on `<data dir>/leader.lock` (/proc/locks). RSS (and USS/PSS from /proc/<pid>/smaps_rollup) of each worker:
idle at start, once the leader has synced and published the bans, and after `--seconds` of mixed load (wrk, 8
keep-alive clients, 5 s per endpoint in turn: session, history page, stats 24h/30d/365d, jails, the bulk jail, its
bans, an IP lookup, the decisions stream at startup and polls, audit). `--trace` starts the workers with
tracemalloc (PYTHONTRACEMALLOC=1; slower, more memory: only to see what holds memory) and writes each worker's top
allocations (bench/tracehook/sitecustomize.py, on SIGUSR2). Targets: leader <= 120 MB, other workers <= 60 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx

from bench.auth_throughput import login_cookie
from bench.common import (
    ADMIN_PASSWORD,
    REPO,
    JailSpec,
    PrivateServer,
    ServerProcess,
    cli,
    machine,
    table,
    verdict,
    work_dir,
)
from bench.scaling import wrk
from f2b.client import sync_call
from f2b.instance import DEFAULT_JAILS, started

JAILS = (JailSpec("bulk", action="noop", bantime=86400), *DEFAULT_JAILS)
LEADER_MB, WORKER_MB = 120.0, 60.0


def addresses(count: int) -> list[str]:
    return [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(1, count + 1)]


def memory_mb(pid: int) -> tuple[float, float, float]:
    """(RSS, PSS, USS) in MB: USS = private pages (what killing it frees), PSS shares common pages out."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return fields["Rss"] / 1024, fields["Pss"] / 1024, uss / 1024


def leader_pid(data_dir: Path, workers: list[int]) -> int | None:
    inode = os.stat(data_dir / "leader.lock").st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if "FLOCK" in parts and parts[-3].endswith(f":{inode}") and int(parts[4]) in workers:
            return int(parts[4])
    return None


def snapshot(label: str, pids: list[int], leader: int | None) -> list[list[str]]:
    rows = []
    for pid in pids:
        rss, pss, uss = memory_mb(pid)
        role = "leader" if pid == leader else "worker"
        rows.append([label, f"{role} {pid}", f"{rss:.0f}", f"{pss:.0f}", f"{uss:.0f}"])
    return rows


@contextlib.contextmanager
def started_server(data: Path, f2b: PrivateServer, env: dict[str, str]) -> Iterator[ServerProcess]:
    """`bangui serve --workers 3`, given 5 minutes to answer (tracemalloc and a loaded machine slow the start)."""
    server = ServerProcess(data, f2b, 3, data.parent, env=env)
    try:
        server.start(timeout=300)
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--bans", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--trace", action="store_true")
    args, _ = parser.parse_known_args(argv)
    print(f"# memory: {machine()}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    with work_dir("bench-memory-") as tmp, started(tmp / "f2b", JAILS) as f2b:
        code, result = sync_call(str(f2b.socket), "set", "bulk", "banip", *addresses(args.bans), timeout=600.0)
        if code != 0:
            raise RuntimeError(f"fail2ban banip: {result!r}")
        data = tmp / "data"
        env = {"BANGUI_ADMIN_PASSWORD": ADMIN_PASSWORD}
        traces = tmp / "traces"
        if args.trace:
            traces.mkdir()
            env |= {"PYTHONTRACEMALLOC": "1", "BENCH_TRACEMALLOC_DIR": str(traces),
                    "PYTHONPATH": f"{REPO / 'bench' / 'tracehook'}:{os.environ.get('PYTHONPATH', '')}"}
        with started_server(data, f2b, env) as server:
            pids = server.worker_pids()
            rows = snapshot("started", pids, leader_pid(data, pids))
            key = cli("bouncer", "add", "bench", data_dir=data).strip()
            cookie = login_cookie(server.url)
            client = httpx.Client(base_url=server.url, headers={"X-Api-Key": key}, timeout=120)
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:  # until the leader has published every ban
                reply = client.get("/v1/decisions/stream?startup=true")
                if reply.status_code == 200 and len(reply.json()["new"] or []) >= args.bans:
                    break
                time.sleep(2)
            leader = leader_pid(data, pids)
            rows += snapshot("100,000 bans published", pids, leader)
            web = {"Cookie": f"bangui_session={cookie}"}
            mix = [("/api/v1/auth/session", web), ("/api/v1/history?limit=100", web), ("/api/v1/stats?range=24h", web),
                   ("/api/v1/stats?range=30d", web), ("/api/v1/stats?range=365d", web), ("/api/v1/jails", web),
                   ("/api/v1/jails/bulk", web), ("/api/v1/bans?jail=bulk", web), ("/api/v1/ips/10.0.1.1", web),
                   ("/v1/decisions/stream?startup=true", {"X-Api-Key": key}),
                   ("/v1/decisions/stream?startup=false", {"X-Api-Key": key}), ("/api/v1/audit", web)]
            end, n = time.monotonic() + args.seconds, 0
            while time.monotonic() < end:
                path, headers = mix[n % len(mix)]
                wrk(server.url + path, headers, 5, 8, strict=False)  # big-jail reads may time out
                n += 1
            leader = leader_pid(data, pids)
            rows += snapshot(f"after {args.seconds:g} s mixed load", pids, leader)
            if args.trace:
                for pid in pids:
                    os.kill(pid, signal.SIGUSR2)
                time.sleep(10)
                for pid in pids:
                    dump = traces / f"{pid}.txt"
                    role = "leader" if pid == leader else "worker"
                    print(f"\n## tracemalloc, {role} {pid}\n{dump.read_text() if dump.exists() else '(no dump)'}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print(table(["when", "process", "RSS MB", "PSS MB", "USS MB"], rows))
    final = [r for r in rows if r[0].startswith("after")]
    verdicts = []
    for r in final:
        target = LEADER_MB if r[1].startswith("leader") else WORKER_MB
        verdicts.append([r[1], r[2], f"<= {target:g}", verdict(float(r[2]), target, False)])
    print(table(["process (after load)", "RSS MB", "target", "result"], verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
