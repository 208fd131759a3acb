"""Time of a validated + applied + verified configuration change, end to end over HTTP.

    python -m bench.config_change [--iterations 20]

A private fail2ban-server on a copy of the Debian package's /etc/fail2ban (`f2b.stock`) with 5 jails
enabled (sshd, nginx-http-auth, postfix, dovecot, nginx-botsearch; no-op actions, polling), and a real
`bangui serve --workers 1` whose BANGUI_FAIL2BAN_CONFIG_DIR is that copy. Measured per request:

- PATCH /api/v1/jails/sshd {"maxretry": N}: lock, staged copy of the config dir, fail2ban's own readers
  + engine on it (`check` of f2b/engine.py), atomic write of jail.d/zz-bangui.local, runtime `set`, verify,
  change log. Target (issue 10): under 2 s.
- PUT /api/v1/config/files/jail.d/bench.local (a change that needs a reload): the same validation, then
  `fail2ban-client reload` and the check that all 5 jails are back. Printed for scale (no target).
- POST /api/v1/config/jails/apache-auth/activate with its log file missing (every 5th iteration): applied,
  found failed, rolled back, reloaded and verified again: how long a failed change takes (422 apply_failed).

After each request the value is read back from fail2ban's socket (outside the timing) to prove it applied.
"""

from __future__ import annotations

import argparse
import time

import httpx2 as httpx

from bench.common import bangui, create_token, machine, summary, table, verdict, work_dir
from f2b.blocking import sync_call
from f2b.instance import JailSpec
from f2b.stock import stock_started

JAILS = [JailSpec("sshd"), JailSpec("nginx-http-auth", filter="nginx-http-auth"), JailSpec("postfix"),
         JailSpec("dovecot"), JailSpec("nginx-botsearch")]
TARGET_S = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()
    print(machine())
    with work_dir("bgcfg-") as tmp, stock_started(tmp / "f2b", JAILS) as f2b:
        data = tmp / "data"
        token = create_token(data, role="admin")
        with bangui(data, f2b) as server, httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            patch_s, put_s, failed_s = [], [], []
            etag = None
            for i in range(args.iterations):
                value = 6 + i % 5
                started = time.perf_counter()
                r = http.patch("/api/v1/jails/sshd", json={"maxretry": value})
                patch_s.append(time.perf_counter() - started)
                assert r.status_code == 200, r.text
                assert sync_call(f2b.socket, "get", "sshd", "maxretry") == (0, value)

                body = f"[nginx-http-auth]\nmaxretry = {value + 1}\n".encode()
                started = time.perf_counter()
                r = http.put("/api/v1/config/files/jail.d/bench.local", content=body,
                             headers={"If-Match": etag} if etag else {})
                put_s.append(time.perf_counter() - started)
                assert r.status_code in (200, 201), r.text
                etag = r.headers["etag"]
                assert sync_call(f2b.socket, "get", "nginx-http-auth", "maxretry") == (0, value + 1)
                status = dict(sync_call(f2b.socket, "status")[1])
                assert status["Number of jail"] == 5, status
                if i % 5 == 0:
                    started = time.perf_counter()
                    r = http.post("/api/v1/config/jails/apache-auth/activate")
                    failed_s.append(time.perf_counter() - started)
                    assert r.status_code == 422 and r.json()["error"]["code"] == "apply_failed", r.text
                    assert dict(sync_call(f2b.socket, "status")[1])["Number of jail"] == 5
    rows = []
    for name, values, target in (("PATCH maxretry (runtime + persisted)", patch_s, TARGET_S),
                                 ("PUT jail.d/*.local (reload + verify)", put_s, None),
                                 ("activation failing at start (rolled back)", failed_s, None)):
        median, p90 = summary(values)
        rows.append([name, len(values), f"{median * 1000:.0f}", f"{p90 * 1000:.0f}", f"{max(values) * 1000:.0f}",
                     f"< {target:g} s" if target else "-", verdict(median, target, False) if target else "-"])
    print(table(["change (5 jails, stock Debian config)", "n", "median ms", "p90 ms", "max ms", "target", "result"],
                rows))


if __name__ == "__main__":
    main()
