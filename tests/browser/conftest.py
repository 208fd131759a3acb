"""Browser tests: Debian's headless chromium (through chromium-driver and Selenium) against a real
`bangui serve` process and a real private fail2ban. Run with `./dev browser` (marker `browser`).

- Any console error or uncaught exception in the page fails the test (`Browser.check_console`, run at every
  screenshot and at teardown). Failed loads that the page expects (the 401 of the "am I logged in?" probe)
  are network entries, not script errors: they are reported, and a 5xx among them fails the test.
- Screenshots go to tests/browser/screenshots/<test name>/ (gitignored; the path is printed) so a reviewer
  can look at every screen.
- Timings come from the page's own Performance API marks (`Browser.measure`); tests print them and assert
  only generous bounds (the machine is shared).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from settings import Settings
from store import Store
from tests.fixtures.app import PASSWORD, seed_users
from tests.fixtures.processes import ServerProcess

try:  # the default run (`./dev test`) deselects these tests and may not have selenium installed
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - reported by _driver()
    webdriver = None

SHOTS = Path(__file__).with_name("screenshots")
CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "") if p and os.access(p, os.X_OK)), None)
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DESKTOP = (1366, 900)
PHONE = (390, 844)


class Browser:
    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.driver = driver
        self.base = base
        self.shots = shots
        self.count = 0
        self.network_errors: list[str] = []
        self.expect_5xx = False  # a test that stops fail2ban expects 503s from the API

    # --- navigation and waiting ---
    def open(self, route: str = "") -> None:
        self.driver.get(self.base + "/" + route)

    def go(self, route: str) -> None:
        """An in-page route (#/...), as a click on a link would."""
        self.driver.execute_script("location.hash = arguments[0]", route)

    def wait(self, css: str, timeout: float = 10, visible: bool = True) -> Any:
        def find(d: Any) -> Any:
            for el in d.find_elements(By.CSS_SELECTOR, css):
                if not visible or el.is_displayed():
                    return el
            return False

        try:
            return WebDriverWait(self.driver, timeout, ignored_exceptions=[StaleElementReferenceException]).until(find)
        except TimeoutException:
            self.shot("timeout")
            raise AssertionError(f"nothing matches {css!r} after {timeout} s; banner: {self.banner()!r}") from None

    def wait_text(self, css: str, text: str, timeout: float = 10) -> Any:
        def find(d: Any) -> Any:
            for el in d.find_elements(By.CSS_SELECTOR, css):
                if text in el.text and el.is_displayed():
                    return el
            return False

        try:
            return WebDriverWait(self.driver, timeout, ignored_exceptions=[StaleElementReferenceException]).until(find)
        except TimeoutException:
            self.shot("timeout")
            raise AssertionError(f"no {css!r} says {text!r} after {timeout} s; banner: {self.banner()!r}") from None

    def until(self, check: Callable[[], Any], what: str, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = check()
            except StaleElementReferenceException:  # the page redrew that part meanwhile
                value = None
            if value:
                return value
            time.sleep(0.05)
        self.shot("timeout")
        raise AssertionError(f"{what}: not true after {timeout} s; banner: {self.banner()!r}")

    def all(self, css: str) -> list[Any]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def banner(self) -> str:
        return str(self.js("const b = document.getElementById('banner'); return b && !b.hidden ? b.textContent : ''"))

    def fill(self, label: str, value: str, timeout: float = 10) -> None:
        """Type into the field whose <label> says `label` (fields are labelled: this is also the a11y check), once
        the view shows it (a view opened just now may still be loading its module)."""
        def find(_: Any) -> Any:
            return self.js("""
                for (const l of document.querySelectorAll('label')) {
                  if (l.textContent.trim() === arguments[0] && l.control && l.offsetParent) return l.control;
                }
                return null;""", label) or False

        try:
            field = WebDriverWait(self.driver, timeout, ignored_exceptions=[StaleElementReferenceException]).until(find)
        except TimeoutException:
            self.shot("timeout")
            raise AssertionError(f"no visible field labelled {label!r} after {timeout} s") from None
        field.clear()
        field.send_keys(value)

    def button(self, text: str, within: str = "main") -> Any:
        return self.wait_text(f"{within} button", text)

    def accept_confirms(self) -> None:
        self.js("window.confirm = () => true")

    # --- evidence ---
    def size(self, width_height: tuple[int, int]) -> None:
        self.driver.set_window_size(*width_height)
        # the window is larger than the viewport by the (headless) chrome: set the viewport exactly
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width_height[0], "height": width_height[1], "deviceScaleFactor": 1, "mobile": width_height[0] < 600})

    def dark(self, on: bool = True) -> None:
        self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": "dark" if on else "light"}]})

    def shot(self, name: str, full: bool = True) -> Path:
        self.shots.mkdir(parents=True, exist_ok=True)
        self.count += 1
        path = self.shots / f"{self.count:02d}-{name}.png"
        if full:
            height = int(self.js("return Math.min(document.documentElement.scrollHeight, 6000)"))
            width = int(self.js("return window.innerWidth"))
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": max(height, 300), "deviceScaleFactor": 1, "mobile": width < 600})
            self.driver.save_screenshot(str(path))
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": int(self.js("return window.outerHeight")) or 900,
                "deviceScaleFactor": 1, "mobile": width < 600})
        else:
            self.driver.save_screenshot(str(path))
        if name != "timeout":
            self.check_console()
            self.check_labels()
        return path

    def check_labels(self) -> None:
        """Every visible form field has a label, every button and link a name (screen readers, keyboard users)."""
        unnamed = self.js("""
            const out = [];
            for (const el of document.querySelectorAll('input, select, textarea')) {
              if (el.offsetParent && !el.labels.length && !el.getAttribute('aria-label')) out.push(el.outerHTML.slice(0, 80));
            }
            for (const el of document.querySelectorAll('button, a[href]')) {
              if (el.offsetParent && !el.textContent.trim() && !el.getAttribute('aria-label')) out.push(el.outerHTML.slice(0, 80));
            }
            return out;""")
        assert not unnamed, f"fields or controls without a name: {unnamed}"

    def measured_at(self, name: str) -> float | None:
        """When (ms since navigation start) the page's last measure `name` ended."""
        value = self.js("const m = performance.getEntriesByName(arguments[0], 'measure'); "
                        "return m.length ? m[m.length - 1].startTime + m[m.length - 1].duration : null", name)
        return None if value is None else float(value)

    def measure(self, name: str) -> float | None:
        """Duration (ms) of the page's last performance.measure(name), or None."""
        value = self.js("const m = performance.getEntriesByName(arguments[0], 'measure'); "
                        "return m.length ? m[m.length - 1].duration : null", name)
        return None if value is None else float(value)

    def check_console(self) -> None:
        errors = []
        for entry in self.driver.get_log("browser"):
            if entry.get("source") == "network":
                self.network_errors.append(entry["message"])
                if " status of 5" in entry["message"] and not self.expect_5xx:
                    errors.append(entry["message"])
            elif (entry["level"] in ("SEVERE", "ERROR") or "Uncaught" in entry["message"]
                  or "Content Security Policy" in entry["message"]):
                errors.append(entry["message"])
        exceptions = self.js("return window.__errors || []")
        assert not errors and not exceptions, f"console errors: {errors} {exceptions}"


@pytest.fixture
def seeded_server(tmp_path: Path, fail2ban: Any) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    """`bangui serve` with the test cast of users (admin/operator/viewer, password PASSWORD) and their tokens."""
    data = tmp_path / "data"
    settings = Settings.for_tests(data_dir=str(data), fail2ban_socket=str(fail2ban.socket))
    store = Store(settings)
    tokens = seed_users(store)
    store.close()
    server = ServerProcess(data, fail2ban, 1, tmp_path)
    server.start()
    yield server, tokens
    server.stop()


@pytest.fixture
def fresh_server(tmp_path: Path, fail2ban: Any) -> Iterator[ServerProcess]:
    """`bangui serve` on an empty data dir: first-run setup with the token file."""
    server = ServerProcess(tmp_path / "data", fail2ban, 1, tmp_path)
    server.start()
    yield server
    server.stop()


def _driver(profile: str) -> Any:
    if webdriver is None:
        pytest.fail("the browser tests need selenium: run them with ./dev browser (it installs the `browser` extra)")
    if CHROMIUM is None or not os.access(DRIVER, os.X_OK):
        pytest.fail("Debian's chromium and chromium-driver are needed: apt-get install chromium chromium-driver "
                    "(./dev browser installs them when run as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-extensions", "--disable-default-apps", "--mute-audio", f"--user-data-dir={profile}",
                 "--remote-debugging-address=127.0.0.1", f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=DRIVER, service_args=["--allowed-ips=127.0.0.1"])
    return webdriver.Chrome(options=options, service=service)


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Browser]]:
    """A factory: `browser(base_url)` -> a Browser on a fresh profile, quit (and its profile removed) at the end."""
    opened: list[tuple[Any, str, Browser]] = []
    shots = SHOTS / request.node.name

    def open_(base: str) -> Browser:
        if shots.exists() and not opened:
            shutil.rmtree(shots)
        profile = tempfile.mkdtemp(prefix="bangui-chromium-")
        driver = _driver(profile)
        # uncaught errors and rejections, counted by the page's window (reported with the console's)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": (
            "window.__errors = [];"
            "addEventListener('error', e => window.__errors.push(String(e.message)));"
            "addEventListener('unhandledrejection', e => window.__errors.push('unhandled: ' + String(e.reason)));")})
        b = Browser(driver, base, shots)
        opened.append((driver, profile, b))
        return b

    yield open_
    failures = []
    for driver, profile, b in opened:
        try:
            b.check_console()
        except AssertionError as exc:
            failures.append(str(exc))
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
    if opened:
        print(f"\nscreenshots: {shots}")
    assert not failures, failures


def api_call(server: ServerProcess, token: str, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(method, server.url + "/api/v1" + path, headers={"Authorization": f"Bearer {token}"},
                      timeout=10, **kw)
    assert r.status_code < 300, (r.status_code, r.text)
    return r.json() if r.content else None


def login(b: Browser, username: str = "admin", password: str = PASSWORD) -> None:
    b.open()
    b.wait("form.stack")
    b.fill("Username", username)
    b.fill("Password", password)
    b.button("Log in").click()
    b.wait("nav a[aria-current]")


def report(name: str, value: Any) -> None:
    print(f"\n[figure] {name}: {json.dumps(value)}")
