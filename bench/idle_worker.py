"""CPU of the idle worker processes of a real `bangui serve --workers 2` (issue 20 item 6), and the idle leader
with 100,000 recent bans in fail2ban's database (issue 20 item 4).

    python -m bench.idle_worker [--seconds 60] [--bans 100000]

Starts a private fail2ban (no-op action, its own database), bans --bans addresses in one call, starts
`bangui serve --workers 2` on a fresh data dir, waits until the history sync has copied every ban (the leader's
first runs), then measures each worker's CPU over --seconds from /proc/<pid>/stat (utime+stime, all threads)
and its voluntary context switches (wakeups). Targets: an idle follower under 10 ms per 60 s; the leader under
1 % of a core with those bans and no new ones. First, the history sync's own costs at the store level.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

from f2b.instance import started
from tests.fixtures.processes import ServerProcess

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """CPU time of every thread, from the scheduler's nanosecond count (/proc/<pid>/task/*/schedstat): utime+stime
    of /proc/<pid>/stat count whole clock ticks (10 ms), as coarse as the follower's target itself."""
    try:
        return sum(int((task / "schedstat").read_text().split()[0])
                   for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9
    except (FileNotFoundError, IndexError, ValueError):  # a kernel without schedstats
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK


def _wakeups(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                total += int(line.split()[1])
    return total


def _leader_pid(data_dir: Path) -> int:
    from store.base import open_cache

    cache = open_cache(data_dir / "state")
    try:
        return int(cache.get("leader:current")["pid"])
    finally:
        cache.close()


def sync_costs(bans: int, tmp: Path) -> None:
    """The history sync alone (store level, no server): the first run over `bans` current bans, a run on the
    unchanged database, and a run after one new ban (wall and CPU time of this process)."""
    from store.fail2ban_copy import sync_once
    from store.history import Archive
    from tests.fixtures.f2b_db import F2B_SCHEMA

    db = tmp / "f2b-sync.sqlite3"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(F2B_SCHEMA)
    now = int(time.time())
    rows = [("sshd", f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", now - 600 + n % 600, 86400, 1, None)
            for n in range(bans)]
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO bans VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO bips (jail, ip, timeofban, bantime, bancount, data) VALUES (?, ?, ?, ?, ?, ?)",
                     rows)
    conn.execute("INSERT INTO jails VALUES ('sshd', 1)")
    conn.execute("COMMIT")
    archive = Archive.in_dir(tmp / "sync-data")
    print(f"history sync with {bans} current bans (store level):")
    print("| run | rows read | wall s | CPU s |")
    print("|---|---|---|---|")
    for label in ("first (backfill)", "unchanged database", "after one new ban"):
        if label == "after one new ban":
            conn.execute("BEGIN")
            conn.execute("INSERT INTO bans VALUES ('sshd', '192.0.2.1', ?, 600, 1, NULL)", (now,))
            conn.execute("INSERT INTO bips VALUES ('192.0.2.1', 'sshd', ?, 600, 1, NULL)", (now,))
            conn.execute("COMMIT")
        cpu, wall = time.process_time(), time.perf_counter()
        result = sync_once(archive, str(db))
        print(f"| {label} | {result.rows_read} | {time.perf_counter() - wall:.3f} | "
              f"{time.process_time() - cpu:.3f} |")
    archive.close()
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--bans", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sync_costs(args.bans, Path(tmp))
    with tempfile.TemporaryDirectory() as tmp, started(Path(tmp) / "f2b") as fail2ban:
        import asyncio

        from f2b.client import Fail2Ban

        async def ban() -> None:
            client = Fail2Ban(fail2ban.socket, timeout=300.0)
            try:
                ips = [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in range(args.bans)]
                await client.call("set", "sshd", "banip", *ips)
            finally:
                await client.aclose()

        asyncio.run(ban())
        data = Path(tmp) / "data"
        server = ServerProcess(data, fail2ban, workers=2, log_dir=Path(tmp),
                               env={"BANGUI_ADMIN_PASSWORD": "bench-password-1234"})
        server.start()
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:  # the leader's first sync runs copy the bans
                try:
                    with sqlite3.connect(data / "history.sqlite3") as conn:
                        if conn.execute("SELECT count(*) FROM events").fetchone()[0] >= args.bans:
                            break
                except sqlite3.Error:
                    pass
                time.sleep(1)
            time.sleep(15)  # past the runs that finish the copy
            assert httpx.get(server.url + "/api/v1/health/live").status_code == 200
            leader = _leader_pid(data)
            pids = server.worker_pids()
            before = {pid: (_cpu_s(pid), _wakeups(pid)) for pid in pids}
            time.sleep(args.seconds)
            print(f"{len(pids)} workers, {args.bans} bans in fail2ban, idle {args.seconds:g} s "
                  f"(load average {os.getloadavg()[0]:.2f}; target: a follower under 10 ms):")
            print("| worker | CPU ms | of one core | wakeups/s |")
            print("|---|---|---|---|")
            for pid in pids:
                cpu = _cpu_s(pid) - before[pid][0]
                woke = _wakeups(pid) - before[pid][1]
                role = "leader" if pid == leader else "follower"
                print(f"| {role} | {cpu * 1000:.1f} | {cpu / args.seconds * 100:.3f} % | "
                      f"{woke / args.seconds:.1f} |")
        finally:
            server.stop()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
