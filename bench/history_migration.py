"""Benchmark of the history archive's schema migration to version 4 (origin `fleet`, issue 14).

Run from the repository root: `python -m bench.history_migration [--rows N] [--dir DIR]`.
Builds a version-3 archive of N events (default 1,000,000: 400 days, 10 jails, 200,000 addresses, ~5% unbans,
2% manual bans) with its aggregates, then times `migrate()` (the rebuild of `events` with its four indexes, in
one transaction: what the first `bangui serve` after the upgrade does while opening the archive). Prints the
time and checks that ids, rows, indexes and aggregates came through.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store.history_schema import MIGRATIONS, address_with_key, migrate  # noqa: E402

DAYS = 400
JAILS = [f"jail{i}" for i in range(10)]


def build_v3(path: Path, rows: int, now: float) -> None:
    rng = random.Random(14)
    ips = [f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
           for _ in range(200_000)]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA page_size = 8192")
    conn.execute("PRAGMA journal_mode = WAL")
    for step in MIGRATIONS[:3]:
        for statement in step:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")

    def events():  # type: ignore[no-untyped-def]
        for n in range(rows):
            ip, key, _ = address_with_key(rng.choice(ips))
            at = now - rng.random() * DAYS * 86400 + n * 1e-6  # distinct times: the unique key never collides
            kind = "unban" if n % 20 == 19 else "ban"
            origin = "manual" if n % 50 == 7 else "auto"
            yield (kind, rng.choice(JAILS), ip, key, at, 600, 1, '{"matches": ["x"], "failures": 3}', origin,
                   "alice" if origin == "manual" else None, "US", None)

    conn.execute("BEGIN")
    conn.executemany("INSERT INTO events (event, jail, ip, ipkey, at, bantime, bancount, data, origin, actor, "
                     "country, since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", events())
    conn.execute("INSERT INTO agg_day SELECT CAST(at / 86400 AS INTEGER), jail, origin, count(*) FROM events "
                 "WHERE event = 'ban' GROUP BY 1, 2, 3")
    conn.execute("INSERT INTO agg_week_country SELECT CAST((at - 345600) / 604800 AS INTEGER), jail, origin, "
                 "country, count(*) FROM events WHERE event = 'ban' GROUP BY 1, 2, 3, 4")
    conn.execute("INSERT INTO agg_ip SELECT ipkey, count(*) FROM events WHERE event = 'ban' GROUP BY ipkey")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", default="", help="work directory (default: a temp dir, removed at the end)")
    args = parser.parse_args()
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bangui-migration-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "history.sqlite3"
    try:
        print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
              f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, load {os.getloadavg()[0]:.1f}")
        started = time.perf_counter()
        build_v3(path, args.rows, time.time())
        print(f"built a version-3 archive of {args.rows:,} events in {time.perf_counter() - started:.1f} s "
              f"({path.stat().st_size / 1e6:.0f} MB)")
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA cache_size = -16384")  # what the archive's connections use (store/history.py)
        before = conn.execute("SELECT count(*), min(id), max(id), sum(id) FROM events").fetchone()
        started = time.perf_counter()
        version = migrate(conn)
        took = time.perf_counter() - started
        after = conn.execute("SELECT count(*), min(id), max(id), sum(id) FROM events").fetchone()
        indexes = conn.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events' "
                               "AND sql IS NOT NULL").fetchone()[0]
        ok = version == len(MIGRATIONS) and before == after and indexes == 4 \
            and conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        print(f"migration 3 -> {version} of {args.rows:,} events: {took:.1f} s "
              f"({args.rows / took:,.0f} events/s); ids, rows and indexes kept: {'yes' if ok else 'NO'}")
        return 0 if ok else 1
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
