"""Fleet log entries this host could not publish (Redis unreachable), kept in the data dir until Redis returns:
the shared bans of the host's agent, and the fleet unbans that follow an unban made here (actions/fleet_follow.py,
in whichever worker answered it; `"follow": "1"`).

One JSON entry per line in `<data dir>/fleet-outbox.jsonl` (0600), appended and fsynced: a crash or restart
during the outage loses nothing. `flush` publishes in order and keeps whatever it could not send.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger("bangui.fleet")
NAME = "fleet-outbox.jsonl"
LOCK = "fleet-outbox.lock"


class Outbox:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / NAME
        self.lock_path = Path(data_dir) / LOCK
        # append (the watcher's thread, a worker's unban) and flush (the heartbeat's) never interleave: a flush
        # rewrites the file with what it did not send, and an entry appended meanwhile was lost (seen during a
        # Sentinel failover). A thread lock, and a file lock for the other processes of the host.
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def append(self, entry: dict[str, str]) -> None:
        with self._locked():
            self._append(entry)

    def _append(self, entry: dict[str, str]) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def flush(self, publish: Callable[[dict[str, str]], None]) -> int:
        """Publish every buffered entry in order; on the first failure keep the rest (and re-raise)."""
        with self._locked():
            return self._flush(publish)

    def _flush(self, publish: Callable[[dict[str, str]], None]) -> int:
        if not self.pending():
            return 0
        entries = []
        for line in self.path.read_text(errors="replace").splitlines():
            try:
                if line.strip():
                    entries.append(json.loads(line))
            except ValueError:  # cut short (the disk filled up mid-write): raising would end every next agent here
                log.warning("fleet: dropped a damaged line of %s: %.80r", self.path, line)
        sent = 0
        try:
            for item in entries:
                publish(item)
                sent += 1
        finally:
            rest = entries[sent:]
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.writelines(json.dumps(e) + "\n" for e in rest)
            os.replace(tmp, self.path)
        return sent
