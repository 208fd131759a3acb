"""The shared objects every handler needs, built once per process in the lifespan (see app.py)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from settings import Settings

if TYPE_CHECKING:
    from f2b.client import Fail2Ban
    from store import Store


@dataclasses.dataclass(frozen=True)
class Deps:
    settings: Settings
    store: Store
    fail2ban: Fail2Ban
