"""Blocklist imports below the API: parsing, SSRF rules, fetching from a real HTTP server on 127.0.0.1 (the
network is closed), the store's schedule, the job on a real fail2ban (bad lists isolated, fenced writes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.deps import Deps
from errors import Conflict, InvalidInput
from f2b.client import Fail2Ban
from jobs.blocklists import BlocklistError, _get, blocklists, fetch, parse
from jobs.definitions import JobContext, load_jobs
from settings import Settings
from store import Store
from store.base import open_cache
from store.blocklists import Blocklists, check_url, forbidden_reason
from store.leader import NotLeader
from tests.fixtures.app import make_settings
from tests.fixtures.blocklist_server import EXPECTED, LIST, ListServer
from tests.fixtures.clock import ManualClock
from tests.fixtures.webhook import DrippingTarget


def local(**changes: Any) -> Settings:
    return Settings.for_tests(**{"blocklist_allow_private": True, **changes})


# ---- parsing ----------------------------------------------------------------------------------------------
def test_parse_keeps_addresses_and_networks_and_counts_the_rest() -> None:
    parsed = parse(LIST.decode())
    assert parsed.entries == EXPECTED  # CIDR kept as networks, duplicates dropped, list order kept
    assert parsed.invalid == 3
    assert parsed.examples == ["not-an-ip", "999.1.1.1", "0.0.0.0/0"]  # 0.0.0.0/0 would ban everyone


def test_parse_normalises_and_caps_the_entries() -> None:
    assert parse("198.51.100.7/24\n2001:DB8::1/128\n").entries == ["198.51.100.0/24", "2001:db8::1"]
    assert parse("\n".join(f"192.0.2.{i}" for i in range(10)), limit=10).invalid == 0
    with pytest.raises(BlocklistError, match="more than 10 entries"):
        parse("\n".join(f"192.0.2.{i}" for i in range(11)), limit=10)
    examples = parse("\n".join(f"junk {i}" for i in range(20))).examples
    assert len(examples) == 5


# ---- SSRF rules -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("address", "reason"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("10.1.2.3", "private"), ("192.168.1.1", "private"), ("172.16.0.1", "private"), ("fd00::1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1%eth0", "link-local"), ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"), ("240.0.0.1", "reserved"), ("100.64.0.1", "non-global"),
    ("fec0::1", "site-local"), ("::ffff:127.0.0.1", "loopback"), ("2002:7f00:1::", "loopback"),
    ("::ffff:10.0.0.1", "private"), ("8.8.8.8", None), ("2001:4860:4860::8888", None),
])
def test_address_check(address: str, reason: str | None) -> None:
    assert forbidden_reason(address) == reason  # a check of the address only: nothing is fetched


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://192.0.2.1/list", "gopher://x/", "http://",
                                 "https://user:pw@example.org/list", "http://example.org:99999/",
                                 "http://exa mple.org/", "//example.org/list", "example.org/list"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_url(url)
    assert info.value.code == "invalid_url"


def test_loopback_is_refused_before_any_connection_unless_allowed(lists: ListServer) -> None:
    strict = Settings.for_tests()
    assert strict.blocklist_allow_private is False  # the default
    for url in (lists.url("/list.txt"), lists.url("/list.txt").replace("127.0.0.1", "localhost")):
        with pytest.raises(BlocklistError, match=r"refused: (127\.0\.0\.1|localhost resolves to .*, which) is a loopback"):
            fetch(url, strict)
    assert lists.seen == []  # refused at the address check: no connection was made
    assert fetch(lists.url("/list.txt"), local()) == LIST
    assert lists.seen == [("/list.txt", f"127.0.0.1:{lists.httpd.server_port}")]


def test_only_the_checked_addresses_are_dialled_with_the_name_as_host(lists: ListServer) -> None:
    port = lists.httpd.server_port  # the name is never looked up again; ::1 refuses, so 127.0.0.1 is next
    parts = check_url(f"http://lists.invalid:{port}/list.txt")
    assert _get(parts, port, ["::1", "127.0.0.1"], time.monotonic() + 5, 10_000) == (200, None, LIST)
    assert lists.seen == [("/list.txt", f"lists.invalid:{port}")]


# ---- fetching ---------------------------------------------------------------------------------------------
def test_fetch_refuses_oversize_lists_declared_or_streamed(lists: ListServer) -> None:
    big = b"192.0.2.1\n" * 300  # 3,000 bytes
    lists.routes["/big"] = (200, {}, big)
    lists.routes["/big-unannounced"] = (200, {"Content-Length": None}, big)
    settings = local(blocklist_max_bytes=2048)
    for path in ("/big", "/big-unannounced"):
        with pytest.raises(BlocklistError, match="exceeds 2048 bytes"):
            fetch(lists.url(path), settings)
    assert fetch(lists.url("/big-unannounced"), local(blocklist_max_bytes=4096)) == big


def test_redirect_targets_are_checked_again(lists: ListServer) -> None:
    lists.routes["/moved"] = (302, {"Location": "/list.txt"}, b"")
    lists.routes["/to-file"] = (302, {"Location": "file:///etc/passwd"}, b"")
    lists.routes["/loop"] = (301, {"Location": "/loop"}, b"")
    assert fetch(lists.url("/moved"), local()) == LIST
    with pytest.raises(InvalidInput, match="only http:// and https://"):
        fetch(lists.url("/to-file"), local())
    with pytest.raises(BlocklistError, match="more than 3 redirects"):
        fetch(lists.url("/loop"), local())
    with pytest.raises(BlocklistError, match="HTTP 404"):
        fetch(lists.url("/missing"), local())


def test_a_slow_server_hits_the_overall_timeout(lists: ListServer) -> None:
    lists.delay = 6.0  # far beyond the timeout: the bound below tells the two apart on a loaded machine
    started = time.monotonic()
    with pytest.raises(BlocklistError, match="timed out|took longer"):
        fetch(lists.url("/list.txt"), local(blocklist_timeout_seconds=0.5))
    assert time.monotonic() - started < 4.0


# ---- the store's schedule ---------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[Blocklists]:
    cache = open_cache(tmp_path / "state")
    yield Blocklists(cache, clock)
    cache.close()


def test_due_lists_requests_and_outcomes(store: Blocklists, clock: ManualClock) -> None:
    a = store.create("a", "http://127.0.0.1/a", "sshd", interval_s=600, by="admin")
    store.create("off", "https://127.0.0.1/b", "sshd", enabled=False)
    with pytest.raises(Conflict):
        store.create("a", "http://127.0.0.1/other", "sshd")
    with pytest.raises(InvalidInput):
        store.create("../x", "http://127.0.0.1/a", "sshd")
    with pytest.raises(InvalidInput):
        store.create("short", "http://127.0.0.1/a", "sshd", interval_s=60)
    assert [r["name"] for r, _ in store.due()] == ["a"]  # never run; the disabled one waits
    assert store.record_run("a", a["created"], {"last_run": clock.now, "last_status": "ok"}, None)
    assert store.due() == [] and store.get("a")["runs"] == 1
    clock.now += 600
    assert [r["name"] for r, _ in store.due()] == ["a"]
    req = store.request("off", "operator")  # a request runs even a disabled list
    [(record, requested_at)] = [d for d in store.due() if d[0]["name"] == "off"]
    assert requested_at == req["requested_at"]
    clock.now += 1
    store.request("off", "operator")  # a newer request, made during the run, stays pending
    assert store.record_run("off", record["created"], {"last_run": clock.now}, requested_at)
    assert [r["name"] for r, _ in store.due()] == ["a", "off"]
    store.delete("off")
    assert not store.record_run("off", record["created"], {"last_run": clock.now}, None)  # not resurrected
    assert [r["name"] for r in store.all()] == ["a"]


# ---- the job against a real fail2ban -----------------------------------------------------------------------
@pytest.mark.anyio
async def test_job_imports_good_lists_despite_a_bad_one_and_is_fenced(tmp_path: Path, fail2ban: Any,
                                                                      lists: ListServer) -> None:
    settings = make_settings(tmp_path / "data", str(fail2ban.socket), blocklist_allow_private=True)
    store, client = Store(settings), Fail2Ban(str(fail2ban.socket), timeout=5.0)
    try:
        store.blocklists.create("broken", lists.url("/missing"), "sshd")
        store.blocklists.create("garbage", lists.url("/garbage"), "sshd")
        lists.routes["/garbage"] = (200, {}, b"<html>\n<body>not a list</body>\n</html>\n")
        store.blocklists.create("good", lists.url("/list.txt"), "sshd")
        store.blocklists.create("nojail", lists.url("/list.txt"), "no-such-jail")
        job = next(j for j in load_jobs(settings) if j.name == "blocklists")
        ctx = JobContext(Deps(settings, store, client), store.leader.claim()["epoch"], job, time.time)
        await blocklists(ctx)
        records = {r["name"]: r for r in store.blocklists.all()}
        assert records["broken"]["last_status"] == "error" and "HTTP 404" in records["broken"]["last_error"]
        assert "no valid entry in 3 lines" in records["garbage"]["last_error"]
        assert "no-such-jail" in records["nojail"]["last_error"]
        good = records["good"]
        assert (good["last_status"], good["last_count"], good["last_added"], good["last_invalid"]) == ("ok", 5, 5, 3)
        assert sorted(b.ip for b in await client.banned_with_times("sshd")) == sorted(EXPECTED)
        events, _ = store.history.history(origin="blocklist")
        assert {(e["ip"], e["actor"]) for e in events} == {(ip, "blocklist:good") for ip in EXPECTED}

        lists.hook = store.leader.claim  # another process takes over while the list downloads
        store.blocklists.request("good", "operator")
        with pytest.raises(NotLeader):  # the one signal of lost leadership, for the scheduler to handle
            await blocklists(ctx)
        assert store.blocklists.get("good") == good  # the deposed leader's outcome is not written
        assert [r["name"] for r, _ in store.blocklists.due()] == ["good"]  # and the request is still pending
    finally:
        await client.aclose()
        store.close()


def test_a_server_dripping_its_headers_hits_the_overall_timeout() -> None:
    slow = DrippingTarget(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000, gap=0.2)  # each read well in time
    try:
        started = time.monotonic()
        with pytest.raises(BlocklistError, match="took longer"):
            fetch(slow.url + "/list.txt", local(blocklist_timeout_seconds=1.0))
        assert time.monotonic() - started < 5.0  # the drip would last 2,000 s
    finally:
        slow.close()
