"""Filter tester vs `fail2ban-regex` itself over the same sshd log (issue 10), in one run.

    python -m bench.filter_tester [--lines 100000] [--rounds 5]

One private fail2ban-server (for its config dir: the stock sshd filter) and one `bangui serve --workers 1`
with BANGUI_FAIL2BAN_CONFIG_DIR on that dir and BANGUI_LOG_DIRS on the bench's log dir. A generated sshd
log of --lines lines (failures, invalid users, accepted logins, session noise; IPv4 and IPv6) is checked:
  (a) POST /api/v1/filters/test {"filter": "sshd", "logpath": LOG} end to end over HTTP (operator token);
  (b) `fail2ban-regex -c CONFDIR LOG sshd` as a program, wall time;
  (c) the tester with 10,000 lines given inline (the request body limit case) vs (d) fail2ban-regex on
      a file of those 10,000 lines.
a/b and c/d alternate each round (order flips), so machine noise hits both alike; a pause after each run
lets bangui's next warm engine finish its imports outside the measurements. The first request of
the server (no warm engine yet) is reported apart. CPU seconds (less sensitive to a busy machine than wall
time): fail2ban-regex's process; for the tester the worker plus the engine child it used (that child's
imports, done before the request while it waited as the spare, included). Both answers' counts are compared (they must agree).
Target: the tester at least as fast as fail2ban-regex (median a/b <= 1.0). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import time
from pathlib import Path

import httpx2 as httpx

from bench.common import bangui, create_token, f2b_env, machine, summary, table, verdict, work_dir
from f2b.instance import PrivateServer
from tests.fixtures.sshd_log import sshd_lines

COUNTS = ("lines_checked", "ignored", "matched", "missed")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def worker_cpu(pid: int) -> float:
    """CPU seconds of a bangui worker and of its children it has reaped (the engine processes: a spare's
    imports are counted when the request that used it reaps it), from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def fail2ban_regex(conf_dir: str, log: str) -> tuple[float, float, dict[str, int]]:
    binary = shutil.which("fail2ban-regex") or "/usr/bin/fail2ban-regex"
    cpu, started = children_cpu(), time.perf_counter()
    out = subprocess.run([binary, "-c", conf_dir, log, "sshd"], capture_output=True, text=True, check=True,
                         env=f2b_env()).stdout
    elapsed, cpu = time.perf_counter() - started, children_cpu() - cpu
    m = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed", out)
    assert m, out
    return elapsed, cpu, dict(zip(COUNTS, map(int, m.groups()), strict=True))


def tester(client: httpx.Client, worker: int, body: dict[str, object]) -> tuple[float, float, dict[str, int]]:
    cpu, started = worker_cpu(worker), time.perf_counter()
    r = client.post("/api/v1/filters/test", json=body)
    elapsed, cpu = time.perf_counter() - started, worker_cpu(worker) - cpu
    r.raise_for_status()
    return elapsed, cpu, {k: r.json()[k] for k in COUNTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"filter tester vs fail2ban-regex: {machine()}")
    with work_dir("bft-") as base, PrivateServer(base / "f2b") as f2b:
        logs = base / "logs"
        logs.mkdir()
        big, small = logs / "sshd-big.log", logs / "sshd-10k.log"
        lines = sshd_lines(args.lines)
        big.write_text("\n".join(lines) + "\n")
        small.write_text("\n".join(lines[:10_000]) + "\n")
        data = base / "data"
        env = {"BANGUI_LOG_DIRS": str(logs),
               "BANGUI_FILTER_TEST_SECONDS": "600", "BANGUI_ADMIN_PASSWORD": "bench admin password, long enough"}
        with bangui(data, f2b, env=env) as server:
            token = create_token(data, "operator")
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                              timeout=600) as client:
                file_body = {"filter": "sshd", "logpath": str(big)}
                inline_body = {"filter": "sshd", "lines": lines[:10_000]}
                [worker] = server.worker_pids()
                cold, _, _ = tester(client, worker, file_body)
                times: dict[str, list[float]] = {k: [] for k in "abcd"}
                cpus: dict[str, list[float]] = {k: [] for k in "abcd"}
                counts: dict[str, dict[str, int]] = {}
                runs = {"a": lambda: tester(client, worker, file_body),
                        "b": lambda: fail2ban_regex(str(f2b.conf_dir), str(big)),
                        "c": lambda: tester(client, worker, inline_body),
                        "d": lambda: fail2ban_regex(str(f2b.conf_dir), str(small))}
                for i in range(args.rounds):
                    for pair in ("ab", "cd") if i % 2 == 0 else ("ba", "dc"):
                        for k in pair:
                            elapsed, cpu, counts[k] = runs[k]()
                            times[k].append(elapsed)
                            cpus[k].append(cpu)
                            # bangui starts its next warm engine after each test (~0.4 s CPU of imports):
                            # let that finish so it does not slow down the next measurement.
                            time.sleep(2.0)
    agree_big, agree_small = counts["a"] == counts["b"], counts["c"] == counts["d"]
    rows = []
    for k, label in (("a", f"tester, logpath, {args.lines:,} lines"), ("b", f"fail2ban-regex, {args.lines:,} lines"),
                     ("c", "tester, 10,000 lines inline"), ("d", "fail2ban-regex, 10,000 lines")):
        med, p90 = summary(times[k])
        rows.append((label, f"{med:.2f}", f"{p90:.2f}", f"{summary(cpus[k])[0]:.2f}",
                     f"{(args.lines if k in 'ab' else 10_000) / med:,.0f}"))
    print(table(("run", "median s", "p90 s", "median CPU s", "lines/s"), rows))
    ratio_big = summary(times["a"])[0] / summary(times["b"])[0]
    ratio_small = summary(times["c"])[0] / summary(times["d"])[0]
    print(f"first request (engine not warm yet): {cold:.2f} s")
    print(f"counts {args.lines:,}: tester {counts['a']} / fail2ban-regex {counts['b']}: "
          f"{'agree' if agree_big else 'DIFFER'}; 10,000: {'agree' if agree_small else 'DIFFER'}")
    print(table(("ratio of medians", "value", "target", "verdict"), [
        (f"tester / fail2ban-regex ({args.lines:,} lines)", f"{ratio_big:.2f}", "<= 1.0",
         verdict(ratio_big, 1.0, higher_is_better=False) if agree_big else "FAIL (counts differ)"),
        ("tester / fail2ban-regex (10,000 lines)", f"{ratio_small:.2f}", "(info)", "")]))


if __name__ == "__main__":
    main()
