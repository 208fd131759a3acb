"""Reads of the ban archive: filtered history pages, the per-IP timeline, CSV export (dashboard stats:
store/history_stats.py).

Contracts:
- `history()` is newest first with keyset pagination: the cursor is an opaque token of the last item's (at, id),
  so rows arriving meanwhile (newer by construction) never shift or repeat later pages.
- An item is {ip, jail, event, at, bantime, bancount, failures, matches, origin, actor, country, source_host,
  ends_at}; `source_host` is the host a fleet event came from (origin fleet), else None.
  `ends_at` (ban events only, else None): the time of the unban that ended the ban if one was recorded before the
  next ban of the same ip/jail and before the ban would have expired; otherwise at + bantime; None when the ban
  is permanent (bantime < 0) or its bantime is unknown.
- Bad input (cursor, ip, range, origin, limit) raises `errors.InvalidInput`.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from errors import InvalidInput
from store.history_schema import ORIGINS, address_with_key, key_range

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

# fail2ban's `data` is archived as it wrote it ({"matches": [...], "failures": N}, or null, or anything) and decoded
# here, for the rows a query returns (decoding it on insert cost the sync a third of its throughput, and as VIRTUAL
# columns SQLite evaluated it on every insert anyway). The nested CASEs: json_type() raises on malformed JSON.
FAILURES = ("CASE WHEN json_valid(e.data) THEN CASE json_type(e.data, '$.failures') WHEN 'integer' "
            "THEN json_extract(e.data, '$.failures') END END")
MATCHES = ("CASE WHEN json_valid(e.data) THEN CASE json_type(e.data, '$.matches') WHEN 'array' "
           "THEN json_extract(e.data, '$.matches') END END")
_COLUMNS = (f"e.id, e.event, e.jail, e.ip, e.at, e.bantime, e.bancount, {FAILURES}, {MATCHES}, e.origin, e.actor, "
            "e.country, e.source_host, "
            "CASE WHEN e.event = 'ban' THEN (SELECT min(u.at) FROM events u INDEXED BY events_unban "
            "WHERE u.ipkey = e.ipkey AND u.jail = e.jail AND u.at >= e.at AND u.event = 'unban') END, "
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


def check_origin(origin: str | None) -> None:
    if origin is not None and origin not in ORIGINS:
        raise InvalidInput(f"origin must be one of {', '.join(ORIGINS)}", details={"field": "origin"})


def _where(since: float | None = None, until: float | None = None, jail: str | None = None, ip: str | None = None,
           origin: str | None = None, country: str | None = None,
           event: str | None = None) -> tuple[list[str], list[Any]]:
    check_origin(origin)
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
    rows, next_cursor = _page(conn, limit, cursor, dict(since=since, until=until, jail=jail, ip=ip, origin=origin,
                                                        country=country, event=event))
    return [_item(row) for row in rows], next_cursor


def _page_where(limit: int, cursor: str | None, filters: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """The WHERE clauses and parameters of one page: the filters, and the position after `cursor`."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    clauses, params = _where(**filters)
    if cursor:
        at, event_id = decode_cursor(cursor)
        # `e.at <= ?` bounds the index range; the OR breaks ties between events of the same instant by id.
        clauses.append("e.at <= ? AND (e.at < ? OR e.id < ?)")
        params += [at, at, event_id]
    return clauses, params


def _page(conn: sqlite3.Connection, limit: int, cursor: str | None,
          filters: dict[str, Any]) -> tuple[list[tuple[Any, ...]], str | None]:
    """One page of `_COLUMNS` rows, newest first, and the next page's cursor (or None)."""
    clauses, params = _page_where(limit, cursor, filters)
    sql = f"SELECT {_COLUMNS} FROM events e"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY e.at DESC, e.id DESC LIMIT ?"
    rows = conn.execute(sql, [*params, limit + 1]).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1][4], rows[-1][0]) if more else None


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


# Every time in ISO 8601 UTC (issue 23 item 6: the epoch `at` column, a copy of `time`, is gone).
CSV_HEADER = ("time", "event", "jail", "ip", "origin", "actor", "country", "bantime", "failures",
              "ends_at", "matches", "source_host")
CSV_HEADER_LINE = ",".join(CSV_HEADER)


def _iso(epoch: float | None) -> str:
    """ISO 8601 UTC with a Z, to the fraction a time has (fail2ban's are whole seconds; bangui's own are not)."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def csv_lines(connect: Callable[[], sqlite3.Connection], page_size: int = MAX_LIMIT,
              **filters: Any) -> Iterator[str]:
    """The filtered history as CSV lines (header first), fetched one page at a time (see `csv_chunks`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for rows in _csv_pages(connect, page_size, filters):
        for row in rows:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(row)
            yield buffer.getvalue()


def csv_chunks(connect: Callable[[], sqlite3.Connection], page_size: int = MAX_LIMIT,
               **filters: Any) -> Iterator[str]:
    """The same CSV text as `csv_lines`, one string per page (the header is the first): what the export streams.

    Per line, a generator step (a thread hop when Starlette iterates it) and a `writerow` into a fresh buffer cost
    more than the line's query; per page, the lines come formatted from SQLite (`_csv_page`; issue 25 item 4:
    decoding the log lines, the ISO times and the csv module were ~20 us a line in Python, ~4x the query).
    """
    filters.pop("limit", None)
    filters.pop("cursor", None)
    # The first page is read before the header is yielded: bad filters raise before the first byte (and so before
    # the 200) rather than cutting a started stream (issue 8 item 12).
    text, cursor = _csv_page(connect(), page_size, None, filters)
    yield CSV_HEADER_LINE + "\r\n"
    while True:
        yield text
        if cursor is None:
            return
        text, cursor = _csv_page(connect(), page_size, cursor, filters)


def _quoted(x: str) -> str:
    """SQL for the csv module's QUOTE_MINIMAL of text `x`: quoted (inner quotes doubled) when it holds a comma, a
    quote, CR or LF. (instr, not GLOB '*[...]*': the pattern match cost ~3 us on a row's log lines.)"""
    return (f"CASE WHEN instr({x}, ',') OR instr({x}, '\"') OR instr({x}, char(10)) OR instr({x}, char(13)) "
            f"THEN '\"'||replace({x}, '\"', '\"\"')||'\"' ELSE {x} END")


def _iso_sql(x: str) -> str:
    """SQL for `_iso` of a time `x` that is a whole second (or NULL: ''); any other value gives NULL, which sends
    the row to Python (a fraction is formatted to the microsecond with Python's rounding, not SQLite's)."""
    return (f"CASE WHEN {x} IS NULL THEN '' WHEN {x} = CAST({x} AS INTEGER) "
            f"THEN strftime('%Y-%m-%dT%H:%M:%SZ', {x}, 'unixepoch') END")


# One CSV line per row, exactly as csv_lines writes it, or NULL where SQL cannot say for sure (then Python formats
# the row): a fractional time (bangui's own records), a bantime that is not an integer, log lines that are not
# all strings (fail2ban 0.10 stored parts) or that hold \u escapes (a NUL or a lone surrogate decodes differently).
# `p` is the page (a materialized CTE: each subquery runs once a row); the next ban is only looked up for the few
# bans that an unban followed.
_CSV_LINE = "||','||".join((
    _iso_sql("p.at"), "p.event", _quoted("p.jail"), _quoted("p.ip"), "p.origin", _quoted("coalesce(p.actor, '')"),
    _quoted("coalesce(p.country, '')"), "CASE WHEN p.bantime IS NULL THEN '' WHEN typeof(p.bantime) = 'integer' "
    "THEN p.bantime END", "coalesce(p.failures, '')", _iso_sql("p.ends_at"), _quoted("p.matches"),
    _quoted("coalesce(p.source_host, '')"))) + "||char(13, 10)"
_NATURAL = "CASE WHEN e.bantime >= 0 THEN e.at + e.bantime END"
_CSV_PAGE = (
    "SELECT e.id, e.ipkey, e.at, e.event, e.jail, e.ip, e.origin, e.actor, e.country, e.bantime, "
    f"{FAILURES} AS failures, e.source_host, "
    "CASE WHEN json_valid(e.data) THEN CASE WHEN json_type(e.data, '$.matches') = 'array' THEN "
    "CASE WHEN instr(e.data, '\\u') = 0 THEN (SELECT CASE WHEN count(*) = total(type = 'text') THEN "
    "coalesce(group_concat(value, char(10)), '') END FROM json_each(e.data, '$.matches')) END ELSE '' END "
    "ELSE '' END AS matches, "
    "CASE WHEN e.event = 'ban' THEN (SELECT min(u.at) FROM events u INDEXED BY events_unban "
    "WHERE u.ipkey = e.ipkey AND u.jail = e.jail "
    f"AND u.at >= e.at AND u.event = 'unban') END AS unban_at, {_NATURAL} AS natural FROM events e")


def _csv_sql(where: str) -> str:
    return (f"WITH p0 AS MATERIALIZED ({_CSV_PAGE}{where} ORDER BY e.at DESC, e.id DESC LIMIT ?), "
            "p AS (SELECT p0.*, CASE WHEN event = 'ban' THEN CASE WHEN unban_at IS NOT NULL AND (natural IS NULL "
            "OR unban_at <= natural) AND unban_at <= coalesce((SELECT min(b.at) FROM events b WHERE "
            "b.ipkey = p0.ipkey AND b.jail = p0.jail AND b.at > p0.at "
            "AND b.event = 'ban'), unban_at) THEN unban_at ELSE natural END END AS ends_at FROM p0) "
            f"SELECT id, at, {_CSV_LINE} FROM p ORDER BY at DESC, id DESC")


def _csv_page(conn: sqlite3.Connection, limit: int, cursor: str | None,
              filters: dict[str, Any]) -> tuple[str, str | None]:
    """One page of CSV lines (newest first, as `_page`) and the next page's cursor (or None)."""
    clauses, params = _page_where(limit, cursor, filters)
    rows = conn.execute(_csv_sql(" WHERE " + " AND ".join(clauses) if clauses else ""),
                        [*params, limit + 1]).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    missing = [r[0] for r in rows if r[2] is None]
    if missing:  # formatted by Python, as csv_lines does
        full = {r[0]: r for r in conn.execute(
            f"SELECT {_COLUMNS} FROM events e WHERE e.id IN ({','.join('?' * len(missing))})", missing)}
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        lines = []
        for event_id, _at, line in rows:
            if line is None:
                buffer.seek(0)
                buffer.truncate()
                writer.writerow(_csv_row(full[event_id]))
                line = buffer.getvalue()
            lines.append(line)
        text = "".join(lines)
    else:
        text = "".join([r[2] for r in rows])
    return text, encode_cursor(rows[-1][1], rows[-1][0]) if more else None


def _csv_pages(connect: Callable[[], sqlite3.Connection], page_size: int,
               filters: dict[str, Any]) -> Iterator[list[tuple[Any, ...]] | list[tuple[str, ...]]]:
    """[CSV_HEADER], then each page's CSV rows. `connect` is called per page: a streaming response may resume
    this generator on another thread. Log lines (matches) are joined with newlines into one field (the csv module
    escapes commas, quotes and newlines)."""
    filters.pop("limit", None)
    filters.pop("cursor", None)
    # The first page is read before the header is yielded: bad filters raise before the first byte (and so before
    # the 200) rather than cutting a started stream (issue 8 item 12).
    rows, cursor = _page(connect(), page_size, None, filters)
    yield [CSV_HEADER]
    while True:
        # The row tuples of `history` straight to CSV fields: no item dicts (a third of the time per line).
        yield [_csv_row(row) for row in rows]
        if cursor is None:
            return
        rows, cursor = _page(connect(), page_size, cursor, filters)


def _csv_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The CSV fields of one `_COLUMNS` row."""
    (_id, event, jail, ip, at, bantime, _bancount, failures, matches, origin, actor, country, source_host,
     unban_at, next_ban_at) = row
    return (_iso(at), event, jail, ip, origin, actor or "", country or "", _blank(bantime), _blank(failures),
            _iso(_ends_at(at, bantime, unban_at, next_ban_at) if event == "ban" else None),
            "\n".join(_matches(matches)), source_host or "")


def _blank(value: Any) -> Any:
    return "" if value is None else value
