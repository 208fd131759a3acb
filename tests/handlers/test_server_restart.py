"""POST /server/restart (issue 23 item 8) against a real fail2ban on a copy of the Debian package's configuration:
every jail stopped and started afresh (fail2ban-client reload --restart), bans kept, validated first, audited."""

from __future__ import annotations

from f2b.stock import StockConfigServer
from tests.fixtures.app import Api
from tests.handlers.test_config_changes import active, get


def test_restart_restarts_every_jail_and_keeps_the_bans(config_api: Api, stock_fail2ban: StockConfigServer) -> None:
    get(stock_fail2ban, "set", "sshd", "banip", "192.0.2.5", "198.51.100.0/24")
    get(stock_fail2ban, "set", "sshd", "maxretry", "9")  # a runtime-only value: a fresh jail reads the file's
    log_before = len(stock_fail2ban.logfile.read_bytes())
    assert config_api.call("operator", "POST", "/server/restart").status_code == 403
    r = config_api.call("admin", "POST", "/server/restart")
    assert r.status_code == 200, r.text
    assert r.json()["jails"] == ["nginx-http-auth", "sshd"] and r.json()["banned_again"] >= 0
    log = stock_fail2ban.logfile.read_bytes()[log_before:].decode()
    for jail in ("sshd", "nginx-http-auth"):
        assert f"Jail '{jail}' stopped" in log and f"Jail '{jail}' started" in log, log[-2000:]
    assert {"192.0.2.5", "198.51.100.0/24"} <= set(get(stock_fail2ban, "get", "sshd", "banned"))  # type: ignore[arg-type]
    assert str(get(stock_fail2ban, "get", "sshd", "maxretry")) != "9"
    assert active(stock_fail2ban) == {"sshd", "nginx-http-auth"}
    entry = next(iter(config_api.store.audit.iter_all()))
    assert (entry["action"], entry["outcome"], entry["details"]["jails"]) == ("server.restart", "ok",
                                                                              ["nginx-http-auth", "sshd"])


def test_a_configuration_fail2ban_rejects_is_not_restarted_into(config_api: Api,
                                                                 stock_fail2ban: StockConfigServer) -> None:
    (stock_fail2ban.conf_dir / "filter.d" / "sshd.local").write_text("[Definition]\nfailregex = ^[oops <HOST>\n")
    log_before = stock_fail2ban.logfile.read_bytes()
    r = config_api.call("admin", "POST", "/server/restart")
    assert r.status_code == 422 and r.json()["error"]["code"] == "config_invalid"
    assert stock_fail2ban.logfile.read_bytes() == log_before  # fail2ban was not touched
    assert active(stock_fail2ban) == {"sshd", "nginx-http-auth"}
