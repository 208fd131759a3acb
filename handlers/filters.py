"""Filter tester (operator): a filter from the configuration, or ad-hoc regexes, against given lines or
the tail of a log file, through fail2ban's own engine (f2b/engine.py: same results as fail2ban-regex).

A test runs in a child process with a deadline (BANGUI_FILTER_TEST_SECONDS): a catastrophic regex is
killed and answered 422 `filter_timeout` while the server keeps serving. Readable log files: those a
running jail watches, and files under BANGUI_LOG_DIRS (symlinks resolved first).
"""

from __future__ import annotations

import os
import re
import time
from typing import Annotated, Any

import msgspec

from errors import Forbidden, InvalidInput, NotFound
from f2b.engine_client import FILTERS
from handlers.api import Call, iso, route
from handlers.jails import gather
from handlers.security import Role
from store.base import offload

MAX_LINES = 10_000  # given inline
MAX_FILE_LINES = 100_000  # the tail of a log file
MAX_BODY = 16 * 1024 * 1024  # 10,000 long lines do not fit the default body limit
FILTER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(\[[A-Za-z0-9_=,.: -]{0,200}\])?")

Regex = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class FilterTestRequest(msgspec.Struct, forbid_unknown_fields=True):
    filter: str | None = None
    failregex: Annotated[list[Regex], msgspec.Meta(max_length=100)] | None = None
    ignoreregex: Annotated[list[Regex], msgspec.Meta(max_length=100)] | None = None
    datepattern: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    lines: Annotated[list[Annotated[str, msgspec.Meta(max_length=65536)]],
                     msgspec.Meta(max_length=MAX_LINES)] | None = None
    logpath: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)] | None = None
    max_matches: Annotated[int, msgspec.Meta(ge=0, le=MAX_FILE_LINES)] = 1000


class FilterMatch(msgspec.Struct):
    line: str
    ip: str | None
    time: str | None
    regex: str


class FilterTestResult(msgspec.Struct):
    lines_checked: int
    matched: int
    ignored: int
    missed: int
    matches: list[FilterMatch]
    matches_truncated: bool
    missed_sample: list[str]
    elapsed_ms: float


def _bad(message: str, field: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_body", details={"field": field})


def _filter_name(config_dir: str, name: str) -> str:
    if not FILTER_RE.fullmatch(name):
        raise _bad("filter: a filter name from filter.d, e.g. sshd or sshd[mode=aggressive]", "filter")
    base = name.split("[", 1)[0]
    if not any(os.path.isfile(os.path.join(config_dir, "filter.d", base + ext)) for ext in (".conf", ".local")):
        raise NotFound(f"no filter {base} in {config_dir}/filter.d", code="filter_not_found",
                       details={"filter": base})
    return name


async def _watched_files(call: Call) -> list[str]:
    client = call.deps.fail2ban

    async def logpaths(jail: str) -> list[str]:
        return [str(p) for p in await client.call("get", jail, "logpath")]

    return [p for paths in await gather(logpaths, await client.jail_names()) for p in paths]


def _check_log(path: str, watched: list[str], log_dirs: str) -> str:
    """The real path of ``path`` if a jail watches it or it lies under BANGUI_LOG_DIRS (blocking)."""
    if not os.path.isabs(path) or "\x00" in path:
        raise _bad("logpath: an absolute path", "logpath")
    real = os.path.realpath(path)
    dirs = [os.path.realpath(d.strip()) for d in log_dirs.split(",") if d.strip()]
    allowed = any(os.path.commonpath([real, d]) == d for d in dirs) or real in {os.path.realpath(p) for p in watched}
    if not allowed:
        raise Forbidden(f"{path} is neither watched by a jail nor under BANGUI_LOG_DIRS ({log_dirs})",
                        code="logpath_forbidden", details={"logpath": path})
    if not os.path.isfile(real):
        raise NotFound(f"{path} is not a readable file", code="logpath_not_found", details={"logpath": path})
    return real


async def test_filter(call: Call) -> FilterTestResult:
    body: FilterTestRequest = call.body
    settings = call.deps.settings
    if (body.filter is None) == (body.failregex is None):
        raise _bad("give either filter (a name) or failregex (a list)", "filter")
    if body.filter is None and not body.failregex:
        raise _bad("failregex: at least one regex", "failregex")
    if (body.lines is None) == (body.logpath is None):
        raise _bad("give either lines (a list) or logpath (a file)", "lines")
    request: dict[str, Any] = {"config_dir": settings.fail2ban_config_dir, "max_matches": body.max_matches,
                               "max_lines": MAX_FILE_LINES}
    if body.filter is not None:
        request["filter"] = await offload(_filter_name, settings.fail2ban_config_dir, body.filter)
        if body.ignoreregex or body.datepattern:
            raise _bad("ignoreregex/datepattern go with failregex; a named filter brings its own", "filter")
    else:
        request.update(failregex=body.failregex, ignoreregex=body.ignoreregex or [],
                       datepattern=body.datepattern)
    if body.logpath is not None:
        request["logpath"] = await offload(_check_log, body.logpath, await _watched_files(call),
                                           settings.log_dirs)
    else:
        request["lines"] = body.lines
    started = time.perf_counter()
    out = await FILTERS.test(request, settings.filter_test_seconds)
    matches = [FilterMatch(m["line"], None if m["ip"] is None else str(m["ip"]),
                           iso(m["time"]) if m["time"] is not None else None, m["regex"]) for m in out["matches"]]
    return FilterTestResult(out["lines_checked"], out["matched"], out["ignored"], out["missed"], matches,
                            out["matches_truncated"], out["missed_sample"],
                            round((time.perf_counter() - started) * 1000, 1))


routes = [
    route("POST", "/filters/test", test_filter, Role.operator,
          "Test a filter or regexes against lines or a log file with fail2ban's own engine.",
          body=FilterTestRequest, response=FilterTestResult, max_body_bytes=MAX_BODY),
]
