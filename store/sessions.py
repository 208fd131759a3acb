"""Server-side browser sessions, visible to every worker and process at once.

The cookie carries a random 256-bit id; the store keeps only its SHA-256 (`session:<digest>`), so a
copy of the data dir does not hand out live sessions. A record holds user, role, created, last seen
and client address. Sessions end after `idle` seconds without use (sliding) or `lifetime` seconds after
login, whichever comes first; diskcache's `expire=` removes them, and `lookup` re-checks with the
injected clock so expiry is exact. Each record is tagged with its user so that "log out everywhere",
a password change ends all of that user's sessions with one `evict(tag)`. A record also holds the
user's `uid` and password generation `pw` (store/users.py): authentication accepts it only while both
match the live user record, and takes the role from that record, so a deletion, password change or
demotion racing a login can never leave a session with more than the user has now.

Hot path: `lookup` is one small inline get; `touch` (a write) is only needed when `last_seen` is older
than `refresh_after` seconds, which keeps writes off most authenticated requests.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import diskcache

from store.base import Clock
from store.credential_memo import Memo
from store.users import Users

_PREFIX = "session:"


def digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def user_tag(name: str) -> str:
    return "sessions-of:" + name.casefold()


class Sessions:
    def __init__(self, cache: diskcache.Cache, clock: Clock, users: Users, idle: float, lifetime: float,
                 memo: Memo | None = None) -> None:
        self.cache = cache
        self.memo = memo  # store/credential_memo.py: lookups without store reads while nothing changed
        self.users = users
        self.clock = clock
        self.idle = idle
        self.lifetime = lifetime
        # Refresh last_seen at most this often: a write per request would halve throughput.
        self.refresh_after = min(60.0, idle / 4)

    def create(self, user: dict[str, Any], client: str) -> tuple[str, dict[str, Any]]:
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        record = {"user": user["name"], "uid": user.get("uid"), "pw": user.get("pw", 0), "role": user["role"],
                  "created": now, "last_seen": now, "client": client, "expires_at": now + self.lifetime}
        self._write(digest(session_id), record, now)
        return session_id, record

    def lookup(self, session_id: str) -> dict[str, Any] | None:
        key = digest(session_id)
        record = self.memo.get(key) if self.memo is not None else None
        if record is None:
            tag = self.memo.tag() if self.memo is not None else None
            record = self._read(key)
            if record is None:
                return None
            if self.memo is not None and tag is not None:
                self.memo.put(key, tag, record)
        now = self.clock()
        if now >= record["expires_at"] or now - record["last_seen"] >= self.idle:
            return None
        return record

    def _read(self, key: str) -> dict[str, Any] | None:
        """The session's record with the role in effect now, None when its user no longer accepts it."""
        record: dict[str, Any] | None = self.cache.get(_PREFIX + key)
        if record is None:
            return None
        user = self.users.get(record["user"])
        if user is None or user.get("uid") != record.get("uid") or user.get("pw", 0) != record.get("pw", 0):
            return None  # deleted (even if created again), or the password changed since this login
        return dict(record, role=user["role"])  # the role in effect now, not the one at login

    def needs_touch(self, record: dict[str, Any]) -> bool:
        return self.clock() - record["last_seen"] >= self.refresh_after

    def touch(self, session_id: str, record: dict[str, Any]) -> None:
        key = digest(session_id)
        if self.cache.get(_PREFIX + key) is None:  # logged out meanwhile: do not resurrect it
            return
        now = self.clock()
        self._write(key, dict(record, last_seen=now), now)

    def delete(self, session_id: str) -> None:
        self.cache.delete(_PREFIX + digest(session_id))

    def end_all(self, user: str) -> int:
        """End every session of `user` (all workers see it at once); returns how many ended."""
        return int(self.cache.evict(user_tag(user)))

    def idle_deadline(self, record: dict[str, Any]) -> float:
        return float(min(record["expires_at"], record["last_seen"] + self.idle))

    def _write(self, key: str, record: dict[str, Any], now: float) -> None:
        ttl = max(1.0, self.idle_deadline(record) - now)
        self.cache.set(_PREFIX + key, record, expire=ttl, tag=user_tag(record["user"]))
