"""The audit log (admin): filtered pages newest first, CSV, and a check of the hash chain.

Filters: since/until (ISO-8601 or epoch seconds), actor, action (a prefix: `jail.` gives every jail
action), target, outcome (ok | denied | failed | pending | partial | interrupted: the current one), cursor,
limit (1-1000). `GET /audit/head`: the newest entry's id and hash, for an operator to keep elsewhere.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from starlette.responses import StreamingResponse

from core.roles import Role
from errors import InvalidInput
from handlers.api import Call, iso, route
from handlers.history import check_declared, query_window
from store.audit import FIELDS, MAX_LIMIT, OUTCOMES
from store.base import offload

_AUDIT_QUERY = {
    "since": "ISO-8601 or epoch seconds (inclusive)", "until": "ISO-8601 or epoch seconds (inclusive)",
    "actor": "who acted (user, token:<name>, cli:<os user>, ...)", "action": "an action or a prefix (jail.)",
    "target": "what was acted on", "outcome": " | ".join(OUTCOMES), "limit": "1-1000 (default 100)",
    "cursor": "next_cursor of the previous page", "format": "csv for CSV (or Accept: text/csv)",
}


def _filters(call: Call) -> dict[str, Any]:
    query, filters = query_window(call, _AUDIT_QUERY)
    check_declared(query, ("since", "until", "outcome", "limit", "cursor", "format"))
    for name in ("actor", "action", "target"):
        filters[name] = query.get(name) or None
    outcome = query.get("outcome") or None
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}", code="invalid_query",
                           details={"field": "outcome"})
    filters["outcome"] = outcome
    for name, low, high in (("limit", 1, MAX_LIMIT), ("cursor", 1, 2**62)):
        raw = query.get(name)
        if raw:
            if not raw.isdigit() or not low <= int(raw) <= high:
                raise InvalidInput(f"{name} must be a whole number from {low} to {high}", code="invalid_query",
                                   details={"field": name})
            filters[name] = int(raw)
    return filters


def shown_entry(entry: dict[str, Any]) -> dict[str, Any]:
    return dict(entry, at=iso(entry["at"]))


def _csv_lines(entries: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(FIELDS)
    for entry in entries:
        row = dict(shown_entry(entry), details=json.dumps(entry["details"], sort_keys=True))
        writer.writerow([row[f] for f in FIELDS])
        if buffer.tell() > 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


async def list_audit(call: Call) -> Any:
    filters = _filters(call)  # validated before the first byte, for CSV too
    log = call.deps.store.audit
    if call.query("format") == "csv" or "text/csv" in call.request.headers.get("accept", ""):
        filters.pop("limit", None)
        return StreamingResponse(_csv_lines(log.iter_all(**filters)), media_type="text/csv; charset=utf-8",
                                 headers={"content-disposition": 'attachment; filename="bangui-audit.csv"'})
    items, cursor = await offload(lambda: log.page(**filters))
    return {"items": [shown_entry(i) for i in items], "next_cursor": cursor}


async def audit_head(call: Call) -> dict[str, Any]:
    head = await offload(call.deps.store.audit.head)
    return dict(head, at=iso(head["at"]) if head["at"] is not None else None)


async def verify_audit(call: Call) -> dict[str, Any]:
    return await offload(call.deps.store.audit.verify)


routes = [
    route("GET", "/audit", list_audit, Role.admin, "Audit log: who did what, newest first (JSON pages or CSV).",
          query=_AUDIT_QUERY),
    route("GET", "/audit/verify", verify_audit, Role.admin,
          "Check the audit log's hash chain; names the first altered or removed entry."),
    route("GET", "/audit/head", audit_head, Role.admin,
          "The audit log's head (newest id and hash): keep it elsewhere to detect a cut or a wipe later."),
]
