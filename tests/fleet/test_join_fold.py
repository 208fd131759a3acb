"""jobs.fleet.join's fold of the log into the bans a joining host must apply (pure functions: no Redis needed)."""

from __future__ import annotations

import json
from typing import Any

from jobs.fleet.join import Ban, fold, plan, statuses


def _e(kind: str, ips: list[str], source: str = "web1", jail: str = "sshd", hosts: list[str] | None = None,
       at: float = 1000.0, everyone: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {"kind": kind, "jail": jail, "ips": ips, "source": source, "hosts": hosts, "at": at}
    if everyone:
        item["scope"] = "all"
    return item


def test_an_unban_for_this_host_cancels_earlier_bans_whoever_made_them_and_a_later_ban_counts_again() -> None:
    log = [_e("auto", ["192.0.2.1", "192.0.2.2"], source="web1"),
           _e("unban", ["192.0.2.1", "192.0.2.2"], source="web3", hosts=["web1", "web3"], everyone=True),
           _e("auto", ["192.0.2.2"], source="web3", at=1005.0)]
    assert fold(log, "web9") == {("sshd", "192.0.2.2"): Ban("web3", 1005.0)}


def test_fleet_bans_for_other_hosts_and_this_hosts_own_bans_are_not_applied() -> None:
    log = [_e("ban", ["192.0.2.1"], hosts=["web1", "web2"]),  # named hosts only: not a later host
           _e("ban", ["192.0.2.2"], hosts=["web1", "web2"], everyone=True),  # hosts omitted: every host
           _e("ban", ["192.0.2.3"], hosts=["web1", "web9"]),  # names this host
           _e("auto", ["192.0.2.4"], source="web9"),  # this host's own fail2ban made it
           _e("unban", ["192.0.2.2"], hosts=["web1"])]  # an unban for another host changes nothing here
    assert sorted(fold(log, "web9")) == [("sshd", "192.0.2.2"), ("sshd", "192.0.2.3")]


def test_automatic_bans_go_to_the_fleet_jail_when_one_is_set() -> None:
    assert list(fold([_e("auto", ["192.0.2.1"], jail="nginx-http-auth")], "web9", "fleet")) == [
        ("fleet", "192.0.2.1")]


def test_bans_over_by_the_jails_bantime_and_jails_this_host_lacks_are_left_out() -> None:
    state = {("sshd", "192.0.2.1"): Ban("web1", 1000.0), ("sshd", "192.0.2.2"): Ban("web2", 1500.0),
             ("forever", "192.0.2.3"): Ban("web1", 0.0, "spamhaus", "b1"), ("gone", "192.0.2.4"): Ban("web1", 1900.0)}
    assert plan(state, {"sshd": 600, "forever": -1}, now=2000.0) == {
        ("sshd", "web2", ""): ["192.0.2.2"], ("forever", "web1", "spamhaus"): ["192.0.2.3"]}


def test_a_fleet_ban_remembers_its_id_and_blocklist_so_the_joining_host_can_report_on_it() -> None:
    ban = _e("ban", ["192.0.2.1"], everyone=True) | {"id": "b1", "list": "drop"}
    assert fold([ban], "web9") == {("sshd", "192.0.2.1"): Ban("web1", 1000.0, "drop", "b1")}


def test_the_joining_host_reports_on_every_fleet_ban_and_unban_meant_for_it() -> None:
    log = [_e("ban", ["192.0.2.1"], everyone=True) | {"id": "applied"},
           _e("ban", ["192.0.2.2"], everyone=True) | {"id": "over"},  # cancelled below, or past its bantime
           _e("unban", ["192.0.2.2"], everyone=True) | {"id": "unban"},
           _e("ban", ["192.0.2.3"], hosts=["web1"]) | {"id": "not-mine"},
           _e("ban", ["192.0.2.4"], jail="gone", hosts=["web9"]) | {"id": "no-jail"},
           _e("ban", ["127.0.0.9"], everyone=True) | {"id": "refused"},
           _e("auto", ["192.0.2.5"])]
    outcomes = {"applied": ("applied", None, 1), "refused": ("failed", "refused_address: loopback", None)}
    got = {k: json.loads(v) for k, v in statuses(log, "web9", {"sshd"}, outcomes).items()}
    assert got == {"applied": {"status": "applied", "error": None, "added": 1},
                   "over": {"status": "applied", "error": None, "added": 0},
                   "unban": {"status": "applied", "error": None},
                   "no-jail": {"status": "failed", "error": "jail_not_found: fail2ban has no jail named 'gone'"},
                   "refused": {"status": "failed", "error": "refused_address: loopback"}}


def test_consecutive_shared_bans_of_one_host_and_jail_are_applied_as_one() -> None:
    from jobs.fleet.applying import batched

    a1, a2 = _e("auto", ["192.0.2.1"]), _e("auto", ["192.0.2.2", "192.0.2.1"])
    other, ban, a3 = _e("auto", ["192.0.2.3"], source="web2"), _e("ban", ["192.0.2.4"], hosts=["web9"]), \
        _e("auto", ["192.0.2.5"])
    out = batched([("1-0", a1), ("2-0", a2), ("3-0", other), ("4-0", None), ("5-0", ban), ("6-0", a3)])
    assert [(ids, item and item["ips"]) for ids, item in out] == [
        (["1-0", "2-0"], ["192.0.2.1", "192.0.2.2"]), (["3-0"], ["192.0.2.3"]), (["4-0"], None),
        (["5-0"], ["192.0.2.4"]), (["6-0"], ["192.0.2.5"])]  # order kept: nothing merged across others


def test_a_network_unban_cancels_the_bans_inside_it_and_a_too_wide_one_written_by_hand_cancels_nothing() -> None:
    """Issue 18 §5: a joining host folds a network unban as the unban action lifts it on a host that was there."""
    log = [_e("auto", ["198.51.100.7", "198.51.100.0/25", "192.0.2.1"]),
           _e("unban", ["198.51.100.0/24"], everyone=True) | {"id": "net"},
           _e("auto", ["203.0.113.9"]),
           _e("unban", ["0.0.0.0/0"], everyone=True) | {"id": "wide"}]
    assert sorted(fold(log, "web9")) == [("sshd", "192.0.2.1"), ("sshd", "203.0.113.9")]
    got = {k: json.loads(v) for k, v in statuses(log, "web9", {"sshd"}, {}).items()}
    assert got["net"] == {"status": "applied", "error": None}
    assert got["wide"]["status"] == "failed" and got["wide"]["error"].startswith("refused_address: refusing to unban")
