"""GET /api/v1/events: the page's live stream (issue 23 item 2), read from what every process shares."""

from __future__ import annotations

import json
import threading
from typing import Any

from handlers import events
from tests.fixtures.app import Api


def frames(text: str) -> list[tuple[str, Any, str | None]]:
    """(event, data, id) of each frame of an SSE body."""
    out = []
    for block in text.split("\n\n"):
        kind, data, ident = "message", None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line.startswith("id: "):
                ident = line[4:]
        if data is not None:
            out.append((kind, data, ident))
    return out


def position(api: Api) -> str:
    hello = frames(api.call("viewer", "GET", "/events?max_seconds=0").text)[0]
    assert hello[0] == "hello" and hello[2] is not None
    return hello[2]


def test_a_viewer_gets_bans_unbans_and_jail_changes_made_elsewhere(api: Api) -> None:
    start = position(api)
    # written by "another process": the stream reads only the shared archive and audit log
    api.store.history.record_ban("sshd", ["192.0.2.7"], origin="manual", actor="ana")
    api.store.history.record_unban("sshd", "192.0.2.7", actor="ana")
    api.store.audit.append({"actor": "ana", "role": "admin", "via": "token", "action": "jail.stop", "target": "sshd",
                            "outcome": "ok", "status": 200})
    api.store.audit.append({"actor": "ana", "role": "admin", "via": "token", "action": "token.create", "target": "x",
                            "outcome": "ok", "status": 200})
    got = frames(api.call("viewer", "GET", f"/events?after={start}&max_seconds=0.3").text)
    kinds = [(k, d.get("ip") or d.get("action")) for k, d, _ in got if k not in ("hello", "end")]
    assert kinds == [("ban", "192.0.2.7"), ("unban", "192.0.2.7"), ("jail", "jail.stop")], kinds
    # the last event carries the position after it: a reconnect from there gets nothing again
    last = [i for _, _, i in got if i][-1]
    again = frames(api.call("viewer", "GET", "/events?max_seconds=0.3", headers={"Last-Event-ID": last}).text)
    assert [k for k, _, _ in again] == ["hello", "end"]


def test_a_client_too_far_behind_is_told_to_reload(api: Api) -> None:
    start = position(api)
    api.store.history.record_ban("sshd", [f"198.51.100.{i}" for i in range(1, 4)], actor="ana")
    events_before = events.BACKLOG
    events.BACKLOG = 2
    try:
        got = frames(api.call("viewer", "GET", f"/events?after={start}&max_seconds=0").text)
    finally:
        events.BACKLOG = events_before
    assert [k for k, _, _ in got][:2] == ["hello", "reset"]


def test_fail2ban_going_down_is_an_event(api: Api) -> None:
    api.store.runtime.publish({"reachable": True, "jails": [{"name": "sshd"}], "error": None})
    timer = threading.Timer(0.4, api.store.runtime.publish, [{"reachable": False, "jails": [], "error": "refused"}])
    timer.start()
    try:
        got = frames(api.call("viewer", "GET", "/events?max_seconds=1.5").text)
    finally:
        timer.join()
    assert got[0][1]["fail2ban"]["reachable"] is True
    assert ("fail2ban", {"reachable": False, "error": "refused", "jails": []}) in [(k, d) for k, d, _ in got]


def test_the_stream_needs_a_login_and_a_sane_max_seconds(api: Api) -> None:
    assert api.call("anonymous", "GET", "/events?max_seconds=0").status_code == 401
    assert api.call("viewer", "GET", "/events?max_seconds=-1").status_code == 400
