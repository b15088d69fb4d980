# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The embedded Space: one SQLite file shared by threads and processes, with Consul's semantics.

Why SQLite: it gives atomic multi-key transactions across processes with nothing to install, so a
single machine (tests, laptops, CI) runs the same engine code as a Consul cluster.

How the Consul semantics are kept:

* one counter row is the global index; every write transaction takes ``counter + 1`` as its index,
  stamps it on every key it touches and stores it at commit, so indexes only grow and a write's
  index orders it after everything it read;
* writers start with ``BEGIN IMMEDIATE`` (the database write lock is taken up front, so two writers
  never read the same state and both commit), and threads of one process queue on a per-file
  ``threading.Lock`` first so they do not spin in SQLite's busy handler;
* every write transaction stamps its index on each *directory* it touched (each prefix of a
  written or deleted key that ends with ``/``), so the index of a prefix is one row read and a
  deletion moves it too (the Linda ``in`` relies on it); a prefix that does not end with ``/``
  gets the index of its directory, which may wake its waiters spuriously (allowed) but never
  makes a prefix index go backwards;
* sessions have an absolute expiry (``time.time()``); expired sessions are reaped lazily (at the
  start of write transactions, before reads that could see their locks, at every poll of a
  blocking query), releasing their locks like Consul's ``behavior=release``.

Lock waits are not failures: a write (or read) that finds the database locked by another process
waits for as long as the lock is held, logging every ``BUSY_TIMEOUT_MS``, instead of failing (a
failed step commit is what made a lock held for 30 s re-run operations).  And the time the store
refused writes does not count against sessions: the write that gets the lock after waiting adds
the length of the wait to the expiry of every session alive when it began (``_credit_stall``),
so a live process whose renewals queued behind the lock keeps its session and its node locks,
as Consul resets session timers after an election.

The WAL file is part of the store: committed transactions live there until a checkpoint copies
them into the main file.  SQLite's clean close of the last connection checkpoints, then deletes
the WAL and the ``-shm`` file; a crash leaves both.  So a store that nobody has open and that has
its ``-shm`` file but no WAL was stopped uncleanly and lost its WAL: opening it is refused
(``_check_wal``) rather than silently going back in time.  "Nobody has it open" is known, not
guessed: every open Space holds a shared ``flock`` on ``<store>-wflock`` for its lifetime, and the
check runs only for an opener that gets the lock exclusively (alone); others skip it, since a
store in use may be between the two deletions of a clean close.

Blocking queries: same-process waiters are woken by a ``threading.Condition`` notified after each
commit; changes made by other processes are found by polling the counter with a backoff from 1 ms
to 50 ms (the counter read is one indexed row, so polling is cheap).
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import sqlite3
import threading
import time
import uuid
import weakref
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ..errors import SpaceDataError, SpaceError
from .base import (MAX_VALUE_BYTES, READ_VERBS, Entry, Op, Space, TxnResult, check_ops, dumps,
                   loads, op_lock, op_unlock)

# Consul refuses TTLs under 10 s; the embedded Space accepts much shorter ones so tests of expiry
# stay fast, but not so short that a loaded machine expires live sessions between two renewals.
MIN_SESSION_TTL = 0.5
# SQLite's own busy timeout for cross-process write contention.
BUSY_TIMEOUT_MS = 30000
# A write that waited longer than this for the store's lock credits sessions with the wait.
STALL_CREDIT_MIN = 0.25
LOCK_SUFFIX = "-wflock"
# How long opening a new store waits for others opening it at the same moment.
INIT_LOCK_WAIT = 60.0
_POLL_MIN = 0.001
_POLL_MAX = 0.05

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB,
    create_index INTEGER NOT NULL,
    modify_index INTEGER NOT NULL,
    session TEXT
);
CREATE INDEX IF NOT EXISTS kv_session ON kv (session) WHERE session IS NOT NULL;
DROP TABLE IF EXISTS tombstones;
CREATE TABLE IF NOT EXISTS dirs (prefix TEXT PRIMARY KEY, idx INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    ttl REAL NOT NULL,
    expires_at REAL NOT NULL,
    behavior TEXT NOT NULL DEFAULT 'release'
);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);
INSERT OR IGNORE INTO meta (name, value) VALUES ('index', 1);
INSERT OR IGNORE INTO meta (name, value) SELECT 'dirs_floor', value FROM meta WHERE name = 'index';
INSERT OR IGNORE INTO meta (name, value) VALUES ('credited_until', 0);
DELETE FROM meta WHERE name IN ('tomb_floor', 'tomb_count');
"""


class _Shared:
    """What every EmbeddedSpace of this process on one file shares: the in-process write lock and
    the condition that wakes same-process waiters after a commit."""

    def __init__(self) -> None:
        self.write_lock = threading.Lock()
        self.cond = threading.Condition(threading.Lock())
        self.seq = 0
        # No session of the file expires before this time (see EmbeddedSpace._quiet_until).
        self.no_expiry_before = 0.0
        # Threads of this process waiting for the write lock: token -> when they began.
        self.waiters: Dict[int, float] = {}
        self.waiters_lock = threading.Lock()

    def notify(self) -> None:
        with self.cond:
            self.seq += 1
            self.cond.notify_all()


_SHARED: Dict[str, _Shared] = {}
_SHARED_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    # A forked child inherits these locks in whatever state another thread left them; only the
    # forking thread survives, so fresh locks are the correct state.
    global _SHARED_LOCK
    _SHARED_LOCK = threading.Lock()
    for shared in _SHARED.values():
        shared.__init__()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _shared_for(path: str) -> _Shared:
    with _SHARED_LOCK:
        shared = _SHARED.get(path)
        if shared is None:
            shared = _SHARED[path] = _Shared()
        return shared


log = logging.getLogger("wfengine.space.embedded")


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _hold_store(path: str) -> int:
    """Open ``<store>-wflock`` and hold a shared flock on it for the Space's lifetime; check the
    WAL first when this opener is alone (it got the lock exclusively).  Returns the descriptor."""
    try:
        fd = os.open(path + LOCK_SUFFIX, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise SpaceError("%s: cannot open the store's lock file (%s)" % (path, exc))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            alone = False
        if alone:
            _check_wal(path)
        fcntl.flock(fd, fcntl.LOCK_SH)     # waits only while an opener alone checks
        return fd
    except BaseException:
        os.close(fd)
        raise


def _check_wal(path: str) -> None:
    """Refuse a store that was stopped uncleanly and then lost its WAL file: the transactions
    committed since the last checkpoint were in it, and opening the main file alone would
    silently go back to an older state (operations that had run would run again).  Called only
    when nobody else has the store open (``_hold_store``)."""
    if os.path.exists(path + "-wal") or not os.path.exists(path + "-shm") \
            or not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    raise SpaceError("%s: the store was not closed cleanly and its write-ahead log %s-wal is "
                     "missing: progress committed since the last checkpoint would be lost; put the "
                     "-wal file back (or, to accept the loss, remove %s-shm)" % (path, path, path))


def _closed(path: str, conns: List[sqlite3.Connection], fds: List[int]) -> None:
    """Close connections, then let go of the store (its shared lock).  Also run for a space
    never closed (weakref finalizer)."""
    for conn in conns:
        try:
            conn.close()
        except sqlite3.Error:
            pass
    del conns[:]
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    del fds[:]


class _Rollback(Exception):
    """Internal: a check failed, undo the transaction."""


def _prefix_clause(prefix: str) -> Tuple[str, Tuple[Any, ...]]:
    # ``key >= prefix`` lets SQLite use the primary key to start the range; substr() then keeps
    # exactly the keys that start with the prefix (no LIKE/GLOB escaping issues).
    if not prefix:
        return "1", ()
    return "key >= ? AND substr(key, 1, ?) = ?", (prefix, len(prefix), prefix)


def _encode(key: str, value: Any) -> str:
    try:
        text = dumps(value)
    except (TypeError, ValueError) as exc:
        raise SpaceDataError("%s: value cannot be stored as JSON (%s)" % (key, exc))
    if len(text.encode("utf-8")) > MAX_VALUE_BYTES:
        raise SpaceError("%s: value of %d bytes exceeds the limit of %d"
                         % (key, len(text.encode("utf-8")), MAX_VALUE_BYTES))
    return text


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise SpaceError("invalid key %r: keys are non-empty strings" % (key,))


class EmbeddedSpace(Space):
    """A Space in one SQLite file; open one per process (or share one between threads)."""

    name = "embedded"
    # A batch here is CPU under one GIL with no round trip to overlap: measured on the 2k-node
    # install (docs/benchmarks.md), 1 lane 4.1 s, 2 lanes 4.6 s, 4 lanes 4.8 s.
    batch_lanes = 1

    def __init__(self, path: str) -> None:
        if not path:
            raise SpaceError("embedded space: empty path")
        self.path = os.path.realpath(os.path.expanduser(path))
        parent = os.path.dirname(self.path)
        if parent and not os.path.isdir(parent):
            raise SpaceError("%s: directory does not exist" % parent)
        self._shared = _shared_for(self.path)
        self._local = threading.local()
        self._conns: List[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        # False for a reader that must leave the file as it found it (wfctl plan): expired
        # sessions are then seen as they are, not reaped (a reap is a write).
        self.reap_on_read = True
        self._pid = os.getpid()
        self._inherited: List[sqlite3.Connection] = []
        self._fds: List[int] = [_hold_store(self.path)]
        self._finalizer = weakref.finalize(self, _closed, self.path, self._conns, self._fds)
        # Not at interpreter exit: threads (in-process workers) may still use the connections;
        # left open, the WAL and -shm stay, which is a consistent store.
        self._finalizer.atexit = False
        self._init_schema()

    # ---- connections -----------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise SpaceError("%s: space is closed" % self.path)
        if self._pid != os.getpid():
            # SQLite connections must not cross a fork.  They are kept referenced, never closed:
            # closing them here could disturb the parent's locks or its WAL file.
            self._pid = os.getpid()
            self._inherited.extend(self._conns)
            del self._conns[:]      # the same list: the finalizer closes the child's own
            self._conns_lock = threading.Lock()
            self._local = threading.local()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000.0,
                                       isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout = %d" % BUSY_TIMEOUT_MS)
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise SpaceError("%s: cannot open the space (%s)" % (self.path, exc))
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def _init_schema(self) -> None:
        # Several processes (or threads) opening a new store at once: switching to WAL needs the
        # file alone, and SQLite may answer "locked" at once, without its busy handler.  A lock
        # wait is not an error: try again, with backoff.
        delay, deadline = 0.005, time.monotonic() + INIT_LOCK_WAIT
        while True:
            try:
                return self._init_schema_once()
            except SpaceError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _init_schema_once(self) -> None:
        conn = self._conn()
        try:
            # WAL lets readers go on while one writer commits; the mode is stored in the file,
            # so only the first opener really switches it.
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SpaceError("%s: cannot switch to WAL journal mode (got %s)"
                                 % (self.path, mode))
            with self._shared.write_lock:
                self._begin_write(conn, time.time())
                try:
                    # not executescript(): it would commit on its own, outside our lock
                    for stmt in _SCHEMA.split(";"):
                        if stmt.strip():
                            conn.execute(stmt)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise SpaceError("%s: cannot initialise the space (%s)" % (self.path, exc))

    def close(self) -> None:
        self._closed = True
        with self._conns_lock:
            self._finalizer()

    # ---- transactions ----------------------------------------------------------------------------
    def _read(self, fn, reap: bool = True):
        """Run ``fn(conn)`` in one read transaction (a consistent snapshot)."""
        if reap and self.reap_on_read:
            self._reap_if_due()
        conn = self._conn()
        began = time.time()
        while True:
            try:
                conn.execute("BEGIN")
                try:
                    return fn(conn)
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if not _is_busy(exc):
                    raise SpaceError("%s: read failed (%s)" % (self.path, exc))
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._still_locked(began)

    def _still_locked(self, began: float) -> None:
        """A lock wait is slowness, not a failure: say so, and go on waiting."""
        if self._closed:
            raise SpaceError("%s: space is closed" % self.path)
        log.warning("%s: the store is locked by another process (waiting for %.0f s)",
                    self.path, time.time() - began)

    def _begin_write(self, conn: sqlite3.Connection, began: float) -> None:
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.Error as exc:
                if not _is_busy(exc):
                    raise
                self._still_locked(began)

    def _credit_stall(self, conn: sqlite3.Connection, stall_from: float, now: float) -> bool:
        """The store refused writes since ``stall_from`` (this process's oldest waiting writer
        began then): sessions alive at that time get the wait added to their expiry, once (the
        credited interval is recorded, so writers of other processes that waited on the same lock
        do not add it again).  Renewals could not be written meanwhile; a TTL counts only the
        time the store accepted writes.  True if something was credited."""
        row = conn.execute("SELECT value FROM meta WHERE name = 'credited_until'").fetchone()
        start = max(stall_from, float(row[0]) if row else 0.0)
        credit = now - start
        if credit <= STALL_CREDIT_MIN:
            return False
        n = conn.execute("UPDATE sessions SET expires_at = expires_at + ? WHERE expires_at > ?",
                         (credit, start)).rowcount
        conn.execute("INSERT INTO meta (name, value) VALUES ('credited_until', ?) "
                     "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (now,))
        if n:
            log.warning("%s: writes waited %.1f s for the store's lock; %d session(s) credited with "
                        "that time", self.path, credit, n)
        return True

    def _write(self, fn):
        """Run ``fn(conn, new_index)`` in one write transaction; ``fn`` returns
        ``(result, changed)``.

        The counter is bumped to ``new_index`` only if something changed.  Expired sessions are
        reaped first, inside the same transaction, so no operation ever sees a lock held by a dead
        session; when ``fn`` raises ``_Rollback`` (a failed check) only its own effects are undone
        (a savepoint, taken only when something was reaped: otherwise the whole transaction is
        rolled back, two statements fewer on the hot path), and the exception goes on to the
        caller."""
        conn = self._conn()
        committed = False
        local = self._local
        shared = self._shared
        began = time.time()
        token = object()
        with shared.waiters_lock:
            shared.waiters[id(token)] = began
        try:
            with shared.write_lock:
                try:
                    self._begin_write(conn, began)
                finally:
                    with shared.waiters_lock:
                        stall_from = min(shared.waiters.values())
                        del shared.waiters[id(token)]
                local.touched = set()
                try:
                    new_index = self._index(conn) + 1
                    now = time.time()
                    credited = (now - stall_from > STALL_CREDIT_MIN
                                and self._credit_stall(conn, stall_from, now))
                    reaped = self._reap(conn, new_index) or credited
                    if reaped:
                        conn.execute("SAVEPOINT ops")
                    by_reaping = set(local.touched)
                    try:
                        result, changed = fn(conn, new_index)
                    except _Rollback:
                        if not reaped:
                            conn.execute("ROLLBACK")
                            raise
                        conn.execute("ROLLBACK TO ops")
                        self._stamp_dirs(conn, by_reaping, new_index)
                        self._set_index(conn, new_index)
                        conn.execute("COMMIT")
                        committed = True
                        raise
                    if reaped:
                        conn.execute("RELEASE ops")
                    if changed or reaped:
                        self._stamp_dirs(conn, local.touched, new_index)
                        self._set_index(conn, new_index)
                    conn.execute("COMMIT")
                    committed = changed or reaped
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise SpaceError("%s: write failed (%s)" % (self.path, exc))
        finally:
            local.touched = None
            if committed:
                self._shared.notify()

    @staticmethod
    def _index(conn: sqlite3.Connection) -> int:
        return conn.execute("SELECT value FROM meta WHERE name = 'index'").fetchone()[0]

    @staticmethod
    def _set_index(conn: sqlite3.Connection, index: int) -> None:
        conn.execute("UPDATE meta SET value = ? WHERE name = 'index'", (index,))

    def _touch(self, keys: Iterable[str]) -> None:
        """Note keys written or deleted by the current write transaction (see _stamp_dirs)."""
        self._local.touched.update(keys)

    @staticmethod
    def _stamp_dirs(conn: sqlite3.Connection, touched: Set[str], index: int) -> None:
        """Stamp ``index`` on every directory of the touched keys: a blocking query then reads
        its prefix's index in one row instead of scanning the keys (and their deletions)."""
        dirs = {""}
        for key in touched:
            i = key.find("/")
            while i >= 0:
                dirs.add(key[:i + 1])
                i = key.find("/", i + 1)
        conn.executemany("INSERT INTO dirs (prefix, idx) VALUES (?, ?) "
                         "ON CONFLICT (prefix) DO UPDATE SET idx = excluded.idx",
                         [(d, index) for d in dirs])

    # ---- sessions: reaping -----------------------------------------------------------------------
    def _reap(self, conn: sqlite3.Connection, new_index: int) -> bool:
        """Destroy expired sessions and release their locks; True if something changed."""
        now = time.time()
        if now < self._shared.no_expiry_before:
            return False
        dead = [row[0] for row in conn.execute(
            "SELECT id FROM sessions WHERE expires_at <= ?", (now,))]
        for sid in dead:
            self._drop_session(conn, sid, new_index)
        self._quiet_until(conn, now)
        return bool(dead)

    def _quiet_until(self, conn: sqlite3.Connection, now: float) -> None:
        """Note until when no session can expire, so reads and writes skip the expiry query
        until then (with four workers polling one file it was 6 % of their CPU): not before the
        first expiry now in the table, as renewals only push expiries later, nor before a
        session created from now on could expire (its TTL is at least MIN_SESSION_TTL; half of
        it, for a creation computed just before ``now`` and committed just after)."""
        row = conn.execute("SELECT MIN(expires_at) FROM sessions").fetchone()
        first = row[0] if row and row[0] is not None else float("inf")
        self._shared.no_expiry_before = min(first, now + MIN_SESSION_TTL / 2)

    def _drop_session(self, conn: sqlite3.Connection, sid: str, new_index: int) -> int:
        row = conn.execute("SELECT behavior FROM sessions WHERE id = ?", (sid,)).fetchone()
        conn.execute("DELETE FROM sessions WHERE id = ?", (sid,))
        held = [r[0] for r in conn.execute("SELECT key FROM kv WHERE session = ?", (sid,))]
        if row is not None and row[0] == "delete":
            self._remove(conn, held)
        else:
            conn.execute("UPDATE kv SET session = NULL, modify_index = ? WHERE session = ?",
                         (new_index, sid))
            self._touch(held)
        return len(held)

    def _reap_if_due(self) -> None:
        """Reap before a read if some session has expired, so reads never show a dead holder."""
        now = time.time()
        if now < self._shared.no_expiry_before:
            return

        def look(conn):
            found = conn.execute("SELECT 1 FROM sessions WHERE expires_at <= ? LIMIT 1",
                                 (now,)).fetchone()
            if found is None:
                self._quiet_until(conn, now)
            return found
        row = self._read(look, reap=False)
        if row is not None:
            self._write(lambda c, i: (None, False))

    # ---- rows ------------------------------------------------------------------------------------
    @staticmethod
    def _entry(row) -> Entry:
        key, value, modify_index, session = row
        return Entry(key, loads(key, value), modify_index, session)

    @staticmethod
    def _row(conn: sqlite3.Connection, key: str):
        return conn.execute("SELECT key, value, modify_index, session FROM kv WHERE key = ?",
                            (key,)).fetchone()

    def _store(self, conn: sqlite3.Connection, key: str, text: str, index: int,
               session: Any = ()) -> None:
        """Insert or update ``key``; ``session`` () keeps the holder, else sets it (None frees)."""
        if session == ():
            conn.execute(
                "INSERT INTO kv (key, value, create_index, modify_index, session) "
                "VALUES (?, ?, ?, ?, NULL) ON CONFLICT (key) DO UPDATE SET "
                "value = excluded.value, modify_index = excluded.modify_index",
                (key, text, index, index))
        else:
            conn.execute(
                "INSERT INTO kv (key, value, create_index, modify_index, session) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "value = excluded.value, modify_index = excluded.modify_index, "
                "session = excluded.session",
                (key, text, index, index, session))
        self._local.touched.add(key)

    def _remove(self, conn: sqlite3.Connection, keys: List[str]) -> None:
        if keys:
            conn.executemany("DELETE FROM kv WHERE key = ?", [(k,) for k in keys])
            self._touch(keys)

    @staticmethod
    def _session_alive(conn: sqlite3.Connection, sid: Optional[str]) -> bool:
        if not sid:
            return False
        row = conn.execute("SELECT expires_at FROM sessions WHERE id = ?", (sid,)).fetchone()
        return row is not None and row[0] > time.time()

    # ---- key/value primitives --------------------------------------------------------------------
    def get(self, key: str) -> Optional[Entry]:
        row = self._read(lambda conn: self._row(conn, key))
        return None if row is None else self._entry(row)

    def list(self, prefix: str) -> List[Entry]:
        where, args = _prefix_clause(prefix)
        rows = self._read(lambda conn: conn.execute(
            "SELECT key, value, modify_index, session FROM kv WHERE %s ORDER BY key" % where,
            args).fetchall())
        return [self._entry(row) for row in rows]

    def keys(self, prefix: str) -> List[str]:
        where, args = _prefix_clause(prefix)
        return self._read(lambda conn: self._keys(conn, where, args))

    @staticmethod
    def _keys(conn: sqlite3.Connection, where: str, args: Tuple[Any, ...]) -> List[str]:
        return [row[0] for row in conn.execute(
            "SELECT key FROM kv WHERE %s ORDER BY key" % where, args)]

    def put(self, key: str, value: Any) -> int:
        _check_key(key)
        text = _encode(key, value)

        def apply(conn, index):
            self._store(conn, key, text, index)
            return index, True
        return self._write(apply)

    def txn(self, ops: Sequence[Op]) -> TxnResult:
        ops = list(ops)
        check_ops(ops, self.max_txn_ops)
        if not ops:
            return TxnResult(ok=True)
        # Encode before opening the transaction: a bad value is the caller's error, not a failed
        # check, and must not hold the write lock.
        texts: List[Optional[str]] = []
        for op in ops:
            if op.verb not in ("delete_tree", "get_tree"):
                _check_key(op.key)
            needs_value = (op.verb in ("set", "cas", "lock")
                           or (op.verb == "unlock" and op.value is not None))
            texts.append(_encode(op.key, op.value) if needs_value else None)
        try:
            if all(op.verb in READ_VERBS for op in ops):
                # read-only: a snapshot, no write lock, no new index
                return self._read(lambda conn: self._apply(conn, ops, texts, 0)[0])
            return self._write(lambda conn, index: self._apply(conn, ops, texts, index))
        except _Rollback as rollback:
            return rollback.args[0]

    def _apply(self, conn: sqlite3.Connection, ops: List[Op], texts: List[Optional[str]],
               index: int) -> Tuple[TxnResult, bool]:
        """Apply ``ops`` in order (later operations see earlier ones, as in Consul).

        Rows are read only by the verbs that look at them: a batch commit holds dozens of
        operations."""
        entries: Dict[str, Optional[Entry]] = {}
        trees: Dict[str, List[Entry]] = {}
        failed: List[str] = []
        changed = False
        touched = getattr(self._local, "touched", None)   # None: a read-only transaction
        for op, text in zip(ops, texts):
            verb, key = op.verb, op.key
            if verb == "set":
                self._store(conn, key, text, index)
                changed = True
                continue
            if verb == "delete":
                if conn.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount:
                    touched.add(key)
                changed = True
                continue
            if verb == "delete_tree":
                where, args = _prefix_clause(key)
                self._remove(conn, self._keys(conn, where, args))
                changed = True
                continue
            if verb == "get_tree":
                where, args = _prefix_clause(key)
                trees[key] = [self._entry(row) for row in conn.execute(
                    "SELECT key, value, modify_index, session FROM kv WHERE %s ORDER BY key"
                    % where, args)]
                continue
            row = self._row(conn, key)
            if verb == "get":
                entries[key] = None if row is None else self._entry(row)
            elif verb == "cas":
                if (row is None and op.index != 0) or (row is not None and row[2] != op.index):
                    failed.append(key)
                    break
                self._store(conn, key, text, index)
                changed = True
            elif verb in ("delete_cas", "delete_cas_present"):
                # Stricter than Consul (which accepts a delete-cas on a missing key): a taker whose
                # tuple was already taken must fail, or two takers would both "get" it.
                if row is None or row[2] != op.index:
                    failed.append(key)
                    break
                conn.execute("DELETE FROM kv WHERE key = ?", (key,))
                touched.add(key)
                changed = True
            elif verb == "check_index":
                if row is None or row[2] != op.index:
                    failed.append(key)
                    break
            elif verb == "check_session":
                if row is None or not op.session or row[3] != op.session:
                    failed.append(key)
                    break
            elif verb == "check_not_exists":
                if row is not None:
                    failed.append(key)
                    break
            elif verb == "lock":
                holder = None if row is None else row[3]
                if holder not in (None, op.session) or not self._session_alive(conn, op.session):
                    failed.append(key)
                    break
                self._store(conn, key, text, index, session=op.session)
                changed = True
            elif verb == "unlock":
                if row is None or not op.session or row[3] != op.session:
                    failed.append(key)
                    break
                self._store(conn, key, text if text is not None else row[1], index, session=None)
                changed = True
        if failed:
            raise _Rollback(TxnResult(ok=False, failed=failed))
        return TxnResult(ok=True, entries=entries, index=index if changed else 0,
                         trees=trees), changed

    # ---- blocking queries ------------------------------------------------------------------------
    @staticmethod
    def _prefix_index(conn: sqlite3.Connection, prefix: str) -> int:
        """The index of the last change under ``prefix``'s directory (deletions included)."""
        row = conn.execute("SELECT idx FROM dirs WHERE prefix = ?",
                           (prefix[:prefix.rfind("/") + 1],)).fetchone()
        floor = conn.execute("SELECT value FROM meta WHERE name = 'dirs_floor'").fetchone()[0]
        return max(row[0] if row else 0, floor)

    def _prefix_state(self, conn: sqlite3.Connection, prefix: str) -> Tuple[int, List[str]]:
        """The prefix's index and its keys."""
        where, args = _prefix_clause(prefix)
        return self._prefix_index(conn, prefix), self._keys(conn, where, args)

    def wait(self, prefix: str, index: int, timeout: float) -> Tuple[int, List[str]]:
        if index <= 0:
            return self._read(lambda conn: self._prefix_state(conn, prefix))
        deadline = time.monotonic() + max(0.0, timeout)
        shared = self._shared
        delay = _POLL_MIN
        seen_global = None
        while True:
            with shared.cond:
                seq = shared.seq
            self._reap_if_due()
            conn = self._conn()
            try:
                current_global = self._index(conn)
                if current_global != seen_global:
                    # Something changed somewhere: look whether it is under our prefix (one row),
                    # and list the keys only then.
                    seen_global = current_global
                    if self._prefix_index(conn, prefix) > index:
                        result = self._read(lambda c: self._prefix_state(c, prefix), reap=False)
                        if result[0] > index:
                            return result
            except sqlite3.Error as exc:
                if not _is_busy(exc):
                    raise SpaceError("%s: read failed (%s)" % (self.path, exc))
                # SQLITE_BUSY on a read (another connection recovering the WAL): look again later
                self._still_locked(time.time())
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._read(lambda c: self._prefix_state(c, prefix), reap=False)
            with shared.cond:
                if shared.seq == seq:
                    shared.cond.wait(min(delay, remaining))
                if shared.seq != seq:
                    delay = _POLL_MIN  # a local commit: look now, and poll fast again
                else:
                    delay = min(delay * 2, _POLL_MAX)

    # ---- sessions and locks ----------------------------------------------------------------------
    def session_create(self, name: str, ttl: float, behavior: str = "release") -> str:
        if behavior not in ("release", "delete"):
            raise SpaceError("session %r: behavior must be release or delete" % name)
        ttl = float(ttl)
        if ttl < MIN_SESSION_TTL:
            raise SpaceError("session %r: ttl %.3fs is below the minimum of %.1fs"
                             % (name, ttl, MIN_SESSION_TTL))
        sid = str(uuid.uuid4())

        def apply(conn, index):
            conn.execute("INSERT INTO sessions (id, name, ttl, expires_at, behavior) "
                         "VALUES (?, ?, ?, ?, ?)", (sid, name, ttl, time.time() + ttl, behavior))
            return sid, False
        return self._write(apply)

    def session_renew(self, session: str) -> bool:
        def apply(conn, index):
            # Reaping ran first: an expired session is gone, its locks released.
            row = conn.execute("SELECT ttl FROM sessions WHERE id = ?", (session,)).fetchone()
            if row is None:
                return False, False
            conn.execute("UPDATE sessions SET expires_at = ? WHERE id = ?",
                         (time.time() + row[0], session))
            return True, False
        return self._write(apply)

    def session_destroy(self, session: str) -> None:
        def apply(conn, index):
            return None, self._drop_session(conn, session, index) > 0
        self._write(apply)

    def acquire(self, key: str, session: str, value: Any = None) -> bool:
        return self.txn([op_lock(key, value, session)]).ok

    def release(self, key: str, session: str) -> bool:
        return self.txn([op_unlock(key, session)]).ok
