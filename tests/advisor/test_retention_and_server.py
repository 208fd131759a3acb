"""Checks 6 and 8 (issue 24): retention and escalation (dbpurgeage shorter than bantime, no escalation with
the archive's repeat offenders as evidence, maxretry = 1 on sshd, bantime below findtime), and fail2ban
itself (a log level that hides bans, a log bangui cannot read, no database)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.advisor.helpers import apply, bans, f2b, findings, host_api
from tests.fixtures.advisor_host import FixtureHost, clean_jail_local


def test_retention_and_escalation_findings_and_their_fixes(tmp_path: Path, fixture_host: FixtureHost) -> None:
    host = fixture_host
    host.clean_debian()
    local = clean_jail_local(host).replace("bantime.increment = true", "bantime = 1d\nfindtime = 10m") + (
        "\n[sshd]\nmaxretry = 1\n")
    with host_api(tmp_path, host, local, fail2ban_local="dbpurgeage = 1h\n") as (api, server):
        now = time.time()
        for i in range(3):  # an address banned three times in 30 days, in bangui's archive
            api.store.history.record_ban("sshd", ["203.0.113.50"], at=now - 86400 * (i + 1))
        found = findings(api)
        assert set(found) == {"dbpurgeage-short", "no-escalation", "maxretry-one:sshd"}, found
        assert found["dbpurgeage-short"]["fix"]["set"] == {"dbpurgeage": "86400"}
        assert found["no-escalation"]["severity"] == "warning"
        assert found["no-escalation"]["evidence"] == {"repeat_offenders_30d": 1}
        assert found["maxretry-one:sshd"]["fix"]["set"] == {"maxretry": "3"}

        apply(api, "dbpurgeage-short")
        assert f2b(server, "get", "dbpurgeage") == 86400
        apply(api, "no-escalation")
        assert f2b(server, "get", "sshd", "bantime.increment") is True
        apply(api, "maxretry-one:sshd")
        assert f2b(server, "get", "sshd", "maxretry") == 3
        assert findings(api) == {}
        host.sshd_failures("192.0.2.9", 3)
        bans(server, "sshd", "192.0.2.9")


def test_bantime_below_findtime_is_found(tmp_path: Path, fixture_host: FixtureHost) -> None:
    host = fixture_host
    host.clean_debian()
    local = clean_jail_local(host, "\n[sshd]\nbantime = 60\nfindtime = 1h\n")
    with host_api(tmp_path, host, local) as (api, _):
        found = findings(api)
        assert set(found) == {"bantime-below-findtime:sshd"}, found
        assert found["bantime-below-findtime:sshd"]["fix"] is None


def test_fail2ban_itself_a_quiet_log_level_an_unreadable_log_and_no_database(tmp_path: Path,
                                                                             fixture_host: FixtureHost) -> None:
    host = fixture_host
    host.clean_debian()
    with host_api(tmp_path, host, clean_jail_local(host)) as (api, server):
        f2b(server, "set", "loglevel", "WARNING")
        found = findings(api)
        assert set(found) == {"loglevel-quiet"}, found
        apply(api, "loglevel-quiet")
        assert f2b(server, "get", "loglevel") == "INFO"
        assert findings(api) == {}
        host.sshd_failures("192.0.2.9", 5)
        bans(server, "sshd", "192.0.2.9")
    server_dir = tmp_path / "second"
    server_dir.mkdir()
    outside = server_dir / "fail2ban-outside.log"
    with host_api(server_dir, host, clean_jail_local(host), dbfile=":memory:") as (api, server):
        f2b(server, "set", "logtarget", str(outside))  # a file bangui does not see under BANGUI_HOST_ROOT
        found = findings(api)
        assert set(found) == {"logtarget-unreadable", "database-disabled"}, found
        assert found["logtarget-unreadable"]["fix"] is None and found["database-disabled"]["fix"] is None
        r = api.call("admin", "POST", "/advisor/fixes/database-disabled")
        assert r.status_code == 409 and r.json()["error"]["code"] == "no_fix"
