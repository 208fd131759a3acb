"""API tokens for curl and scripts: shown once, stored only as a SHA-256 digest. Tokens never expire
from the store by eviction; a token with `expires_at` in the past is refused at lookup.

Records: `token:<digest>` -> {"id", "name", "role", "owner", "owner_uid", "created", "expires_at",
"last_used"} and `token-id:<id>` -> digest (for revoke and listing). `owner` is the creating user (with
that user's `uid`, see store/users.py), or `cli:<os user>` for tokens made with the CLI (no `uid`: the
host's administrator is not a bangui user). A token of a deleted user is dead at once (authentication
checks the owner's `uid`), never listed, and removed with the user. Its effective role is the lower of
its own and its owner's current one. A SHA-256 of 256 random bits needs no slow hash: it cannot be
guessed, and a fast digest keeps Bearer lookups to one inline get.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from typing import Any

import diskcache

from core.roles import TOKEN_ROLE_NAMES, Role, parse_role
from errors import InvalidInput, NotFound
from store.base import Clock
from store.credential_memo import Memo
from store.users import Users

PREFIX = "bgt_"
_KEY = "token:"
_ID = "token-id:"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_fields(record: dict[str, Any]) -> dict[str, Any]:
    """What the API and CLI show of a token (never its digest)."""
    return {k: record[k] for k in ("id", "name", "role", "owner", "created", "expires_at", "last_used")}


def cli_owned(owner: str | None) -> bool:
    return owner is None or owner.startswith("cli:")


class Tokens:
    def __init__(self, cache: diskcache.Cache, clock: Clock, users: Users, memo: Memo | None = None) -> None:
        self.cache = cache
        self.clock = clock
        self.users = users
        self.memo = memo  # store/credential_memo.py: lookups without store reads while nothing changed
        self.refresh_after = 60.0  # last_used precision: one write a minute at most per token

    def create(self, name: str, role: str, owner: str, owner_uid: str | None,
               expires_in_days: int | None = None) -> tuple[str, dict[str, Any]]:
        parse_role(role, TOKEN_ROLE_NAMES)
        if not name or len(name) > 64 or not name.isprintable():
            raise InvalidInput("token name: 1-64 printable characters", code="invalid_token_name")
        if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
            raise InvalidInput("expires_in_days must be between 1 and 3650", code="invalid_expiry")
        token = PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        token_id = secrets.token_hex(8)
        record: dict[str, Any] = {"id": token_id, "name": name, "role": role, "owner": owner,
                                  "owner_uid": owner_uid, "created": now,
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
        key = digest(token)
        record = self.memo.get(key) if self.memo is not None else None
        if record is None:
            tag = self.memo.tag() if self.memo is not None else None
            record = self._read(key)
            if record is None:
                return None
            if self.memo is not None and tag is not None:
                self.memo.put(key, tag, record)
        if record["expires_at"] is not None and self.clock() >= record["expires_at"]:
            return None
        return record

    def _read(self, key: str) -> dict[str, Any] | None:
        """The token's record with the role in effect now (see effective_role), None when it gives no access."""
        record: dict[str, Any] | None = self.cache.get(_KEY + key)
        if record is None:
            return None
        role = self.effective_role(record)
        return None if role is None else dict(record, role=role.name)

    def effective_role(self, record: dict[str, Any]) -> Role | None:
        """The lower of the token's role and its owner's current role; None when the owner is gone."""
        role = Role[record["role"]]
        if cli_owned(record["owner"]):
            return role
        user = self.users.get(record["owner"])
        if user is None or user.get("uid") != record.get("owner_uid"):
            return None
        return min(role, Role[user["role"]])

    def needs_touch(self, record: dict[str, Any]) -> bool:
        return record["last_used"] is None or self.clock() - record["last_used"] >= self.refresh_after

    def touch(self, token: str) -> None:
        key = _KEY + digest(token)
        with self.cache.transact():
            record = self.cache.get(key)
            if record is not None:
                record["last_used"] = self.clock()
                self.cache.set(key, record)

    def list(self) -> list[dict[str, Any]]:
        """Every live token (owners that still exist), role shown as in effect, oldest first."""
        out = []
        for key in list(self.cache.iterkeys()):
            if key.startswith(_ID):
                record = self.cache.get(_KEY + str(self.cache.get(key)))
                role = self.effective_role(record) if record is not None else None
                if role is not None:
                    out.append(dict(token_fields(record), role=role.name))
        return sorted(out, key=lambda r: r["created"])

    def get(self, token_id: str) -> dict[str, Any] | None:
        key = self.cache.get(_ID + token_id)
        record: dict[str, Any] | None = self.cache.get(_KEY + str(key)) if key else None
        return record

    def revoke(self, token_id: str) -> dict[str, Any]:
        with self.cache.transact():
            key = self.cache.get(_ID + token_id)
            record = self.cache.get(_KEY + str(key)) if key else None
            if record is None:
                raise NotFound(f"no token with id {token_id!r}", code="token_not_found")
            self.cache.delete(_KEY + str(key))
            self.cache.delete(_ID + token_id)
        return token_fields(record)

    def revoke_dead(self) -> int:
        """Remove tokens whose owner is gone (a deletion racing a creation leaves such a token: it is
        already refused at lookup; this frees its record). Returns how many."""
        dead = []
        for key in list(self.cache.iterkeys()):
            if key.startswith(_ID):
                record = self.cache.get(_KEY + str(self.cache.get(key)))
                if record is not None and self.effective_role(record) is None:
                    dead.append(record["id"])
        for token_id in dead:
            with contextlib.suppress(NotFound):
                self.revoke(token_id)
        return len(dead)
