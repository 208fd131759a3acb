"""Logging setup shared by the CLI and every worker: one line per event, never a secret.

`BANGUI_LOG_FORMAT=text` (default): `time LEVEL [pid] logger: message`. `json`: one JSON object per line,
`{"time", "level", "logger", "message", "pid", "request_id", "actor"}` (+ `"exception"` with the traceback);
`request_id` and `actor` are null outside a request (and `actor` before authentication). Both come from
context variables set by the request-id middleware and the route layer, so every line logged while serving a
request carries them, also from worker threads (anyio copies the context into them).
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

# The text line (`BANGUI_LOG_FORMAT=text`); contrib/fail2ban/filter.d/bangui-auth.conf parses it
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"

request_id: ContextVar[str | None] = ContextVar("bangui_request_id", default=None)
actor: ContextVar[str | None] = ContextVar("bangui_actor", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            "request_id": request_id.get(),
            "actor": actor.get(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str, fmt: str = "text") -> None:
    if fmt == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
        return
    logging.basicConfig(level=level.upper(), format=TEXT_FORMAT, force=True)
