"""An instrumented job for the HTTP process tests (tests/test_election_processes.py).

Load it into a server with `BANGUI_JOBS_MODULE=tests.jobs.probe_jobs:JOBS` (the server's cwd is the
repository root). Configured by the environment (not BANGUI_*: unknown BANGUI_ variables stop the start):
- PROBE_FILE: the file the job appends to (nothing is written when unset);
- PROBE_INTERVAL: the job's interval in seconds (default 0.5);
- PROBE_SECONDS: how long each run occupies the job slot (default 0.1).

Each run appends two lines, each with one O_APPEND write (lines of several processes never interleave):
- `pid start` when the body begins, and
- `pid start end` when it ends (also when cancelled).
`start` is the run's `last_started` as the scheduler recorded it (fenced) in the store before the body
ran, so intervals between runs can be checked exactly; `end` is the wall clock at the body's end. A
SIGKILLed run leaves its `pid start` line without a matching `pid start end` line.
"""

from __future__ import annotations

import os
import time

import anyio

from jobs.definitions import Job, JobContext
from store.base import offload

PROBE_FILE = os.environ.get("PROBE_FILE", "")
PROBE_INTERVAL = float(os.environ.get("PROBE_INTERVAL", "0.5"))
PROBE_SECONDS = float(os.environ.get("PROBE_SECONDS", "0.1"))


def _append(line: str) -> None:
    if PROBE_FILE:
        fd = os.open(PROBE_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


async def probe(ctx: JobContext) -> None:
    record = await offload(ctx.deps.store.jobs.get, ctx.job.name)
    start = (record or {}).get("last_started") or time.time()
    _append(f"{os.getpid()} {start:.6f}\n")
    try:
        await anyio.sleep(PROBE_SECONDS)
    finally:
        _append(f"{os.getpid()} {start:.6f} {time.time():.6f}\n")


JOBS = [Job("probe", every=PROBE_INTERVAL, timeout=30.0, run=probe)]
