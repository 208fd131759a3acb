"""GET /api/v1/openapi.json: generated from the very ApiRoute definitions that authenticate, decode
and validate requests (and the msgspec types that shape responses), so it cannot drift."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from core.roles import Role
from handlers.api import ApiRoute, Call, route

_REF = "#/components/schemas/{name}"
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message", "details"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}}}}}


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
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"\{(\w+)", r.path)]
        params += [{"name": n, "in": "query", "required": False, "description": d, "schema": {"type": "string"}}
                   for n, d in r.query.items()]
        if params:
            op["parameters"] = params
        if r.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": by_type[r.body]}}}
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
