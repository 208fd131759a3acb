"""The bouncer side of CrowdSec's Local API v1 (issue 22): `GET /v1/decisions/stream` and `GET /v1/decisions`.

Served at the root (outside /api/v1) so that a bouncer's `api_url: http://HOST:PORT/` works. The only credential
read here is a bouncer key in `X-Api-Key` (role `bouncer`, store/bouncers.py); no other credential works on these
routes, and a bouncer key works nowhere else. A wrong or missing key is 403, as the LAPI answers. Answers come from
the store (store/decisions.py, published by the leader's `decisions` job): a poll never asks fail2ban.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.deps import Deps
from errors import AppError, Forbidden, InvalidInput
from fleet import host_name
from handlers.api import json_response
from handlers.security import client_address
from store.base import offload
from store.decisions import Row, go_duration

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PERMANENT_S = 10 * 365 * 86400  # a permanent ban's duration: ten years (the LAPI has no "forever")
RESYNC_MEMORY_S = 7 * 86400.0  # longer than any Redis outage a fleet would sit through


def _words(value: str | None) -> list[str]:
    return [w.strip().lower() for w in (value or "").split(",") if w.strip()]


def stream_filter(query: Any) -> Callable[[dict[str, Any]], bool] | None:
    """The LAPI stream's query filters: scopes, origins, scenarios_containing, scenarios_not_containing (None:
    no filter)."""
    scopes, origins = _words(query.get("scopes")), _words(query.get("origins"))
    containing = _words(query.get("scenarios_containing"))
    not_containing = _words(query.get("scenarios_not_containing"))
    if not (scopes or origins or containing or not_containing):
        return None

    def keep(d: dict[str, Any]) -> bool:
        scenario = d["scenario"].lower()
        return ((not scopes or d["scope"].lower() in scopes) and (not origins or d["origin"].lower() in origins)
                and (not containing or any(w in scenario for w in containing))
                and not any(w in scenario for w in not_containing))

    return keep


def _network(text: str, name: str) -> Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise InvalidInput(f"{name}: not an address or network: {text!r}", code="invalid_address") from None


GO_TRUE, GO_FALSE = ("1", "t", "T", "TRUE", "true", "True"), ("0", "f", "F", "FALSE", "false", "False")


def _go_bool(text: str, name: str) -> bool:
    """Go's strconv.ParseBool, as the LAPI reads `contains` (anything else is a 400 there too)."""
    if text in GO_TRUE or text in GO_FALSE:
        return text in GO_TRUE
    raise InvalidInput(f"{name}: not a boolean: {text!r} (true or false)", code="invalid_filter")


def _canonical(text: str) -> str:
    """An address or network in the form decisions are written in (compressed IPv6, no host bits), else as is."""
    try:
        return str(ipaddress.ip_network(text, strict=False) if "/" in text else ipaddress.ip_address(text))
    except ValueError:
        return text


def live_filter(query: Any) -> Callable[[dict[str, Any]], bool]:
    """`/v1/decisions` filters, as the LAPI reads them: ip or range (contains=true: decisions covering it; false:
    decisions inside it; an address of the other family matches nothing), scope, value (that exact value), type."""
    contains = _go_bool(query["contains"], "contains") if "contains" in query else True
    wanted = [_network(query[k], k) for k in ("ip", "range") if query.get(k)]
    scope, kind = query.get("scope"), query.get("type")
    value = _canonical(query["value"].strip()) if query.get("value") else None

    def keep(d: dict[str, Any]) -> bool:
        if (kind and d["type"] != kind) or (scope and d["scope"].lower() != scope.lower()):
            return False
        if value is not None and d["value"] != value:
            return False
        for net in wanted:
            mine = ipaddress.ip_network(d["value"], strict=False)
            if mine.version != net.version:
                return False
            if not (net.subnet_of(mine) if contains else mine.subnet_of(net)):  # type: ignore[arg-type]
                return False
        return True

    return keep


def _shaped(rows: Iterable[Row], now: float, keep: Callable[[dict[str, Any]], bool] | None,
            ) -> list[dict[str, Any]] | None:
    """The decisions of `rows` that `keep` accepts (None: all), or None for none (as the LAPI answers).
    Durations and scenarios are memoised: a startup of 100,000 rows spent most of its time formatting them."""
    durations: dict[int, str] = {}
    scenarios: dict[str, str] = {}
    out = []
    for decision_id, jail, value, expires_at, origin in rows:
        left = PERMANENT_S if expires_at is None else max(0, int(expires_at - now))
        duration = durations.get(left)
        if duration is None:
            duration = durations[left] = go_duration(left)
        scenario = scenarios.get(jail)
        if scenario is None:
            scenario = scenarios[jail] = f"fail2ban/{jail}"
        d = {"id": decision_id, "origin": origin, "type": "ban", "scope": "Range" if "/" in value else "Ip",
             "value": value, "duration": duration, "scenario": scenario}
        if keep is None or keep(d):
            out.append(d)
    return out or None


def _longest(rows: Iterable[Row]) -> dict[str, int]:
    """Address -> the id of its longest current decision (permanent first; the newer on a tie)."""
    best: dict[str, tuple[float, int]] = {}
    for decision_id, _, value, expires_at, _ in rows:
        rank = (float("inf") if expires_at is None else float(expires_at), int(decision_id))
        if value not in best or rank > best[value]:
            best[value] = rank
    return {value: rank[1] for value, rank in best.items()}


def per_value(new: list[Row], deleted: list[Row], current: list[Row], now: float,
              keep: Callable[[dict[str, Any]], bool] | None) -> dict[str, Any]:
    """A stream answer as bouncers read it: by value (crowdsec-custom-bouncer runs `del <value>`, a firewall
    bouncer drops the address from its set), as CrowdSec's LAPI answers. An address two jails ban (sshd and
    recidive) is one decision in `new`, its longest; a lifted decision is in `deleted` only when no current
    decision this bouncer sees (its filters) still bans the address: otherwise the bouncer would stop enforcing
    a ban fail2ban still holds."""
    if keep is not None:
        kept = {d["id"] for d in _shaped(current, now, keep) or []}
        current = [row for row in current if row[0] in kept]
    banned = {row[2] for row in current}
    shaped_new = _shaped(new, now, keep) or []
    if len(banned) < len(current):  # an address with several decisions (rare): keep its longest only
        best = _longest(current)
        shaped_new = [d for d in shaped_new if best.get(d["value"], d["id"]) == d["id"]]
    out_deleted, told = [], set()
    for d in _shaped(deleted, now, keep) or []:
        if d["value"] not in banned and d["value"] not in told:
            out_deleted.append(d)
            told.add(d["value"])
    return {"new": shaped_new or None, "deleted": out_deleted or None}


def _known(request: Request, deps: Deps) -> tuple[str, dict[str, Any]]:
    key = request.headers.get("x-api-key", "")
    record = deps.store.bouncers.lookup(key)
    if record is None:
        raise Forbidden("access forbidden: unknown or missing X-Api-Key", code="bouncer_key_refused")
    return key, record


def _bouncer(request: Request, deps: Deps, stream: bool = False) -> tuple[dict[str, Any], bool]:
    """The bouncer's record (as it was before this poll), and whether this poll could be noted in it."""
    key, record = _known(request, deps)
    noted = deps.store.bouncers.pulled(key, record, client_address(request, deps.settings),
                                       request.headers.get("user-agent", ""), _host(deps) if stream else None)
    return record, noted


def _host(deps: Deps) -> str | None:
    """This host's name in fleet mode (a bouncer's record says which host answered its previous poll)."""
    return host_name(deps.settings) if deps.settings.fleet_url else None


def _stream(request: Request, deps: Deps) -> dict[str, Any]:
    bouncer, noted = _bouncer(request, deps, stream=True)
    startup = request.query_params.get("startup", "false").lower() == "true"
    keep = stream_filter(request.query_params)
    host = _host(deps)
    moved = host is not None and bouncer.get("last_host") not in (None, host) and bouncer["last_pull"] is not None
    # Redis away: the record cannot say that this host answers the bouncer now. This host remembers that it
    # resynced it from that record, or every poll here would be a full resync until Redis returns.
    resynced = f"decisions:resynced:{bouncer['name']}"
    if moved and deps.store.cache.get(resynced) == bouncer["last_pull"]:
        moved = False
    new, deleted, current = deps.store.decisions.answer(bouncer["name"], startup,
                                                        bouncer["last_pull"] if moved else None)
    if moved and not noted:
        deps.store.cache.set(resynced, bouncer["last_pull"], expire=RESYNC_MEMORY_S)
    return per_value(new, deleted, current, deps.store.clock(), keep)


def _live(request: Request, deps: Deps) -> list[dict[str, Any]] | None:
    _bouncer(request, deps)
    keep = live_filter(request.query_params)
    return _shaped(deps.store.decisions.rows(), deps.store.clock(), keep)


def _head(request: Request, deps: Deps) -> None:
    """HEAD (a bouncer's check that the LAPI answers): the key is checked, nothing else happens. As the LAPI
    does, a HEAD of the stream moves no position and no last pull: its answer has no body, so changes it
    consumed would never reach the bouncer."""
    _known(request, deps)


async def _answer(request: Request, answer: Callable[[Request, Deps], Any]) -> Response:
    try:
        if request.method == "HEAD":
            await offload(_head, request, request.state.deps)
            return Response(status_code=200)
        return json_response(await offload(answer, request, request.state.deps))
    except AppError as exc:
        error = {"code": exc.code, "message": exc.message, "details": exc.details}
        return json_response({"message": exc.message, "error": error}, exc.status, exc.headers)


async def decisions_stream(request: Request) -> Response:
    return await _answer(request, _stream)


async def decisions_live(request: Request) -> Response:
    return await _answer(request, _live)


routes = [
    Route("/v1/decisions/stream", decisions_stream, methods=["GET"], name="lapi:stream"),
    Route("/v1/decisions", decisions_live, methods=["GET"], name="lapi:decisions"),
]
