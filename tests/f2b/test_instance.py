"""`f2b.instance.PrivateServer`: real fail2ban-server processes, isolated, restartable."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import f2b.instance as instance
from f2b.blocking import sync_call
from f2b.client import Fail2BanUnavailable
from f2b.instance import JailSpec, PrivateServer, PrivateServerError


def _banned(server: PrivateServer) -> list[object]:
    code, result = sync_call(server.socket, "banned")
    assert code == 0
    return list(result)


def _wait_banned(server: PrivateServer, jail: str, ip: str) -> None:
    for _ in range(100):
        if sync_call(server.socket, "get", jail, "banned", ip) == (0, 1):
            return
        time.sleep(0.05)
    raise AssertionError(f"{ip} not banned in {jail} after 5 s\n{server.log_text()}")


def test_fixture_server_has_the_default_jails(fail2ban: PrivateServer) -> None:
    assert fail2ban.running
    assert sync_call(fail2ban.socket, "status")[1][1] == ("Jail list", "nginx-http-auth, sshd, sshd-dummy")
    assert sync_call(fail2ban.socket, "get", "dbfile") == (0, fail2ban.dbfile)
    for jail, option, value in [("sshd", "actions", ["noop"]), ("sshd-dummy", "actions", ["dummy"]),
                                ("sshd", "maxretry", 3), ("sshd", "ignoreip", []),
                                ("sshd", "ignoreself", False), ("sshd", "usedns", "no")]:
        assert sync_call(fail2ban.socket, "get", jail, option) == (0, value), option
    sync_call(fail2ban.socket, "set", "sshd-dummy", "banip", "192.0.2.1")  # the action runs before the reply
    assert fail2ban.dummy_target("sshd-dummy").read_text().splitlines()[-1] == "+192.0.2.1"


def test_long_base_dir_gets_a_short_socket(tmp_path: Path) -> None:
    server = PrivateServer(tmp_path / ("x" * 120), [JailSpec("sshd")], dbfile=":memory:")
    assert len(server.socket) <= 100 and not server.socket.startswith(str(tmp_path))
    with server:
        assert sync_call(server.socket, "ping") == (0, "pong")
        assert sync_call(server.socket, "get", "dbfile") == (0, ":memory:")
    assert not Path(server.socket).parent.exists()  # stop removed our short dir


def test_servers_side_by_side_are_isolated(tmp_path: Path) -> None:
    with PrivateServer(tmp_path / "a") as a, PrivateServer(tmp_path / "b") as b:
        assert len({a.socket, b.socket}) == 2 and a.dbfile != b.dbfile
        sync_call(a.socket, "set", "sshd", "banip", "192.0.2.1")
        assert sync_call(a.socket, "get", "sshd", "banned", "192.0.2.1") == (0, 1)
        assert sync_call(b.socket, "get", "sshd", "banned", "192.0.2.1") == (0, 0)


def test_restart_keeps_or_drops_bans_and_kill_leaves_a_stale_socket(fail2ban: PrivateServer) -> None:
    sync_call(fail2ban.socket, "set", "sshd", "banip", "192.0.2.1")
    fail2ban.restart()
    _wait_banned(fail2ban, "sshd", "192.0.2.1")  # "Restore Ban" from the dbfile, shortly after start
    fail2ban.kill()
    assert os.path.exists(fail2ban.socket)
    with pytest.raises(Fail2BanUnavailable) as refused:
        sync_call(fail2ban.socket, "ping")
    assert refused.value.details["reason"] == "refused"
    fail2ban.restart(fresh_db=True)  # the stale socket is cleared; no -x needed
    time.sleep(0.3)  # a restore would have happened by now
    assert _banned(fail2ban) == [{"sshd": []}, {"nginx-http-auth": []}, {"sshd-dummy": []}]


def test_clean_stop_removes_socket_and_pidfile(fail2ban: PrivateServer) -> None:
    assert fail2ban.pidfile.exists()
    fail2ban.stop()
    assert not fail2ban.running and not os.path.exists(fail2ban.socket) and not fail2ban.pidfile.exists()
    fail2ban.stop()  # idempotent


def test_shipped_minimal_filters_and_actions_ban_from_log_lines(tmp_path: Path) -> None:
    jails = [JailSpec("sshd", action="dummy"), JailSpec("web", filter="nginx-http-auth", maxretry=2)]
    with PrivateServer(tmp_path / "s", jails, stock_dir=None) as server:
        assert "Minimal stand-in" in (server.conf_dir / "filter.d" / "sshd.conf").read_text()
        server.append_failures("sshd", "203.0.113.1", 3)
        server.append_failures("web", "2001:db8::5", 2)
        _wait_banned(server, "sshd", "203.0.113.1")
        _wait_banned(server, "web", "2001:db8::5")
        # An automatic ban is listed before its action has run: wait for the dummy's line too.
        target = server.dummy_target("sshd")
        for _ in range(100):
            if target.exists() and "+203.0.113.1" in target.read_text().splitlines():
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the dummy action never recorded the ban")


def test_bad_config_fails_start_with_the_log(tmp_path: Path) -> None:
    server = PrivateServer(tmp_path / "bad", [JailSpec("sshd", findtime="bogus")])  # type: ignore[arg-type]
    with pytest.raises(PrivateServerError, match="rejected its configuration") as caught:
        server.start()
    assert "bogus" in str(caught.value) and not server.running
    server.close()


def test_unknown_action_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="noop"):
        PrivateServer(tmp_path, [JailSpec("sshd", action="iptables")]).write_config()


def test_missing_binary_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrivateServerError, match="apt-get install fail2ban"):
        instance.find_server_binary(fallback=str(tmp_path / "fail2ban-server"))
