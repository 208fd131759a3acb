"""How an API route is declared: path, method, the role it needs, its body and response types.

`ApiRoute` is the single definition used three times: to build the Starlette route, to authenticate,
authorize and decode the request (in `ApiRoute.__call__`), and to generate the OpenAPI document
(`handlers/openapi.py`). A handler is `async def verb_noun(call: Call) -> result`; the result is a
msgspec Struct, a dict/list, or a ready Starlette Response. A route that changes state names its
action (`action=`, see actions/base.py): a request refused before the action runs (no credentials, too
little role, CSRF, a bad body) is audited under that action's name, as the action audits the rest.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import logs
from actions.base import Action, authorise, record_refusal
from core.actor import Actor
from core.deps import Deps
from core.roles import Role
from errors import AppError, InvalidInput, TooLarge
from handlers.security import authenticate, check_csrf

Handler = Callable[["Call"], Awaitable[Any]]
_encoder = msgspec.json.Encoder()


@dataclasses.dataclass(slots=True)
class Call:
    """What a handler gets: the request, its decoded body, who is calling, and the shared dependencies."""

    request: Request
    deps: Deps
    actor: Actor
    body: Any = None

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str, default: str | None = None) -> str | None:
        return self.request.query_params.get(name, default)

    def max_seconds(self) -> float | None:
        """A stream's `?max_seconds=` (0 to 86400; none: until the client or the server ends it)."""
        raw = self.query("max_seconds")
        try:
            value = float(raw) if raw else None
        except ValueError:
            value = -1.0
        if value is not None and not 0 <= value <= 86400:
            raise InvalidInput("max_seconds: a number of seconds from 0 to 86400", code="invalid_query",
                               details={"field": "max_seconds"})
        return value


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(data), status_code=status, headers=headers,
                    media_type="application/json")


@dataclasses.dataclass
class ApiRoute:
    method: str
    path: str
    handler: Handler
    role: Role | None  # None: public (only liveness, readiness, setup and login)
    summary: str
    body: type | None = None  # a msgspec Struct type; unknown fields and wrong types are rejected
    response: type | None = None  # documents the 2xx body in the OpenAPI document
    status: int = 200
    query: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> description
    action: Action[Any] | None = None  # the audited action this route performs (state-changing routes)
    max_body_bytes: int | None = None  # this route's body limit (default: the max_body_bytes setting)
    body_optional: bool = False  # an empty body is the body type's defaults (e.g. DELETE with {"local": true})
    _decoder: msgspec.json.Decoder[Any] | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.action is not None and self.action.role != self.role:
            raise ValueError(f"{self.method} {self.path}: the route's role differs from its action's")
        if self.body is not None:
            self._decoder = msgspec.json.Decoder(self.body)

    def starlette_route(self) -> Route:
        return Route(self.path, self.__call__, methods=[self.method], name=self.handler.__name__)

    async def __call__(self, request: Request) -> Response:
        deps: Deps = request.state.deps
        call = Call(request, deps, await authenticate(request, deps))
        if call.actor.role is not None:
            logs.actor.set(call.actor.name)  # for the log lines of this request (reset by handlers.middleware.Edge)
        try:
            authorise(call.actor, self.role)
            if call.actor.via != "token":
                check_csrf(request, deps.settings)
            if self._decoder is not None:
                call.body = await self._decode_body(request, self.max_body_bytes or deps.settings.max_body_bytes)
        except AppError as exc:
            if self.action is not None:
                await record_refusal(deps, call.actor, self.action.name, self._target(request), exc)
            raise
        result = await self.handler(call)
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status_code=204 if self.status == 200 else self.status)
        return json_response(result, self.status)

    def _target(self, request: Request) -> str | None:
        name = self.action.target_param if self.action is not None else None
        params = request.path_params
        # the action's target argument, or else the path's first parameter (e.g. {id} for token_id)
        value = params.get(name) if name in params else next(iter(params.values()), None)
        return None if value is None else str(value)[:200]

    async def _decode_body(self, request: Request, limit: int) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            if self.body_optional and self.body is not None:
                return self.body()
            raise InvalidInput("a JSON body is required", code="invalid_json")
        assert self._decoder is not None
        try:
            return self._decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise InvalidInput(f"invalid request body: {exc}", code="invalid_body",
                               details={"reason": str(exc)}) from None
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"malformed JSON: {exc}", code="invalid_json") from None


def _too_large(limit: int) -> AppError:
    return TooLarge(f"request body exceeds {limit} bytes", details={"limit_bytes": limit})


def route(method: str, path: str, handler: Handler, role: Role | None, summary: str, **kw: Any) -> ApiRoute:
    return ApiRoute(method, "/api/v1" + path, handler, role, summary, **kw)


# What the OpenAPI document declares for address, network and path strings (documentation only: the handlers' own
# checks stay the authority), so that a client's validator agrees with the server (issue 18).
ADDRESS_PATTERN = "^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$"  # an IPv4/IPv6 address or a CIDR network
ADDRESS_SCHEMA = {"minLength": 2, "maxLength": 64, "pattern": ADDRESS_PATTERN}
ABSOLUTE_PATH_SCHEMA = {"pattern": "^/[^\\x00]*$"}


def iso(epoch: float | None) -> str | None:
    """ISO-8601 UTC with a Z, the one time format of the API (None stays None: e.g. permanent bans)."""
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))  # datetime took 3x longer (every response)
