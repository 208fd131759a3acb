"""Check 7: filters that never match. An enabled jail whose filter matched none of the last 10,000 lines of a
log that has lines (fail2ban's own engine, the filter tester's: f2b/engine.py `filter-tests`, all jails in
one child), or whose log has not changed in 7 days (the service logs elsewhere now, or is gone).

The filter tests are the slow part of a run: each result is kept per (filter, log, size, mtime), so a run
tests again only the logs that changed. A run waits for them at most BUDGET_S (issue 24: the advisor answers
in under 2 s; 20 logs of 10,000 lines take ~5 s here: bench/advisor.py); tests still running then finish in
the background, the run says which jails are pending (an `info` finding), and `generation()` moves on when
their results land, so the next run (report.py's cache key) includes them."""

from __future__ import annotations

import threading
import time
from typing import Any

from advisor.context import Context
from advisor.finding import Finding
from f2b.engine_client import filter_tests

LINES = 10_000
STALE_DAYS = 7
BUDGET_S = 1.0
Key = tuple[str, str, int, int]
_results: dict[Key, dict[str, Any]] = {}  # bounded: one entry per jail log version
_running: dict[Key, threading.Event] = {}  # tests under way (in this process), set when their result is in
_generation = 0
_lock = threading.Lock()


def generation() -> int:
    """How many batches of filter tests have finished in this process (part of the advisor's cache key)."""
    with _lock:
        return _generation


def _run_tests(config_dir: str, todo: dict[Key, dict[str, Any]], seconds: float) -> None:
    global _generation
    keys = list(todo)
    try:
        results = filter_tests(config_dir, [todo[k] for k in keys], seconds)
    except Exception as exc:  # a timeout or a crash of the child: unknown for these logs, tried again next run
        results = [{"error": str(exc), "retry": True}] * len(keys)
    with _lock:
        _results.update((k, r) for k, r in zip(keys, results, strict=True) if not r.get("retry"))
        for key in keys:
            _running.pop(key).set()
        _generation += 1


def _start(config_dir: str, todo: dict[Key, dict[str, Any]], seconds: float) -> None:
    """Test ``todo`` in a thread of its own (a run may return before it ends); the caller holds _lock."""
    for key in todo:
        _running[key] = threading.Event()
    threading.Thread(target=_run_tests, args=(config_dir, todo, seconds), name="advisor-filter-tests",
                     daemon=True).start()


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


def check(ctx: Context, now: float | None = None, budget: float = BUDGET_S) -> list[Finding]:
    now = time.time() if now is None else now
    deadline = time.monotonic() + budget
    todo: dict[Key, dict[str, Any]] = {}
    jobs: list[tuple[dict[str, Any], str, Key]] = []
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
            if key not in _results and key not in _running:
                todo[key] = {"filter": jail["filter"], "logpath": ctx.host.at(path), "max_lines": LINES,
                             "max_matches": 0, "missed_sample": 0}
    with _lock:
        if todo:
            _start(ctx.config_dir, todo, max(30.0, ctx.filter_test_seconds))
        waits = [_running[k] for _, _, k in jobs if k in _running]
    for event in waits:
        event.wait(max(0.0, deadline - time.monotonic()))
    pending = []
    for jail, path, key in jobs:
        with _lock:
            out = _results.get(key)
        if out is None:
            pending.append(jail["name"])
            continue
        if "error" in out or not out.get("lines_checked") or out.get("matched"):
            continue  # an unreadable log or a filter fail2ban rejects is not "never matches": unknown here
        name = jail["name"]
        findings.append(Finding(
            f"filter-never-matches:{name}", "warning", f"{name}'s filter matches nothing in its log",
            f"filter {jail['filter']} matched none of the last {out['lines_checked']} lines of {path}: the service "
            "may log in another format (or to another file), so attacks go unseen", name, None,
            {"filter": jail["filter"], "logpath": path, "lines_checked": out["lines_checked"]}))
    if pending:
        findings.append(Finding(
            "filter-tests-pending", "info", f"{len(pending)} filters are still being tested against their logs",
            f"fail2ban's engine is reading the last {LINES} lines of the logs of {', '.join(pending)}; whether their "
            "filters match anything is unknown until it is done (check again in a few seconds)", None, None,
            {"jails": pending}))
    return findings
