"""The OpenAPI document is generated from the route table: every route, its role and its schemas."""

from __future__ import annotations

import re
from typing import Any

from app import API_ROUTES
from handlers.openapi import conforms
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


def _item_schema(doc: dict, schema: dict) -> dict:
    if "$ref" in schema:
        return _item_schema(doc, doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    if "anyOf" in schema:
        return _item_schema(doc, next(s for s in schema["anyOf"] if s.get("type") != "null"))
    return schema


def test_addresses_networks_and_paths_are_declared_with_their_patterns(api: Api) -> None:
    doc = api.call("viewer", "GET", "/openapi.json").json()
    params = {(path, p["name"]): p["schema"] for path, ops in doc["paths"].items() for op in ops.values()
              for p in op.get("parameters", [])}
    plain = sorted(key for key, schema in params.items() if key[1] in ("ip", "entry", "path") and "pattern" not in schema)
    assert plain == []
    ip = params[("/api/v1/bans/{ip}", "ip")]["pattern"]
    assert all(re.fullmatch(ip, v) for v in ("192.0.2.7", "2001:db8::1", "198.51.100.0/24"))
    assert not re.fullmatch(params[("/api/v1/config/files/{path}", "path")]["pattern"], "../etc/shadow")

    def body(path: str, method: str = "post") -> dict:
        ref = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        return _item_schema(doc, ref)["properties"]

    assert body("/api/v1/jails/{jail}/bans")["ips"]["items"]["pattern"] == ip
    assert body("/api/v1/jails/{jail}/ignoreip")["entries"]["items"]["pattern"] == ip
    logpath = _item_schema(doc, body("/api/v1/filters/test")["logpath"])
    assert re.fullmatch(logpath["pattern"], "/var/log/auth.log") and not re.fullmatch(logpath["pattern"], "auth.log")


def test_an_empty_jail_query_is_refused_as_the_documented_pattern_says(api: Api) -> None:
    doc = api.call("viewer", "GET", "/openapi.json").json()
    pattern = next(p["schema"]["pattern"] for p in doc["paths"]["/api/v1/bans"]["get"]["parameters"]
                   if p["name"] == "jail")
    assert not re.fullmatch(pattern, "")
    for path in ("/bans?jail=", "/stats?jail=", "/history?jail="):
        r = api.call("viewer", "GET", path)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_jail_name", (path, r.text)
    assert api.call("viewer", "GET", "/bans?jail=sshd").status_code == 200


def _refused_values(schema: dict[str, Any]) -> list[str]:
    """Values the schema forbids, the empty one first when it does: a number, an enum, a pattern, a length."""
    values = [""]
    if schema.get("type") == "integer":
        values += ["x", " 5", "1.5", str(schema["minimum"] - 1), str(schema["maximum"] + 1)]
    if "enum" in schema:
        values += ["zz", schema["enum"][0].upper() + "x"]
    if "pattern" in schema:
        values += ["!!", "a b", "1\n"]
    if "maxLength" in schema:
        values.append("1" * (schema["maxLength"] + 1))
    return [v for v in values if not conforms(v, schema)]


def test_every_query_value_the_document_forbids_is_refused(api: Api) -> None:
    """Issue 18: a value the declared schema of a query parameter rejects (a number, an enum, a pattern, a
    length; an empty value too) is a 400 on every GET the document lists, never an answer as if the parameter
    were absent or valid: a client's validator and the server agree."""
    doc = api.call("admin", "GET", "/openapi.json").json()
    checked, answered = [], []
    for path, ops in doc["paths"].items():
        if "{" in path or "get" not in ops:
            continue
        for param in ops["get"].get("parameters", []):
            if param["in"] != "query":
                continue
            for value in _refused_values(param.get("schema", {})):
                r = api.call("admin", "GET", path.removeprefix("/api/v1"), params={param["name"]: value})
                checked.append((path, param["name"]))
                if r.status_code != 400:
                    answered.append((path, param["name"], value[:20], r.status_code))
    assert answered == [], answered
    for must in [("/api/v1/history", "ip"), ("/api/v1/history", "country"), ("/api/v1/audit", "limit"),
                 ("/api/v1/audit", "format"), ("/api/v1/bans", "jail"), ("/api/v1/stats", "range")]:
        assert must in checked
