"""`f2b.client.Fail2Ban` against a real private fail2ban-server (one per test)."""

from __future__ import annotations

import dataclasses
import os
import pickle
import pwd
import shutil
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import pytest

from f2b.blocking import BlockingFail2Ban, sync_call
from f2b.client import FEW_ADDRESSES, Fail2Ban, Fail2BanCommandError, Fail2BanUnavailable, JailNotFound
from f2b.instance import PrivateServer
from f2b.protocol import TERMINATOR

pytestmark = pytest.mark.anyio


async def _eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until it is true; fail after 5 s."""
    for _ in range(100):
        if await check():
            return
        await anyio.sleep(0.05)
    raise AssertionError("not true after 5 s")


async def banned(client: Fail2Ban, jail: str) -> set[str]:
    """The entries banned in `jail` now (from the jail's status)."""
    return set((await client.jail_status(jail)).banned_ips)


async def test_server_info(fail2ban: PrivateServer, fail2ban_client: Fail2Ban) -> None:
    assert await fail2ban_client.version() == "1.0.2"
    assert await fail2ban_client.jail_names() == ["nginx-http-auth", "sshd", "sshd-dummy"]
    assert await fail2ban_client.dbfile() == fail2ban.dbfile
    await fail2ban_client.ban("sshd", ["192.0.2.1", "192.0.2.2"])
    await fail2ban_client.ban("nginx-http-auth", ["192.0.2.3"])
    summary = await fail2ban_client.server_summary()
    assert (summary.version, summary.jail_count, summary.currently_banned, summary.total_banned) == \
        ("1.0.2", 3, 3, 3)
    assert [j.name for j in summary.jails] == ["nginx-http-auth", "sshd", "sshd-dummy"]
    assert [j.currently_banned for j in summary.jails] == [1, 2, 0]
    assert all(j.banned_ips == [] for j in summary.jails)  # counters only: never the whole list


async def test_jail_status_and_config(fail2ban: PrivateServer, fail2ban_client: Fail2Ban) -> None:
    await fail2ban_client.ban("sshd", ["192.0.2.1"])
    status = await fail2ban_client.jail_status("sshd")
    assert dataclasses.asdict(status) == {
        "name": "sshd", "currently_failed": 0, "total_failed": 0,
        "file_list": [str(fail2ban.log_path("sshd"))], "currently_banned": 1, "total_banned": 1,
        "banned_ips": ["192.0.2.1"]}
    config = await fail2ban_client.jail_config("sshd-dummy")
    assert dataclasses.asdict(config) == {
        "bantime": 600, "findtime": 600, "maxretry": 3, "ignoreip": [],
        "logpaths": [str(fail2ban.log_path("sshd-dummy"))], "actions": ["dummy"]}


async def test_ban_and_unban_ipv4_and_ipv6(fail2ban_client: Fail2Ban) -> None:
    c = fail2ban_client
    assert await c.ban("sshd", ["192.0.2.7", "2001:db8::7"]) == 2
    assert await c.ban("sshd", ["192.0.2.7", "192.0.2.8"]) == 1  # already banned counts 0
    assert await c.ban("sshd", []) == 0
    assert await banned(c, "sshd") == {"2001:db8::7", "192.0.2.7", "192.0.2.8"}
    assert await c.unban("sshd", "2001:db8::7") is True
    assert await c.unban("sshd", "2001:db8::7") is False  # not banned (any more)
    assert await banned(c, "sshd") == {"192.0.2.7", "192.0.2.8"}


async def test_cidr_is_one_opaque_entry(fail2ban_client: Fail2Ban) -> None:
    c = fail2ban_client
    assert await c.ban("sshd", ["198.51.100.0/24"]) == 1
    assert await c.jails_banning("198.51.100.0/24") == ["sshd"]
    assert await c.jails_banning("198.51.100.7") == []  # fail2ban 1.0.2 checks no containment
    assert [b.ip for b in await c.banned_with_times("sshd")] == ["198.51.100.0/24"]
    assert await c.unban("sshd", "198.51.100.0/24") is True


async def test_bulk_ban_in_one_call(fail2ban_client: Fail2Ban) -> None:
    ips = [f"10.{i // 250}.{i % 250}.1" for i in range(500)]
    assert await fail2ban_client.ban("sshd", ips) == 500
    assert (await fail2ban_client.jail_status("sshd")).currently_banned == 500
    assert set(ips) == await banned(fail2ban_client, "sshd")


@pytest.mark.parametrize("count", [3, FEW_ADDRESSES + 8])  # per-address check, then the ban-list path
async def test_ban_new_reports_those_already_banned(fail2ban_client: Fail2Ban, count: int) -> None:
    ips = [f"192.0.2.{i + 1}" for i in range(count)]
    await fail2ban_client.ban("sshd", ips[:2])
    assert await fail2ban_client.ban_new("sshd", ips) == ips[:2]
    assert await banned(fail2ban_client, "sshd") == set(ips)
    assert await fail2ban_client.ban_new("sshd", []) == []


async def test_reply_larger_than_64kib(fail2ban_client: Fail2Ban) -> None:
    ips = [f"10.{i // 250}.{i % 250}.{i % 200 + 1}" for i in range(5000)]
    assert await fail2ban_client.ban("sshd", ips) == 5000
    status = await fail2ban_client.jail_status("sshd")
    assert len(status.banned_ips) == 5000 and set(status.banned_ips) == set(ips)


async def test_banned_with_times(fail2ban_client: Fail2Ban) -> None:
    c = fail2ban_client
    before = int(time.time())
    await c.ban("sshd", ["192.0.2.1"])
    await c.call("set", "nginx-http-auth", "bantime", "-1")
    await c.ban("nginx-http-auth", ["192.0.2.2"])
    (timed,) = await c.banned_with_times("sshd")
    assert timed.ip == "192.0.2.1" and before <= timed.banned_at <= time.time()
    assert timed.expires_at == timed.banned_at + 600
    (permanent,) = await c.banned_with_times("nginx-http-auth")
    assert permanent.ip == "192.0.2.2" and permanent.expires_at is None
    assert await c.banned_with_times("sshd-dummy") == []


async def test_unban_everywhere(fail2ban_client: Fail2Ban) -> None:
    c = fail2ban_client
    await c.ban("sshd", ["192.0.2.5"])
    await c.ban("sshd-dummy", ["192.0.2.5", "192.0.2.6"])
    assert (await banned(c, "sshd"), await banned(c, "sshd-dummy")) == ({"192.0.2.5"}, {"192.0.2.5", "192.0.2.6"})
    assert await c.unban_everywhere("192.0.2.5") == ["sshd", "sshd-dummy"]
    assert await c.unban_everywhere("192.0.2.5") == []
    assert (await banned(c, "sshd"), await banned(c, "sshd-dummy")) == (set(), {"192.0.2.6"})


async def test_dummy_action_runs(fail2ban: PrivateServer, fail2ban_client: Fail2Ban) -> None:
    await fail2ban_client.ban("sshd-dummy", ["192.0.2.4"])
    await fail2ban_client.unban("sshd-dummy", "192.0.2.4")
    assert fail2ban.dummy_target("sshd-dummy").read_text().splitlines()[-2:] == ["+192.0.2.4", "-192.0.2.4"]


async def test_unknown_jail_is_jail_not_found(fail2ban_client: Fail2Ban) -> None:
    c = fail2ban_client
    calls = [lambda: c.jail_status("nojail"), lambda: c.jail_config("nojail"),
             lambda: c.ban("nojail", ["192.0.2.1"]), lambda: c.ban_new("nojail", ["192.0.2.1"]),
             lambda: c.unban("nojail", "192.0.2.1"),
             lambda: c.banned_with_times("nojail")]
    for call in calls:
        with pytest.raises(JailNotFound) as caught:
            await call()
        assert (caught.value.status, caught.value.code) == (404, "jail_not_found")
        assert "'nojail'" in caught.value.message


async def test_other_errors_are_command_errors(fail2ban_client: Fail2Ban) -> None:
    with pytest.raises(Fail2BanCommandError) as caught:
        await fail2ban_client.call("get", "sshd", "nonsense")
    assert (caught.value.status, caught.value.code) == (502, "fail2ban_error")
    assert caught.value.message == \
        "fail2ban rejected 'get sshd nonsense': Invalid command (no get action or not yet implemented)"
    with pytest.raises(Fail2BanCommandError):
        await fail2ban_client.pipeline([("ping",), ("bogus",)])
    assert await fail2ban_client.pipeline([("ping",), ("get", "sshd", "maxretry")]) == ["pong", 3]


async def test_automatic_ban_from_log_lines(fail2ban: PrivateServer, fail2ban_client: Fail2Ban) -> None:
    fail2ban.append_failures("sshd", "203.0.113.9", 3)
    fail2ban.append_failures("nginx-http-auth", "203.0.113.10", 5)
    async def both_banned() -> bool:
        return (await banned(fail2ban_client, "sshd"), await banned(fail2ban_client, "nginx-http-auth")) == (
            {"203.0.113.9"}, {"203.0.113.10"})

    await _eventually(both_banned)  # polling backend: ~0.3-0.7 s measured
    assert (await fail2ban_client.jail_status("sshd")).total_failed == 3


async def test_stopped_server_then_recovery_with_the_same_client(fail2ban: PrivateServer) -> None:
    client = Fail2Ban(fail2ban.socket, timeout=2.0)
    await client.ban("sshd", ["192.0.2.1"])  # leaves a pooled connection behind
    fail2ban.stop()  # clean stop removes the socket file
    with pytest.raises(Fail2BanUnavailable) as caught:
        await client.version()
    assert (caught.value.status, caught.value.code) == (503, "fail2ban_unavailable")
    assert fail2ban.socket in caught.value.message and "DIRECTORY" in caught.value.message
    fail2ban.start()
    await _eventually(lambda: client.jails_banning("192.0.2.1"))  # restored from the dbfile ~0.2 s
    # after the jails start
    fail2ban.kill()  # a crash leaves a stale socket file: refused
    with pytest.raises(Fail2BanUnavailable, match="not running") as caught:
        await client.version()
    assert caught.value.details["reason"] in {"refused", "closed"}
    fail2ban.restart(fresh_db=True)
    assert await client.jails_banning("192.0.2.1") == []
    await client.aclose()


async def test_wrong_path(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.sock")
    with pytest.raises(Fail2BanUnavailable, match="is fail2ban running") as caught:
        await Fail2Ban(path).version()
    assert caught.value.details == {"socket": path, "reason": "missing"}


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A Unix socket that accepts connections (kernel backlog) but never answers."""
    with tempfile.TemporaryDirectory(prefix="f2b-") as tmp, socket.socket(socket.AF_UNIX) as sock:
        path = os.path.join(tmp, "silent.sock")
        sock.bind(path)
        sock.listen(64)
        yield path


async def test_timeout_discards_the_connection(silent_listener: str) -> None:
    client = Fail2Ban(silent_listener, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(Fail2BanUnavailable, match="did not answer within 0.3s") as caught:
        await client.version()
    assert 0.3 <= time.monotonic() - started < 5.0  # the listener never answers: no timeout = no end
    assert caught.value.details["reason"] == "timeout" and client._idle == []


async def test_hostile_reply_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "evil.sock")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            return os.system, (f"touch {marker}",)

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            await stream.send(pickle.dumps((0, Evil())) + TERMINATOR)

    client = Fail2Ban(path)
    async with await anyio.create_unix_listener(path) as listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        with pytest.raises(Fail2BanCommandError, match="forbidden global"):
            await client.version()
        await client.aclose()
        tg.cancel_scope.cancel()
    assert not marker.exists()


def test_permission_denied(tmp_path: Path) -> None:
    """Root bypasses file permissions, so the connect runs in a forked child as `nobody`."""
    sock_dir = Path(tempfile.mkdtemp(prefix="f2b-perm-"))
    try:
        sock_dir.chmod(0o755)
        path = str(sock_dir / "f2b.sock")
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(path)
            listener.listen(1)
            os.chmod(path, 0)
            result = _probe_as_nobody(path) if os.geteuid() == 0 else _probe(path)
    finally:
        shutil.rmtree(sock_dir)
    reason, message = result.split("|", 1)
    assert reason == "permission", result
    assert path in message and "run bangui as a user that may open it" in message


def _probe(path: str) -> str:
    async def probe() -> str:
        try:
            await Fail2Ban(path).version()
        except Fail2BanUnavailable as exc:
            return f"{exc.details['reason']}|{exc.message}"
        return "connected|"

    return anyio.run(probe)


def _probe_as_nobody(path: str) -> str:
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' to drop root privileges to")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        try:
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            out = _probe(path)
        except PermissionError as exc:
            out = f"nosetuid|{exc}"
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            out = f"child-error|{exc!r}"
        os.write(write_end, out.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        out = pipe.read().decode()
    os.waitpid(pid, 0)
    if out.startswith("nosetuid|"):
        pytest.skip(f"cannot switch to user nobody here ({out}); root bypasses socket permissions")
    return out


async def test_fifty_concurrent_calls(fail2ban: PrivateServer) -> None:
    client, results = Fail2Ban(fail2ban.socket, max_calls=16), []

    async def one(i: int) -> None:
        results.append(await client.call("get", "sshd", "banned", f"192.0.2.{i}"))

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(one, i)
    assert results == [0] * 50 and 1 <= len(client._idle) <= client.max_idle
    await client.aclose()


async def test_the_blocking_facade_is_the_same_client_with_its_limiter(fail2ban: PrivateServer) -> None:
    """Blocking code (f2bconfig's engine in a worker thread) calls through the process's client: it waits for the
    client's own concurrency limit, and answers with the client's values and errors (issue 19 item 2)."""
    client = Fail2Ban(fail2ban.socket, max_calls=1)
    await client.call("ping")  # the limiter exists once the client has been used
    blocking = BlockingFail2Ban.of(client)
    limiter = client._limiter
    assert limiter is not None
    results: list[object] = []

    async def in_a_thread() -> None:
        results.append(await anyio.to_thread.run_sync(blocking.call, "get", "sshd", "maxretry"))

    async with anyio.create_task_group() as tg, limiter:  # the one slot is taken: the thread's call queues
        tg.start_soon(in_a_thread)
        await _eventually(lambda: _async(limiter.statistics().tasks_waiting == 1))
        assert results == []
    assert results == [3]
    with pytest.raises(JailNotFound):
        await anyio.to_thread.run_sync(blocking.call, "get", "nojail", "maxretry")
    await client.aclose()


async def _async(value: bool) -> bool:
    return value


def test_sync_call_outside_any_loop_returns_the_raw_reply(fail2ban: PrivateServer) -> None:
    assert sync_call(fail2ban.socket, "ping") == (0, "pong")
    code, error = sync_call(fail2ban.socket, "status", "nojail")
    assert code == 1 and error.remote_name == "UnknownJailException"
