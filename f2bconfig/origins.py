"""Where each of a jail's options comes from (issue 24's jail form): every file that sets it, in fail2ban's order.

fail2ban reads jail.conf, jail.d/*.conf, jail.local, jail.d/*.local into ONE parser: a later file's value
replaces an earlier one in the same section, and a jail's own section wins over `[DEFAULT]` whichever file
either is in. So the value fail2ban uses comes from the last file that sets the key in the jail's section,
else from the last that sets it in `[DEFAULT]`, else from fail2ban's built-in default. Values here are raw
(before `%(...)s` interpolation): the effective value is the catalogue's (f2bconfig/catalogue.py).
"""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

from f2bconfig.override import JAIL_OVERRIDE


def merge_order(root: Path) -> list[Path]:
    """jail.conf, jail.d/*.conf, jail.local, jail.d/*.local, as fail2ban reads them (the last word wins)."""
    paths = [root / "jail.conf", *sorted((root / "jail.d").glob("*.conf")), root / "jail.local",
             *sorted((root / "jail.d").glob("*.local"))]
    return [p for p in paths if p.is_file()]


def _sections(path: Path) -> configparser.RawConfigParser | None:
    parser = configparser.RawConfigParser(strict=False, interpolation=None, default_section="\x00none")
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None  # the configuration check reports a broken file; here it sets nothing
    return parser


def origins(root: Path | str, jail: str) -> dict[str, dict[str, Any]]:
    """{key: {"file", "section", "raw", "override", "chain": [{"file", "section", "raw"}, ...]}} for every key the
    jail's section or `[DEFAULT]` sets in some file; "file"/"section" name the setting fail2ban uses."""
    base = Path(root)
    chain: dict[str, list[dict[str, str]]] = {}
    for path in merge_order(base):
        parser = _sections(path)
        if parser is None:
            continue
        rel = path.relative_to(base).as_posix()
        for section in ("DEFAULT", jail):
            if parser.has_section(section):
                for key, raw in parser.items(section):
                    chain.setdefault(key, []).append({"file": rel, "section": section, "raw": raw})
    out: dict[str, dict[str, Any]] = {}
    for key, settings in chain.items():
        own = [s for s in settings if s["section"] == jail]
        winner = (own or settings)[-1]
        out[key] = {**winner, "override": winner["file"] == JAIL_OVERRIDE, "chain": settings}
    return out
