"""Loaded by every Python process started with bench/tracehook on PYTHONPATH (bench/memory.py's `--trace` only):
on SIGUSR2, write this process's top tracemalloc allocations (by source line, and by module) to
$BENCH_TRACEMALLOC_DIR/<pid>.txt. Never part of bangui."""

import os
import signal
import tracemalloc

_DIR = os.environ.get("BENCH_TRACEMALLOC_DIR")


def _dump(signum: int, frame: object) -> None:
    if not tracemalloc.is_tracing():
        return
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    current, peak = tracemalloc.get_traced_memory()
    lines = [f"traced now {current / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB", "", "by line:"]
    lines += [f"{s.size / 1e6:8.2f} MB {s.count:9d} blocks  {s.traceback}" for s in snapshot.statistics("lineno")[:25]]
    modules: dict[str, int] = {}
    for s in snapshot.statistics("filename"):
        path = s.traceback[0].filename
        key = path.split("site-packages/")[-1].split("/")[0] if "site-packages" in path else path
        modules[key] = modules.get(key, 0) + s.size
    lines += ["", "by file / package:"]
    lines += [f"{size / 1e6:8.2f} MB  {name}" for name, size in sorted(modules.items(), key=lambda x: -x[1])[:25]]
    with open(os.path.join(_DIR or ".", f"{os.getpid()}.txt"), "w") as out:
        out.write("\n".join(lines) + "\n")


if _DIR:
    signal.signal(signal.SIGUSR2, _dump)
