"""Reading another host's history archive through Redis: request/reply with a deadline.

The asker pushes `{"id", "reply", "deadline", "filters"}` onto `bangui:fleet:rpc:<host>` and waits on its own
reply list with BLPOP until RPC_TIMEOUT_S; no answer by then is `host_unreachable` (a NoAnswer). The host's agent
(its host leader) pops requests, drops those whose deadline passed (nobody waits for them), runs the query on its
archive and pushes `{"items", "next_cursor"}` or `{"error": errors.portable(exc)}` (the asker raises it again:
`errors.revived`, the same kind and code). Lists expire on their own, so a host that is down for good leaves
nothing behind but keys with a TTL. Filters are validated by the asker (its 400s); the host re-validates (its
archive's own rules).
"""

from __future__ import annotations

import json
import secrets
import time
from functools import lru_cache
from typing import Any

from errors import AppError, InvalidInput, NoAnswer, portable, revived
from settings import Settings

RPC_TIMEOUT_S = 2.0


def inbox(host: str) -> str:
    return f"bangui:fleet:rpc:{host}"


class HostUnreachable(NoAnswer):
    code = "host_unreachable"


@lru_cache(maxsize=4)
def waiting_client(settings: Settings) -> Any:
    """A client whose socket outlasts a BLPOP of RPC_TIMEOUT_S (the store's client times out sooner)."""
    from store.redis_backend import connect

    return connect(settings, socket_timeout=RPC_TIMEOUT_S + 1.0)


def ask_history(client: Any, host: str, filters: dict[str, Any], timeout: float = RPC_TIMEOUT_S) -> dict[str, Any]:
    """Another host's history page (blocking: offload it); HostUnreachable when it does not answer in time."""
    reply = f"bangui:fleet:rpc-reply:{secrets.token_hex(8)}"
    request = {"id": reply, "reply": reply, "deadline": time.time() + timeout, "filters": filters}
    pipe = client.pipeline(transaction=True)
    pipe.rpush(inbox(host), json.dumps(request))
    pipe.expire(inbox(host), int(timeout * 5) + 1)
    pipe.execute()
    answer = client.blpop([reply], timeout=timeout)
    if answer is None:
        raise HostUnreachable(f"host {host!r} did not answer within {timeout:g} s (down, or not in the fleet)",
                              details={"host": host})
    body: dict[str, Any] = json.loads(answer[1])
    if "error" in body:
        raise revived(body["error"], host=host)
    return body


def answer(client: Any, request: dict[str, Any], history: Any) -> None:
    """Run one request on this host's archive and reply (blocking: the agent offloads it)."""
    if float(request.get("deadline", 0)) < time.time():
        return  # the asker gave up already
    try:
        items, cursor = history.history(**request["filters"])
        body: dict[str, Any] = {"items": items, "next_cursor": cursor}
    except AppError as exc:
        body = {"error": portable(exc)}
    except TypeError as exc:  # a filter this version does not know
        body = {"error": portable(InvalidInput(str(exc), code="invalid_query"))}
    pipe = client.pipeline(transaction=True)
    pipe.rpush(request["reply"], json.dumps(body))
    pipe.expire(request["reply"], 30)
    pipe.execute()
