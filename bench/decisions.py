"""CrowdSec decisions stream (issue 22): a bouncer's startup stream of 100,000 decisions, and an idle poll.

    python -m bench.decisions [--entries 100000] [--startups 5] [--polls 1000]

A private fail2ban with one no-op jail holding `--entries` bans (one raw `banip` call), `bangui serve --workers 3`
publishing them (the leader's `decisions` job, BANGUI_DECISIONS_SECONDS=1), a bouncer key from the CLI. Then, over
one keep-alive connection as a bouncer polls:
  - startup: `GET /v1/decisions/stream?startup=true`, request to the last body byte (server time plus loopback
    transfer), median of `--startups`, and the body size;
  - idle poll: `GET /v1/decisions/stream?startup=false` with nothing changed, p50 and p95 of `--polls`;
  - the floor: the public `GET /api/v1/health/live` as often (what any request costs on the machine now).
Targets (issue 22): startup <= 1.5 s for 100,000; idle poll p50 <= 3 ms. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import httpx2 as httpx

from bench.common import JailSpec, bangui, cli, machine, percentile, table, verdict, work_dir
from f2b.blocking import sync_call
from f2b.instance import started

JAILS = (JailSpec("bulk", action="noop", bantime=86400),)


def addresses(count: int) -> list[str]:
    return [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(1, count + 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decisions", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--startups", type=int, default=5)
    parser.add_argument("--polls", type=int, default=1000)
    args = parser.parse_args(argv)
    print(f"# decisions: {machine()}; load average before: {os.getloadavg()[0]:.2f}")
    with work_dir("bench-decisions-") as tmp, started(tmp / "f2b", JAILS) as f2b:
        code, result = sync_call(str(f2b.socket), "set", "bulk", "banip", *addresses(args.entries), timeout=600.0)
        if code != 0:
            raise RuntimeError(f"fail2ban banip: {result!r}")
        data = tmp / "data"
        with bangui(data, f2b, workers=3, env={"BANGUI_DECISIONS_SECONDS": "1"}) as server:
            key = cli("bouncer", "add", "bench", data_dir=data).strip()
            client = httpx.Client(base_url=server.url, headers={"X-Api-Key": key}, timeout=60)
            deadline = time.monotonic() + 300
            while True:  # until the leader has published every ban
                count = len(client.get("/v1/decisions/stream?startup=true").json()["new"] or [])
                if count >= args.entries or time.monotonic() > deadline:
                    break
                time.sleep(1)
            startups, size = [], 0
            for _ in range(args.startups):
                start = time.perf_counter()
                reply = client.get("/v1/decisions/stream?startup=true")
                startups.append(time.perf_counter() - start)
                size = len(reply.content)
            polls = []
            for _ in range(args.polls):
                start = time.perf_counter()
                reply = client.get("/v1/decisions/stream?startup=false")
                polls.append(time.perf_counter() - start)
                if reply.json() != {"new": None, "deleted": None}:
                    raise RuntimeError(f"an idle poll answered changes: {reply.text[:200]}")
            lives = []  # the floor on this machine now: the public liveness route, same connection
            for _ in range(args.polls):
                start = time.perf_counter()
                client.get("/api/v1/health/live")
                lives.append(time.perf_counter() - start)
            client.close()
    startup_s = percentile(startups, 50)
    idle_ms = percentile(polls, 50) * 1000
    print(table(["measure", "measured", "target", "result"], [
        [f"startup stream of {count:,} decisions (median of {len(startups)}; {size / 1e6:.1f} MB)",
         f"{startup_s:.3f} s", "<= 1.5 s", verdict(startup_s, 1.5, False)],
        [f"idle poll p50 over {len(polls)} (p95 {percentile(polls, 95) * 1000:.2f} ms)", f"{idle_ms:.2f} ms",
         "<= 3 ms", verdict(idle_ms, 3.0, False)],
        [f"(floor) GET /api/v1/health/live p50 over {len(lives)}", f"{percentile(lives, 50) * 1000:.2f} ms", "", ""],
    ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
