"""Benchmark of the ban archive (issue 5): sync throughput and query latency on a 1,000,000-ban archive.

Run from the repository root: `python -m bench.history [--rows N] [--dir DIR] [--keep]`.
Builds a fail2ban v4 database of N ban rows (400 days, 10 jails, 200,000 addresses, ~10% IPv6), syncs it into
a fresh archive (that is the sync measurement and also how the archive gets built), adds manual bans/unbans
through the API's write path, then times the queries. Prints measured vs target; exit status 1 if a target
is missed. Takes ~1-2 minutes and ~1 GB of disk for the default size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/history.py` from the root

from geo import CountryLookup  # noqa: E402
from store import history_stats  # noqa: E402
from store.fail2ban_copy import sync_once  # noqa: E402
from store.history import Archive  # noqa: E402
from tests.fixtures.f2b_db import F2B_INDEXES, F2B_TABLES  # noqa: E402

DAYS = 400
JAILS = [f"jail{i}" for i in range(10)]
IPS = 200_000
SEED = 5

TARGETS = {  # name -> (target, unit, higher_is_better)
    "history page (jail + 7 days) p50": (20.0, "ms", False),
    "history page (jail + 7 days) p95": (None, "ms", False),
    "ip timeline p50": (10.0, "ms", False),
    "stats range=365d p50": (200.0, "ms", False),
    "sync from fail2ban DB": (50_000.0, "rows/s", True),
}


def addresses(rng: random.Random, count: int) -> list[str]:
    out = []
    for i in range(count):
        if i % 10 == 9:
            out.append(f"2a0{rng.randint(0, 9)}:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}")
        else:
            out.append(f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}")
    return out


def build_fail2ban_db(path: Path, rows: int, now: float, ips: list[str], rng: random.Random) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(F2B_TABLES)
    conn.executemany("INSERT INTO jails(name) VALUES (?)", [(j,) for j in JAILS])
    times = sorted(int(now - rng.random() * DAYS * 86400) for _ in range(rows))

    def data(ip: str, t: int) -> str:
        stamp = time.strftime("%b %d %H:%M:%S", time.gmtime(t))
        lines = [f"{stamp} host sshd[{1000 + k}]: Failed password for root from {ip} port {40000 + k} ssh2"
                 for k in range(3)]
        return json.dumps({"matches": lines, "failures": 3})

    batch = []
    for t in times:
        ip = ips[rng.randrange(len(ips))]
        batch.append((rng.choice(JAILS), ip, t, 600 if rng.random() < 0.9 else 86400, 1, data(ip, t)))
    conn.executemany("INSERT INTO bans VALUES (?, ?, ?, ?, ?, ?)", batch)
    # Current bans: the last day's rows, as fail2ban keeps them in bips.
    conn.execute("INSERT OR REPLACE INTO bips(ip, jail, timeofban, bantime, bancount, data) "
                 "SELECT ip, jail, timeofban, bantime, bancount, data FROM bans WHERE timeofban >= ? "
                 "ORDER BY timeofban", (int(now) - 86400,))
    conn.executescript(F2B_INDEXES)
    conn.commit()
    conn.close()


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", default="", help="work directory (default: a temp dir, removed at the end)")
    parser.add_argument("--keep", action="store_true", help="keep the generated databases")
    args = parser.parse_args()
    rng = random.Random(SEED)
    work = Path(args.dir or tempfile.mkdtemp(prefix="bangui-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    now = time.time()
    measured: dict[str, float] = {}
    info: dict[str, float] = {}
    try:
        ips = addresses(rng, IPS)
        t0 = time.perf_counter()
        f2b = work / "fail2ban.sqlite3"
        f2b.unlink(missing_ok=True)
        build_fail2ban_db(f2b, args.rows, now, ips, rng)
        print(f"generated fail2ban DB: {args.rows:,} bans in {time.perf_counter() - t0:.1f} s", flush=True)

        for name in ("history.sqlite3", "history.sqlite3-wal", "history.sqlite3-shm"):
            (work / name).unlink(missing_ok=True)
        archive = Archive.in_dir(work, clock=lambda: now, geo=CountryLookup())
        result = sync_once(archive, str(f2b))
        measured["sync from fail2ban DB"] = result.rows_read / result.seconds
        print(f"synced: {result}", flush=True)
        again = sync_once(archive, str(f2b))
        info["re-sync, nothing new (ms)"] = again.seconds * 1000

        # Our own writes: manual bans and unbans through the API's path.
        t0 = time.perf_counter()
        for i in range(200):
            jail = JAILS[i % len(JAILS)]
            at = now - rng.random() * DAYS * 86400
            archive.record_ban(jail, rng.sample(ips, 20), actor="bench", at=at, bantime=3600)
            for ip in rng.sample(ips, 5):
                archive.record_unban(jail, ip, actor="bench", at=at + 60)
        info["record_ban (20 ips) + 5 unbans, per call (ms)"] = (time.perf_counter() - t0) * 1000 / 200

        conn = archive._conn()
        conn.execute("ANALYZE")  # what `PRAGMA optimize` (run by the retention job) leaves behind
        week = now - 7 * 86400
        page = timed(lambda: archive.history(jail=rng.choice(JAILS), since=week, limit=100), 300)
        measured["history page (jail + 7 days) p50"] = p(page, 50)
        measured["history page (jail + 7 days) p95"] = p(page, 95)
        info["history page, unfiltered, p50 (ms)"] = p(timed(lambda: archive.history(limit=100), 100), 50)
        deep = archive.history(jail="jail3", limit=100)[1]
        info["history page 2 via cursor, p50 (ms)"] = p(
            timed(lambda: archive.history(jail="jail3", limit=100, cursor=deep), 100), 50)
        info["history page, /16 CIDR, p50 (ms)"] = p(timed(
            lambda: archive.history(ip=ips[rng.randrange(IPS - 1) // 10 * 10].rsplit(".", 2)[0] + ".0.0/16",
                                    limit=100), 50), 50)
        info["history page, country=NZ, p50 (ms)"] = p(timed(lambda: archive.history(country="NZ", limit=100), 50),
                                                      50)
        measured["ip timeline p50"] = p(timed(lambda: archive.ip_timeline(rng.choice(ips)), 300), 50)
        measured["stats range=365d p50"] = p(timed(lambda: archive.stats("365d", now=now), 11), 50)
        for rng_name in ("24h", "7d", "30d"):
            info[f"stats range={rng_name} p50 (ms)"] = p(timed(lambda r=rng_name: archive.stats(r, now=now), 11), 50)
        info["stats range=365d jail=jail3 p50 (ms)"] = p(timed(lambda: archive.stats("365d", "jail3", now=now), 5), 50)
        info["stats range=365d origin=auto p50 (ms)"] = p(
            timed(lambda: archive.stats("365d", origin="auto", now=now), 5), 50)
        info["stats range=365d origin=manual p50 (ms)"] = p(
            timed(lambda: archive.stats("365d", origin="manual", now=now), 5), 50)
        # What the year's top IPs cost when agg_ip's bound cannot decide (retention of several years): the scan.
        bounded, history_stats.BOUNDED_CANDIDATES = history_stats.BOUNDED_CANDIDATES, ()
        try:
            info["stats range=365d, top IPs by scan (no agg_ip bound), p50 (ms)"] = p(
                timed(lambda: archive.stats("365d", now=now), 5), 50)
        finally:
            history_stats.BOUNDED_CANDIDATES = bounded
        info["repeat offenders, 3 bans in 30 days, p50 (ms)"] = p(timed(lambda: archive.repeat_offenders(3, 30), 5), 50)
        info["repeat offenders, 3 bans in 30 days, jail3, p50 (ms)"] = p(
            timed(lambda: archive.repeat_offenders(3, 30, "jail3"), 5), 50)
        t0 = time.perf_counter()
        lines = sum(1 for _ in archive.csv_lines(jail="jail3", since=now - 30 * 86400))
        info[f"CSV export, jail + 30 days ({lines:,} lines), rows/s"] = lines / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        purged = archive.purge(365)
        info[f"purge > 365 days ({purged:,} events), s"] = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in work.glob("history.sqlite3*"))
        info["archive size (MB)"] = size / 1e6
        info["archive page size (bytes)"] = conn.execute("PRAGMA page_size").fetchone()[0]
        archive.close()
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(work, ignore_errors=True)

    ok = True
    print(f"\nmachine: {os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"load average {os.getloadavg()[0]:.1f} (other processes share the CPUs: figures vary with it)")
    print(f"\n{'measure':42} {'measured':>12} {'target':>12}  unit     ok")
    for name, (target, unit, higher) in TARGETS.items():
        value = measured[name]
        good = target is None or (value >= target if higher else value <= target)
        ok &= good
        shown = "-" if target is None else f"{'>=' if higher else '<='} {target:,.0f}"
        print(f"{name:42} {value:12,.1f} {shown:>12}  {unit:8} {'yes' if good else 'NO'}")
    print()
    for name, value in info.items():
        print(f"{name:54} {value:12,.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
