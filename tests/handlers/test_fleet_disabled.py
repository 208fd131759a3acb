"""Without BANGUI_FLEET_URL every fleet route answers 404 `fleet_disabled`, and nothing imports redis."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.fixtures.app import Api


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/fleet/hosts", None),
    ("POST", "/fleet/bans", {"ips": ["192.0.2.1"], "jail": "sshd"}),
    ("POST", "/fleet/unbans", {"ips": ["192.0.2.1"], "jail": "sshd"}),
    ("GET", "/fleet/bans/abc", None),
])
def test_fleet_routes_answer_fleet_disabled(api: Api, method: str, path: str, body: object) -> None:
    r = api.call("admin", method, path, **({"json": body} if body else {}))
    assert (r.status_code, r.json()["error"]["code"]) == (404, "fleet_disabled")


def test_health_has_no_fleet_part(api: Api) -> None:
    assert api.call("viewer", "GET", "/health").json()["fleet"] is None


def test_single_host_mode_never_imports_redis() -> None:
    code = "import sys, app, cli, jobs.definitions, handlers.fleet, actions.fleet; " \
           "assert 'redis' not in sys.modules, 'redis imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fleet_mode_without_the_redis_package_says_how_to_install_it(tmp_path: object) -> None:
    code = ("import sys; sys.modules['redis'] = None\n"
            "from settings import Settings; from store import Store\n"
            f"Store(Settings.for_tests(data_dir='{tmp_path}/d', fleet_url='redis://127.0.0.1:1/0'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0 and "pip install 'bangui[fleet]'" in r.stderr
