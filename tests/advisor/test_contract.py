"""The advisor's contract (issue 24) beyond single checks: who reads what (operator and admin get fixes, a viewer
the findings without them, only an admin applies), the cache (kept while nothing changes, recomputed when the
configuration, a log file or the detected services change), and what cannot be seen is `unknown`."""

from __future__ import annotations

import os
import time
from pathlib import Path

from advisor import report
from tests.advisor.helpers import findings, host_api
from tests.fixtures.advisor_host import FixtureHost, clean_jail_local


def _cache_key(api: object) -> str:
    return report._cache[str(api.settings.fail2ban_config_dir)][0]  # type: ignore[attr-defined]


def test_roles_operator_and_admin_get_fixes_a_viewer_none_and_only_an_admin_applies(
        tmp_path: Path, fixture_host: FixtureHost) -> None:
    host = fixture_host
    host.clean_debian()
    with host_api(tmp_path, host, clean_jail_local(host, "\n[sshd]\nmaxretry = 1\n")) as (api, _):
        for persona in ("viewer", "operator", "admin"):
            r = api.call(persona, "GET", "/advisor")
            assert r.status_code == 200, (persona, r.text)
            body = r.json()
            assert set(body) >= {"checked_at", "host", "findings"} and body["checked_at"].endswith("Z")
            finding = next(f for f in body["findings"] if f["id"] == "maxretry-one:sshd")
            assert set(finding) >= {"id", "severity", "title", "detail", "jail"}
            if persona == "viewer":  # the fix is left out, not null: null would say "no fix exists"
                assert all("fix" not in f for f in body["findings"]), body["findings"]
            else:
                assert finding["fix"]["set"] == {"maxretry": "3"}
        assert api.call("anonymous", "GET", "/advisor").status_code == 401
        for persona in ("viewer", "operator"):
            assert api.call(persona, "POST", "/advisor/fixes/maxretry-one:sshd").status_code == 403
        missing = api.call("admin", "POST", "/advisor/fixes/maxretry-one:nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "finding_not_found"


def test_the_answer_is_cached_until_configuration_logs_or_services_change(
        tmp_path: Path, fixture_host: FixtureHost) -> None:
    host = fixture_host
    host.clean_debian()
    with host_api(tmp_path, host, clean_jail_local(host)) as (api, server):
        assert findings(api) == {}
        findings(api)  # the run after the filter tests' results landed (their generation is part of the key)
        key = _cache_key(api)
        assert findings(api) == {} and _cache_key(api) == key  # nothing changed: the cached run answers

        # a log file changes (an enabled jail's log grows)
        host.sshd_failures("192.0.2.201")
        findings(api)
        assert _cache_key(api) != key
        key = _cache_key(api)

        # the detected services change: nginx starts
        host.processes("systemd", "sshd", "rsyslogd", "fail2ban-server", "nginx")
        host.write("/var/log/nginx/error.log")
        assert "service-without-jail:nginx" in findings(api)
        assert _cache_key(api) != key
        key = _cache_key(api)

        # the configuration changes (a hand edit of jail.local; mtime moved on in case the clock is coarse)
        local = server.conf_dir / "jail.local"
        local.write_text(local.read_text() + "\n[sshd]\nmaxretry = 1\n")
        os.utime(local, (time.time() + 5, time.time() + 5))
        assert "maxretry-one:sshd" in findings(api)
        assert _cache_key(api) != key


def test_what_cannot_be_seen_is_unknown(tmp_path: Path) -> None:
    host = FixtureHost(tmp_path / "host")  # nothing but /var/log: no /proc, no dpkg status, no journal
    host.write("/var/log/bangui.log")
    host.write("/var/log/auth.log")
    with host_api(tmp_path, host, clean_jail_local(host)) as (api, _):
        body = api.call("admin", "GET", "/advisor").json()
        facts = body["host"]
        for key in ("listening_ports", "processes", "packages", "addresses"):
            assert facts[key] == "unknown", (key, facts)
        # nothing detected is not "nothing runs": no service is reported missing a jail on a guess
        assert not [f for f in body["findings"] if f["id"].startswith("service-without-jail:")
                    and f["id"] != "service-without-jail:bangui"], body["findings"]
