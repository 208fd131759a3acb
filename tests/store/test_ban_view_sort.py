"""Sorted pages of the view of current bans (store/ban_view.py, store/ban_order.py): every sort and order over many
pages, in a jail and across jails, with ties and bans without an end; cursors; filters; a file of an older bangui;
and the query plans that keep a sorted page of a big jail a read of its page only."""

from __future__ import annotations

import base64
import json
import math
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from errors import InvalidInput
from store.ban_order import ORDERS, SORTS
from store.ban_view import SCHEMA, Ban, BanView, Page, ViewBan, signature_of
from store.history_schema import address_with_key
from tests.fixtures.clock import START, ManualClock

JAILS = ("sshd", "web")


def view_with(path: Path, bans: Sequence[Ban]) -> BanView:
    view = BanView(path, ManualClock())
    signature = signature_of("test", [(jail, 0, 0) for jail in JAILS])
    view.publish(bans, lambda jail, ips: {}, START, signature, {jail: 600 for jail in JAILS})
    return view


def sample() -> list[tuple[str, str, float | None, float | None]]:
    """Bans in two jails: the same address in both, ties of banned_at and of expires_at within and across jails,
    permanent bans (no end), IPv4 and IPv6."""
    bans: list[tuple[str, str, float | None, float | None]] = []
    for i in range(30):
        ip = f"10.0.{i % 3}.{i}" if i % 4 else f"2001:db8::{i:x}"
        bans.append(("sshd", ip, START - 100 * (i % 5), None if i % 7 == 0 else START + 60 * (i % 4)))
        if i % 2:
            bans.append(("web", ip, START - 100 * (i % 3), None if i % 5 == 0 else START + 60 * (i % 4)))
    return bans


def expected(bans: list[tuple[str, str, float | None, float | None]], sort: str, order: str,
             jail: str | None = None) -> list[tuple[str, str]]:
    """The order the API promises, computed here: the time (none last), then the address's key, then the jail;
    desc reverses all of it."""
    def place(ban: tuple[str, str, float | None, float | None]) -> tuple[Any, ...]:
        key = address_with_key(ban[1])[1]
        if sort == "address":
            return key, ban[0]
        time = ban[2] if sort == "banned_at" else ban[3]
        return (math.inf if time is None else time), key, ban[0]

    chosen = sorted((b for b in bans if jail is None or b[0] == jail), key=place, reverse=order == "desc")
    return [(b[0], b[1]) for b in chosen]


def walk(view: BanView, limit: int, **query: Any) -> Iterator[Page]:
    cursor = None
    while True:
        page = view.page(limit=limit, cursor=cursor, **query)
        yield page
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def rows(pages: Iterator[Page]) -> list[ViewBan]:
    return [b for page in pages for b in page.bans]


@pytest.mark.parametrize("jail", [None, "sshd"])
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("sort", SORTS)
def test_every_sort_and_order_pages_without_skipping_or_repeating(tmp_path: Path, sort: str, order: str,
                                                                  jail: str | None) -> None:
    bans = sample()
    view = view_with(tmp_path / "bans.sqlite3", bans)
    pages = list(walk(view, 7, jail=jail, sort=sort, order=order))
    got = [(b.jail, b.ip) for page in pages for b in page.bans]
    assert got == expected(bans, sort, order, jail)
    assert len(set(got)) == len(got) and len(pages) > 3
    assert {page.total for page in pages} == {len(got)}
    assert all(len(page.bans) == 7 for page in pages[:-1])


def test_bans_without_an_end_sort_last_ascending_and_first_descending(tmp_path: Path) -> None:
    view = view_with(tmp_path / "bans.sqlite3", sample())
    ascending = rows(walk(view, 4, sort="expires_at"))
    ends = [b.expires_at for b in ascending]
    first_permanent = ends.index(None)
    assert all(e is None for e in ends[first_permanent:]) and all(e is not None for e in ends[:first_permanent])
    assert ends[:first_permanent] == sorted(e for e in ends if e is not None)
    descending = rows(walk(view, 4, sort="expires_at", order="desc"))
    assert descending == ascending[::-1]


def test_ties_are_broken_by_address_then_jail(tmp_path: Path) -> None:
    same = START + 600.0  # one end for all: a bulk ban
    bans = [(jail, f"192.0.2.{i}", START, same) for i in (9, 1, 200, 30) for jail in JAILS]
    view = view_with(tmp_path / "bans.sqlite3", bans)
    for limit in (1, 2, 3):  # page ends inside each tie group
        got = [(b.ip, b.jail) for b in rows(walk(view, limit, sort="expires_at"))]
        assert got == [(f"192.0.2.{i}", jail) for i in (1, 9, 30, 200) for jail in JAILS]
        back = [(b.ip, b.jail) for b in rows(walk(view, limit, sort="expires_at", order="desc"))]
        assert back == got[::-1]


@pytest.mark.parametrize("sort", ["banned_at", "expires_at"])
def test_a_filter_with_a_sort_keeps_the_sort_within_the_filter(tmp_path: Path, sort: str) -> None:
    bans = sample()
    view = view_with(tmp_path / "bans.sqlite3", bans)
    for query, inside in (({"prefix": "10.0.1"}, lambda ip: ip.startswith("10.0.1")),
                          ({"network": "10.0.0.0/23"}, lambda ip: ip.startswith(("10.0.0.", "10.0.1."))),
                          ({"network": "2001:db8::/64"}, lambda ip: ip.startswith("2001:db8::"))):
        for order in ORDERS:
            got = [(b.jail, b.ip) for b in rows(walk(view, 3, sort=sort, order=order, **query))]
            want = [(j, ip) for j, ip in expected(bans, sort, order) if inside(ip)]
            assert got == want and got, (query, order)


def test_the_default_order_and_its_cursors_are_as_before(tmp_path: Path) -> None:
    bans = sample()
    view = view_with(tmp_path / "bans.sqlite3", bans)
    assert rows(walk(view, 5)) == rows(walk(view, 5, sort="address", order="asc"))
    assert [(b.jail, b.ip) for b in rows(walk(view, 5))] == expected(bans, "address", "asc")
    # a cursor as bangui answered before sorts existed: ["k", key in hex, jail]
    first = view.page(limit=5).bans
    old = base64.urlsafe_b64encode(json.dumps(["k", address_with_key(first[-1].ip)[1].hex(), first[-1].jail],
                                              separators=(",", ":")).encode()).decode().rstrip("=")
    assert view.page(limit=5, cursor=old).bans == view.page(limit=10).bans[5:]


def test_a_cursor_continues_only_its_own_sort_and_order(tmp_path: Path) -> None:
    view = view_with(tmp_path / "bans.sqlite3", sample())
    cursor = view.page(limit=3, sort="expires_at").next_cursor
    assert cursor is not None
    for other in ({"sort": "expires_at", "order": "desc"}, {"sort": "banned_at"}, {}, {"prefix": "10."}):
        with pytest.raises(InvalidInput) as caught:
            view.page(limit=3, cursor=cursor, **other)
        assert caught.value.code == "invalid_cursor" and "sort=expires_at&order=asc" in caught.value.message
    for bad in ("nonsense", base64.urlsafe_b64encode(b'["expires_at","x","00","sshd"]').decode(),
                base64.urlsafe_b64encode(b'["expires_at",1.0,"00"]').decode(),
                base64.urlsafe_b64encode(b'[["k"],"00","sshd"]').decode(), base64.urlsafe_b64encode(b"7").decode(),
                "\u00e9t\u00e9"):
        with pytest.raises(InvalidInput) as caught:
            view.page(limit=3, cursor=bad, sort="expires_at")
        assert caught.value.code == "invalid_cursor"


def test_an_unknown_sort_or_order_names_the_field_and_the_allowed_values(tmp_path: Path) -> None:
    view = view_with(tmp_path / "bans.sqlite3", sample())
    for query, field, allowed in (({"sort": "jail"}, "sort", list(SORTS)), ({"order": "up"}, "order", list(ORDERS))):
        with pytest.raises(InvalidInput) as caught:
            view.page(limit=3, **query)
        assert caught.value.details == {"field": field, "allowed": allowed}
        assert all(value in caught.value.message for value in allowed)


def test_a_file_of_an_older_bangui_gets_the_sort_columns_and_keeps_its_bans(tmp_path: Path) -> None:
    path = tmp_path / "bans.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA)  # the schema before sorts: no generated columns, no sort indexes
    old.executemany("INSERT INTO bans(jail, ip, key, banned_at, expires_at, origin, confirmed, changed_at) "
                    "VALUES (?, ?, ?, ?, ?, 'fail2ban', 1, 0)",
                    [(jail, ip, address_with_key(ip)[1], at, end) for jail, ip, at, end in sample()])
    old.execute("INSERT INTO counts SELECT jail, count(*) FROM bans GROUP BY jail")
    old.commit()
    old.close()
    view = BanView(path, ManualClock())
    got = [(b.jail, b.ip) for b in rows(walk(view, 6, sort="expires_at", order="desc"))]
    assert got == expected(sample(), "expires_at", "desc")
    indexes = {row[0] for row in view.conn().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"bans_jail_expires_sort", "bans_expires_sort", "bans_jail_banned_sort", "bans_banned_sort"} <= indexes
    BanView(path, ManualClock()).close()  # a second opening finds them and changes nothing


def big_view(path: Path) -> BanView:
    """A 100,000-ban jail beside a small one; bulk bans share their times (ties), some are permanent."""
    big = [("web", f"10.{64 + (i >> 16)}.{i >> 8 & 255}.{i & 255}", START + (i % 1000),
            None if i % 97 == 0 else START + 86400 + (i % 5000)) for i in range(1, 100_001)]
    small = [("sshd", f"192.0.2.{i}", START, START + i) for i in range(1, 200)]
    return view_with(path, [*big, *small])


def page_plans(view: BanView, **query: Any) -> list[str]:
    """The query plan of the SELECT that reads the page's rows (as SQLite runs it, parameters included)."""
    conn = view.conn()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        view.page(**query)
    finally:
        conn.set_trace_callback(None)
    (select,) = [s for s in statements if "ORDER BY" in s]
    select = re.sub(r"\bInf\b", "9e999", select)  # the expanded text of a +inf parameter (a cursor after no end)
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + select)]


def vm_steps(view: BanView, **query: Any) -> int:
    """SQLite's virtual machine instructions to answer the page (counted 100 at a time)."""
    counted = [0]

    def count() -> int:
        counted[0] += 100
        return 0

    view.conn().set_progress_handler(count, 100)
    try:
        view.page(**query)
    finally:
        view.conn().set_progress_handler(None, 100)
    return counted[0]


def test_a_sorted_page_of_a_big_jail_reads_an_index_and_only_its_page(tmp_path: Path) -> None:
    view = big_view(tmp_path / "bans.sqlite3")
    for jail in ("web", "sshd", None):
        for sort in SORTS:
            for order in ORDERS:
                first = view.page(jail=jail, limit=100, sort=sort, order=order)
                assert first.next_cursor is not None
                for cursor in (None, first.next_cursor):
                    query = {"jail": jail, "limit": 100, "sort": sort, "order": order, "cursor": cursor}
                    plan = page_plans(view, **query)
                    assert any("USING INDEX" in p or "USING COVERING INDEX" in p for p in plan), (query, plan)
                    assert not any("TEMP B-TREE" in p for p in plan), (query, plan)
                    # the rows read: SQLite's virtual machine steps, a few hundred per row of the page at most
                    # (a scan of the jail's 100,000 rows takes millions)
                    assert vm_steps(view, **query) < 300 * 101, query


def test_a_filtered_sorted_page_of_a_big_jail_is_correct(tmp_path: Path) -> None:
    view = big_view(tmp_path / "bans.sqlite3")
    page = view.page(jail="web", limit=50, sort="expires_at", network="10.64.128.0/20")
    inside = [b for b in rows(walk(view, 1000, jail="web", network="10.64.128.0/20"))]
    want = sorted(inside, key=lambda b: (math.inf if b.expires_at is None else b.expires_at,
                                         address_with_key(b.ip)[1]))[:50]
    assert page.bans == want and page.total == len(inside) == 4096
    prefixed = view.page(jail="web", limit=20, sort="banned_at", order="desc", prefix="10.65.1.")
    times = [b.banned_at or 0.0 for b in prefixed.bans]
    assert times == sorted(times, reverse=True)
    assert all(b.ip.startswith("10.65.1.") for b in prefixed.bans) and prefixed.total == 256
