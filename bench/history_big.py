"""Ten million history rows (issue 25 item 4): the archive's pages, IP lookups, stats, CSV export and retention
at 10,000,000 bans over 365 days and 20 jails.

    python -m bench.history_big [--rows 10000000] [--dir DIR] [--keep] [--reuse]

The archive is generated directly in SQLite (a recursive CTE, 1,000,000 rows per transaction) into a file that
`store.history.Archive` created, so the schema, indexes and pragmas are the store's own; the aggregates are then
filled by the store's own `history_schema.aggregate` and `ANALYZE` runs, as `PRAGMA optimize` would leave it.
Rows arrive in time order, as the sync writes them: ~95 % automatic bans (three matched log lines each, like
fail2ban's `data`), 3 % manual bans, 2 % manual unbans; 1,000,000 addresses (10 % IPv6), skewed so that a few are
banned often. `--reuse` keeps an archive generated before in DIR (the generation takes minutes).

Then, through the store's functions (what the handlers call; HTTP adds the same few hundred microseconds to each):
- a history page (limit 50, no filter; a jail; a /16 network), first and deep cursors (~300 days back);
- the IP timeline (`GET /api/v1/history/ip/{ip}` and the archive part of `GET /api/v1/ips/{ip}`);
- stats over 365 days (unfiltered, one jail, origin auto);
- CSV export of 1,000,000 rows: rows/s and the Python heap peak (tracemalloc) and RSS growth while streaming;
- retention: `Archive.purge` of the oldest ~1,000,000 rows while a writer thread records a ban every 20 ms: the
  writer's longest wait is how long the purge blocked it;
- the disk size per million bans.
Prints measured vs target; a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from bench.common import machine, table, verdict
from store import history_stats
from store.history import Archive
from store.history_query import encode_cursor
from store.history_schema import address_with_key, aggregate

DAY = 86400
JAILS = [f"jail{i:02d}" for i in range(20)]
ADDRESSES = 1_000_000
CHUNK = 1_000_000
COUNTRIES = ["CN", "US", "RU", "BR", "IN", "DE", "VN", "FR", "NL", "KR", "ID", "GB", "TW", "UA", "IR", "SG", "JP",
             "TH", "AR", "NZ"]
TARGETS = {  # name -> (target, higher is better)
    "page p50, first (ms)": (5.0, False),
    "page p50, deep cursor (ms)": (5.0, False),
    "ip timeline p50 (ms)": (5.0, False),
    "stats 365d p50 (ms)": (100.0, False),
    "CSV export (rows/s)": (200_000.0, True),
    "purge: longest writer wait (ms)": (100.0, False),
}


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p50(values: list[float]) -> float:
    return statistics.median(values)


def address_list(rng: random.Random) -> list[tuple[int, str, bytes, str]]:
    out = []
    for n in range(ADDRESSES):
        if n % 10 == 9:
            text = f"2a0{rng.randint(0, 9)}:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}"
        else:
            text = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        ip, key, _ = address_with_key(text)
        out.append((n, ip, key, COUNTRIES[min(int(rng.expovariate(0.25)), len(COUNTRIES) - 1)]))
    return out


def generate(archive: Archive, rows: int, now: float, rng: random.Random) -> None:
    conn = archive._conn()
    conn.execute("PRAGMA cache_size = -262144")  # what the sync's import session uses
    conn.execute("CREATE TEMP TABLE addr (n INTEGER PRIMARY KEY, ip TEXT, ipkey BLOB, country TEXT)")
    conn.executemany("INSERT INTO addr VALUES (?, ?, ?, ?)", address_list(rng))
    conn.execute("CREATE TEMP TABLE jails (n INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO jails VALUES (?, ?)", list(enumerate(JAILS)))
    start, step = now - 365 * DAY, 365 * DAY / rows
    line = "Failed password for root from ' || a.ip || ' port 4022 ssh2"
    for lo in range(0, rows, CHUNK):
        hi = min(rows, lo + CHUNK)
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        first = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM events").fetchone()[0]
        # Address n = r1*r2/N over r1, r2 uniform in [0, N): a few addresses are banned often, most a few times.
        # The random values are columns of the recursive CTE (evaluated once a row; in a join SQLite may re-run them).
        conn.execute(
            f"""INSERT INTO events (event, jail, ip, ipkey, at, bantime, bancount, data, origin, actor, country)
            WITH RECURSIVE s(i, x, j, kind) AS (
                SELECT ?, 0, 0, 0 UNION ALL
                SELECT i + 1, (abs(random()) % {ADDRESSES}) * (abs(random()) % {ADDRESSES}) / {ADDRESSES},
                       abs(random()) % 20, abs(random()) % 100 FROM s WHERE i + 1 < ?)
            SELECT CASE WHEN r.kind < 98 THEN 'ban' ELSE 'unban' END, jails.name, a.ip, a.ipkey,
                   ? + r.i * ?, CASE WHEN r.kind < 98 THEN 600 END, CASE WHEN r.kind < 95 THEN 1 END,
                   CASE WHEN r.kind < 95 THEN '{{"matches": ["Dec 05 10:00:01 host sshd[1001]: {line}", ' ||
                        '"Dec 05 10:00:03 host sshd[1002]: {line}", "Dec 05 10:00:05 host sshd[1003]: {line}"], ' ||
                        '"failures": 3}}' END,
                   CASE WHEN r.kind < 95 THEN 'auto' ELSE 'manual' END,
                   CASE WHEN r.kind < 95 THEN NULL ELSE 'admin' END, a.country
            FROM s AS r CROSS JOIN addr a ON a.n = r.x CROSS JOIN jails ON jails.n = r.j""",
            (lo, hi, start, step))
        aggregate(conn, "id >= ?", (first,), +1)
        conn.execute("COMMIT")
        print(f"  generated {hi:,} rows ({time.perf_counter() - t0:.1f} s for this million)", flush=True)
    conn.execute("DROP TABLE addr")
    conn.execute("DROP TABLE jails")
    conn.execute("PRAGMA cache_size = -16384")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def rss_mb() -> float:
    for text in Path("/proc/self/status").read_text().splitlines():
        if text.startswith("VmRSS:"):
            return int(text.split()[1]) / 1024
    return 0.0


def csv_export(archive: Archive, rows: int) -> tuple[float, float, float, float]:
    """(rows/s, tracemalloc peak MB, RSS growth MB, RSS growth after the first 100,000 lines MB) for `rows` lines
    of `Archive.csv_chunks` (what GET /api/v1/history?format=csv streams: a page of 1,000 lines per chunk)."""
    rss0 = rss_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    n, half_rss = 0, 0.0
    for chunk in archive.csv_chunks():
        n += chunk.count("\r\n")  # line ends (a log line's own newlines inside a quoted field are bare \n)
        if not half_rss and n >= 100_000:
            half_rss = rss_mb()
        if n >= rows:
            break
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return n / seconds, peak, rss_mb() - rss0, rss_mb() - half_rss


def purge_with_writer(archive: Archive, days: float) -> tuple[int, float, list[float]]:
    """Purge events older than `days` while another thread records a ban every 20 ms; (deleted, seconds, the
    writer's latencies in ms)."""
    waits: list[float] = []
    stop = threading.Event()

    def writer() -> None:
        rng = random.Random(7)
        n = 0
        while not stop.is_set():
            ip = f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            n += 1
            t0 = time.perf_counter()
            # Distinct times after `now` (the injected clock stands still): thousands of events of one instant
            # would make the next --reuse run's first page sort them all (16 ms instead of 0.4).
            archive.record_ban("jail00", [ip], actor="bench", at=archive.clock() + n / 1000)
            waits.append((time.perf_counter() - t0) * 1000)
            stop.wait(0.02)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    deleted = archive.purge(days)
    seconds = time.perf_counter() - t0
    time.sleep(0.2)
    stop.set()
    thread.join()
    return deleted, seconds, waits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history_big", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dir", default="", help="work directory (default: a temp dir, removed at the end)")
    parser.add_argument("--keep", action="store_true", help="keep the archive")
    parser.add_argument("--reuse", action="store_true", help="use the archive already in --dir")
    args, _ = parser.parse_known_args(argv)
    work = Path(args.dir or tempfile.mkdtemp(prefix="bangui-bench-big-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(25)
    print(f"# history_big: {machine()}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    measured: dict[str, float] = {}
    info: dict[str, str] = {}
    try:
        stamp = work / "now"
        if args.reuse and stamp.exists():
            now = float(stamp.read_text())
        else:
            for name in ("history.sqlite3", "history.sqlite3-wal", "history.sqlite3-shm"):
                (work / name).unlink(missing_ok=True)
            now = time.time()
        archive = Archive.in_dir(work, clock=lambda: now)
        if not (args.reuse and stamp.exists()):
            t0 = time.perf_counter()
            generate(archive, args.rows, now, rng)
            stamp.write_text(repr(now))
            info["generation (s)"] = f"{time.perf_counter() - t0:.0f}"
        conn = archive._conn()
        total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        size = sum(f.stat().st_size for f in work.glob("history.sqlite3*"))
        info["events"] = f"{total:,}"
        info["disk size per million bans (MB)"] = f"{size / 1e6 / (total / 1e6):.0f} (total {size / 1e9:.2f} GB)"

        # ~300 days back, or a week after the oldest event once --reuse runs have purged that far
        oldest_at = conn.execute("SELECT min(at) FROM events").fetchone()[0]
        deep_at = max(now - 300 * DAY, oldest_at + 7 * DAY)
        deep_id = conn.execute("SELECT id, at FROM events WHERE at <= ? ORDER BY at DESC LIMIT 1",
                               (deep_at,)).fetchone()
        deep = encode_cursor(deep_id[1], deep_id[0])
        print("  timing: pages", flush=True)
        first = timed(lambda: archive.history(limit=50), 200)
        deep_times = timed(lambda: archive.history(limit=50, cursor=deep), 200)
        measured["page p50, first (ms)"] = p50(first)
        measured["page p50, deep cursor (ms)"] = p50(deep_times)
        jail_first = timed(lambda: archive.history(jail=rng.choice(JAILS), limit=50), 100)
        jail_deep = timed(lambda: archive.history(jail=rng.choice(JAILS), limit=50, cursor=deep), 100)
        info["page p50, one jail, first / deep (ms)"] = f"{p50(jail_first):.2f} / {p50(jail_deep):.2f}"
        info["page p90, first / deep (ms)"] = (f"{statistics.quantiles(first, n=10)[-1]:.2f} / "
                                              f"{statistics.quantiles(deep_times, n=10)[-1]:.2f}")
        nets = [r[0].rsplit(".", 2)[0] + ".0.0/16" for r in conn.execute(
            "SELECT ip FROM events WHERE id > ? AND ip NOT LIKE '%:%' LIMIT 1000", (total // 2,))]
        info["page p50, /16 network (ms)"] = f"{p50(timed(lambda: archive.history(ip=rng.choice(nets), limit=50), 50)):.2f}"
        print("  timing: IP timelines", flush=True)
        ips = [r[0] for r in conn.execute("SELECT ip FROM events WHERE id % 9973 = 0 LIMIT 300")]
        measured["ip timeline p50 (ms)"] = p50(timed(lambda: archive.ip_timeline(rng.choice(ips)), 300))
        busiest = conn.execute("SELECT ipkey, bans FROM agg_ip ORDER BY bans DESC LIMIT 1").fetchone()
        busy_ip = conn.execute("SELECT ip FROM events WHERE ipkey = ? LIMIT 1", (busiest[0],)).fetchone()[0]
        info[f"ip timeline, busiest address ({busiest[1]:,} bans), p50 (ms)"] = \
            f"{p50(timed(lambda: archive.ip_timeline(busy_ip), 11)):.1f}"
        print("  timing: stats", flush=True)
        # history_stats.stats itself: Archive.stats answers a repeat from its cache while nothing was written.
        measured["stats 365d p50 (ms)"] = p50(timed(lambda: history_stats.stats(conn, "365d", now=now), 11))
        info["stats 365d, one jail, p50 (ms)"] = \
            f"{p50(timed(lambda: history_stats.stats(conn, '365d', 'jail03', now=now), 5)):.0f}"
        info["stats 365d, origin auto, p50 (ms)"] = \
            f"{p50(timed(lambda: history_stats.stats(conn, '365d', origin='auto', now=now), 5)):.0f}"
        info["stats 30d p50 (ms)"] = f"{p50(timed(lambda: history_stats.stats(conn, '30d', now=now), 5)):.0f}"
        info["stats 24h p50 (ms)"] = f"{p50(timed(lambda: history_stats.stats(conn, '24h', now=now), 5)):.0f}"
        archive.stats("30d", now=now)
        info["stats 30d repeated, archive unchanged (Archive.stats cache), p50 (ms)"] = \
            f"{p50(timed(lambda: archive.stats('30d', now=now), 50)):.3f}"

        print("  timing: CSV export", flush=True)
        t0 = time.perf_counter()
        lines = sum(1 for _ in zip(range(200_000), archive.csv_lines(), strict=False))
        info["CSV lines one by one (csv_lines, before), rows/s"] = f"{lines / (time.perf_counter() - t0):,.0f}"
        rate, peak, rss_growth, rss_late = csv_export(archive, 1_000_000)
        measured["CSV export (rows/s)"] = rate
        print(f"  so far: {measured}", flush=True)
        info["CSV export: Python heap peak, RSS growth, RSS growth after 100,000 lines (MB)"] = \
            f"{peak:.1f}, {rss_growth:.1f}, {rss_late:.1f}"

        print("  timing: retention (purge beside a writer)", flush=True)
        oldest = conn.execute("SELECT min(at) FROM events").fetchone()[0]
        cutoff_days = (now - oldest) / DAY - 365 * 1_000_000 / args.rows  # the oldest ~1,000,000 rows
        deleted, seconds, waits = purge_with_writer(archive, cutoff_days)
        measured["purge: longest writer wait (ms)"] = max(waits)
        info["purge"] = (f"{deleted:,} events in {seconds:.1f} s ({deleted / seconds:,.0f}/s); writer: "
                         f"{len(waits)} bans, p50 {p50(waits):.1f} ms, p99 "
                         f"{statistics.quantiles(waits, n=100)[-1]:.1f} ms")
        info["max RSS of this process (MB)"] = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
        archive.close()
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}; SQLite {sqlite3.sqlite_version}")
    print(table(["measure", "measured", "target", "result"],
                [[name, f"{measured[name]:,.2f}", f"{'>=' if hi else '<='} {t:,.0f}", verdict(measured[name], t, hi)]
                 for name, (t, hi) in TARGETS.items()]))
    print()
    print(table(["other figure", "value"], [[k, v] for k, v in info.items()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
