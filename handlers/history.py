"""Ban history from bangui's own archive: filtered pages (JSON or streamed CSV) and dashboard stats.

Times in queries are ISO-8601 (`2026-11-28T10:00:00Z`) or epoch seconds; times in answers are ISO UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.datastructures import QueryParams
from starlette.responses import StreamingResponse

from core.addresses import jail_name
from core.roles import Role
from errors import InvalidInput
from handlers.api import Call, iso, route
from handlers.openapi import conforms, param_schema
from store.base import offload

_HISTORY_QUERY = {
    "since": "ISO-8601 or epoch seconds (inclusive)", "until": "ISO-8601 or epoch seconds (inclusive)",
    "jail": "jail name", "ip": "an address or a CIDR network", "origin": "auto | manual | blocklist | fleet",
    "country": "ISO 3166-1 alpha-2 code", "event": "ban | unban", "limit": "1-1000 (default 100)",
    "cursor": "next_cursor of the previous page", "format": "csv to stream CSV (or Accept: text/csv)",
    "host": "fleet mode: another host's archive, or * for every host's newest (JSON only)",
}


def parse_time(name: str, raw: str | None) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name}: expected ISO-8601 (2026-11-28T10:00:00Z) or epoch seconds",
                           code="invalid_query", details={"field": name}) from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{name}: give a time zone (e.g. a trailing Z for UTC)", code="invalid_query",
                           details={"field": name})
    return parsed.timestamp()


def query_window(call: Call, allowed: dict[str, str]) -> tuple[QueryParams, dict[str, Any]]:
    """The request's query (400 `invalid_query` for a parameter not in `allowed`) and its since/until
    window as epoch seconds: the start of every filtered listing (history, audit)."""
    query = call.request.query_params
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown query parameter {unknown[0]!r}", code="invalid_query",
                           details={"allowed": sorted(allowed)})
    return query, {"since": parse_time("since", query.get("since")),
                   "until": parse_time("until", query.get("until"))}


def check_declared(query: QueryParams, names: tuple[str, ...]) -> None:
    """400 `invalid_query` for a value of these parameters that their schema in the OpenAPI document refuses
    (handlers/openapi.py: a number, an enum, a pattern, a length), an empty one included (it is not "absent"):
    a client's validator and the server agree. The handlers' own checks follow."""
    for name in names:
        raw = query.get(name)
        if raw is not None and not conforms(raw, param_schema("", name)):
            raise InvalidInput(f"{name}: {raw[:40]!r} is not a valid value (see the OpenAPI document); leave the "
                               f"parameter out for its default", code="invalid_query", details={"field": name})


def _filters(call: Call) -> dict[str, Any]:
    query, filters = query_window(call, _HISTORY_QUERY)
    check_declared(query, ("since", "until", "ip", "origin", "event", "country", "limit", "cursor", "format"))
    for name in ("ip", "origin", "event", "cursor"):
        filters[name] = query.get(name) or None
    if query.get("jail") is not None:  # an empty ?jail= is not "every jail": the pattern forbids it
        filters["jail"] = jail_name(query["jail"])
    if query.get("country"):
        filters["country"] = query["country"].upper()
    if query.get("limit"):
        if not query["limit"].isdigit():
            raise InvalidInput("limit must be a whole number", code="invalid_query", details={"field": "limit"})
        filters["limit"] = int(query["limit"])
    return filters


def shown_event(item: dict[str, Any]) -> dict[str, Any]:
    """A history event with API times."""
    return dict(item, at=iso(item["at"]), ends_at=iso(item.get("ends_at")))


async def list_history(call: Call) -> Any:
    filters = _filters(call)
    if (host := call.query("host")) is not None:  # fleet mode (handlers/fleet.py)
        from handlers.fleet import remote_history

        remote = await remote_history(call, host, filters)
        if remote is not None:
            remote["items"] = [shown_event(i) for i in remote["items"]]
            return remote
    archive = call.deps.store.history
    wants_csv = call.query("format") == "csv" or "text/csv" in call.request.headers.get("accept", "")
    if wants_csv:
        lines = archive.csv_chunks(**filters)  # a page per chunk: one worker-thread step per 1,000 lines
        first = await offload(next, lines)  # validates the filters before the 200 is sent
        return StreamingResponse(_chain(first, lines), media_type="text/csv; charset=utf-8",
                                 headers={"content-disposition": 'attachment; filename="bangui-history.csv"'})
    items, cursor = await offload(lambda: archive.history(**filters))
    return {"items": [shown_event(i) for i in items], "next_cursor": cursor}


def _chain(first: str, rest: Any) -> Any:
    yield first
    yield from rest  # Starlette iterates a sync generator in a worker thread


async def get_stats(call: Call) -> dict[str, Any]:
    check_declared(call.request.query_params, ("range", "origin"))
    jail = call.query("jail")
    stats = await offload(lambda: call.deps.store.history.stats(
        call.query("range") or "24h", jail=jail_name(jail) if jail is not None else None, origin=call.query("origin")))
    return dict(stats, since=iso(stats["since"]), until=iso(stats["until"]),
                trend=[{"start": iso(b["start"]), "bans": b["bans"]} for b in stats["trend"]])


_OFFENDERS_QUERY = {"min_bans": "ban events at least (default 3)", "days": "in the last N days (default 30)",
                    "jail": "in this jail only"}


def _whole(query: QueryParams, name: str, default: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise InvalidInput(f"{name} must be a whole number from 1 to {high}", code="invalid_query",
                           details={"field": name})
    return int(raw)


async def repeat_offenders(call: Call) -> dict[str, Any]:
    """Addresses banned at least min_bans times in the last `days` days (issue 23 item 5), most bans first."""
    query = call.request.query_params
    unknown = sorted(set(query) - set(_OFFENDERS_QUERY))
    if unknown:
        raise InvalidInput(f"unknown query parameter {unknown[0]!r}", code="invalid_query",
                           details={"allowed": sorted(_OFFENDERS_QUERY)})
    min_bans, days = _whole(query, "min_bans", 3, 1_000_000), _whole(query, "days", 30, 36_500)
    jail = jail_name(query["jail"]) if query.get("jail") is not None else None  # ?jail= is refused (its pattern)
    offenders = await offload(call.deps.store.history.repeat_offenders, min_bans, days, jail)
    return {"offenders": offenders, "min_bans": min_bans, "days": days}


routes = [
    route("GET", "/history/repeat-offenders", repeat_offenders, Role.viewer,
          "Addresses banned at least min_bans times in the last `days` days (most first, at most 1000), with "
          "country, jails, first and last ban (epoch seconds).", query=_OFFENDERS_QUERY),
    route("GET", "/history", list_history, Role.viewer, "Ban history, newest first (JSON pages or CSV).",
          query=_HISTORY_QUERY),
    route("GET", "/stats", get_stats, Role.viewer, "Trend, bans by jail, top IPs and countries, by origin.",
          query={"range": "24h | 7d | 30d | 365d", "jail": "jail name", "origin": "auto | manual | blocklist | fleet"}),
]
