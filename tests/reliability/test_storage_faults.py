"""Storage faults against a real server (issue 8 items 14, 15): a full disk (a 2 MiB tmpfs holding the whole data
dir, smaller than SQLite's default WAL checkpoint) and the store file deleted while the server runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.fixtures.disk import fill
from tests.reliability.helpers import ADMIN_ENV, PASSWORD, admin_token, cli, until

pytestmark = pytest.mark.reliability
LOGIN = {"username": "admin", "password": PASSWORD}


def _login(url: str) -> int:
    return httpx.post(url + "/api/v1/auth/login", json=LOGIN, timeout=30).status_code


def test_disk_full_on_a_small_tmpfs_then_recovery(bangui_server: Any, small_disk: Path) -> None:
    server = bangui_server(workers=2, data_dir=small_disk / "data", env=ADMIN_ENV)
    token = admin_token(server.data_dir)
    headers = {"Authorization": f"Bearer {token}"}
    # Many writes first: the WAL must never outgrow the disk by itself (it did with SQLite's 4 MiB default).
    for _ in range(60):
        assert _login(server.url) == 200
    for i in range(40):
        r = httpx.post(server.url + "/api/v1/jails/sshd/bans", json={"ips": [f"192.0.2.{i + 1}"]}, headers=headers,
                       timeout=30)
        assert r.status_code == 200, r.text
    assert httpx.get(server.url + "/api/v1/health/ready", timeout=10).status_code == 200
    filler = small_disk / "filler"
    fill(filler)
    statuses = [_login(server.url) for _ in range(20)]
    assert 507 in statuses and 500 not in statuses, statuses
    r = httpx.post(server.url + "/api/v1/auth/login", json=LOGIN, timeout=30)
    if r.status_code == 507:
        assert r.json()["error"]["code"] == "storage_full"
    ready = httpx.get(server.url + "/api/v1/health/ready", timeout=10)
    assert ready.status_code == 503 and "full" in ready.json()["store_error"]
    health = httpx.get(server.url + "/api/v1/health", headers=headers, timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "degraded", health.text
    filler.unlink()
    assert until(lambda: httpx.get(server.url + "/api/v1/health/ready", timeout=10).status_code == 200, 30)
    assert until(lambda: _login(server.url) == 200, 30)
    assert httpx.get(server.url + "/api/v1/health", headers=headers, timeout=10).json()["store"] is True


def test_store_file_deleted_while_running_is_refused_everywhere(bangui_server: Any) -> None:
    server = bangui_server(workers=2, env=ADMIN_ENV)
    token = admin_token(server.data_dir)
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(server.url + "/api/v1/jails", headers=headers, timeout=10).status_code == 200
    (server.data_dir / "state" / "cache.db").unlink()

    def refused() -> bool:
        r = httpx.get(server.url + "/api/v1/jails", headers=headers, timeout=10)
        return r.status_code == 503 and r.json()["error"]["code"] == "store_replaced"

    assert until(refused, 10)
    ready = httpx.get(server.url + "/api/v1/health/ready", timeout=10)
    assert ready.status_code == 503 and "deleted" in ready.text
    for _ in range(10):  # every worker
        with httpx.Client(timeout=10) as client:
            r = client.get(server.url + "/api/v1/jails", headers=headers)
        assert r.status_code == 503 and "deleted" in r.json()["error"]["message"], r.text
    listed = cli(server.data_dir, "user", "list")
    assert listed.returncode != 0 and "deleted" in listed.stderr and "[]" not in listed.stdout, listed
    assert not (server.data_dir / "state" / "cache.db").exists()
    server.stop()
    again = cli(server.data_dir, "serve", "--bind", "127.0.0.1:1")
    assert again.returncode != 0 and "deleted" in again.stderr
