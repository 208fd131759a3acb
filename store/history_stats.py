"""Dashboard stats of the ban archive, from its aggregates where they answer (store/history_schema.py).

Contract: `stats()` counts ban events over n whole buckets ending with the bucket that holds `now` (UTC-aligned:
hours, 6 hours, days, weeks starting on Monday), so the trend buckets and every total cover the same window.
Bad input (range, origin) raises `errors.InvalidInput`.
"""

from __future__ import annotations

import heapq
import math
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from errors import InvalidInput
from store.history_query import check_origin
from store.history_schema import DAY_S, MANY_BANS, ORIGINS, WEEK_OFFSET_S, WEEK_S

TOP_N = 10
MAX_COUNTRIES = 300
# Candidates `_top_ips_bounded` counts exactly, per attempt, before it falls back to a scan.
BOUNDED_CANDIDATES = (256, 4096)
# range -> (bucket seconds, number of buckets)
RANGES: dict[str, tuple[int, int]] = {"24h": (3600, 24), "7d": (6 * 3600, 28), "30d": (DAY_S, 30),
                                      "365d": (WEEK_S, 53)}


def _bucket_start(t: float, width: int) -> int:
    offset = WEEK_OFFSET_S if width == WEEK_S else 0
    return math.floor((t - offset) / width) * width + offset


def window_end(range_: str, now: float) -> int | None:
    """Where the window of `range_` ending at `now` ends (None for an unknown range): the results of `stats` for the
    same range, filters and end are the same while the archive is unchanged."""
    if range_ not in RANGES:
        return None
    width = RANGES[range_][0]
    return _bucket_start(now, width) + width


def stats(conn: sqlite3.Connection, range_: str, jail: str | None = None, origin: str | None = None,
          now: float = 0.0) -> dict[str, Any]:
    """Dashboard figures for ban events in the window of `range_` ("24h", "7d", "30d", "365d") ending at
    `now`: {range, since, until, bucket_seconds, total, trend: [{start, bans}] (zero-filled),
    by_jail: [{jail, bans}], by_origin: {origin: bans}, top_ips: [{ip, country, bans}],
    top_countries: [{country, bans}], by_country: [{country, bans}] (every country: the web page's map)}."""
    if range_ not in RANGES:
        raise InvalidInput(f"range must be one of {', '.join(RANGES)}", details={"field": "range"})
    check_origin(origin)
    width, count = RANGES[range_]
    end = window_end(range_, now)
    assert end is not None
    since = end - count * width
    filters, fparams = "", []
    if jail:
        filters += " AND jail = ?"
        fparams.append(jail)
    if origin:
        filters += " AND origin = ?" + ("" if origin == "auto" else " AND origin != 'auto'")
        fparams.append(origin)
    w = _Window(since, end, width, count, filters, fparams)
    trend, by_jail, by_origin = _trend(conn, w)
    by_country = [{"country": cc, "bans": c} for cc, c in _top_countries(conn, w)]
    top_ips = []
    for key, bans in _top_ips(conn, w):  # text and country of the winners only
        ip, country = conn.execute("SELECT ip, country FROM events WHERE ipkey = ? ORDER BY at DESC LIMIT 1",
                                   (key,)).fetchone()
        top_ips.append({"ip": ip, "country": country, "bans": bans})
    return {
        "range": range_, "since": since, "until": end, "bucket_seconds": width, "total": sum(trend),
        "trend": [{"start": since + i * width, "bans": trend[i]} for i in range(count)],
        "by_jail": [{"jail": j, "bans": c} for j, c in sorted(by_jail.items(), key=lambda x: (-x[1], x[0]))
                    if c > 0],
        "by_origin": {o: by_origin.get(o, 0) for o in ORIGINS},
        "top_ips": top_ips,
        "top_countries": by_country[:TOP_N],
        "by_country": by_country,
    }


@dataclass(frozen=True, slots=True)
class _Window:
    since: int
    end: int
    width: int
    count: int
    filters: str
    fparams: list[Any]


_RAW = "FROM events WHERE event = 'ban' AND at >= ? AND at < ?"


def _trend(conn: sqlite3.Connection, w: _Window) -> tuple[list[int], Counter[str], Counter[str]]:
    """Zero-filled buckets, bans by jail, bans by origin: from agg_day for day-aligned buckets (a few rows per
    day), else from the events (a week at most: ~20k rows in the benchmark)."""
    if w.width % DAY_S == 0:
        sql = (f"SELECT (day * {DAY_S} - ?) / {w.width}, jail, origin, sum(bans) FROM agg_day "
               f"WHERE day >= ? AND day < ?{w.filters} GROUP BY 1, 2, 3")
        params = [w.since, w.since // DAY_S, w.end // DAY_S, *w.fparams]
    else:
        sql = f"SELECT CAST((at - ?) / {w.width} AS INTEGER), jail, origin, count(*) {_RAW}{w.filters} GROUP BY 1, 2, 3"
        params = [w.since, w.since, w.end, *w.fparams]
    trend = [0] * w.count
    by_jail: Counter[str] = Counter()
    by_origin: Counter[str] = Counter()
    for bucket, jail, origin, bans in conn.execute(sql, params):
        if 0 <= bucket < w.count:
            trend[bucket] += bans
        by_jail[jail] += bans
        by_origin[origin] += bans
    return trend, by_jail, by_origin


def _top_countries(conn: sqlite3.Connection, w: _Window) -> list[tuple[str, int]]:
    """Every country with bans in the window, most first (ISO 3166 has < 300 codes: the LIMIT is a guard)."""
    if w.width == WEEK_S:  # a year: the weekly per-country aggregate
        first = (w.since - WEEK_OFFSET_S) // WEEK_S
        sql = (f"SELECT country, sum(bans) AS c FROM agg_week_country WHERE week >= ? AND week < ?{w.filters} "
               f"GROUP BY country HAVING c > 0 ORDER BY c DESC, country LIMIT {MAX_COUNTRIES}")
        return conn.execute(sql, [first, first + w.count, *w.fparams]).fetchall()
    sql = (f"SELECT country, count(*) AS c {_RAW} AND country IS NOT NULL{w.filters} "
           f"GROUP BY country ORDER BY c DESC, country LIMIT {MAX_COUNTRIES}")
    return conn.execute(sql, [w.since, w.end, *w.fparams]).fetchall()


def _top_ips(conn: sqlite3.Connection, w: _Window) -> list[tuple[bytes, int]]:
    """The TOP_N addresses by bans (ties by key). Over a year without a jail filter, from the few addresses that can
    win (`_top_ips_bounded`); else by scanning. `origin` is not in the (ipkey, jail, at, event) index, so the
    year's scan counts origin=auto as all minus the (few) manual/blocklist bans found by the partial index."""
    tail = f"GROUP BY ipkey ORDER BY c DESC, ipkey LIMIT {TOP_N}"
    origin = w.fparams[-1] if " AND origin = ?" in w.filters else None
    if w.width != WEEK_S or origin not in (None, "auto"):
        sql = f"SELECT ipkey, count(*) AS c {_RAW}{w.filters} {tail}"
        return conn.execute(sql, [w.since, w.end, *w.fparams]).fetchall()
    jail_filter = " AND jail = ?" if " AND jail = ?" in w.filters else ""
    if not jail_filter:
        found = _top_ips_bounded(conn, w, auto_only=origin == "auto")
        if found is not None:
            return found
    params = [w.since, w.end, *w.fparams[:1]] if jail_filter else [w.since, w.end]
    # Scanning the unique index in key order groups without a sort and never reads the table.
    everything = ("SELECT ipkey, count(*) AS c FROM events INDEXED BY events_key WHERE event = 'ban' "
                  f"AND at >= ? AND at < ?{jail_filter}")
    if origin is None:
        return conn.execute(f"{everything} {tail}", params).fetchall()
    counts: Counter[bytes] = Counter(dict(conn.execute(f"{everything} GROUP BY ipkey", params).fetchall()))
    for key, bans in conn.execute(f"SELECT ipkey, count(*) AS c {_RAW}{jail_filter} AND origin IN "
                                  "('manual', 'blocklist', 'fleet') AND origin != 'auto' GROUP BY ipkey", params):
        counts[key] -= bans
    return _best(counts.items())


def _top_ips_bounded(conn: sqlite3.Connection, w: _Window, auto_only: bool) -> list[tuple[bytes, int]] | None:
    """The window's TOP_N addresses, exactly, without scanning every event (None: not decidable this way).

    agg_ip holds each address's bans over the whole archive: an upper bound of its count in any window. Count
    the window exactly for the k addresses with the most bans overall; every other address has at most `bound`
    (the (k+1)-th total) in the window, so if the TOP_N-th exact count beats `bound` nobody else can reach the
    list. One statement, so the totals and the counts are of one snapshot. With retention at a year the window
    holds nearly everything and k = 256 decides it (the benchmark's flat, Poisson-like spread is the hard case:
    its 10th count is ~15, its 257th total ~12-13); a window holding a small part of the archive (retention of
    years) gives up and scans.
    """
    origin = " AND e.origin = 'auto'" if auto_only else ""
    for k in BOUNDED_CANDIDATES:
        # First the addresses with MANY_BANS or more, in order from the partial index agg_ip_many (no scan): if
        # fewer than k+1 have that many, every other address has at most MANY_BANS - 1. Then, if that bound is not
        # enough, the k+1 biggest totals of all (a scan of agg_ip).
        for many in (True, False):
            leaders = (f"SELECT ipkey, bans FROM agg_ip WHERE bans >= {MANY_BANS} ORDER BY bans DESC, ipkey LIMIT ?"
                       if many else "SELECT ipkey, bans FROM agg_ip ORDER BY bans DESC, ipkey LIMIT ?")
            # (A MATERIALIZED CTE for the leaders lost SQLite's top-k sort: twice as slow.)
            rows = conn.execute(
                "SELECT l.ipkey, l.bans, (SELECT count(*) FROM events e INDEXED BY events_key WHERE "
                f"e.ipkey = l.ipkey AND e.event = 'ban' AND e.at >= ? AND e.at < ?{origin}) FROM ({leaders}) l",
                (w.since, w.end, k + 1)).fetchall()
            bound = rows[k][1] if len(rows) > k else MANY_BANS - 1 if many else 0
            best = _best((key, count) for key, _, count in rows[:k])
            if bound <= 0 or (len(best) == TOP_N and best[-1][1] > bound):
                return best
            if len(rows) > k:  # the same k+1 leaders as the scan would give: a bigger k next
                break
    return None


def _best(counts: Iterable[tuple[bytes, int]]) -> list[tuple[bytes, int]]:
    return heapq.nsmallest(TOP_N, ((k, c) for k, c in counts if c > 0), key=lambda kc: (-kc[1], kc[0]))


MAX_OFFENDERS = 1000  # repeat offenders answered, most bans first


def repeat_offenders(conn: sqlite3.Connection, min_bans: int, days: float, jail: str | None = None,
                     now: float = 0.0, geo: Any = None, limit: int = MAX_OFFENDERS) -> list[dict[str, Any]]:
    """The addresses with at least `min_bans` ban events in the last `days` days before `now` (in `jail` only,
    when given), most bans first (then the latest ban first), at most `limit`: [{ip, country, bans, jails,
    first_ban, last_ban}] (epoch seconds; jails sorted; country of the address's newest event, else `geo`).

    Two plans, picked by the aggregates: only an address with at least `min_bans` bans over the whole archive
    (agg_ip, an upper bound of any window's count) can qualify, so the window may be counted for those alone,
    each through the unique (ipkey, jail, at, event) index without touching the table, which wins where most
    addresses were banned once or twice (the common case); where the candidates hold more events than the
    window (retention near the window, addresses banned again and again) the window is scanned by time."""
    since = now - days * DAY_S
    jail_filter, params = (" AND e.jail = ?", [jail]) if jail else ("", [])
    select = "SELECT e.ipkey, count(*) AS c, min(e.at), max(e.at), group_concat(DISTINCT e.jail) FROM events e"
    tail = " GROUP BY e.ipkey HAVING c >= ? ORDER BY c DESC, max(e.at) DESC, e.ipkey LIMIT ?"
    if _candidates_are_fewer(conn, min_bans, since, jail):
        sql = (f"{select} INDEXED BY events_key JOIN agg_ip a ON e.ipkey = a.ipkey WHERE a.bans >= ? "
               f"AND e.event = 'ban' AND e.at >= ?{jail_filter}{tail}")
        args = [min_bans, since, *params, min_bans, limit]
    else:
        sql = f"{select} WHERE e.event = 'ban' AND e.at >= ?{jail_filter}{tail}"
        args = [since, *params, min_bans, limit]
    out = []
    for key, bans, first, last, jails in conn.execute(sql, args).fetchall():
        ip, country = conn.execute("SELECT ip, country FROM events WHERE ipkey = ? ORDER BY at DESC LIMIT 1",
                                   (key,)).fetchone()
        if country is None and geo is not None:
            country = geo.country(ip)
        out.append({"ip": ip, "country": country, "bans": bans, "jails": sorted(jails.split(",")),
                    "first_ban": first, "last_ban": last})
    return out


def _candidates_are_fewer(conn: sqlite3.Connection, min_bans: int, since: float, jail: str | None) -> bool:
    """Do the addresses that can qualify hold fewer ban events (index entries, read in key order, no table) than
    the window (table rows, read by time, then grouped)? Measured on bench/history.py's archive (nearly every
    address qualifies): 30 days 115 ms by window vs 426 by candidates. From agg_ip and agg_day: no event is read."""
    if min_bans <= 1:
        return False
    (candidate_events,) = conn.execute("SELECT coalesce(sum(bans), 0) FROM agg_ip WHERE bans >= ?",
                                       (min_bans,)).fetchone()
    window_sql = "SELECT coalesce(sum(bans), 0) FROM agg_day WHERE day >= ?" + (" AND jail = ?" if jail else "")
    (window_events,) = conn.execute(window_sql, [int(since // DAY_S), *([jail] if jail else [])]).fetchone()
    return bool(candidate_events < window_events)
