"""The filter tester against fail2ban-regex itself (the real program, run here), ad-hoc regexes,
refusals, log files it may and may not read, and a catastrophic regex stopped while others are served."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from f2b.instance import PrivateServer
from settings import Settings
from tests.fixtures.app import Api, make_settings
from tests.fixtures.sshd_log import sshd_lines


@pytest.fixture
def settings(tmp_path: Path, fail2ban: PrivateServer) -> Settings:
    (tmp_path / "logs").mkdir()
    return make_settings(tmp_path / "data", str(fail2ban.socket), fail2ban_config_dir=str(fail2ban.conf_dir),
                         log_dirs=str(tmp_path / "logs"), filter_test_seconds=10.0)


def fail2ban_regex(conf_dir: Path, log: Path) -> tuple[dict[str, int], list[str]]:
    """Counts and matched lines from the real fail2ban-regex."""
    binary = shutil.which("fail2ban-regex") or "/usr/bin/fail2ban-regex"
    out = subprocess.run([binary, "-c", str(conf_dir), "--print-all-matched", str(log), "sshd"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed", out)
    assert m, out
    counts = dict(zip(("lines_checked", "ignored", "matched", "missed"), map(int, m.groups()), strict=True))
    section = out.split("Matched line(s):", 1)[1] if "Matched line(s):" in out else ""
    matched = [line[3:] for line in section.splitlines() if line.startswith("|  ")]
    return counts, matched


def test_sshd_filter_agrees_with_fail2ban_regex_on_10000_lines(api: Api, fail2ban: PrivateServer,
                                                               tmp_path: Path) -> None:
    lines = sshd_lines(10_000)
    log = tmp_path / "sshd-10k.log"
    log.write_text("\n".join(lines) + "\n")
    want, want_lines = fail2ban_regex(fail2ban.conf_dir, log)
    r = api.call("operator", "POST", "/filters/test", json={"filter": "sshd", "lines": lines, "max_matches": 10_000})
    assert r.status_code == 200, r.text
    got = r.json()
    assert {k: got[k] for k in want} == want
    assert want["matched"] > 3000 and want["ignored"] > 0 and want["missed"] > 0  # the mix exercises every kind
    assert sorted(m["line"] for m in got["matches"]) == sorted(want_lines)
    assert not got["matches_truncated"]
    first = got["matches"][0]
    assert first["ip"] in first["line"] and first["time"].endswith("Z") and "<HOST>" in first["regex"]
    assert len(got["missed_sample"]) == min(100, want["missed"])
    # the same through logpath (a file the sshd jail does not watch, but under BANGUI_LOG_DIRS)
    inside = tmp_path / "logs" / "sshd.log"
    shutil.copy(log, inside)
    by_file = api.call("operator", "POST", "/filters/test", json={"filter": "sshd", "logpath": str(inside)}).json()
    assert {k: by_file[k] for k in want} == want
    assert len(by_file["matches"]) == 1000 and by_file["matches_truncated"]


def test_adhoc_regexes_with_ignoreregex_and_datepattern(api: Api) -> None:
    body: dict[str, Any] = {
        "failregex": [r"login failed for \S+ from <HOST>$", r"bad token from <HOST>"],
        "ignoreregex": [r"from 192\.0\.2\.1$"],
        "datepattern": r"^%Y-%m-%d %H:%M:%S",
        "lines": ["2026-11-30 10:00:00 login failed for bob from 203.0.113.5",
                  "2026-11-30 10:00:01 login failed for eve from 192.0.2.1",
                  "2026-11-30 10:00:02 bad token from 2001:db8::9",
                  "2026-11-30 10:00:03 all good"]}
    r = api.call("operator", "POST", "/filters/test", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["lines_checked"], got["matched"], got["ignored"], got["missed"]) == (4, 2, 1, 1)
    assert [(m["ip"], m["regex"]) for m in got["matches"]] == [
        ("203.0.113.5", body["failregex"][0]), ("2001:db8::9", body["failregex"][1])]
    assert got["missed_sample"] == ["2026-11-30 10:00:03 all good"]
    assert got["ignored_sample"] == ["2026-11-30 10:00:01 login failed for eve from 192.0.2.1"]  # the page marks it


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"failregex": ["("], "lines": ["x"]}, 400, "invalid_regex"),
    ({"failregex": ["no host group"], "lines": ["x"]}, 400, "invalid_regex"),
    ({"filter": "no-such-filter", "lines": ["x"]}, 404, "filter_not_found"),
    ({"filter": "../../etc/passwd", "lines": ["x"]}, 400, "invalid_body"),
    ({"filter": "sshd", "failregex": ["<HOST>"], "lines": ["x"]}, 400, "invalid_body"),
    ({"filter": "sshd"}, 400, "invalid_body"),
    ({"filter": "sshd", "lines": ["x"], "logpath": "/var/log/syslog"}, 400, "invalid_body"),
    ({"filter": "sshd", "lines": ["x"] * 10_001}, 400, "invalid_body"),
    ({"filter": "sshd", "logpath": "relative.log"}, 400, "invalid_body"),
    ({"filter": "sshd", "logpath": "/etc/shadow"}, 403, "logpath_forbidden"),
])
def test_bad_requests_are_refused_with_the_envelope(api: Api, body: dict[str, Any], status: int, code: str) -> None:
    r = api.call("operator", "POST", "/filters/test", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_log_files_a_jail_watches_or_under_log_dirs_only(api: Api, fail2ban: PrivateServer, tmp_path: Path) -> None:
    watched = fail2ban.log_path("sshd")
    fail2ban.append_failures("sshd", "192.0.2.77", 2)
    r = api.call("operator", "POST", "/filters/test", json={"filter": "sshd", "logpath": str(watched)})
    assert (r.status_code, r.json()["matched"]) == (200, 2)
    outside = tmp_path / "secret.log"
    outside.write_text("x\n")
    link = tmp_path / "logs" / "link.log"
    link.symlink_to(outside)  # inside BANGUI_LOG_DIRS, leading out of it
    for path in (outside, link, tmp_path / "logs" / ".." / "secret.log"):
        r = api.call("operator", "POST", "/filters/test", json={"filter": "sshd", "logpath": str(path)})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "logpath_forbidden"), path
    missing = api.call("operator", "POST", "/filters/test",
                       json={"filter": "sshd", "logpath": str(tmp_path / "logs" / "gone.log")})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "logpath_not_found")


def test_catastrophic_regex_is_stopped_while_other_requests_are_served(api: Api) -> None:
    body = {"failregex": [r"^(a+)+$ <HOST>"], "lines": ["a" * 60 + "!"]}
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(r=api.call("operator", "POST", "/filters/test", json=body)))
    worker.start()
    try:
        served = api.call("viewer", "GET", "/jails")
        # another user (one user runs one test at a time: BANGUI_FILTER_TESTS_PER_USER)
        quick = api.call("admin", "POST", "/filters/test", json={"filter": "sshd", "lines": sshd_lines(8)})
        still_running = worker.is_alive()
    finally:
        worker.join(30)
    assert served.status_code == 200 and quick.status_code == 200
    assert quick.json()["matched"] > 0
    assert still_running  # both were answered while the catastrophic test was still being worked on
    r = result["r"]
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "filter_timeout"
    assert r.json()["error"]["details"] == {"timeout_s": 10.0}
