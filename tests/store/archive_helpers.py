"""Shared pieces of the archive tests: a readable geo stand-in, row builders and an
exactness check of the aggregates (the `archive` fixture is in tests/store/conftest.py)."""

from __future__ import annotations

import json

from store.history import Archive, SyncedBan
from tests.fixtures.clock import START

NOW = START  # Tue 2023-11-14 22:13:20 UTC
DAY = 86400.0


class FakeGeo:
    """Countries by first octet, so tests read at a glance."""

    def country(self, ip: str) -> str | None:
        return {"81": "GB", "8": "US", "2a00": "IE"}.get(ip.split(".")[0].split(":")[0])


def synced(jail: str, ip: str, at: float, bantime: int = 600, matches: list[str] | None = None,
           failures: int = 3) -> SyncedBan:
    data = json.dumps({"matches": matches or [f"fail from {ip}"], "failures": failures})
    return SyncedBan(jail, ip, at, bantime, 1, data)


def all_items(archive: Archive, **filters: object) -> list[dict]:
    items, cursor = archive.history(limit=1000, **filters)  # type: ignore[arg-type]
    assert cursor is None
    return items


def assert_aggregates_exact(archive: Archive) -> None:
    """agg_day / agg_week_country equal a recount of the events (every write path keeps them exact)."""
    conn = archive._conn()
    day = conn.execute("SELECT day, jail, origin, bans FROM agg_day WHERE bans != 0 ORDER BY 1, 2, 3").fetchall()
    recount = conn.execute("SELECT CAST(at / 86400 AS INTEGER), jail, origin, count(*) FROM events "
                           "WHERE event = 'ban' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3").fetchall()
    assert day == recount
    week = conn.execute("SELECT week, jail, origin, country, bans FROM agg_week_country WHERE bans != 0 "
                        "ORDER BY 1, 2, 3, 4").fetchall()
    recount = conn.execute("SELECT CAST((at - 345600) / 604800 AS INTEGER), jail, origin, country, count(*) "
                           "FROM events WHERE event = 'ban' AND country IS NOT NULL GROUP BY 1, 2, 3, 4 "
                           "ORDER BY 1, 2, 3, 4").fetchall()
    assert week == recount
    per_ip = conn.execute("SELECT ipkey, bans FROM agg_ip ORDER BY 1").fetchall()  # no zero rows left behind
    recount = conn.execute("SELECT ipkey, count(*) FROM events WHERE event = 'ban' GROUP BY ipkey "
                           "ORDER BY 1").fetchall()
    assert per_ip == recount
