"""Leader takeover latency and follower idle cost, with real processes (no HTTP server needed).

    python -m bench.takeover [--kills 20] [--candidates 3] [--idle-seconds 60]

1. Starts N candidate processes on a fresh data dir (each runs jobs.leader.run_candidate, as a
   worker's lifespan does). Then, --kills times: SIGKILL the published leader and measure the time
   until another process holds the lock AND has published itself (`leader:current` with a newer
   epoch, polled every ~1 ms); restart the victim. Prints median / p90 / max.
   Targets (issue 4): median <= 50 ms, max <= 250 ms.
   (Fleet failover, the fleet leader's lease in Redis across hosts, is measured by bench/fleet.py.)
2. Idle cost: CPU used over --idle-seconds by one follower vs. an idle process that loads the same
   code and store but is not a candidate, from /proc/<pid>/stat (utime+stime, clock ticks, all
   threads) and /proc/<pid>/task/*/schedstat (nanoseconds). The leader's cost is shown for scale.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


# Child processes ---------------------------------------------------------------------------------

def child(mode: str, data_dir: Path) -> None:
    import anyio

    from core.deps import Deps
    from jobs.leader import run_candidate
    from settings import Settings
    from store import Store

    # No fail2ban in this benchmark: the history job fails by design every run; keep its tracebacks
    # out of the report (the scheduler still records them in the store).
    logging.getLogger("bangui.jobs").setLevel(logging.CRITICAL)

    async def main() -> None:
        settings = Settings.for_tests(data_dir=str(data_dir))
        store = Store(settings)
        deps = Deps(settings, store, None)  # type: ignore[arg-type]  # no fail2ban: snapshot says so
        try:
            async with anyio.create_task_group() as tg:
                with anyio.open_signal_receiver(signal.SIGTERM) as signals:
                    if mode == "candidate":
                        await tg.start(run_candidate, deps)
                    print("ready", flush=True)
                    async for _ in signals:
                        break
                tg.cancel_scope.cancel()
        finally:
            store.close()

    anyio.run(main)


class Group:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(self, mode: str = "candidate") -> int:
        proc = subprocess.Popen([sys.executable, "-m", "bench.takeover", "--child", mode, str(self.data_dir)],
                                cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE)
        assert proc.stdout is not None
        if proc.stdout.readline() != b"ready\n":
            raise SystemExit(f"{mode} process did not start (exit {proc.wait()})")
        self.procs[proc.pid] = proc
        return proc.pid

    def kill(self, pid: int) -> None:
        proc = self.procs.pop(pid)
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for pid in list(self.procs):
            proc = self.procs.pop(pid)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()


# Measurements ------------------------------------------------------------------------------------

def leader_record(cache: Any) -> dict[str, Any] | None:
    record: dict[str, Any] | None = cache.get("leader:current")
    return record


def wait_newer(cache: Any, epoch: int, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        record = leader_record(cache)
        if record and record["epoch"] > epoch:
            return record
        time.sleep(0.001)
    raise SystemExit(f"no new leader within {timeout}s")


def takeovers(group: Group, cache: Any, kills: int) -> list[float]:
    record = wait_newer(cache, 0)
    times = []
    for i in range(kills):
        time.sleep(random.uniform(0.2, 0.4))  # let the restarted candidate block in flock()
        victim, t0 = record["pid"], time.perf_counter()
        os.kill(victim, signal.SIGKILL)
        record = wait_newer(cache, record["epoch"])
        times.append(time.perf_counter() - t0)
        print(f"  kill {i + 1:2d}: pid {victim} -> pid {record['pid']} epoch {record['epoch']} "
              f"in {times[-1] * 1000:6.1f} ms", flush=True)
        group.kill(victim)  # reap it
        group.spawn()
    return times


def cpu(pid: int) -> tuple[float, float]:
    """(seconds from /proc/<pid>/stat utime+stime, seconds from the threads' schedstat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    # Live threads only (a thread that exits takes its count along); the processes compared here keep theirs.
    tasks = Path(f"/proc/{pid}/task").iterdir()
    ns = sum(int(Path(task, "schedstat").read_text().split()[0]) for task in tasks)
    return ticks, ns / 1e9


def idle_cost(group: Group, cache: Any, seconds: float) -> tuple[list[list[object]], str]:
    leader = leader_record(cache)
    assert leader is not None
    follower = next(pid for pid in group.procs if pid != leader["pid"])
    baseline = group.spawn("idle")
    time.sleep(1.0)  # let start-up work settle
    watched = {"follower": follower, "idle non-candidate": baseline, "leader (for scale)": leader["pid"]}
    before = {name: cpu(pid) for name, pid in watched.items()}
    time.sleep(seconds)
    rows: list[list[object]] = []
    used = {}
    for name, pid in watched.items():
        ticks, exact = (b - a for a, b in zip(before[name], cpu(pid), strict=True))
        used[name] = exact
        rows.append([name, pid, f"{ticks:.2f}", f"{exact * 1000:.2f}", f"{exact / seconds * 100:.4f} %"])
    base = used["idle non-candidate"]
    ratio = f"{used['follower'] / base:.2f}" if base > 0 else "n/a (the idle process used no measurable CPU)"
    return rows, f"follower / idle non-candidate: {ratio}; difference {(used['follower'] - base) * 1000:+.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return

    from bench.common import machine, percentile, table, verdict, work_dir
    from store.base import open_cache

    print(f"# takeover: {machine()}")
    with work_dir("bangui-takeover-") as tmp:
        data_dir = tmp / "data"
        group = Group(data_dir)
        try:
            for _ in range(args.candidates):
                group.spawn()
            cache = open_cache(data_dir / "state")
            print(f"\nSIGKILL of the leader -> another process holds the lock and has published itself "
                  f"({args.candidates} candidates)")
            times = [t * 1000 for t in takeovers(group, cache, args.kills)]
            median, p90, worst = percentile(times, 50), percentile(times, 90), max(times)
            print()
            print(table(["kills", "median ms", "p90 ms", "max ms", "target", "result"], [
                [len(times), f"{median:.1f}", f"{p90:.1f}", f"{worst:.1f}", "median <= 50, max <= 250",
                 "PASS" if verdict(median, 50, False) == verdict(worst, 250, False) == "PASS" else "FAIL"]]))
            if args.idle_seconds > 0:
                print(f"\nCPU used while idle for {args.idle_seconds:g} s (/proc stat ticks; schedstat ns)")
                rows, ratio = idle_cost(group, cache, args.idle_seconds)
                print(table(["process", "pid", "stat s", "schedstat ms", "of one CPU"], rows))
                print(ratio)
            cache.close()
        finally:
            group.stop()


if __name__ == "__main__":
    main()
