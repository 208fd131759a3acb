"""Embedded state shared by every worker and server process on this host (see store/base.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from geo import CountryLookup
from settings import Settings, source
from store import faults, identity
from store.audit import AuditLog
from store.ban_view import BanView
from store.base import Clock, SharedCache, StoreError, open_cache, prepare_data_dir
from store.blocklists import Blocklists
from store.bouncers import Bouncers
from store.credential_memo import Announcing, Epoch, Memo
from store.decisions import Decisions
from store.history import Archive
from store.jobstate import JobState
from store.leader import LeaderState
from store.notifications import Notifications
from store.preferences import Preferences
from store.ratelimit import ConcurrencyLimiter, LoginLimiter
from store.replica import Replica
from store.runtime import RuntimeState
from store.sessions import Sessions
from store.tokens import Tokens
from store.users import Users

if TYPE_CHECKING:
    from store.fleet_cache import FleetCache

__all__ = ["Store", "StoreError"]


def decision_jails(settings: Settings) -> list[str]:
    """The jails whose bans are decisions: BANGUI_DECISIONS_JAILS; in fleet mode by default the fleet's shared
    jails (every host holds their bans, so every host answers a bouncer with the same bans); else every jail."""
    named = settings.decisions_jails or (settings.fleet_share_jails if settings.fleet_url else "")
    return [j.strip() for j in named.split(",") if j.strip()]


class Store:
    """Owns the data dir and every shared record in it. Build one per process; close it at exit."""

    def __init__(self, settings: Settings, clock: Clock = time.time) -> None:
        self.settings = settings
        self.path = prepare_data_dir(Path(settings.data_dir))
        try:
            identity.check_before_open(self.path, self.path / "state")
            self.cache = open_cache(self.path / "state")
            self.opened = identity.adopt(self.path, self.path / "state", self.cache)
            self._db_file = str(self.path / "state" / identity.DBNAME)
        except identity.StoreMissing as exc:
            if hasattr(self, "cache"):
                self.cache.close()
            raise StoreError(str(exc)) from None
        self.cache.create_tag_index()  # makes Sessions.end_all (evict by tag) an index lookup
        self.clock = clock
        # Identity and limits: this host's cache (announcing its writes to the other processes' credential memos,
        # store/credential_memo.py), or in fleet mode the fleet's Redis (store/redis_backend.py; no memo).
        self.epoch: Epoch | None = None
        self.replica: Replica | None = None  # fleet mode: this host's copy of the fleet's identity (store/replica.py)
        self._fleet: FleetCache | None = None
        self.shared: SharedCache
        if settings.fleet_url:
            from store.fleet_cache import FleetCache  # fleet mode only: redis stays optional
            from store.redis_backend import RedisCache, connect

            self.replica = Replica(self.path)
            self.shared = self._fleet = FleetCache(RedisCache(connect(settings), source("fleet_url")), self.replica)
        else:
            self.epoch = Epoch(self.path)
            self.shared = Announcing(self.cache, self.epoch)
        self.users = Users(self.shared, clock)
        # Each user's, beside the users (issue 23 item 6); not a credential, so not announced to the memos.
        self.preferences = Preferences(self.shared if settings.fleet_url else self.cache)
        self.sessions = Sessions(self.shared, clock, self.users, idle=settings.session_idle_minutes * 60.0,
                                 lifetime=settings.session_lifetime_hours * 3600.0, memo=self._memo())
        self.tokens = Tokens(self.shared, clock, self.users, memo=self._memo())
        if self.replica is not None:  # the same lookups on the replica alone, when Redis is slow (fleet_cache.lookup)
            self.replica.sessions = Sessions(self.replica.cache, clock, Users(self.replica.cache, clock),
                                             idle=self.sessions.idle, lifetime=self.sessions.lifetime)
            self.replica.tokens = Tokens(self.replica.cache, clock, Users(self.replica.cache, clock))
        self.login_limiter = LoginLimiter(self.shared, clock, settings.login_max_failures,
                                          settings.login_window_seconds, settings.login_user_max_failures)
        # This host's CPU: counted in the host's own store, also in fleet mode. A slot outlives any test.
        self.filter_tests = ConcurrencyLimiter(self.cache, clock, "filter-test", settings.filter_tests_per_user,
                                               hold=settings.filter_test_seconds + 60.0)
        self.runtime = RuntimeState(self.cache, clock)
        self.leader = LeaderState(self.cache, clock)
        self.jobs = JobState(self.cache, clock)
        # Fleet mode: the fleet's lists, imported once by the fleet leader for every host (jobs/fleet/blocklists.py).
        self.blocklists = Blocklists(self.shared if settings.fleet_url else self.cache, clock)
        self.notifications = Notifications(self.cache, clock)
        # CrowdSec bouncer keys (issue 22); in fleet mode in the fleet's identity store: a key works on every
        # host, and its deletion stops it at once on every host
        self.bouncers = Bouncers(self.shared if settings.fleet_url else self.cache, clock)
        # The one view of fail2ban's current bans: the API's ban lists and the bouncers' decisions (issues 22, 25)
        self.bans = BanView.in_dir(self.path, clock)
        self.decisions = Decisions(self.bans, decision_jails(settings))
        self.history = Archive.in_dir(self.path, clock, geo=CountryLookup(settings.geoip_db))
        self.audit = AuditLog(self.path, clock)

    @property
    def fleet(self) -> FleetCache:
        """The fleet's Redis, which is `shared` in fleet mode (its `call`, `reachable`, `redis` client for fleet/
        code); RuntimeError without BANGUI_FLEET_URL."""
        if self._fleet is None:
            raise RuntimeError("not in fleet mode: BANGUI_FLEET_URL is not set")
        return self._fleet

    def usable(self) -> bool:
        """Readiness: the store answers a read."""
        try:
            self.cache.get("readiness-probe")
        except Exception:
            return False
        return True

    def identity_problem(self) -> str | None:
        """Why the store file this process opened is no longer the data dir's (None: it still is): one stat."""
        return identity.problem(self._db_file, self.opened)

    def problem(self) -> str | None:
        """Why the store cannot serve now (None: it can): its file was deleted or replaced under us, it does not
        answer a read, or it cannot take writes (disk full). For readiness and health."""
        moved = self.identity_problem()
        if moved is not None:
            return moved
        if not self.usable():
            return "the store does not answer a read (locked or damaged); see the server log"
        return faults.write_problem(self.path)

    def _memo(self) -> Memo | None:
        return Memo(self.epoch) if self.epoch is not None else None

    def close(self) -> None:
        self.history.close()
        self.audit.close()
        self.bans.close()
        if self.epoch is None:  # the fleet's Redis client and the replica (an Announcing wrapper closes with the cache)
            self.shared.close()
        else:
            self.epoch.close()
        self.cache.close()
