"""Roles, least to most privileged. Every route and every action declares the least role it needs."""

from __future__ import annotations

import enum

from errors import InvalidInput


class Role(enum.IntEnum):
    viewer = 0
    operator = 1
    admin = 2


ROLE_NAMES = tuple(r.name for r in Role)


def parse_role(name: str) -> Role:
    """The role named `name`; 400 `invalid_role` otherwise."""
    try:
        return Role[name]
    except KeyError:
        raise InvalidInput(f"role must be one of {', '.join(ROLE_NAMES)}", code="invalid_role") from None
