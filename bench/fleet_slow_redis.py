"""Fleet mode with a slow Redis: does any request wait on Redis on the event loop? (issue 21 item 5)

    python -m bench.fleet_slow_redis [--seconds 10] [--clients 4] [--delay-ms 100]

A private redis-server behind a loopback proxy (tests/fixtures/slow_proxy.py) that holds every command the
client sends for --delay-ms, one private fail2ban and `bangui serve --workers 1` in fleet mode (one worker: every
request below reaches the same event loop). --clients threads send authenticated requests (`GET /jails` with an
API token: a token lookup in Redis each) as fast as they are answered while one more thread probes
`GET /health/live` every 20 ms. The same run with the proxy passing commands at once, and with the delay, side
by side. Target: `/health/live` p99 < 20 ms with Redis 100 ms slow. The authenticated requests meanwhile are
answered from the host's replica once the lookup's deadline (store/fleet_cache.LOOKUP_TIMEOUT_S) has passed.
A benchmark, not a test: it prints figures and PASS/FAIL beside the target.
"""

from __future__ import annotations

import argparse
import threading
import time

import httpx2 as httpx

from bench.common import ADMIN_PASSWORD, bangui, machine, percentile, table, verdict, work_dir
from f2b.instance import PrivateServer
from tests.fixtures.redis import RedisServer
from tests.fixtures.slow_proxy import DelayingProxy

TARGET_P99_MS = 20.0
PROBE_EVERY_S = 0.02


def measure(url: str, token: str, seconds: float, clients: int) -> dict[str, list[float]]:
    """Latencies (ms) of the liveness probe and of the authenticated requests, under that load."""
    stop = threading.Event()
    live: list[float] = []
    authed: list[float] = []
    statuses: dict[int, int] = {}

    def load() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            while not stop.is_set():
                started = time.perf_counter()
                status = client.get("/api/v1/jails").status_code
                authed.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

    def probe() -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop.is_set():
                started = time.perf_counter()
                client.get("/api/v1/health/live").raise_for_status()
                live.append((time.perf_counter() - started) * 1000)
                time.sleep(PROBE_EVERY_S)

    threads = [threading.Thread(target=load) for _ in range(clients)] + [threading.Thread(target=probe)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    print(f"  authenticated answers by status: {dict(sorted(statuses.items()))}")
    return {"live": live, "authed": authed}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_slow_redis", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--delay-ms", type=float, default=100.0)
    args = parser.parse_args()
    print(machine())
    with work_dir("bangui-bench-slowredis") as tmp:
        redis_server = RedisServer(tmp / "redis").start()
        proxy = DelayingProxy(redis_server.port, 0.0)
        f2b = PrivateServer(tmp / "f2b")
        f2b.start()
        try:
            env = {"BANGUI_FLEET_URL": proxy.url, "BANGUI_HOST_NAME": "bench", "BANGUI_ADMIN_PASSWORD": ADMIN_PASSWORD}
            with bangui(tmp / "data", f2b, workers=1, env=env) as server:
                login = httpx.post(server.url + "/api/v1/auth/login", timeout=10,
                                   json={"username": "admin", "password": ADMIN_PASSWORD})
                made = httpx.post(server.url + "/api/v1/tokens", json={"name": "bench", "role": "viewer"},
                                  cookies=login.cookies, timeout=10)
                token, made_at = made.json()["token"], time.time()
                deadline = time.monotonic() + 30  # the replica holds the token (the agent refreshes every 2 s)
                while time.monotonic() < deadline:
                    health = httpx.get(server.url + "/api/v1/health", headers={"Authorization": f"Bearer {token}"},
                                       timeout=10).json()
                    age = health["fleet"]["replica_age_s"]
                    if age is not None and time.time() - age > made_at:
                        break
                    time.sleep(0.2)
                rows = []
                for delay_ms in (0.0, args.delay_ms):
                    proxy.delay_s = delay_ms / 1000
                    print(f"Redis +{delay_ms:.0f} ms per command, {args.clients} clients, {args.seconds:.0f} s:")
                    got = measure(server.url, token, args.seconds, args.clients)
                    live, authed = got["live"], got["authed"]
                    p99 = percentile(live, 99)
                    rows.append([f"+{delay_ms:.0f} ms", len(live), f"{percentile(live, 50):.1f}", f"{p99:.1f}",
                                 f"< {TARGET_P99_MS:.0f}", verdict(p99, TARGET_P99_MS, higher_is_better=False)
                                 if delay_ms else "-", len(authed), f"{percentile(authed, 50):.1f}",
                                 f"{percentile(authed, 99):.1f}"])
                print(table(["Redis", "live n", "live p50 ms", "live p99 ms", "target", "", "authed n",
                             "authed p50 ms", "authed p99 ms"], rows))
        finally:
            proxy.stop()
            f2b.close()
            redis_server.stop()


if __name__ == "__main__":
    main()
