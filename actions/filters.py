"""Filter tester (issue 10): a filter from the configuration, or ad-hoc regexes, against given lines or the
tail of a log file, through fail2ban's own engine (f2b/engine.py: same results as fail2ban-regex).

Changes nothing, but is an action like every POST (audited: who tested what against which file). A test
runs in a child process with a deadline (BANGUI_FILTER_TEST_SECONDS): a catastrophic regex is killed and
answered 422 `filter_timeout` while the server keeps serving. Readable log files: those a running jail
watches, and files under BANGUI_LOG_DIRS (symlinks resolved before the check). One user runs at most
BANGUI_FILTER_TESTS_PER_USER tests at once on the host (all workers together; more: 429 with Retry-After).
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import anyio

from actions.base import Act, action
from core.roles import Role
from errors import Forbidden, InvalidInput, NotFound, RateLimited
from f2b.engine_client import filter_test
from store.base import offload

MAX_FILE_LINES = 100_000  # the tail of a log file
FILTER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(\[[A-Za-z0-9_=,.: -]{0,200}\])?")


def _bad(message: str, field: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_body", details={"field": field})


def _filter_name(config_dir: str, name: str) -> str:
    """``name`` (optionally with fail2ban's ``[opt=value]``) when filter.d has it (blocking)."""
    if not FILTER_RE.fullmatch(name):
        raise _bad("filter: a filter name from filter.d, e.g. sshd or sshd[mode=aggressive]", "filter")
    base = name.split("[", 1)[0]
    if not any(os.path.isfile(os.path.join(config_dir, "filter.d", base + ext)) for ext in (".conf", ".local")):
        raise NotFound(f"no filter {base} in {config_dir}/filter.d", code="filter_not_found",
                       details={"filter": base})
    return name


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
    if not os.access(real, os.R_OK):  # as GET /logs: e.g. /var/log/auth.log (root:adm 0640), issue 20 item 10
        raise Forbidden(f"{path} is not readable by bangui: run bangui as a user that may read it (e.g. in group "
                        "adm) or adjust the file's mode", code="log_unreadable", details={"logpath": path})
    return real


async def _watched_files(act: Act) -> list[str]:
    client = act.deps.fail2ban
    names = await client.jail_names()
    replies = await client.pipeline([("get", name, "logpath") for name in names]) if names else []
    return [str(p) for paths in replies for p in paths]


@action("filter.test", Role.operator)
async def test_filter(act: Act, *, filter: str | None = None, failregex: list[str] | None = None,
                      ignoreregex: list[str] | None = None, datepattern: str | None = None,
                      lines: list[str] | None = None, logpath: str | None = None,
                      max_matches: int = 1000) -> dict[str, Any]:
    """fail2ban-regex's counts plus each match (line, ip, epoch time, regex) and a sample of missed lines."""
    settings = act.deps.settings
    if (filter is None) == (failregex is None):
        raise _bad("give either filter (a name) or failregex (a list)", "filter")
    if filter is None and not failregex:
        raise _bad("failregex: at least one regex", "failregex")
    if (lines is None) == (logpath is None):
        raise _bad("give either lines (a list) or logpath (a file)", "lines")
    request: dict[str, Any] = {"config_dir": settings.fail2ban_config_dir, "max_matches": max_matches,
                               "max_lines": MAX_FILE_LINES}
    if filter is not None:
        if ignoreregex or datepattern:
            raise _bad("ignoreregex/datepattern go with failregex; a named filter brings its own", "filter")
        request["filter"] = await offload(_filter_name, settings.fail2ban_config_dir, filter)
        act.details["filter"] = filter
    else:
        request.update(failregex=failregex, ignoreregex=ignoreregex or [], datepattern=datepattern)
        act.details["failregex"] = len(failregex or [])
    if logpath is not None:
        request["logpath"] = await offload(_check_log, logpath, await _watched_files(act), settings.log_dirs)
        act.details["logpath"] = logpath
    else:
        request["lines"] = lines
        act.details["lines"] = len(lines or [])
    user = act.actor.user or act.actor.name
    slot, retry_after = await offload(act.deps.store.filter_tests.acquire, user)
    if slot is None:
        raise RateLimited(f"you already run {settings.filter_tests_per_user} filter tests at once; retry in "
                          f"{retry_after} s", retry_after)
    started = time.perf_counter()
    try:
        out = await filter_test(request, settings.filter_test_seconds)
    finally:
        with anyio.CancelScope(shield=True):  # also when the client went away: give the slot back
            await offload(act.deps.store.filter_tests.release, user, slot)
    act.details.update(matched=out["matched"], checked=out["lines_checked"])
    return dict(out, elapsed_ms=round((time.perf_counter() - started) * 1000, 1))
