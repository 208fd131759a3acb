"""Page weight and quality (issue 23 items 9 and 10): bytes transferred cold and warm, layout shift, Lighthouse
(performance, accessibility, best practices, logged in) and axe-core (no serious or critical violation) on every
main view, light and dark. Lighthouse and axe-core come from npm (tests/browser/package.json, installed by
./dev browser); Lighthouse drives Debian's chromium (CHROME_PATH), headless, without sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.browser.conftest import CHROMIUM, Browser, api_call, login, report
from tests.fixtures.app import PASSWORD

pytestmark = pytest.mark.browser

HERE = Path(__file__).parent
LIGHTHOUSE = HERE / "node_modules" / ".bin" / "lighthouse"
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
SEEDED = ["8.8.8.8", "1.1.1.1", "5.9.1.1", "77.88.8.8", "200.160.2.3"]


def _need(path: Path) -> None:
    if not path.exists():
        pytest.fail(f"{path} is missing: run ./dev browser (it runs `npm ci` in tests/browser/)")


def _transferred(b: Browser) -> int:
    """Bytes the last load transferred (the page and everything it fetched, headers included), from the
    Resource Timing entries of the same origin."""
    return int(b.js("""
        const nav = performance.getEntriesByType('navigation')[0];
        return [nav, ...performance.getEntriesByType('resource')].reduce((n, e) => n + (e.transferSize || 0), 0);"""))


def test_dashboard_weight_cold_and_warm_and_no_layout_shift(seeded_server: Any, browser: Any) -> None:
    server, tokens = seeded_server
    api_call(server, tokens["admin"], "POST", "/jails/sshd/bans", json={"ips": SEEDED})
    b: Browser = browser(server.url)
    login(b)
    b.wait(".map path")
    b.driver.execute_cdp_cmd("Network.enable", {})
    b.driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    b.js("""window.__cls = 0; new PerformanceObserver((l) => { for (const e of l.getEntries()) if (!e.hadRecentInput)
            window.__cls += e.value; }).observe({ type: 'layout-shift', buffered: true });""")
    b.open()
    b.wait(".map path")
    b.wait(".chart rect, section[aria-label='Bans over time'] p")
    b.until(lambda: b.js("return performance.getEntriesByType('resource').some(e => e.name.includes('/stats'))"), "stats")
    cold = _transferred(b)
    names = b.js("return performance.getEntriesByType('resource').map(e => e.name)")
    assert not any("openapi" in n for n in names), names
    cls = b.js("""return new Promise((done) => { let v = 0; new PerformanceObserver((l) => { for (const e of l.getEntries())
                  if (!e.hadRecentInput) v += e.value; }).observe({ type: 'layout-shift', buffered: true });
                  setTimeout(() => done(v), 500); })""")
    b.open()
    b.wait(".map path")
    b.until(lambda: b.js("return performance.getEntriesByType('resource').some(e => e.name.includes('/stats'))"), "stats")
    warm = _transferred(b)
    report("dashboard transferred, cold (bytes)", cold)
    report("dashboard transferred, warm reload (bytes)", warm)
    report("dashboard cumulative layout shift", cls)
    assert cold <= 80 * 1024, cold
    assert warm <= 10 * 1024, warm
    assert cls <= 0.05, cls


def _session_cookie(server: Any) -> str:
    r = httpx.post(server.url + "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return f"bangui_session={r.cookies['bangui_session']}"


def test_lighthouse_logged_in(seeded_server: Any, tmp_path: Path) -> None:
    _need(LIGHTHOUSE)
    server, tokens = seeded_server
    api_call(server, tokens["admin"], "POST", "/jails/sshd/bans", json={"ips": SEEDED})
    out = tmp_path / "lighthouse.json"
    env = dict(os.environ, CHROME_PATH=CHROMIUM or shutil.which("chromium") or "/usr/bin/chromium")
    cmd = [str(LIGHTHOUSE), server.url + "/", "--quiet", "--output=json", f"--output-path={out}",
           "--only-categories=performance,accessibility,best-practices",
           "--chrome-flags=--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage",
           "--extra-headers=" + json.dumps({"Cookie": _session_cookie(server)})]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.exists(), run.stderr[-3000:]
    result = json.loads(out.read_text())
    scores = {k: v["score"] for k, v in result["categories"].items()}
    audits = result["audits"]
    report("lighthouse scores", scores)
    report("lighthouse CLS", audits["cumulative-layout-shift"]["numericValue"])
    failing = {k: a["title"] for k, a in audits.items() if a.get("score") is not None and a["score"] < 1
               and a.get("scoreDisplayMode") == "binary"}
    assert result["finalDisplayedUrl"].rstrip("/") == server.url.rstrip("/")
    # logged in: the dashboard's own calls were made and answered (the login form makes none of them)
    requests = {r["url"].split("?")[0]: r["statusCode"] for r in audits["network-requests"]["details"]["items"]}
    assert requests.get(server.url + "/api/v1/stats") == 200, sorted(requests)
    assert scores["accessibility"] == 1 and scores["best-practices"] == 1, failing
    assert scores["performance"] >= 0.95, {k: audits[k]["displayValue"] for k in
                                           ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time",
                                            "cumulative-layout-shift", "speed-index") if "displayValue" in audits[k]}


VIEWS = ["#/", "#/jails", "#/jails/sshd", "#/bans", "#/ips/8.8.8.8", "#/history", "#/offenders", "#/jobs",
         "#/blocklists", "#/tools", "#/config", "#/audit", "#/notifications", "#/tokens", "#/users", "#/preferences"]


def test_axe_finds_nothing_serious_on_any_view_light_and_dark(seeded_server: Any, browser: Any) -> None:
    _need(AXE)
    server, tokens = seeded_server
    api_call(server, tokens["admin"], "POST", "/jails/sshd/bans", json={"ips": SEEDED})
    b: Browser = browser(server.url)
    login(b)
    axe = AXE.read_text()
    found: dict[str, list[str]] = {}
    for dark in (False, True):
        b.dark(dark)
        for view in VIEWS:
            b.go(view)
            b.until(lambda: not b.js("return document.querySelector('main').textContent.includes('Loading')"), view)
            b.wait("main h1")
            b.until(lambda: b.js("return document.querySelectorAll('main *').length > 5"), view)
            b.js(axe)
            result = b.driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "axe.run(document, { resultTypes: ['violations'] }).then((r) => done(r.violations.map((v) => "
                "[v.id, v.impact, v.nodes.length, v.nodes.slice(0, 3).map((n) => n.target.join(' '))])))")
            bad = [f"{vid} ({impact}, {n}): {targets}" for vid, impact, n, targets in result
                   if impact in ("serious", "critical")]
            if bad:
                found[("dark " if dark else "light ") + view] = bad
    assert not found, found
