"""Shared bans this host could not publish (Redis unreachable), kept in the data dir until Redis returns.

One JSON entry per line in `<data dir>/fleet-outbox.jsonl` (0600), appended and fsynced: a crash or restart
during the outage loses nothing. `flush` publishes in order and keeps whatever it could not send.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

NAME = "fleet-outbox.jsonl"


class Outbox:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / NAME
        # append (the watcher's thread) and flush (the heartbeat's) never interleave: a flush rewrites the file
        # with what it did not send, and an entry appended meanwhile was lost (seen during a Sentinel failover)
        self._lock = threading.Lock()

    def append(self, entry: dict[str, str]) -> None:
        with self._lock:
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
        with self._lock:
            return self._flush(publish)

    def _flush(self, publish: Callable[[dict[str, str]], None]) -> int:
        if not self.pending():
            return 0
        entries = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
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
