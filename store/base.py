"""The data dir and the diskcache that every worker and every server process on this host shares.

Guarantees:
- Values are JSON (`JsonDisk`): nothing read from disk is ever unpickled; a pickled row is refused.
- Keys are namespaced strings (`session:<id>`, `user:<name>`, ...); `eviction_policy='none'`, so only
  entries written with `expire=` (sessions, counters) ever disappear.
- Operations block (SQLite): async callers run writes, scans and contended work through `offload()`;
  a single small `get` may stay inline (cheaper than a thread hop, see docs/shared-state.md).
- A busy store raises `diskcache.Timeout` after `TIMEOUT_S`, which the API maps to 503 `store_busy`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio.to_thread
import diskcache
import msgspec
from anyio.lowlevel import RunVar
from diskcache.core import MODE_PICKLE

from store.faults import StoreBusy as StoreBusy  # re-exported: the store's 503
from store.faults import StoreReplaced, translated

TIMEOUT_S = 2.0
# Filesystems on which SQLite's POSIX locks are unreliable (sqlite.org/faq.html#q5).
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "afs", "ceph", "glusterfs"}

T = TypeVar("T")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
Clock = Callable[[], float]


class StoreError(Exception):
    """The data dir or the store cannot be used; the message says what and how to fix it."""


class JsonDisk(diskcache.Disk):
    """diskcache serializer that stores values as JSON text and refuses pickles in both directions."""

    def put(self, key: Any) -> tuple[Any, bool]:
        if not isinstance(key, str):
            raise TypeError(f"store keys are strings, got {type(key).__name__}")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise StoreError("refusing a pickled key in the store")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> Any:
        if not read:  # str, so SQLite keeps it as readable TEXT; msgspec is ~5x faster than json here
            value = _encode(value).decode()
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
        if mode == MODE_PICKLE:
            raise StoreError("refusing to unpickle a value in the store (was the data dir tampered with?)")
        data = super().fetch(mode, filename, value, read)
        return data if read else _decode(data)


def prepare_data_dir(path: Path) -> Path:
    """Create the data dir 0700 (or tighten it) and check it is writable local storage."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o700)
    except OSError as exc:
        raise StoreError(f"data dir {path} cannot be created: {exc.strerror}; "
                         "set BANGUI_DATA_DIR to a writable local directory") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StoreError(f"data dir {path} is not writable by uid {os.getuid()}; "
                         "chown it or set BANGUI_DATA_DIR elsewhere")
    fstype = filesystem_type(path)
    if fstype in NETWORK_FILESYSTEMS:
        raise StoreError(f"data dir {path} is on a {fstype} filesystem where SQLite locking is unsafe; "
                         "use a local disk for BANGUI_DATA_DIR")
    return path


def filesystem_type(path: Path, mounts_text: str | None = None) -> str:
    """The filesystem type of the mount holding `path`, from /proc/self/mounts ('' if unknown)."""
    if mounts_text is None:
        try:
            mounts_text = Path("/proc/self/mounts").read_text()
        except OSError:
            return ""
    mounts = mounts_text.splitlines()
    target = str(path.resolve())
    best, best_type = "", ""
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount_point = parts[1].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, parts[2]
    return best_type


# Every SQLite file of the data dir (the store's cache, the audit log, the view of current bans, the history
# archive) keeps a WAL, and they share one disk: each WAL is checkpointed every `checkpoint` bytes and truncated
# back to `limit` after that, both at most WAL_SHARE of the disk's free space when the file is opened. SQLite's
# default (checkpoint at 1000 pages, 4 MiB, and the file kept that size) kept every write failing with SQLITE_FULL
# on a small disk until the mount was enlarged (issue 8 item 14); with four files of ~800 KiB each, a 3 MiB data
# disk was full before anything else was written.
WAL_SHARE = 32
WAL_FLOOR_BYTES = 64 << 10
SMALL_WAL = (400 << 10, 1 << 20)  # (checkpoint, limit) of the small-record stores: checkpoints are cheap


def wal_sizes(path: Path, checkpoint: int = SMALL_WAL[0], limit: int = SMALL_WAL[1]) -> tuple[int, int]:
    """(checkpoint interval, WAL size limit) in bytes for the SQLite file `path`: the wanted sizes, but at most
    1/WAL_SHARE of its disk's free space (at least WAL_FLOOR_BYTES)."""
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return checkpoint, limit
    cap = max(WAL_FLOOR_BYTES, st.f_bavail * st.f_frsize // WAL_SHARE)
    return min(checkpoint, cap), min(limit, cap)


def bound_wal(conn: Any, path: Path, checkpoint: int = SMALL_WAL[0], limit: int = SMALL_WAL[1]) -> None:
    """Set the WAL bounds of `wal_sizes` on a connection to `path` (journal_mode WAL already set)."""
    checkpoint, limit = wal_sizes(path, checkpoint, limit)
    page_bytes = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute(f"PRAGMA wal_autocheckpoint = {max(1, checkpoint // page_bytes)}")
    conn.execute(f"PRAGMA journal_size_limit = {limit}")


# Page cache per connection, and diskcache opens one per thread (up to THREADS per worker): its default (8,192
# pages, 32 MiB) let one worker's SQLite caches peak above 100 MB under bench/memory.py's load (issue 25 item 5);
# the store's records are small and its reads go through the 64 MiB memory map anyway.
CACHE_SETTINGS = {"sqlite_cache_size": 512}


class GuardedCache(diskcache.Cache):
    """diskcache opens a connection per thread on first use, and SQLite creates a missing file on connect: after the
    store file was deleted, a new thread would silently start a second, empty store (issue 8 item 15). Once open,
    a new connection is refused when the file is gone."""

    _guarded = False

    @property
    def _con(self) -> Any:
        if self._guarded and getattr(self._local, "con", None) is None \
                and not os.path.exists(os.path.join(self.directory, "cache.db")):
            raise StoreReplaced(f"the store file {self.directory}/cache.db was deleted while bangui runs: "
                                "restore it and restart bangui")
        return super()._con


def open_cache(directory: Path) -> diskcache.Cache:
    """Open (creating) one shared diskcache below the data dir, reporting the real SQLite error."""
    # diskcache keeps these in its Settings table and sets them on every connection it opens (per thread)
    checkpoint, limit = wal_sizes(directory / "cache.db")
    wal_settings = {"sqlite_wal_autocheckpoint": max(1, checkpoint // 4096), "sqlite_journal_size_limit": limit}
    try:
        cache = GuardedCache(str(directory), disk=JsonDisk, timeout=TIMEOUT_S,
                             eviction_policy="none", size_limit=2**40, **wal_settings, **CACHE_SETTINGS)
    except Exception as exc:  # sqlite3.Error, OSError: report it as is, with the path
        raise StoreError(f"store at {directory} cannot be opened: {type(exc).__name__}: {exc}") from None
    for name in os.listdir(directory):
        if name.startswith("cache.db"):
            os.chmod(directory / name, 0o600)
    cache._guarded = True
    return cache


def write_secret_file(path: Path, text: str) -> None:
    """Write a file only the owner can read (0600), atomically. The temp name is per process and call:
    workers bootstrapping at once each write their own (a shared `.tmp` made one's rename fail)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


async def offload(func: Callable[..., T], *args: Any) -> T:
    """Run blocking store work in a worker thread; a lock wait beyond TIMEOUT_S becomes 503 store_busy, a full
    disk 507 storage_full (store.faults)."""
    _trimmer.busy.set()
    try:
        return await anyio.to_thread.run_sync(func, *args)
    except Exception as exc:
        error = translated(exc)
        if error is None:
            raise
        raise error from None


# Threads for blocking work, per worker process: anyio's default is 40. Deliberate: enough for store I/O while
# a few slow calls wait on locks, few enough that 40 concurrent requests cannot each hold a thread.
THREADS = 16
# argon2 hashes (19 MiB and ~50 ms of CPU each) at once, per worker process: at most 2 (2 cores is common); more
# only queue in memory. A separate limiter, so logins waiting to hash never starve ordinary store reads.
HEAVY_THREADS = 2
_heavy: RunVar[anyio.CapacityLimiter] = RunVar("bangui_heavy_limiter")  # one per event loop


def configure_threads() -> None:
    """Set the worker thread limit and start the memory trimmer (call once per process, in the event loop, at
    lifespan start)."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    _trimmer.start()


# Seconds after the first offloaded call since the last trim before glibc's heaps are trimmed again.
TRIM_DELAY_S = 5.0
# glibc malloc arenas per process (its default: 8 per core, one per thread that allocates at once): with fewer,
# the memory one thread's big answer freed is reused by the next thread's instead of each thread's heap keeping
# its own peak. The GIL runs one thread's Python at a time, so two arenas rarely contend.
MALLOC_ARENAS = 2
M_ARENA_MAX = -8  # mallopt's parameter number (glibc malloc.h)


class _Trimmer:
    """Hands the memory that busy spells freed back to the system (issue 25 item 5).

    Measured with bench/memory.py after 100,000 bans and mixed load: a worker held 300-500 MB RSS of which ~30 MB
    were live Python objects and ~30 MB SQLite's caches; glibc kept 140-300 MB of freed memory in the heaps of
    the threads that had built big answers (a thread's heap only shrinks from its top, and a few objects that
    outlive a request pin the rest). `malloc_trim(0)` returns the free pages inside every heap: a daemon thread
    calls it TRIM_DELAY_S after offloaded work resumed (`busy`), so an idle worker never wakes (issue 20 item 6)
    and a busy one trims at most every TRIM_DELAY_S (~10 ms of CPU when there is little to return). Only where
    the C library is glibc; elsewhere nothing runs."""

    def __init__(self) -> None:
        self.busy = threading.Event()
        self._pid = 0
        self._trim: Callable[[int], int] | None = None

    def start(self) -> None:
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            self._trim = libc.malloc_trim
            if "MALLOC_ARENA_MAX" not in os.environ:  # an operator's own setting wins
                libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)
        except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim this way
            return
        threading.Thread(target=self._run, name="bangui-malloc-trim", daemon=True).start()

    def _run(self) -> None:
        assert self._trim is not None
        while True:
            self.busy.wait()
            time.sleep(TRIM_DELAY_S)
            self.busy.clear()
            self._trim(0)


_trimmer = _Trimmer()


async def offload_heavy(func: Callable[..., T], *args: Any) -> T:
    """`offload` for CPU- and memory-heavy work (argon2 hashing and verifying): at most HEAVY_THREADS at once."""
    try:
        limiter = _heavy.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(HEAVY_THREADS)
        _heavy.set(limiter)
    async with limiter:
        return await offload(func, *args)


class SharedCache(Protocol):
    """The part of diskcache.Cache's API the identity stores (users, sessions, tokens, the login limiter, setup)
    and the blocklists use: `diskcache.Cache` itself, `store.credential_memo.Announcing` over it (one host), and
    `store.redis_backend.RedisCache` (the fleet's Redis) all satisfy it (mypy checks the two of ours; diskcache
    ships no types: tests/store/test_shared_cache.py checks its signatures)."""

    def get(self, key: str, default: Any = None, expire_time: bool = False) -> Any: ...

    def set(self, key: str, value: Any, expire: float | None = None, tag: str | None = None) -> bool: ...

    def add(self, key: str, value: Any, expire: float | None = None, tag: str | None = None) -> bool: ...

    def delete(self, key: str, retry: bool = False) -> bool: ...

    def evict(self, tag: str, retry: bool = False) -> int: ...

    def iterkeys(self, reverse: bool = False) -> Iterator[str]: ...

    def transact(self, retry: bool = False) -> AbstractContextManager[None]: ...

    def expire(self) -> int: ...

    def close(self) -> None: ...

