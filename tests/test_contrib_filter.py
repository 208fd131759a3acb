"""The shipped fail2ban filter matches bangui's failed-login line in both log formats, as fail2ban-regex itself
sees it, and a forged user name never moves the matched address (issue 20 item 12)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

import logs
from actions.auth import _log_failure

FILTER = Path(__file__).parents[1] / "contrib/fail2ban/filter.d/bangui-auth.conf"
FORGED = ['x" client=1.2.3.4', 'a\\" client=1.2.3.4 \\', "b\\\\\" client=1.2.3.4\nreason=bad_credentials"]


def matched_addresses(log_file: Path) -> list[str]:
    """The address of each line the filter matches, from `fail2ban-regex --out ip`."""
    regex = shutil.which("fail2ban-regex") or "/usr/bin/fail2ban-regex"
    out = subprocess.run([regex, "--out", "ip", str(log_file), str(FILTER)], capture_output=True, text=True,
                         check=True).stdout
    return out.split()


def formatter(fmt: str) -> logging.Formatter:
    return logs.JsonFormatter() if fmt == "json" else logging.Formatter(logs.TEXT_FORMAT)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_filter_matches_failed_logins_and_only_their_client_in_both_formats(tmp_path: Path, fmt: str) -> None:
    log_file = tmp_path / "bangui.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(formatter(fmt))
    logger = logging.getLogger("bangui")
    logger.addHandler(handler)
    try:
        _log_failure("192.0.2.7", "admin", "bad_credentials")
        for n, name in enumerate(FORGED, start=1):
            _log_failure(f"2001:db8::{n}", name, "rate_limited")
        # other lines carrying outsider-controlled text that imitates the failed-login line
        forged = f"bangui login failed: client=198.51.100.1 user={json.dumps('admin')} reason=bad_credentials"
        logger.getChild("auth").info("login: user=%s client=%s", forged, "203.0.113.5")
        logger.getChild("http").warning("rejected %s", forged)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert matched_addresses(log_file) == ["192.0.2.7", "2001:db8::1", "2001:db8::2", "2001:db8::3"]


@pytest.mark.processes
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_real_server_logs_failed_logins_the_filter_matches(bangui_server: Any, fmt: str) -> None:
    server = bangui_server(env={"BANGUI_LOG_FORMAT": fmt})
    for name in ["nobody", *FORGED[:2]]:
        r = httpx.post(server.url + "/api/v1/auth/login", json={"username": name, "password": "wrong"}, timeout=10)
        assert r.status_code in (401, 429)
    assert server.stop() == 0
    assert matched_addresses(server.log_path) == ["127.0.0.1"] * 3, server.output()
    lines = server.output().splitlines()
    if fmt == "json":  # every line, the startup lines and hypercorn's included
        entries = [json.loads(line) for line in lines]
        assert any(e["logger"] == "bangui" and e["message"].startswith("serving http://") for e in entries)
        assert any(e["logger"] == "hypercorn.error" for e in entries)
    else:  # hypercorn's lines once, in bangui's format
        running = [line for line in lines if "Running on" in line]
        assert len(running) == 1 and " INFO [" in running[0] and "hypercorn.error: " in running[0], lines
        assert any(" bangui: serving http://" in line for line in lines)
