"""Country of an IP address, offline: never one network request per address (the seed system's defect).

Sources, in order:
- `BANGUI_GEOIP_DB`: a MaxMind or DB-IP country/city `.mmdb` file, read with the standard `maxminddb` reader
  (memory-mapped, thread-safe). A path that cannot be opened raises `GeoError` at construction: a setting that
  silently does nothing is worse than a refusal to start.
- Otherwise the `iptocc` package: Regional Internet Registry allocations compiled into its native module and
  refreshed by its maintainer nightly; no data file is read, nothing is unpickled (our rule: nothing read from disk
  is unpickled, which rules out geoip2fast and ip-to-country). RIR data is the country an address block is
  *assigned* to, which agrees with commercial databases for ~95% of IPv4 addresses: good enough for charts.
- Neither available: every lookup answers None and one warning says how to get countries.

`country(ip)` answers an ISO 3166-1 alpha-2 code, or None for private/reserved/unknown addresses and for
strings that are not addresses (the databases hold only allocated public blocks: private and reserved ranges
have no entry, so no separate check is needed; `ipaddress.is_global` cost ~30 us per address).
Answers are cached per process (lru_cache): one host sees the same attackers again and again.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("bangui.geo")

CACHE_SIZE = 65536


class GeoError(Exception):
    """The configured country database cannot be used; the message names the file and the fix."""


def _iso(value: Any) -> str | None:
    """An upper-case two-letter code, or None. 'ZZ' (DB-IP's "reserved/unknown") is None; the 'EU'/'AP'
    pseudo-codes of some databases are kept (they are what the database knows)."""
    if isinstance(value, str) and len(value) == 2 and value.isalpha() and value.upper() != "ZZ":
        return value.upper()
    return None


def _mmdb_lookup(path: str) -> Callable[[str], str | None]:
    try:
        import maxminddb
    except ImportError:
        raise GeoError("BANGUI_GEOIP_DB is set but the 'maxminddb' package is not installed") from None
    try:
        reader = maxminddb.open_database(path)
    except (OSError, ValueError) as exc:  # InvalidDatabaseError is a RuntimeError subclass in some versions
        raise GeoError(f"BANGUI_GEOIP_DB={path!r} cannot be read as an .mmdb file: {exc}") from None
    except RuntimeError as exc:
        raise GeoError(f"BANGUI_GEOIP_DB={path!r} is not a valid .mmdb file: {exc}") from None

    def lookup(ip: str) -> str | None:
        record = reader.get(ip)
        if not isinstance(record, dict):
            return None
        # MaxMind/DB-IP: {"country": {"iso_code": "US"}}; some free databases: {"country": "US"} or
        # {"country_code": "US"}. Fall back to the registered country (anycast, satellite providers).
        for key in ("country", "registered_country"):
            value = record.get(key)
            code = _iso(value.get("iso_code")) if isinstance(value, dict) else _iso(value)
            if code:
                return code
        return _iso(record.get("country_code"))

    return lookup


def _bundled_lookup() -> Callable[[str], str | None] | None:
    try:
        from iptocc import country_code
    except ImportError:
        return None

    def lookup(ip: str) -> str | None:
        return _iso(country_code(ip))

    return lookup


class CountryLookup:
    """Offline IP -> country; thread-safe; see the module docstring for the sources.

    `source` says which one is in use: "mmdb:<path>", "iptocc" or "none".
    """

    def __init__(self, mmdb_path: str = "") -> None:
        lookup: Callable[[str], str | None] | None
        if mmdb_path:
            lookup, self.source = _mmdb_lookup(mmdb_path), f"mmdb:{mmdb_path}"
        else:
            lookup, self.source = _bundled_lookup(), "iptocc"
            if lookup is None:
                self.source = "none"
                log.warning("no country data: install the 'iptocc' package or set BANGUI_GEOIP_DB to a "
                            "MaxMind/DB-IP country .mmdb file; history and stats will show no countries")
        self._lookup = lookup
        self._cached = functools.lru_cache(maxsize=CACHE_SIZE)(self._uncached)

    def country(self, ip: str) -> str | None:
        """ISO alpha-2 code of `ip`, or None (private, reserved, unknown, not an address, no data)."""
        if self._lookup is None:
            return None
        return self._cached(ip)

    def _uncached(self, ip: str) -> str | None:
        text = ip.strip()
        if text[:7].lower() == "::ffff:" and "." in text:  # IPv4-mapped: databases key the IPv4 form
            text = text[7:]
        assert self._lookup is not None
        try:
            return self._lookup(text)
        except ValueError:  # not an address, or an IPv6 address asked of an IPv4-only database
            return None

    def cache_clear(self) -> None:
        self._cached.cache_clear()
