"""Roles, least to most privileged. Every route and every action declares the least role it needs.

`metrics` is below `viewer` and for API tokens only (a Prometheus scraper's credential): the one route that
asks for it is `GET /metrics`, every other route needs at least `viewer`, and no user has it.

`bouncer` is the lowest and belongs only to CrowdSec bouncer keys (store/bouncers.py, issue 22): such a key is
read from `X-Api-Key` on the decisions routes (handlers/decisions.py) and nowhere else, and those routes read no
other credential. No user or API token can have it.
"""

from __future__ import annotations

import enum

from errors import InvalidInput


class Role(enum.IntEnum):
    bouncer = -2
    metrics = -1
    viewer = 0
    operator = 1
    admin = 2


ROLE_NAMES = tuple(r.name for r in Role if r >= Role.viewer)  # a user's roles
TOKEN_ROLE_NAMES = tuple(r.name for r in Role if r >= Role.metrics)  # a token's: also `metrics`


def parse_role(name: str, allowed: tuple[str, ...] = ROLE_NAMES) -> Role:
    """The role named `name` if it is one of `allowed`; 400 `invalid_role` otherwise."""
    if name not in allowed:
        raise InvalidInput(f"role must be one of {', '.join(allowed)}", code="invalid_role")
    return Role[name]
