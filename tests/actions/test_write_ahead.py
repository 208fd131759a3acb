"""Write-ahead in one process (issue 18): a ban whose history cannot be written stays pending, and the process
writes that history (with the caller's name, not left to the sync as `auto`) and the completion before its next
action."""

from __future__ import annotations

import sqlite3

from tests.fixtures.app import Api


def test_a_ban_whose_history_write_fails_stays_pending_and_is_completed_before_the_next_action(api: Api) -> None:
    holder = sqlite3.connect(api.store.history.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # history cannot be written (as on a full disk) while fail2ban bans
    try:
        r = api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.77"]})
        assert r.status_code == 200, r.text
        (entry,) = api.call("admin", "GET", "/audit", params={"action": "jail.ban"}).json()["items"]
        assert entry["outcome"] == "pending"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert api.call("operator", "POST", "/jails/sshd/bans", json={"ips": ["192.0.2.78"]}).status_code == 200
    entries = api.call("admin", "GET", "/audit", params={"action": "jail.ban"}).json()["items"]
    assert [(e["outcome"], e["details"]["ips"]) for e in entries] == [("ok", ["192.0.2.78"]), ("ok", ["192.0.2.77"])]
    events, _ = api.store.history.history(jail="sshd", limit=10)
    assert {(e["ip"], e["origin"], e["actor"]) for e in events} == {
        ("192.0.2.77", "manual", "token:operator-token"), ("192.0.2.78", "manual", "token:operator-token")}
    assert api.store.audit.intents() == [] and api.store.audit.verify()["ok"]
