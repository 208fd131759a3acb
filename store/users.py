"""Users and roles, shared by every process through the store. Users never expire.

A user record is `user:<folded name>` -> {"name", "role", "hash", "uid", "pw", "created", "updated"};
`hash` is argon2id. Names are identities without case ("Admin" is "admin"; `name` keeps the spelling
given at creation). `uid` is random per creation, so a user deleted and created again under the same
name is a different identity; `pw` counts password changes. Sessions and tokens remember both, and
authentication (handlers/security.py) checks them against the live record on every request, so a
deletion, demotion or password change takes effect at once on every worker, whatever races with it.
Hashing and verifying cost tens of milliseconds on purpose: async callers use `store.base.offload`.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import diskcache
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.roles import ROLE_NAMES, parse_role
from errors import Conflict, InvalidInput, NotFound
from store.base import Clock
from store.preferences import preferences_key

MIN_PASSWORD_LENGTH = 12
USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")  # fullmatch: no trailing newline
_PREFIX = "user:"
SETUP_COMPLETE_KEY = "setup:complete"  # read by store/setup.is_complete
# OWASP's argon2id baseline (19 MiB, 2 passes): strong enough, and cheap enough for a small VPS.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verified against when the user does not exist, so a wrong username costs as much as a wrong password.
_DUMMY_HASH = _hasher.hash("bangui-timing-equaliser")


def user_key(name: str) -> str:
    return _PREFIX + name.casefold()


def check_username(name: str) -> str:
    if not USERNAME_RE.fullmatch(name):
        raise InvalidInput("username: 1-64 letters, digits or _.@- starting with a letter or digit",
                           code="invalid_username")
    return name


def check_role(role: str) -> str:
    if role not in ROLE_NAMES:
        parse_role(role)  # raises the one invalid_role error
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters",
                           code="weak_password")
    if len(password) > 1024:
        raise InvalidInput("password must have at most 1024 characters", code="invalid_password")
    return password


def user_fields(user: dict[str, Any]) -> dict[str, Any]:
    """What the API and CLI show of a user (no hash, no credential generation)."""
    return {k: user[k] for k in ("name", "role", "created", "updated")}


class Users:
    def __init__(self, cache: diskcache.Cache, clock: Clock) -> None:
        self.cache = cache
        self.clock = clock

    def get(self, name: str) -> dict[str, Any] | None:
        user: dict[str, Any] | None = self.cache.get(user_key(name))
        return user

    def list(self) -> list[dict[str, Any]]:
        keys = sorted(k for k in self.cache.iterkeys() if k.startswith(_PREFIX))
        return [u for u in (self.cache.get(k) for k in keys) if u is not None]

    def any_exist(self) -> bool:
        return any(k.startswith(_PREFIX) for k in self.cache.iterkeys())

    def create(self, name: str, password: str, role: str, *, only_if_none: bool = False) -> dict[str, Any]:
        """Create a user (hashing here: call from a thread). `only_if_none`: fail unless no user exists."""
        check_username(name)
        check_role(role)
        digest = _hasher.hash(check_password(password))
        now = self.clock()
        record = {"name": name, "role": role, "hash": digest, "uid": secrets.token_hex(8), "pw": 0,
                  "created": now, "updated": now}
        with self.cache.transact():
            if only_if_none and self.any_exist():
                raise Conflict("setup is already complete", code="setup_complete")
            if not self.cache.add(user_key(name), record):
                raise Conflict(f"user {name!r} already exists", code="user_exists")
            self.cache.set(SETUP_COMPLETE_KEY, True)
        return record

    def verify(self, name: str, password: str) -> dict[str, Any] | None:
        """The user if the password matches, else None; same cost whether or not the user exists."""
        user = self.get(name)
        try:
            _hasher.verify(user["hash"] if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        return user

    def update(self, name: str, *, password: str | None = None, role: str | None = None) -> dict[str, Any]:
        """Change the password and/or role in ONE transaction: all or nothing. Every check (password
        strength, role name, last admin) runs before anything is written. A new password bumps `pw`,
        which ends every session of the user; a role change applies to sessions and tokens at their
        next request (authentication reads the live role)."""
        if role is not None:
            check_role(role)
        digest = _hasher.hash(check_password(password)) if password is not None else None
        with self.cache.transact():
            user = self._require(name)
            if role is not None and user["role"] == "admin" and role != "admin" and self._admin_count() <= 1:
                raise Conflict("the last admin cannot be demoted", code="last_admin")
            if role is not None:
                user["role"] = role
            if digest is not None:
                user.update(hash=digest, pw=int(user.get("pw", 0)) + 1)
            user["updated"] = self.clock()
            self.cache.set(user_key(name), user)
        return user

    def delete(self, name: str) -> dict[str, Any]:
        with self.cache.transact():
            user = self._require(name)
            if user["role"] == "admin" and self._admin_count() <= 1:
                raise Conflict("the last admin cannot be deleted", code="last_admin")
            self.cache.delete(user_key(name))
            self.cache.delete(preferences_key(name))  # a user created again later starts afresh
        return user

    def _require(self, name: str) -> dict[str, Any]:
        user = self.get(name)
        if user is None:
            raise NotFound(f"no user {name!r}", code="user_not_found")
        return user

    def _admin_count(self) -> int:
        return sum(1 for u in self.list() if u["role"] == "admin")
