"""Check 7: filters that never match. An enabled jail whose filter matched none of the last 10,000 lines of a
log that has lines (fail2ban's own engine, the filter tester's: f2b/engine.py `filter-tests`, all jails in
one child), or whose log has not changed in 7 days (the service logs elsewhere now, or is gone).

The filter tests are the slow part of a run: each result is kept per (filter, log, size, mtime), so a run
tests again only the logs that changed."""

from __future__ import annotations

import threading
import time
from typing import Any

from advisor.context import Context
from advisor.finding import Finding
from f2b.engine_client import filter_tests

LINES = 10_000
STALE_DAYS = 7
_results: dict[tuple[str, str, int, int], dict[str, Any]] = {}  # bounded: one entry per jail log version
_lock = threading.Lock()


def _log_of(ctx: Context, jail: dict[str, Any]) -> tuple[str, Any] | None:
    if jail["backend"].startswith("systemd") or (ctx.running is not None and jail["name"] not in ctx.running):
        return None
    for pattern in jail["logpath"]:
        for path in ctx.host.matches(pattern):
            stat = ctx.host.stat(path)
            if stat is not None and stat.st_size > 0:
                return path, stat
    return None


def _stale(jail: dict[str, Any], path: str, mtime: float, now: float) -> Finding | None:
    days = (now - mtime) / 86400
    if days < STALE_DAYS:
        return None
    name = jail["name"]
    return Finding(f"log-stale:{name}", "info", f"{name}'s log has not changed in {int(days)} days",
                   f"{path} was last written {int(days)} days ago: the service may log elsewhere now, or be gone",
                   name, None, {"logpath": path, "days": int(days)})


def check(ctx: Context, now: float | None = None) -> list[Finding]:
    now = time.time() if now is None else now
    todo: dict[tuple[str, str, int, int], dict[str, Any]] = {}
    jobs: list[tuple[dict[str, Any], str, tuple[str, str, int, int]]] = []
    findings: list[Finding] = []
    for jail in ctx.enabled():
        found = _log_of(ctx, jail)
        if found is None or not jail["filter"]:
            continue
        path, stat = found
        if (stale := _stale(jail, path, stat.st_mtime, now)) is not None:
            findings.append(stale)
        key = (jail["filter"], path, stat.st_size, stat.st_mtime_ns)
        jobs.append((jail, path, key))
        with _lock:
            if key not in _results:
                todo[key] = {"filter": jail["filter"], "logpath": ctx.host.at(path), "max_lines": LINES,
                             "max_matches": 0, "missed_sample": 0}
    if todo:
        keys = list(todo)
        results = filter_tests(ctx.config_dir, [todo[k] for k in keys], max(30.0, ctx.filter_test_seconds))
        with _lock:
            _results.update(zip(keys, results, strict=True))
    for jail, path, key in jobs:
        with _lock:
            out = _results.get(key) or {}
        if "error" in out or not out.get("lines_checked") or out.get("matched"):
            continue  # an unreadable log or a filter fail2ban rejects is not "never matches": unknown here
        name = jail["name"]
        findings.append(Finding(
            f"filter-never-matches:{name}", "warning", f"{name}'s filter matches nothing in its log",
            f"filter {jail['filter']} matched none of the last {out['lines_checked']} lines of {path}: the service "
            "may log in another format (or to another file), so attacks go unseen", name, None,
            {"filter": jail["filter"], "logpath": path, "lines_checked": out["lines_checked"]}))
    return findings
