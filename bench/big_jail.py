"""Jails with 100,000 bans (issue 25 item 3): ban pages, jail detail, jail list and address lookup from the view of
current bans, against what the same answers cost when they asked fail2ban for the whole list.

    python -m bench.big_jail [--entries 100000] [--requests 200] [--before 5]

A private fail2ban with one no-op jail `web` holding `--entries` bans, loaded with fail2ban's own `banip` (one raw
call), and `bangui serve --workers 2` (the leader's `decisions` job keeps the view, BANGUI_DECISIONS_SECONDS=1).
Over one keep-alive connection with a viewer token, `--requests` times each (p50, p95, answer size):
  - `GET /api/v1/bans?jail=web&limit=100`, walking the pages with `next_cursor` (restarting at the end);
  - the same filtered by `prefix=10.64.1` and by `network=10.64.128.0/20`;
  - the same sorted by `sort=expires_at` (its first page), and `sort=banned_at&order=desc` walking its pages;
  - `GET /api/v1/jails/web` (its bans paged, 100), `GET /api/v1/jails`, `GET /api/v1/ips/10.64.1.1`;
and the RSS of each worker before and after all of them. "before": what the same answer cost the code before the
view, measured as the fail2ban calls it made per request alone (a lower bound of its answer; the whole answer was
measured in issue 25 at 2.0 s and 10.5-11.8 MB for the lists, 171 ms for the jail list, 1.8 s for an address):
`get web banip --with-time` for a ban list or an address, with `status web` for a jail, `status web` for the list.
Targets (issue 25): bans page p50 <= 20 ms and <= 100 KB; jail p50 <= 50 ms and <= 200 KB; jails p50 <= 20 ms;
address p50 <= 10 ms; each worker's RSS growth <= 30 MB. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx

from bench.common import JailSpec, bangui, create_token, machine, percentile, table, verdict, work_dir
from f2b.blocking import sync_call
from f2b.instance import started

JAILS = (JailSpec("web", action="noop", bantime=86400),)
PAGE = "/api/v1/bans?jail=web&limit=100"


def addresses(count: int) -> list[str]:
    """10.64.0.1 onwards (10.64.1.1 is among them)."""
    return [f"10.{64 + (i >> 16)}.{i >> 8 & 255}.{i & 255}" for i in range(1, count + 1)]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed(requests: int, one: Callable[[], int]) -> tuple[list[float], int]:
    """Seconds of each call of `one` (which returns the answer's size), and the largest size."""
    times, size = [], 0
    for _ in range(requests):
        start = time.perf_counter()
        size = max(size, one())
        times.append(time.perf_counter() - start)
    return times, size


def before(socket: str, repeats: int, *commands: tuple[str, ...]) -> float:
    """Median seconds of the fail2ban calls the code before the view made for one answer."""
    def run() -> int:
        for command in commands:
            code, result = sync_call(socket, *command, timeout=120.0)
            if code != 0:
                raise RuntimeError(f"fail2ban {command}: {result!r}")
        return 0
    return percentile(timed(repeats, run)[0], 50)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.big_jail", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--before", type=int, default=5, help="repeats of each 'before' measurement")
    args = parser.parse_args(argv)
    print(f"# big_jail: {machine()}; load average before: {os.getloadavg()[0]:.2f}")
    with work_dir("bench-big-jail-") as tmp, started(tmp / "f2b", JAILS) as f2b:
        socket = str(f2b.socket)
        code, result = sync_call(socket, "set", "web", "banip", *addresses(args.entries), timeout=900.0)
        if code != 0:
            raise RuntimeError(f"fail2ban banip: {result!r}")
        data = tmp / "data"
        with bangui(data, f2b, workers=2, env={"BANGUI_DECISIONS_SECONDS": "1"}) as server:
            token = create_token(data, "viewer")
            client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
            deadline = time.monotonic() + 300
            while client.get(PAGE).json().get("total", 0) < args.entries:  # until the view holds every ban
                if time.monotonic() > deadline:
                    raise RuntimeError("the view did not reach every ban in 300 s")
                time.sleep(1)
            workers = server.worker_pids()
            for _ in range(20):  # warm each worker (keep-alive connections land on one; new ones spread)
                httpx.get(server.url + "/api/v1/jails", headers={"Authorization": f"Bearer {token}"})
            rss_before = {pid: rss_mb(pid) for pid in workers}
            def pages(url: str) -> Callable[[], int]:
                """Each call the next page of `url` (the first again after the last)."""
                cursor: list[str | None] = [None]

                def page() -> int:
                    reply = client.get(url + (f"&cursor={cursor[0]}" if cursor[0] else ""))
                    cursor[0] = reply.json()["next_cursor"]
                    return len(reply.content)
                return page

            def get(url: str) -> Callable[[], int]:
                return lambda: len(client.get(url).content)

            n = args.requests
            results = {
                "page": timed(n, pages(PAGE)),
                "sorted": timed(n, get(PAGE + "&sort=expires_at")),
                "sorted_pages": timed(n, pages(PAGE + "&sort=banned_at&order=desc")),
                "prefix": timed(n, get(PAGE + "&prefix=10.64.1")),
                "network": timed(n, get(PAGE + "&network=10.64.128.0/20")),
                "jail": timed(n, get("/api/v1/jails/web")),
                "jails": timed(n, get("/api/v1/jails")),
                "ip": timed(n, get("/api/v1/ips/10.64.1.1")),
            }
            age = client.get(PAGE).json()["age_s"]
            rss_after = {pid: rss_mb(pid) for pid in workers}
            client.close()
            view = sqlite3.connect(data / "bans.sqlite3")
            full_age = time.time() - float(view.execute("SELECT value FROM meta WHERE name = 'full_at'").fetchone()[0])
            view.close()
        with_time = ("get", "web", "banip", "--with-time")
        old = {"page": before(socket, args.before, with_time),
               "jail": before(socket, args.before, ("status", "web"), with_time),
               "jails": before(socket, args.before, ("status",), ("status", "web")),
               "ip": before(socket, args.before, ("banned", "10.64.1.1"), with_time)}
    rows = []
    targets = {"page": ("GET /bans?jail=web&limit=100 (cursor pages)", 20, 100),
               "sorted": ("GET /bans?jail=web&limit=100&sort=expires_at (first page)", 20, 100),
               "sorted_pages": ("GET /bans?jail=web&limit=100&sort=banned_at&order=desc (cursor pages)", 20, 100),
               "prefix": ("GET /bans?jail=web&limit=100&prefix=10.64.1", 20, 100),
               "network": ("GET /bans?jail=web&limit=100&network=10.64.128.0/20", 20, 100),
               "jail": ("GET /jails/web (bans paged, 100)", 50, 200),
               "jails": ("GET /jails", 20, None),
               "ip": ("GET /ips/10.64.1.1", 10, None)}
    for name, (label, target_ms, target_kb) in targets.items():
        times, size = results[name]
        p50 = percentile(times, 50) * 1000
        was = f"{old[name] * 1000:.0f} ms" if name in old else ""
        rows.append([f"{label} p50 (p95 {percentile(times, 95) * 1000:.1f} ms)", was, f"{p50:.2f} ms",
                     f"<= {target_ms} ms", verdict(p50, target_ms, False)])
        if target_kb is not None:
            rows.append(["  answer size", "", f"{size / 1000:.1f} KB", f"<= {target_kb} KB",
                         verdict(size / 1000, target_kb, False)])
    for pid in workers:
        growth = rss_after[pid] - rss_before[pid]
        rows.append([f"worker {pid} RSS growth ({rss_before[pid]:.0f} -> {rss_after[pid]:.0f} MB)", "",
                     f"{growth:.1f} MB", "<= 30 MB", verdict(growth, 30, False)])
    rows.append(["view age at the end (age_s) / since the last full read of fail2ban's lists", "",
                 f"{age:.2f} s / {full_age:.1f} s", "<= 1 interval", ""])
    print(f"# {args.entries:,} bans in one jail, 2 workers, {n} requests each; 'before' = fail2ban's part alone "
          f"of the answer before the view (median of {args.before})")
    print(table(["measure", "before", "after", "target", "result"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
