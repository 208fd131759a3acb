"""The configuration object: env, flags, *_FILE secrets, clear one-line errors, README table in sync."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from cli import main
from settings import FIELDS, ConfigError, Settings, markdown_table, source


def test_defaults_and_env_and_flags() -> None:
    s = Settings.load(env={"BANGUI_WORKERS": "3", "BANGUI_TRUSTED_PROXIES": "10.0.0.1, 10.1.0.0/16"},
                      overrides={"bind": "0.0.0.0:9000"})
    assert (s.workers, s.bind) == (3, "0.0.0.0:9000")
    assert s.trusted_proxies == ("10.0.0.1/32", "10.1.0.0/16")
    assert s.fail2ban_socket == "/var/run/fail2ban/fail2ban.sock"
    assert Settings.load(env=s.to_env()) == s
    assert pickle.loads(pickle.dumps(s)) == s


@pytest.mark.parametrize(("env", "needle"), [
    ({"BANGUI_WORKERS": "zero"}, "BANGUI_WORKERS"),
    ({"BANGUI_WORKERS": "0"}, "at least 1"),
    ({"BANGUI_BIND": "8080"}, "HOST:PORT"),
    ({"BANGUI_COOKIE_SECURE": "maybe"}, "BANGUI_COOKIE_SECURE"),
    ({"BANGUI_WROKERS": "2"}, "unknown setting BANGUI_WROKERS"),
    ({"BANGUI_TRUSTED_PROXIES": "10.0.0.300"}, "BANGUI_TRUSTED_PROXIES"),
])
def test_bad_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Settings.load(env=env)


def test_secret_from_file_and_never_in_repr(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from a file secret\n")
    s = Settings.load(env={"BANGUI_ADMIN_PASSWORD_FILE": str(secret)})
    assert s.admin_password == "from a file secret"
    assert "from a file" not in repr(s)
    with pytest.raises(ConfigError, match="BANGUI_ADMIN_PASSWORD_FILE"):
        Settings.load(env={"BANGUI_ADMIN_PASSWORD_FILE": str(tmp_path / "missing")})


def test_cli_prints_one_line_and_exits_2(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANGUI_WORKERS", "many")
    assert main(["user", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "BANGUI_WORKERS" in err


def test_readme_table_matches_the_fields() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert markdown_table() in readme, "regenerate: python -c 'import settings; print(settings.markdown_table())'"
    assert all(f.env in readme for f in FIELDS)


def test_source_names_the_variable_a_secret_was_read_from() -> None:
    assert source("fleet_url", env={"BANGUI_FLEET_URL_FILE": "/run/secrets/fleet"}) == "BANGUI_FLEET_URL_FILE"
    assert source("fleet_url", env={"BANGUI_FLEET_URL": "redis://h/0"}) == "BANGUI_FLEET_URL"
    assert source("data_dir", env={"BANGUI_DATA_DIR_FILE": "/x"}) == "BANGUI_DATA_DIR"  # not a secret: no _FILE
