"""Atomic file replacement: a temp file in the same directory, fsync, rename, fsync of the directory.

The new file keeps the old one's mode and owner (a new file gets 0644 and the directory's owner, as
fail2ban's package files have), so fail2ban still reads it and nothing else gains access.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


fsync_dir = _fsync_dir  # the journal and the change log make their renames durable the same way


def atomic_write(path: Path, data: bytes) -> None:
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        st = path.stat()
        mode, uid, gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
    except FileNotFoundError:
        dst = folder.stat()
        mode, uid, gid = 0o644, dst.st_uid, dst.st_gid
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".bangui-tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            with contextlib.suppress(PermissionError):  # not root: the owner is already ours
                os.fchown(fh.fileno(), uid, gid)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def remove_temps(folder: Path) -> None:
    """Delete the temp files a process killed inside `atomic_write` left in ``folder``."""
    for tmp in folder.glob(".*.bangui-tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        _fsync_dir(path.parent)


def put(path: Path, data: bytes | None) -> None:
    """Write ``data``, or remove the file when ``data`` is None."""
    if data is None:
        remove(path)
    else:
        atomic_write(path, data)
