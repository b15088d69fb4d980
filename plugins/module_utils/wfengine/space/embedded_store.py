# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The embedded Space's SQLite file: its schema, the connections (one per thread, none across a
fork), the store's lock and WAL check, and the read and write transactions every operation of
the Space runs in (``_read``, ``_write``), with the index and directory stamps they keep.

The index, the write lock and the directory stamps are the first three points of "How the
Consul semantics are kept" (embedded.py).

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
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Set, Tuple, TypeVar, cast

from ..errors import SpaceError

# SQLite's own busy timeout for cross-process write contention.
BUSY_TIMEOUT_MS = 30000
# A write that waited longer than this for the store's lock credits sessions with the wait.
STALL_CREDIT_MIN = 0.25
LOCK_SUFFIX = "-wflock"
# How long opening a new store waits for others opening it at the same moment.
INIT_LOCK_WAIT = 60.0

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
        _Shared.__init__(shared)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _shared_for(path: str) -> _Shared:
    with _SHARED_LOCK:
        shared = _SHARED.get(path)
        if shared is None:
            shared = _SHARED[path] = _Shared()
        return shared


log = logging.getLogger("wfengine.space.embedded")
R = TypeVar("R")      # what a read or write transaction's function returns


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


class EmbeddedStore:
    """Mixin of EmbeddedSpace: its connections and transactions.  Uses the Space's ``path``,
    ``_shared``, ``_local``, ``_conns``, ``_closed``, ``_pid``, ``_inherited``,
    ``reap_on_read`` and its reaping (``_reap``, ``_reap_if_due``: embedded_sessions.py)."""

    path: str
    reap_on_read: bool
    _shared: _Shared
    _local: threading.local
    _conns: List[sqlite3.Connection]
    _conns_lock: threading.Lock
    _closed: bool
    _pid: int
    _inherited: List[sqlite3.Connection]

    if TYPE_CHECKING:      # EmbeddedSpace's (annotations only: nothing here at run time)
        def _reap(self, conn: sqlite3.Connection, new_index: int) -> bool:
            ...

        def _reap_if_due(self) -> None:
            ...

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

    # ---- transactions ----------------------------------------------------------------------------
    def _read(self, fn: Callable[[sqlite3.Connection], R], reap: bool = True) -> R:
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

    def _write(self, fn: Callable[[sqlite3.Connection, int], Tuple[R, bool]]) -> R:
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
        return cast(int, conn.execute("SELECT value FROM meta WHERE name = 'index'").fetchone()[0])

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
