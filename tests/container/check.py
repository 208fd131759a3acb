"""`./dev container`: lint, build and run the bangui image, then prove what the README promises about it.

Runs on a fresh Debian 12 machine of this project's kind (root, podman + runc, no registry reachable):
- podman is configured by a generated containers.conf selected with CONTAINERS_CONF (runc, cgroupfs, ulimits
  within the hard limits), never by edits under /etc; images go to podman's normal store.
- The base is BANGUI_CONTAINER_BASE, else Debian 12 slim from Docker Hub when a registry answers, else a local
  Debian 12 made with mmdebstrap from the Debian mirror (slimmed like the official slim image).
- The container runs with host networking, bound to loopback only, against a private fail2ban-server (no
  firewall changes) whose directory is mounted as the socket directory and, read-only, as the DB directory.

Every check prints one line (`ok` or `FAIL`); the exit status is 0 only when all passed. Usage:
`python -m tests.container.check [--keep]` (--keep leaves the container and volume for inspection).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx

from f2b.blocking import sync_call
from f2b.instance import PrivateServer
from tests.fixtures.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/bangui:check"
LOCAL_BASE = "localhost/bangui-base:bookworm"
HUB_BASE = "docker.io/library/debian:bookworm-slim"
# Names of this run's own: two runs on one host must not remove each other's containers
NAME = f"bangui-check-{os.getpid()}"
VOLUME = f"{NAME}-data"
UID = 10001  # the image's `bangui` user (Containerfile)
SIZE_TARGET_MB = 200.0
# pip inside the build checks HTTPS against the host's CAs: mounted where update-ca-certificates (run when the
# build stage installs ca-certificates) adds local CAs, because a bundle mounted over /etc/ssl/certs breaks it.
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CA_MOUNT = "/usr/local/share/ca-certificates/build-host.crt"
# Slimmed like Docker's debian:*-slim: no docs, man pages or locales, no apt lists; perl (pulled in by usrmerge
# on this mirror's minbase, 47 MB) removed once usr-is-merged stands in for usrmerge.
MMDEBSTRAP = [
    "mmdebstrap", "--variant=minbase", "--include=usr-is-merged", "--aptopt=APT::Install-Recommends \"false\"",
    "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--customize-hook=chroot \"$1\" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q usrmerge perl "
    "libperl5.36 perl-modules-5.36 libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl",
    "--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/*",
    "bookworm", "-",
]


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.figures: dict[str, str] = {}

    def run(self, name: str, fn: Callable[[], str | None]) -> bool:
        started = time.monotonic()
        try:
            detail = fn() or ""
        except Exception as exc:  # a failed check is reported, and the next checks still run where they can
            self.failed.append(name)
            print(f"FAIL {name}: {type(exc).__name__}: {exc}", flush=True)
            return False
        print(f"ok   {name} ({time.monotonic() - started:.1f} s){': ' + detail if detail else ''}", flush=True)
        return True


def sh(*args: str, check: bool = True, timeout: float = 600, **kw: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and result.returncode != 0:
        raise RuntimeError(f"`{' '.join(args)}` exited {result.returncode}:\n{result.stdout[-2000:]}"
                           f"{result.stderr[-3000:]}")
    return result


def podman(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return sh("podman", *args, **kw)


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (httpx.HTTPError, OSError, RuntimeError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


def write_containers_conf(directory: Path) -> Path:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 1048576 if hard == resource.RLIM_INFINITY else hard
    path = directory / "containers.conf"
    path.write_text(f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc=32768:32768"]\n'
                    '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
    return path


def choose_base() -> str:
    if os.environ.get("BANGUI_CONTAINER_BASE"):
        return os.environ["BANGUI_CONTAINER_BASE"]
    for image in (HUB_BASE, LOCAL_BASE):
        if podman("image", "exists", image, check=False).returncode == 0:
            return image
    if podman("pull", "-q", HUB_BASE, check=False, timeout=60).returncode == 0:
        return HUB_BASE
    mm = subprocess.Popen(MMDEBSTRAP, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    imported = subprocess.run(["podman", "import", "-", LOCAL_BASE], stdin=mm.stdout, capture_output=True,
                              text=True, timeout=900)
    _, err = mm.communicate(timeout=60)
    if mm.returncode != 0 or imported.returncode != 0:
        raise RuntimeError(f"mmdebstrap base failed:\n{err.decode(errors='replace')[-3000:]}{imported.stderr}")
    return LOCAL_BASE


def dangling_images() -> list[str]:
    return podman("images", "--quiet", "--no-trunc", "--filter", "dangling=true").stdout.split()


def config_dir_writable(work: Path) -> str:
    """README "Container", non-root: a configuration dir with group 10001 and g+rwX is writable by the image's
    user (atomic .local writes: a temporary file renamed in place), and a plain root-owned one is not."""
    conf = work / "fail2ban-conf"
    (conf / "jail.d").mkdir(parents=True)
    (conf / "jail.conf").write_text("[DEFAULT]\n")
    conf.chmod(0o755)
    (conf / "jail.d").chmod(0o755)
    write = ("set -e; f=/etc/fail2ban/jail.d/zz-check.local; printf '[sshd]\\n' > $f.tmp; mv $f.tmp $f; "
             "test -s $f")

    def attempt() -> subprocess.CompletedProcess[str]:
        return podman("run", "--rm", "--network", "none", "-v", f"{conf}:/etc/fail2ban", "--entrypoint", "sh",
                      IMAGE, "-c", write, check=False)

    if attempt().returncode == 0:
        raise RuntimeError("a root-owned 0755 config dir was writable by uid 10001: the check proves nothing")
    subprocess.run(["chgrp", "-R", str(UID), str(conf)], check=True)  # the README's commands
    subprocess.run(["chmod", "-R", "g+rwX", str(conf)], check=True)
    result = attempt()
    if result.returncode != 0:
        raise RuntimeError(f"not writable after chgrp -R 10001 + chmod -R g+rwX: {result.stderr[-1000:]}")
    return "chgrp -R 10001 + chmod -R g+rwX on the config dir: uid 10001 writes jail.d/*.local"


class Run:
    """The container under test and the private fail2ban it talks to."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.url = f"http://[::1]:{self.port}"  # bound to [::] (an IPv6 wildcard: the healthcheck must find it)
        f2b_dir = work / "f2b"
        f2b_dir.mkdir(mode=0o755)
        self.fail2ban = PrivateServer(f2b_dir)
        self.token = ""

    def start_fail2ban(self) -> None:
        self.fail2ban.start()
        # Grant the image's non-root user access the way the README tells a host admin to: group + g+rw.
        os.chown(self.fail2ban.socket, 0, UID)
        os.chmod(self.fail2ban.socket, 0o660)
        os.chown(self.fail2ban.dbfile, 0, UID)
        os.chmod(self.fail2ban.dbfile, 0o640)

    def create(self) -> None:
        f2b_dir = str(self.fail2ban.base_dir)
        podman("volume", "create", VOLUME)
        # --read-only: podman mounts a fresh /run without /run/.containerenv (issue 20 item 7)
        podman("run", "-d", "--name", NAME, "--network", "host", "--restart", "unless-stopped", "--read-only",
               "-v", f"{f2b_dir}:/var/run/fail2ban", "-v", f"{f2b_dir}:/var/lib/fail2ban:ro",
               "-v", f"{VOLUME}:/var/lib/bangui",
               "-e", "BANGUI_FAIL2BAN_SOCKET=/var/run/fail2ban/f2b.sock",
               "-e", "BANGUI_FAIL2BAN_DB=/var/lib/fail2ban/fail2ban.sqlite3",
               "-e", "BANGUI_HISTORY_SYNC_SECONDS=2",
               IMAGE, "--bind", f"[::]:{self.port}", "--workers", "2")  # a --bind flag: healthcheck finds it

    def live(self) -> bool:
        return httpx.get(self.url + "/api/v1/health/live", timeout=2).status_code == 200

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.url + "/api/v1" + path, timeout=15,
                             headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def worker_pids(self) -> list[int]:
        script = ("import os\nfor p in os.listdir('/proc'):\n if p.isdigit() and int(p) != os.getpid():\n  try: "
                  "c=open(f'/proc/{p}/cmdline','rb').read()\n  except OSError: continue\n  if b'spawn_main' in c: "
                  "print(p)")
        return [int(p) for p in podman("exec", NAME, "python3", "-c", script).stdout.split()]

    def rss_mb(self, pid: int) -> float:
        status = podman("exec", NAME, "cat", f"/proc/{pid}/status").stdout
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return kb / 1024

    def inspect(self, fmt: str) -> str:
        return podman("inspect", "--format", fmt, NAME).stdout.strip()

    def cleanup(self) -> None:
        podman("rm", "-f", "-t", "0", NAME, check=False)
        podman("volume", "rm", "-f", VOLUME, check=False)
        self.fail2ban.close()


def banned(run: Run, jail: str, ip: str) -> bool:
    code, ips = sync_call(run.fail2ban.socket, "get", jail, "banip", timeout=5)
    return code == 0 and ip in ips


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the container and its volume afterwards")
    opts = parser.parse_args()
    checks = Checks()
    work = Path(tempfile.mkdtemp(prefix="bgct-", dir="/tmp"))
    work.chmod(0o755)
    os.environ["CONTAINERS_CONF"] = str(write_containers_conf(work))
    os.chdir(ROOT)

    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    checks.run("hadolint Containerfile", lambda: sh(hadolint, "--config", ".hadolint.yaml", "Containerfile").stdout)
    missing = [tool for tool in ("podman", "runc", "mmdebstrap") if not shutil.which(tool)]
    if missing:
        print(f"FAIL tools: missing {', '.join(missing)}: apt-get install {' '.join(missing)}")
        return 1
    base = ""

    def base_image() -> str:
        nonlocal base
        base = choose_base()
        return base

    def build() -> str:
        mounts = ["-v", f"{CA_BUNDLE}:{CA_MOUNT}:ro"] if Path(CA_BUNDLE).exists() else []
        before = set(dangling_images())
        podman("build", "--format", "docker", "--pull=never", "--network", "host", *mounts,
               "--build-arg", f"BASE={base}", "-t", IMAGE, "-f", "Containerfile", ".", timeout=1200)
        # the build stage's image (~240 MB) and the image this tag named before stay behind untagged: remove
        # those this build left (not another run's, which may still be building from its own)
        left = sorted(set(dangling_images()) - before)
        if left:
            podman("rmi", *left, check=False)
        checks.figures["dangling images left by the build"] = str(len(set(dangling_images()) - before))
        size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout) / 1e6
        checks.figures["image size"] = f"{size:.1f} MB"
        if size > SIZE_TARGET_MB:
            raise RuntimeError(f"image is {size:.1f} MB, over the {SIZE_TARGET_MB:g} MB target")
        return f"{IMAGE} from {base}, {size:.1f} MB (target <= {SIZE_TARGET_MB:g})"

    if not (checks.run("base image", base_image) and checks.run("podman build", build)):
        return report(checks)

    def image_contents() -> str:
        image = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
        config = image["Config"]
        test = (image.get("Healthcheck") or config.get("Healthcheck") or {}).get("Test")
        if test != ["CMD", "bangui", "healthcheck"]:
            raise RuntimeError(f"HEALTHCHECK is {test!r}, not exec-form `bangui healthcheck`")
        if config.get("User", "") in ("", "0", "root", "0:0"):
            raise RuntimeError("the image runs as root")
        probe = ("import importlib.util as u, sys; bad = [m for m in ('pip', 'setuptools') if u.find_spec(m)]; "
                 "print(bad); sys.exit(1 if bad else 0)")
        podman("run", "--rm", "--network", "none", "--entrypoint", "/opt/bangui/bin/python", IMAGE, "-c", probe)
        podman("run", "--rm", "--network", "none", "--entrypoint", "sh", IMAGE, "-c",
               "! command -v pip && ! command -v pip3 && /usr/bin/python3 -c 'import fail2ban.server.filter'")
        return f"healthcheck {test}, user {config['User']}, no pip/setuptools, fail2ban modules importable"

    checks.run("image contents", image_contents)
    checks.run("config dir writable (non-root)", lambda: config_dir_writable(work))
    run = Run(work)
    try:
        prove(checks, run)
    finally:
        if not opts.keep:
            run.cleanup()
        else:
            run.fail2ban.close()
        shutil.rmtree(work, ignore_errors=True)
    return report(checks)


def prove(checks: Checks, run: Run) -> None:
    if not checks.run("private fail2ban", lambda: run.start_fail2ban() or run.fail2ban.socket):
        return
    if not checks.run("container starts", lambda: (run.create(), wait_for("liveness", run.live, 60))
                      and f"{run.url}, host network, loopback"):
        print(podman("logs", NAME, check=False).stderr[-3000:])
        return

    def healthcheck() -> str:
        wait_for("podman healthcheck run", lambda: podman("healthcheck", "run", NAME, check=False).returncode == 0)
        return "`podman healthcheck run` exit 0 (--read-only, bind [::] given as a serve flag)"

    checks.run("healthcheck", healthcheck)

    def token() -> str:
        run.token = podman("exec", NAME, "bangui", "token", "create", "--name", "check", "--role",
                           "operator").stdout.strip()
        assert run.token.startswith("bgt_"), run.token
        assert run.api("GET", "/health").status_code == 200
        return "podman exec bangui token create"

    if not checks.run("token", token):
        return

    def ban_unban() -> str:
        reply = run.api("POST", "/jails/sshd/bans", json={"ips": ["192.0.2.7", "2001:db8::7"]})
        assert reply.status_code in (200, 201), reply.text
        assert banned(run, "sshd", "192.0.2.7") and banned(run, "sshd", "2001:db8::7"), "not banned in fail2ban"
        reply = run.api("DELETE", "/jails/sshd/bans/2001:db8::7")
        assert reply.status_code in (200, 204), reply.text
        assert not banned(run, "sshd", "2001:db8::7"), "still banned in fail2ban"
        return "POST /jails/sshd/bans, DELETE /jails/sshd/bans/{ip}, checked on fail2ban's socket"

    checks.run("ban and unban", ban_unban)

    def history_sync() -> str:
        run.api("POST", "/jobs/history_sync/run")
        job: dict[str, Any] = {}

        def synced() -> bool:
            nonlocal job
            job = next(j for j in run.api("GET", "/jobs").json()["jobs"] if j["name"] == "history_sync")
            return job["last_status"] == "ok" and job["runs"] >= 2
        wait_for("history_sync ok", synced, 30)
        return "reads fail2ban's DB through the read-only mount"

    checks.run("history sync", history_sync)

    def filter_test() -> str:
        line = "2026-11-30T04:00:00+00:00 host sshd[42]: Failed password for root from 192.0.2.77 port 40000 ssh2"
        reply = run.api("POST", "/filters/test", json={"filter": "sshd", "lines": [line]})
        assert reply.status_code == 200, reply.text
        assert reply.json()["matched"] == 1 and reply.json()["matches"][0]["ip"] == "192.0.2.77", reply.text
        return "POST /filters/test with the image's Debian sshd filter, run by fail2ban's own code"

    checks.run("filter test", filter_test)

    def metrics() -> str:
        scraper = podman("exec", NAME, "bangui", "token", "create", "--name", "prometheus", "--role",
                         "metrics").stdout.strip()
        reply = httpx.get(run.url + "/metrics", headers={"Authorization": f"Bearer {scraper}"}, timeout=15)
        assert reply.status_code == 200, reply.text
        assert "f2b_jail_banned_current{jail=\"sshd\"}" in reply.text and "bangui_http_requests_total" in reply.text
        assert httpx.get(run.url + "/metrics", timeout=15).status_code == 401
        return "GET /metrics with a metrics token (multiprocess files in the data volume)"

    checks.run("metrics", metrics)

    def restart_keeps_data() -> str:
        podman("restart", "-t", "10", NAME)
        wait_for("liveness after restart", run.live, 60)
        assert run.api("GET", "/health").status_code == 200, "the token did not survive"
        events = run.api("GET", "/history", params={"ip": "192.0.2.7"}).json()
        assert events.get("items") or events.get("events"), events
        return "token and history kept in the volume"

    checks.run("restart keeps data", restart_keeps_data)

    def worker_crash() -> str:
        restarts = int(run.inspect("{{.RestartCount}}"))
        pids = run.worker_pids()
        checks.figures["RSS per worker"] = ", ".join(f"{run.rss_mb(p):.1f} MB" for p in pids)
        podman("exec", NAME, "sh", "-c", f"kill -9 {pids[0]}")
        wait_for("a restart by the policy", lambda: int(run.inspect("{{.RestartCount}}")) > restarts, 30)
        died = podman("events", "--stream=false", "--filter", f"container={NAME}", "--filter", "event=died",
                      "--format", "{{.ContainerExitCode}}").stdout.split()
        assert died and died[-1] not in ("", "0"), f"exit codes of the container's deaths: {died}"
        wait_for("liveness after the crash", run.live, 60)
        assert run.api("GET", "/health").status_code == 200
        return f"worker {pids[0]} SIGKILLed -> container exited {died[-1]} -> restarted by the policy"

    checks.run("worker crash restarts", worker_crash)

    def demo_auto() -> str:
        port = free_port()
        podman("run", "-d", "--name", f"{NAME}-demo", "--network", "host", IMAGE, "--demo", "auto", "--bind",
               f"127.0.0.1:{port}")
        try:
            wait_for("the demo's liveness", lambda: httpx.get(f"http://127.0.0.1:{port}/api/v1/health/live",
                                                              timeout=2).status_code == 200, 60)
            logs = podman("logs", f"{NAME}-demo").stderr
            assert "private demo fail2ban" in logs and "Traceback" not in logs, logs[-2000:]
        finally:
            podman("rm", "-f", "-v", "-t", "0", f"{NAME}-demo", check=False)
        return "--demo auto without a socket starts Debian's fail2ban-server privately, no traceback"

    checks.run("demo auto", demo_auto)

    def without_db_mount() -> str:
        name, port = f"{NAME}-nodb", free_port()
        podman("run", "-d", "--name", name, "--network", "host", "-v", f"{run.fail2ban.base_dir}:/var/run/fail2ban",
               "-e", "BANGUI_FAIL2BAN_SOCKET=/var/run/fail2ban/f2b.sock", "-e", "BANGUI_HISTORY_SYNC_SECONDS=1",
               IMAGE, "--bind", f"127.0.0.1:{port}", "--workers", "1")
        try:
            url = f"http://127.0.0.1:{port}/api/v1"
            wait_for("liveness", lambda: httpx.get(url + "/health/live", timeout=2).status_code == 200, 60)
            viewer = podman("exec", name, "bangui", "token", "create", "--name", "v", "--role", "viewer").stdout.strip()
            headers = {"Authorization": f"Bearer {viewer}"}
            wait_for("history_sync failing in /health", lambda: httpx.get(url + "/health", headers=headers, timeout=5)
                     .json()["history_sync"]["status"] == "failing", 30)
            time.sleep(4)  # several more failed runs
            logs = podman("logs", name).stderr
            warnings = logs.count("mount fail2ban's database directory read-only")
            assert warnings == 1 and "Traceback" not in logs, logs[-3000:]
        finally:
            podman("rm", "-f", "-v", "-t", "0", name, check=False)
        return "one warning naming the mount, /health history_sync failing, no traceback"

    checks.run("no DB mount", without_db_mount)


def report(checks: Checks) -> int:
    for name, value in checks.figures.items():
        print(f"figure {name}: {value}")
    if checks.failed:
        print(f"container checks FAILED: {', '.join(checks.failed)}")
        return 1
    print("container checks: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
