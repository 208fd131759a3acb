"""Pages of the view of current bans (store/ban_view.py), as GET /bans and GET /jails/{jail} answer them (issue 25).

The view is at most one sync interval old (jobs/decisions.py `fresh_view`); each answer says how old (`as_of`,
`age_s`). Query: `limit` (1..1000), `cursor` (the previous answer's `next_cursor`), `prefix` (the beginning of an
address: text order) and `network` (a CIDR: the bans inside it, in address order), `sort` (address, banned_at,
expires_at) and `order` (asc, desc): the order of every page, not only of one (store/ban_order.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from errors import InvalidInput
from f2b.client import JailNotFound
from handlers.api import Call
from jobs.decisions import fresh_view
from store.ban_order import Order
from store.ban_view import Page
from store.base import offload

MAX_LIMIT = 1000
QUERY = {"limit": "page size, 1..1000 (GET /bans: default every ban; a jail: 100)",
         "cursor": "next_cursor of the previous page",
         "prefix": "only addresses beginning with this text (e.g. 10.64.)",
         "network": "only bans inside this CIDR (e.g. 10.64.0.0/16)",
         "sort": "address (default), banned_at or expires_at; ties by address then jail; a ban without an end "
                 "(permanent) sorts last in asc, first in desc",
         "order": "asc (default) or desc; a cursor continues only the sort and order it was answered with"}


@dataclass(frozen=True)
class Shown:
    page: Page
    as_of: float
    age_s: float
    countries: list[str | None]


def limit_of(call: Call, default: int | None) -> int | None:
    text = call.query("limit")
    if text is None:
        return default
    limit = int(text) if text.isascii() and text.isdigit() and len(text) < 8 else 0  # int() takes " 5", "+5", "1_0"
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}", code="invalid_limit",
                           details={"field": "limit"})
    return limit


def countries(call: Call, ips: list[str]) -> list[str | None]:
    """Country of each address (cached per process; callers run it in a thread: a ban list can be long)."""
    geo = call.deps.store.history.geo
    return [geo.country(ip) if geo is not None else None for ip in ips]


async def current_page(call: Call, jail: str | None, default_limit: int | None) -> Shown:
    """The page of current bans the query asks for (`jail`: of that jail, which must be running)."""
    limit = limit_of(call, default_limit)
    cursor, prefix, network = call.query("cursor"), call.query("prefix"), call.query("network")
    sort, order = call.query("sort"), call.query("order")
    Order.of(sort, order, text=False)  # a bad sort or order is a 400 before any work
    deps = call.deps
    as_of = await fresh_view(deps)
    view = deps.store.bans
    if jail is not None and jail not in view.jails():
        raise JailNotFound(f"jail {jail!r} is not running", details={"jail": jail})

    def read() -> tuple[Page, list[str | None]]:  # a count over 100,000 bans is no read for the event loop
        page = view.page(jail, limit, cursor, prefix, network, sort, order)
        return page, countries(call, [b.ip for b in page.bans])

    page, where = await offload(read)
    return Shown(page, as_of, round(max(0.0, deps.store.clock() - as_of), 3), where)
