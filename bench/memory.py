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
from f2b.blocking import sync_call
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


ARENA_ALIGN = 64 << 20  # glibc's thread heaps (HEAP_MAX_SIZE) are mapped 64 MiB-aligned
STACK_KIB = 8192  # a thread's stack (ulimit -s), its guard page a mapping of its own


def _category(start: int, size_kib: int, perms: str, path: str) -> str:
    if path == "[heap]":
        return "[heap]: main malloc arena"
    if path.startswith("["):
        return path
    if path:
        name = path.rsplit("/", 1)[-1]
        if ".so" in name or "python3" in name:
            return "code: python and .so libraries"
        if "sqlite3" in name or name.startswith("cache.db"):
            return f"file map: {name}"
        return f"file map: other ({name})" if size_kib > 1024 else "file map: small files"
    if start % ARENA_ALIGN == 0 and size_kib <= ARENA_ALIGN >> 10:
        return "anon: thread malloc arenas (64 MiB-aligned heaps)"
    if size_kib == STACK_KIB:
        return "anon: thread stacks"
    return "anon: other (Python's arenas, large malloc blocks)"


def mappings_kib(pid: int) -> dict[str, int]:
    """RSS in KiB per kind of mapping (/proc/<pid>/smaps): what holds a process's memory from the outside."""
    out: dict[str, int] = {}
    key = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split(None, 5)
        if "-" in parts[0] and not parts[0].endswith(":"):
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            key = _category(lo, (hi - lo) >> 10, parts[1], parts[5].strip() if len(parts) > 5 else "")
        elif parts[0] == "Rss:":
            out[key] = out.get(key, 0) + int(parts[1])
    return out


def breakdown(pids: list[int], leader: int | None) -> str:
    per = {pid: mappings_kib(pid) for pid in pids}
    kinds = sorted({k for m in per.values() for k in m}, key=lambda k: -max(m.get(k, 0) for m in per.values()))
    head = ["mapping (RSS MB)"] + [f"{'leader' if pid == leader else 'worker'} {pid}" for pid in pids]
    rows = [[k] + [f"{per[pid].get(k, 0) / 1024:.1f}" for pid in pids] for k in kinds
            if max(m.get(k, 0) for m in per.values()) >= 512]
    return table(head, rows)


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
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the server (e.g. PYTHONMALLOC=malloc), repeatable")
    parser.add_argument("--trim-at-end", action="store_true",
                        help="after the load, call glibc's malloc_trim(0) in each worker (bench hook) and measure again")
    args, _ = parser.parse_known_args(argv)
    print(f"# memory: {machine()}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    with work_dir("bench-memory-") as tmp, started(tmp / "f2b", JAILS) as f2b:
        code, result = sync_call(str(f2b.socket), "set", "bulk", "banip", *addresses(args.bans), timeout=600.0)
        if code != 0:
            raise RuntimeError(f"fail2ban banip: {result!r}")
        data = tmp / "data"
        env = {"BANGUI_ADMIN_PASSWORD": ADMIN_PASSWORD}
        traces = tmp / "traces"
        traces.mkdir()
        # Every run: SQLite's and malloc's own totals from inside each worker (bench/tracehook) on SIGUSR2.
        env |= {"BENCH_TRACEMALLOC_DIR": str(traces),
                "PYTHONPATH": f"{REPO / 'bench' / 'tracehook'}:{os.environ.get('PYTHONPATH', '')}"}
        if args.trace:
            env["PYTHONTRACEMALLOC"] = "1"
        if args.trim_at_end:
            env["BENCH_TRIM_AT_DUMP"] = "1"
        env |= dict(item.split("=", 1) for item in args.env)
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
            print("\n## where the RSS is after the load (/proc/<pid>/smaps)\n" + breakdown(pids, leader))
            for pid in pids:
                os.kill(pid, signal.SIGUSR2)
            time.sleep(10)
            for pid in pids:
                dump = traces / f"{pid}.txt"
                role = "leader" if pid == leader else "worker"
                print(f"\n## inside {role} {pid}\n{dump.read_text() if dump.exists() else '(no dump)'}")
            if args.trim_at_end:
                rows += snapshot("then malloc_trim(0) from the bench hook", pids, leader)
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
