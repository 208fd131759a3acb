"""`bangui healthcheck` (the container's HEALTHCHECK) against real servers: IPv4, IPv6, wildcard binds, a
`--bind` given to the `serve` it checks, and a dead port; `--demo auto` without fail2ban-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cli
import healthcheck
from f2b import instance
from tests.fixtures.processes import ServerProcess, free_port

pytestmark = pytest.mark.processes
ROOT = Path(__file__).resolve().parents[1]


def run_check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", "healthcheck", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(("bind", "expected"), [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)), ("0.0.0.0:81", ("127.0.0.1", 81)), ("[::]:82", ("::1", 82)),
    ("[::1]:9000", ("::1", 9000)), ("::1:9001", ("::1", 9001)), ("localhost:5", ("localhost", 5)),
])
def test_target_maps_binds_to_a_connectable_address(bind: str, expected: tuple[str, int]) -> None:
    assert healthcheck.target(bind) == expected


def test_serve_flags_come_from_the_running_bangui_serve(tmp_path: Path) -> None:
    def process(pid: int, argv: bytes, parent: int = 1) -> None:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(argv)
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (python3) S {parent} {pid} {pid} 0 -1")

    process(1, b"/sbin/init\0--bind\0x\0", 0)  # an init (--init) is PID 1; the server is its child
    process(5, b"/usr/bin/python3\0/usr/bin/bangui\0serve\0--bind\0[::1]:1\0", 4)  # not the container's server
    assert healthcheck.serve_flags(cli.build_parser(), tmp_path, container=True) == {}
    process(7, b"/opt/bangui/bin/python3\0/opt/bangui/bin/bangui\0serve\0--bind\0[::1]:9000\0--workers\0" b"3\0")
    process(12, b"/opt/bangui/bin/python3\0-c\0from multiprocessing.spawn import spawn_main\0")
    assert healthcheck.serve_flags(cli.build_parser(), tmp_path, container=True) == {"bind": "[::1]:9000",
                                                                                      "workers": "3"}
    assert healthcheck.serve_flags(cli.build_parser(), tmp_path, container=False) == {}  # a host: flags/env only
    assert healthcheck.serve_flags(cli.build_parser(), tmp_path / "missing", container=True) == {}


@pytest.mark.parametrize("family", ["ipv4", "ipv6", "wildcard6"])
def test_healthcheck_exit_status_follows_the_server(tmp_path: Path, fail2ban: Any, family: str) -> None:
    server = ServerProcess(tmp_path / "data", fail2ban, 1, tmp_path)
    bind = {"ipv4": f"127.0.0.1:{server.port}", "ipv6": f"[::1]:{server.port}",
            "wildcard6": f"[::]:{server.port}"}[family]
    server.args[server.args.index("--bind") + 1] = bind
    if family == "ipv6":
        server.url = f"http://[::1]:{server.port}"
    try:
        server.start()
        live = run_check("--bind", bind, env={**server.env, "BANGUI_DATA_DIR": str(tmp_path / "data")})
        assert live.returncode == 0, live.stderr
        assert "ok" in live.stdout
        ready = run_check("--ready", env={**server.env, "BANGUI_BIND": bind})
        assert ready.returncode == 0, ready.stderr
    finally:
        server.stop()
    dead = run_check("--bind", bind, env=server.env)
    assert dead.returncode == 1
    assert f":{server.port}/api/v1/health/live" in dead.stderr and "Traceback" not in dead.stderr


def test_healthcheck_fails_on_a_port_nobody_serves() -> None:
    result = run_check("--bind", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "refused" in result.stderr.lower()


def test_demo_auto_without_fail2ban_server_is_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no fail2ban-server on PATH, and none at the fallback path
    monkeypatch.setattr(instance, "FALLBACK_BINARY", str(tmp_path / "fail2ban-server"))
    status = cli.main(["serve", "--demo", "auto", "--data-dir", str(tmp_path / "data"),
                       "--fail2ban-socket", str(tmp_path / "none.sock"), "--bind", f"127.0.0.1:{free_port()}"])
    assert status == 2
    err = capsys.readouterr().err
    assert "--demo auto" in err and "fail2ban-server not found" in err and "socket directory" in err


@pytest.mark.parametrize("bind", ["[::]", "[::1]", "127.0.0.1"])
def test_healthcheck_finds_the_address_the_server_listens_on_without_its_flags(tmp_path: Path, fail2ban: Any,
                                                                             bind: str) -> None:
    # `podman run --read-only IMAGE --bind '[::]:18742'`: no /run/.containerenv, so the serve flags are not
    # read; the check has only the image's environment (BANGUI_BIND=0.0.0.0:8080) and finds the real address.
    server = ServerProcess(tmp_path / "data", fail2ban, 2, tmp_path)
    server.args[server.args.index("--bind") + 1] = f"{bind}:{server.port}"
    if bind == "[::1]":
        server.url = f"http://[::1]:{server.port}"
    image_env = {**server.env, "BANGUI_DATA_DIR": str(tmp_path / "data"), "BANGUI_BIND": f"0.0.0.0:{free_port()}"}
    try:
        server.start()
        result = run_check(env=image_env)
        assert result.returncode == 0, result.stderr
        assert f":{server.port}/api/v1/health/live" in result.stdout
        assert run_check("--ready", env=image_env).returncode == 0
    finally:
        assert server.stop() == 0, server.output()
    assert not (tmp_path / "data" / healthcheck.SERVING_FILE).exists()  # removed on a clean stop
    if not healthcheck.serve_flags(cli.build_parser()):  # (a shared CI host may have a stray server as PID 1's child)
        assert run_check(env=image_env).returncode == 1


def test_a_dead_servers_record_is_ignored(tmp_path: Path) -> None:
    (tmp_path / healthcheck.SERVING_FILE).write_text('{"pid": 999999999, "bind": "[::1]:1"}')
    assert healthcheck.served_bind(str(tmp_path)) is None
    assert healthcheck.served_bind(str(tmp_path / "missing")) is None
    healthcheck.record_serving(str(tmp_path), "[::]:18742")
    assert healthcheck.served_bind(str(tmp_path)) == "[::]:18742"


def test_a_record_whose_pid_was_reused_is_a_dead_servers(tmp_path: Path) -> None:
    # A server killed without cleaning up (SIGKILL, OOM, a container stopped hard) leaves its record; its pid is
    # then reused (a restarted container's new server is PID 1 again): alive, but not the server that wrote it.
    healthcheck.record_serving(str(tmp_path), "[::]:18742")
    record = json.loads((tmp_path / healthcheck.SERVING_FILE).read_text())
    assert record["pid"] == os.getpid() and record["started"] is not None
    assert healthcheck.served_bind(str(tmp_path)) == "[::]:18742"
    for pid, started in ((os.getpid(), record["started"] - 1), (1, -1)):  # the same live pid, another process
        (tmp_path / healthcheck.SERVING_FILE).write_text(json.dumps({"pid": pid, "started": started,
                                                                     "bind": "[::1]:1"}))
        assert healthcheck.served_bind(str(tmp_path)) is None
    (tmp_path / healthcheck.SERVING_FILE).write_text(json.dumps({"pid": os.getpid(), "bind": "[::1]:1"}))
    assert healthcheck.served_bind(str(tmp_path)) == "[::1]:1"  # an older record without a start time: pid only


NO_IPV6_CHECK = """
import http.server, socket, subprocess, sys, threading
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
with open("/proc/sys/net/ipv6/conf/lo/disable_ipv6", "w") as f:  # no ::1, as in a container without IPv6
    f.write("1")
class Live(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/api/v1/health/live" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
class Server6(http.server.HTTPServer):
    address_family = socket.AF_INET6
server = Server6(("::", 0), Live)  # a `[::]` bind: the socket takes IPv4 too
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.exit(subprocess.run([sys.executable, "-m", "cli", "healthcheck", "--bind", f"[::]:{server.server_port}"]
                        ).returncode)
"""


def test_an_ipv6_wildcard_bind_is_checked_in_a_container_without_ipv6(tmp_path: Path) -> None:
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no user+network namespace here: {probe.stderr.decode().strip()}")
    env = {**os.environ, "BANGUI_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(["unshare", "-rn", sys.executable, "-c", NO_IPV6_CHECK], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "http://127.0.0.1:" in result.stdout and ": ok" in result.stdout


def test_a_container_without_marker_files_is_told_by_its_pid_1(tmp_path: Path) -> None:
    # `podman run --read-only IMAGE --data-dir /data --bind [::]:9000`: a fresh /run has no .containerenv, the
    # image's BANGUI_DATA_DIR is not where the record is; PID 1 (the server itself, or an init) tells.
    def pid1(argv: bytes) -> Path:
        proc = tmp_path / argv.split(b"\0")[0].decode().replace("/", "_")
        (proc / "1").mkdir(parents=True)
        (proc / "1" / "cmdline").write_bytes(argv)
        (proc / "1" / "stat").write_text("1 (x) S 0 1 1 0 -1")
        return proc

    def in_container(proc: Path) -> bool:
        return healthcheck.in_container(proc, markers=())  # no marker file, as under --read-only

    serve = pid1(b"/opt/bangui/bin/python3\0/opt/bangui/bin/bangui\0serve\0--data-dir\0/data\0--bind\0[::]:9000\0")
    assert in_container(serve)
    assert healthcheck.serve_flags(cli.build_parser(), serve, container=in_container(serve)) == {
        "data_dir": "/data", "bind": "[::]:9000"}
    assert in_container(pid1(b"/run/podman-init\0--\0bangui\0serve\0"))
    assert in_container(pid1(b"catatonit\0-P\0"))
    host = pid1(b"/lib/systemd/systemd\0--system\0")  # a host: its children may be servers of other data dirs
    assert not in_container(host)
    assert not in_container(tmp_path / "no-proc")
    assert healthcheck.in_container(host, markers=(tmp_path / "no-proc",)) is False
    assert healthcheck.in_container(host, markers=(serve,)) is True  # a marker that exists answers first
