"""Filter tester route (operator): decode, call actions/filters.py, shape the answer (times in ISO)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from actions import filters as actions
from core.roles import Role
from handlers.api import ABSOLUTE_PATH_SCHEMA, Call, iso, route

MAX_LINES = 10_000  # given inline
MAX_BODY = 16 * 1024 * 1024  # 10,000 long lines do not fit the default body limit

Regex = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class FilterTestRequest(msgspec.Struct, forbid_unknown_fields=True):
    filter: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    failregex: Annotated[list[Regex], msgspec.Meta(max_length=100)] | None = None
    ignoreregex: Annotated[list[Regex], msgspec.Meta(max_length=100)] | None = None
    datepattern: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    lines: Annotated[list[Annotated[str, msgspec.Meta(max_length=65536)]],
                     msgspec.Meta(max_length=MAX_LINES)] | None = None
    logpath: Annotated[str, msgspec.Meta(min_length=1, max_length=4096, extra_json_schema=ABSOLUTE_PATH_SCHEMA)
                       ] | None = None
    max_matches: Annotated[int, msgspec.Meta(ge=0, le=actions.MAX_FILE_LINES)] = 1000


class FilterMatch(msgspec.Struct):
    line: str
    ip: str | None
    time: str | None
    regex: str


class FilterTestResult(msgspec.Struct):
    lines_checked: int
    matched: int
    ignored: int
    missed: int
    matches: list[FilterMatch]
    matches_truncated: bool
    missed_sample: list[str]
    elapsed_ms: float
    ignored_sample: list[str] = []  # lines a failregex matched that an ignoreregex let off (up to 100)


async def test_filter(call: Call) -> FilterTestResult:
    body: FilterTestRequest = call.body
    out = await actions.test_filter(call.deps, call.actor, **msgspec.structs.asdict(body))
    matches = [FilterMatch(m["line"], None if m["ip"] is None else str(m["ip"]),
                           iso(m["time"]) if m["time"] is not None else None, m["regex"]) for m in out["matches"]]
    return FilterTestResult(out["lines_checked"], out["matched"], out["ignored"], out["missed"], matches,
                            out["matches_truncated"], out["missed_sample"], out["elapsed_ms"],
                            out.get("ignored_sample", []))


routes = [
    route("POST", "/filters/test", test_filter, Role.operator,
          "Test a filter or regexes against lines or a log file with fail2ban's own engine.",
          body=FilterTestRequest, response=FilterTestResult, max_body_bytes=MAX_BODY, action=actions.test_filter),
]
