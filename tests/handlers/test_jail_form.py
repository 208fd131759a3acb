"""The guided jail form's API (issue 24): GET /config/jails/{jail} says where each option comes from; PATCH
/config/jails/{jail} sets (or drops) bangui's values through the configuration engine, against a real fail2ban on
a copy of the Debian configuration."""

from __future__ import annotations

from f2b.blocking import sync_call
from f2b.stock import StockConfigServer
from tests.fixtures.app import Api
from tests.fixtures.f2b_config import conf_hashes

OVERRIDE = "jail.d/zz-bangui.local"


def runtime(server: StockConfigServer, jail: str, key: str) -> object:
    code, value = sync_call(server.socket, "get", jail, key, timeout=5.0)
    assert code == 0, value
    return value


def test_each_option_names_the_file_and_section_it_comes_from(config_api: Api, stock_fail2ban: StockConfigServer) -> None:
    r = config_api.call("admin", "GET", "/config/jails/sshd")
    assert r.status_code == 200, r.text
    jail = r.json()
    assert jail["active"] is True and jail["filter"] == "sshd" and jail["override_file"] == OVERRIDE
    opts = jail["options"]
    # Debian: jail.conf's [DEFAULT] sets maxretry = 5, the fixture's jail.local sets banaction = noop
    assert opts["maxretry"]["file"] == "jail.conf" and opts["maxretry"]["section"] == "DEFAULT"
    assert opts["maxretry"]["raw"] == "5" and opts["maxretry"]["override"] is False
    assert opts["port"] == {**opts["port"], "file": "jail.conf", "section": "sshd", "raw": "ssh"}
    assert opts["banaction"]["file"] == "jail.local"
    assert [s["file"] for s in opts["banaction"]["chain"]][:1] == ["jail.conf"]  # the default it replaces
    assert int(jail["settings"]["maxretry"]) == 5
    assert config_api.call("operator", "GET", "/config/jails/sshd").status_code == 403
    missing = config_api.call("admin", "GET", "/config/jails/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "jail_not_found"


def test_options_are_set_in_the_override_applied_and_dropped_with_null(
        config_api: Api, stock_fail2ban: StockConfigServer, package_hashes: dict[str, str]) -> None:
    body = {"maxretry": 4, "findtime": 900, "bantime_increment": True, "bantime_factor": 2,
            "ignoreip": ["127.0.0.1/8", "192.0.2.0/24"]}
    r = config_api.call("admin", "PATCH", "/config/jails/sshd", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["set"] == {"maxretry": "4", "findtime": "900", "bantime.increment": "true",
                               "bantime.factor": "2.0", "ignoreip": "127.0.0.1/8 192.0.2.0/24"}
    assert runtime(stock_fail2ban, "sshd", "maxretry") == 4 and runtime(stock_fail2ban, "sshd", "findtime") == 900
    opts = config_api.call("admin", "GET", "/config/jails/sshd").json()["options"]
    assert opts["maxretry"]["file"] == OVERRIDE and opts["maxretry"]["override"] is True
    assert config_api.call("admin", "GET", "/config/changes").json()["changes"][0]["action"] == "config.jail_options"

    back = config_api.call("admin", "PATCH", "/config/jails/sshd", json={"maxretry": None})
    assert back.status_code == 200, back.text
    opts = config_api.call("admin", "GET", "/config/jails/sshd").json()["options"]
    assert opts["maxretry"]["file"] == "jail.conf" and opts["findtime"]["file"] == OVERRIDE
    assert runtime(stock_fail2ban, "sshd", "maxretry") == 5
    assert conf_hashes(stock_fail2ban.conf_dir) == package_hashes


def test_bad_values_are_refused_before_anything_is_written(config_api: Api, stock_fail2ban: StockConfigServer) -> None:
    before = (stock_fail2ban.conf_dir / OVERRIDE).read_bytes() if (stock_fail2ban.conf_dir / OVERRIDE).exists() else None
    for body in ({"filter": "sshd\nenabled = false"}, {"logpath": ["relative.log"]}, {"bantime": 0},
                 {"backend": "inotify2"}, {"ignoreip": ["a b"]}, {}, {"formula": "1"}, {"action": ["x\ny"]}):
        r = config_api.call("admin", "PATCH", "/config/jails/sshd", json=body)
        assert r.status_code == 400, (body, r.text)
    assert config_api.call("operator", "PATCH", "/config/jails/sshd", json={"maxretry": 3}).status_code == 403
    # fail2ban's own check refuses a filter that does not exist: nothing changed
    r = config_api.call("admin", "PATCH", "/config/jails/sshd", json={"filter": "no-such-filter"})
    assert r.status_code == 422, r.text
    after = (stock_fail2ban.conf_dir / OVERRIDE).read_bytes() if (stock_fail2ban.conf_dir / OVERRIDE).exists() else None
    assert after == before


def test_activate_with_the_fields_the_advisor_could_not_fill(config_api: Api, stock_fail2ban: StockConfigServer,
                                                             tmp_path: object) -> None:
    log = stock_fail2ban.base_dir / "logs" / "vsftpd.log"
    log.write_text("")
    r = config_api.call("admin", "PATCH", "/config/jails/vsftpd",
                        json={"activate": True, "logpath": [str(log)], "backend": "polling"})
    assert r.status_code == 200, r.text
    assert "vsftpd" in config_api.call("admin", "GET", "/jails").text
    assert runtime(stock_fail2ban, "vsftpd", "logpath") == [str(log)]
