"""Two real worker processes (`bangui serve --workers 2`) changing fail2ban's configuration at once:
each change is serialized by the data dir's lock or refused with 409 `config_busy`; the override file is
never a mix of two writes, and what it says is what fail2ban runs."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest

from f2b.blocking import sync_call
from f2b.stock import StockConfigServer
from f2bconfig import override
from store import Store
from tests.fixtures.app import make_settings, seed_users
from tests.fixtures.processes import ServerProcess

pytestmark = pytest.mark.processes


def test_concurrent_changes_from_two_workers(tmp_path: Path, stock_fail2ban: StockConfigServer) -> None:
    data = tmp_path / "data"
    store = Store(make_settings(data, stock_fail2ban.socket))
    token = seed_users(store)["admin"]
    store.close()
    server = ServerProcess(data, stock_fail2ban, workers=2, log_dir=tmp_path).start()
    try:
        def patch(i: int) -> tuple[str, int, int]:
            jail = ("sshd", "nginx-http-auth")[i % 2]
            with httpx.Client(timeout=60) as client:  # a new connection each: both workers answer
                r = client.patch(f"{server.url}/api/v1/jails/{jail}", json={"maxretry": 10 + i},
                                 headers={"Authorization": f"Bearer {token}"})
            return jail, 10 + i, r.status_code

        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(patch, range(18)))
    finally:
        server.stop()
    codes = Counter(status for *_, status in results)
    assert set(codes) <= {200, 409} and codes[200] >= 1, (codes, server.output()[-3000:])
    text = (stock_fail2ban.conf_dir / override.JAIL_OVERRIDE).read_text()
    assert text.startswith("# Managed by bangui") and text.count("[sshd]") <= 1
    for jail in ("sshd", "nginx-http-auth"):
        applied = [value for j, value, status in results if j == jail and status == 200]
        runtime = sync_call(stock_fail2ban.socket, "get", jail, "maxretry")[1]
        if applied:
            assert runtime in applied
            assert override.read_section(text, jail)["maxretry"] == str(runtime)
