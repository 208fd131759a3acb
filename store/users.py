"""Users and roles, shared by every process through the store. Users never expire.

A user record is `user:<name>` -> {"name", "role", "hash", "created", "updated"}; `hash` is argon2id.
Hashing and verifying cost tens of milliseconds on purpose: async callers use `store.base.offload`.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

import diskcache
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from errors import Conflict, InvalidInput, NotFound
from store.base import Clock

ROLES = ("viewer", "operator", "admin")
MIN_PASSWORD_LENGTH = 12
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_PREFIX = "user:"
# OWASP's argon2id baseline (19 MiB, 2 passes): strong enough, and cheap enough for a small VPS.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verified against when the user does not exist, so a wrong username costs as much as a wrong password.
_DUMMY_HASH = _hasher.hash("bangui-timing-equaliser")


def role_rank(role: str) -> int:
    return ROLES.index(role)


def check_username(name: str) -> str:
    if not USERNAME_RE.match(name):
        raise InvalidInput("username: 1-64 letters, digits or _.@- starting with a letter or digit",
                           code="invalid_username")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters",
                           code="weak_password")
    if len(password) > 1024:
        raise InvalidInput("password must have at most 1024 characters", code="invalid_password")
    return password


def public(user: dict[str, Any]) -> dict[str, Any]:
    return {k: user[k] for k in ("name", "role", "created", "updated")}


class Users:
    def __init__(self, cache: diskcache.Cache, clock: Clock) -> None:
        self.cache = cache
        self.clock = clock

    def get(self, name: str) -> dict[str, Any] | None:
        user: dict[str, Any] | None = self.cache.get(_PREFIX + name)
        return user

    def list(self) -> list[dict[str, Any]]:
        names = sorted(k[len(_PREFIX):] for k in self.cache.iterkeys() if k.startswith(_PREFIX))
        return [u for u in (self.get(n) for n in names) if u is not None]

    def any_exist(self) -> bool:
        return any(k.startswith(_PREFIX) for k in self.cache.iterkeys())

    def create(self, name: str, password: str, role: str, *, only_if_none: bool = False) -> dict[str, Any]:
        """Create a user (hashing here: call from a thread). `only_if_none`: fail unless no user exists."""
        check_username(name)
        check_role(role)
        digest = _hasher.hash(check_password(password))
        now = self.clock()
        record = {"name": name, "role": role, "hash": digest, "created": now, "updated": now}
        with self.cache.transact():
            if only_if_none and self.any_exist():
                raise Conflict("setup is already complete", code="setup_complete")
            if not self.cache.add(_PREFIX + name, record):
                raise Conflict(f"user {name!r} already exists", code="user_exists")
        return record

    def verify(self, name: str, password: str) -> dict[str, Any] | None:
        """The user if the password matches, else None; same cost whether or not the user exists."""
        user = self.get(name)
        try:
            _hasher.verify(user["hash"] if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        return user

    def set_password(self, name: str, password: str) -> None:
        digest = _hasher.hash(check_password(password))
        with self.cache.transact():
            user = self._require(name)
            user.update(hash=digest, updated=self.clock())
            self.cache.set(_PREFIX + name, user)

    def set_role(self, name: str, role: str) -> dict[str, Any]:
        check_role(role)
        with self.cache.transact():
            user = self._require(name)
            if user["role"] == "admin" and role != "admin" and self._admin_count() <= 1:
                raise Conflict("the last admin cannot be demoted", code="last_admin")
            user.update(role=role, updated=self.clock())
            self.cache.set(_PREFIX + name, user)
        return user

    def delete(self, name: str) -> None:
        with self.cache.transact():
            user = self._require(name)
            if user["role"] == "admin" and self._admin_count() <= 1:
                raise Conflict("the last admin cannot be deleted", code="last_admin")
            self.cache.delete(_PREFIX + name)

    def _require(self, name: str) -> dict[str, Any]:
        user = self.get(name)
        if user is None:
            raise NotFound(f"no user {name!r}", code="user_not_found")
        return user

    def _admin_count(self) -> int:
        return sum(1 for u in self.list() if u["role"] == "admin")


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
