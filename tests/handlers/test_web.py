"""The web page: served with its CSP, free of data, same-origin only, and calling only API routes
that exist (checked against the app's own OpenAPI document)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.fixtures.app import Api

WEB = Path(__file__).resolve().parents[2] / "handlers" / "web"
FILES = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"),
         "/style.css": ("style.css", "text/css")}
OPTIONAL = {"/history", "/stats"}  # built separately; the page shows "not available" on 404


def _endpoints() -> dict[str, tuple[str, str]]:
    """The page's table of API calls: `key: ['METHOD', '/path/{param}']` inside `const EP = {...};`."""
    js = (WEB / "app.js").read_text(encoding="utf-8")
    block = re.search(r"const EP = \{(.*?)\n\};", js, re.S)
    assert block, "app.js lost its EP table"
    rows = re.findall(r"(\w+): \['(GET|POST|PATCH|DELETE)', '([^']+)'\]", block.group(1))
    assert len(rows) == block.group(1).count("["), "an EP row does not match the expected shape"
    return {key: (method, path) for key, method, path in rows}


_URL_ATTRS = ("src", "href", "action", "formaction", "srcset", "poster", "data")


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in _URL_ATTRS and value is not None:
                self.refs.append(value)
        self._in_script = tag == "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def test_page_and_assets_are_public_with_csp_and_right_types(api: Api) -> None:
    for path, (_, media_type) in FILES.items():
        r = api.client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith(media_type)
        csp = r.headers["content-security-policy"]
        for directive in ("default-src 'self'", "script-src 'self' 'unsafe-inline'", "connect-src 'self'",
                          "frame-ancestors 'none'"):
            assert directive in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-store"
    assert api.client.post("/").status_code == 405


def test_nothing_else_in_the_web_folder_is_served(api: Api) -> None:
    for path in ("/index.html", "/web/app.js", "/handlers/web.py", "/app.js/../web.py", "/style.css.map"):
        assert api.client.get(path).status_code == 404, path


def test_page_carries_no_data(api: Api) -> None:
    """Static files only: jail names, sockets, paths, users and tokens come from API calls."""
    jails = [j["name"] for j in api.call("admin", "GET", "/jails").json()["jails"]]
    assert jails
    secrets = [*jails, api.settings.fail2ban_socket, str(api.settings.data_dir), *api.tokens.values()]
    for path in FILES:
        body = api.client.get(path).text
        for value in secrets:
            assert value not in body, (path, value)
    # the same bytes whoever asks, logged in (session cookie) or not
    assert api.login().status_code == 200
    for path, (name, _) in FILES.items():
        assert api.client.get(path).content == (WEB / name).read_bytes()


def test_page_references_only_same_origin_resources(api: Api) -> None:
    parser = _Refs()
    parser.feed(api.client.get("/").text)
    assert parser.inline_scripts == 0
    assert set(parser.refs) >= {"/style.css", "/app.js"}
    for ref in parser.refs:
        same_origin = ref.startswith("/") and not ref.startswith("//")
        assert same_origin or ref.startswith("#") or ref.startswith("data:"), ref
    css = (WEB / "style.css").read_text(encoding="utf-8")
    assert "@import" not in css and "url(" not in css
    js = (WEB / "app.js").read_text(encoding="utf-8")
    urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s'\"`]*", js))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls  # an XML namespace name, never fetched
    assert len(re.findall(r"\bfetch\(", js)) == 1  # every call goes through api(): API + EP path
    assert "const API = '/api/v1';" in js
    for word in ("XMLHttpRequest", "WebSocket", "EventSource", "sendBeacon", "import(", "importScripts"):
        assert word not in js, word


def test_page_never_turns_data_into_html(api: Api) -> None:
    js = (WEB / "app.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "setTimeout('", 'setTimeout("', "DOMParser", "createContextualFragment", "javascript:"):
        assert sink not in js, sink
    # attributes are set by name from code; hrefs the page builds are in-page hash routes or API links
    assert "setAttribute(k" in js and "href: hash(" in js


def test_every_api_call_of_the_page_exists_in_the_openapi_document(api: Api) -> None:
    r = api.call("admin", "GET", "/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    endpoints = _endpoints()
    assert len(endpoints) >= 20
    missing = []
    for key, (method, path) in endpoints.items():
        operation = paths.get("/api/v1" + path, {}).get(method.lower())
        if operation is None and path not in OPTIONAL:
            missing.append(f"{key}: {method} {path}")
    assert not missing, missing
    # the page uses only keys of that table, and each key at least once
    js = (WEB / "app.js").read_text(encoding="utf-8")
    used = set(re.findall(r"\bapi(?:Path)?\('(\w+)'", js))
    assert used <= set(endpoints), used - set(endpoints)
    assert set(endpoints) <= used, set(endpoints) - used


def test_optional_history_endpoints_when_present(api: Api) -> None:
    paths = api.call("admin", "GET", "/openapi.json").json()["paths"]
    present = [p for p in OPTIONAL if "/api/v1" + p in paths]
    if not present:
        pytest.skip("history/stats are not in this build yet; the page shows 'not available'")
    for p in present:
        assert "get" in paths["/api/v1" + p]


def test_page_has_the_blocklists_view_and_its_calls() -> None:
    endpoints = set(_endpoints().values())
    assert {("GET", "/blocklists"), ("POST", "/blocklists"), ("POST", "/blocklists/{name}/run"),
            ("DELETE", "/blocklists/{name}")} <= endpoints
    js = (WEB / "app.js").read_text(encoding="utf-8")
    assert "VIEWS.blocklists = " in js and "['Blocklists', 'blocklists']" in js
