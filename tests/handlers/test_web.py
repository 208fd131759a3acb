"""The web page: served with its CSP, free of data, same-origin only, and calling only API routes
that exist (checked against the app's own OpenAPI document)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.fixtures.app import Api

WEB = Path(__file__).resolve().parents[2] / "handlers" / "web"
CORE = WEB / "core.js"
# built separately (issues 9 and 10, history): the page hides what the OpenAPI document lacks
OPTIONAL = {"GET /history", "GET /stats", "GET /audit", "GET /audit/verify", "GET /server/settings",
            "PATCH /server/settings", "POST /server/reload", "GET /config/jails", "POST /config/jails/{jail}/activate",
            "POST /config/jails/{jail}/deactivate", "GET /config/files", "GET /config/files/{path}",
            "PUT /config/files/{path}", "DELETE /config/files/{path}", "GET /config/changes",
            "POST /config/changes/{id}/revert", "POST /filters/test", "GET /logs", "POST /jails/{jail}/start",
            "POST /jails/{jail}/stop", "POST /jails/{jail}/reload", "PUT /jails/{jail}/idle", "DELETE /jails/{jail}/bans",
            "PATCH /jails/{jail}", "POST /jails/{jail}/ignoreip", "DELETE /jails/{jail}/ignoreip/{entry}",
            "GET /logs/stream", "GET /fleet/hosts", "POST /fleet/bans", "POST /fleet/unbans", "GET /fleet/bans/{id}",
            # issue 23's server side, built on another branch: the page hides what answers 404
            "GET /history/repeat-offenders", "GET /preferences", "PATCH /preferences", "POST /server/restart",
            "POST /blocklists/preview"}
ASSET = re.compile(r'(?:href|src)="(/assets/[\w.-]+)"')


def _assets(api: Api) -> list[str]:
    """The versioned asset URLs the page names (its stylesheet, entry module and preloaded modules)."""
    urls = ASSET.findall(api.client.get("/").text)
    assert urls
    return urls


def _js() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(WEB.glob("*.js")) if p.name != "worldmap.js")


def _endpoints() -> dict[str, tuple[str, str]]:
    """The page's table of API calls: `key: ['METHOD', '/path/{param}', 'role']` inside `export const EP = {...};`."""
    return {key: (method, path) for key, (method, path, _role) in _endpoint_roles().items()}


def _endpoint_roles() -> dict[str, tuple[str, str, str]]:
    js = CORE.read_text(encoding="utf-8")
    block = re.search(r"export const EP = \{(.*?)\n\};", js, re.S)
    assert block, "core.js lost its EP table"
    rows = re.findall(r"(\w+): \['(GET|POST|PUT|PATCH|DELETE)', '([^']+)', '(public|viewer|operator|admin)'\]",
                      block.group(1))
    assert len(rows) == block.group(1).count("["), "an EP row does not match the expected shape"
    return {key: (method, path, role) for key, method, path, role in rows}


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
    types = {".js": "text/javascript", ".css": "text/css"}
    for path in ["/", *_assets(api)]:
        r = api.client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith(types.get(Path(path).suffix, "text/html"))
        csp = r.headers["content-security-policy"]
        for directive in ("default-src 'self'", "script-src 'self';", "style-src 'self';", "connect-src 'self'",
                          "frame-ancestors 'none'", "object-src 'none'"):
            assert directive in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
    assert api.client.post("/").status_code == 405


def test_caching_page_revalidates_versioned_assets_are_immutable_api_is_not_stored(api: Api) -> None:
    page = api.client.get("/")
    assert page.headers["cache-control"] == "no-cache" and page.headers["etag"]
    assert api.client.get("/", headers={"If-None-Match": page.headers["etag"]}).status_code == 304
    for url in _assets(api):
        assert re.fullmatch(r"/assets/[\w-]+\.[0-9a-f]{10}\.(js|css)", url), url
        r = api.client.get(url)
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        again = api.client.get(url, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == r.headers["etag"]
        assert api.client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    assert api.call("admin", "GET", "/jails").headers["cache-control"] == "no-store"
    assert api.client.get("/api/v1/health/live").headers["cache-control"] == "no-store"


def test_assets_are_gzipped_and_small(api: Api) -> None:
    total = 0
    for url in ["/", *_assets(api)]:
        zipped = api.client.get(url, headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.headers["vary"] == ("accept-encoding, cookie" if url == "/" else "accept-encoding")
        raw = api.client.get(url, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in raw.headers and raw.content == zipped.content  # httpx decodes gzip
        assert zipped.headers["etag"] != raw.headers["etag"]  # two representations, two validators
        assert api.client.get(url, headers={"Accept-Encoding": "gzip;q=0"}).headers.get("content-encoding") is None
        total += int(zipped.headers["content-length"])
    assert total <= 150 * 1024, total  # every asset of the page, map data included


def test_module_imports_point_at_versioned_names(api: Api) -> None:
    named = set(_assets(api))
    urls, todo = set(named), sorted(named)
    while todo:  # static imports (preloaded) and import('./x.js') of views opened later (fetched then)
        url = todo.pop()
        if url.endswith(".js"):
            r = api.client.get(url)
            assert r.status_code == 200, url
            for name in re.findall(r"(?:from |import\()'\./([\w.-]+)'", r.text):
                if "/assets/" + name not in urls:
                    urls.add("/assets/" + name)
                    todo.append("/assets/" + name)
    # every module is reachable from the page, nothing else; the views loaded later are not preloaded
    assert {Path(u).name.split(".")[0] for u in urls} == {p.stem for p in WEB.iterdir() if p.suffix in (".js", ".css")}
    assert {"admin", "config", "forms"}.isdisjoint(Path(u).name.split(".")[0] for u in named)


def test_nothing_else_in_the_web_folder_is_served(api: Api) -> None:
    for path in ("/index.html", "/web/app.js", "/handlers/web.py", "/app.js", "/style.css", "/assets/app.js",
                 "/assets/../web.py", "/style.css.map", "/assets/app.0000000000.js"):
        assert api.client.get(path).status_code == 404, path


def test_page_carries_no_data(api: Api) -> None:
    """Static files only: jail names, sockets, paths, users and tokens come from API calls."""
    jails = [j["name"] for j in api.call("admin", "GET", "/jails").json()["jails"]]
    assert jails
    secrets = [*jails, api.settings.fail2ban_socket, str(api.settings.data_dir), *api.tokens.values()]
    paths = ["/", *_assets(api)]
    before = {p: api.client.get(p).content for p in paths}
    for path, body in before.items():
        for value in secrets:
            assert value.encode() not in body, (path, value)
    # the same bytes whoever asks, logged in (session cookie) or not, but for the page's "a cookie was sent" hint
    assert api.login().status_code == 200
    for path, body in before.items():
        assert api.client.get(path).content.replace(b' data-session="1"', b"") == body
    # and they are the folder's files (modules differ only by the versioned names of their imports)
    for path in paths[1:]:
        stem, ext = Path(path).name.split(".")[0], Path(path).suffix
        source = (WEB / (stem + ext)).read_text(encoding="utf-8")
        served = re.sub(r"'\./([\w-]+)\.[0-9a-f]{10}\.js'", r"'./\1.js'", before[path].decode())
        assert served == source, path


def test_page_references_only_same_origin_resources(api: Api) -> None:
    parser = _Refs()
    parser.feed(api.client.get("/").text)
    assert parser.inline_scripts == 0
    assert any(r.startswith("/assets/app.") for r in parser.refs)
    assert any(r.startswith("/assets/style.") for r in parser.refs)
    for ref in parser.refs:
        same_origin = ref.startswith("/") and not ref.startswith("//")
        assert same_origin or ref.startswith("#") or ref.startswith("data:"), ref
    css = (WEB / "style.css").read_text(encoding="utf-8")
    assert "@import" not in css and "url(" not in css
    js = _js()
    urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s'\"`]*", js))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls  # an XML namespace name, never fetched
    assert len(re.findall(r"\bfetch\(", js)) == 1  # every call goes through api(): API + EP path
    assert "export const API = '/api/v1';" in js
    # modules import only their siblings, by relative name
    assert set(re.findall(r"^import .*? from '([^']+)';", js, re.M)) <= {f"./{p.name}" for p in WEB.glob("*.js")}
    for word in ("XMLHttpRequest", "WebSocket", "sendBeacon", "importScripts"):
        assert word not in js, word
    # dynamic imports only of sibling modules, by literal relative name (app.js's views loaded later)
    assert set(re.findall(r"import\(([^)]*)\)", js)) <= {f"'./{p.name}'" for p in WEB.glob("*.js")}
    # the streams (fail2ban's log, live; the page's live events) open API paths too
    assert sorted(re.findall(r"new EventSource\((apiPath\('\w+'\)?)", js)) == ["apiPath('events')", "apiPath('logStream'"]


def test_page_never_turns_data_into_html(api: Api) -> None:
    js = _js()
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
        if operation is None and f"{method} {path}" not in OPTIONAL:
            missing.append(f"{key}: {method} {path}")
    assert not missing, missing
    # the role the page assumes for each call is the one the server requires (the page has no OpenAPI document)
    wrong = {key: (role, op["x-required-role"]) for key, (method, path, role) in _endpoint_roles().items()
             if (op := paths.get("/api/v1" + path, {}).get(method.lower())) and op.get("x-required-role") != role}
    assert not wrong, wrong
    # the page uses only keys of that table, and each key at least once
    js = _js()
    used = set(re.findall(r"\bapi(?:Path)?\('(\w+)'", js))
    assert used <= set(endpoints), used - set(endpoints)
    assert set(endpoints) <= used, set(endpoints) - used


def test_optional_calls_are_calls_the_page_makes(api: Api) -> None:
    """Every optional entry names a call of the page (no stale entries), and what the server has is reported."""
    calls = {f"{m} {p}" for m, p in _endpoints().values()}
    assert calls >= OPTIONAL, OPTIONAL - calls
    paths = api.call("admin", "GET", "/openapi.json").json()["paths"]
    present = sorted(c for c in OPTIONAL if c.split(" ")[0].lower() in paths.get("/api/v1" + c.split(" ")[1], {}))
    print("optional APIs present:", present)


def test_page_has_the_blocklists_view_and_its_calls() -> None:
    endpoints = set(_endpoints().values())
    assert {("GET", "/blocklists"), ("POST", "/blocklists"), ("POST", "/blocklists/{name}/run"),
            ("DELETE", "/blocklists/{name}")} <= endpoints
    js = _js()
    assert "VIEWS.blocklists = " in js and "['Blocklists', 'blocklists']" in js


def test_versioned_names_follow_the_imports(tmp_path: Path) -> None:
    """A change in a module renames it AND every module importing it; a broken graph stops the server at start."""
    from handlers.web import _build

    (tmp_path / "index.html").write_text('<head><script type="module" src="/assets/a.js"></script></head>')
    (tmp_path / "a.js").write_text("import { x } from './b.js';\nx();\n")
    (tmp_path / "b.js").write_text("export const x = () => 1;\n")
    (tmp_path / "c.css").write_text("body {}\n")
    page, assets = _build(tmp_path)
    names = {Path(u).name.split(".")[0]: u for u in assets}
    assert set(names) == {"a", "b", "c"}
    assert f"'./{Path(names['b']).name}'" in assets[names["a"]].body.decode()
    assert names["a"] in page.body.decode() and f'rel="modulepreload" href="{names["b"]}"' in page.body.decode()
    (tmp_path / "b.js").write_text("export const x = () => 2;\n")
    _, again = _build(tmp_path)
    changed = {Path(u).name.split(".")[0] for u in set(again) - set(assets)}
    assert changed == {"a", "b"}  # c.css kept its name
    (tmp_path / "b.js").write_text("import { y } from './a.js';\nexport const x = () => y;\n")
    with pytest.raises(RuntimeError, match="import cycle"):
        _build(tmp_path)
    (tmp_path / "b.js").write_text("import { y } from './gone.js';\nexport const x = y;\n")
    with pytest.raises(RuntimeError, match="does not exist"):
        _build(tmp_path)


def test_the_page_asks_for_a_session_only_when_the_browser_has_a_session_cookie(api: Api) -> None:
    """Issue 23 item 8: a logged-out load makes no request that answers 401 (a console error in the browser)."""
    assert 'data-session="1"' not in api.client.get("/").text
    api.client.cookies.set("bangui_session", "anything")
    try:
        assert '<html lang="en" data-session="1">' in api.client.get("/").text
    finally:
        api.client.cookies.clear()
    assert "openapi" not in CORE.read_text(encoding="utf-8")  # issue 23 item 9: the page starts without it
