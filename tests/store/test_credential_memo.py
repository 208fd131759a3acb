"""The per-process credential memo (store/credential_memo.py): lookups skip the store while nothing changed, and
every change made through another Store on the same data dir (another worker, the CLI) is seen at once.

Two Store objects on one data dir stand for two processes: each has its own memo; they share the files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from settings import Settings
from store import Store
from store import credential_memo as memo_module
from tests.fixtures.clock import ManualClock as Clock

PASSWORD = "correct horse battery"


@pytest.fixture
def pair(tmp_path: Path, clock: Clock) -> Iterator[tuple[Store, Store]]:
    settings = Settings.for_tests(data_dir=str(tmp_path / "data"), session_idle_minutes=10,
                                  session_lifetime_hours=1)
    a, b = Store(settings, clock=clock), Store(settings, clock=clock)
    yield a, b
    a.close()
    b.close()


def _erase_behind_the_stores_back(store: Store, key_prefix: str) -> None:
    """Delete rows with plain SQL: no announcement, as if the store changed without telling anyone."""
    with sqlite3.connect(store.path / "state" / "cache.db") as conn:
        conn.execute("DELETE FROM Cache WHERE key LIKE ?", (key_prefix + "%",))


def test_a_repeated_lookup_is_served_from_the_memo(pair: tuple[Store, Store]) -> None:
    a, _ = pair
    user = a.users.create("ann", PASSWORD, "admin")
    token, _ = a.tokens.create("t", "operator", "ann", user["uid"])
    assert a.tokens.lookup(token) is not None
    _erase_behind_the_stores_back(a, "token:")
    assert a.tokens.lookup(token) is not None  # no store read: the memo answered
    a.epoch.bump()  # what every announced write does
    assert a.tokens.lookup(token) is None


@pytest.mark.parametrize("change", ["revoke", "delete_user", "demote", "expire"])
def test_a_token_change_made_elsewhere_is_seen_by_the_next_lookup(pair: tuple[Store, Store], clock: Clock,
                                                                   change: str) -> None:
    a, b = pair
    user = b.users.create("ann", PASSWORD, "admin")
    token, record = b.tokens.create("t", "admin", "ann", user["uid"], expires_in_days=1)
    assert a.tokens.lookup(token)["role"] == "admin"  # type: ignore[index]
    if change == "revoke":
        b.tokens.revoke(record["id"])
    elif change == "delete_user":
        b.users.create("bob", PASSWORD, "admin")  # the last admin cannot be deleted
        b.users.delete("ann")
    elif change == "demote":
        b.users.create("bob", PASSWORD, "admin")
        b.users.update("ann", role="viewer")
    else:
        clock.now += 86400  # time is checked on every use, memo or not
    after = a.tokens.lookup(token)
    assert (after["role"] if after else None) == ("viewer" if change == "demote" else None)


@pytest.mark.parametrize("change", ["logout", "logout_everywhere", "password", "delete_user", "demote", "idle"])
def test_a_session_change_made_elsewhere_is_seen_by_the_next_lookup(pair: tuple[Store, Store], clock: Clock,
                                                                     change: str) -> None:
    a, b = pair
    user = b.users.create("ann", PASSWORD, "admin")
    b.users.create("bob", PASSWORD, "admin")
    session_id, _ = b.sessions.create(user, "192.0.2.1")
    assert a.sessions.lookup(session_id)["role"] == "admin"  # type: ignore[index]
    if change == "logout":
        b.sessions.delete(session_id)
    elif change == "logout_everywhere":
        b.sessions.end_all("ann")
    elif change == "password":
        b.users.update("ann", password="another long password")
    elif change == "delete_user":
        b.users.delete("ann")
    elif change == "demote":
        b.users.update("ann", role="viewer")
    else:
        clock.now += 11 * 60
    after = a.sessions.lookup(session_id)
    assert (after["role"] if after else None) == ("viewer" if change == "demote" else None)


def test_a_write_inside_a_transaction_is_announced_after_its_commit(pair: tuple[Store, Store]) -> None:
    a, _ = pair
    before = a.epoch.value()  # type: ignore[union-attr]
    with a.shared.transact():
        a.shared.set("probe", 1)
        assert a.epoch.value() == before  # type: ignore[union-attr]  # not yet: others could read the old row
    assert a.epoch.value() != before  # type: ignore[union-attr]
    quiet = a.epoch.value()  # type: ignore[union-attr]
    assert a.shared.get("probe") == 1 and not a.shared.delete("absent")
    assert a.epoch.value() == quiet  # type: ignore[union-attr]  # reads and no-op writes announce nothing


def test_an_unannounced_change_is_seen_within_the_memos_age_limit(pair: tuple[Store, Store], clock: Clock,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    a, _ = pair
    now = [0.0]
    a.tokens.memo.clock = lambda: now[0]  # type: ignore[union-attr]
    user = a.users.create("ann", PASSWORD, "admin")
    token, _ = a.tokens.create("t", "operator", "ann", user["uid"])
    assert a.tokens.lookup(token) is not None
    _erase_behind_the_stores_back(a, "token:")
    now[0] = memo_module.MAX_AGE_S - 0.1
    assert a.tokens.lookup(token) is not None
    now[0] = memo_module.MAX_AGE_S
    assert a.tokens.lookup(token) is None


def test_the_epoch_file_is_private(pair: tuple[Store, Store]) -> None:
    a, _ = pair
    assert (a.path / memo_module.FILENAME).stat().st_mode & 0o777 == 0o600
