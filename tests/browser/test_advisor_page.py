"""Issue 24's page in a real browser, against `bangui serve` on a fixture host (tests/fixtures/advisor_host.py: a
temp BANGUI_HOST_ROOT and a real private fail2ban on a copy of Debian's configuration): the advisor's view (findings
by severity, evidence, the fix applied beside its button; viewers without fixes), its counts on the dashboard, the
guided jail form (meaning, default, effective value and its origin), activating a catalogue jail when several logs
fit, and the filter form tested live against the jail's log before saving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from f2b.blocking import sync_call
from settings import Settings
from store import Store
from tests.browser.conftest import Browser, login
from tests.fixtures.advisor_host import AdvisorServer, FixtureHost, clean_jail_local
from tests.fixtures.app import seed_users
from tests.fixtures.processes import ServerProcess

pytestmark = pytest.mark.browser
BANGUI_LINE = ('2026-12-05 10:00:0{n},123 WARNING [77] bangui.auth: bangui login failed: client=192.0.2.3{n} '
               'user="admin" reason=bad_credentials')


def f2b(server: AdvisorServer, *args: str) -> Any:
    code, value = sync_call(server.socket, *args, timeout=5.0)
    assert code == 0, value
    return value


@pytest.fixture
def advisor_site(tmp_path: Path) -> Iterator[tuple[ServerProcess, AdvisorServer, FixtureHost]]:
    """A clean Debian host with two things to advise: sshd with maxretry = 1 (fix: 3), and nginx running with
    both its logs present but no jail (the activation form asks which log)."""
    host = FixtureHost(tmp_path / "host")
    host.clean_debian()
    host.processes("systemd", "sshd", "rsyslogd", "fail2ban-server", "nginx")
    host.write("/var/log/nginx/access.log", "x\n")
    host.write("/var/log/nginx/error.log")
    host.append("/var/log/bangui.log", [BANGUI_LINE.format(n=n) for n in range(3)])
    f2b_server = AdvisorServer(tmp_path / "f2b", host, clean_jail_local(host, "\n[sshd]\nmaxretry = 1\n"))
    f2b_server.start()
    data = tmp_path / "data"
    store = Store(Settings.for_tests(data_dir=str(data), fail2ban_socket=str(f2b_server.socket)))
    seed_users(store)
    store.close()
    server = ServerProcess(data, f2b_server, 1, tmp_path, env={"BANGUI_HOST_ROOT": str(host.root)})
    try:
        server.start()
        yield server, f2b_server, host
    finally:
        server.stop()
        f2b_server.close()


def test_advisor_view_applies_a_fix_beside_its_button_and_the_dashboard_counts(advisor_site: Any, browser: Any) -> None:
    server, f2b_server, host = advisor_site
    b: Browser = browser(server.url)
    login(b)
    counts = b.wait_text("section[aria-label='Advisor']", "Open the advisor", timeout=30)
    assert "warnings" in counts.text and "critical" in counts.text
    b.shot("dashboard-advisor-counts")
    b.wait_text("nav a", "Advisor").click()
    b.wait_text("section[aria-label^='Warnings']", "maxretry", timeout=30)
    article = b.wait("article[data-id='maxretry-one:sshd']")
    assert "maxretry = 3" in article.text and "jail.d/zz-bangui.local" in article.text
    b.wait("article[data-id='maxretry-one:sshd'] summary").click()  # the evidence
    b.shot("advisor-findings")
    b.wait("article[data-id='maxretry-one:sshd'] button[aria-label^='Apply fix']").click()
    b.wait_text("article[data-id='maxretry-one:sshd'] .fix-result", "Applied", timeout=60)
    assert f2b(f2b_server, "get", "sshd", "maxretry") == 3
    assert not b.js("return document.querySelector(\"article[data-id='maxretry-one:sshd'] button\").offsetParent")
    b.shot("advisor-fix-applied")
    b.button("Check again").click()
    b.until(lambda: not b.all("article[data-id='maxretry-one:sshd']") and b.all("article[data-id^='service-without']"),
            "the fixed finding is gone after a new check", timeout=30)


def test_viewer_reads_findings_without_fixes_and_operator_without_buttons(advisor_site: Any, browser: Any) -> None:
    server, _, _ = advisor_site
    for persona, fix_shown in (("viewer", False), ("operator", True)):
        b: Browser = browser(server.url)
        login(b, persona)
        b.go("#/advisor")
        article = b.wait("article[data-id='maxretry-one:sshd']", timeout=30)
        assert "maxretry" in article.text
        assert ("maxretry = 3" in article.text) is fix_shown, (persona, article.text)
        assert not b.all("main button[aria-label^='Apply fix']"), persona
        assert not b.all("main a[href^='#/configure']"), persona  # the forms are the admin's
        b.shot(f"advisor-{persona}")


def test_jail_form_shows_meaning_default_and_origin_and_saves_through_the_engine(advisor_site: Any, browser: Any) -> None:
    server, f2b_server, _ = advisor_site
    b: Browser = browser(server.url)
    login(b)
    b.go("#/configure/jail/sshd")
    opt = b.wait("div.opt[data-key='maxretry']", timeout=30)
    assert "Failures within the find time" in opt.text and "fail2ban's default: 5" in opt.text
    assert "Now: 1 from jail.local [sshd]" in opt.text, opt.text
    assert "jail.conf [DEFAULT]" in b.wait("div.opt[data-key='findtime']").text
    b.shot("jail-form")
    b.fill("Find time (s)", "1200")
    b.fill("Max retry", "4")
    b.button("Save jail").click()
    b.wait_text(".feedback, #notice", "Saved sshd: maxretry, findtime", timeout=60)
    assert f2b(f2b_server, "get", "sshd", "findtime") == 1200 and f2b(f2b_server, "get", "sshd", "maxretry") == 4
    b.wait_text("div.opt[data-key='findtime']", "from bangui's override (jail.d/zz-bangui.local)", timeout=20)
    # dropping bangui's value: the inherited one applies again
    b.wait("div.opt[data-key='maxretry'] input[type=checkbox]").click()
    b.button("Save jail").click()
    b.wait_text(".feedback, #notice", "Saved sshd: maxretry", timeout=60)
    b.until(lambda: f2b(f2b_server, "get", "sshd", "maxretry") == 1, "maxretry back to jail.local's 1")
    b.shot("jail-form-saved")


def test_activating_a_catalogue_jail_asks_which_log_when_several_fit(advisor_site: Any, browser: Any) -> None:
    server, f2b_server, host = advisor_site
    b: Browser = browser(server.url)
    login(b)
    b.go("#/advisor")
    b.wait("article[data-id='service-without-jail:nginx'] a[href*='activate']", timeout=30).click()
    b.wait_text("h1", "Activate nginx-http-auth")
    b.wait_text("main p", "Several logs fit")
    boxes = b.all("fieldset input[type=checkbox]")
    assert len(boxes) >= 2 and not any(x.is_selected() for x in boxes)
    b.shot("activate-form")
    b.button("Activate nginx-http-auth").click()
    b.wait_text(".feedback", "Choose or give at least one log file")
    seen = host.seen("/var/log/nginx/error.log")  # the jail's own glob, as this fixture's fail2ban reads it
    b.js("for (const l of document.querySelectorAll('label.check')) if (l.textContent.includes(arguments[0])) l.querySelector('input').click()",
         host.seen("/var/log/nginx/"))
    b.button("Activate nginx-http-auth").click()
    b.wait_text(".feedback", "activated and running", timeout=60)
    assert f2b(f2b_server, "get", "nginx-http-auth", "logpath") == [seen]


def test_filter_form_tests_live_highlights_matches_and_saves_only_what_was_tested(advisor_site: Any, browser: Any) -> None:
    server, f2b_server, host = advisor_site
    b: Browser = browser(server.url)
    login(b)
    b.go("#/configure/filter/bangui-auth?jail=bangui-auth")
    b.wait_text("h1", "Filter bangui-auth", timeout=30)
    save = b.button("Save filter")
    assert not save.is_enabled()  # nothing tested yet
    b.fill("Fail regex (one per line; <HOST> marks the address)", r"bangui login failed: client=<ADDR> ")
    b.button("Test").click()
    result = b.wait_text(".filter-result", "3 matched", timeout=30)
    marks = [m.text for m in b.all(".filter-result mark")]
    assert marks == ["192.0.2.30", "192.0.2.31", "192.0.2.32"], marks
    b.shot("filter-tested")
    assert b.button("Save filter").is_enabled()
    b.fill("Date pattern", "^%%Y-%%m-%%d %%H:%%M:%%S")  # changed after the test: test again first
    b.wait_text(".filter-result", "test again before saving")
    assert not b.button("Save filter").is_enabled()
    b.fill("Fail regex (one per line; <HOST> marks the address)", r"login failed: client=<ADDR> user=")
    b.js("document.querySelector('.filter-result').replaceChildren()")
    b.button("Test").click()
    b.wait_text(".filter-result", "3 matched", timeout=30)
    b.until(lambda: b.button("Save filter").is_enabled(), "Save is enabled for the tested text")
    b.button("Save filter").click()
    b.wait_text("#notice, .feedback", "Saved filter.d/bangui-auth.local", timeout=60)
    text = (f2b_server.conf_dir / "filter.d" / "bangui-auth.local").read_text()
    assert "[Definition]\nfailregex = login failed: client=<ADDR> user=\ndatepattern = ^%%Y-%%m-%%d %%H:%%M:%%S\n" in text, text
    assert "bangui-auth" in str(f2b(f2b_server, "status")) and result is not None
