"""HTTP/1.1 connection policy under hypercorn (issue 8 items 13 and 17).

- `configure(config)`: no `server: hypercorn-h11` header; keep-alive and header-size limits stated, not inherited.
  A client that stops sending before its headers are complete is dropped by hypercorn's keep-alive timer (it runs
  until a request is parsed). No hypercorn `read_timeout`: it also cut long responses (a log stream, a CSV
  download) whose client, rightly, sends nothing meanwhile.
- A client that stops sending mid-body gets 408 `body_timeout` after BODY_CHUNK_TIMEOUT_S without a chunk (in
  `BodyPolicy`), so a stalled upload does not hold its connection and a worker task forever.
- `BodyPolicy` (ASGI middleware), drain-or-close: a response sent before the request body was read to its end
  (a GET with `Content-Length: 100000000`, a 413, a 401 before the body) carries `connection: close`, so hypercorn
  closes the connection after it instead of keeping it for the next request while the rest of an unread body
  arrives (hypercorn's per-request queue holds 10 chunks; once the app is done nothing empties it, and the
  connection's reader would wait on it forever). Before closing, the rest of the body is read and dropped (up to
  DRAIN_MAX_BYTES within DRAIN_MAX_S): a client that writes its whole body before it reads (curl, most
  libraries) would otherwise stall on a full socket buffer and never see the answer (a 10 MiB upload hung
  8-120 s, issue 18).
- `install_error_bodies()`: hypercorn answers requests h11 cannot parse (`Content-Length: -1`, a NUL in a header,
  a byte 0xFF in the path) itself, before any app code, with an empty 400. It is replaced, in the worker, by the
  same status with bangui's JSON error envelope and security headers. hypercorn has NO supported mechanism for
  this (checked in hypercorn 0.18's source: no config option, the app never sees such a request, `ProtocolWrapper`
  builds `H11Protocol` by name, and `Config.response_headers` adds headers to every response, never a body), so
  its private method `H11Protocol._send_error_response` is replaced. Pinned: the replacement is made only when the
  three private methods involved have exactly the source it was written against (`PINNED`, hypercorn 0.18.0);
  otherwise it is left out with a warning in the log (hypercorn's empty 400 stays), and
  tests/handlers/test_transport.py fails loudly, with a real hypercorn answering a malformed request, until
  this is re-checked against the new hypercorn and `PINNED` updated.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from itertools import chain
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errors import RequestTimeout
from handlers.errors import SECURITY_HEADERS

log = logging.getLogger("bangui.transport")
BODY_CHUNK_TIMEOUT_S = 10.0  # the longest wait for the next chunk of a request body
# After an early answer (a 413, a 401 before the body), what is still read and dropped of the unread body so that a
# client that writes it all before reading gets that answer instead of a stalled write (issue 18).
DRAIN_MAX_BYTES = 64 * 1024 * 1024
DRAIN_MAX_S = 5.0
KEEP_ALIVE_S = 5.0
MAX_HEADER_BYTES = 16 * 1024


def configure(config: Any) -> None:
    """Apply the connection policy to a hypercorn Config."""
    config.include_server_header = False
    config.read_timeout = None
    config.keep_alive_timeout = KEEP_ALIVE_S
    config.h11_max_incomplete_size = MAX_HEADER_BYTES


class BodyPolicy:
    """Adds `connection: close` to a response that starts before the request body was read to its end, and
    answers 408 when the body stalls."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        done = False

        async def tracking_receive() -> Message:
            nonlocal done
            if done:  # e.g. a streaming response waiting for the disconnect: no limit
                return await receive()
            try:
                with anyio.fail_after(BODY_CHUNK_TIMEOUT_S):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(f"no request body data for {BODY_CHUNK_TIMEOUT_S:g} s",
                                     code="body_timeout") from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            return message

        drain = False

        async def closing_send(message: Message) -> None:
            nonlocal drain
            if message["type"] == "http.response.start" and not done:
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
                drain = message["status"] != 408  # a stalled body has nothing more to give
            elif message["type"] == "http.response.body" and drain and not message.get("more_body", False):
                # hypercorn closes the connection as soon as the response ends: with the client still writing,
                # that close resets the connection and the answer is lost (or, with its body queue full, the
                # connection hangs). So the answer's last message waits until the body was read to its end.
                if message.get("body"):
                    await send({"type": "http.response.body", "body": message["body"], "more_body": True})
                if not done:
                    await _drain(receive)
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, tracking_receive, closing_send)


async def _drain(receive: Receive) -> None:
    """Read and drop the rest of a request body whose answer was already sent (bounded in bytes and time)."""
    dropped = 0
    with anyio.move_on_after(DRAIN_MAX_S):
        while dropped <= DRAIN_MAX_BYTES:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            dropped += len(message.get("body", b""))


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"0", b"")):
            return True
    return False


ERROR_BODY = {400: "bad_request", 413: "body_too_large", 431: "headers_too_large", 501: "not_implemented"}


def error_body(status: int) -> bytes:
    code = ERROR_BODY.get(status, "bad_request")
    message = ("the request is not valid HTTP/1.1 (a malformed request line, header or Content-Length); "
               "it was not processed")
    return json.dumps({"error": {"code": code, "message": message, "details": {"status": status}}}).encode()


# sha256 (first 16 hex digits) of the source of each private H11Protocol method the replacement relies on, in the
# hypercorn it was written against (0.18.0): `_handle_events` calls `_send_error_response(status)` for a request h11
# cannot parse; the replacement writes with `_send_h11_event`.
PINNED = {"_handle_events": "bd4a76b2837e8722", "_send_error_response": "58c2b47ae295d000",
          "_send_h11_event": "5e40283daa303ec7"}


def unpinned(protocol: Any) -> list[str]:
    """The methods of `protocol` (hypercorn's H11Protocol) whose source is not the pinned one."""
    return [name for name, digest in PINNED.items()
            if hashlib.sha256(inspect.getsource(getattr(protocol, name)).encode()).hexdigest()[:16] != digest]


def install_error_bodies() -> bool:
    """Give hypercorn's own HTTP/1.1 error responses bangui's JSON envelope; False (with a warning) when
    hypercorn's private methods are not the pinned ones (then its empty responses stay)."""
    try:
        import h11
        from hypercorn.protocol.h11 import H11Protocol
    except ImportError:
        return False
    if getattr(H11Protocol._send_error_response, "_bangui", False):
        return True
    changed = unpinned(H11Protocol)
    if changed:
        log.warning("hypercorn's H11Protocol.%s changed: its error responses to unparsable requests stay empty "
                    "(re-check handlers/transport.py against this hypercorn)", ", ".join(changed))
        return False

    async def _send_error_response(self: Any, status_code: int) -> None:
        body = error_body(status_code)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close"), *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items())]
        await self._send_h11_event(h11.Response(status_code=status_code, headers=list(
            chain(headers, self.config.response_headers("h11")))))
        await self._send_h11_event(h11.Data(data=body))
        await self._send_h11_event(h11.EndOfMessage())

    _send_error_response._bangui = True  # type: ignore[attr-defined]
    H11Protocol._send_error_response = _send_error_response  # type: ignore[method-assign]
    return True
