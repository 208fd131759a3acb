"""Reads of the ban archive: filtered history pages, the per-IP timeline, dashboard stats, CSV export.

Contracts:
- `history()` is newest first with keyset pagination: the cursor is an opaque token of the last item's (at, id),
  so rows arriving meanwhile (newer by construction) never shift or repeat later pages.
- An item is {ip, jail, event, at, bantime, bancount, failures, matches, origin, actor, country, source_host,
  ends_at}; `source_host` is the host a fleet event came from (origin fleet), else None.
  `ends_at` (ban events only, else None): the time of the unban that ended the ban if one was recorded before the
  next ban of the same ip/jail and before the ban would have expired; otherwise at + bantime; None when the ban
  is permanent (bantime < 0) or its bantime is unknown.
- `stats()` counts ban events over n whole buckets ending with the bucket that holds `now` (UTC-aligned:
  hours, 6 hours, days, weeks starting on Monday), so the trend buckets and every total cover the same window.
- Bad input (cursor, ip, range, origin, limit) raises `errors.InvalidInput`.
"""

from __future__ import annotations

import base64
import csv
import heapq
import io
import json
import math
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from errors import InvalidInput
from store.history_schema import DAY_S, ORIGINS, WEEK_OFFSET_S, WEEK_S, address_with_key, key_range

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
TOP_N = 10
MAX_COUNTRIES = 300
# Candidates `_top_ips_bounded` counts exactly, per attempt, before it falls back to a scan.
BOUNDED_CANDIDATES = (256, 4096)
# range -> (bucket seconds, number of buckets)
RANGES: dict[str, tuple[int, int]] = {"24h": (3600, 24), "7d": (6 * 3600, 28), "30d": (DAY_S, 30),
                                      "365d": (WEEK_S, 53)}

# fail2ban's `data` is archived as it wrote it ({"matches": [...], "failures": N}, or null, or anything) and decoded
# here, for the rows a query returns (decoding it on insert cost the sync a third of its throughput, and as VIRTUAL
# columns SQLite evaluated it on every insert anyway). The nested CASEs: json_type() raises on malformed JSON.
FAILURES = ("CASE WHEN json_valid(e.data) THEN CASE json_type(e.data, '$.failures') WHEN 'integer' "
            "THEN json_extract(e.data, '$.failures') END END")
MATCHES = ("CASE WHEN json_valid(e.data) THEN CASE json_type(e.data, '$.matches') WHEN 'array' "
           "THEN json_extract(e.data, '$.matches') END END")
_COLUMNS = (f"e.id, e.event, e.jail, e.ip, e.at, e.bantime, e.bancount, {FAILURES}, {MATCHES}, e.origin, e.actor, "
            "e.country, e.source_host, "
            "CASE WHEN e.event = 'ban' THEN (SELECT min(u.at) FROM events u WHERE u.ipkey = e.ipkey "
            "AND u.jail = e.jail AND u.at >= e.at AND u.event = 'unban') END, "
            "CASE WHEN e.event = 'ban' THEN (SELECT min(b.at) FROM events b WHERE b.ipkey = e.ipkey "
            "AND b.jail = e.jail AND b.at > e.at AND b.event = 'ban') END")


def _ends_at(at: float, bantime: int | None, unban_at: float | None, next_ban_at: float | None) -> float | None:
    natural = at + bantime if bantime is not None and bantime >= 0 else None
    if unban_at is not None and (next_ban_at is None or unban_at <= next_ban_at) \
            and (natural is None or unban_at <= natural):
        return unban_at
    return natural


def _item(row: tuple[Any, ...]) -> dict[str, Any]:
    (_id, event, jail, ip, at, bantime, bancount, failures, matches, origin, actor, country, source_host,
     unban_at, next_ban_at) = row
    return {"ip": ip, "jail": jail, "event": event, "at": at, "bantime": bantime, "bancount": bancount,
            "failures": failures, "matches": _matches(matches), "origin": origin,
            "actor": actor, "country": country, "source_host": source_host,
            "ends_at": _ends_at(at, bantime, unban_at, next_ban_at) if event == "ban" else None}


def _matches(text: str | None) -> list[str]:
    """The stored JSON list of log lines as a list of str (fail2ban 0.10 stored a line as a list of parts)."""
    if not text:
        return []
    try:
        lines = json.loads(text)
    except ValueError:
        return []
    if not isinstance(lines, list):
        return []
    return [m if isinstance(m, str) else "".join(map(str, m)) if isinstance(m, list) else str(m) for m in lines]


def encode_cursor(at: float, event_id: int) -> str:
    raw = json.dumps([at, event_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        at, event_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(at, bool) or not isinstance(at, int | float) or type(event_id) is not int:
            raise ValueError
        return float(at), event_id
    except (ValueError, TypeError):
        raise InvalidInput("cursor is not one this server handed out", details={"field": "cursor"}) from None


def _check_origin(origin: str | None) -> None:
    if origin is not None and origin not in ORIGINS:
        raise InvalidInput(f"origin must be one of {', '.join(ORIGINS)}", details={"field": "origin"})


def _where(since: float | None, until: float | None, jail: str | None, ip: str | None, origin: str | None,
           country: str | None, event: str | None) -> tuple[list[str], list[Any]]:
    _check_origin(origin)
    clauses: list[str] = []
    params: list[Any] = []
    if since is not None:
        clauses.append("e.at >= ?")
        params.append(float(since))
    if until is not None:
        clauses.append("e.at <= ?")
        params.append(float(until))
    if jail:
        clauses.append("e.jail = ?")
        params.append(jail)
    if ip:
        lo, hi = key_range(ip)
        clauses.append("e.ipkey BETWEEN ? AND ?")
        params += [lo, hi]
    if origin:
        # The repeated `!= 'auto'` lets SQLite use the partial index events_own_at for manual/blocklist.
        clauses.append("e.origin = ?" if origin == "auto" else "e.origin = ? AND e.origin != 'auto'")
        params.append(origin)
    if country:
        clauses.append("e.country = ?")
        params.append(country.upper())
    if event:
        if event not in ("ban", "unban"):
            raise InvalidInput("event must be ban or unban", details={"field": "event"})
        clauses.append("e.event = ?")
        params.append(event)
    return clauses, params


def history(conn: sqlite3.Connection, since: float | None = None, until: float | None = None,
            jail: str | None = None, ip: str | None = None, origin: str | None = None,
            country: str | None = None, event: str | None = None, limit: int = DEFAULT_LIMIT,
            cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of events matching every given filter, newest first, and the cursor of the next page (or None).

    `ip` is an address or a CIDR (v4 or v6); `since`/`until` are inclusive epoch seconds.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    clauses, params = _where(since, until, jail, ip, origin, country, event)
    if cursor:
        at, event_id = decode_cursor(cursor)
        # `e.at <= ?` bounds the index range; the OR breaks ties between events of the same instant by id.
        clauses.append("e.at <= ? AND (e.at < ? OR e.id < ?)")
        params += [at, at, event_id]
    sql = f"SELECT {_COLUMNS} FROM events e"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY e.at DESC, e.id DESC LIMIT ?"
    rows = conn.execute(sql, [*params, limit + 1]).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1][4], rows[-1][0]) if more else None
    return [_item(row) for row in rows], next_cursor


def ip_timeline(conn: sqlite3.Connection, ip: str, geo: Any = None) -> dict[str, Any]:
    """Everything the archive knows about one address: {ip, country, first_seen, last_seen,
    totals: {bans, unbans, jails: {jail: bans}}, events: [items, newest first]}."""
    text, key, valid = address_with_key(ip)
    if not valid:
        raise InvalidInput(f"{ip!r} is not an IP address", details={"field": "ip"})
    rows = conn.execute(f"SELECT {_COLUMNS} FROM events e WHERE e.ipkey = ? ORDER BY e.at DESC, e.id DESC",
                        (key,)).fetchall()
    events = [_item(row) for row in rows]
    jails: dict[str, int] = {}
    for item in events:
        if item["event"] == "ban":
            jails[item["jail"]] = jails.get(item["jail"], 0) + 1
    country = next((item["country"] for item in events if item["country"]), None)
    if country is None and geo is not None:
        country = geo.country(text)
    return {
        "ip": text,
        "country": country,
        "first_seen": events[-1]["at"] if events else None,
        "last_seen": events[0]["at"] if events else None,
        "totals": {"bans": sum(jails.values()), "unbans": sum(1 for i in events if i["event"] == "unban"),
                   "jails": jails},
        "events": events,
    }


NETWORK_EVENTS = 1000  # a network's timeline lists this many newest events; its totals count every one


def network_timeline(conn: sqlite3.Connection, network: str, geo: Any = None) -> dict[str, Any]:
    """What the archive knows about a CIDR network (issue 8 item 10): bans of that exact network entry (fail2ban
    keeps it as one opaque text) and events of every address inside it; the same shape as `ip_timeline`, with
    the newest NETWORK_EVENTS events and `truncated` when there are more."""
    lo, hi = key_range(network)  # raises InvalidInput for anything but an address or a network
    _, own_key, _ = address_with_key(network)
    where = "(e.ipkey BETWEEN ? AND ? OR e.ipkey = ?)"
    params = (lo, hi, own_key)
    rows = conn.execute(f"SELECT {_COLUMNS} FROM events e WHERE {where} ORDER BY e.at DESC, e.id DESC LIMIT ?",
                        (*params, NETWORK_EVENTS + 1)).fetchall()
    events = [_item(row) for row in rows[:NETWORK_EVENTS]]
    jails: dict[str, int] = {}
    unbans = 0
    for jail, event, count in conn.execute(
            f"SELECT e.jail, e.event, count(*) FROM events e WHERE {where} GROUP BY 1, 2", params):
        if event == "ban":
            jails[jail] = count
        else:
            unbans += count
    first, last = conn.execute(f"SELECT min(e.at), max(e.at) FROM events e WHERE {where}", params).fetchone()
    return {
        "ip": network,
        "country": None,
        "first_seen": first,
        "last_seen": last,
        "totals": {"bans": sum(jails.values()), "unbans": unbans, "jails": jails},
        "events": events,
        "truncated": len(rows) > NETWORK_EVENTS,
    }


def _bucket_start(t: float, width: int) -> int:
    offset = WEEK_OFFSET_S if width == WEEK_S else 0
    return math.floor((t - offset) / width) * width + offset


def stats(conn: sqlite3.Connection, range_: str, jail: str | None = None, origin: str | None = None,
          now: float = 0.0) -> dict[str, Any]:
    """Dashboard figures for ban events in the window of `range_` ("24h", "7d", "30d", "365d") ending at
    `now`: {range, since, until, bucket_seconds, total, trend: [{start, bans}] (zero-filled),
    by_jail: [{jail, bans}], by_origin: {origin: bans}, top_ips: [{ip, country, bans}],
    top_countries: [{country, bans}], by_country: [{country, bans}] (every country: the web page's map)}."""
    if range_ not in RANGES:
        raise InvalidInput(f"range must be one of {', '.join(RANGES)}", details={"field": "range"})
    _check_origin(origin)
    width, count = RANGES[range_]
    end = _bucket_start(now, width) + width
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
        # (A MATERIALIZED CTE for the leaders lost SQLite's top-k sort: twice as slow.)
        rows = conn.execute(
            "SELECT l.ipkey, l.bans, (SELECT count(*) FROM events e INDEXED BY events_key WHERE e.ipkey = l.ipkey "
            f"AND e.event = 'ban' AND e.at >= ? AND e.at < ?{origin}) "
            "FROM (SELECT ipkey, bans FROM agg_ip ORDER BY bans DESC, ipkey LIMIT ?) l",
            (w.since, w.end, k + 1)).fetchall()
        bound = rows[k][1] if len(rows) > k else 0
        best = _best((key, count) for key, _, count in rows[:k])
        if bound <= 0 or (len(best) == TOP_N and best[-1][1] > bound):
            return best
    return None


def _best(counts: Iterable[tuple[bytes, int]]) -> list[tuple[bytes, int]]:
    return heapq.nsmallest(TOP_N, ((k, c) for k, c in counts if c > 0), key=lambda kc: (-kc[1], kc[0]))


CSV_HEADER = ("time", "at", "event", "jail", "ip", "origin", "actor", "country", "bantime", "failures",
              "ends_at", "matches", "source_host")


def csv_lines(connect: Callable[[], sqlite3.Connection], page_size: int = MAX_LIMIT,
              **filters: Any) -> Iterator[str]:
    """The filtered history as CSV lines (header first), fetched one page at a time.

    `connect` is called per page: a streaming response may resume this generator on another thread.
    Log lines (matches) are joined with newlines into one quoted field; the csv module escapes commas, quotes
    and newlines.
    """
    filters.pop("limit", None)
    filters.pop("cursor", None)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(values: tuple[Any, ...] | list[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    # The first page is read before the header is yielded: bad filters raise before the first byte (and so before
    # the 200) rather than cutting a started stream (issue 8 item 12).
    items, cursor = history(connect(), limit=page_size, cursor=None, **filters)
    yield line(CSV_HEADER)
    while True:
        for it in items:
            when = datetime.fromtimestamp(it["at"], UTC).isoformat().replace("+00:00", "Z")
            yield line([when, it["at"], it["event"], it["jail"], it["ip"], it["origin"], it["actor"] or "",
                        it["country"] or "", _blank(it["bantime"]), _blank(it["failures"]),
                        _blank(it["ends_at"]), "\n".join(it["matches"]), it["source_host"] or ""])
        if cursor is None:
            return
        items, cursor = history(connect(), limit=page_size, cursor=cursor, **filters)


def _blank(value: Any) -> Any:
    return "" if value is None else value
