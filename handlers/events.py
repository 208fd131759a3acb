"""Live events for the page (issue 23 item 2): one server-sent event stream per open page, `GET /api/v1/events`.

Every worker can answer it and every event reaches it, whoever caused it, because the stream reads only what all
processes share, polled cheaply per connection (every POLL_S, in a worker thread):
- the ban archive by id (`store.history`): every ban and unban reaches it (bangui's own at once, fail2ban's and
  the fleet's through the leader's sync and the fleet agent) -> `ban` / `unban` events;
- the audit log's completed jail and server changes (start, stop, idle, reload, activation, settings) -> `jail`;
- the leader's fail2ban snapshot (`store.runtime`): fail2ban reachable or not, the set of jails -> `fail2ban`.
Each poll is one index seek per table and one small cache read. Event ids are `<history id>.<audit id>`: a
client that reconnects (EventSource sends Last-Event-ID by itself) gets what it missed, or a `reset` event when
that is more than BACKLOG events (the page then reloads its data instead).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import msgspec
from starlette.responses import StreamingResponse

from core.roles import Role
from errors import Unavailable
from handlers.api import Call, iso, route
from handlers.logs import _server_stopping
from store import Store
from store.base import offload

POLL_S = 0.25
KEEPALIVE_S = 15.0
RETRY_MS = 1000
BACKLOG = 500  # at most this many missed events are replayed to a reconnecting client
MAX_STREAMS = 256  # per worker process
_open = [0]
_encode = msgspec.json.Encoder().encode
# completed audited actions that change what the page shows of jails or fail2ban (bans come from history)
_JAIL_ACTIONS = ("jail.start", "jail.stop", "jail.reload", "jail.idle", "jail.update", "jail.ignoreip_add",
                 "jail.ignoreip_remove", "config.jail_activate", "config.jail_deactivate", "config.revert",
                 "server.reload", "server.restart", "server.settings_update")


def _cursor(store: Store, resume: str | None) -> tuple[dict[str, Any], bool]:
    """(the position to follow from, whether the client's resume point was too far back)."""
    now = {"history": store.history.last_event_id(), "audit": store.audit.last_id()}
    try:
        h_id, a_id = (int(x) for x in (resume or "").split("."))
    except ValueError:
        return now, False
    if now["history"] - h_id > BACKLOG or now["audit"] - a_id > BACKLOG or h_id > now["history"]:
        return now, True
    return {"history": h_id, "audit": a_id}, False


def _fail2ban(store: Store) -> dict[str, Any]:
    snap = store.runtime.current() or {}
    return {"reachable": snap.get("reachable"), "error": snap.get("error"),
            "jails": sorted(j.get("name", "") for j in snap.get("jails") or [])}


def poll(store: Store, cursor: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """New events since `cursor` (updated in place): blocking reads, run in a thread."""
    out: list[tuple[str, dict[str, Any]]] = []
    for row in store.history.events_after(int(cursor["history"]), BACKLOG):
        cursor["history"] = row["id"]
        out.append((row["event"], {"jail": row["jail"], "ip": row["ip"], "at": iso(row["at"]),
                                   "origin": row["origin"], "actor": row["actor"]}))
    for entry in store.audit.after(int(cursor["audit"]), BACKLOG):
        cursor["audit"] = entry["id"]
        if entry["action"] in _JAIL_ACTIONS and entry["outcome"] not in ("pending", "denied"):
            out.append(("jail", {"action": entry["action"], "jail": entry.get("target"), "outcome": entry["outcome"]}))
    state = _fail2ban(store)
    if state != cursor.get("fail2ban"):
        if "fail2ban" in cursor:  # the first reading is sent by the stream's start, not as a change
            out.append(("fail2ban", state))
        cursor["fail2ban"] = state
    return out


def _frame(kind: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    head = f"event: {kind}\n".encode()
    tail = f"id: {event_id}\n".encode() if event_id else b""
    return head + b"data: " + _encode(data) + b"\n" + tail + b"\n"


async def _stream(store: Store, resume: str | None, max_seconds: float | None) -> AsyncIterator[bytes]:
    _open[0] += 1
    try:
        stopping = _server_stopping()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        cursor, too_old = await offload(_cursor, store, resume)
        cursor["fail2ban"] = await offload(_fail2ban, store)
        yield f"retry: {RETRY_MS}\n\n".encode() + _frame("hello", {"fail2ban": cursor["fail2ban"]},
                                                        f"{cursor['history']}.{cursor['audit']}")
        if too_old:
            yield _frame("reset", {})
        quiet_since = time.monotonic()
        while not stopping() and (deadline is None or time.monotonic() < deadline):
            events = await offload(poll, store, cursor)
            if events:
                position = f"{cursor['history']}.{cursor['audit']}"
                yield b"".join(_frame(kind, data, position if i == len(events) - 1 else None)
                               for i, (kind, data) in enumerate(events))
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= KEEPALIVE_S:
                yield b": keepalive\n\n"
                quiet_since = time.monotonic()
            await anyio.sleep(POLL_S)
        yield _frame("end", {})
    finally:
        _open[0] -= 1


async def stream_events(call: Call) -> StreamingResponse:
    if _open[0] >= MAX_STREAMS:
        raise Unavailable(f"{MAX_STREAMS} event streams are open in this worker already; close a page and retry",
                          code="too_many_streams", headers={"Retry-After": "10"})
    max_seconds = call.max_seconds()
    resume = call.request.headers.get("last-event-id") or call.query("after")
    return StreamingResponse(_stream(call.deps.store, resume, max_seconds), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})


routes = [
    route("GET", "/events", stream_events, Role.viewer,
          "Live events for the page (server-sent events): `ban`, `unban` (jail, ip, at, origin, actor), `jail` "
          "(a completed jail or server change), `fail2ban` (reachable, error, jails), `reset` (reload your data).",
          query={"max_seconds": "end the stream after this long (default: until the client leaves)",
                 "after": "resume after this event id (as the Last-Event-ID header does)"}),
]
