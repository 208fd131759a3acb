"""Prometheus metrics: `GET /metrics` (token role `metrics` or any user role).

- `metrics.files`: the per-server multiprocess directory (on /dev/shm, see metrics/files.py), set up by
  `bangui serve` before its workers start (no prometheus_client import there).
- `metrics.process`: the instruments each process updates (HTTP requests, job runs), kept by prometheus_client
  in memory-mapped files in that directory, so every worker's scrape sums the same files.
- the request metrics are updated by `handlers.middleware.Edge` (by route template, method and status).
- `metrics.exposition`: the scrape: those files plus the shared store's state (the leader's fail2ban snapshot as
  the `f2b_*` series of the fail2ban exporter, leader, history, blocklists, audit), rendered in the text format.
"""
