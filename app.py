"""The bangui ASGI application: routes, middleware, exception handlers and lifespan. Wiring only.

hypercorn loads `app:create_app()` in every worker process; each worker opens the shared store,
its own fail2ban client, and runs as a leadership candidate (only the elected one runs jobs).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

import logs
from actions.config import recover_unfinished
from core.deps import Deps
from f2b.client import Fail2Ban
from fleet.hosts import claim_host_name
from handlers import (
    advisor,
    audit,
    auth,
    bans,
    blocklists,
    bouncers,
    config,
    decisions,
    events,
    filters,
    fleet,
    health,
    history,
    jail_config,
    jail_control,
    jails,
    jobs,
    metrics,
    notifications,
    openapi,
    preferences,
    server,
    server_settings,
    setup,
    tokens,
    users,
    web,
)
from handlers import logs as fail2ban_log
from handlers.api import ApiRoute
from handlers.errors import exception_handlers
from handlers.middleware import ApiCompression, Edge, StoreGuard
from handlers.transport import BodyPolicy, install_error_bodies
from jobs.leader import run_candidate
from settings import Settings
from stopping import ignore_sigterm, poll_shutdown_slowly
from store import Store
from store import setup as first_start
from store.base import configure_threads, offload

API_ROUTES: list[ApiRoute] = [
    *health.routes, *auth.routes, *setup.routes, *users.routes, *tokens.routes,
    *server.routes, *jails.routes, *bans.routes, *history.routes, *jobs.routes, *blocklists.routes,
    *audit.routes, *openapi.routes, *metrics.routes, *notifications.routes,
    *jail_control.routes, *filters.routes, *fail2ban_log.routes, *events.routes,
    *jail_config.routes, *server_settings.routes, *config.routes,
    *fleet.routes, *bouncers.routes, *preferences.routes, *advisor.routes,
]


def create_app(settings: Settings | None = None) -> Starlette:
    worker = settings is None  # a hypercorn worker: the CLI validated the same environment before spawning us
    if settings is None:
        poll_shutdown_slowly()  # hypercorn looks its stop trigger up after loading us (stopping.py)
        settings = Settings.load()
        logs.configure(settings.log_level, settings.log_format)
        install_error_bodies()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if worker:
            ignore_sigterm()  # hypercorn's main process SIGTERMs workers mid-shutdown (stopping.py)
        configure_threads()
        store = await offload(Store, settings)
        client = Fail2Ban(settings.fail2ban_socket, settings.fail2ban_timeout, settings.fail2ban_max_calls,
                          busy_file=str(store.path / "fail2ban-busy"))
        deps = Deps(settings, store, client)
        try:
            if settings.fleet_url:
                await claim_host_name(settings, store)
            async with anyio.create_task_group() as tg:
                await tg.start(first_start.bootstrap_in_background, store, settings.admin_password)
                tg.start_soon(recover_unfinished, deps)  # a config change a crash left half done
                if settings.leader_candidate:
                    await tg.start(run_candidate, deps)
                yield {"deps": deps}
                tg.cancel_scope.cancel()
        finally:
            await client.aclose()
            store.close()

    routes: list[BaseRoute] = [r.starlette_route() for r in API_ROUTES]
    routes += decisions.routes  # CrowdSec's LAPI for bouncers, at the root (issue 22)
    routes += web.routes
    return Starlette(
        routes=routes,
        middleware=[Middleware(Edge, trusted_proxies=settings.trusted_proxies), Middleware(ApiCompression),
                    Middleware(BodyPolicy), Middleware(StoreGuard)],
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
