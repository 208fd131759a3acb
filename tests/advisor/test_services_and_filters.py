"""Checks 2 and 7 (issue 24): the "web host" (nginx access and error logs with real failure lines, listeners on
80/443, a postfix log) whose services have no jail, and filters that never match or logs that went quiet."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.advisor.helpers import apply, bans, findings, host_api, running
from tests.fixtures.advisor_host import FixtureHost, clean_jail_local

POSTFIX_LINE = ("Dec  5 10:00:00 host postfix/smtpd[2001]: warning: unknown[192.0.2.77]: SASL LOGIN authentication "
                "failed: authentication failure")


def web_host(host: FixtureHost) -> None:
    host.clean_debian()
    host.listening(22, 80, 443, 25)
    host.processes("nginx")
    host.write("/var/log/nginx/access.log", '192.0.2.5 - - [05/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 612\n')
    host.write("/var/log/nginx/error.log")
    host.nginx_auth_failures("192.0.2.60", 1)
    host.write("/var/log/mail.log", POSTFIX_LINE + "\n")


def test_the_web_hosts_services_without_a_jail_are_found_and_nginx_is_activated(tmp_path: Path,
                                                                                fixture_host: FixtureHost) -> None:
    host = fixture_host
    web_host(host)
    with host_api(tmp_path, host, clean_jail_local(host)) as (api, server):
        found = findings(api)
        assert set(found) == {"service-without-jail:nginx", "service-without-jail:postfix"}, found
        nginx = found["service-without-jail:nginx"]
        assert nginx["jail"] == "nginx-http-auth" and nginx["evidence"]["ports"] == [80, 443]
        assert nginx["evidence"]["processes"] == ["nginx"] and "/var/log/nginx/error.log" in nginx["evidence"]["logs"]
        assert nginx["fix"]["activate"] is True and nginx["fix"]["set"] == {}  # its own logpath exists here
        postfix = found["service-without-jail:postfix"]
        assert postfix["jail"] == "postfix" and postfix["evidence"]["logs"] == ["/var/log/mail.log"]

        apply(api, "service-without-jail:nginx")
        assert "nginx-http-auth" in running(server)
        host.nginx_auth_failures("192.0.2.61", 5)
        bans(server, "nginx-http-auth", "192.0.2.61")
        assert set(findings(api)) == {"service-without-jail:postfix"}


def test_bangui_without_its_jail_is_an_info_finding(tmp_path: Path, fixture_host: FixtureHost) -> None:
    host = fixture_host
    host.clean_debian()
    local = clean_jail_local(host).replace("[bangui-auth]\nenabled = true", "[bangui-auth]\nenabled = false")
    with host_api(tmp_path, host, local) as (api, server):
        found = findings(api)
        assert set(found) == {"service-without-jail:bangui"}, found
        assert found["service-without-jail:bangui"]["severity"] == "info"
        apply(api, "service-without-jail:bangui")
        assert "bangui-auth" in running(server)


def test_a_filter_that_never_matches_and_a_log_quiet_for_a_week(tmp_path: Path, fixture_host: FixtureHost) -> None:
    host = fixture_host
    host.clean_debian()
    host.write("/var/log/auth.log", "".join(f"2026-12-05T10:00:{i % 60:02d}+00:00 host CRON[{i}]: session opened\n"
                                            for i in range(200)))
    week_ago = time.time() - 8 * 86400
    os.utime(host.file("/var/log/auth.log"), (week_ago, week_ago))
    with host_api(tmp_path, host, clean_jail_local(host)) as (api, server):
        found = findings(api)
        assert set(found) == {"filter-never-matches:sshd", "log-stale:sshd"}, found
        assert found["filter-never-matches:sshd"]["evidence"]["lines_checked"] == 200
        assert found["log-stale:sshd"]["evidence"]["days"] == 8
        host.sshd_failures("192.0.2.9", 5)  # the log changes: the answer is computed again
        assert findings(api) == {}
        bans(server, "sshd", "192.0.2.9")
