"""The one runner of f2b/engine.py in fail2ban's own interpreter: every command answers one JSON document,
errors share one shape, a deadline kills the child, and a warm spare is kept per command that asks for it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from errors import Forbidden, InvalidInput
from f2b.client import JailNotFound
from f2b.engine_client import (
    ENGINE,
    ConfigInvalid,
    ConfigReadTimeout,
    EngineFailed,
    FilterTimeout,
    Runner,
    _answer,
    fail2ban_env,
    interpreter,
)
from f2b.instance import PrivateServer
from f2bconfig import catalogue, tools


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    """A private server's config dir (jails sshd, nginx-http-auth, sshd-dummy), written but not started."""
    server = PrivateServer(tmp_path / "f2b")
    server.write_config()
    return server.conf_dir


@pytest.fixture
def runner() -> Iterator[Runner]:
    runner = Runner()
    try:
        yield runner
    finally:
        runner.close()


def test_the_script_ships_inside_the_f2b_package() -> None:
    # a .py file in a shipped package is in the wheel without package-data (tests/test_packaging.py)
    assert ENGINE.is_file() and ENGINE.parent.name == "f2b" and (ENGINE.parent / "__init__.py").is_file()


def test_every_command_answers_one_json_document(runner: Runner, conf_dir: Path) -> None:
    config = {"config_dir": str(conf_dir)}
    assert runner.run("jails", config, 30)["jails"] == ["sshd", "nginx-http-auth", "sshd-dummy"]
    stream = runner.run("jail-stream", config | {"jail": "sshd"}, 30)["stream"]
    assert ["add", "sshd", "polling"] in stream
    check = runner.run("check", config, 30)
    assert check["ok"] and check["jails"] == ["sshd", "nginx-http-auth", "sshd-dummy"]
    [sshd] = runner.run("catalogue", config | {"jail": "sshd"}, 30)["jails"]
    assert (sshd["name"], sshd["enabled"], sshd["filter"], sshd["settings"]["maxretry"]) == ("sshd", True, "sshd", 3)
    line = "Nov 28 09:39:11 host sshd[1001]: Failed password for root from 192.0.2.7 port 40000 ssh2"
    tested = runner.run("filter-test", config | {"filter": "sshd", "lines": [line]}, 30)
    assert (tested["matched"], tested["matches"][0]["ip"]) == (1, "192.0.2.7")


def test_errors_share_one_shape_mapped_to_bangui_errors(runner: Runner, conf_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(JailNotFound):
        runner.run("jail-stream", {"config_dir": str(conf_dir), "jail": "nope"}, 30)
    with pytest.raises(ConfigInvalid, match="no jail.conf/jail.local"):
        runner.run("jails", {"config_dir": str(tmp_path)}, 30)
    with pytest.raises(InvalidInput) as unknown:
        runner.run("no-such-command", {}, 30)
    assert unknown.value.code == "usage"
    with pytest.raises(InvalidInput) as bad:
        runner.run("filter-test", {"config_dir": str(conf_dir), "failregex": ["(<HOST>"], "lines": []}, 30)
    assert bad.value.code == "invalid_regex"


def test_a_deadline_kills_the_child(runner: Runner, conf_dir: Path) -> None:
    request = {"config_dir": str(conf_dir), "failregex": [r"^(a+)+$ <HOST>"], "lines": ["a" * 60 + "!"]}
    with pytest.raises(FilterTimeout) as stopped:
        runner.run("filter-test", request, 1.0)
    assert (stopped.value.code, stopped.value.details) == ("filter_timeout", {"timeout_s": 1.0})


def test_a_configuration_read_killed_at_its_deadline_says_so_not_the_regex_hint(runner: Runner,
                                                                               conf_dir: Path) -> None:
    with pytest.raises(ConfigReadTimeout) as stopped:  # no interpreter starts and imports fail2ban in 10 ms
        runner.run("jail-stream", {"config_dir": str(conf_dir), "jail": "sshd"}, 0.01)
    assert (stopped.value.status, stopped.value.code) == (504, "config_read_timeout")
    assert "jail-stream" in str(stopped.value) and "regex" not in str(stopped.value)


def test_a_failed_catalogue_read_is_not_cached(conf_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "CONFIG_TIMEOUT", 0.01)  # the read is killed: a failed answer, no jails
    assert catalogue.jails(conf_dir) == []
    monkeypatch.undo()
    assert {"sshd", "sshd-dummy"} <= {j["name"] for j in catalogue.jails(conf_dir)}  # no file changed meanwhile


def test_a_warm_spare_is_kept_per_group_that_asks_and_ended_on_close(runner: Runner, conf_dir: Path) -> None:
    config = {"config_dir": str(conf_dir)}
    group = ("check", "catalogue")  # the configuration's two readers share one spare
    runner.run("jails", config, 30)
    assert runner._spares == {}  # one-shot by default
    runner.run("check", config, 30, spare=True)
    first = runner._spares[group]
    assert first.poll() is None  # waiting for its request, fail2ban imported
    assert [j["name"] for j in runner.run("catalogue", config, 30, spare=True)["jails"]]
    assert first.returncode == 0  # the check's spare answered the catalogue
    second = runner._spares[group]
    assert second is not first and second.poll() is None
    runner.run("filter-test", {"config_dir": str(conf_dir), "failregex": ["<HOST>"], "lines": []}, 30, spare=True)
    assert set(runner._spares) == {group, ("filter-test",)}
    second.kill()
    second.wait()
    assert runner.run("check", config, 30, spare=True)["ok"]  # a dead spare is replaced, not used
    spares = list(runner._spares.values())
    runner.close()
    assert runner._spares == {} and all(proc.returncode == 0 for proc in spares)  # EOF: each exited by itself


def test_a_log_the_engine_cannot_read_is_403_log_unreadable_not_a_traceback(tmp_path: Path) -> None:
    """Issue 20 item 10: /var/log/auth.log (root:adm 0640) answered 500 with a traceback. The engine runs here as
    a real unprivileged process (uid 65534, no groups): the tests run as root, who reads everything."""
    shared = Path(tempfile.mkdtemp(prefix="bangui-unreadable-"))
    try:
        shared.chmod(0o755)
        log = shared / "auth.log"
        log.write_text("Nov 28 09:39:11 host sshd[1001]: Failed password for root from 192.0.2.7 port 40000 ssh2\n")
        log.chmod(0o640)  # root:root, like root:adm for a bangui outside group adm
        # the engine script from where uid 65534 can read it (a checkout in a 0700 dir, as CI's, is out of reach)
        engine = shared / ENGINE.name
        shutil.copyfile(ENGINE, engine)
        engine.chmod(0o644)
        proc = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", interpreter(),
                                 str(engine), "filter-test"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=fail2ban_env(), cwd="/")
        request = {"command": "filter-test", "config_dir": "/nonexistent", "failregex": ["<HOST>"],
                   "ignoreregex": [], "datepattern": None, "logpath": str(log), "max_matches": 10,
                   "max_lines": 100}
        with pytest.raises(Forbidden) as refused:
            _answer(proc, json.dumps(request).encode(), 30, "filter-test")
        assert (refused.value.status, refused.value.code) == (403, "log_unreadable")
        assert str(log) in refused.value.message and "Traceback" not in refused.value.message
    finally:
        shutil.rmtree(shared)


def test_a_crashed_engine_answers_500_without_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    crash = "import sys; sys.stdin.read(); raise RuntimeError('secret detail of /etc/shadow')"
    proc = subprocess.Popen([sys.executable, "-c", crash], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    with pytest.raises(EngineFailed) as failed:
        _answer(proc, b"{}", 30, "filter-test")
    shown = json.dumps({"message": failed.value.message, "details": failed.value.details})
    assert failed.value.status == 500 and "Traceback" not in shown and "secret" not in shown
    assert any("secret detail" in r.getMessage() for r in caplog.records)  # the server's log keeps it
