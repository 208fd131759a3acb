"""The orders of a page of current bans (store/ban_view.py `BanView.page`) and the cursors that continue them.

`sort`: `address` (the default: address order; with a prefix filter alone, the address as text), `banned_at` or
`expires_at`; `order`: `asc` (the default) or `desc`. A time the view does not have (a permanent ban's end, which
fail2ban gives as none) sorts after every time in `asc` and before every time in `desc`: the view's generated
columns `banned_sort` / `expires_sort` hold +inf for it, so one index on each serves the order without a sort step.
Ties are broken by (key, jail), the address's binary key then the jail, in the same direction as the sort (`desc`
reverses the whole order): a row's place is then unique and the rows after a cursor are one row-value comparison
that SQLite answers from the index, so pages never skip or repeat a row, however deep.

A cursor is base64 (URL alphabet) of JSON `[kind, value...]`: `kind` names the sort and order, the values are the
order's columns of the page's last row. The address order's kinds `k` and `t` are those of the cursors before sorts
existed (issue 25), so such a cursor stays valid. A cursor of another kind is refused (400), as is anything else
that is not a cursor of this query.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from errors import InvalidInput

SORTS = ("address", "banned_at", "expires_at")
ORDERS = ("asc", "desc")
# column of the view -> the generated column its order reads (store/ban_view.py adds them and their indexes)
SORT_COLUMNS = {"banned_at": "banned_sort", "expires_at": "expires_sort"}
MISSING = "9e999"  # SQLite reads it as +inf: a missing time sorts after every time


@dataclass(frozen=True)
class Order:
    sort: str = "address"
    desc: bool = False
    text: bool = False  # the address order as text (a prefix filter alone: its range is a range of the text)

    @classmethod
    def of(cls, sort: str | None, order: str | None, text: bool) -> Order:
        """The order a query asks for (None: the default); a clear 400 for a value that is not one."""
        # absent: the default; present but empty is no value the document allows (400, as any other)
        sort, order = "address" if sort is None else sort, "asc" if order is None else order
        if sort not in SORTS:
            raise InvalidInput(f"sort must be one of {', '.join(SORTS)}, got {sort[:40]!r}", code="invalid_sort",
                               details={"field": "sort", "allowed": list(SORTS)})
        if order not in ORDERS:
            raise InvalidInput(f"order must be one of {', '.join(ORDERS)}, got {order[:40]!r}", code="invalid_order",
                               details={"field": "order", "allowed": list(ORDERS)})
        return cls(sort, order == "desc", text and sort == "address")

    @property
    def kind(self) -> str:
        base = ("t" if self.text else "k") if self.sort == "address" else self.sort
        return base + ("-" if self.desc else "")

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns of the order, most significant first (the last ones break ties)."""
        if self.sort == "address":
            return ("ip" if self.text else "key", "jail")
        return (SORT_COLUMNS[self.sort], "key", "jail")

    def order_by(self) -> str:
        return ", ".join(c + (" DESC" if self.desc else "") for c in self.columns)

    def after(self) -> str:
        """The condition of the rows after a cursor (parameters: `values(cursor)`)."""
        return f"({', '.join(self.columns)}) {'<' if self.desc else '>'} ({', '.join('?' * len(self.columns))})"

    def cursor(self, last: Sequence[Any]) -> str:
        """The cursor after a row whose order columns hold `last`."""
        shown = [v.hex() if isinstance(v, bytes) else None if isinstance(v, float) and math.isinf(v) else v
                 for v in last]
        raw = json.dumps([self.kind, *shown], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def values(self, cursor: str) -> list[Any]:
        """The order columns' values of a cursor of this order; 400 for anything else."""
        try:
            kind, *shown = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise _invalid("not a cursor of this query (use next_cursor as answered)") from None
        if kind != self.kind:
            if isinstance(kind, str) and kind in _KINDS:
                raise _invalid(f"made for {_KINDS[kind]}, not for this query's {self.describe()} (a cursor "
                               "continues the sort and order it was answered with)")
            raise _invalid("not a cursor of this query (use next_cursor as answered)")
        try:
            if len(shown) != len(self.columns):
                raise ValueError
            return [_decoded(column, value) for column, value in zip(self.columns, shown, strict=True)]
        except (ValueError, TypeError):
            raise _invalid("not a cursor of this query (use next_cursor as answered)") from None

    def describe(self) -> str:
        text = " (address text: a prefix filter)" if self.text else ""
        return f"sort={self.sort}&order={'desc' if self.desc else 'asc'}{text}"


def _decoded(column: str, value: Any) -> Any:
    if column == "key":
        if not isinstance(value, str):
            raise ValueError
        return bytes.fromhex(value)
    if column in ("ip", "jail"):
        if not isinstance(value, str):
            raise ValueError
        return value
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError
    return float(value)


def _invalid(why: str) -> InvalidInput:
    return InvalidInput("cursor: " + why, code="invalid_cursor", details={"field": "cursor"})


_KINDS = {o.kind: o.describe() for o in (Order(s, d, t) for s in SORTS for d in (False, True)
                                         for t in ((False, True) if s == "address" else (False,)))}
