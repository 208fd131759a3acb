"""Shared helpers for the benchmarks in bench/ (not tests: nothing here asserts a timing).

Reuses the test harness rather than copying it: `f2b.instance.PrivateServer` for a private
fail2ban-server and `tests.fixtures.processes.ServerProcess` for a real `bangui serve` process on a free
port (polled until /health/live answers; stopped with SIGTERM -> SIGKILL of its process group).
What is added here: a temp work dir, token creation through the CLI, percentiles, a result table
with PASS/FAIL next to each target, and a one-line description of the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from f2b.instance import DEFAULT_JAILS, JailSpec, PrivateServer
from f2b.instance import fail2ban_env as f2b_env
from tests.fixtures.processes import ServerProcess, free_port

REPO = Path(__file__).resolve().parents[1]
ADMIN_PASSWORD = "bench admin password, long enough"

__all__ = ["ADMIN_PASSWORD", "DEFAULT_JAILS", "JailSpec", "PrivateServer", "ServerProcess", "free_port",
           "bangui", "cli", "comparison_args", "cpu_seconds", "create_token", "f2b_env", "machine", "percentile",
           "summary", "table", "verdict", "work_dir"]


# ---- processes ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def work_dir(prefix: str) -> Iterator[Path]:
    """A short temp dir (fail2ban's socket path must stay under ~100 bytes), removed afterwards
    unless BENCH_KEEP=1 (then its path is printed: server logs are in there)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp" if os.path.isdir("/tmp") else None))
    try:
        yield path
    finally:
        if os.environ.get("BENCH_KEEP") == "1":
            print(f"(kept {path})", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def bangui(data_dir: Path, fail2ban: PrivateServer, workers: int = 1, env: dict[str, str] | None = None,
           retry_for: float = 0.0) -> Iterator[ServerProcess]:
    """A started `bangui serve --workers N` on a free port; stopped at exit.

    ``retry_for``: keep retrying a failed start this many seconds (the app may be mid-change while
    other work lands, e.g. a module missing for a minute); 0 = fail at once with the server output.
    """
    deadline = time.monotonic() + retry_for
    while True:
        server = ServerProcess(data_dir, fail2ban, workers, data_dir.parent, env=env)
        try:
            server.start()
            break
        except RuntimeError as exc:
            server.stop()
            if time.monotonic() >= deadline:
                raise
            print(f"bangui did not start ({str(exc).splitlines()[0]}); retrying in 30 s", file=sys.stderr)
            time.sleep(30)
    try:
        yield server
    finally:
        server.stop()


def comparison_args(module: str, doc: str | None, argv: list[str] | None) -> argparse.Namespace | None:
    """`--port` and `--socket` of a comparison server that bench.ban_latency starts (bench/peer.py,
    bench/floor.py); None, after a line saying so, when they are missing: `./dev bench` runs every module of
    bench/, and these are not benchmarks."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.{module}", description=(doc or "").split("\n")[0])
    parser.add_argument("--port", type=int)
    parser.add_argument("--socket")
    args, _ = parser.parse_known_args(argv)
    if args.port is None or args.socket is None:
        print(f"# bench.{module}: a server that bench.ban_latency starts (needs --port and --socket)")
        return None
    return args


def cli(*args: str, data_dir: Path, stdin: str | None = None) -> str:
    """Run `python -m cli ARGS --data-dir DIR` from the repo root; returns stdout (raises with stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGUI_")}
    done = subprocess.run([sys.executable, "-m", "cli", *args, "--data-dir", str(data_dir)], cwd=REPO,
                          env=env, input=stdin, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"bangui {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def create_token(data_dir: Path, role: str = "operator", name: str = "bench") -> str:
    """`bangui token create` (the documented way): the token alone on stdout."""
    return cli("token", "create", "--name", name, "--role", role, data_dir=data_dir).strip()


def cpu_seconds(root_pid: int) -> float:
    """User+system CPU seconds used so far by ``root_pid`` and all its live descendants (from /proc).

    Server CPU per request is a load-independent figure: on a shared machine other processes change
    requests/s a lot, but much less the CPU a request costs.
    """
    stats: dict[int, tuple[int, float]] = {}  # pid -> (ppid, cpu seconds)
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo += [child for child, (parent, _) in stats.items() if parent == pid]
    return total


# ---- numbers -----------------------------------------------------------------------------------------
def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (pct in 0..100), like numpy's default."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * pct / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values: Sequence[float]) -> tuple[float, float]:
    """(median, p90)."""
    return percentile(values, 50), percentile(values, 90)


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "FAIL"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table (also valid Markdown), columns padded to their widest cell."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in cells[1:]])


def machine() -> str:
    """One line: date, CPU count and model, Python, kernel (printed with every result)."""
    model = ""
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    return (f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPUs ({model or platform.machine()}); "
            f"Python {platform.python_version()}; Linux {platform.release()}")
