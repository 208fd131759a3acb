"""`GET /metrics`: Prometheus' text format, for a token with the `metrics` role (or any user role).

The scrape is rendered in a worker thread (store reads, the multiprocess files): see metrics/exposition.py.
"""

from __future__ import annotations

from starlette.responses import Response

from core.roles import Role
from handlers.api import ApiRoute, Call
from metrics.exposition import CONTENT_TYPE, render
from store.base import offload


async def get_metrics(call: Call) -> Response:
    body = await offload(render, call.deps.store)
    return Response(body, media_type=CONTENT_TYPE)


routes = [
    ApiRoute("GET", "/metrics", get_metrics, Role.metrics,
             "Prometheus metrics (text format): fail2ban's jails as the fail2ban exporter names them, and "
             "bangui's requests, jobs, leader, history, blocklists and audit."),
]
