"""The instruments a process updates: HTTP requests and job runs.

Under `bangui serve` prometheus_client keeps their values in memory-mapped files in PROMETHEUS_MULTIPROC_DIR
(metrics/files.py): an update is a write to mapped memory under a lock, no syscall and no store write (measured
by `bench.metrics_overhead`), and a scrape by any worker sums every worker's files, so all answer alike, including
the counts of a worker that died since. Without that variable (the app in-process, in tests) they are ordinary
in-process values.
"""

from __future__ import annotations

import os
import time

from prometheus_client import Counter, Gauge, Histogram

from metrics.files import ENV

MULTIPROCESS = bool(os.environ.get(ENV))
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0)

REQUESTS = Counter("bangui_http_requests", "HTTP requests answered, by route template, method and status.",
                   ["route", "method", "status"], registry=None)
LATENCY = Histogram("bangui_http_request_duration_seconds", "Time to answer an HTTP request, by route template "
                    "and method.", ["route", "method"], buckets=LATENCY_BUCKETS, registry=None)
JOB_RUNS = Counter("bangui_job_runs", "Background job runs finished, by job.", ["job"], registry=None)
JOB_FAILURES = Counter("bangui_job_failures", "Background job runs that failed or timed out, by job.", ["job"],
                       registry=None)
JOB_DURATION = Histogram("bangui_job_duration_seconds", "Duration of background job runs, by job.", ["job"],
                         buckets=JOB_BUCKETS, registry=None)
JOB_LAST_SUCCESS = Gauge("bangui_job_last_success_timestamp_seconds", "When each job last finished without error "
                         "(Unix time; since this server started).", ["job"], registry=None, multiprocess_mode="max")
ALL = (REQUESTS, LATENCY, JOB_RUNS, JOB_FAILURES, JOB_DURATION, JOB_LAST_SUCCESS)

_requests: dict[tuple[str, str, int], Counter] = {}  # labelled children, so the hot path skips labels()
_latency: dict[tuple[str, str], Histogram] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    method = method if method in METHODS else "other"  # a client's made-up method must not add series
    counter = _requests.get((route, method, status))
    if counter is None:
        counter = _requests.setdefault((route, method, status), REQUESTS.labels(route, method, str(status)))
    counter.inc()
    histogram = _latency.get((route, method))
    if histogram is None:
        histogram = _latency.setdefault((route, method), LATENCY.labels(route, method))
    histogram.observe(seconds)


def observe_job(job: str, status: str, seconds: float) -> None:
    """A finished run (`status` as the scheduler records it); cancelled runs (shutdown) count as runs only."""
    JOB_RUNS.labels(job).inc()
    JOB_DURATION.labels(job).observe(seconds)
    if status in ("error", "timeout"):
        JOB_FAILURES.labels(job).inc()
    elif status == "ok":
        JOB_LAST_SUCCESS.labels(job).set(time.time())
