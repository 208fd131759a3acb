"""Configuration changes against a real fail2ban running on a copy of the Debian package's /etc/fail2ban:
persisted settings and ignore lists (survive reload and restart), validation with fail2ban's own engine,
apply + verify + automatic rollback, package files never touched."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from actions.config import update_jail
from core.actor import cli
from core.deps import Deps
from errors import InvalidInput
from f2b.blocking import sync_call
from f2b.client import Fail2Ban
from f2b.stock import StockConfigServer
from f2bconfig import tools
from tests.fixtures.app import Api
from tests.fixtures.f2b_config import conf_hashes

OVERRIDE = "jail.d/zz-bangui.local"


def get(server: StockConfigServer, *args: str) -> object:
    code, value = sync_call(server.socket, *args, timeout=5.0)
    assert code == 0, value
    return value


def active(server: StockConfigServer) -> set[str]:
    listed = str(dict(get(server, "status")).get("Jail list", ""))  # type: ignore[call-overload]
    return {n.strip() for n in listed.split(",") if n.strip()}


def test_patch_is_applied_at_runtime_persisted_and_survives_reload_and_restart(
        config_api: Api, stock_fail2ban: StockConfigServer, package_hashes: dict[str, str]) -> None:
    body = {"maxretry": 7, "findtime": 1200, "bantime": 3600,
            "bantime_increment": {"enabled": True, "factor": 2, "maxtime": 86400, "overalljails": True}}
    r = config_api.call("admin", "PATCH", "/jails/sshd", json=body)
    assert r.status_code == 200, r.text
    jail = r.json()
    assert (jail["maxretry"], jail["findtime"], jail["bantime"]) == (7, 1200, 3600)
    assert jail["bantime_increment"]["enabled"] is True and jail["bantime_increment"]["factor"] == 2
    assert jail["bantime_increment"]["maxtime"] == 86400 and jail["bantime_increment"]["overalljails"] is True
    assert jail["active"] is True and jail["filter"] == "sshd" and jail["backend"] == "polling"
    assert get(stock_fail2ban, "get", "sshd", "maxretry") == 7  # runtime, before any reload
    assert "[sshd]" in (stock_fail2ban.conf_dir / OVERRIDE).read_text()

    ok, output = tools.reload(stock_fail2ban.conf_dir, stock_fail2ban.socket)  # fail2ban-client reload
    assert ok, output
    assert get(stock_fail2ban, "get", "sshd", "maxretry") == 7
    stock_fail2ban.restart()
    after = config_api.call("admin", "GET", "/jails/sshd").json()
    assert (after["maxretry"], after["findtime"], after["bantime"]) == (7, 1200, 3600)
    assert after["bantime_increment"]["enabled"] is True and after["bantime_increment"]["factor"] == 2
    other = config_api.call("admin", "GET", "/jails/nginx-http-auth").json()
    assert other["maxretry"] == 5  # untouched
    assert conf_hashes(stock_fail2ban.conf_dir) == package_hashes


def test_patch_validation_and_unknown_jail(config_api: Api) -> None:
    assert config_api.call("admin", "PATCH", "/jails/sshd", json={}).json()["error"]["code"] == "invalid_body"
    r = config_api.call("admin", "PATCH", "/jails/sshd", json={"maxretry": 0})
    assert r.status_code == 400
    r = config_api.call("admin", "PATCH", "/jails/sshd",
                        json={"bantime_increment": {"formula": "__import__('os').system('id')"}})
    assert r.status_code == 400
    r = config_api.call("admin", "PATCH", "/jails/ghost", json={"maxretry": 4})
    assert r.status_code == 404 and r.json()["error"]["code"] == "jail_not_found"
    assert config_api.call("operator", "PATCH", "/jails/sshd", json={"maxretry": 4}).status_code == 403


def test_ignore_list_by_an_operator_survives_restart(config_api: Api, stock_fail2ban: StockConfigServer,
                                                     package_hashes: dict[str, str]) -> None:
    r = config_api.call("operator", "POST", "/jails/sshd/ignoreip",
                        json={"entries": ["192.0.2.0/24", "2001:db8::1", "198.51.100.7"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"jail": "sshd", "ignoreip": ["192.0.2.0/24", "2001:db8::1", "198.51.100.7"]}
    assert set(get(stock_fail2ban, "get", "sshd", "ignoreip")) == {"192.0.2.0/24", "2001:db8::1",  # type: ignore[arg-type]
                                                                   "198.51.100.7"}
    r = config_api.call("operator", "DELETE", "/jails/sshd/ignoreip/198.51.100.7")
    assert r.status_code == 200 and r.json()["ignoreip"] == ["192.0.2.0/24", "2001:db8::1"]
    r = config_api.call("operator", "DELETE", "/jails/sshd/ignoreip/203.0.113.9")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_ignored"
    r = config_api.call("operator", "POST", "/jails/sshd/ignoreip", json={"entries": ["not-an-ip"]})
    assert r.status_code == 400
    assert config_api.call("viewer", "POST", "/jails/sshd/ignoreip", json={"entries": ["192.0.2.1"]}).status_code == 403

    r = config_api.call("admin", "POST", "/server/reload")
    assert r.status_code == 200 and set(r.json()["jails"]) == {"sshd", "nginx-http-auth"}
    stock_fail2ban.restart()
    assert sorted(get(stock_fail2ban, "get", "sshd", "ignoreip")) == ["192.0.2.0/24", "2001:db8::1"]  # type: ignore[type-var]
    assert config_api.call("admin", "GET", "/jails/sshd").json()["ignoreip"] == ["192.0.2.0/24", "2001:db8::1"]
    assert conf_hashes(stock_fail2ban.conf_dir) == package_hashes


def test_a_broken_regex_is_rejected_by_fail2bans_engine_and_nothing_changes(
        config_api: Api, stock_fail2ban: StockConfigServer) -> None:
    log_before = stock_fail2ban.logfile.read_bytes()
    r = config_api.call("admin", "PUT", "/config/files/filter.d/sshd.local",
                        content=b"[Definition]\nfailregex = ^(Failed password for .* from <HOST>\n",
                        headers={"Content-Type": "text/plain"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "config_invalid"
    assert "unterminated subpattern" in error["message"] and "sshd" in error["message"]
    assert not (stock_fail2ban.conf_dir / "filter.d" / "sshd.local").exists()
    assert stock_fail2ban.logfile.read_bytes() == log_before  # fail2ban was not even reloaded
    assert active(stock_fail2ban) == {"sshd", "nginx-http-auth"}
    assert config_api.call("admin", "GET", "/config/changes").json()["changes"] == []


def test_a_syntax_error_names_the_file_and_line(config_api: Api, stock_fail2ban: StockConfigServer) -> None:
    r = config_api.call("admin", "PUT", "/config/files/jail.d/broken.local", content=b"[sshd\nmaxretry = 3\n")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "config_invalid"
    assert "jail.d/broken.local" in r.json()["error"]["message"]
    assert "line: 1" in r.json()["error"]["message"]  # configparser via fail2ban: "file: ..., line: 1"
    assert not (stock_fail2ban.conf_dir / "jail.d" / "broken.local").exists()


def test_activating_a_jail_whose_log_is_missing_is_rolled_back(
        config_api: Api, stock_fail2ban: StockConfigServer, package_hashes: dict[str, str]) -> None:
    before = active(stock_fail2ban)
    r = config_api.call("admin", "POST", "/config/jails/apache-auth/activate")  # logpath /var/log/apache2/...
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "apply_failed"
    assert error["details"]["rolled_back"] is True and error["details"]["recovered"] is True
    assert "apache-auth" in error["details"]["failed"]
    assert "log file" in error["details"]["fail2ban_output"]
    assert error["details"]["log_tail"]
    assert active(stock_fail2ban) == before == {"sshd", "nginx-http-auth"}
    assert not (stock_fail2ban.conf_dir / OVERRIDE).exists()  # restored: it did not exist before
    assert conf_hashes(stock_fail2ban.conf_dir) == package_hashes


def test_activate_with_overrides_then_deactivate(config_api: Api, stock_fail2ban: StockConfigServer,
                                                 tmp_path: Path, package_hashes: dict[str, str]) -> None:
    log = tmp_path / "apache-error.log"
    log.touch()
    r = config_api.call("admin", "POST", "/config/jails/apache-auth/activate",
                        json={"logpath": [str(log)], "maxretry": 9, "backend": "polling", "port": "8080,8443"})
    assert r.status_code == 200, r.text
    assert r.json() == {"jail": "apache-auth", "active": True}
    assert active(stock_fail2ban) == {"sshd", "nginx-http-auth", "apache-auth"}
    assert get(stock_fail2ban, "get", "apache-auth", "maxretry") == 9
    catalogue = {j["name"]: j for j in config_api.call("admin", "GET", "/config/jails").json()["jails"]}
    assert len(catalogue) > 50  # every stock jail, active or not
    assert catalogue["apache-auth"]["active"] and catalogue["apache-auth"]["source"] == OVERRIDE
    assert catalogue["apache-auth"]["logpath"] == [str(log)]
    assert catalogue["apache-auth"]["backend"] == "polling"
    assert 'port="8080,8443"' in catalogue["apache-auth"]["settings"]["action"]  # the action bans those ports
    assert catalogue["sshd"]["source"] == "jail.local" and catalogue["sshd"]["enabled"]
    assert not catalogue["postfix"]["active"] and not catalogue["postfix"]["enabled"]
    assert catalogue["postfix"]["source"] == "jail.conf"

    r = config_api.call("admin", "POST", "/config/jails/apache-auth/deactivate")
    assert r.status_code == 200 and r.json() == {"jail": "apache-auth", "active": False}
    assert active(stock_fail2ban) == {"sshd", "nginx-http-auth"}
    r = config_api.call("admin", "POST", "/config/jails/postfix/activate", json={"backend": "polling\nenabled = false"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_body"  # no line of its own in the file
    r = config_api.call("admin", "POST", "/config/jails/no-such-jail/activate")
    assert r.status_code == 404 and r.json()["error"]["code"] == "jail_not_found"
    stock_fail2ban.restart()
    assert active(stock_fail2ban) == {"sshd", "nginx-http-auth"}
    assert conf_hashes(stock_fail2ban.conf_dir) == package_hashes


def test_server_settings_are_applied_persisted_and_warned_about(config_api: Api,
                                                                stock_fail2ban: StockConfigServer) -> None:
    r = config_api.call("admin", "GET", "/server/settings")
    assert r.status_code == 200
    assert r.json()["logtarget"] == str(stock_fail2ban.logfile) and r.json()["dbpurgeage"] == 86400
    r = config_api.call("admin", "PATCH", "/server/settings", json={"dbpurgeage": 3600, "dbmaxmatches": 5})
    assert r.status_code == 200, r.text
    assert r.json()["dbpurgeage"] == 3600 and r.json()["dbmaxmatches"] == 5
    assert any("dbpurgeage" in w for w in r.json()["warnings"])
    r = config_api.call("admin", "PATCH", "/server/settings", json={"loglevel": "verbose"})
    assert r.status_code == 400
    stock_fail2ban.restart()
    assert get(stock_fail2ban, "get", "dbpurgeage") == 3600
    assert "[Definition]" in (stock_fail2ban.conf_dir / "fail2ban.d" / "zz-bangui.local").read_text()


def test_every_change_is_audited_with_its_diff_and_refusals_with_fail2bans_message(
        config_api: Api, stock_fail2ban: StockConfigServer) -> None:
    assert config_api.call("admin", "PATCH", "/jails/sshd", json={"maxretry": 6}).status_code == 200
    assert config_api.call("operator", "POST", "/jails/sshd/ignoreip", json={"entries": ["192.0.2.1"]}).status_code == 200
    assert config_api.call("admin", "PUT", "/config/files/filter.d/sshd.local",
                           content=b"[Definition]\nfailregex = ^(x <HOST>\n").status_code == 422
    assert config_api.call("viewer", "POST", "/server/reload").status_code == 403
    entries, _ = config_api.store.audit.page(limit=10)
    by_action = {e["action"]: e for e in entries}
    update = by_action["jail.update"]
    assert update["outcome"] == "ok" and update["target"] == "sshd" and update["actor"] == "token:admin-token"
    assert "+maxretry = 6" in update["details"]["diff"] and update["details"]["change"]
    assert by_action["jail.ignoreip_add"]["details"]["entries"] == ["192.0.2.1"]
    refused = by_action["config.file_write"]
    assert refused["outcome"] == "failed" and refused["status"] == 422
    assert refused["details"]["error"] == "config_invalid" and "unterminated" in refused["details"]["errors"][0]
    assert by_action["server.reload"]["outcome"] == "denied"


def test_a_change_that_a_later_file_would_override_is_refused(config_api: Api, stock_fail2ban: StockConfigServer
                                                              ) -> None:
    (stock_fail2ban.conf_dir / "jail.d" / "zzz-admin.local").write_text("[sshd]\nmaxretry = 2\n")
    r = config_api.call("admin", "PATCH", "/jails/sshd", json={"maxretry": 9})
    assert r.status_code == 409 and r.json()["error"]["code"] == "config_overridden"
    assert r.json()["error"]["details"]["effective"] == "2"
    assert get(stock_fail2ban, "get", "sshd", "maxretry") == 5  # nothing applied
    assert not (stock_fail2ban.conf_dir / OVERRIDE).exists()


def test_a_configured_jail_that_is_not_running_reads_as_inactive(config_api: Api, stock_fail2ban: StockConfigServer
                                                                 ) -> None:
    get(stock_fail2ban, "stop", "nginx-http-auth")
    r = config_api.call("viewer", "GET", "/jails/nginx-http-auth")
    assert r.status_code == 200, r.text
    jail = r.json()
    assert jail["active"] is False and jail["currently_banned"] == 0
    assert (jail["maxretry"], jail["bantime"], jail["findtime"]) == (5, 600, 600)  # "10m" in jail.conf
    assert jail["filter"] == "nginx-http-auth" and jail["backend"] == "polling"
    assert jail["logpaths"] == [str(stock_fail2ban.log_path("nginx-http-auth"))]
    assert config_api.call("viewer", "GET", "/jails/postfix").json()["active"] is False  # defined, never enabled
    r = config_api.call("viewer", "GET", "/jails/no-such-jail")
    assert r.status_code == 404 and r.json()["error"]["code"] == "jail_not_found"


def test_an_invalid_edit_of_an_existing_file_leaves_it_byte_identical(config_api: Api,
                                                                      stock_fail2ban: StockConfigServer) -> None:
    live = stock_fail2ban.conf_dir / "jail.local"
    before = live.read_bytes()
    etag = config_api.call("admin", "GET", "/config/files/jail.local").headers["etag"]
    r = config_api.call("admin", "PUT", "/config/files/jail.local", headers={"If-Match": etag},
                        content=before + b"\n[postfix]\nenabled = true\nfilter = no-such-filter\n")
    assert r.status_code == 422 and r.json()["error"]["code"] == "config_invalid"
    assert "no-such-filter" in r.json()["error"]["message"]
    assert live.read_bytes() == before and not live.is_symlink()
    assert active(stock_fail2ban) == {"sshd", "nginx-http-auth"}


def test_a_formula_that_does_not_parse_is_invalid_and_nothing_changes(config_api: Api,
                                                                       stock_fail2ban: StockConfigServer) -> None:
    r = config_api.call("admin", "PATCH", "/jails/sshd",
                        json={"maxretry": 9, "bantime_increment": {"enabled": True, "formula": "ban.Time * ("}})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_body" and "bantime_increment.formula" in r.json()["error"]["message"]
    assert get(stock_fail2ban, "get", "sshd", "maxretry") == 5
    assert not (stock_fail2ban.conf_dir / OVERRIDE).exists()


EXPLOIT = "random._os.system(chr(116)+chr(111)+chr(117)+chr(99)+chr(104))+ban.Time"  # issue 18: fail2ban ran it


def test_a_formula_that_runs_code_is_refused_by_the_action_for_every_caller(
        config_api: Api, stock_fail2ban: StockConfigServer) -> None:
    formula_before = get(stock_fail2ban, "get", "sshd", "bantime.formula")
    r = config_api.call("admin", "PATCH", "/jails/sshd",
                        json={"bantime_increment": {"enabled": True, "formula": EXPLOIT}})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"]["field"] == "bantime_increment.formula"
    # the CLI and jobs call the same action, with no handler in front of it
    deps = Deps(config_api.settings, config_api.store, Fail2Ban(config_api.settings.fail2ban_socket))
    with pytest.raises(InvalidInput):
        anyio.run(update_jail, deps, cli(), "sshd", {"bantime_increment": {"formula": EXPLOIT}})
    assert get(stock_fail2ban, "get", "sshd", "bantime.formula") == formula_before
    assert not (stock_fail2ban.conf_dir / OVERRIDE).exists()
    refused = [e for e in config_api.store.audit.iter_all(action="jail.update") if e["status"] == 400]
    assert len(refused) == 2


def test_fail2bans_documented_aggressive_formula_is_accepted_and_applied(config_api: Api,
                                                                         stock_fail2ban: StockConfigServer) -> None:
    formula = "ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)"  # from jail.conf
    r = config_api.call("admin", "PATCH", "/jails/sshd", json={"bantime_increment": {"formula": formula}})
    assert r.status_code == 200, r.text
    assert get(stock_fail2ban, "get", "sshd", "bantime.formula") == formula


def test_an_ignore_entry_fail2ban_lists_verbatim_can_be_removed(config_api: Api,
                                                                 stock_fail2ban: StockConfigServer) -> None:
    get(stock_fail2ban, "set", "sshd", "addignoreip", "gateway.example")  # e.g. a host name from a hand edit
    r = config_api.call("operator", "DELETE", "/jails/sshd/ignoreip/gateway.example")
    assert r.status_code == 200 and r.json()["ignoreip"] == []
    assert config_api.call("operator", "DELETE", "/jails/sshd/ignoreip/other.example").status_code == 400
    assert config_api.call("operator", "POST", "/jails/sshd/ignoreip",
                           json={"entries": ["2001:db8::1/128"]}).json()["ignoreip"] == ["2001:db8::1"]


def test_reload_validates_a_hand_edit_first_and_refuses_to_load_it(config_api: Api,
                                                                   stock_fail2ban: StockConfigServer) -> None:
    (stock_fail2ban.conf_dir / "filter.d" / "sshd.local").write_text("[Definition]\nfailregex = ^[oops <HOST>\n")
    log_before = stock_fail2ban.logfile.read_bytes()
    r = config_api.call("admin", "POST", "/server/reload")
    assert r.status_code == 422 and r.json()["error"]["code"] == "config_invalid"
    assert stock_fail2ban.logfile.read_bytes() == log_before  # fail2ban was not asked to reload
    assert active(stock_fail2ban) == {"sshd", "nginx-http-auth"}


def test_a_jail_that_fails_inside_fail2ban_stops_every_jail_and_is_rolled_back(
        config_api: Api, stock_fail2ban: StockConfigServer, tmp_path: Path) -> None:
    """A log path that is a directory passes fail2ban's readers (the glob matches) but fails inside the
    server mid-reload, which then stops EVERY jail (measured): bangui restores the files, reloads and
    verifies that all jails are back."""
    directory = tmp_path / "not-a-log"
    directory.mkdir()
    r = config_api.call("admin", "POST", "/config/jails/apache-auth/activate", json={"logpath": [str(directory)]})
    assert r.status_code == 422, r.text
    details = r.json()["error"]["details"]
    assert r.json()["error"]["code"] == "apply_failed" and details["rolled_back"] and details["recovered"]
    assert "sshd" in details["failed"] and "Is a directory" in details["fail2ban_output"]
    assert all(len(line) <= 510 for line in details["log_tail"])
    assert active(stock_fail2ban) == {"sshd", "nginx-http-auth"}
    assert not (stock_fail2ban.conf_dir / OVERRIDE).exists()


def test_a_server_setting_fail2ban_would_reject_is_invalid(config_api: Api, stock_fail2ban: StockConfigServer) -> None:
    for text, words in ((b"[Definition]\nloglevel = LOUD\n", ("log level", "LOUD")),
                        (b"[Definition]\ndbpurgeage = soon\n", ("dbpurgeage", "soon"))):
        r = config_api.call("admin", "PUT", "/config/files/fail2ban.d/mine.local", content=text)
        assert r.status_code == 422 and r.json()["error"]["code"] == "config_invalid", r.text
        assert all(w in r.json()["error"]["message"] for w in words), r.json()["error"]["message"]
    assert not (stock_fail2ban.conf_dir / "fail2ban.d" / "mine.local").exists()


def test_revert_restores_what_fail2ban_runs_and_keeps_the_bans(config_api: Api,
                                                                 stock_fail2ban: StockConfigServer) -> None:
    """Issue 18 §4: fail2ban's reload keeps bantime.increment once no file names it; the revert's verify
    sees the runtime differ from the configuration and restarts the jail, bans restored."""
    r = config_api.call("admin", "PATCH", "/jails/sshd", json={"bantime_increment": {"enabled": True, "factor": 3}})
    assert r.status_code == 200, r.text
    assert r.json()["bantime_increment"]["enabled"] is True and r.json()["bantime_increment"]["factor"] == 3
    get(stock_fail2ban, "set", "sshd", "banip", "192.0.2.5")
    change = config_api.call("admin", "GET", "/config/changes").json()["changes"][0]["id"]
    r = config_api.call("admin", "POST", f"/config/changes/{change}/revert")
    assert r.status_code == 200, r.text
    listed = config_api.call("admin", "GET", "/config/changes").json()["changes"]
    revert, reverted = listed[0], next(c for c in listed if c["id"] == change)
    assert (revert["action"], revert["reverted"], revert["reverted_by"]) == ("config.revert", False, None)
    assert (reverted["reverted"], reverted["reverted_by"]) == (True, revert["id"])  # the page offers no Revert
    assert not (stock_fail2ban.conf_dir / OVERRIDE).exists()  # the change created it: the revert removes it
    assert get(stock_fail2ban, "get", "sshd", "bantime.increment") in (None, False)
    assert get(stock_fail2ban, "get", "sshd", "bantime.factor") in (None, "1")
    jail = config_api.call("admin", "GET", "/jails/sshd").json()
    assert not (jail["bantime_increment"] or {}).get("enabled")
    assert "192.0.2.5" in get(stock_fail2ban, "get", "sshd", "banned")  # type: ignore[operator]
    assert active(stock_fail2ban) == {"sshd", "nginx-http-auth"}


def test_a_hand_edit_removed_by_a_file_write_is_reset_at_runtime(config_api: Api,
                                                                  stock_fail2ban: StockConfigServer) -> None:
    """The same for any file: a PUT that drops a key fail2ban's reload would keep."""
    r = config_api.call("admin", "PUT", "/config/files/jail.d/mine.local",
                        content=b"[sshd]\nmaxretry = 7\nbantime.increment = true\nbantime.factor = 4\n")
    assert r.status_code == 201, r.text
    assert get(stock_fail2ban, "get", "sshd", "bantime.factor") == "4"
    r = config_api.call("admin", "PUT", "/config/files/jail.d/mine.local", content=b"[sshd]\nmaxretry = 7\n",
                        headers={"If-Match": r.headers["etag"]})
    assert r.status_code == 200, r.text
    assert get(stock_fail2ban, "get", "sshd", "bantime.increment") in (None, False)
    assert get(stock_fail2ban, "get", "sshd", "bantime.factor") in (None, "1")
    assert get(stock_fail2ban, "get", "sshd", "maxretry") == 7
