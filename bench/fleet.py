"""Fleet mode: how fast a ban on one host is in effect on the others, and a 10,000-address fleet ban.

    python -m bench.fleet [--bans 200] [--bulk 10000]

Three simulated hosts on this machine (as tests/fleet): one private redis-server, 3 private fail2ban servers
and 3 `bangui serve --workers 2` (web1..web3, `sshd` shared).
(a) Propagation: for each of --bans fresh addresses, 3 failure lines are appended to web1's sshd log; fail2ban
    bans it on its own. One loop polls all three fail2ban servers over persistent sockets (`get sshd banned`,
    ~0.1 ms each); the latency is from the poll that first sees the ban on web1 to the poll that sees it on both
    web2 and web3. Targets (issue 14): p50 <= 100 ms, p99 <= 1 s (CrowdSec's default poll is 10 s).
(b) Bulk: POST /api/v1/fleet/bans with --bulk addresses into `nginx-http-auth` on all 3 hosts; time until
    every host reports it applied (its status, polled every 50 ms; then fail2ban is checked), against one
    fail2ban banning the same addresses in one `set <jail> banip ...` call over its socket (a fresh private
    server). Target: <= 1.5x. Also against three fresh servers banning them at once: on one machine the three
    hosts' fail2ban servers share its cores, so that is the floor a fleet ban can reach here.
A benchmark, not a test: it prints figures and PASS/FAIL beside each target.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import threading
import time

import httpx2 as httpx

from bench.common import machine, percentile, table, verdict, work_dir
from f2b.instance import PrivateServer
from f2b.protocol import TERMINATOR, decode_reply, encode_command
from tests.fleet.conftest import Fleet, start_fleet


class Conn:
    """One persistent connection to a fail2ban socket."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)

    def call(self, *args: str) -> object:
        self.sock.sendall(encode_command(list(args)))
        buf = b""
        while not buf.endswith(TERMINATOR):
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("fail2ban closed the socket")
            buf += chunk
        code, result = decode_reply(buf)
        if code != 0:
            raise RuntimeError(result)
        return result


def propagation(fleet: Fleet, bans: int) -> list[float]:
    conns = [Conn(h.fail2ban.socket) for h in fleet.hosts]
    web1 = fleet.hosts[0].fail2ban
    out = []
    for i in range(bans):
        ip = str(ipaddress.ip_address("100.64.0.0") + 1000 + i)
        web1.append_failures("sshd", ip, 3)
        seen1 = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = time.monotonic()
            on = [ip in conn.call("get", "sshd", "banned") for conn in conns]  # type: ignore[operator]
            if on[0] and seen1 is None:
                seen1 = now
            if seen1 is not None and on[1] and on[2]:
                out.append(now - seen1)
                break
            time.sleep(0.001)
        else:
            raise RuntimeError(f"{ip} did not reach every host")
    return out


def raw_bans(base: str, ips: list[str], servers: int) -> float:
    """Seconds for `servers` fresh fail2ban servers to ban `ips` at once, one socket call each (threads)."""
    solos = [PrivateServer(f"{base}/solo{i}") for i in range(servers)]
    try:
        for solo in solos:
            solo.start()
        conns = [Conn(solo.socket) for solo in solos]
        threads = [threading.Thread(target=c.call, args=("set", "nginx-http-auth", "banip", *ips)) for c in conns]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - started
    finally:
        for solo in solos:
            solo.close()


def bulk(fleet: Fleet, count: int, base: str) -> tuple[float, float, float]:
    """(the fleet ban, one fail2ban's raw ban, three fail2ban servers' raw bans at once) in seconds."""
    ips = [str(ipaddress.ip_address("10.0.0.0") + 1 + i) for i in range(count)]
    one = raw_bans(f"{base}/one", ips, 1)
    three = raw_bans(f"{base}/three", ips, len(fleet.hosts))
    started = time.monotonic()
    r = httpx.post(fleet.hosts[0].url + "/api/v1/fleet/bans", json={"ips": ips, "jail": "nginx-http-auth"},
                   headers=fleet.headers(), timeout=60)
    assert r.status_code == 202, r.text
    # Poll the fleet ban's status (a host reports `applied` once its fail2ban answered the ban), not fail2ban
    # itself: listing 10,000 bans every 50 ms on three servers would slow the very bans being timed.
    status_url = fleet.hosts[0].url + f"/api/v1/fleet/bans/{r.json()['id']}"
    while True:
        time.sleep(0.05)
        hosts = httpx.get(status_url, headers=fleet.headers(), timeout=10).json()["hosts"]
        if all(v["status"] != "pending" for v in hosts.values()):
            break
        if time.monotonic() - started > 120:
            raise RuntimeError("the fleet ban did not reach every host within 120 s")
    elapsed = time.monotonic() - started
    assert all(v["status"] == "applied" for v in hosts.values()), hosts
    for host in fleet.hosts:  # and fail2ban agrees
        assert len(Conn(host.fail2ban.socket).call("get", "nginx-http-auth", "banned")) >= count  # type: ignore[arg-type]
    return elapsed, one, three


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bans", type=int, default=200)
    parser.add_argument("--bulk", type=int, default=10_000)
    args = parser.parse_args()
    print(machine())
    with work_dir("bgfleet-") as base:
        fleet = start_fleet(base)
        try:
            deadline = time.monotonic() + 30
            client = fleet.redis.client()
            while time.monotonic() < deadline and not (
                    client.exists("bangui:fleet:log") and len(client.xinfo_groups("bangui:fleet:log")) == 3):
                time.sleep(0.1)
            lat = propagation(fleet, args.bans)
            fleet_s, one_s, three_s = bulk(fleet, args.bulk, str(base))
        finally:
            fleet.stop()
    p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
    ratio = fleet_s / one_s
    print(table(["what", "measured", "target", "verdict"], [
        [f"propagation web1 -> web2+web3, {len(lat)} bans: p50", f"{p50:.1f} ms", "<= 100 ms",
         verdict(p50, 100, False)],
        ["same: p99", f"{p99:.1f} ms", "<= 1000 ms", verdict(p99, 1000, False)],
        ["same: max", f"{max(lat) * 1000:.1f} ms", "", ""],
        [f"fleet ban of {args.bulk} to 3 hosts / one fail2ban over its socket",
         f"{fleet_s:.2f} s / {one_s:.2f} s = {ratio:.2f}x", "<= 1.5x", verdict(ratio, 1.5, False)],
        ["same / 3 fail2ban servers banning at once on this machine (the floor here)",
         f"{fleet_s:.2f} s / {three_s:.2f} s = {fleet_s / three_s:.2f}x", "", ""],
    ]))


if __name__ == "__main__":
    main()
