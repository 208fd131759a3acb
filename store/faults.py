"""Storage faults the API answers with a clear code rather than a 500 (issue 8 items 14-16).

- Disk full (SQLite's SQLITE_FULL, or ENOSPC/EDQUOT from a file write) -> 507 `storage_full`. The time of the last
  such failure is kept per process, so readiness fails and health says degraded while writes fail, and recover by
  themselves `RECOVERY_S` after the last failure once the disk has `MIN_FREE_BYTES` free again.
- A lock wait beyond the store's timeout (`diskcache.Timeout`) -> 503 `store_busy`.

The edge (handlers/errors.py) answers these faults wherever they are raised.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from pathlib import Path

import diskcache

from errors import AppError, NoSpace, Unavailable

SQLITE_FULL = 13
RECOVERY_S = 5.0
# Below this much free space the store is reported unwritable before SQLite fails (a diskcache write needs a few
# pages in the WAL; an argon2 user record, a session, a token are each well under 4 KiB).
MIN_FREE_BYTES = 256 * 1024

_last_full: float | None = None  # time.monotonic() of this process's last disk-full failure


class StorageFull(NoSpace):
    code = "storage_full"


class StoreBusy(Unavailable):
    code = "store_busy"


class StoreReplaced(Unavailable):
    code = "store_replaced"


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == SQLITE_FULL) or "disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def note_disk_full() -> None:
    global _last_full
    _last_full = time.monotonic()


def storage_full() -> StorageFull:
    note_disk_full()
    return StorageFull("the data dir's disk is full: bangui cannot save changes; free space on it (or enlarge "
                       "it) and retry: bangui recovers by itself", details={"min_free_bytes": MIN_FREE_BYTES})


def store_busy() -> StoreBusy:
    return StoreBusy("the shared store is busy; retry shortly")


def translated(exc: BaseException) -> AppError | None:
    """The API error for a storage fault, or None if `exc` is not one."""
    if isinstance(exc, diskcache.Timeout):
        return store_busy()
    if is_disk_full(exc):
        return storage_full()
    return None


# An action is refused before its write-ahead audit entry below this much free space (actions/base.py): room for
# the entry, its completion and a ban's history. Lower than MIN_FREE_BYTES, which only degrades readiness.
MIN_ACTION_BYTES = 64 * 1024


def too_little_room(data_dir: Path) -> bool:
    """Is the data dir's disk below MIN_ACTION_BYTES? (a statvfs: cheap enough to ask before each action)"""
    try:
        st = os.statvfs(data_dir)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < MIN_ACTION_BYTES


def write_problem(data_dir: Path) -> str | None:
    """Why the store cannot take writes now (None: it can): little free space, or a recent disk-full failure."""
    try:
        st = os.statvfs(data_dir)
    except OSError as exc:
        return f"data dir {data_dir} cannot be inspected: {exc.strerror}"
    free = st.f_bavail * st.f_frsize
    if free < MIN_FREE_BYTES:
        return f"the data dir's disk is full ({free} bytes free, {MIN_FREE_BYTES} needed): free space on it"
    if _last_full is not None and time.monotonic() - _last_full < RECOVERY_S:
        return "a write failed because the data dir's disk was full moments ago"
    return None
