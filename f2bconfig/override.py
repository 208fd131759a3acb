"""bangui's own override files, read by fail2ban after everything else (their names sort last).

- `jail.d/zz-bangui.local`: per-jail settings, ignore lists, activation (`enabled`, overrides).
- `fail2ban.d/zz-bangui.local`: server settings (`[Definition]` loglevel, dbpurgeage, dbmaxmatches).

Only the keys a change names are touched; every other section and key (e.g. an admin's hand edit)
is kept. The header says the file is managed by bangui.
"""

from __future__ import annotations

import configparser
import io
from collections.abc import Mapping

JAIL_OVERRIDE = "jail.d/zz-bangui.local"
SERVER_OVERRIDE = "fail2ban.d/zz-bangui.local"
HEADER = ("# Managed by bangui: changes made through its API land here. fail2ban reads this file after\n"
          "# jail.conf, jail.d/*.conf and jail.local, so its values win. Hand edits are kept, but a\n"
          "# bangui change rewrites the keys it sets. Changes and previous versions: bangui's change log.\n\n")


def _parser(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(interpolation=None, strict=False, default_section="\x00none")
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read_string(text)
    return parser


def read_section(text: str | None, section: str) -> dict[str, str]:
    if not text:
        return {}
    parser = _parser(text)
    return dict(parser.items(section)) if parser.has_section(section) else {}


def update(text: str | None, section: str, values: Mapping[str, str | None], header: str = HEADER) -> str:
    """``text`` with ``values`` set in ``section`` (None removes a key; an emptied section goes)."""
    parser = _parser(text or "")
    if not parser.has_section(section):
        parser.add_section(section)
    for key, value in values.items():
        if value is None:
            parser.remove_option(section, key)
        else:
            parser.set(section, key, value)
    if not parser.items(section):
        parser.remove_section(section)
    out = io.StringIO()
    parser.write(out)
    return header + out.getvalue().rstrip("\n") + "\n"
