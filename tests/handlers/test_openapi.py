"""The OpenAPI document is generated from the route table: every route, its role and its schemas."""

from __future__ import annotations

import re

from app import API_ROUTES
from tests.fixtures.app import Api


def test_every_route_is_documented_with_its_role(api: Api) -> None:
    doc = api.call("viewer", "GET", "/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    for route in API_ROUTES:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        op = doc["paths"][path][route.method.lower()]
        assert op["x-required-role"] == (route.role.name if route.role is not None else "public")
        assert op["security"] == ([] if route.role is None else [{"bearer": []}, {"session": []}])


def test_request_schemas_forbid_unknown_fields_and_resolve(api: Api) -> None:
    doc = api.call("viewer", "GET", "/openapi.json").json()
    body = doc["paths"]["/api/v1/jails/{jail}/bans"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    name = body["$ref"].rsplit("/", 1)[1]
    schema = doc["components"]["schemas"][name]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["ips"]["minItems"] == 1
    refs = re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(doc).replace("'", '"'))
    assert refs and all(ref in doc["components"]["schemas"] for ref in refs)


def test_openapi_parameters_have_patterns_and_enums(api: Api) -> None:
    doc = api.call("viewer", "GET", "/openapi.json").json()
    params = {(path, p["name"]): p["schema"] for path, ops in doc["paths"].items() for op in ops.values()
              for p in op.get("parameters", [])}
    assert params[("/api/v1/jails/{jail}", "jail")]["pattern"]
    assert params[("/api/v1/ips/{ip}", "ip")]["maxLength"] == 64
    assert params[("/api/v1/history", "event")]["enum"] == ["ban", "unban"]
    assert params[("/api/v1/history", "origin")]["enum"] == ["auto", "manual", "blocklist", "fleet"]
    assert params[("/api/v1/history", "limit")] == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert params[("/api/v1/stats", "range")]["enum"] == ["24h", "7d", "30d", "365d"]
    assert params[("/api/v1/users/{name}", "name")]["pattern"]
    assert all(schema != {"type": "string"} or name in ("jail",) for (path, name), schema in params.items()
               if name in ("jail", "ip", "origin", "event", "range", "limit"))
