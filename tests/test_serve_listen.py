"""`bangui serve` on an address it cannot listen on: one line that says what to change, exit 2, never hypercorn's
traceback; and a --bind that is not one HOST:PORT is refused before anything starts (settings.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from settings import ConfigError, Settings

pytestmark = pytest.mark.processes
ROOT = Path(__file__).resolve().parents[1]


def serve(tmp_path: Path, bind: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BANGUI_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([sys.executable, "-m", "cli", "serve", "--demo", "off", "--bind", bind], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_a_port_already_in_use_is_one_clear_line(tmp_path: Path, family: str) -> None:
    host = "127.0.0.1" if family == "ipv4" else "::1"
    with socket.create_server((host, 0), family=socket.AF_INET if family == "ipv4" else socket.AF_INET6) as taken:
        port = taken.getsockname()[1]
        result = serve(tmp_path, f"{host}:{port}" if family == "ipv4" else f"[{host}]:{port}")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot listen on" in result.stderr and "Address already in use" in result.stderr
    assert "another process listens there" in result.stderr
    assert not (tmp_path / "data" / "serving.json").exists()  # no record of a server that never listened


def test_an_address_no_interface_has_is_one_clear_line(tmp_path: Path) -> None:
    result = serve(tmp_path, "192.0.2.77:18080")  # TEST-NET-1: no interface of this host has it
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "no network interface of this host has that address" in result.stderr


@pytest.mark.parametrize("bind", [
    "127.0.0.1:8080,[::1]:8080",  # one address only (a list was a traceback from hypercorn)
    "unix:/run/bangui.sock:80",  # hypercorn would serve a Unix socket named "/run/bangui.sock:80"
    "fd://3:80", "foo bar:80", "999.1.1.1:80", "1.2.3:80", "[::1:80", "[1.2.3.4]:80", "*:80", "my_host:80",
])
def test_a_bind_that_is_not_one_host_and_port_is_refused_by_the_settings(bind: str) -> None:
    with pytest.raises(ConfigError, match="expected HOST:PORT"):
        Settings.load(env={}, overrides={"bind": bind})


@pytest.mark.parametrize("bind", ["127.0.0.1:8080", "0.0.0.0:1", "[::]:8080", "::1:9001", "[fe80::1%eth0]:80",
                                  "localhost:5", "bangui.example.com:443"])
def test_binds_that_name_one_address_are_accepted(bind: str) -> None:
    assert Settings.load(env={}, overrides={"bind": bind}).bind == bind
