"""The fleet's shared store: the small part of diskcache's API that users, sessions, tokens, the login limiter
and setup state use, on Redis, so that the same store classes (and the same store tests) run on both backends.

Mapping:
- values are JSON (msgspec), as in store/base.JsonDisk: nothing from Redis is ever unpickled;
- key `k` is the Redis string `bangui:kv:<k>`; `expire=` is a Redis TTL (PX, so fractions of a second count);
- a tag is a Redis set `bangui:tag:<tag>` of the keys written with it; `evict(tag)` deletes them; the set itself
  expires with its longest-lived member;
- `transact()` is one fleet-wide mutex (redis-py's Lock: SET NX PX plus a token-checked release), re-entrant per
  thread like diskcache's: every read-modify-write of the store classes runs under it, on every host at once, so
  the login limiter is exact across all hosts' workers. The lock expires after LOCK_TTL_S if its holder dies.

Faults: every Redis error becomes 503 `fleet_unavailable` (FleetUnavailable), its message naming the setting the
URL came from (BANGUI_FLEET_URL or BANGUI_FLEET_URL_FILE) and telling a Redis that does not answer from one that
answered and refused the password (WRONGPASS, NOAUTH: details.reason `auth`). Sockets time out after
SOCKET_TIMEOUT_S, and after a failure the client refuses at once for BREAKER_S, so that an unreachable Redis
costs an authenticated request well under a second and never stalls an event loop that reads inline.
`redis` is imported only here and only in fleet mode (the optional extra `fleet`); `connect` is the one factory
of Redis clients (sync and asyncio, TLS, Sentinel): fleet/ code makes its clients through it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import msgspec

from errors import Unavailable
from settings import ConfigError, Settings
from store.base import StoreBusy

KV = "bangui:kv:"
TAG = "bangui:tag:"
LOCK_KEY = "bangui:lock:store"
LOCK_TTL_S = 10.0
LOCK_WAIT_S = 2.0  # as store.base.TIMEOUT_S: then 503 store_busy
SOCKET_TIMEOUT_S = 0.7  # a reply; a busy 2-core host needs more than 0.4 s at times (503s seen in tests)
CONNECT_TIMEOUT_S = 0.5
BREAKER_S = 1.0
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def unreachable(setting: str) -> str:
    return (f"the fleet store (Redis at {setting}) does not answer: fail2ban keeps working and bangui reconnects by "
            "itself; check that Redis is running and reachable from this host")


def refused(setting: str, password_given: bool, answer: str) -> str:
    code, what = ("WRONGPASS", "wrong") if password_given else ("NOAUTH", "missing")
    return (f"the fleet store (Redis at {setting}) answered but refused bangui's login ({code}: {answer}): the "
            f"password in {setting} is {what}; put Redis' password in the URL (redis://:PASSWORD@host:port/db, or "
            "redis://USER:PASSWORD@... for an ACL user) and restart bangui")


class FleetUnavailable(Unavailable):
    code = "fleet_unavailable"


def import_redis() -> Any:
    """The `redis` package, or a message that says how to install it."""
    try:
        import redis
    except ImportError:
        raise ConfigError("BANGUI_FLEET_URL is set but the Python package `redis` is missing: "
                          "install bangui with the fleet extra (pip install 'bangui[fleet]')") from None
    return redis


def connect(where: Settings | str, socket_timeout: float = SOCKET_TIMEOUT_S, *,
            connect_timeout: float = CONNECT_TIMEOUT_S, asyncio: bool = False) -> Any:
    """The one way bangui makes a Redis client: `where` is the settings (URL, TLS files, sentinels) or a bare URL
    (tests, tools). Synchronous (thread-safe: a connection pool per process) or, with `asyncio`, redis.asyncio's
    client; both with the given timeouts, never retrying on their own (callers decide: breaker, outbox, retry).

    - `rediss://`: TLS through redis-py, checked against BANGUI_FLEET_TLS_CA_FILE (default: the system's CAs),
      with a client certificate when BANGUI_FLEET_TLS_CERT_FILE/KEY_FILE are set;
    - BANGUI_FLEET_SENTINELS: redis-py's Sentinel client. Every new connection asks the sentinels where the
      primary is, and a connection to a demoted primary (READONLY) is dropped, so after a failover each client
      reaches the promoted replica by itself. The URL gives user, password, database and TLS (sentinels too)."""
    redis = import_redis()
    settings = None if isinstance(where, str) else where
    url = where if isinstance(where, str) else where.fleet_url
    options: dict[str, Any] = {"socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout,
                               "retry_on_timeout": False, **_tls_options(settings, url)}
    if not asyncio:
        options["health_check_interval"] = 30
    if settings is not None and settings.fleet_sentinels:
        return _via_sentinels(redis, settings, url, options, asyncio)
    if asyncio:
        return redis.asyncio.Redis.from_url(url, **options)
    return redis.Redis.from_url(url, **options)


def _tls_options(settings: Settings | None, url: str) -> dict[str, Any]:
    """redis-py's TLS arguments from the settings (ConfigError for TLS files without a rediss:// URL)."""
    if settings is None:
        return {}
    files = {"ssl_ca_certs": settings.fleet_tls_ca_file, "ssl_certfile": settings.fleet_tls_cert_file,
             "ssl_keyfile": settings.fleet_tls_key_file}
    given = {k: v for k, v in files.items() if v}
    if not url.startswith("rediss://"):
        if given:
            raise ConfigError("BANGUI_FLEET_TLS_* files are set but BANGUI_FLEET_URL is not rediss://: write "
                                "rediss://... to reach Redis over TLS, or unset the TLS files")
        return {}
    if bool(settings.fleet_tls_cert_file) != bool(settings.fleet_tls_key_file):
        raise ConfigError("a client certificate needs both BANGUI_FLEET_TLS_CERT_FILE and "
                            "BANGUI_FLEET_TLS_KEY_FILE")
    for name, path in given.items():
        if not os.access(path, os.R_OK):
            setting = {"ssl_ca_certs": "CA", "ssl_certfile": "CERT", "ssl_keyfile": "KEY"}[name]
            raise ConfigError(f"BANGUI_FLEET_TLS_{setting}_FILE={path!r} cannot be read")
    return given


def _via_sentinels(redis: Any, settings: Settings, url: str, options: dict[str, Any], asyncio: bool) -> Any:
    """The primary of BANGUI_FLEET_SENTINEL_SERVICE through redis-py's Sentinel support (no failover of ours)."""
    if not settings.fleet_sentinel_service:
        raise ConfigError("BANGUI_FLEET_SENTINELS is set: set BANGUI_FLEET_SENTINEL_SERVICE to the name the "
                            "sentinels monitor (sentinel monitor NAME host port quorum)")
    sentinels = []
    for part in (p.strip() for p in settings.fleet_sentinels.split(",") if p.strip()):
        host, _, port = part.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"BANGUI_FLEET_SENTINELS: {part!r} is not host:port (e.g. 10.0.0.5:26379)")
        sentinels.append((host.strip("[]"), int(port)))
    parsed = redis.connection.parse_url(url)
    tls = url.startswith("rediss://")
    primary = {k: parsed[k] for k in ("username", "password", "db") if parsed.get(k) is not None}
    ssl = {"ssl": True, **{k: v for k, v in options.items() if k.startswith("ssl_")}} if tls else {}
    timeouts = {k: options[k] for k in ("socket_timeout", "socket_connect_timeout")}
    sentinel_kwargs = {**timeouts, **ssl, "password": settings.fleet_sentinel_password or None}
    module = redis.asyncio.sentinel if asyncio else redis.sentinel
    manager = module.Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs)
    return manager.master_for(settings.fleet_sentinel_service, **{**options, **primary, **ssl})



class RedisCache:
    """diskcache.Cache's subset (get, set, add, delete, transact, evict, iterkeys, close) on Redis."""

    def __init__(self, client: Any, setting: str = "BANGUI_FLEET_URL") -> None:
        self.redis = client
        self.setting = setting  # where the URL came from, for the messages (settings.source)
        self._auth_errors = (import_redis().AuthenticationError,)  # WRONGPASS and NOAUTH (redis-py's mapping)
        self._errors = (import_redis().RedisError,)
        self._last_message = unreachable(setting)  # repeated while the breaker is open
        self._local = threading.local()
        self._down_until = 0.0

    # -- faults ------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        if time.monotonic() < self._down_until:
            raise FleetUnavailable(self._last_message, details={"reason": "recent failure"})
        try:
            yield
        except self._auth_errors as exc:
            self._down_until = time.monotonic() + BREAKER_S
            password = self.redis.connection_pool.connection_kwargs.get("password")
            self._last_message = refused(self.setting, bool(password), str(exc) or type(exc).__name__)
            raise FleetUnavailable(self._last_message, details={"reason": "auth"}) from None
        except self._errors as exc:
            self._down_until = time.monotonic() + BREAKER_S
            self._last_message = unreachable(self.setting)
            raise FleetUnavailable(self._last_message, details={"reason": type(exc).__name__}) from None

    def call(self, fn: Any, *args: Any) -> Any:
        """`fn(client, *args)` with this client's fault handling (503 fleet_unavailable): for fleet/ code."""
        with self.guard():
            return fn(self.redis, *args)

    def reachable(self) -> bool:
        try:
            with self.guard():
                return bool(self.redis.ping())
        except FleetUnavailable:
            return False

    # -- the diskcache subset ----------------------------------------------------------------------------
    def get(self, key: str, default: Any = None, expire_time: bool = False) -> Any:
        with self.guard():
            if expire_time:
                pipe = self.redis.pipeline(transaction=False)
                pipe.get(KV + key)
                pipe.pttl(KV + key)
                raw, ttl = pipe.execute()
            else:
                raw, ttl = self.redis.get(KV + key), -1
        value = default if raw is None else _decode(raw)
        if not expire_time:
            return value
        return value, (time.time() + ttl / 1000.0 if raw is not None and ttl >= 0 else None)

    def set(self, key: str, value: Any, expire: float | None = None, tag: str | None = None, **_: Any) -> bool:
        self._write(key, value, expire, tag, only_new=False)
        return True

    def add(self, key: str, value: Any, expire: float | None = None, tag: str | None = None, **_: Any) -> bool:
        return self._write(key, value, expire, tag, only_new=True)

    def _write(self, key: str, value: Any, expire: float | None, tag: str | None, only_new: bool) -> bool:
        px = max(1, int(expire * 1000)) if expire is not None else None
        with self.guard():
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(KV + key, _encode(value), px=px, nx=only_new)
            if tag is not None:
                pipe.sadd(TAG + tag, key)
                if px is None:
                    pipe.persist(TAG + tag)
                else:  # the set lives as long as its longest-lived member (NX: first TTL, GT: extend)
                    pipe.pexpire(TAG + tag, px, nx=True)
                    pipe.pexpire(TAG + tag, px, gt=True)
            written = pipe.execute()[0]
        return bool(written)

    def delete(self, key: str, retry: bool = False) -> bool:
        with self.guard():
            return bool(self.redis.delete(KV + key))

    def evict(self, tag: str, retry: bool = False) -> int:
        with self.guard():
            members = [m.decode() if isinstance(m, bytes) else m for m in self.redis.smembers(TAG + tag)]
            removed = self.redis.delete(*(KV + m for m in members)) if members else 0
            self.redis.delete(TAG + tag)
        return int(removed)

    def iterkeys(self, reverse: bool = False) -> Iterator[str]:
        with self.guard():
            keys = [k.decode() if isinstance(k, bytes) else k
                    for k in self.redis.scan_iter(match=KV + "*", count=1000)]
        return iter(sorted((k[len(KV):] for k in keys), reverse=reverse))

    @contextlib.contextmanager
    def transact(self, retry: bool = False) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        with self.guard():
            lock = self.redis.lock(LOCK_KEY, timeout=LOCK_TTL_S, sleep=0.002, blocking_timeout=LOCK_WAIT_S)
            acquired = lock.acquire()
        if not acquired:
            raise StoreBusy("the fleet store is busy (its transaction lock was held too long); retry")
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            with contextlib.suppress(*self._errors):  # expired or unreachable: it frees itself after LOCK_TTL_S
                lock.release()

    def expire(self) -> int:
        return 0  # Redis expires keys itself

    def close(self) -> None:
        with contextlib.suppress(*self._errors):
            self.redis.close()
