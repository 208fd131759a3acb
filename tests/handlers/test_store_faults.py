"""Issue 8 items 14-16: disk full (on a real 2 MiB tmpfs), a store file deleted under the running app, and a busy
store, each answered with one clear error; readiness and health say so; disk full recovers by itself."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache
import pytest
from starlette.testclient import TestClient

from app import create_app
from settings import Settings
from store import Store, StoreError, faults
from tests.fixtures.app import Api, seed_users
from tests.fixtures.disk import fill, free_bytes


@pytest.fixture(autouse=True)
def _no_recent_disk_full() -> Iterator[None]:
    """The last disk-full failure is remembered per process: tests share one."""
    faults._last_full = None
    yield
    faults._last_full = None


def _api_on(data_dir: Path, socket: str) -> Iterator[Api]:
    settings = Settings.for_tests(data_dir=str(data_dir), fail2ban_socket=socket, fail2ban_timeout=2.0,
                                  leader_candidate=False)
    store = Store(settings)
    tokens = seed_users(store)
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield Api(client, settings, store, tokens)
    store.close()


@pytest.fixture
def small_api(small_disk: Path, fail2ban: Any) -> Iterator[Api]:
    yield from _api_on(small_disk / "data", fail2ban.socket)


def _until(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_disk_full_is_507_storage_full_then_recovers(small_api: Api, small_disk: Path) -> None:
    api = small_api
    assert api.client.get("/api/v1/health/ready").status_code == 200
    filler = small_disk / "filler"
    fill(filler)
    statuses = []
    for i in range(50):  # a write may still fit in space SQLite had already allocated
        r = api.call("operator", "POST", "/jails/sshd/bans", json={"ips": [f"192.0.2.{i + 1}"]})
        login = api.login()
        statuses.append(login.status_code)
        if login.status_code == 507:
            break
    assert statuses[-1] == 507, statuses
    assert login.json()["error"]["code"] == "storage_full" and "disk is full" in login.json()["error"]["message"]
    assert login.headers["x-content-type-options"] == "nosniff"
    ready = api.client.get("/api/v1/health/ready")
    assert ready.status_code == 503 and "full" in ready.json()["store_error"]
    health = api.call("viewer", "GET", "/health").json()
    assert health["status"] == "degraded" and health["store"] is False
    filler.unlink()
    assert _until(lambda: api.client.get("/api/v1/health/ready").status_code == 200)
    assert api.login().status_code == 200
    assert api.call("viewer", "GET", "/health").json()["store"] is True
    assert r.status_code in (200, 507)  # the ban itself happened in fail2ban either way


def test_disk_full_store_wal_stays_small(small_api: Api, small_disk: Path) -> None:
    """SQLite's default checkpoint (4 MiB of WAL) exceeded a 2 MiB disk: writes failed until it was enlarged."""
    cache = api_cache = small_api.store.cache
    for round_ in range(40):  # ~4 MiB of writes in all, twice the disk (100 KiB live at most)
        for i in range(200):
            cache.set(f"churn:{i}", "x" * 500)
        for i in range(200):
            api_cache.delete(f"churn:{i}")
        wal = small_disk / "data" / "state" / "cache.db-wal"
        assert wal.stat().st_size <= 1.5 * (1 << 20), round_
    assert free_bytes(small_disk) > 512 * 1024
    assert small_api.client.get("/api/v1/health/ready").status_code == 200


def test_disk_full_archive_wal_is_bounded_by_the_disk(small_disk: Path) -> None:
    from store.base import WAL_SHARE, wal_sizes
    from store.history import CHECKPOINT_BYTES, WAL_LIMIT_BYTES, Archive

    checkpoint, limit = wal_sizes(small_disk / "history.sqlite3", CHECKPOINT_BYTES, WAL_LIMIT_BYTES)
    assert checkpoint <= free_bytes(small_disk) // WAL_SHARE and limit <= free_bytes(small_disk) // WAL_SHARE
    archive = Archive.in_dir(small_disk / "hist")
    for i in range(300):
        archive.record_ban("sshd", [f"10.0.{i // 250}.{i % 250 + 1}"], actor="t")
    assert free_bytes(small_disk) > 512 * 1024
    archive.close()


def test_store_file_deleted_while_running_is_refused(api: Api) -> None:
    db = Path(api.settings.data_dir) / "state" / "cache.db"
    assert api.client.get("/api/v1/health/ready").status_code == 200
    db.unlink()
    ready = api.client.get("/api/v1/health/ready")
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "store_replaced"
    assert "deleted" in ready.json()["error"]["message"]
    r = api.call("viewer", "GET", "/jails")
    assert r.status_code == 503 and r.json()["error"]["code"] == "store_replaced"
    assert api.client.get("/api/v1/health/live").status_code == 200
    time.sleep(1.5)  # the app's jobs run meanwhile: none of their threads may create a new, empty store file
    assert not db.exists()
    # The CLI (and a restart) refuses rather than creating an empty store.
    with pytest.raises(StoreError, match="was deleted"):
        Store(api.settings)
    assert not db.exists()


def test_store_file_replaced_is_refused_at_open(tmp_path: Path) -> None:
    settings = Settings.for_tests(data_dir=str(tmp_path / "data"))
    Store(settings).close()
    state = tmp_path / "data" / "state"
    for name in os.listdir(state):
        if name.startswith("cache.db"):
            (state / name).unlink()
    other = Settings.for_tests(data_dir=str(tmp_path / "other"))
    Store(other).close()
    os.replace(tmp_path / "other" / "state" / "cache.db", state / "cache.db")
    with pytest.raises(StoreError, match="replaced by another store"):
        Store(settings)
    (tmp_path / "data" / "store-id").unlink()  # the documented way to start over
    Store(settings).close()


def test_store_busy_timeout_inline_is_503(settings: Settings) -> None:
    async def busy(request: Any) -> Any:
        raise diskcache.Timeout("database is locked")

    app = create_app(settings)
    app.add_route("/busy", busy)
    with TestClient(app, raise_server_exceptions=True) as client:
        r = client.get("/busy")
    assert r.status_code == 503 and r.json()["error"]["code"] == "store_busy"
    assert r.headers["cache-control"] == "no-store"


def test_disk_full_oserror_is_507(settings: Settings) -> None:
    async def full(request: Any) -> Any:
        raise OSError(28, "No space left on device")

    app = create_app(settings)
    app.add_route("/full", full)
    with TestClient(app) as client:
        r = client.get("/full")
    assert r.status_code == 507 and r.json()["error"]["code"] == "storage_full"


@pytest.mark.anyio
async def test_thread_limits_are_deliberate() -> None:
    import anyio.to_thread

    from store.base import HEAVY_THREADS, THREADS, configure_threads, offload_heavy

    configure_threads()
    assert anyio.to_thread.current_default_thread_limiter().total_tokens == THREADS
    running, peak = 0, 0

    def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        time.sleep(0.05)
        running -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(offload_heavy, work)
    assert peak == HEAVY_THREADS
