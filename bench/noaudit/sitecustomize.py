"""Benchmark-only: a bangui server started with this directory on PYTHONPATH writes no audit entries
(bench/audit.py runs it beside a normal server to measure what the audit write costs). Never used
outside bench/."""

from store.audit import AuditLog


def _skip(self: AuditLog, entry: dict) -> int:  # type: ignore[type-arg]
    return 0


AuditLog.append = _skip  # type: ignore[method-assign]
