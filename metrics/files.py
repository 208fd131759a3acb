"""Where prometheus_client's multiprocess mode keeps this server's values: `<root>/<server pid>/`.

`<root>` is on memory (`/dev/shm/bangui-metrics-<uid>-<data dir digest>`, 0700, ours, not a link) when the
host has a /dev/shm, else `<data dir>/metrics`. Why not the data dir first: prometheus_client writes through
memory-mapped files, and a write to a mapped page of a full disk is SIGBUS, which kills the worker (and
hypercorn then stops the server): a full data disk must give 507s, not a crash (issue 8 item 14).

prometheus_client picks its storage when it is first imported, from PROMETHEUS_MULTIPROC_DIR; `bangui serve`
sets it before hypercorn spawns the workers (which inherit it). A server starts with an empty directory (its
counters start at 0, like any restarted exporter's) and removes it at exit; directories left by servers that
died (their pid is gone) are removed at the next start. Several independent servers on one data dir
(bangui@.service) each keep their own directory: each is its own scrape target.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
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


SHM = Path("/dev/shm")


def metrics_root(data_dir: str | Path, shm: Path = SHM) -> Path:
    """The directory holding every server's metrics directory for `data_dir` (see the module docstring)."""
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        digest = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]
        root = shm / f"bangui-metrics-{os.getuid()}-{digest}"
        with contextlib.suppress(FileExistsError):
            root.mkdir(mode=0o700)
        st = os.lstat(root)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
            return root
    root = Path(data_dir) / "metrics"  # no usable /dev/shm (or someone else's directory there)
    root.mkdir(mode=0o700, exist_ok=True)
    return root


@contextlib.contextmanager
def multiprocess_dir(data_dir: str | Path) -> Iterator[Path]:
    root = metrics_root(data_dir)
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
