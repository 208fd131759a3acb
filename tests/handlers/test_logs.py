"""fail2ban's log through the API: the tail with filters (in process), and the live stream from a real
`bangui serve` process: new lines, rotation, truncation, and a clean end at server shutdown."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from f2b.blocking import sync_call
from f2b.instance import PrivateServer
from handlers.logs import MAX_STREAMS
from tests.fixtures.app import Api
from tests.fixtures.waiting import wait_for


def ban(server: PrivateServer, ip: str) -> None:
    code, _ = sync_call(server.socket, "set", "sshd", "banip", ip)
    assert code == 0


def test_tail_of_fail2ban_log(api: Api, fail2ban: PrivateServer) -> None:
    ban(fail2ban, "192.0.2.61")
    r = api.call("viewer", "GET", "/logs")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["file"] == str(fail2ban.logfile)
    assert body["truncated"] is False
    texts = [line["text"] for line in body["lines"]]
    assert any("Starting Fail2ban" in t for t in texts)
    assert texts[-1] == "[sshd] Ban 192.0.2.61"
    last = body["lines"][-1]
    assert last["level"] == "NOTICE" and last["time"].endswith("Z")
    assert len(fail2ban.logfile.read_text().splitlines()) == len(body["lines"])


def test_a_log_bangui_cannot_read_is_403_log_unreadable(api: Api, fail2ban: PrivateServer) -> None:
    # Tests run as root, who may read any mode: a log file gone from its path (fail2ban still writes to the open
    # file) is what bangui cannot read here, as a 0640 root:adm log is for a non-root bangui.
    fail2ban.logfile.unlink()
    try:
        r = api.call("viewer", "GET", "/logs")
        assert r.status_code == 403, r.text
        error = r.json()["error"]
        assert error["code"] == "log_unreadable" and error["details"]["file"] == str(fail2ban.logfile)
        assert "Traceback" not in r.text
    finally:
        assert sync_call(fail2ban.socket, "flushlogs")[0] == 0  # fail2ban opens its log file again
    assert api.call("viewer", "GET", "/logs").status_code == 200


def test_tail_count_grep_and_level(api: Api, fail2ban: PrivateServer) -> None:
    for i in range(1, 6):
        ban(fail2ban, f"192.0.2.{i}")
    few = api.call("viewer", "GET", "/logs?lines=2").json()
    assert [x["text"] for x in few["lines"]] == ["[sshd] Ban 192.0.2.4", "[sshd] Ban 192.0.2.5"]
    assert few["truncated"] is True
    grep = api.call("viewer", "GET", "/logs?grep=BAN 192.0.2.3").json()["lines"]
    assert [x["text"] for x in grep] == ["[sshd] Ban 192.0.2.3"]
    notices = api.call("viewer", "GET", "/logs?level=notice&lines=1000").json()["lines"]
    assert notices and {x["level"] for x in notices} <= {"NOTICE", "WARNING", "ERROR", "CRITICAL"}
    assert len([x for x in notices if "Ban 192.0.2." in x["text"]]) == 5


@pytest.mark.parametrize("query", ["lines=0", "lines=5001", "lines=ten", "level=LOUD", "grep=" + "x" * 201])
def test_bad_queries(api: Api, query: str) -> None:
    r = api.call("viewer", "GET", "/logs?" + query)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_query")


def test_log_not_in_a_file_is_explained(api: Api, fail2ban: PrivateServer) -> None:
    assert sync_call(fail2ban.socket, "set", "logtarget", "STDERR")[0] == 0
    r = api.call("viewer", "GET", "/logs")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "logtarget_not_file"
    assert "fail2ban.local" in r.json()["error"]["message"]
    assert api.call("viewer", "GET", "/logs/stream").status_code == 409


def test_stream_with_max_seconds_ends_by_itself(api: Api) -> None:
    r = api.call("viewer", "GET", "/logs/stream?max_seconds=0")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.text.endswith("event: end\ndata: {}\n\n")


def sse(text: str) -> tuple[list[dict[str, Any]], str | None]:
    """The data events of an SSE body (as JSON) and the last id."""
    data = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {\"")]
    ids = [line[4:] for line in text.splitlines() if line.startswith("id: ")]
    return data, ids[-1] if ids else None


def test_stream_resumes_after_the_last_event_id(api: Api, fail2ban: PrivateServer) -> None:
    ban(fail2ban, "192.0.2.81")
    inode = fail2ban.logfile.stat().st_ino
    everything, last = sse(api.call("viewer", "GET", f"/logs/stream?after={inode}:0&max_seconds=0.5").text)
    assert everything[0]["text"].startswith("----") and everything[-1]["text"] == "[sshd] Ban 192.0.2.81"
    assert last == f"{inode}:{fail2ban.logfile.stat().st_size}"
    ban(fail2ban, "192.0.2.82")
    ban(fail2ban, "192.0.2.83")
    resumed, _ = sse(api.call("viewer", "GET", "/logs/stream?max_seconds=0.5",
                              headers={"Last-Event-ID": last}).text)
    assert [e["text"] for e in resumed] == ["[sshd] Ban 192.0.2.82", "[sshd] Ban 192.0.2.83"]
    rotated, _ = sse(api.call("viewer", "GET", "/logs/stream?max_seconds=0.5",
                              headers={"Last-Event-ID": f"{inode + 1}:5"}).text)  # another file: from its start
    assert len(rotated) == len(fail2ban.logfile.read_text().splitlines())


# ---- the live stream from a real server process ---------------------------------------------------------

ADMIN_ENV = {"BANGUI_ADMIN_PASSWORD": "stream test password"}


class Events:
    """Reads an SSE response line by line: data payloads (as JSON) and the end event."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines: Iterator[str] = response.iter_lines()

    def until(self, predicate: Any) -> list[str]:
        seen = []
        for line in self.lines:
            seen.append(line)
            if predicate(line):
                return seen
        raise AssertionError(f"stream ended before the expected line; saw {seen[-10:]}")


@pytest.mark.processes
def test_stream_follows_new_lines_rotation_truncation_and_ends_at_shutdown(bangui_server: Any,
                                                                          fail2ban: PrivateServer) -> None:
    server = bangui_server(workers=1, env=ADMIN_ENV)
    login = httpx.post(server.url + "/api/v1/auth/login",
                       json={"username": "admin", "password": ADMIN_ENV["BANGUI_ADMIN_PASSWORD"]}, timeout=10)
    cookie = {"Cookie": f"bangui_session={login.cookies['bangui_session']}"}
    log = Path(fail2ban.logfile)
    with httpx.Client(timeout=httpx.Timeout(30)) as client, \
            client.stream("GET", server.url + "/api/v1/logs/stream?grep=ban", headers=cookie) as response:
        assert response.status_code == 200
        events = Events(response)
        events.until(lambda line: line.startswith(": following"))
        ban(fail2ban, "192.0.2.71")
        events.until(lambda line: line.startswith("data:") and "Ban 192.0.2.71" in line)
        log.rename(log.with_suffix(".log.1"))  # logrotate's default: move away, then fail2ban reopens
        assert sync_call(fail2ban.socket, "flushlogs")[0] == 0
        ban(fail2ban, "192.0.2.72")
        events.until(lambda line: "Ban 192.0.2.72" in line)
        log.write_text("")  # copytruncate
        ban(fail2ban, "192.0.2.73")
        seen = events.until(lambda line: "Ban 192.0.2.73" in line)
        assert not any("Starting" in line for line in seen)  # grep applies to the stream too
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        events.until(lambda line: line == "event: end")
        stopper.join(30)
    assert server.proc is not None and server.proc.returncode == 0


@pytest.mark.processes
def test_streams_a_client_leaves_are_closed_so_no_slot_leaks(bangui_server: Any, fail2ban: PrivateServer) -> None:
    server = bangui_server(workers=1, env=ADMIN_ENV)
    login = httpx.post(server.url + "/api/v1/auth/login",
                       json={"username": "admin", "password": ADMIN_ENV["BANGUI_ADMIN_PASSWORD"]}, timeout=10)
    cookie = {"Cookie": f"bangui_session={login.cookies['bangui_session']}"}

    def open_and_leave() -> int:
        with httpx.Client(timeout=10) as client, \
                client.stream("GET", server.url + "/api/v1/logs/stream", headers=cookie) as response:
            next(response.iter_lines())  # the stream is running; leaving the block drops the connection
            return response.status_code

    for _ in range(MAX_STREAMS + 6):
        assert wait_for(lambda: open_and_leave() == 200, what="a free stream slot")
