"""Leader election: every worker of every `bangui serve` on one data dir is a candidate; one leads.

How: each candidate waits for an exclusive `flock` on `<data dir>/leader.lock`. The winner takes the
next epoch in the store (store/leader.py), publishes `{pid, host, epoch, since, heartbeat}`, refreshes
the heartbeat every `heartbeat_seconds` and runs the scheduler until its lifespan ends.

Guarantees and failure modes:
- Crash (SIGKILL, OOM, segfault): the kernel drops the dead process's lock and wakes a waiter at once;
  takeover costs one store write (milliseconds, see bench/takeover.py). Nothing polls the lock: a
  follower's wait is one daemon thread blocked in flock(), costing no CPU.
- Hang (leader alive but wedged): the lock cannot tell. Its heartbeat goes stale; followers log a
  warning and /api/v1/health reports `degraded` (handlers/jobs.py: heartbeat_is_stale).
- Graceful stop (SIGTERM, reload, max_requests): running jobs get a grace period, then the lock is
  released and a sibling takes over within milliseconds.
- Split brain (someone deletes leader.lock and a new candidate locks a fresh inode): epochs are
  fenced; the older leader's heartbeat or next job write is refused, it steps down and stands again.
  A winner also re-checks that its fd still names the file at the path, so it never leads on a
  deleted inode.
- Fork: the lock fd is opened O_CLOEXEC (hypercorn spawns workers: fork+exec) and closed in any child
  forked without exec (os.register_at_fork), so no child can keep the lock alive after we die.
- Why not anyio.to_thread for the wait: anyio's worker threads are not daemon threads, and a thread
  blocked in flock() cannot be cancelled, so a follower would never exit. Ours is a daemon thread that
  wakes the event loop through a socketpair; a cancelled wait abandons it (it closes its fd, dropping
  the lock, if it ever wins).
- Nothing escapes `run_candidate` but cancellation: a failure is logged, and the candidate stands again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from jobs.definitions import Job, load_jobs
from jobs.reconcile import reconcile_pending
from jobs.scheduler import GRACE_S, Scheduler
from store.base import offload
from store.leader import NotLeader

if TYPE_CHECKING:
    from core.deps import Deps

log = logging.getLogger("bangui.jobs.leader")
LOCK_NAME = "leader.lock"
RETRY_S = 1.0  # pause before standing again after an error or a lost epoch
_owned_fds: set[int] = set()  # lock fds of this process (held or being waited on)


def _close_in_child() -> None:
    for fd in list(_owned_fds):
        with contextlib.suppress(OSError):
            os.close(fd)
    _owned_fds.clear()


os.register_at_fork(after_in_child=_close_in_child)


def _close(fd: int) -> None:
    _owned_fds.discard(fd)
    os.close(fd)  # closing the last fd of the open file description drops the flock


class _Waiter:
    """A daemon thread blocked in flock(LOCK_EX) that closes a socket to wake the loop when done."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.mutex = threading.Lock()
        self.abandoned = self.done = False
        self.error: OSError | None = None
        self.rsock, self.wsock = socket.socketpair()  # non-inheritable (PEP 446)
        threading.Thread(target=self._wait, name="bangui-leader-lock", daemon=True).start()

    def _wait(self) -> None:
        error = None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)  # blocks until the holder releases or dies
        except OSError as exc:
            error = exc
        with self.mutex:
            if self.abandoned:
                _close(self.fd)
            else:
                self.error, self.done = error, True
        self.wsock.close()  # EOF makes rsock readable: the loop wakes

    async def wait(self) -> None:
        try:
            await anyio.wait_readable(self.rsock)
        except BaseException:  # cancelled: abandon the thread; whoever has the fd last closes it
            with self.mutex:
                self.abandoned = True
                if self.done:
                    _close(self.fd)
            raise
        finally:
            self.rsock.close()
        if self.error is not None:
            _close(self.fd)
            raise self.error


class LeaderLock:
    """An exclusive flock on `path`, held through one O_CLOEXEC fd until `release()`."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd, self.path = fd, path

    @classmethod
    async def acquire(cls, path: Path) -> LeaderLock:
        """Wait (without polling, without blocking the loop) until this process holds the lock."""
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            _owned_fds.add(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                await _Waiter(fd).wait()
            except BaseException:
                _close(fd)
                raise
            if _same_file(fd, path):
                return cls(fd, path)
            _close(fd)  # we locked a file that was deleted or replaced meanwhile: lock the new one

    def release(self) -> None:
        if self.fd >= 0:
            _close(self.fd)
            self.fd = -1


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


async def run_candidate(deps: Deps, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
                        grace_s: float = GRACE_S) -> None:
    """Stand for leadership until cancelled; while leading, run the scheduler.

    Start it in the lifespan's task group with `await tg.start(run_candidate, deps)`: a bad
    BANGUI_JOBS_MODULE raises ConfigError there (before `started()`), so the server fails at start.
    After that nothing but cancellation leaves this function.
    """
    jobs = load_jobs(deps.settings)
    path = Path(deps.store.path) / LOCK_NAME
    task_status.started()
    while True:
        lock: LeaderLock | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_watch_heartbeat, deps)  # followers warn about a wedged leader
                lock = await LeaderLock.acquire(path)
                tg.cancel_scope.cancel()
            assert lock is not None  # the task group only ends early by raising
            await _lead(deps, lock, jobs, grace_s)
        except Exception:
            log.exception("leader candidate failed; standing again in %gs", RETRY_S)
        finally:
            if lock is not None:
                lock.release()  # before any await: a sibling takes over now, not after our cleanup
        await anyio.sleep(RETRY_S)


async def _lead(deps: Deps, lock: LeaderLock, jobs: tuple[Job, ...], grace_s: float) -> None:
    """Lead until cancelled, or until our epoch is found stale (returns); release the lock at the end."""
    with anyio.CancelScope(shield=True):  # a claim cut short would leave a record nobody withdraws
        record = await offload(deps.store.leader.claim)
    epoch = record["epoch"]
    log.info("pid %d leads with epoch %d", record["pid"], epoch)
    scheduler = Scheduler(deps, epoch, jobs, clock=deps.store.leader.clock, grace_s=grace_s)
    try:  # from the claim on: a cancellation anywhere below still withdraws the record (finally)
        try:  # before any job: entries a crashed process left pending (the sync would copy its bans as `auto`)
            await reconcile_pending(deps)
        except Exception:
            log.exception("reconciling pending audit entries failed; the audit_reconcile job retries")
        async with anyio.create_task_group() as tg:
            tg.start_soon(_heartbeat, deps, scheduler, tg.cancel_scope)
            await scheduler.run()
            tg.cancel_scope.cancel()
        log.warning("pid %d lost epoch %d to another leader; standing again", record["pid"], epoch)
    finally:
        lock.release()  # first: the successor's wait ends now, not after our store write
        # Then withdraw our record (fenced by epoch: a no-op if the successor already published).
        with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
            try:
                await offload(deps.store.leader.release, epoch)
            except Exception:
                log.warning("could not withdraw the leader record of epoch %d", epoch, exc_info=True)


async def _heartbeat(deps: Deps, scheduler: Scheduler, scope: anyio.CancelScope) -> None:
    while True:
        await anyio.sleep(deps.settings.heartbeat_seconds)
        try:
            await offload(deps.store.leader.heartbeat, scheduler.epoch)
        except NotLeader:
            scheduler.lost = True  # makes the scheduler cancel its jobs at once, not after the grace
            scope.cancel()
            return
        except Exception as exc:  # a busy store: the next beat may pass; staleness shows in health
            log.warning("heartbeat of epoch %d not written: %s", scheduler.epoch, exc)


async def _watch_heartbeat(deps: Deps) -> None:
    """On a follower: warn (once per episode) when the leader's heartbeat is older than the threshold."""
    stale_after = deps.settings.leader_stale_seconds
    warned = False
    while True:
        await anyio.sleep(stale_after)
        try:
            record = deps.store.leader.current()  # one small read, every few seconds: fine inline
        except Exception as exc:
            log.debug("leader record unreadable: %s", exc)
            continue
        age = deps.store.leader.heartbeat_age(record) if record else 0.0
        if age > stale_after and not warned:
            log.warning("leader pid %s on %s (epoch %s) has not refreshed its heartbeat for %.0fs: "
                        "it may be wedged; restart it", record and record["pid"], record and record["host"],
                        record and record["epoch"], age)
        warned = age > stale_after
