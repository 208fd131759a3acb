"""A blocklist of 100,000 entries end to end vs one fail2ban `banip` of the same entries (issue 13).

    python -m bench.bulk_import [--entries 100000] [--rounds 3]

One private fail2ban-server with two no-op jails. A list of `--entries` distinct entries (80 % IPv4 addresses,
10 % IPv6 addresses, 10 % networks: IPv4 /24-/30 and IPv6 /64) is served by a loopback `http.server`.
Per round, interleaved (the order of the first two flips every round):
  (f) fail2ban alone: one `set bulk-f2b banip <all entries>` on a raw socket (fresh jail);
  (i) bangui: `jobs.blocklists.import_list` -- the leader's job: guarded fetch from the loopback server, parse
      and refusal checks, the ban action (`get banip` + `banip` in one round trip), history (origin blocklist,
      every new ban recorded) and the audit entry -- into `bulk-api` (fresh jail);
  (f') fail2ban's re-ban of the same entries (all already banned), (i') bangui's re-import;
  then `unban --all` (not timed) empties both jails for the next round.
This process plays the leader (it runs the job in its event loop, as the leader does); its peak resident memory
during each import (VmHWM, reset before each import through /proc/self/clear_refs) is reported.
Targets: i/f <= 1.5, i'/f' <= 1.5, leader memory < 200 MB. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.common import JailSpec, machine, percentile, table, verdict, work_dir
from f2b.blocking import sync_call
from f2b.instance import started

JAILS = (JailSpec("bulk-f2b", action="noop"), JailSpec("bulk-api", action="noop"))
TIME_TARGET = 1.5
MEMORY_TARGET_MB = 200.0


def entries(count: int, seed: int = 13) -> list[str]:
    """`count` distinct canonical entries from public-looking space (none refused by core/refusals.py)."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < count:
        kind = rng.random()
        if kind < 0.8:
            text = str(ipaddress.IPv4Address(rng.randrange(0x01000000, 0x64000000)))  # 1.0.0.0 - 99.255.255.255
        elif kind < 0.9:
            text = str(ipaddress.IPv6Address((0x2001_0db8 << 96) | rng.getrandbits(64)))
        elif kind < 0.95:
            prefix = rng.randrange(24, 31)
            text = str(ipaddress.IPv4Network((rng.randrange(0x01000000, 0x64000000), prefix), strict=False))
        else:
            text = str(ipaddress.IPv6Network(((0x2a00 << 112) | (rng.getrandbits(48) << 64), 64)))
        out[text] = None
    return list(out)


@contextmanager
def list_server(body: bytes) -> Iterator[str]:
    """A loopback HTTP server answering every GET with `body`; its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/list.txt"
    finally:
        server.shutdown()
        server.server_close()


def raw_call(path: str, *args: str) -> Any:
    # fail2ban answers a banip of 100,000 only when every ban is done: seconds, minutes on a loaded machine
    code, result = sync_call(path, *args, timeout=600.0)
    if code != 0:
        raise RuntimeError(f"fail2ban {args[:3]}: {result!r}")
    return result


def fail2ban_ban(path: str, ips: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    count = int(raw_call(path, "set", "bulk-f2b", "banip", *ips))
    return time.perf_counter() - start, count


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def bangui_import(deps: Any, url: str) -> tuple[float, dict[str, Any], float]:
    """(seconds, the job's outcome fields, peak RSS MB during the import)."""
    from jobs.blocklists import import_list

    record = {"name": "bench", "jail": "bulk-api", "url": url}
    Path("/proc/self/clear_refs").write_text("5")  # noqa: ASYNC240 - resets VmHWM; a proc file, instant
    start = time.perf_counter()
    outcome = await import_list(deps, record, time.time())
    elapsed = time.perf_counter() - start
    if outcome["last_status"] != "ok":
        raise RuntimeError(f"the import failed: {outcome}")
    return elapsed, outcome, _status_kib("VmHWM") / 1024


async def run_rounds(f2b_socket: str, data_dir: Path, url: str, ips: list[str], rounds: int,
                     ) -> dict[str, list[float]]:
    from core.deps import Deps
    from f2b.client import Fail2Ban
    from settings import Settings
    from store import Store
    from store.base import configure_threads

    configure_threads()
    settings = Settings.for_tests(data_dir=str(data_dir), fail2ban_socket=f2b_socket, blocklist_allow_private=True)
    store = Store(settings)
    client = Fail2Ban(f2b_socket)
    deps = Deps(settings, store, client)
    out: dict[str, list[float]] = {k: [] for k in ("f", "i", "f2", "i2", "mem", "mem2", "rss")}
    try:
        for n in range(rounds):
            print(f"round {n + 1}/{rounds} (load average {os.getloadavg()[0]:.2f})", file=sys.stderr)
            out["rss"].append(_status_kib("VmRSS") / 1024)
            for fresh in (True, False):
                order = ("f", "i") if (n % 2 == 0) == fresh else ("i", "f")
                for who in order:
                    if who == "f":
                        seconds, count = fail2ban_ban(f2b_socket, ips)
                        if count != (len(ips) if fresh else 0):
                            raise RuntimeError(f"fail2ban banned {count} of {len(ips)} (fresh={fresh})")
                        out["f" if fresh else "f2"].append(seconds)
                    else:
                        seconds, outcome, peak = await bangui_import(deps, url)
                        if outcome["last_added"] != (len(ips) if fresh else 0) or outcome["last_count"] != len(ips):
                            raise RuntimeError(f"unexpected outcome (fresh={fresh}): {outcome}")
                        out["i" if fresh else "i2"].append(seconds)
                        out["mem" if fresh else "mem2"].append(peak)
            raw_call(f2b_socket, "unban", "--all")
        events = await asyncio.to_thread(lambda: store.history.history(origin="blocklist", limit=1))
        if not events[0]:
            raise RuntimeError("no blocklist ban reached history")
    finally:
        await client.aclose()
        store.close()
    return out


def run(count: int, rounds: int) -> int:
    print(f"# bulk_import: {machine()}; load average before: {os.getloadavg()[0]:.2f}")
    ips = entries(count)
    body = ("# bench blocklist\n" + "\n".join(ips) + "\n").encode()
    print(f"# {len(ips)} entries ({len(body) / 1e6:.1f} MB), {rounds} rounds, no-op jails")
    with work_dir("bench-bulk-") as tmp, started(tmp / "f2b", JAILS) as f2b, list_server(body) as url:
        results = asyncio.run(run_rounds(f2b.socket, tmp / "data", url, ips, rounds))
    load_after = os.getloadavg()[0]
    med = {k: percentile(v, 50) for k, v in results.items()}
    rows = [
        ["(f) fail2ban: one banip, fresh", *(f"{x:.2f}" for x in results["f"])],
        ["(i) bangui: blocklist import, fresh", *(f"{x:.2f}" for x in results["i"])],
        ["(f') fail2ban: the same banip again", *(f"{x:.2f}" for x in results["f2"])],
        ["(i') bangui: the same import again", *(f"{x:.2f}" for x in results["i2"])],
    ]
    print(f"\nseconds per round (load average after: {load_after:.2f})")
    print(table(["path", *(f"round {n + 1}" for n in range(rounds))], rows))
    ratios_i = [i / f for i, f in zip(results["i"], results["f"], strict=True)]
    ratios_i2 = [i / f for i, f in zip(results["i2"], results["f2"], strict=True)]
    peak = max(results["mem"] + results["mem2"])
    verdicts = [
        ["import / fail2ban ban (i/f)", f"{percentile(ratios_i, 50):.2f}",
         f"{min(ratios_i):.2f}-{max(ratios_i):.2f}", f"<= {TIME_TARGET:g}",
         verdict(percentile(ratios_i, 50), TIME_TARGET, False)],
        ["re-import / fail2ban re-ban (i'/f')", f"{percentile(ratios_i2, 50):.2f}",
         f"{min(ratios_i2):.2f}-{max(ratios_i2):.2f}", f"<= {TIME_TARGET:g}",
         verdict(percentile(ratios_i2, 50), TIME_TARGET, False)],
        ["leader peak RSS during an import, MB", f"{peak:.0f}",
         f"before: {min(results['rss']):.0f}-{max(results['rss']):.0f}", f"< {MEMORY_TARGET_MB:g}",
         verdict(-peak, -MEMORY_TARGET_MB, True)],
    ]
    print("\nratios per round (median, range) and memory")
    print(table(["measure", "median", "range", "target", "result"], verdicts))
    print(f"\nmedians: f {med['f']:.2f} s, i {med['i']:.2f} s, f' {med['f2']:.2f} s, i' {med['i2']:.2f} s")
    return 0  # a missed target is reported in the table, not as an exit status (./dev bench runs them all)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk_import", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000, help="entries in the list")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args, _ = parser.parse_known_args(argv)  # `./dev bench ARGS` hands the same ARGS to every benchmark
    return run(args.entries, max(1, args.rounds))


if __name__ == "__main__":
    sys.exit(main())
