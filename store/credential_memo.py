"""A per-process memo of credential lookups that stays exact across processes (issue 13: cookie throughput).

Authenticating a request reads two store keys, the credential (session or token) and its user's live record:
~50 us of a worker's CPU, most of what an authenticated request costs more than a public one. A process may
reuse what it read as long as nothing in the identity store changed since:

- Every committed write to the identity store (users, sessions, tokens, login limiter, setup state: the
  `Announcing` wrapper that Store puts around their cache) replaces a random 64-bit value in
  `<data dir>/identity-epoch`, which every process memory-maps. The write commits first, the value changes after.
- A lookup reads the value BEFORE it reads the store and files its result under it; the result is reused only
  while the value is unchanged. A write that committed after that store read changes the value after it, so the
  next lookup reads the store again: a revocation, deletion, demotion or logout in any process is seen by every
  other process's next request, as without the memo.
- Time still counts on every use (token expiry, session idle and lifetime): only store reads are saved.
- A result is reused for at most MAX_AGE_S even when the value did not change: a bound on staleness should a
  process die between a commit and its announcement.

Fleet mode keeps identity in Redis, shared by hosts that share no file: the memo is off there (Store passes None).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FILENAME = "identity-epoch"
MAX_AGE_S = 2.0
MAX_ENTRIES = 4096  # distinct live credentials remembered per process (then the memo starts over)


class Epoch:
    """The shared value: 8 bytes in a 0600 file, memory-mapped read-only; `bump` writes a new random value."""

    def __init__(self, data_dir: Path) -> None:
        path = data_dir / FILENAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if os.fstat(fd).st_size < 8:  # written, not truncated: a later write never needs a new block
                os.pwrite(fd, secrets.token_bytes(8), 0)
            self._map = mmap.mmap(fd, 8, prot=mmap.PROT_READ)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def value(self) -> bytes:
        return self._map[:8]

    def bump(self) -> None:
        os.pwrite(self._fd, secrets.token_bytes(8), 0)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


class Memo:
    """credential digest -> (epoch value read before the store read, when, result)."""

    def __init__(self, epoch: Epoch, clock: Any = time.monotonic) -> None:
        self.epoch = epoch
        self.clock = clock
        self._entries: dict[str, tuple[bytes, float, dict[str, Any]]] = {}

    def recall(self, key: str, read: Callable[[str], dict[str, Any] | None]) -> dict[str, Any] | None:
        """The memoised result for `key`, else `read(key)` from the store, filed under the epoch read before it
        (a lookup that found nothing is not memoised: random tokens must not fill the memo)."""
        found = self.get(key)
        if found is not None:
            return found
        tag = self.tag()
        result = read(key)
        if result is not None:
            self.put(key, tag, result)
        return result

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        tag, at, result = entry
        if tag != self.epoch.value() or self.clock() - at >= MAX_AGE_S:
            del self._entries[key]
            return None
        return dict(result)  # callers may change their copy

    def tag(self) -> tuple[bytes, float]:
        """Read before the store read whose result `put` files."""
        return self.epoch.value(), self.clock()

    def put(self, key: str, tag: tuple[bytes, float], result: dict[str, Any]) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (tag[0], tag[1], dict(result))


class Announcing:
    """The identity store's cache (diskcache), announcing each committed write through `epoch.bump()`.

    A write inside `transact()` is announced when the outermost transaction ends (after its commit); a write
    outside one is its own transaction, announced when it returns. Reads pass through."""

    def __init__(self, cache: Any, epoch: Epoch) -> None:
        self._cache = cache
        self._epoch = epoch
        self._local = threading.local()

    def __getattr__(self, name: str) -> Any:  # get, iterkeys, close, ...: reads and housekeeping
        return getattr(self._cache, name)

    def set(self, *args: Any, **kw: Any) -> Any:
        result = self._cache.set(*args, **kw)
        self._wrote()
        return result

    def add(self, *args: Any, **kw: Any) -> Any:
        return self._wrote_if(self._cache.add(*args, **kw))

    def delete(self, *args: Any, **kw: Any) -> Any:
        return self._wrote_if(self._cache.delete(*args, **kw))

    def evict(self, *args: Any, **kw: Any) -> Any:
        return self._wrote_if(self._cache.evict(*args, **kw))

    def _wrote_if(self, result: Any) -> Any:
        """`result` of a write that reports whether it changed anything (added, deleted, evicted)."""
        if result:
            self._wrote()
        return result

    @contextlib.contextmanager
    def transact(self, retry: bool = False) -> Iterator[None]:
        local = self._local
        depth = getattr(local, "depth", 0)
        local.depth = depth + 1
        try:
            with self._cache.transact(retry):
                yield
        finally:
            local.depth = depth
            if depth == 0 and getattr(local, "dirty", False):
                local.dirty = False
                self._epoch.bump()  # committed (or rolled back: an extra announcement costs one store read)

    def _wrote(self) -> None:
        if getattr(self._local, "depth", 0):
            self._local.dirty = True
        else:
            self._epoch.bump()
