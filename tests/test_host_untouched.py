"""Issue 18, item 1: no test, fuzz run, benchmark or ./dev command reads or writes the host's fail2ban
configuration or talks to the system's fail2ban. By construction: a server process is started only against a
private fail2ban instance (its socket and config dir passed on, never the production defaults), `Settings.for_tests`
points at nothing unless a test names its fail2ban, and `./dev run` starts a private demo fail2ban always.
(`.ci/run` and tests/conftest.py also compare /etc/fail2ban before and after the whole run.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest

from f2b.instance import PrivateServer
from f2b.stock import StockConfigServer
from settings import Settings
from tests.fixtures.app import PASSWORD
from tests.fixtures.processes import ServerProcess

ROOT = Path(__file__).resolve().parents[1]


def test_the_harness_refuses_a_server_without_a_private_fail2ban(tmp_path: Path, fail2ban: PrivateServer) -> None:
    with pytest.raises(TypeError, match="private fail2ban"):
        ServerProcess(tmp_path / "data", fail2ban.socket, 1, tmp_path)  # type: ignore[arg-type]
    for name in ("BANGUI_FAIL2BAN_CONFIG_DIR", "BANGUI_FAIL2BAN_SOCKET", "BANGUI_FAIL2BAN_DB", "BANGUI_DEMO"):
        with pytest.raises(ValueError, match=name):
            ServerProcess(tmp_path / "data", fail2ban, 1, tmp_path, env={name: "/etc/fail2ban"})
    hosts = PrivateServer(tmp_path / "elsewhere")
    hosts.conf_dir = Path("/etc/fail2ban")
    with pytest.raises(ValueError, match="host's fail2ban config dir"):
        ServerProcess(tmp_path / "data", hosts, 1, tmp_path)
    hosts = PrivateServer(tmp_path / "elsewhere")
    hosts.socket = "/var/run/fail2ban/fail2ban.sock"
    with pytest.raises(ValueError, match="host's fail2ban socket"):
        ServerProcess(tmp_path / "data", hosts, 1, tmp_path)


def test_settings_for_tests_point_at_no_fail2ban_unless_named() -> None:
    settings = Settings.for_tests()
    assert not settings.fail2ban_config_dir.startswith("/etc")
    assert not Path(settings.fail2ban_config_dir).exists()
    assert not Path(settings.fail2ban_socket).exists()
    assert Settings.for_tests(fail2ban_config_dir="/x").fail2ban_config_dir == "/x"


@pytest.mark.processes
def test_a_server_process_changes_only_its_private_fail2ban_configuration(
        tmp_path: Path, stock_fail2ban: StockConfigServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fuzz suite's case: an admin's PATCH /server/settings, with the caller's environment naming the host's
    config dir, writes fail2ban.d/zz-bangui.local into the private copy only."""
    monkeypatch.setenv("BANGUI_FAIL2BAN_CONFIG_DIR", "/etc/fail2ban")  # dropped by the harness
    server = ServerProcess(tmp_path / "data", stock_fail2ban, 1, tmp_path,
                           env={"BANGUI_ADMIN_PASSWORD": PASSWORD}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            login = client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
            assert login.status_code == 200, login.text
            r = client.patch("/api/v1/server/settings", json={"dbpurgeage": 172800},
                             headers={"Origin": server.url})
            assert r.status_code == 200, r.text
    finally:
        server.stop()
    assert "dbpurgeage = 172800" in (stock_fail2ban.conf_dir / "fail2ban.d" / "zz-bangui.local").read_text()


@pytest.mark.processes
def test_demo_on_starts_a_private_fail2ban_even_when_one_answers(tmp_path: Path, fail2ban: PrivateServer) -> None:
    """`./dev run` serves with --demo on: its own fail2ban and config dir, whatever answers at the socket."""
    code = ("import contextlib, json, sys; import cli; from settings import Settings\n"
            "s = Settings.load(env={'BANGUI_DATA_DIR': sys.argv[1], 'BANGUI_DEMO': 'on', "
            "'BANGUI_FAIL2BAN_SOCKET': sys.argv[2]})\n"
            "with cli._demo_fail2ban(s) as d: print(json.dumps([d.fail2ban_socket, d.fail2ban_config_dir]))\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "data"), fail2ban.socket], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    socket, config_dir = __import__("json").loads(out.stdout.splitlines()[-1])
    assert socket != fail2ban.socket and config_dir.startswith(str(tmp_path / "data"))
    assert "BANGUI_DEMO=${BANGUI_DEMO:-on}" in (ROOT / "dev").read_text()


def test_ci_compares_the_hosts_fail2ban_configuration_before_and_after() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "etc_fail2ban_digest" in ci and "/etc/fail2ban" in ci


