"""Where prometheus_client's multiprocess mode keeps this server's values: `<data dir>/metrics/<server pid>/`.

prometheus_client picks its storage when it is first imported, from PROMETHEUS_MULTIPROC_DIR; `bangui serve`
sets it before hypercorn spawns the workers (which inherit it). A server starts with an empty directory (its
counters start at 0, like any restarted exporter's) and removes it at exit; directories left by servers that
died (their pid is gone) are removed at the next start. Several independent servers on one data dir
(bangui@.service) each keep their own directory: each is its own scrape target.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def multiprocess_dir(data_dir: str | Path) -> Iterator[Path]:
    root = Path(data_dir) / "metrics"
    root.mkdir(mode=0o700, exist_ok=True)
    for old in root.iterdir():
        if old.name.isdigit() and (int(old.name) == os.getpid() or not _alive(int(old.name))):
            shutil.rmtree(old, ignore_errors=True)  # ours from a previous life (pid 1 in a container), or dead
    mine = root / str(os.getpid())
    mine.mkdir(mode=0o700)
    previous = os.environ.get(ENV)
    os.environ[ENV] = str(mine)
    try:
        yield mine
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        shutil.rmtree(mine, ignore_errors=True)
