"""What the audit log costs: ban+unban latency with and without the audit write, and audit pages over
1,000,000 entries.

    python -m bench.audit [--iterations 300] [--entries 1000000]

(1) Two `bangui serve --workers 1` against one private fail2ban (no-op jail `sshd`): one normal, one
    started with bench/noaudit on PYTHONPATH (its sitecustomize turns AuditLog.append into a no-op).
    Each iteration does one ban+unban pair (two audited actions) on each, in alternating order, one
    keep-alive client each. Target (issue 9): with/without <= 1.10.
(2) A data dir filled with `--entries` chained entries (bulk-written here with the log's own hashing),
    then GET /api/v1/audit pages through a real server: first page, action prefix, a rare actor, a time
    window in the middle, a deep cursor, and the same calls on the store directly. Target: < 20 ms.
A benchmark, not a test: prints figures and PASS/FAIL beside each target.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import httpx2 as httpx

from bench.common import REPO, JailSpec, bangui, create_token, machine, summary, table, verdict, work_dir
from f2b.instance import PrivateServer, started
from store.audit import FIELDS, GENESIS, AuditLog, canonical

JAILS = (JailSpec("sshd", action="noop"),)
OVERHEAD_TARGET = 1.10
PAGE_TARGET_MS = 20.0
START = 1_700_000_000.0
INSERT = f"INSERT INTO entries ({', '.join((*FIELDS, 'prev', 'hash'))}) VALUES ({', '.join('?' * (len(FIELDS) + 2))})"


def fill(data_dir: Path, count: int) -> None:
    """`count` valid chained entries, one every 30 s, written in one transaction (fast, same hashing)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    log = AuditLog(data_dir, time.time)
    actions = ["jail.ban", "jail.unban", "auth.login", "user.update", "token.create", "config.file_write"]
    conn, prev = log._conn(), GENESIS
    conn.execute("BEGIN IMMEDIATE")
    rows = []
    for n in range(1, count + 1):
        entry = {"id": n, "at": START + 30.0 * n, "actor": "rare" if n % 100_000 == 0 else f"user{n % 7}",
                 "role": "operator", "via": "token", "source_ip": "192.0.2.1", "action": actions[n % 6],
                 "target": "sshd", "outcome": "ok" if n % 11 else "denied", "status": 200,
                 "details": json.dumps({"ips": [f"10.0.{n % 250}.{n % 200}"], "count": 1})}
        digest = log._sign(prev.encode() + canonical(entry))
        rows.append([entry[f] for f in FIELDS] + [prev, digest])
        prev = digest
        if len(rows) == 50_000:
            conn.executemany(INSERT, rows)
            rows.clear()
    conn.executemany(INSERT, rows)
    log._set_head(conn, count, START + 30.0 * count, prev)  # the log's head: verify compares the chain's end
    conn.execute("COMMIT")
    log.close()


def pair(client: httpx.Client, ip: str) -> float:
    start = time.perf_counter()
    assert client.post("/api/v1/jails/sshd/bans", json={"ips": [ip]}).status_code == 200
    assert client.delete(f"/api/v1/jails/sshd/bans/{ip}").status_code == 200
    return (time.perf_counter() - start) * 1000.0


def overhead(tmp: Path, f2b: PrivateServer, iterations: int) -> list[list[object]]:
    samples: dict[str, list[float]] = {"with audit": [], "without audit": []}
    noaudit = {"PYTHONPATH": f"{REPO / 'bench' / 'noaudit'}{os.pathsep}{REPO}"}
    with (bangui(tmp / "with", f2b) as on, bangui(tmp / "without", f2b, env=noaudit) as off):
        clients = {}
        for name, server, data in (("with audit", on, tmp / "with"), ("without audit", off, tmp / "without")):
            token = create_token(data, "operator")
            clients[name] = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})
        for i in range(-30, iterations):
            order = list(clients) if i % 2 else list(clients)[::-1]
            for name in order:
                elapsed = pair(clients[name], f"10.9.{(i + 30) // 250}.{(i + 30) % 250}")
                if i >= 0:
                    samples[name].append(elapsed)
        for client in clients.values():
            client.close()
        written = AuditLog(tmp / "without", time.time).count()
    med_on, p90_on = summary(samples["with audit"])
    med_off, p90_off = summary(samples["without audit"])
    ratio = med_on / med_off
    print(f"(the no-audit server wrote {written} entries: 1 expected, the CLI's token.create)")
    return [["ban+unban, with audit (median / p90 ms)", f"{med_on:.3f} / {p90_on:.3f}", "", ""],
            ["ban+unban, without audit (median / p90 ms)", f"{med_off:.3f} / {p90_off:.3f}", "", ""],
            ["with/without", f"{ratio:.3f}", f"<= {OVERHEAD_TARGET}", verdict(ratio, OVERHEAD_TARGET, False)]]


def pages(tmp: Path, f2b: PrivateServer, entries: int) -> list[list[object]]:
    data = tmp / "big"
    began = time.monotonic()
    fill(data, entries)
    print(f"(filled {entries} entries in {time.monotonic() - began:.1f} s)")
    middle = START + 30.0 * entries / 2
    queries = {
        "first page (100)": {},
        "action prefix jail. (100)": {"action": "jail."},
        "rare actor": {"actor": "rare"},
        "one hour in the middle": {"since": str(middle), "until": str(middle + 3600)},
        "deep cursor (limit 1000)": {"cursor": str(entries // 2), "limit": "1000"},
        "denied, newest 100": {"outcome": "denied"},
    }
    rows: list[list[object]] = []
    log = AuditLog(data, time.time)
    with bangui(data, f2b) as server:
        token = create_token(data, "admin")
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
            for label, query in queries.items():
                store_ms, http_ms = [], []
                filters = {k: (float(v) if k in ("since", "until") else int(v) if k in ("cursor", "limit") else v)
                           for k, v in query.items()}
                for _ in range(30):
                    start = time.perf_counter()
                    log.page(**filters)
                    store_ms.append((time.perf_counter() - start) * 1000.0)
                    start = time.perf_counter()
                    response = client.get("/api/v1/audit", params=query)
                    http_ms.append((time.perf_counter() - start) * 1000.0)
                    assert response.status_code == 200, response.text
                med_http = summary(http_ms)[0]
                rows.append([f"GET /audit {label}", f"{summary(store_ms)[0]:.2f} store, {med_http:.2f} HTTP",
                             f"< {PAGE_TARGET_MS:g}", verdict(med_http, PAGE_TARGET_MS, False)])
    log.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--entries", type=int, default=1_000_000)
    args, _ = parser.parse_known_args(argv)
    print(f"# audit: {machine()}; load average before: {os.getloadavg()[0]:.2f}")
    with work_dir("bench-audit-") as tmp, started(tmp / "f2b", JAILS) as f2b:
        rows = overhead(tmp, f2b, args.iterations) + pages(tmp, f2b, args.entries)
    print(table(["measure", "measured", "target", "result"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
