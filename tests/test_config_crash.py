"""Issue 18 §3: a configuration change killed at a seeded random moment (SIGKILL of the whole `bangui serve`
process group) is recovered by the next server start: fail2ban runs every jail it ran before, the
configuration is either the before or the after state, and config/changes says which.

Each run uses a fresh private fail2ban on a copy of the stock configuration. The kill lands within the
change's duration, measured once per kind on its own instance. Seed: printed; replay with
BANGUI_CRASH_SEED=<seed>. The default run does 3 runs per kind; tests/reliability/test_config_crash.py
(./dev reliability) 20 per kind.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from f2b.blocking import sync_call
from f2b.stock import StockConfigServer, stock_started
from f2bconfig import journal, override
from f2bconfig.changes import ChangeLog
from store import Store
from tests.fixtures.app import make_settings, seed_users
from tests.fixtures.processes import ServerProcess

pytestmark = pytest.mark.processes
SHORT_RUNS, LONG_RUNS = 3, 20


@dataclass
class Kind:
    name: str
    request: Callable[[httpx.Client, StockConfigServer, Path], httpx.Response]
    is_after: Callable[[StockConfigServer], bool]  # the configuration holds the change
    added_jails: frozenset[str] = frozenset()
    can_apply: bool = True


def _put(http: httpx.Client, f2b: StockConfigServer, tmp: Path) -> httpx.Response:
    return http.put("/api/v1/config/files/jail.d/x.local", content=b"[sshd]\nmaxretry = 4\n")


def _patch(http: httpx.Client, f2b: StockConfigServer, tmp: Path) -> httpx.Response:
    return http.patch("/api/v1/jails/sshd", json={"maxretry": 8, "bantime_increment": {"enabled": True, "factor": 3}})


def _activate(http: httpx.Client, f2b: StockConfigServer, tmp: Path) -> httpx.Response:
    log = tmp / "apache.log"
    log.touch()
    return http.post("/api/v1/config/jails/apache-auth/activate", json={"logpath": [str(log)]})


def _failing(http: httpx.Client, f2b: StockConfigServer, tmp: Path) -> httpx.Response:
    return http.post("/api/v1/config/jails/apache-auth/activate")  # its log file is missing: rolled back


def _override(f2b: StockConfigServer, jail: str) -> dict[str, str]:
    path = f2b.conf_dir / override.JAIL_OVERRIDE
    return override.read_section(path.read_text(), jail) if path.exists() else {}


KINDS = [
    Kind("file_put", _put, lambda f2b: (f2b.conf_dir / "jail.d" / "x.local").exists()),
    Kind("jail_patch", _patch, lambda f2b: _override(f2b, "sshd").get("maxretry") == "8"),
    Kind("activate", _activate, lambda f2b: _override(f2b, "apache-auth").get("enabled") == "true",
         frozenset({"apache-auth"})),
    Kind("rolled_back", _failing, lambda f2b: _override(f2b, "apache-auth").get("enabled") == "true",
         can_apply=False),
]


def _active(f2b: StockConfigServer) -> set[str]:
    listed = str(dict(sync_call(f2b.socket, "status", timeout=5.0)[1]).get("Jail list", ""))
    return {n.strip() for n in listed.split(",") if n.strip()}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _server(tmp: Path, f2b: StockConfigServer) -> ServerProcess:
    return ServerProcess(tmp / "data", f2b, workers=1, log_dir=tmp).start()


def _token(tmp: Path, f2b: StockConfigServer) -> str:
    store = Store(make_settings(tmp / "data", f2b.socket))
    token = seed_users(store)["admin"]
    store.close()
    return token


def _measure(kind: Kind, tmp: Path) -> float:
    with stock_started(tmp / "f2b") as f2b:
        token = _token(tmp, f2b)
        server = _server(tmp, f2b)
        try:
            with httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
                started = time.perf_counter()
                r = kind.request(http, f2b, tmp)
                took = time.perf_counter() - started
        finally:
            server.stop()
        assert r.status_code in ((200, 201) if kind.can_apply else (422,)), r.text
        return took


def _one_run(kind: Kind, tmp: Path, delay: float) -> str:
    with stock_started(tmp / "f2b") as f2b:
        token = _token(tmp, f2b)
        before_files, before_jails = _snapshot(f2b.conf_dir), _active(f2b)
        server = _server(tmp, f2b)
        outcome: dict[str, Any] = {}

        def send() -> None:
            try:
                with httpx.Client(base_url=server.url, timeout=60,
                                  headers={"Authorization": f"Bearer {token}"}) as http:
                    outcome["status"] = kind.request(http, f2b, tmp).status_code
            except httpx.HTTPError as exc:
                outcome["error"] = type(exc).__name__

        thread = threading.Thread(target=send)
        thread.start()
        time.sleep(delay)
        server.signal_group(signal.SIGKILL)
        assert server.proc is not None
        server.proc.wait()
        thread.join(60)

        again = _server(tmp, f2b)  # recovery runs at start
        try:
            deadline = time.monotonic() + 30
            while journal.read(tmp / "data") is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert journal.read(tmp / "data") is None, again.output()[-3000:]
        finally:
            again.stop()
        after = kind.is_after(f2b)
        records = ChangeLog(tmp / "data").page()
        active = _active(f2b)
        context = (kind.name, delay, outcome, records, again.output()[-2000:])
        if after:
            assert kind.can_apply, context
            assert [r["outcome"] for r in records] == ["applied"], context
            assert active == before_jails | kind.added_jails, context
        else:
            assert _snapshot(f2b.conf_dir) == before_files, context  # byte for byte the before state
            assert all(r["outcome"] == "interrupted" and r["state"] == "before" and r["fail2ban_verified"]
                       for r in records), context
            assert active == before_jails, context
            if kind.name == "jail_patch":
                assert sync_call(f2b.socket, "get", "sshd", "maxretry")[1] == 5, context
                assert sync_call(f2b.socket, "get", "sshd", "bantime.increment")[1] in (None, False), context
            elif kind.name == "jail_patch":
                assert sync_call(f2b.socket, "get", "sshd", "bantime.factor")[1] == "3", context
        return ("after" if after else "before") + ("+interrupted" if records and not after else "")


def crash_runs(kind: Kind, tmp_path: Path, runs: int) -> None:
    seed = int(os.environ.get("BANGUI_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"crash test {kind.name}: seed {seed} (replay: BANGUI_CRASH_SEED={seed})")
    rng = random.Random(seed)
    duration = _measure(kind, tmp_path / "measure")
    seen = []
    for i in range(runs):
        delay = rng.uniform(0, duration * 1.1)
        seen.append((round(delay, 3), _one_run(kind, tmp_path / f"run{i}", delay)))
    print(f"{kind.name}: change took {duration:.3f} s; (kill delay, state): {seen}")


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_a_change_killed_at_a_random_moment_is_rolled_back_or_complete(kind: Kind, tmp_path: Path) -> None:
    crash_runs(kind, tmp_path, SHORT_RUNS)

