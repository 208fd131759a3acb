"""A host's replica of the fleet's identity (store/replica.py, store/fleet_cache.py) against a real redis-server that
is stopped, restarted empty or slowed down (issue 21 items 1 and 5). The whole-fleet proofs are in
test_identity_outage.py."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from settings import Settings
from store import Store
from store.redis_backend import FleetUnavailable
from store.replica import OFFER_WINDOW_S
from tests.fixtures.redis import RedisServer
from tests.fixtures.slow_proxy import DelayingProxy

pytestmark = pytest.mark.fleet
PASSWORD = "correct horse battery"


def open_store(path: Path, url: str, **changes: object) -> Store:
    return Store(Settings.for_tests(data_dir=str(path), fleet_url=url, **changes))


def refresh(store: Store) -> str:
    assert store.replica is not None
    return store.replica.refresh(store.fleet.redis)


def test_during_an_outage_the_replica_authenticates_and_only_host_local_writes_happen(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis", persist=True).start()
    store = open_store(tmp_path / "data", redis_server.url, login_max_failures=3)
    try:
        ann = store.users.create("ann", PASSWORD, "operator")
        sid, _ = store.sessions.create(ann, "192.0.2.1")
        kept, _ = store.tokens.create("kept", "viewer", "ann", ann["uid"])
        revoked, record = store.tokens.create("revoked", "viewer", "ann", ann["uid"])
        assert refresh(store) == "ok"
        store.tokens.revoke(record["id"])  # after the last refresh: written through to the replica at once
        redis_server.stop()
        assert store.sessions.lookup(sid) is not None and store.tokens.lookup(kept) is not None
        assert store.tokens.lookup(revoked) is None  # a revocation before the outage holds
        assert store.users.verify("ann", PASSWORD) is not None
        # a login here: the host-local limiter (exact on this host), then a session, written to Redis later
        assert [store.login_limiter.reserve("198.51.100.9", "ann") for _ in range(4)][-1] > 0
        new_sid, _ = store.sessions.create(ann, "192.0.2.2")
        assert store.sessions.lookup(new_sid) is not None
        store.tokens.touch(kept)  # last-used: kept here
        for change in (lambda: store.users.create("bob", PASSWORD, "viewer"),
                       lambda: store.users.update("ann", role="viewer"),
                       lambda: store.tokens.create("t", "viewer", "ann", ann["uid"]),
                       lambda: store.sessions.end_all("ann")):
            with pytest.raises(FleetUnavailable, match="must reach every host or not happen"):
                change()
        assert store.fleet.degradation(False)["status"] == "degraded"
        redis_server.start()  # with its AOF: the fleet's identity as it was
        time.sleep(1.1)  # past the client's breaker (store/redis_backend.BREAKER_S)
        assert refresh(store) == "ok"
        assert redis_server.client().exists("bangui:kv:session:" + __import__("hashlib").sha256(
            new_sid.encode()).hexdigest())  # the outage's login now counts on every host
        assert store.sessions.lookup(new_sid) is not None
        assert store.users.get("bob") is None and store.users.get("ann")["role"] == "operator"  # type: ignore[index]
    finally:
        store.close()
        redis_server.stop()


def test_a_host_that_never_reached_redis_refuses_rather_than_inventing_identity(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis").start()
    redis_server.stop()
    store = open_store(tmp_path / "data", redis_server.url)
    try:
        with pytest.raises(FleetUnavailable):
            store.users.verify("ann", PASSWORD)
    finally:
        store.close()


def test_redis_restarted_empty_gets_the_newest_replica_back_once(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis").start()
    old, new = (open_store(tmp_path / name, redis_server.url) for name in ("old", "new"))
    try:
        ann = new.users.create("ann", PASSWORD, "admin")
        token, _ = new.tokens.create("ops", "admin", "ann", ann["uid"])
        assert refresh(old) == "ok"
        new.users.create("bob", PASSWORD, "viewer")
        assert refresh(new) == "ok"  # newer than old's: it knows bob
        redis_server.stop()
        redis_server.start()  # empty: no AOF
        time.sleep(1.1)
        assert refresh(old) == refresh(new) == "empty"  # nothing mirrored: the replicas keep the identity
        assert old.tokens.lookup(token) is not None  # read from the replica until one is written back
        assert [u["name"] for u in new.users.list()] == ["ann", "bob"]
        now = time.time()
        r = new.shared.redis
        assert old.replica and new.replica
        assert not old.replica.reseed_claim(r, "old", now) and not new.replica.reseed_claim(r, "new", now)
        later = now + OFFER_WINDOW_S + 0.1
        assert not old.replica.reseed_claim(r, "old", later)  # not the newest
        assert new.replica.reseed_claim(r, "new", later)
        summary = new.replica.write_back(r)
        assert summary["users"] == 2
        assert not old.replica.reseed_claim(r, "old", later + 100)  # written back already: once
        assert refresh(old) == "ok" and old.users.get("bob") is not None
        assert old.tokens.lookup(token) is not None
    finally:
        old.close()
        new.close()
        redis_server.stop()


def test_identity_changes_wait_while_redis_restarted_empty_is_reseeded_so_the_write_back_undoes_none(
        tmp_path: Path) -> None:
    """Between an empty restart and the write-back of the newest replica, a revocation (a token, a bouncer key)
    made on a host whose replica is not the one written back was undone by the write-back: the key worked again
    on every host. Meanwhile such changes are refused (503, retry) as during an outage; sessions wait here."""
    redis_server = RedisServer(tmp_path / "redis").start()
    old, new = (open_store(tmp_path / name, redis_server.url) for name in ("old", "new"))
    try:
        ann = new.users.create("ann", PASSWORD, "admin")
        token, record = new.tokens.create("ops", "admin", "ann", ann["uid"])
        key, _ = new.bouncers.create("edge")
        assert refresh(old) == "ok" and refresh(new) == "ok"  # new's is the newest
        redis_server.stop()
        redis_server.start()  # empty
        time.sleep(1.1)  # past the client's breaker (store/redis_backend.BREAKER_S)
        assert refresh(old) == refresh(new) == "empty"
        for change in (lambda: old.tokens.revoke(record["id"]), lambda: old.bouncers.delete("edge"),
                       lambda: old.users.create("bob", PASSWORD, "viewer")):
            with pytest.raises(FleetUnavailable, match="restarted empty"):
                change()
        sid, _ = old.sessions.create(ann, "192.0.2.1")  # a login: here now, in Redis after the write-back
        r, now = new.shared.redis, time.time()
        assert old.replica is not None and new.replica is not None
        assert not old.replica.reseed_claim(r, "old", now) and not new.replica.reseed_claim(r, "new", now)
        assert new.replica.reseed_claim(r, "new", now + OFFER_WINDOW_S + 0.1)
        new.replica.write_back(r)
        assert refresh(old) == "ok" and refresh(new) == "ok"
        old.tokens.revoke(record["id"])
        old.bouncers.delete("edge")
        assert new.tokens.lookup(token) is None and new.bouncers.lookup(key) is None
        assert new.sessions.lookup(sid) is not None
    finally:
        old.close()
        new.close()
        redis_server.stop()


def test_a_slow_redis_lookup_falls_back_on_the_replica_within_the_deadline(tmp_path: Path) -> None:
    from store.fleet_cache import LOOKUP_TIMEOUT_S, lookup

    redis_server = RedisServer(tmp_path / "redis").start()
    proxy = DelayingProxy(redis_server.port, 0.0)
    store = open_store(tmp_path / "data", proxy.url)
    try:
        ann = store.users.create("ann", PASSWORD, "viewer")
        token, _ = store.tokens.create("t", "viewer", "ann", ann["uid"])
        assert refresh(store) == "ok"
        proxy.delay_s = 0.5  # per command, below the socket timeout: slow, not down
        assert store.replica is not None

        async def timed() -> float:
            started = time.monotonic()
            record = await lookup(store.tokens.lookup, store.replica.lookup_token, token)  # type: ignore[union-attr]
            assert record is not None and record["name"] == "t"
            return time.monotonic() - started

        took = anyio.run(timed)
        print(f"token lookup with Redis 0.5 s slow: {took:.3f} s")
        assert LOOKUP_TIMEOUT_S <= took < 0.5  # answered by the replica, not by Redis
    finally:
        store.close()
        proxy.stop()
        redis_server.stop()
