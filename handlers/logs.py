"""fail2ban's log (viewer): the tail of the file fail2ban reports as its logtarget (`get logtarget`;
nothing else is readable this way), and the same file followed live as server-sent events.

The stream sends one `data: {"time","level","text"}` event per line, a comment every KEEPALIVE_S (so a
gone client is noticed at the next write), follows rotation and truncation, and ends cleanly when the
client disconnects, after `max_seconds`, or when the server shuts down (see `_server_stopping`).
Events carry ids (file inode and offset): a client that reconnects with `Last-Event-ID` (EventSource does
it by itself, after `retry` ms) or `?after=` resumes where it left off, so a dropped connection (a proxy's
idle timeout, a network change) loses no line.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import msgspec
from starlette.responses import StreamingResponse

from core.roles import Role
from errors import Conflict, Forbidden, InvalidInput, Unavailable
from f2b import logfile
from handlers.api import Call, iso, route
from store.base import offload

MAX_LINES = 5000
POLL_S = 0.25
KEEPALIVE_S = 10.0
RETRY_MS = 1000  # how soon an EventSource reconnects after a dropped connection
MAX_STREAMS = 64  # open streams per worker process (each holds a file and polls it)
_open_streams = [0]
_encode = msgspec.json.Encoder().encode
_LOG_QUERY = {"lines": f"how many lines, 1-{MAX_LINES} (default 200)",
              "grep": "only lines containing this text (case-insensitive)",
              "level": "only this level and more severe: DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL"}


def _shown(entry: logfile.Entry) -> dict[str, Any]:
    return {"time": iso(entry.time), "level": entry.level, "text": entry.text}


async def _log_file(call: Call) -> str:
    target = await call.deps.fail2ban.logtarget()
    if not os.path.isabs(target):
        raise Conflict(f"fail2ban logs to {target}, not to a file: set `logtarget = /var/log/fail2ban.log` "
                       "in fail2ban.local (and reload fail2ban) to read its log here",
                       code="logtarget_not_file", details={"logtarget": target})
    if not os.access(target, os.R_OK):  # 403 as the filter tester answers for a log it cannot read
        raise Forbidden(f"fail2ban's log {target} is not readable by bangui (missing, or its mode refuses): run "
                        "bangui as a user that may read it (e.g. in group adm) or adjust the file's mode",
                        code="log_unreadable", details={"file": target})
    return target


def _filters(call: Call) -> tuple[str | None, int | None]:
    grep = call.query("grep") or None
    if grep is not None and len(grep) > 200:
        raise InvalidInput("grep: at most 200 characters", code="invalid_query", details={"field": "grep"})
    level = (call.query("level") or "").upper() or None
    if level is not None and level not in logfile.LEVELS:
        raise InvalidInput(f"level: one of {', '.join(logfile.LEVELS)}", code="invalid_query",
                           details={"field": "level"})
    return grep, logfile.LEVELS[level] if level else None


async def read_log(call: Call) -> dict[str, Any]:
    raw = call.query("lines") or "200"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LINES:
        raise InvalidInput(f"lines: a whole number from 1 to {MAX_LINES}", code="invalid_query",
                           details={"field": "lines"})
    grep, level = _filters(call)
    path = await _log_file(call)
    entries, truncated = await offload(logfile.tail, path, int(raw), grep, level)
    return {"file": path, "lines": [_shown(e) for e in entries], "truncated": truncated}


def _server_stopping() -> Callable[[], bool]:
    """hypercorn asks its worker processes to stop through the multiprocessing Event it hands to the
    worker function (kwargs ``shutdown_event``); requests still open are only cancelled after its
    graceful timeout. A stream that watches that Event ends cleanly at once instead. Outside hypercorn's
    workers (tests, other servers) there is no such Event and streams end on disconnect."""
    kwargs = getattr(multiprocessing.current_process(), "_kwargs", None) or {}
    event = kwargs.get("shutdown_event")
    is_set = getattr(event, "is_set", None)
    return is_set if callable(is_set) else (lambda: False)


async def _events(path: str, grep: str | None, level: int | None, max_seconds: float | None,
                  resume: str | None) -> AsyncIterator[bytes]:
    _open_streams[0] += 1
    try:
        follower = await offload(logfile.Follower, path, resume)
    except BaseException:
        _open_streams[0] -= 1
        raise
    stopping = _server_stopping()
    needle = grep.lower() if grep else None
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    quiet_since = time.monotonic()
    try:
        yield f"retry: {RETRY_MS}\n: following {path}\n\n".encode()
        while not stopping() and (deadline is None or time.monotonic() < deadline):
            entries = await offload(follower.read)
            events = [b"data: " + _encode(_shown(e)) + b"\n" for e in entries if logfile.wanted(e, needle, level)]
            if events:
                # The last event carries the position after this batch: a reconnecting client (EventSource
                # sends Last-Event-ID by itself) resumes there and misses no line.
                events[-1] += f"id: {follower.cursor}\n".encode()
                yield b"\n".join(events) + b"\n"
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= KEEPALIVE_S:
                yield b": keepalive\n\n"
                quiet_since = time.monotonic()
            if not entries:
                await anyio.sleep(POLL_S)
        yield b"event: end\ndata: {}\n\n"
    finally:
        _open_streams[0] -= 1
        follower.close()


async def stream_log(call: Call) -> StreamingResponse:
    if _open_streams[0] >= MAX_STREAMS:
        raise Unavailable(f"{MAX_STREAMS} log streams are open in this worker already; close one and retry",
                          code="too_many_streams", headers={"Retry-After": "10"})
    grep, level = _filters(call)
    max_seconds = call.max_seconds()
    path = await _log_file(call)
    resume = call.request.headers.get("last-event-id") or call.query("after")
    return StreamingResponse(_events(path, grep, level, max_seconds, resume), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})


routes = [
    route("GET", "/logs", read_log, Role.viewer, "The tail of fail2ban's log file (its logtarget).",
          query=_LOG_QUERY),
    route("GET", "/logs/stream", stream_log, Role.viewer,
          "fail2ban's log followed live (server-sent events: one JSON line per event).",
          query={"grep": _LOG_QUERY["grep"], "level": _LOG_QUERY["level"],
                 "max_seconds": "end the stream after this long (default: until the client leaves)",
                 "after": "resume after this event id (as the Last-Event-ID header does)"}),
]
