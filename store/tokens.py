"""API tokens for curl and scripts: shown once, stored only as a SHA-256 digest. Tokens never expire
from the store by eviction; a token with `expires_at` in the past is refused at lookup.

Records: `token:<digest>` -> {"id", "name", "role", "owner", "created", "expires_at", "last_used"} and
`token-id:<id>` -> digest (for revoke and listing). `owner` is the creating user, or None for tokens
made with the CLI by the host's administrator. A SHA-256 of 256 random bits needs no slow hash: it
cannot be guessed, and a fast digest keeps Bearer lookups to one inline get.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import diskcache

from errors import InvalidInput, NotFound
from store.base import Clock
from store.users import check_role, role_rank

PREFIX = "bgt_"
_KEY = "token:"
_ID = "token-id:"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in ("id", "name", "role", "owner", "created", "expires_at", "last_used")}


class Tokens:
    def __init__(self, cache: diskcache.Cache, clock: Clock) -> None:
        self.cache = cache
        self.clock = clock
        self.refresh_after = 60.0  # last_used precision: one write a minute at most per token

    def create(self, name: str, role: str, owner: str | None, expires_in_days: int | None = None,
               ) -> tuple[str, dict[str, Any]]:
        check_role(role)
        if not name or len(name) > 64:
            raise InvalidInput("token name: 1-64 characters", code="invalid_token_name")
        if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
            raise InvalidInput("expires_in_days must be between 1 and 3650", code="invalid_expiry")
        token = PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        token_id = secrets.token_hex(8)
        record: dict[str, Any] = {"id": token_id, "name": name, "role": role, "owner": owner, "created": now,
                  "expires_at": now + expires_in_days * 86400 if expires_in_days else None,
                  "last_used": None}
        key = digest(token)
        with self.cache.transact():
            self.cache.set(_KEY + key, record)
            self.cache.set(_ID + token_id, key)
        return token, record

    def lookup(self, token: str) -> dict[str, Any] | None:
        if not token.startswith(PREFIX):
            return None
        record: dict[str, Any] | None = self.cache.get(_KEY + digest(token))
        if record is None or (record["expires_at"] is not None and self.clock() >= record["expires_at"]):
            return None
        return record

    def needs_touch(self, record: dict[str, Any]) -> bool:
        return record["last_used"] is None or self.clock() - record["last_used"] >= self.refresh_after

    def touch(self, token: str) -> None:
        key = _KEY + digest(token)
        with self.cache.transact():
            record = self.cache.get(key)
            if record is not None:
                record["last_used"] = self.clock()
                self.cache.set(key, record)

    def list(self, owner: str | None = None, everyone: bool = True) -> list[dict[str, Any]]:
        out = []
        for key in list(self.cache.iterkeys()):
            if key.startswith(_ID):
                record = self.cache.get(_KEY + str(self.cache.get(key)))
                if record is not None and (everyone or record["owner"] == owner):
                    out.append(public(record))
        return sorted(out, key=lambda r: r["created"])

    def revoke(self, token_id: str) -> dict[str, Any]:
        with self.cache.transact():
            key = self.cache.get(_ID + token_id)
            record = self.cache.get(_KEY + str(key)) if key else None
            if record is None:
                raise NotFound(f"no token with id {token_id!r}", code="token_not_found")
            self.cache.delete(_KEY + str(key))
            self.cache.delete(_ID + token_id)
        return public(record)

    def revoke_owned_by(self, owner: str) -> int:
        owned = [t["id"] for t in self.list() if t["owner"] == owner]
        for token_id in owned:
            self.revoke(token_id)
        return len(owned)

    def cap_role(self, owner: str, role: str) -> None:
        """After `owner` is demoted, no token of theirs may keep a higher role."""
        for record in self.list():
            if record["owner"] == owner and role_rank(record["role"]) > role_rank(role):
                with self.cache.transact():
                    key = _KEY + str(self.cache.get(_ID + record["id"]))
                    stored = self.cache.get(key)
                    if stored is not None:
                        self.cache.set(key, dict(stored, role=role))
