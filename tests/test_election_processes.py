"""The leader election seen through HTTP, with real `bangui serve` processes on one data dir.

The instrumented job is tests/jobs/probe_jobs.py (loaded with BANGUI_JOBS_MODULE): each run appends
`pid start` when it begins and `pid start end` when it ends, where `start` is the run's fenced
`last_started` from the store. tests/jobs/test_leader.py covers the same election without HTTP; here
the leader is found, and takeovers are timed, the way an operator sees them: `GET /api/v1/health`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.fixtures.processes import ServerProcess
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.processes
REPO = Path(__file__).resolve().parents[1]
JOBS_MODULE = "tests.jobs.probe_jobs:JOBS"


def create_token(data_dir: Path, role: str = "operator") -> dict[str, str]:
    """A Bearer header for a token made with the CLI (operator: may also POST run-now)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANGUI_")}
    out = subprocess.run([sys.executable, "-m", "cli", "token", "create", "--name", f"t-{role}", "--role", role,
                          "--data-dir", str(data_dir)], capture_output=True, text=True, check=True, env=env,
                         cwd=REPO).stdout.strip()
    assert out.startswith("bgt_"), out
    return {"Authorization": f"Bearer {out}"}


def probe_env(probe_file: Path, interval: float, seconds: float) -> dict[str, str]:
    return {"BANGUI_JOBS_MODULE": JOBS_MODULE, "PROBE_FILE": str(probe_file),
            "PROBE_INTERVAL": str(interval), "PROBE_SECONDS": str(seconds)}


def fresh_get(url: str, headers: dict[str, str], timeout: float = 5.0) -> httpx.Response:
    """One request on a new connection, so that any worker may answer."""
    with httpx.Client(timeout=timeout) as client:
        return client.get(url, headers=headers)


def health(server: ServerProcess, auth: dict[str, str]) -> dict[str, Any]:
    reply = fresh_get(server.url + "/api/v1/health", auth)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def wait_leader(server: ServerProcess, auth: dict[str, str], newer_than: int = 0,
                timeout: float = 5.0) -> tuple[dict[str, Any], float]:
    """Poll `server`'s health until it names a leader with an epoch above `newer_than`: (leader, seconds)."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < timeout:
        last = health(server, auth)["leader"]
        if last and last["epoch"] > newer_than:
            return last, time.monotonic() - started
        time.sleep(0.002)
    raise AssertionError(f"no leader newer than epoch {newer_than} within {timeout}s (last: {last})")


@dataclass
class Run:
    pid: int
    start: float  # the fenced last_started of the run
    end: float | None  # None: no end line (killed, or still running)


def read_runs(probe_file: Path) -> list[Run]:
    """The probe's runs by start time; a run whose process was killed has no end."""
    runs: dict[tuple[int, str], Run] = {}
    if not probe_file.exists():
        return []
    for line in probe_file.read_text().splitlines():
        fields = line.split()
        assert len(fields) in (2, 3), f"malformed probe line {line!r}"
        key = (int(fields[0]), fields[1])
        run = runs.setdefault(key, Run(int(fields[0]), float(fields[1]), None))
        if len(fields) == 3:
            run.end = float(fields[2])
    return sorted(runs.values(), key=lambda r: r.start)


def assert_runs_never_overlap(runs: list[Run], interval: float, killed: dict[int, float]) -> None:
    """Consecutive runs: the next starts after the previous ended (for a killed process: after the
    kill), and not within one interval of the previous start. A run without end is either the
    killed leader's last one or the one running now (the last of all)."""
    for i, (run, nxt) in enumerate(zip(runs, runs[1:], strict=False)):
        end = run.end if run.end is not None else killed.get(run.pid)
        assert end is not None, f"run {i} {run} has no end, was not killed, and is not the last"
        assert nxt.start >= end, f"runs overlap: {run} and {nxt}"
        assert nxt.start - run.start >= interval - 1e-3, f"two runs within one interval: {run} then {nxt}"


def owner(servers: list[ServerProcess], pid: int) -> ServerProcess:
    """The server whose worker is `pid`."""
    matches = [s for s in servers if pid in s.worker_pids()]
    assert len(matches) == 1, f"leader pid {pid} is not exactly one server's worker"
    return matches[0]


@pytest.mark.timeout(60)
def test_one_worker_of_three_runs_the_jobs_and_every_worker_names_it(bangui_server: Any, tmp_path: Path) -> None:
    data_dir, probe_file, interval = tmp_path / "data", tmp_path / "probe.log", 0.3
    auth = create_token(data_dir, "viewer")
    server = bangui_server(workers=3, data_dir=data_dir, env=probe_env(probe_file, interval, 0.05))
    workers = set(server.worker_pids())
    assert len(workers) == 3
    wait_for(lambda: len([r for r in read_runs(probe_file) if r.end]) >= 5, 10, "five probe runs")

    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: health(server, auth), range(90)))
    answered = {b["worker_pid"] for b in bodies}
    assert len(answered) >= 2 and answered <= workers, f"workers {answered} answered; workers are {workers}"
    leaders = {(b["leader"]["pid"], b["leader"]["epoch"]) for b in bodies}
    assert len(leaders) == 1, f"workers disagree on the leader: {leaders}"
    ((leader_pid, _),) = leaders
    assert leader_pid in workers

    runs = read_runs(probe_file)
    assert {r.pid for r in runs} == {leader_pid}, f"the probe ran in {({r.pid for r in runs})}"
    assert_runs_never_overlap(runs, interval, {})


@pytest.mark.timeout(90)
def test_sigkilled_leaders_are_replaced_at_once_without_overlap_or_early_rerun(
        bangui_server: Any, tmp_path: Path, seeded_random: random.Random) -> None:
    data_dir, probe_file, interval = tmp_path / "data", tmp_path / "probe.log", 0.5
    auth = create_token(data_dir, "viewer")
    env = probe_env(probe_file, interval, 0.2)
    servers = [bangui_server(workers=1, data_dir=data_dir, env=env) for _ in range(3)]
    leader, _ = wait_leader(servers[0], auth)
    epochs, leaders, killed, takeovers = [leader["epoch"]], [leader["pid"]], {}, []
    for _ in range(5):
        time.sleep(seeded_random.uniform(0.6, 1.1))  # kill at varying points of the probe's cycle
        victim = owner(servers, leader["pid"])
        survivor = next(s for s in servers if s is not victim)
        killed[leader["pid"]] = time.time()
        os.kill(leader["pid"], signal.SIGKILL)
        leader, took = wait_leader(survivor, auth, newer_than=epochs[-1])
        takeovers.append(took)
        assert leader["pid"] not in killed
        assert owner(servers, leader["pid"]) is not victim
        epochs.append(leader["epoch"])
        leaders.append(leader["pid"])
        # hypercorn's main process ends when its worker dies; reap it (and anything left) and restart.
        assert victim.proc is not None
        try:
            victim.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            victim.signal_group(signal.SIGKILL)
            victim.proc.wait(timeout=10)
        victim.signal_group(signal.SIGKILL)
        servers.remove(victim)
        servers.append(bangui_server(workers=1, data_dir=data_dir, env=env))
    print(f"takeover seen through HTTP: {', '.join(f'{t * 1000:.0f}' for t in takeovers)} ms")
    assert epochs == sorted(set(epochs)), f"epochs not strictly increasing: {epochs}"
    assert max(takeovers) < 5.0

    time.sleep(interval)
    runs = read_runs(probe_file)
    ran = {r.pid for r in runs}
    assert set(leaders) <= ran, f"leaders {leaders} but the probe ran only in {ran}"
    assert ran <= set(leaders), f"the probe ran in non-leaders: {ran - set(leaders)}"
    assert_runs_never_overlap(runs, interval, killed)


@pytest.mark.timeout(60)
def test_a_gracefully_stopped_leader_hands_over_without_a_timeout(bangui_server: Any, tmp_path: Path,
                                                                 seeded_random: random.Random) -> None:
    data_dir, probe_file, interval, run_s = tmp_path / "data", tmp_path / "probe.log", 0.5, 0.1
    auth = create_token(data_dir, "viewer")
    env = probe_env(probe_file, interval, run_s)
    servers = [bangui_server(workers=1, data_dir=data_dir, env=env) for _ in range(3)]
    leader, _ = wait_leader(servers[0], auth)
    handovers = []
    for _ in range(3):
        time.sleep(seeded_random.uniform(0.3, 0.8))
        victim = owner(servers, leader["pid"])
        survivor = next(s for s in servers if s is not victim)
        assert victim.proc is not None
        victim.proc.send_signal(signal.SIGTERM)  # what ServerProcess.stop() does first: the graceful path
        successor, took = wait_leader(survivor, auth, newer_than=leader["epoch"])
        handovers.append(took)
        # Wait here rather than in stop(): its second SIGTERM could land in the interpreter's finalization
        # (signal handlers already reset to the default) and kill the exiting process with -15.
        assert victim.proc.wait(timeout=10) == 0, victim.output()
        victim.stop()
        assert owner(servers, successor["pid"]) is not victim
        servers.remove(victim)
        servers.append(bangui_server(workers=1, data_dir=data_dir, env=env))
        leader = successor
    print(f"graceful handover seen through HTTP: {', '.join(f'{t * 1000:.0f}' for t in handovers)} ms")
    # The stale threshold is 15 s; a handover that waited for any timeout would take seconds.
    assert max(handovers) < 2.0, handovers
    assert_runs_never_overlap(read_runs(probe_file), interval, {})


@pytest.mark.timeout(60)
def test_a_graceful_stop_of_several_workers_lets_the_leader_finish_its_job(bangui_server: Any,
                                                                           tmp_path: Path) -> None:
    """SIGTERM to the main process of `serve --workers 3` while the leader runs a job of 1.5 s: hypercorn 0.18
    SIGTERMs the other workers as soon as one has exited (the followers, at once), which killed the leader
    mid-job, before its lifespan could finish the job and withdraw its record."""
    data_dir, probe_file = tmp_path / "data", tmp_path / "probe.log"
    auth = create_token(data_dir, "viewer")
    server = bangui_server(workers=3, data_dir=data_dir, env=probe_env(probe_file, 0.3, 1.5))
    leader, _ = wait_leader(server, auth)
    wait_for(lambda: any(r.pid == leader["pid"] and r.end is None for r in read_runs(probe_file)), timeout=10,
             what="the leader in the middle of a run")
    workers = server.worker_pids()
    assert server.proc is not None and leader["pid"] in workers
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=20) == 0, server.output()
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")], "workers outlived the main process"
    last = [r for r in read_runs(probe_file) if r.pid == leader["pid"]][-1]
    assert last.end is not None, f"the leader was killed mid-run: {last}\n{server.output()}"
    assert "interrupted by the previous leader" not in server.output()


@pytest.mark.timeout(60)
def test_job_state_survives_a_crash_of_the_whole_server_without_a_burst(bangui_server: Any, tmp_path: Path) -> None:
    data_dir, probe_file, interval = tmp_path / "data", tmp_path / "probe.log", 8.0
    auth = create_token(data_dir, "viewer")
    env = probe_env(probe_file, interval, 0.1)
    server = bangui_server(workers=2, data_dir=data_dir, env=env)
    wait_for(lambda: any(r.end for r in read_runs(probe_file)), 10, "the first probe run")
    before = {j["name"]: j for j in fresh_get(server.url + "/api/v1/jobs", auth).json()["jobs"]}
    assert before["probe"]["runs"] == 1 and before["snapshot"]["runs"] >= 1
    (first,) = read_runs(probe_file)

    server.signal_group(signal.SIGKILL)
    assert server.proc is not None
    server.proc.wait(timeout=10)
    again = bangui_server(workers=2, data_dir=data_dir, env=env)
    restarted = time.time()
    assert restarted < first.start + interval, "the restart took longer than the interval: nothing to test"
    after = {j["name"]: j for j in fresh_get(again.url + "/api/v1/jobs", auth).json()["jobs"]}
    for name, old in before.items():
        new = after[name]
        assert new["runs"] >= old["runs"], (old, new)
        if new["last_started"] != old["last_started"]:  # it may have run again, but only once due
            assert new["runs"] > old["runs"] and new["last_started"] >= old["next_due"], (old, new)
    assert after["probe"]["runs"] == 1 and after["probe"]["last_started"] == before["probe"]["last_started"]
    assert after["probe"]["next_due"] == before["probe"]["next_due"]

    wait_for(lambda: len([r for r in read_runs(probe_file) if r.end]) >= 2, interval + 5, "the second probe run")
    runs = read_runs(probe_file)
    assert len(runs) == 2 and runs[1].pid in again.worker_pids()
    assert runs[1].start >= first.start + interval, f"re-run {runs[1].start - first.start:.3f}s after the last"
    # and not missed either: due within the jitter (10%), plus the scheduler's poll
    assert runs[1].start <= first.start + interval * 1.1 + 0.5


@pytest.mark.timeout(60)
def test_run_now_is_run_by_the_leader_whichever_worker_receives_it(bangui_server: Any, tmp_path: Path) -> None:
    data_dir, probe_file = tmp_path / "data", tmp_path / "probe.log"
    auth = create_token(data_dir, "operator")
    server = bangui_server(workers=3, data_dir=data_dir, env=probe_env(probe_file, 600.0, 0.05))
    wait_for(lambda: any(r.end for r in read_runs(probe_file)), 10, "the first probe run")
    leader_pid = health(server, auth)["leader"]["pid"]
    assert leader_pid in server.worker_pids()

    # A keep-alive connection is served by the worker that accepted it: one is opened to each worker right before
    # its POST (one opened earlier may have idled past the keep-alive timeout on a loaded machine and come back
    # through another worker).
    def connection_to(pid: int) -> httpx.Client:
        for _ in range(200):
            client = httpx.Client(base_url=server.url, headers=auth, timeout=5)
            if client.get("/api/v1/health").json()["worker_pid"] == pid:
                return client
            client.close()
        raise AssertionError(f"could not reach worker {pid}")

    latencies = {}
    for pid in sorted(server.worker_pids(), key=lambda p: p == leader_pid):  # followers first
        client = connection_to(pid)
        try:
            count = len(read_runs(probe_file))
            sent = time.time()
            reply = client.post("/api/v1/jobs/probe/run")
            assert reply.status_code == 202, reply.text
            assert reply.json()["leader_pid"] == leader_pid
            assert client.get("/api/v1/health").json()["worker_pid"] == pid  # still the same connection
            wait_for(lambda: len(read_runs(probe_file)) > count, 5.0,  # noqa: B023 (called at once)
                     f"the requested run (POST served by worker {pid})")
            new = read_runs(probe_file)[-1]
            assert new.pid == leader_pid, f"POST served by {pid}: the probe ran in {new.pid}, not the leader"
            latencies[pid] = new.start - sent
            wait_for(lambda: read_runs(probe_file)[-1].end, 5.0, "the requested run's end")
        finally:
            client.close()
    print("run-now latency by receiving worker: " + ", ".join(
        f"{pid}{' (leader)' if pid == leader_pid else ''}: {s * 1000:.0f} ms" for pid, s in latencies.items()))
    assert max(latencies.values()) < 5.0  # at once, not at the job's next run 600 s later
