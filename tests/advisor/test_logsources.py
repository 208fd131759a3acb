"""Check 1 (issue 24) on fixture hosts: Debian 12 journald-only with sshd (no auth.log, a journal), a jail
on a log file that is not there, and the clean Debian host where nothing is found."""

from __future__ import annotations

from pathlib import Path

from tests.advisor.helpers import apply, bans, f2b, findings, host_api, running
from tests.fixtures.advisor_host import FixtureHost, clean_jail_local


def test_the_clean_debian_host_has_no_findings_and_a_viewer_sees_no_fixes(tmp_path: Path,
                                                                          fixture_host: FixtureHost) -> None:
    fixture_host.clean_debian()
    with host_api(tmp_path, fixture_host, clean_jail_local(fixture_host)) as (api, server):
        assert running(server) == {"sshd", "bangui-auth"}
        assert findings(api) == {}  # once the filter tests are done (they may outlast the first run)
        r = api.call("admin", "GET", "/advisor")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["findings"] == [], body["findings"]
        assert body["host"]["listening_ports"] == [22] and body["host"]["journal"] is True
        assert body["checked_at"].endswith("Z") and body["counts"] == {"critical": 0, "warning": 0, "info": 0}
        assert api.call("anonymous", "GET", "/advisor").status_code == 401


def test_journald_only_debian_sshd_is_found_and_fixed_with_the_systemd_backend(tmp_path: Path,
                                                                                fixture_host: FixtureHost) -> None:
    host = fixture_host
    host.clean_debian()
    with host_api(tmp_path, host, clean_jail_local(host)) as (api, server):
        # rsyslog removed: journald only, no auth.log. A fail2ban started now exits ("Have not found any log
        # file for sshd jail", measured on 1.0.2); this one still runs, so the fix can be applied and verified.
        host.file("/var/log/auth.log").unlink()
        found = findings(api)
        assert set(found) == {"jail-logpath-missing:sshd"}, found
        finding = found["jail-logpath-missing:sshd"]
        assert finding["severity"] == "critical" and finding["jail"] == "sshd"
        assert host.seen("/var/log/auth.log") in finding["detail"] and "journal" in finding["detail"]
        assert finding["fix"]["set"] == {"backend": "systemd"} and finding["fix"]["section"] == "sshd"
        viewer = findings(api, "viewer")["jail-logpath-missing:sshd"]
        assert "fix" not in viewer and viewer["detail"] == finding["detail"]
        assert "fix" in findings(api, "operator")["jail-logpath-missing:sshd"]

        result = apply(api, "jail-logpath-missing:sshd")
        assert "backend = systemd" in (server.conf_dir / "jail.d/zz-bangui.local").read_text()
        assert running(server) == {"sshd", "bangui-auth"}  # fail2ban runs sshd now, on the journal
        assert "jail-logpath-missing:sshd" not in findings(api)
        audit = list(api.store.audit.iter_all(action="advisor.fix"))
        assert audit and audit[-1]["status"] == 200 and audit[-1]["details"]["change"] == result["change"], audit
        # revertible like any configuration change (once the file it would read is back)
        host.write("/var/log/auth.log")
        r = api.call("admin", "POST", f"/config/changes/{result['change']}/revert")
        assert r.status_code == 200, r.text
        assert not (server.conf_dir / "jail.d/zz-bangui.local").exists()  # the fix created it

        host.file("/var/log/auth.log").unlink()
        server.kill()  # fail2ban down: the files are still checked; what it runs is unknown
        body = api.call("admin", "GET", "/advisor").json()
        assert body["host"]["fail2ban"] == "unknown"
        assert "jail-logpath-missing:sshd" in {f["id"] for f in body["findings"]}
        r = api.call("admin", "POST", "/advisor/fixes/jail-logpath-missing:sshd")
        assert r.status_code == 503 and r.json()["error"]["code"] == "fail2ban_unavailable", r.text


def test_a_jail_on_a_missing_log_is_found_and_the_others_still_ban(tmp_path: Path, fixture_host: FixtureHost) -> None:
    host = fixture_host
    host.clean_debian()
    host.write("/var/log/vsftpd.log")
    extra = "\n[vsftpd]\nenabled = true\n"
    with host_api(tmp_path, host, clean_jail_local(host, extra)) as (api, server):
        host.file("/var/log/vsftpd.log").unlink()  # gone: the next start of fail2ban would fail
        found = findings(api)
        assert set(found) == {"jail-logpath-missing:vsftpd"}, found
        assert found["jail-logpath-missing:vsftpd"]["fix"] is None  # nothing on this host would work: no guess
        host.sshd_failures("192.0.2.9", 5)
        bans(server, "sshd", "192.0.2.9")
        assert f2b(server, "get", "sshd", "maxretry") == 5
