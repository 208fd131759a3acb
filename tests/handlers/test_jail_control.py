"""Jail control against a real private fail2ban: stop/start/reload/idle, unban-all, and the unbans a
stop or an unban-all leaves in history. The config dir is the private server's own (jail.local)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from f2b.instance import PrivateServer
from settings import Settings
from tests.fixtures.app import Api, make_settings
from tests.fixtures.waiting import wait_for

ADMIN_ACTOR = "token:admin-token"


@pytest.fixture
def settings(tmp_path: Path, fail2ban: PrivateServer) -> Settings:
    return make_settings(tmp_path / "data", str(fail2ban.socket), fail2ban_config_dir=str(fail2ban.conf_dir))


def running(api: Api) -> set[str]:
    return {j["name"] for j in api.call("viewer", "GET", "/jails").json()["jails"]}


def unbans(api: Api, jail: str) -> list[tuple[str, str]]:
    items = api.call("viewer", "GET", f"/history?jail={jail}&event=unban").json()["items"]
    return sorted((i["ip"], i["actor"]) for i in items)


def add_disabled_jail(server: PrivateServer, name: str) -> None:
    """A jail the configuration defines but does not enable (so fail2ban did not start it)."""
    log = server.base_dir / "logs" / f"{name}.log"
    log.touch()
    with (server.conf_dir / "jail.local").open("a") as fh:
        fh.write(f"\n[{name}]\nenabled = false\nfilter = sshd\nlogpath = {log}\nmaxretry = 2\naction = noop\n")


def test_stop_then_start_again(api: Api) -> None:
    r = api.call("admin", "POST", "/jails/sshd/stop")
    assert (r.status_code, r.json()) == (200, {"jail": "sshd", "active": False})
    assert "sshd" not in running(api)
    again = api.call("admin", "POST", "/jails/sshd/stop")
    assert (again.status_code, again.json()) == (200, {"jail": "sshd", "active": False})
    r = api.call("admin", "POST", "/jails/sshd/start")
    assert (r.status_code, r.json()) == (200, {"jail": "sshd", "active": True})
    assert running(api) == {"sshd", "nginx-http-auth", "sshd-dummy"}
    detail = api.call("viewer", "GET", "/jails/sshd").json()
    assert (detail["maxretry"], detail["bantime"]) == (3, 600)  # the configuration's values


def test_start_of_a_running_jail_is_a_no_op(api: Api) -> None:
    api.call("admin", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.9"]})
    r = api.call("admin", "POST", "/jails/sshd/start")
    assert (r.status_code, r.json()) == (200, {"jail": "sshd", "active": True})
    assert api.call("viewer", "GET", "/jails/sshd").json()["currently_banned"] == 1


def test_unknown_jail_is_404_for_stop_start_reload(api: Api) -> None:
    for verb in ("stop", "start", "reload"):
        r = api.call("admin", "POST", f"/jails/ghost/{verb}")
        assert r.status_code == 404, (verb, r.text)
        assert r.json()["error"]["code"] == "jail_not_found"


def test_start_a_configured_but_disabled_jail(api: Api, fail2ban: PrivateServer) -> None:
    add_disabled_jail(fail2ban, "sshd-extra")
    assert "sshd-extra" not in running(api)
    r = api.call("admin", "POST", "/jails/sshd-extra/start")
    assert (r.status_code, r.json()) == (200, {"jail": "sshd-extra", "active": True}), r.text
    assert "sshd-extra" in running(api)
    assert api.call("viewer", "GET", "/jails/sshd-extra").json()["maxretry"] == 2
    # and it works: two failures ban (maxretry 2 from its section)
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    with (fail2ban.base_dir / "logs" / "sshd-extra.log").open("a") as fh:
        fh.writelines(f"{stamp} demo sshd[{i}]: Failed password for root from 203.0.113.44 port 4000 ssh2\n"
                      for i in (1, 2))
    wait_for(lambda: api.call("viewer", "GET", "/bans?jail=sshd-extra").json()["bans"])


def test_start_of_a_jail_whose_log_is_missing_is_refused_and_leaves_nothing(api: Api, fail2ban: PrivateServer
                                                                           ) -> None:
    add_disabled_jail(fail2ban, "broken")
    (fail2ban.base_dir / "logs" / "broken.log").unlink()
    r = api.call("admin", "POST", "/jails/broken/start")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "config_invalid"
    assert "log file" in r.json()["error"]["message"]
    assert running(api) == {"sshd", "nginx-http-auth", "sshd-dummy"}


def test_reload_keeps_bans_and_applies_the_configuration(api: Api, fail2ban: PrivateServer) -> None:
    api.call("admin", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.1", "192.0.2.2"]})
    jail_local = fail2ban.conf_dir / "jail.local"
    text = jail_local.read_text()
    start = text.index("[sshd]")
    jail_local.write_text(text[:start] + text[start:].replace("maxretry = 3", "maxretry = 7", 1))
    r = api.call("admin", "POST", "/jails/sshd/reload")
    assert (r.status_code, r.json()) == (200, {"jail": "sshd", "active": True}), r.text
    detail = api.call("viewer", "GET", "/jails/sshd").json()
    assert detail["maxretry"] == 7
    assert detail["currently_banned"] == 2


def test_reload_of_a_stopped_jail_is_409(api: Api) -> None:
    api.call("admin", "POST", "/jails/sshd/stop")
    r = api.call("admin", "POST", "/jails/sshd/reload")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "jail_not_active"


def test_idle_on_and_off(api: Api) -> None:
    r = api.call("admin", "PUT", "/jails/sshd/idle", json={"idle": True})
    assert (r.status_code, r.json()) == (200, {"jail": "sshd", "idle": True})
    r = api.call("admin", "PUT", "/jails/sshd/idle", json={"idle": False})
    assert (r.status_code, r.json()) == (200, {"jail": "sshd", "idle": False})
    bad = api.call("admin", "PUT", "/jails/sshd/idle", json={"idle": "yes"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_body")


def test_the_jail_shows_the_idle_flag_bangui_set_until_the_jail_or_fail2ban_restarts(
        api: Api, fail2ban: PrivateServer) -> None:
    """fail2ban 1.0.2 cannot say whether a jail is idle: the jail view showed null even right after bangui set it."""
    def idle() -> object:
        return api.call("viewer", "GET", "/jails/sshd").json()["idle"]

    assert idle() is None  # never set by bangui: unknown
    api.call("admin", "PUT", "/jails/sshd/idle", json={"idle": True})
    assert idle() is True
    api.call("admin", "POST", "/jails/sshd/stop")
    api.call("admin", "POST", "/jails/sshd/start")
    assert idle() is None  # a restarted jail is a new jail in fail2ban
    api.call("admin", "PUT", "/jails/sshd/idle", json={"idle": False})
    assert idle() is False
    fail2ban.restart()
    assert idle() is None  # another fail2ban server: what bangui set on the last one says nothing


def test_unban_all_lifts_every_ban_and_records_each(api: Api) -> None:
    ips = ["192.0.2.1", "2001:db8::7", "198.51.100.0/24"]
    api.call("admin", "POST", "/jails/sshd/bans", json={"ips": ips})
    api.call("admin", "POST", "/jails/nginx-http-auth/bans", json={"ips": ["192.0.2.50"]})
    r = api.call("admin", "DELETE", "/jails/sshd/bans")
    assert (r.status_code, r.json()) == (200, {"jail": "sshd", "unbanned": 3})
    assert api.call("viewer", "GET", "/bans?jail=sshd").json()["bans"] == []
    assert len(api.call("viewer", "GET", "/bans?jail=nginx-http-auth").json()["bans"]) == 1  # other jails keep theirs
    assert unbans(api, "sshd") == sorted((ip, ADMIN_ACTOR) for ip in ips)
    empty = api.call("admin", "DELETE", "/jails/sshd/bans")
    assert empty.json() == {"jail": "sshd", "unbanned": 0}


def test_unban_all_of_many_addresses_in_chunks(api: Api) -> None:
    ips = [f"10.9.{i // 250}.{i % 250 + 1}" for i in range(1200)]
    api.call("admin", "POST", "/jails/sshd/bans", json={"ips": ips})
    r = api.call("admin", "DELETE", "/jails/sshd/bans")
    assert r.json() == {"jail": "sshd", "unbanned": 1200}
    assert len(unbans(api, "sshd")) == 100  # one page of history (the default limit)


def test_stop_of_a_jail_with_bans_records_them_as_unbans(api: Api, fail2ban: PrivateServer) -> None:
    api.call("admin", "POST", "/jails/sshd-dummy/bans", json={"ips": ["192.0.2.3", "192.0.2.4"]})
    target = fail2ban.dummy_target("sshd-dummy")
    assert "+192.0.2.3" in target.read_text()
    assert api.call("admin", "POST", "/jails/sshd-dummy/stop").status_code == 200
    assert unbans(api, "sshd-dummy") == [("192.0.2.3", ADMIN_ACTOR), ("192.0.2.4", ADMIN_ACTOR)]
    assert not target.exists()  # the dummy action's stop ran: its "firewall" is gone


def test_control_needs_admin(api: Api) -> None:
    for method, path in (("POST", "/jails/sshd/stop"), ("DELETE", "/jails/sshd/bans")):
        r = api.call("operator", method, path)
        assert r.status_code == 403
    assert "sshd" in running(api)


def test_each_control_is_audited_with_what_it_did(api: Api) -> None:
    api.call("admin", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.5", "192.0.2.6"]})
    api.call("admin", "POST", "/jails/sshd/stop")
    api.call("admin", "POST", "/jails/sshd/start")
    api.call("admin", "PUT", "/jails/sshd/idle", json={"idle": True})
    api.call("admin", "DELETE", "/jails/nginx-http-auth/bans")
    api.call("operator", "POST", "/jails/sshd/reload")
    got = [(e["action"], e["target"], e["outcome"], e["details"]) for e in api.store.audit.iter_all()][:5]
    assert got == [
        ("jail.reload", "sshd", "denied", {"error": "forbidden"}),
        ("jail.unban_all", "nginx-http-auth", "ok", {"unbanned": 0}),
        ("jail.idle", "sshd", "ok", {"idle": True}),
        ("jail.start", "sshd", "ok", {"was_active": False}),
        ("jail.stop", "sshd", "ok", {"was_active": True, "unbanned": 2}),
    ]


def test_stop_of_an_unknown_jail_without_a_readable_configuration_is_404(api: Api, fail2ban: PrivateServer) -> None:
    (fail2ban.conf_dir / "jail.local").rename(fail2ban.conf_dir / "jail.local.away")
    r = api.call("admin", "POST", "/jails/ghost/stop")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "jail_not_found")
    start = api.call("admin", "POST", "/jails/ghost/start")
    assert (start.status_code, start.json()["error"]["code"]) == (422, "config_invalid")
    assert "BANGUI_FAIL2BAN_CONFIG_DIR" in start.json()["error"]["message"]


def test_start_and_reload_refuse_a_hand_edited_expression_fail2ban_would_eval(api: Api, fail2ban: PrivateServer,
                                                                                tmp_path: Path) -> None:
    """Issue 18: fail2ban eval()s bantime.factor as root when it reads it (bantime.formula at each ban): a start or a
    reload sends the stream fail2ban's readers make of the files, so the values are checked there too."""
    mark = tmp_path / "evaluated"
    (fail2ban.conf_dir / "jail.d").mkdir(exist_ok=True)
    edit = fail2ban.conf_dir / "jail.d" / "zz-hand.local"
    edit.write_text(f"[sshd]\nbantime.increment = true\nbantime.factor = __import__('os').system('touch {mark}')+1\n")
    r = api.call("admin", "POST", "/jails/sshd/reload")
    assert r.status_code == 422 and r.json()["error"]["details"]["option"] == "bantime.factor", r.text
    assert api.call("admin", "POST", "/jails/sshd/stop").status_code == 200
    r = api.call("admin", "POST", "/jails/sshd/start")
    assert r.status_code == 422 and r.json()["error"]["code"] == "config_invalid", r.text
    assert not mark.exists() and "sshd" not in running(api)
    edit.write_text("[sshd]\nbantime.increment = true\nbantime.formula = (999999**9)**999999\n")
    assert api.call("admin", "POST", "/jails/sshd/start").status_code == 422
    edit.write_text("[sshd]\nbantime.increment = true\nbantime.factor = 3\n")
    assert api.call("admin", "POST", "/jails/sshd/start").status_code == 200 and "sshd" in running(api)
