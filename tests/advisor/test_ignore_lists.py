"""Checks 3 and 4 (issue 24): the "locked-out risk" host (a request from an address no ignoreip holds) and the
"ignoreip 0.0.0.0/0" host; each fix applied through the engine, then the jail still bans a real failure line."""

from __future__ import annotations

from pathlib import Path

from tests.advisor.helpers import apply, bans, f2b, findings, host_api
from tests.fixtures.advisor_host import FixtureHost, clean_jail_local
from tests.fixtures.waiting import wait_for

OPERATOR = "198.51.100.23"


def test_the_requesters_address_not_ignored_is_a_lockout_risk_and_the_fix_adds_it(
        tmp_path: Path, fixture_host: FixtureHost) -> None:
    host = fixture_host
    host.clean_debian()
    with host_api(tmp_path, host, clean_jail_local(host), client=(OPERATOR, 50123),
                  trusted_proxies=("203.0.113.0/24",)) as (api, server):
        found = findings(api)
        assert set(found) == {"lockout-risk:sshd", "lockout-risk:bangui-auth"}, found
        risk = found["lockout-risk:sshd"]
        assert risk["severity"] == "warning" and OPERATOR in risk["detail"] and "your address" in risk["detail"]
        assert "203.0.113.0/24" in risk["detail"] and "trusted proxy" in risk["detail"]
        assert risk["fix"]["set"] == {"ignoreip": f"127.0.0.1/8 ::1 203.0.113.0/24 {OPERATOR}"}
        assert "10.0.0.5" not in risk["detail"]  # the host's own address: fail2ban's ignoreself covers it

        apply(api, "lockout-risk:sshd")
        assert OPERATOR in [str(e) for e in f2b(server, "get", "sshd", "ignoreip")]
        assert set(findings(api)) == {"lockout-risk:bangui-auth"}
        host.sshd_failures(OPERATOR, 6)
        host.sshd_failures("192.0.2.9", 5)
        bans(server, "sshd", "192.0.2.9")  # the jail works ...
        assert OPERATOR not in [str(b) for b in f2b(server, "get", "sshd", "banned")]  # ... and spares the operator


def test_ignoreip_0_0_0_0_slash_0_is_critical_and_the_fix_restores_banning(tmp_path: Path,
                                                                           fixture_host: FixtureHost) -> None:
    host = fixture_host
    host.clean_debian()
    local = clean_jail_local(host).replace("ignoreip = 127.0.0.1/8 ::1", "ignoreip = 127.0.0.1/8 ::1 0.0.0.0/0 ::/8")
    with host_api(tmp_path, host, local) as (api, server):
        found = findings(api)
        assert set(found) == {"ignoreip-too-wide:sshd", "ignoreip-too-wide:bangui-auth"}, found
        wide = found["ignoreip-too-wide:sshd"]
        assert wide["severity"] == "critical" and wide["evidence"]["too_wide"] == ["0.0.0.0/0", "::/8"]
        assert wide["fix"]["set"] == {"ignoreip": "127.0.0.1/8 ::1"}
        host.sshd_failures("192.0.2.9", 5)
        apply(api, "ignoreip-too-wide:sshd")
        assert sorted(str(e) for e in f2b(server, "get", "sshd", "ignoreip")) == ["127.0.0.0/8", "::1"]
        host.sshd_failures("192.0.2.10", 5)
        bans(server, "sshd", "192.0.2.10")
        wait_for(lambda: "ignoreip-too-wide:sshd" not in findings(api), 5, "the finding gone")
