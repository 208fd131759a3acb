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


def test_an_unban_everywhere_cut_short_is_reconciled_in_every_jail_with_its_actor(api: Api) -> None:
    """An unban of a network in every jail writes every jail's entries ahead: when its process dies after fail2ban
    lifted them, the leader records each unban with the caller's name, in each jail."""
    import anyio

    from core.deps import Deps
    from f2b.client import Fail2Ban
    from jobs.reconcile import reconcile_pending

    for jail, ips in (("sshd", ["198.51.100.7", "192.0.2.1"]), ("nginx-http-auth", ["198.51.100.9"])):
        assert api.call("operator", "POST", f"/jails/{jail}/bans", json={"ips": ips}).status_code == 200
    holder = sqlite3.connect(api.store.history.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # history cannot be written: the entry stays pending, as after a crash
    try:
        r = api.call("operator", "DELETE", "/bans/198.51.100.0/24")
        assert r.status_code == 200 and r.json()["count"] == 2, r.text
        (intent,) = api.store.audit.intents()
        assert intent["plan"]["jails"] == {"sshd": ["198.51.100.7"], "nginx-http-auth": ["198.51.100.9"]}
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with sqlite3.connect(api.store.audit.path) as db:  # its process died: the leader reconciles it
        db.execute("UPDATE intents SET owner = 'gone:1:1'")

    async def reconcile() -> int:
        client = Fail2Ban(api.settings.fail2ban_socket)
        try:
            return await reconcile_pending(Deps(api.settings, api.store, client))
        finally:
            await client.aclose()

    assert anyio.run(reconcile) == 1
    for jail, ip in (("sshd", "198.51.100.7"), ("nginx-http-auth", "198.51.100.9")):
        events, _ = api.store.history.history(jail=jail, ip=ip, limit=10)
        assert [(e["event"], e["actor"]) for e in events if e["event"] == "unban"] == [
            ("unban", "token:operator-token")], events
    (entry,) = [e for e in api.store.audit.iter_all() if e["action"] == "ban.unban_everywhere"]
    assert entry["outcome"] == "interrupted" and entry["details"]["applied"] == 2
