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

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import diskcache
import msgspec
from diskcache.core import MODE_PICKLE

from errors import Unavailable

TIMEOUT_S = 2.0
# Filesystems on which SQLite's POSIX locks are unreliable (sqlite.org/faq.html#q5).
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "afs", "ceph", "glusterfs"}

T = TypeVar("T")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
Clock = Callable[[], float]


class StoreError(Exception):
    """The data dir or the store cannot be used; the message says what and how to fix it."""


class StoreBusy(Unavailable):
    code = "store_busy"


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


def open_cache(directory: Path) -> diskcache.Cache:
    """Open (creating) one shared diskcache below the data dir, reporting the real SQLite error."""
    try:
        cache = diskcache.Cache(str(directory), disk=JsonDisk, timeout=TIMEOUT_S,
                                eviction_policy="none", size_limit=2**40)
    except Exception as exc:  # sqlite3.Error, OSError: report it as is, with the path
        raise StoreError(f"store at {directory} cannot be opened: {type(exc).__name__}: {exc}") from None
    for name in os.listdir(directory):
        if name.startswith("cache.db"):
            os.chmod(directory / name, 0o600)
    return cache


def write_secret_file(path: Path, text: str) -> None:
    """Write a file only the owner can read (0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


# argon2id hashes take 19 MiB and ~50 ms each: at most this many at once per process, whatever the
# thread pool's size (40), so a burst of logins cannot take 760 MiB on a small VPS.
HASH_CONCURRENCY = 2
_hashing = threading.BoundedSemaphore(HASH_CONCURRENCY)


def _bounded(func: Callable[..., T], *args: Any) -> T:
    with _hashing:
        return func(*args)


async def offload_heavy(func: Callable[..., T], *args: Any) -> T:
    """`offload` for password hashing and verifying: at most HASH_CONCURRENCY at once per process."""
    return await offload(_bounded, func, *args)


async def offload(func: Callable[..., T], *args: Any) -> T:
    """Run blocking store work in a worker thread; a lock wait beyond TIMEOUT_S becomes 503 store_busy."""
    try:
        return await anyio.to_thread.run_sync(func, *args)
    except diskcache.Timeout:
        raise StoreBusy("the shared store is busy; retry shortly") from None
