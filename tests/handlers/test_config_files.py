"""The file API on a real fail2ban over a copy of the Debian config: ETags, refusals (traversal, symlinks,
package files, size), the change log and revert, and two workers changing the configuration at once."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app import create_app
from f2b.blocking import sync_call
from f2b.stock import StockConfigServer
from f2bconfig import override
from tests.fixtures.app import Api
from tests.fixtures.f2b_config import conf_hashes

LOCAL = b"[sshd]\nmaxretry = 4\n"


def test_list_read_create_replace_delete_with_etags(config_api: Api, stock_fail2ban: StockConfigServer,
                                                    package_hashes: dict[str, str]) -> None:
    listed = {f["path"]: f for f in config_api.call("admin", "GET", "/config/files").json()["files"]}
    assert listed["jail.conf"]["editable"] is False and listed["jail.local"]["editable"] is True
    assert listed["filter.d/sshd.conf"]["size"] > 0 and listed["filter.d/sshd.conf"]["modified"].endswith("Z")
    r = config_api.call("admin", "GET", "/config/files/filter.d/sshd.conf")
    assert r.status_code == 200 and r.headers["etag"] and "failregex" in r.text

    r = config_api.call("admin", "PUT", "/config/files/jail.d/mine.local", content=LOCAL)
    assert r.status_code == 201, r.text
    etag = r.headers["etag"]
    assert sync_call(stock_fail2ban.socket, "get", "sshd", "maxretry") == (0, 4)  # reloaded
    r = config_api.call("admin", "PUT", "/config/files/jail.d/mine.local", content=b"[sshd]\nmaxretry = 6\n")
    assert r.status_code == 412 and r.json()["error"]["code"] == "precondition_failed"
    r = config_api.call("admin", "PUT", "/config/files/jail.d/mine.local", content=b"[sshd]\nmaxretry = 6\n",
                        headers={"If-Match": '"stale"'})
    assert r.status_code == 412
    r = config_api.call("admin", "PUT", "/config/files/jail.d/mine.local", json={"content": "[sshd]\nmaxretry = 6\n"},
                        headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    assert config_api.call("admin", "GET", "/config/files/jail.d/mine.local").text == "[sshd]\nmaxretry = 6\n"
    etag = r.headers["etag"]
    r = config_api.call("admin", "PUT", "/config/files/jail.d/mine.local", content=b'{"content": "[sshd]\\nmaxretry = 6\\n"}',
                        headers={"If-Match": etag, "Content-Type": "application/x-www-form-urlencoded"})  # curl -d
    assert r.status_code == 200 and r.headers["etag"] == etag  # same text: the JSON was unwrapped
    assert sync_call(stock_fail2ban.socket, "get", "sshd", "maxretry") == (0, 6)

    r = config_api.call("admin", "DELETE", "/config/files/jail.d/mine.local")
    assert r.status_code == 200 and not (stock_fail2ban.conf_dir / "jail.d" / "mine.local").exists()
    assert sync_call(stock_fail2ban.socket, "get", "sshd", "maxretry") == (0, 5)
    assert config_api.call("admin", "GET", "/config/files/jail.d/mine.local").status_code == 404
    # bangui may create a .conf and then edit it; package .conf files never
    r = config_api.call("admin", "PUT", "/config/files/action.d/bangui-noop.conf",
                        content=b"[Definition]\nactionban =\n")
    assert r.status_code == 201
    etag = r.headers["etag"]
    r = config_api.call("admin", "PUT", "/config/files/action.d/bangui-noop.conf",
                        content=b"[Definition]\nactionban =\nactionunban =\n", headers={"If-Match": etag})
    assert r.status_code == 200
    r = config_api.call("admin", "PUT", "/config/files/jail.conf", content=b"[DEFAULT]\n", headers={"If-Match": "*"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "path_forbidden"
    assert config_api.call("admin", "DELETE", "/config/files/filter.d/sshd.conf").status_code == 403
    assert config_api.call("operator", "GET", "/config/files").status_code == 403
    assert conf_hashes(stock_fail2ban.conf_dir) == package_hashes | {
        "action.d/bangui-noop.conf": conf_hashes(stock_fail2ban.conf_dir)["action.d/bangui-noop.conf"]}


@pytest.mark.parametrize("path", ["..%2Fjail.local", "filter.d%2F..%2F..%2Fescape.local", "%2Fetc%2Fpasswd",
                                  "filter.d/x%00.local", "filter.d/sshd.py", "paths-debian.conf", "filter.d/a/b.local"])
def test_traversal_and_foreign_names_are_refused(config_api: Api, stock_fail2ban: StockConfigServer, path: str) -> None:
    for method in ("GET", "PUT", "DELETE"):
        r = config_api.call("admin", method, "/config/files/" + path, content=b"[x]\n", headers={"If-Match": "*"})
        assert r.status_code == 400, (method, path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "invalid_path"
    assert not (stock_fail2ban.conf_dir.parent / "escape.local").exists()


def test_symlinks_leading_out_are_refused(config_api: Api, stock_fail2ban: StockConfigServer, tmp_path: Path) -> None:
    outside = tmp_path / "outside.local"
    outside.write_text("secret\n")
    (stock_fail2ban.conf_dir / "filter.d" / "leak.local").symlink_to(outside)
    for method in ("GET", "PUT", "DELETE"):
        r = config_api.call("admin", method, "/config/files/filter.d/leak.local", content=b"[x]\n",
                            headers={"If-Match": "*"})
        assert r.status_code == 403, (method, r.text)
    assert outside.read_text() == "secret\n"
    assert "filter.d/leak.local" not in {f["path"] for f in config_api.call("admin", "GET", "/config/files").json()["files"]}


def test_bodies_over_512_kib_are_refused(config_api: Api, stock_fail2ban: StockConfigServer) -> None:
    big = b"# " + b"x" * (512 * 1024) + b"\n"
    r = config_api.call("admin", "PUT", "/config/files/jail.d/big.local", content=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    r = config_api.call("admin", "PUT", "/config/files/jail.d/big.local", json={"content": big.decode()})
    assert r.status_code == 413
    assert not (stock_fail2ban.conf_dir / "jail.d" / "big.local").exists()


def test_change_log_and_revert(config_api: Api, stock_fail2ban: StockConfigServer) -> None:
    assert config_api.call("admin", "PATCH", "/jails/sshd", json={"maxretry": 8}).status_code == 200
    assert config_api.call("admin", "PATCH", "/jails/nginx-http-auth", json={"maxretry": 9}).status_code == 200
    changes = config_api.call("admin", "GET", "/config/changes").json()["changes"]
    assert [c["action"] for c in changes] == ["jail.update", "jail.update"]
    newest, oldest = changes
    assert newest["actor"] == "token:admin-token" and newest["files"] == ["jail.d/zz-bangui.local"]
    assert "+maxretry = 9" in newest["diff"] and newest["time"].endswith("Z")
    r = config_api.call("admin", "POST", f"/config/changes/{oldest['id']}/revert")
    assert r.status_code == 409 and r.json()["error"]["code"] == "revert_conflict"  # the file changed since
    r = config_api.call("admin", "POST", f"/config/changes/{newest['id']}/revert")
    assert r.status_code == 200, r.text
    assert sync_call(stock_fail2ban.socket, "get", "nginx-http-auth", "maxretry") == (0, 5)
    assert sync_call(stock_fail2ban.socket, "get", "sshd", "maxretry") == (0, 8)
    assert config_api.call("admin", "GET", "/config/changes").json()["changes"][0]["action"] == "config.revert"
    assert config_api.call("admin", "POST", "/config/changes/nope/revert").status_code == 404


def test_two_workers_changing_at_once_are_serialized_or_refused(config_api: Api, stock_fail2ban: StockConfigServer
                                                                ) -> None:
    """Two app instances (two workers) on one data dir; many concurrent PATCHes; never a mixed file."""
    with TestClient(create_app(config_api.settings), base_url="http://testserver") as other:
        clients = [config_api.client, other]
        headers = config_api.as_("admin")
        results: list[tuple[str, int, int]] = []

        def worker(i: int) -> None:
            jail = ("sshd", "nginx-http-auth")[i % 2]
            for n in range(4):
                value = 10 + i * 10 + n
                r = clients[i % 2].patch(f"/api/v1/jails/{jail}", json={"maxretry": value}, headers=headers)
                results.append((jail, value, r.status_code))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    statuses = {status for _, _, status in results}
    assert statuses <= {200, 409}, results
    assert 200 in statuses
    text = (stock_fail2ban.conf_dir / override.JAIL_OVERRIDE).read_text()
    for jail in ("sshd", "nginx-http-auth"):
        runtime = sync_call(stock_fail2ban.socket, "get", jail, "maxretry")[1]
        persisted = override.read_section(text, jail).get("maxretry")
        applied = [v for j, v, s in results if j == jail and s == 200]
        if applied:
            assert persisted == str(runtime) and runtime in applied
    log = config_api.call("admin", "GET", "/config/changes").json()["changes"]
    assert len(log) == sum(1 for *_, s in results if s == 200)


def test_a_missing_config_dir_says_which_setting_to_fix(config_api: Api, tmp_path: Path) -> None:
    empty = tmp_path / "no-config"
    empty.mkdir()
    settings = dataclasses.replace(config_api.settings, fail2ban_config_dir=str(empty))
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        r = client.patch("/api/v1/jails/sshd", json={"maxretry": 4}, headers=config_api.as_("admin"))
    assert r.status_code == 503 and r.json()["error"]["code"] == "config_dir_missing"
    assert "BANGUI_FAIL2BAN_CONFIG_DIR" in r.json()["error"]["message"]


def test_no_change_while_fail2ban_is_down(config_api: Api, stock_fail2ban: StockConfigServer) -> None:
    stock_fail2ban.stop()
    r = config_api.call("admin", "PUT", "/config/files/jail.d/mine.local", content=LOCAL)
    assert r.status_code == 503 and r.json()["error"]["code"] == "fail2ban_unavailable"
    assert "start it first" in r.json()["error"]["message"]
    assert not (stock_fail2ban.conf_dir / "jail.d" / "mine.local").exists()


@pytest.mark.parametrize("option, value", [
    ("bantime.factor", "__import__('os').system('touch {mark}')+1"),  # fail2ban evals the factor on reading it
    ("bantime.formula", "__import__('os').system('touch {mark}')+ban.Time"),
    ("bantime.formula", "(999999**9)**999999"),  # hours of fail2ban's root process at every ban
    ("bantime", "__import__('os').system('touch {mark}')"),  # time values go through str2seconds: eval()
    ("findtime", "1h + __import__('os').getpid()"),
])
def test_a_raw_config_file_cannot_smuggle_an_evaluated_expression_into_fail2ban(
        config_api: Api, stock_fail2ban: StockConfigServer, tmp_path: Path, option: str, value: str) -> None:
    mark = tmp_path / "evaluated"
    before = sync_call(stock_fail2ban.socket, "get", "sshd", option, timeout=5.0)
    text = f"[DEFAULT]\nbantime.increment = true\n{option} = {value.format(mark=mark)}\n"
    r = config_api.call("admin", "PUT", "/config/files/jail.d/mine.local", content=text.encode())
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "config_invalid" and r.json()["error"]["details"]["option"] == option
    assert not (stock_fail2ban.conf_dir / "jail.d" / "mine.local").exists()
    # a hand edit is checked the same way before a reload sends it to fail2ban
    (stock_fail2ban.conf_dir / "jail.d" / "mine.local").write_text(text.replace("[DEFAULT]", "[sshd]"))
    r = config_api.call("admin", "POST", "/server/reload")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"]["jail"] == "sshd"
    assert not mark.exists()  # neither bangui's check of the configuration nor fail2ban evaluated it
    assert sync_call(stock_fail2ban.socket, "get", "sshd", option, timeout=5.0) == before
    (stock_fail2ban.conf_dir / "jail.d" / "mine.local").unlink()
    good = "[sshd]\nbantime.increment = true\nbantime.factor = 2.5\nbantime.formula = ban.Time * 2 ** min(ban.Count, 9)\n"
    r = config_api.call("admin", "PUT", "/config/files/jail.d/mine.local", content=good.encode())
    assert r.status_code == 201, r.text
    assert sync_call(stock_fail2ban.socket, "get", "sshd", "bantime.factor", timeout=5.0) == (0, "2.5")


def test_a_server_setting_fail2ban_evals_is_checked_in_a_raw_file_too(config_api: Api, stock_fail2ban: StockConfigServer,
                                                                       tmp_path: Path) -> None:
    """dbpurgeage goes through fail2ban's str2seconds (an eval()): a raw fail2ban.d file with code in it is refused
    before anything (bangui's own reading of the configuration included) evaluates it."""
    mark = tmp_path / "evaluated"
    text = f"[Definition]\ndbpurgeage = __import__('os').system('touch {mark}')\n"
    r = config_api.call("admin", "PUT", "/config/files/fail2ban.d/mine.local", content=text.encode())
    assert r.status_code == 422 and r.json()["error"]["details"]["option"] == "dbpurgeage", r.text
    assert not mark.exists() and not (stock_fail2ban.conf_dir / "fail2ban.d" / "mine.local").exists()
    r = config_api.call("admin", "PUT", "/config/files/fail2ban.d/mine.local",
                        content=b"[Definition]\ndbpurgeage = 2d 12h\n")
    assert r.status_code == 201, r.text
