"""Loaded by every Python process started with bench/tracehook on PYTHONPATH (bench/memory.py only): on SIGUSR2,
write to $BENCH_TRACEMALLOC_DIR/<pid>.txt what holds this process's memory from the inside: SQLite's own
allocations (sqlite3_memory_used, sqlite3_status64 of its page cache: every connection of the process), glibc's
malloc totals (mallinfo2: in use vs free but still mapped, over every arena) and, when the process runs under
tracemalloc (`--trace`), its top Python allocations. Never part of bangui."""

import ctypes
import ctypes.util
import os
import signal
import tracemalloc

_DIR = os.environ.get("BENCH_TRACEMALLOC_DIR")
SQLITE_STATUS_MEMORY_USED = 0
SQLITE_STATUS_PAGECACHE_OVERFLOW = 2
SQLITE_STATUS_MALLOC_COUNT = 9


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _native() -> list[str]:
    lines = []
    try:
        # The same library the sqlite3 module linked (Debian's Python: the system libsqlite3.so.0).
        lib = ctypes.CDLL("libsqlite3.so.0")
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        lib.sqlite3_memory_highwater.restype = ctypes.c_int64
        cur, high = ctypes.c_int64(), ctypes.c_int64()
        lib.sqlite3_status64(SQLITE_STATUS_PAGECACHE_OVERFLOW, ctypes.byref(cur), ctypes.byref(high), 0)
        lines.append(f"sqlite3 memory used {lib.sqlite3_memory_used() / 1e6:.1f} MB (high water "
                     f"{lib.sqlite3_memory_highwater(0) / 1e6:.1f} MB); page cache {cur.value / 1e6:.1f} MB "
                     f"(high water {high.value / 1e6:.1f} MB)")
    except (OSError, AttributeError) as exc:
        lines.append(f"sqlite3: {exc}")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        m = libc.mallinfo2()
        lines.append(f"malloc: in use {(m.uordblks + m.hblkhd) / 1e6:.1f} MB (mmap'd blocks {m.hblkhd / 1e6:.1f}), "
                     f"free but held {m.fordblks / 1e6:.1f} MB, arenas' total {m.arena / 1e6:.1f} MB")
    except (OSError, AttributeError) as exc:
        lines.append(f"malloc: {exc}")
    lines.append(f"threads: {len(os.listdir('/proc/self/task'))}")
    lines.append(_python_arenas())
    return lines


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(x.split()[1]) for x in status if x.startswith("VmRSS:")) / 1024


def _python_arenas() -> str:
    """Python's small-object allocator (sys._debugmallocstats writes to fd 2: captured through a temp file)."""
    import sys
    import tempfile
    with tempfile.TemporaryFile("w+") as tmp:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        stats = {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in tmp) if v}
    arenas = int(stats.get("# arenas allocated current", "0").replace(",", ""))
    used = int(stats.get("# bytes in allocated blocks", "0").replace(",", ""))
    return f"python: {arenas} arenas of 1 MiB mapped, {used / 1e6:.1f} MB in live small objects"


def _trim() -> str:
    """What glibc's malloc_trim(0) gives back (free pages inside every arena's heaps)."""
    before = _rss_mb()
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError) as exc:
        return f"malloc_trim: {exc}"
    return f"malloc_trim(0): RSS {before:.0f} -> {_rss_mb():.0f} MB"


def _dump(signum: int, frame: object) -> None:
    lines = _native()
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        current, peak = tracemalloc.get_traced_memory()
        lines += [f"traced now {current / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB", "", "by line:"]
        lines += [f"{s.size / 1e6:8.2f} MB {s.count:9d} blocks  {s.traceback}"
                  for s in snapshot.statistics("lineno")[:25]]
        modules: dict[str, int] = {}
        for s in snapshot.statistics("filename"):
            path = s.traceback[0].filename
            key = path.split("site-packages/")[-1].split("/")[0] if "site-packages" in path else path
            modules[key] = modules.get(key, 0) + s.size
        lines += ["", "by file / package:"]
        lines += [f"{size / 1e6:8.2f} MB  {name}" for name, size in sorted(modules.items(), key=lambda x: -x[1])[:25]]
    if os.environ.get("BENCH_TRIM_AT_DUMP"):
        lines.insert(0, _trim())
    with open(os.path.join(_DIR or ".", f"{os.getpid()}.txt"), "w") as out:
        out.write("\n".join(lines) + "\n")


if _DIR:
    signal.signal(signal.SIGUSR2, _dump)
