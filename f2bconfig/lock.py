"""One configuration change at a time across every worker and server process on the host.

A non-blocking flock on `<data dir>/config/change.lock`. flock belongs to the open file description,
so two threads of one process exclude each other too, and the kernel releases it when the holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from f2bconfig.errors import ConfigBusy


@contextlib.contextmanager
def config_lock(data_dir: Path | str) -> Iterator[None]:
    folder = Path(data_dir) / "config"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(folder / "change.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigBusy("another configuration change is running; retry when it is done") from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
