"""What one ban's store writes cost (issue 25 item 1), in-process, no server: the write-ahead audit entry
(`pending`), the history record, the completion, as `actions/base.py` makes them for a ban, under each WAL
`synchronous` level, alternating levels so that machine noise hits all alike.

    python -m bench.commits [--iterations 2000]

Per ban: `AuditLog.append(pending, intent)` + `Archive.record_ban` + `AuditLog.append(completion)` (three
transactions on two files); per unban the same with `record_unban`. Printed: median microseconds per ban+unban
pair and per transaction, for synchronous OFF / NORMAL (bangui's) / FULL, and the bare cost of an empty
`BEGIN IMMEDIATE; COMMIT` on each file. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from bench.common import machine, table, work_dir
from store.audit import AuditLog
from store.history import Archive

LEVELS = ("OFF", "NORMAL", "FULL")


def entry(action: str, outcome: str, of: int | None = None) -> dict[str, object]:
    return {"actor": "bench", "role": "operator", "via": "token", "source_ip": "127.0.0.1", "action": action,
            "target": "sshd", "outcome": outcome, "status": 0 if of is None else 200,
            "details": {"ips": ["192.0.2.1"]}, "of": of}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.commits", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    args, _ = parser.parse_known_args(argv)
    print(f"# commits: {machine()}; load average before: {os.getloadavg()[0]:.2f}")
    pair: dict[str, list[float]] = {level: [] for level in LEVELS}
    empty: dict[str, list[float]] = {level: [] for level in LEVELS}
    with work_dir("bench-commits-") as tmp:
        stores = {}
        for level in LEVELS:
            (tmp / level).mkdir()
            audit, archive = AuditLog(tmp / level, time.time), Archive.in_dir(tmp / level)
            for conn in (audit._conn(), archive._conn()):
                conn.execute(f"PRAGMA synchronous = {level}")
            stores[level] = (audit, archive)
        n = 0
        for i in range(args.iterations):
            for level in (LEVELS if i % 2 == 0 else LEVELS[::-1]):
                audit, archive = stores[level]
                n += 1
                ip = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
                start = time.perf_counter()
                first = audit.append(entry("jail.ban", "pending"), ("bench", '{"ips":["x"]}'))
                archive.record_ban("sshd", [ip], actor="bench", bantime=600)
                audit.append(entry("jail.ban", "ok", first))
                second = audit.append(entry("jail.unban", "pending"), ("bench", None))
                archive.record_unban("sshd", ip, actor="bench")
                audit.append(entry("jail.unban", "ok", second))
                pair[level].append((time.perf_counter() - start) * 1e6)
                start = time.perf_counter()
                for conn in (audit._conn(), archive._conn()):
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute("COMMIT")
                empty[level].append((time.perf_counter() - start) * 1e6 / 2)
    med = statistics.median
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print(table(["synchronous", "ban+unban pair, 6 transactions (us)", "per transaction (us)", "empty commit (us)"],
                [[level, f"{med(pair[level]):.0f}", f"{med(pair[level]) / 6:.0f}", f"{med(empty[level]):.0f}"]
                 for level in LEVELS]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
