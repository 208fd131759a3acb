"""Which store file this is, so that a deleted or replaced store is refused rather than silently doubled
(issue 8 item 15).

Deleting `<data dir>/state/cache.db` under a running server used to split the world: workers kept writing the
unlinked file, the CLI created a new empty one (its tokens 401 on the server, `user list` printed `[]`), and a
restart lost every user, token and session. Now:

- A store carries a random id (key `store:id`), also written to `<data dir>/store-id` (0600) when first seen.
  Opening refuses a data dir whose `store-id` names a store that is not there (the file was deleted: SQLite would
  create an empty one) or another one (replaced); restoring the same store from a backup passes. The id, not an
  inode: inode and device numbers change across restores, overlay filesystems and reboots.
- A running process remembers the (device, inode) of the file it opened and `problem()` compares them (one
  stat): readiness, health and every request (handlers/middleware.StoreGuard) refuse with one clear error.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

ID_KEY = "store:id"
MARKER = "store-id"
DBNAME = "cache.db"


class StoreMissing(Exception):
    """The data dir's store was deleted or replaced (the message says how to recover)."""


def _marker(data_dir: Path) -> str | None:
    try:
        return (data_dir / MARKER).read_text().strip() or None
    except FileNotFoundError:
        return None


def check_before_open(data_dir: Path, cache_dir: Path) -> None:
    """Refuse to open (and so to create) an empty store where a store existed."""
    expected = _marker(data_dir)
    if expected is not None and not (cache_dir / DBNAME).exists():
        raise StoreMissing(_advice(data_dir, cache_dir, "was deleted"))


def adopt(data_dir: Path, cache_dir: Path, cache: Any) -> tuple[int, int]:
    """After opening: check (or give) the store its id; returns the (device, inode) of the file opened."""
    from store.base import write_secret_file  # late: store.base imports nothing of this module, keep it so

    expected = _marker(data_dir)
    actual = cache.get(ID_KEY)
    if actual is None:
        if expected is not None:
            raise StoreMissing(_advice(data_dir, cache_dir, "was replaced by an empty one"))
        cache.add(ID_KEY, secrets.token_hex(16))  # add: two workers starting at once agree on the first
        actual = cache.get(ID_KEY)
    if expected is None:
        write_secret_file(data_dir / MARKER, f"{actual}\n")
    elif expected != actual:
        raise StoreMissing(_advice(data_dir, cache_dir, "was replaced by another store"))
    st = os.stat(cache_dir / DBNAME)
    return st.st_dev, st.st_ino


def problem(db_file: str, opened: tuple[int, int]) -> str | None:
    """Why the store file this process opened (`db_file`, `<data dir>/state/cache.db`) is no longer the data dir's
    (None: it still is). A str path: this runs on every request, and pathlib's joins cost more than the stat."""
    try:
        st = os.stat(db_file)
    except FileNotFoundError:
        return f"the store file {db_file} was deleted while bangui runs: restore it and restart bangui"
    except OSError as exc:
        return f"the store file {db_file} cannot be inspected: {exc.strerror}"
    if (st.st_dev, st.st_ino) != opened:
        return f"the store file {db_file} was replaced while bangui runs: restart bangui"
    return None


def _advice(data_dir: Path, cache_dir: Path, what: str) -> str:
    return (f"the store {cache_dir / DBNAME} {what} (its id is in {data_dir / MARKER}): restore it from a backup; "
            f"or, to start over with no users, tokens or sessions, stop bangui and delete {data_dir / MARKER}")
