"""A minimal leadership candidate process (no HTTP server) and the instrumented `probe` job.

Run: `python -m tests.jobs.candidate DATA_DIR` with PROBE_LOG (file the probe appends
`pid start end` lines to), PROBE_INTERVAL and PROBE_SECONDS (run length) in the environment.
It prints `ready` once it stands as a candidate and stops gracefully on SIGTERM, like a worker's
lifespan does. The probe is loaded through BANGUI_JOBS_MODULE's mechanism (`tests.jobs.candidate:JOBS`).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from core.deps import Deps
from jobs.definitions import Job, JobContext
from jobs.leader import run_candidate
from settings import Settings
from store import Store

PROBE_LOG = os.environ.get("PROBE_LOG", "")
PROBE_INTERVAL = float(os.environ.get("PROBE_INTERVAL", "0.5"))
PROBE_SECONDS = float(os.environ.get("PROBE_SECONDS", "0.1"))


async def probe(ctx: JobContext) -> None:
    """Occupy the job slot for PROBE_SECONDS and append `pid start end` (also when cancelled)."""
    start = time.time()
    try:
        await anyio.sleep(PROBE_SECONDS)
    finally:
        if PROBE_LOG:
            line = f"{os.getpid()} {start:.6f} {time.time():.6f}\n".encode()
            fd = os.open(PROBE_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(fd, line)  # one O_APPEND write: lines of several processes never interleave
            os.close(fd)


JOBS = [Job("probe", every=PROBE_INTERVAL, timeout=30.0, run=probe)]


def make_deps(data_dir: Path, clock: Any = None, **changes: Any) -> Deps:
    """Deps with a real store on `data_dir` (on `clock` if given) and no fail2ban client (the snapshot job
    tolerates that)."""
    settings = Settings.for_tests(data_dir=str(data_dir), **changes)
    store = Store(settings, clock=clock) if clock is not None else Store(settings)
    return Deps(settings, store, None)  # type: ignore[arg-type]


async def main(data_dir: Path) -> None:
    deps = make_deps(data_dir, heartbeat_seconds=0.2, jobs_module="tests.jobs.candidate:JOBS")
    try:
        async with anyio.create_task_group() as tg:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                await tg.start(run_candidate, deps)
                print("ready", flush=True)
                async for _ in signals:
                    break
            tg.cancel_scope.cancel()
    finally:
        deps.store.close()


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]))
