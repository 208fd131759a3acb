"""The caller's own display preferences (issue 23 item 6): time zone, date format, relative times, theme."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from actions import preferences as actions
from core.roles import Role
from handlers.api import Call, route
from store.base import offload


class PreferencesInfo(msgspec.Struct):
    time_zone: str  # IANA name, e.g. Europe/Paris
    date_format: Literal["iso", "locale"]
    relative_times: bool  # "expires in 23 h" rather than a date
    theme: Literal["auto", "light", "dark"]


class PreferencesPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    time_zone: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | msgspec.UnsetType = msgspec.UNSET
    date_format: Literal["iso", "locale"] | msgspec.UnsetType = msgspec.UNSET
    relative_times: bool | msgspec.UnsetType = msgspec.UNSET
    theme: Literal["auto", "light", "dark"] | msgspec.UnsetType = msgspec.UNSET


async def get_preferences(call: Call) -> PreferencesInfo:
    return PreferencesInfo(**await offload(call.deps.store.preferences.get, actions.owner(call.actor)))


async def patch_preferences(call: Call) -> PreferencesInfo:
    body: PreferencesPatch = call.body
    changes = {f: getattr(body, f) for f in body.__struct_fields__ if getattr(body, f) is not msgspec.UNSET}
    return PreferencesInfo(**await actions.update_preferences(call.deps, call.actor, actions.owner(call.actor),
                                                              changes))


routes = [
    route("GET", "/preferences", get_preferences, Role.viewer, "Your display preferences.",
          response=PreferencesInfo),
    route("PATCH", "/preferences", patch_preferences, Role.viewer,
          "Change any of your display preferences (time_zone: an IANA name; date_format iso | locale; "
          "relative_times; theme auto | light | dark).", body=PreferencesPatch, response=PreferencesInfo,
          action=actions.update_preferences),
]
