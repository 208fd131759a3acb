"""Sessions, tokens and login counters in the shared store, with an injected clock (no sleeping),
and the login limiter's exactness across real processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from settings import Settings
from store import Store
from store.base import StoreError, open_cache
from store.ratelimit import ConcurrencyLimiter
from tests.fixtures.clock import START
from tests.fixtures.clock import ManualClock as Clock

# Both backends of the shared store: this host's diskcache, and the fleet's Redis (a real redis-server).
BACKENDS = ["disk", pytest.param("redis", marks=pytest.mark.fleet)]


def fleet_url(request: pytest.FixtureRequest, backend: str) -> str:
    return str(request.getfixturevalue("redis_url")) if backend == "redis" else ""


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Store:
    s = Store(Settings.for_tests(data_dir=str(tmp_path / "data"), session_idle_minutes=10,
                                 session_lifetime_hours=1, fleet_url=fleet_url(request, request.param)),
              clock=clock)
    yield s  # type: ignore[misc]
    s.close()


@pytest.fixture
def ann(store: Store) -> dict[str, object]:
    return store.users.create("ann", "correct horse battery", "viewer")


def test_session_slides_with_use_and_dies_when_idle(store: Store, clock: Clock, ann: dict[str, object]) -> None:
    sid, record = store.sessions.create(ann, "192.0.2.1")
    clock.now += 9 * 60
    record = store.sessions.lookup(sid)
    assert record is not None and store.sessions.needs_touch(record)
    store.sessions.touch(sid, record)
    clock.now += 9 * 60
    assert store.sessions.lookup(sid) is not None  # 18 min after login, 9 after last use
    clock.now += 10 * 60
    assert store.sessions.lookup(sid) is None


def test_session_absolute_lifetime(store: Store, clock: Clock, ann: dict[str, object]) -> None:
    sid, _ = store.sessions.create(ann, "192.0.2.1")
    for _ in range(7):
        clock.now += 9 * 60
        record = store.sessions.lookup(sid)
        if record is None:
            break
        store.sessions.touch(sid, record)
    assert record is None and clock.now >= START + 3600


def test_session_ids_are_not_stored_in_clear(store: Store, ann: dict[str, object]) -> None:
    sid, _ = store.sessions.create(ann, "192.0.2.1")
    assert all(sid not in key for key in store.shared.iterkeys())


def test_touch_after_logout_does_not_resurrect(store: Store, ann: dict[str, object]) -> None:
    sid, record = store.sessions.create(ann, "192.0.2.1")
    store.sessions.delete(sid)
    store.sessions.touch(sid, record)
    assert store.sessions.lookup(sid) is None


def test_limiter_window_and_reset(store: Store, clock: Clock) -> None:
    limiter = store.login_limiter
    assert [limiter.reserve("192.0.2.1", "ann") for _ in range(6)][-1] == 900
    clock.now += 901
    assert limiter.reserve("192.0.2.1", "ann") == 0


def test_per_username_ceiling_spans_addresses_and_case(store: Store) -> None:
    results = [store.login_limiter.reserve(f"192.0.2.{i}", "ann" if i % 2 else "ANN") for i in range(55)]
    assert results[:50] == [0] * 50 and all(r > 0 for r in results[50:])


def test_a_stranger_cannot_lock_out_a_user_from_a_new_address(store: Store) -> None:
    for i in range(8):  # the defect: 5 failures from 8 addresses locked "admin" out everywhere
        for _ in range(5):
            store.login_limiter.reserve(f"203.0.113.{i}", "admin")
    assert store.login_limiter.reserve("198.51.100.9", "admin") == 0


def test_counters_expire_from_the_store(store: Store) -> None:
    store.login_limiter.reserve("192.0.2.1", "ann")
    assert store.shared.get("ratelimit:login:ip:192.0.2.1", expire_time=True)[1] is not None


def _hammer(data_dir: str, url: str, attempts: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = Store(Settings.for_tests(data_dir=data_dir, fleet_url=url))
    queue.put(sum(1 for _ in range(attempts) if store.login_limiter.reserve("198.51.100.1", "eve") == 0))
    store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_limiter_is_exact_across_processes(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> None:
    """On Redis, each process has its own data dir: 4 hosts sharing one fleet store."""
    url = fleet_url(request, backend)
    dirs = [str(tmp_path / ("data" if not url else f"data{i}")) for i in range(4)]
    for d in set(dirs):
        Store(Settings.for_tests(data_dir=d, fleet_url=url)).close()
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(d, url, 10, queue)) for d in dirs]
    for p in procs:
        p.start()
    admitted = sum(queue.get(timeout=60) for _ in procs)
    for p in procs:
        p.join()
    assert admitted == 5


def test_pickled_values_are_refused(tmp_path: Path) -> None:
    import diskcache

    raw = diskcache.Cache(str(tmp_path / "c"))  # the default pickle disk, as an attacker would write
    raw.set("user:mallory", {"evil": {1, 2}})  # a set is not JSON: stored pickled
    raw.close()
    cache = open_cache(tmp_path / "c")
    with pytest.raises(StoreError, match="unpickle"):
        cache.get("user:mallory")


def test_users_create_list_update_delete(store: Store) -> None:
    from errors import Conflict

    store.users.create("root", "correct horse battery", "admin")
    store.users.create("Ann", "correct horse battery", "viewer")
    with pytest.raises(Conflict):
        store.users.create("ANN", "correct horse battery", "viewer")
    assert [u["name"] for u in store.users.list()] == ["Ann", "root"]
    assert store.users.update("ann", role="operator")["role"] == "operator"
    with pytest.raises(Conflict, match="last admin"):
        store.users.delete("root")
    store.users.delete("ann")
    assert store.users.get("ann") is None and store.users.any_exist()


def test_end_all_evicts_every_session_of_a_user(store: Store, ann: dict[str, object]) -> None:
    sids = [store.sessions.create(ann, "192.0.2.1")[0] for _ in range(3)]
    assert store.sessions.end_all("ANN") == 3
    assert all(store.sessions.lookup(sid) is None for sid in sids)


def test_tokens_lookup_list_and_revoke(store: Store, ann: dict[str, object]) -> None:
    token, record = store.tokens.create("ci", "viewer", "ann", str(ann["uid"]))
    assert store.tokens.lookup(token)["role"] == "viewer"  # type: ignore[index]
    assert [t["id"] for t in store.tokens.list()] == [record["id"]]
    store.tokens.revoke(record["id"])
    assert store.tokens.lookup(token) is None and store.tokens.list() == []


def test_filter_test_slots_are_per_user_and_a_crashed_holders_slot_expires(store: Store, clock: Clock) -> None:
    assert store.filter_tests.limit == 1  # the default: below the 2 tests a worker runs, so others find room
    slots = ConcurrencyLimiter(store.cache, clock, "filter-test", 2, hold=75.0)
    first, _ = slots.acquire("ann")
    assert first is not None and slots.acquire("ANN")[0] is not None
    refused, retry_after = slots.acquire("ann")
    assert refused is None and 0 < retry_after <= 75
    assert slots.acquire("bob")[0] is not None  # another user is not affected
    slots.release("ann", first)
    assert slots.acquire("ann")[0] is not None
    clock.now += 76  # the holders died without releasing: their slots lapse
    assert slots.acquire("ann")[0] is not None and slots.acquire("ann")[0] is not None
