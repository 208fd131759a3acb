"""Real `bangui serve --workers N` processes sharing one data dir: sessions, tokens and login limits
behave identically whichever worker answers, and survive restarts and crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

pytestmark = pytest.mark.processes
ADMIN_ENV = {"BANGUI_ADMIN_PASSWORD": "multi worker password"}
LOGIN = {"username": "admin", "password": "multi worker password"}


def fresh_get(url: str, **kw: Any) -> httpx.Response:
    """One request on a new connection, so hypercorn's workers share the load."""
    with httpx.Client(timeout=10) as client:
        return client.get(url, **kw)


def test_session_works_on_every_worker_until_logout(bangui_server: Any) -> None:
    server = bangui_server(workers=3, env=ADMIN_ENV)
    login = httpx.post(server.url + "/api/v1/auth/login", json=LOGIN, timeout=10)
    assert login.status_code == 200
    cookie = {"Cookie": f"bangui_session={login.cookies['bangui_session']}"}
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: fresh_get(server.url + "/api/v1/health", headers=cookie), range(300)))
    assert Counter(r.status_code for r in replies) == {200: 300}
    pids = {r.json()["worker_pid"] for r in replies}
    assert len(pids) >= 2, f"only worker(s) {pids} answered"
    assert pids <= set(server.worker_pids())
    leaders = {r.json()["leader"]["pid"] for r in replies if r.json()["leader"]}
    assert len(leaders) == 1 and leaders <= set(server.worker_pids())
    logout = httpx.post(server.url + "/api/v1/auth/logout", headers=cookie, timeout=10)
    assert logout.status_code == 204
    with ThreadPoolExecutor(8) as pool:
        after = list(pool.map(lambda _: fresh_get(server.url + "/api/v1/health", headers=cookie), range(300)))
    assert Counter(r.status_code for r in after) == {401: 300}


def test_login_limit_is_exact_across_workers(bangui_server: Any) -> None:
    server = bangui_server(workers=3, env=ADMIN_ENV)

    def attempt(i: int) -> int:
        with httpx.Client(timeout=20) as client:
            return client.post(server.url + "/api/v1/auth/login",
                               json={"username": "admin", "password": f"wrong password {i}"}).status_code

    with ThreadPoolExecutor(12) as pool:
        codes = Counter(pool.map(attempt, range(30)))
    assert codes == {401: 5, 429: 25}


def bangui_cli(data_dir: Path, *args: str, stdin: str = "") -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGUI_")}
    return subprocess.run([sys.executable, "-m", "cli", *args, "--data-dir", str(data_dir)], input=stdin,
                          capture_output=True, text=True, check=True, env=env,
                          cwd=Path(__file__).parents[1]).stdout


def test_state_survives_restart_and_a_worker_crash(bangui_server: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = bangui_server(workers=2, data_dir=data_dir, env=ADMIN_ENV)
    token = bangui_cli(data_dir, "token", "create", "--name", "ci", "--role", "viewer").strip()
    assert token.startswith("bgt_") and "\n" not in token
    bearer = {"Authorization": f"Bearer {token}"}
    cookie = {"Cookie": "bangui_session=" + httpx.post(server.url + "/api/v1/auth/login", json=LOGIN,
                                                       timeout=10).cookies["bangui_session"]}
    for i in range(2):  # spend two failures of the limit
        httpx.post(server.url + "/api/v1/auth/login", json={"username": "admin", "password": f"bad {i}"}, timeout=10)
    assert fresh_get(server.url + "/api/v1/jails", headers=bearer).status_code == 200

    workers = server.worker_pids()
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)  # hypercorn then stops the whole server (by design)
    # hypercorn 0.18.0 itself may return 0 here; bangui turns that into 1 so a supervisor restarts it.
    assert server.proc.wait(timeout=20) == 1
    assert "a worker died abnormally" in server.output()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)

    again = bangui_server(workers=2, data_dir=data_dir, env=ADMIN_ENV)
    assert fresh_get(again.url + "/api/v1/auth/session", headers=cookie).status_code == 200
    assert fresh_get(again.url + "/api/v1/jails", headers=bearer).status_code == 200
    codes = [httpx.post(again.url + "/api/v1/auth/login", json={"username": "admin", "password": f"bad {i}"},
                        timeout=10).status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]  # the two failures before the crash still count
    assert again.stop() == 0


def test_cli_user_commands_work_while_serving(bangui_server: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = bangui_server(workers=2, data_dir=data_dir, env=ADMIN_ENV)
    bangui_cli(data_dir, "user", "add", "olga", "--role", "operator", stdin="olga's long password\n")
    login = httpx.post(server.url + "/api/v1/auth/login", timeout=10,
                       json={"username": "olga", "password": "olga's long password"})
    assert login.status_code == 200 and login.json()["role"] == "operator"
    assert "olga" in bangui_cli(data_dir, "user", "list")
    bangui_cli(data_dir, "user", "delete", "olga")
    cookie = {"Cookie": f"bangui_session={login.cookies['bangui_session']}"}
    assert fresh_get(server.url + "/api/v1/auth/session", headers=cookie).status_code == 401
