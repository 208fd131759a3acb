"""GET /api/v1/openapi.json: generated from the very ApiRoute definitions that authenticate, decode
and validate requests (and the msgspec types that shape responses), so it cannot drift."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from core.roles import Role
from handlers.api import ADDRESS_SCHEMA, ApiRoute, Call, route
from store.audit import OUTCOMES
from store.ban_order import ORDERS, SORTS

_REF = "#/components/schemas/{name}"
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message", "details"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}}}}}


# Schemas of path and query parameters, so that clients and fuzzers know the values the server accepts (every other
# value is answered 400 by the handlers' own checks, which stay the authority). Keyed by name; `name` depends on
# the path's first segment.
_NAME = "^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
_PARAMS: dict[str, dict[str, Any]] = {
    "jail": {"type": "string", "pattern": "^[A-Za-z0-9_.@-]{1,64}$"},
    "ip": {"type": "string", **ADDRESS_SCHEMA},
    # an ignore-list entry: an address or network, or a name fail2ban lists verbatim (e.g. from a hand edit)
    "entry": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[0-9A-Za-z:._/-]+$"},
    # a config file relative to the config dir (f2bconfig/paths.py refuses the rest)
    "path": {"type": "string", "minLength": 1, "maxLength": 255,
             "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.@+-]*(/[A-Za-z0-9_][A-Za-z0-9_.@+-]*)*$"},
    "id": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$"},
    "since": {"type": "string", "maxLength": 40}, "until": {"type": "string", "maxLength": 40},
    "origin": {"type": "string", "enum": ["auto", "manual", "blocklist", "fleet"]},
    "event": {"type": "string", "enum": ["ban", "unban"]},
    "outcome": {"type": "string", "enum": list(OUTCOMES)},  # the audit log's (store/audit.py)
    "country": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
    "cursor": {"type": "string", "maxLength": 200},
    "format": {"type": "string", "enum": ["csv", "json"]},
    "range": {"type": "string", "enum": ["24h", "7d", "30d", "365d"]},
    "sort": {"type": "string", "enum": list(SORTS)},  # the pages of current bans' (store/ban_order.py)
    "order": {"type": "string", "enum": list(ORDERS)},
}
_NAMES = {
    "users": {"type": "string", "pattern": _NAME},
    "blocklists": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
    "jobs": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
}


def param_schema(path: str, name: str) -> dict[str, Any]:
    if name == "name":
        return _NAMES.get(path.removeprefix("/api/v1/").split("/")[0], {"type": "string"})
    return _PARAMS.get(name, {"type": "string"})


def conforms(value: str, schema: dict[str, Any]) -> bool:
    """Whether a query value is one the declared schema accepts (what a client's validator checks)."""
    if schema.get("type") == "integer":
        if not re.fullmatch(r"-?[0-9]{1,19}", value):
            return False
        return schema.get("minimum", -2**63) <= int(value) <= schema.get("maximum", 2**63)
    if "enum" in schema and value not in schema["enum"]:
        return False
    if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
        return False
    return "pattern" not in schema or re.search(schema["pattern"], value) is not None


def api_routes(app: Any) -> list[ApiRoute]:
    return [r.endpoint.__self__ for r in app.routes
            if isinstance(getattr(getattr(r, "endpoint", None), "__self__", None), ApiRoute)]


def document(routes: list[ApiRoute]) -> dict[str, Any]:
    types = [t for r in routes for t in (r.body, r.response) if t is not None]
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    by_type = dict(zip(types, schemas, strict=True))
    components["Error"] = _ERROR
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", r.path)
        op: dict[str, Any] = {"summary": r.summary, "operationId": r.handler.__name__,
                              "security": [] if r.role is None else [{"bearer": []}, {"session": []}],
                              "x-required-role": r.role.name if r.role is not None else "public"}
        params = [{"name": n, "in": "path", "required": True, "schema": param_schema(r.path, n)}
                  for n in re.findall(r"\{(\w+)", r.path)]
        params += [{"name": n, "in": "query", "required": False, "description": d,
                    "schema": param_schema(r.path, n)} for n, d in r.query.items()]
        if params:
            op["parameters"] = params
        if r.body is not None:
            op["requestBody"] = {"required": not r.body_optional,
                                 "content": {"application/json": {"schema": by_type[r.body]}}}
        ok: dict[str, Any] = {"description": "success"}
        if r.response is not None:
            ok["content"] = {"application/json": {"schema": by_type[r.response]}}
        error = {"description": "error envelope",
                 "content": {"application/json": {"schema": {"$ref": _REF.format(name="Error")}}}}
        op["responses"] = {str(r.status): ok, "4XX": error, "5XX": error}
        paths.setdefault(path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "bangui", "version": "1"},
        "components": {"schemas": components, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "bangui_session"}}},
        "paths": paths,
    }


async def get_openapi(call: Call) -> dict[str, Any]:
    return document(api_routes(call.request.app))


routes = [route("GET", "/openapi.json", get_openapi, Role.viewer, "This API's OpenAPI 3.1 document.")]
