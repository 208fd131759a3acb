"""The audit log: who did what, append-only, tamper-evident, shared by every worker and the CLI.

One SQLite file (`<data dir>/audit.db`, 0600, WAL). Each entry carries `prev` (the previous entry's
hash) and `hash` = HMAC-SHA256(key, prev + the entry's canonical JSON), with a key kept in
`<data dir>/audit-key` (0600). Appends serialise on SQLite's write lock (BEGIN IMMEDIATE), so ids are
consecutive and the chain has no forks whichever process writes. `at` never decreases along the chain
(it is max(clock, previous at)), which lets time filters become id ranges.

Write-ahead (issue 18): an action appends its entry as `pending` (`begin`) before any side effect, with an
`intents` row in the same transaction (its owner process and, for bans/unbans, the plan: jail, origin, every
address); after the side effect it appends a completion (`complete`): a row of its own in the same chain, naming
the started entry in `of`, whose transaction also deletes the intent. So the log stays append-only and an edit
of a completion breaks the chain like any other edit. Readers (`page`) show one entry per action with its
current outcome (the completion's, else `pending`). A unique index allows one completion per entry.

The head (last id, its hash, signed) lives in the `head` table, written by each append: ids continue after the
head (never reused after a tail cut), and `verify()` reports entries missing after the last one it finds
(a tail cut, a wipe). `head()` is what an operator anchors elsewhere (GET /api/v1/audit/head). A head row
removed too is not made again from the rows: the `audit-head` marker file says the log had one, and an entry
`audit.head_lost` records the loss in the chain (verify reports it).

`verify()` walks the chain and names the first entry that was altered (its hash does not match) or
removed (an id is missing, the start of the log is not covered by a signed checkpoint, or the newest
entries are gone: the head names a later one). Retention (`purge`) deletes the oldest entries and leaves a
checkpoint signed with the same key that records where the chain continues, so what remains still verifies.

Limit (documented in docs/audit.md): someone who can read the key file can rewrite the whole chain (and
its head); the chain proves that nobody without that key (e.g. a process with write access to audit.db
only, or an edit by hand) changed it. Deleting audit.db or the marker file as well is detected only against
a head kept elsewhere.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from store.base import Clock, bound_wal, write_secret_file
from store.connections import PerThread
from store.inline import NoWait

FIELDS = ("id", "at", "actor", "role", "via", "source_ip", "action", "target", "outcome", "status", "details")
COMPLETED = ("actor", "role", "via", "outcome", "status", "details")  # what a completion sets on its entry
# `pending`: started, not completed (yet); `partial`: failed after part of its work was done; `interrupted`:
# its process died mid-action and the leader completed the entry with what fail2ban says was applied.
OUTCOMES = ("ok", "denied", "failed", "pending", "partial", "interrupted")
COLUMNS = (*FIELDS, "prev", "hash", "of")
_INSERT = f"INSERT INTO entries ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
GENESIS = "0" * 64
HEAD_LOST = "audit.head_lost"  # written when a process finds the head removed (see AuditLog.__init__)
MAX_LIMIT = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, actor TEXT NOT NULL, role TEXT, via TEXT NOT NULL,
    source_ip TEXT, action TEXT NOT NULL, target TEXT, outcome TEXT NOT NULL, status INTEGER NOT NULL,
    details TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL, of INTEGER);
CREATE INDEX IF NOT EXISTS entries_actor ON entries(actor, id);
CREATE INDEX IF NOT EXISTS entries_target ON entries(target, id);
CREATE INDEX IF NOT EXISTS entries_problems ON entries(outcome, id) WHERE outcome != 'ok';
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY, first_id INTEGER NOT NULL, prev TEXT NOT NULL, last_at REAL NOT NULL,
    purged INTEGER NOT NULL, made_at REAL NOT NULL, signature TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS head (
    one INTEGER PRIMARY KEY CHECK (one = 1), last_id INTEGER NOT NULL, at REAL NOT NULL, hash TEXT NOT NULL,
    signature TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS intents (entry_id INTEGER PRIMARY KEY, owner TEXT NOT NULL, plan TEXT);
DROP INDEX IF EXISTS entries_at;
DROP INDEX IF EXISTS entries_outcome;
"""
# Each index is one more B-tree page written to the WAL by every append (a ban's audit entry, issue 13). Not
# indexed, on purpose: `at` (it never decreases along ids, so a time bound is a binary search over ids:
# `_first_id`), and the outcome "ok" (almost every entry: reading ids newest first finds them at once). Logs
# made before had both indexes: they are dropped on open (the DROPs above; the partial index is built once).
# `entries_of` is written by completions only (a partial index): it finds an entry's completion, and its
# uniqueness refuses a second one (a late completion racing the leader's reconciliation).
_COMPLETIONS = "CREATE UNIQUE INDEX IF NOT EXISTS entries_of ON entries(of) WHERE of IS NOT NULL"


def canonical(entry: dict[str, Any]) -> bytes:
    """The bytes an entry's hash covers: its fields in a fixed order, as compact JSON (and, for a completion,
    the id of the entry it completes: entries written before completions existed hash as they did)."""
    values = [entry[f] for f in FIELDS]
    if entry.get("of") is not None:
        values.append(entry["of"])
    return json.dumps(values, separators=(",", ":"), sort_keys=True, ensure_ascii=True).encode()


class AuditLog:
    def __init__(self, data_dir: Path, clock: Clock) -> None:
        self.path = data_dir / "audit.db"
        self.clock = clock
        self._key = _load_key(data_dir / "audit-key")
        self._connections = PerThread(self._connect)
        self.nowait = NoWait(self._connect)  # store/inline.py: appends on the event loop when nothing waits
        created = not self.path.exists()
        conn = self._conn()
        conn.executescript(_SCHEMA)
        if "of" not in {r[1] for r in conn.execute("PRAGMA table_info(entries)")}:  # a log from before issue 18
            conn.execute("ALTER TABLE entries ADD COLUMN of INTEGER")
        conn.execute(_COMPLETIONS)
        # The marker file (outside audit.db) says this log has kept a head: a head missing later was removed (with
        # a tail cut, or a wipe), not a log from before the head existed, and is not silently made again from
        # what the rows show: an entry of its own records the loss in the chain, and verify() reports it.
        self.marker = data_dir / "audit-head"
        lost: tuple[int, float, str] | None = None
        with self._write() as tx:
            if tx.execute("SELECT 1 FROM head").fetchone() is None:
                last = self._tail(tx) or (0, 0.0, GENESIS)
                if self.marker.exists():
                    lost = last
                else:  # a new log, or one from before the head existed: its last entry is the head
                    self._set_head(tx, *last)
        if not self.marker.exists():
            with contextlib.suppress(OSError):  # e.g. a full disk: the next process to open the log makes it
                write_secret_file(self.marker, "")
        if lost is not None:
            self.append({"actor": "bangui", "role": None, "via": "job", "source_ip": None, "action": HEAD_LOST,
                         "target": None, "outcome": "failed", "status": 500,
                         "details": {"reason": "the head record was removed", "rows_end_at": lost[0]}})
        if created:
            os.chmod(self.path, 0o600)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- connection per thread (SQLite connections must not cross threads or forks) ------------------
    def _conn(self) -> sqlite3.Connection:
        return self.nowait.conn() if self.nowait.active() else self._connections.get()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        bound_wal(conn, self.path)  # a WAL that cannot fill a small data disk by itself (store/base.py)
        conn.row_factory = sqlite3.Row
        return conn

    def close(self) -> None:
        self._connections.close()
        self.nowait.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _sign(self, data: bytes) -> str:
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    # -- writing ----------------------------------------------------------------------------------------
    def append(self, entry: dict[str, Any], intent: tuple[str, str | None] | None = None) -> int:
        """Append one entry (every field of FIELDS but `id`; `at` defaults to now; `of` for a completion);
        returns its id. `intent` (owner, plan JSON or None): a started entry's intents row, written with it.
        A completion deletes the intent of the entry it completes (sqlite3.IntegrityError: already completed)."""
        with self._write() as conn:
            head = conn.execute("SELECT last_id, at, hash FROM head").fetchone() or self._tail(conn)
            last_id, last_at, prev = head if head is not None else (0, 0.0, GENESIS)
            record = {f: entry.get(f) for f in FIELDS}
            record["id"] = entry_id = last_id + 1
            record["at"] = at = max(float(entry.get("at") or self.clock()), last_at)
            record["details"] = json.dumps(record["details"] or {}, separators=(",", ":"), sort_keys=True,
                                           default=str)
            record["of"] = of = entry.get("of")
            digest = self._sign(prev.encode() + canonical(record))
            conn.execute(_INSERT, [record[f] for f in FIELDS] + [prev, digest, of])
            self._set_head(conn, entry_id, at, digest)
            if intent is not None:
                conn.execute("INSERT INTO intents VALUES (?,?,?)", (entry_id, *intent))
            if of is not None:
                conn.execute("DELETE FROM intents WHERE entry_id = ?", (of,))
        return entry_id

    def _tail(self, conn: sqlite3.Connection) -> tuple[int, float, str] | None:
        """The chain's end as the rows show it (the head table is the authority once it exists)."""
        row = conn.execute("SELECT id, at, hash FROM entries ORDER BY id DESC LIMIT 1").fetchone()
        return (int(row[0]), float(row[1]), str(row[2])) if row else self._checkpoint_head(conn)

    def _set_head(self, conn: sqlite3.Connection, last_id: int, at: float, digest: str) -> None:
        conn.execute("INSERT OR REPLACE INTO head VALUES (1,?,?,?,?)",
                     (last_id, at, digest, self._sign(_head_bytes(last_id, digest))))

    def head(self) -> dict[str, Any]:
        """The newest entry's id and hash (`{"last_id": 0, ...}` for an empty log), to be kept elsewhere."""
        try:
            row = self._conn().execute("SELECT last_id, at, hash FROM head").fetchone()
        except sqlite3.OperationalError:  # dropped: verify() reports it
            row = None
        if row is None:
            return {"last_id": 0, "at": None, "hash": GENESIS}
        return {"last_id": int(row[0]), "at": float(row[1]), "hash": str(row[2])}

    def intents(self) -> list[dict[str, Any]]:
        """Started entries not completed yet, oldest first, each with its owner and plan (for reconciliation)."""
        rows = self._conn().execute("SELECT i.entry_id, i.owner, i.plan, e.* FROM intents i "
                                    "JOIN entries e ON e.id = i.entry_id ORDER BY i.entry_id").fetchall()
        return [dict(_public(r), owner=r["owner"], plan=json.loads(r["plan"]) if r["plan"] else None)
                for r in rows]

    def _checkpoint_head(self, conn: sqlite3.Connection) -> tuple[int, float, str] | None:
        row = conn.execute("SELECT first_id, last_at, prev FROM checkpoints ORDER BY id DESC LIMIT 1").fetchone()
        return (row[0] - 1, row[1], row[2]) if row else None

    def purge(self, older_than_days: float) -> int:
        """Delete entries older than the cutoff, leaving a signed checkpoint where the chain resumes."""
        cutoff = self.clock() - older_than_days * 86400.0
        with self._write() as conn:
            row = conn.execute("SELECT id, at FROM entries WHERE id < ? ORDER BY id DESC LIMIT 1",
                               (_first_id(conn, lambda at: at >= cutoff),)).fetchone()
            if row is None:
                return 0
            last_id, last_at = int(row[0]), float(row[1])
            prev = conn.execute("SELECT hash FROM entries WHERE id = ?", (last_id,)).fetchone()[0]
            purged = conn.execute("DELETE FROM entries WHERE id <= ?", (last_id,)).rowcount
            conn.execute("DELETE FROM intents WHERE entry_id <= ?", (last_id,))
            first_id, made_at = last_id + 1, self.clock()
            signature = self._sign(_checkpoint_bytes(first_id, prev, last_at))
            conn.execute("INSERT INTO checkpoints (first_id, prev, last_at, purged, made_at, signature) "
                         "VALUES (?,?,?,?,?,?)", (first_id, prev, last_at, purged, made_at, signature))
        return int(purged)

    # -- reading ----------------------------------------------------------------------------------------
    def page(self, *, since: float | None = None, until: float | None = None, actor: str | None = None,
             action: str | None = None, target: str | None = None, outcome: str | None = None,
             cursor: int | None = None, limit: int = 100) -> tuple[list[dict[str, Any]], int | None]:
        """Entries newest first, one per action with its current outcome (its completion's fields merged
        into the started entry); `action` matches a prefix ("jail." gives every jail action).
        Returns (items, next_cursor); next_cursor is None on the last page."""
        where, args = self._filters(since, until, actor, action, target, outcome)
        if cursor is not None:
            where.append("id < ?")
            args.append(cursor)
        # The completion subquery of an outcome filter hides the partial index from SQLite's planner: name it.
        table = "entries INDEXED BY entries_problems" if outcome not in (None, "ok") else "entries"
        sql = f"SELECT * FROM {table}" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY id DESC LIMIT ?"
        rows = self._conn().execute(sql, [*args, limit + 1]).fetchall()
        items = self._completed([_public(r) for r in rows[:limit]])
        return items, (items[-1]["id"] if len(rows) > limit else None)

    def _completed(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each started entry with its completion's outcome, status, details and actor (login names its user)."""
        started = [i["id"] for i in items if i["outcome"] == "pending"]
        if not started:
            return items
        found = {r["of"]: _public(r) for r in self._conn().execute(
            f"SELECT * FROM entries WHERE of IN ({','.join('?' * len(started))})", started)}
        return [dict(i, **{f: found[i["id"]][f] for f in COMPLETED}) if i["id"] in found else i for i in items]

    def iter_all(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every matching entry, newest first, page by page (for CSV)."""
        cursor = None
        while True:
            items, cursor = self.page(**filters, cursor=cursor, limit=MAX_LIMIT)
            yield from items
            if cursor is None:
                return

    def after(self, last_id: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Rows with id > last_id, oldest first (for consumers that follow the log): started entries (outcome
        `pending`) and completions (with `of`) each as a row of their own."""
        rows = self._conn().execute("SELECT * FROM entries WHERE id > ? ORDER BY id LIMIT ?",
                                    (last_id, limit)).fetchall()
        return [dict(_public(r), of=r["of"]) for r in rows]

    def last_id(self) -> int:
        """Entries ever appended (ids only grow; retention removes old rows, not ids): one index seek."""
        return int(self._conn().execute("SELECT coalesce(max(id), 0) FROM entries").fetchone()[0])

    def count(self) -> int:
        """Entries (one per action; completions are not counted)."""
        return int(self._conn().execute("SELECT count(*) FROM entries WHERE of IS NULL").fetchone()[0])

    def _filters(self, since: float | None, until: float | None, actor: str | None, action: str | None,
                 target: str | None, outcome: str | None) -> tuple[list[str], list[Any]]:
        conn, where, args = self._conn(), ["of IS NULL"], list[Any]()
        # `at` never decreases along ids: a time bound is an id range.
        if since is not None:
            where.append("id >= ?")
            args.append(_first_id(conn, lambda at: at >= since))
        if until is not None:
            where.append("id < ?")
            args.append(_first_id(conn, lambda at: at > until))
        if outcome is not None and outcome != "ok":
            where.append("outcome != 'ok'")  # the term of the partial index, as SQLite needs it to use it
        if outcome is not None:  # the current outcome: the completion's, if there is one (an index seek)
            where.append("coalesce((SELECT c.outcome FROM entries c WHERE c.of = entries.id), outcome) = ?")
            args.append(outcome)
        if actor is not None:  # a login's entry starts as `anonymous`; its completion names the user
            where.append("(actor = ? OR id IN (SELECT of FROM entries WHERE actor = ? AND of IS NOT NULL))")
            args += [actor, actor]
        if target is not None:
            where.append("target = ?")
            args.append(target)
        if action:
            where.append("substr(action, 1, ?) = ?")
            args += [len(action), action]
        return where, args

    def verify(self) -> dict[str, Any]:
        """Walk the chain, completions included, up to the head: {"ok", "checked", "first_bad_id", "reason"}."""
        conn = self._conn()
        try:
            head = conn.execute("SELECT last_id, hash, signature FROM head").fetchone()
        except sqlite3.OperationalError:  # the table itself was dropped
            head = None
        if head is not None and not hmac.compare_digest(self._sign(_head_bytes(head[0], head[1])), head[2]):
            return _bad(0, int(head[0]), "the head record was altered")
        checkpoints = {r["first_id"]: r for r in conn.execute("SELECT * FROM checkpoints")}
        for first_id, cp in checkpoints.items():
            expected = self._sign(_checkpoint_bytes(first_id, cp["prev"], cp["last_at"]))
            if not hmac.compare_digest(expected, cp["signature"]):
                return _bad(0, first_id, f"the retention checkpoint before entry {first_id} was altered")
        checked, expected_id, prev = 0, None, GENESIS
        for row in conn.execute("SELECT * FROM entries ORDER BY id"):
            entry = _public(row)
            entry_id = entry["id"]
            if expected_id is None:  # the start: entry 1, or the place a checkpoint says the chain resumes
                if entry_id != 1:
                    cp = checkpoints.get(entry_id)
                    if cp is None:
                        return _bad(checked, entry_id - 1, f"entries before {entry_id} were removed "
                                    "(no retention checkpoint covers them)")
                    prev = cp["prev"]
            elif entry_id != expected_id:
                return _bad(checked, expected_id, f"entry {expected_id} was removed")
            if row["prev"] != prev:
                return _bad(checked, entry_id, f"entry {entry_id} does not follow the entry before it")
            digest = self._sign(prev.encode() + canonical(dict(entry, details=row["details"], of=row["of"])))
            if not hmac.compare_digest(digest, row["hash"]):
                return _bad(checked, entry_id, f"entry {entry_id} was altered")
            if row["action"] == HEAD_LOST:
                return _bad(checked, entry_id, f"the head record was removed before entry {entry_id}: entries after "
                            f"{json.loads(row['details']).get('rows_end_at')} may have been removed (truncated)")
            checked, expected_id, prev = checked + 1, entry_id + 1, row["hash"]
        if expected_id is None and checkpoints:  # every entry purged: the chain resumes after the newest checkpoint
            newest = checkpoints[max(checkpoints)]
            expected_id, prev = newest["first_id"], newest["prev"]
        last_id = (expected_id or 1) - 1
        if head is None:
            if checked or checkpoints or self.marker.exists():
                return _bad(checked, last_id, "the head record was removed")
        elif int(head[0]) != last_id or (last_id and head[1] != prev):
            if int(head[0]) > last_id:  # a tail cut or a wipe: ids up to the head were written
                return _bad(checked, last_id + 1, f"the newest entries were removed: entries {last_id + 1} to "
                            f"{head[0]} are missing (truncated)")
            return _bad(checked, last_id, f"entry {last_id} is not the head the log recorded (entry {head[0]})")
        return {"ok": True, "checked": checked, "first_bad_id": None, "reason": None}


def _first_id(conn: sqlite3.Connection, reached: Callable[[float], bool]) -> int:
    """The first id from which every entry's `at` is `reached` (one past the last id when none is): a binary search
    over ids, each step one rowid seek, which is right because `at` never decreases along ids (`append`). Ids are
    consecutive but may start after 1 (retention) or, in a tampered log, skip: a step reads the next entry that
    exists."""
    low, high = conn.execute("SELECT coalesce(min(id), 1), coalesce(max(id), 0) + 1 FROM entries").fetchone()
    while low < high:
        middle = (low + high) // 2
        row = conn.execute("SELECT id, at FROM entries WHERE id >= ? ORDER BY id LIMIT 1", (middle,)).fetchone()
        if row is None or reached(row[1]):
            high = middle
        else:
            low = row[0] + 1
    return int(low)


def _bad(checked: int, entry_id: int, reason: str) -> dict[str, Any]:
    return {"ok": False, "checked": checked, "first_bad_id": entry_id, "reason": reason}


def _head_bytes(last_id: int, digest: str) -> bytes:
    return f"head|{last_id}|{digest}".encode()


def _checkpoint_bytes(first_id: int, prev: str, last_at: float) -> bytes:
    return f"checkpoint|{first_id}|{prev}|{last_at!r}".encode()


def _public(row: sqlite3.Row) -> dict[str, Any]:
    entry = {f: row[f] for f in FIELDS}
    entry["details"] = json.loads(row["details"])
    return entry


def _load_key(path: Path) -> bytes:
    """The chain's HMAC key, created once (first writer wins, every process then reads the same key)."""
    if not path.exists():
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
        write_secret_file(tmp, base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        try:
            os.link(tmp, path)  # atomic create-if-absent: a concurrent creator's key is kept
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return base64.b64decode(path.read_text().strip())
