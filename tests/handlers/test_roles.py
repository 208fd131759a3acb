"""Every route x every persona: public routes answer anyone; others need credentials (401) and
enough role (403 `forbidden`). The table comes from the app's own route declarations."""

from __future__ import annotations

import re

import pytest

from app import API_ROUTES
from core.roles import Role
from handlers.api import ApiRoute
from tests.fixtures.app import Api

PERSONAS = {"anonymous": None, "metrics": Role.metrics, "viewer": Role.viewer, "operator": Role.operator,
            "admin": Role.admin}
SAMPLE = {"jail": "sshd", "ip": "192.0.2.1", "name": "ghost", "id": "no-such-token"}
QUERY = {"/api/v1/logs/stream": "?max_seconds=0", "/api/v1/events": "?max_seconds=0"}  # a stream must end for the test client to return
# Routes a non-admin TOKEN may not use whatever its role (a session of the same role may): code per route.
SESSION_OR_ADMIN_TOKEN = {("DELETE", "/api/v1/auth/sessions"): "token_cannot_end_sessions"}
PUBLIC = {("GET", "/api/v1/health/live"), ("GET", "/api/v1/health/ready"), ("GET", "/api/v1/setup"),
          ("POST", "/api/v1/setup"), ("POST", "/api/v1/auth/login")}


def concrete(route: ApiRoute, full: bool = False) -> str:
    path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: SAMPLE.get(m[1], "snapshot"), route.path)
    return path if full else path.removeprefix("/api/v1")


def expected(route: ApiRoute, persona: str) -> set[int] | None:
    """The status set the persona must get, or None for 'anything but 401/403'."""
    rank = PERSONAS[persona]
    if route.role is None:
        return None
    if rank is None:
        return {401}
    return {403} if rank < route.role else None


def test_the_metrics_role_reads_only_metrics() -> None:
    assert [(r.method, r.path) for r in API_ROUTES if r.role is Role.metrics] == [("GET", "/metrics")]


def test_only_liveness_readiness_setup_and_login_are_public() -> None:
    assert {(r.method, r.path) for r in API_ROUTES if r.role is None} == PUBLIC


@pytest.mark.parametrize("route", API_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_route_role_table(api: Api, route: ApiRoute) -> None:
    for persona in PERSONAS:
        kw = {"json": {}} if route.body is not None else {}
        r = api.client.request(route.method, concrete(route, full=True) + QUERY.get(route.path, ""),
                               headers=api.as_(persona), **kw)
        want = expected(route, persona)
        refusal = SESSION_OR_ADMIN_TOKEN.get((route.method, route.path))
        if refusal is not None and want is None and PERSONAS[persona] is not Role.admin:  # the personas are tokens
            assert r.status_code == 403 and r.json()["error"]["code"] == refusal, (persona, r.status_code, r.text)
        elif want is None:
            assert r.status_code not in (401, 403), (persona, r.status_code, r.text)
        else:
            assert r.status_code in want, (persona, r.status_code, r.text)
            assert r.json()["error"]["code"] == ("unauthorized" if 401 in want else "forbidden")
