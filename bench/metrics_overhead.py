"""What counting a request costs on the hot path, and what a scrape costs.

    python -m bench.metrics_overhead [--calls 100000]

In one child process per variant (prometheus_client picks its storage when first imported):
- `multiprocess`: `metrics.process.observe_request` with PROMETHEUS_MULTIPROC_DIR set, as under `bangui serve`
  (a counter and a histogram updated in memory-mapped files);
- `in-process`: the same without that variable (plain in-memory values);
- `store write`: the alternative the design rejected, one diskcache `incr` in a transaction per request on a
  data dir like bangui's (what "keep every counter in the shared store" would cost each request).
Then the scrape (`metrics.exposition.render`) with 3 workers' files and 40 route/method/status series. Figures are
medians of 5 rounds in microseconds per call. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, os, statistics, sys, time
calls, variant, data = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rounds = []
if variant == "store write":
    import diskcache
    cache = diskcache.Cache(os.path.join(data, "state"), eviction_policy="none")
    def one(i):
        with cache.transact():
            cache.incr(("http", "/api/v1/health", "GET", 200))
    calls = calls // 20  # ~20x slower: keep the run short
else:
    from metrics import process
    def one(i):
        process.observe_request("/api/v1/jails/{jail}", "GET", 200, 0.0004)
for _ in range(5):
    t = time.perf_counter()
    for i in range(calls):
        one(i)
    rounds.append((time.perf_counter() - t) / calls * 1e6)
print(json.dumps(statistics.median(rounds)))
"""

SCRAPE = r"""
import json, os, statistics, sys, time
from settings import Settings
from store import Store
from metrics import process
from metrics.exposition import render
for i in range(40):
    process.observe_request(f"/api/v1/route{i}", "GET", 200, 0.001)
store = Store(Settings.for_tests(data_dir=sys.argv[1]))
rounds = []
for _ in range(5):
    t = time.perf_counter()
    body = render(store)
    rounds.append((time.perf_counter() - t) * 1e6)
print(json.dumps([statistics.median(rounds), len(body)]))
"""


def child(code: str, args: list[str], env: dict[str, str]) -> object:
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    opts = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BANGUI_", "PROMETHEUS_"))}
    with tempfile.TemporaryDirectory() as tmp:
        mp_dir = Path(tmp) / "metrics"
        mp_dir.mkdir()
        results = {
            "multiprocess": child(CHILD, [str(opts.calls), "multiprocess", tmp],
                                  {**base, "PROMETHEUS_MULTIPROC_DIR": str(mp_dir)}),
            "in-process": child(CHILD, [str(opts.calls), "in-process", tmp], base),
            "store write": child(CHILD, [str(opts.calls), "store write", tmp], base),
        }
        for name, us in results.items():
            print(f"{name:>13}: {us:8.2f} us per request counted")
        for _ in range(2):  # two more workers' files, as with --workers 3
            child(CHILD, ["1000", "multiprocess", tmp], {**base, "PROMETHEUS_MULTIPROC_DIR": str(mp_dir)})
        scrape_us, size = child(SCRAPE, [str(Path(tmp) / "data")], {**base, "PROMETHEUS_MULTIPROC_DIR": str(mp_dir)})
        print(f"       scrape: {scrape_us / 1000:8.2f} ms for {size} bytes (3 workers' files + the store's series)")
    print(f"(measured {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
