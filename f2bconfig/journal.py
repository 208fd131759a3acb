"""The write-ahead journal of the configuration change in progress: `<data dir>/config/journal.json`.

Written (fsynced, then its directory) BEFORE the first file of a change is touched, removed after the
change is recorded in the change log (or rolled back). It holds the change id, who/what, the
before-image and after-image of every file the change will write, the jails active before, and the
runtime commands that undo it. Only the holder of the config lock writes it, and the kernel releases
that lock when its holder dies: a journal found by the next holder belongs to a dead process, and is
recovered (`Engine.recover`) at server start and before the next change.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from f2bconfig.files import fsync_dir

NAME = "journal.json"


def path_of(data_dir: Path | str) -> Path:
    return Path(data_dir) / "config" / NAME


def write(data_dir: Path | str, intent: dict[str, Any]) -> None:
    path = path_of(data_dir)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(intent, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read(data_dir: Path | str) -> dict[str, Any] | None:
    """The unfinished change, or None. A torn journal cannot exist (written by rename), but an
    unreadable one is treated as absent: nothing was written before it was complete."""
    try:
        intent: dict[str, Any] = json.loads(path_of(data_dir).read_text())
    except (OSError, ValueError):
        return None
    return intent


def clear(data_dir: Path | str) -> None:
    path = path_of(data_dir)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        fsync_dir(path.parent)
