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

``EmbeddedSpace`` is composed of one mixin per job, each in its own file:

* embedded_store.py: the SQLite file (schema, connections, the store's lock and WAL check) and
  the read and write transactions, with the index, the write lock and the directory stamps (the
  first three points above), and why a lock wait is not a failure;
* embedded_sessions.py: sessions, their reaping, ``acquire`` and ``release``;
* embedded_wait.py: blocking queries (``wait``).

This file holds the class with the key/value primitives and the transaction verbs (``_apply``).
"""
from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, cast

from ..errors import SpaceDataError, SpaceError
from .base import MAX_VALUE_BYTES, READ_VERBS, Entry, Op, Space, TxnResult, check_ops, dumps, loads
from .embedded_sessions import EmbeddedSessions
from .embedded_store import EmbeddedStore, _closed, _hold_store, _prefix_clause, _Rollback, _shared_for
from .embedded_wait import EmbeddedWaits

# Verbs that write after a check of the key's row (``_check``); the check verbs write nothing.
_CHECKED_WRITES = frozenset(["cas", "delete_cas", "delete_cas_present", "lock", "unlock"])


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


class EmbeddedSpace(EmbeddedSessions, EmbeddedWaits, EmbeddedStore, Space):
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

    def close(self) -> None:
        self._closed = True
        with self._conns_lock:
            self._finalizer()

    # ---- rows ------------------------------------------------------------------------------------
    @staticmethod
    def _entry(row: Any) -> Entry:
        key, value, modify_index, session = row
        return Entry(key, loads(key, value), modify_index, session)

    @staticmethod
    def _row(conn: sqlite3.Connection, key: str) -> Any:
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

        def apply(conn: sqlite3.Connection, index: int) -> Tuple[int, bool]:
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
            return cast(TxnResult, rollback.args[0])

    def _apply(self, conn: sqlite3.Connection, ops: List[Op], texts: List[Optional[str]],
               index: int) -> Tuple[TxnResult, bool]:
        """Apply ``ops`` in order (later operations see earlier ones, as in Consul).

        Rows are read only by the verbs that look at them: a batch commit holds dozens of
        operations."""
        entries: Dict[str, Optional[Entry]] = {}
        trees: Dict[str, List[Entry]] = {}
        failed: List[str] = []
        changed = False
        touched: Any = getattr(self._local, "touched", None)   # None: a read-only transaction
        for op, text in zip(ops, texts):
            verb, key = op.verb, op.key
            if verb in ("set", "delete", "delete_tree"):
                self._apply_unchecked(conn, op, text, index, touched)
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
            elif not self._check(conn, op, row):
                failed.append(key)
                break
            elif verb in _CHECKED_WRITES:
                self._apply_checked(conn, op, text, row, index, touched)
                changed = True
        if failed:
            raise _Rollback(TxnResult(ok=False, failed=failed))
        return TxnResult(ok=True, entries=entries, index=index if changed else 0,
                         trees=trees), changed

    def _apply_unchecked(self, conn: sqlite3.Connection, op: Op, text: Optional[str], index: int,
                         touched: Set[str]) -> None:
        """``set``, ``delete``, ``delete_tree``: writes that check nothing."""
        verb, key = op.verb, op.key
        if verb == "set":
            self._store(conn, key, cast(str, text), index)
        elif verb == "delete":
            if conn.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount:
                touched.add(key)
        else:
            where, args = _prefix_clause(key)
            self._remove(conn, self._keys(conn, where, args))

    def _check(self, conn: sqlite3.Connection, op: Op, row: Any) -> bool:
        """Whether ``op`` may proceed on the key's ``row`` (None: missing); a failed check fails
        the whole transaction."""
        verb = op.verb
        if verb == "cas":
            return not ((row is None and op.index != 0) or (row is not None and row[2] != op.index))
        if verb in ("delete_cas", "delete_cas_present", "check_index"):
            # Stricter than Consul (which accepts a delete-cas on a missing key): a taker whose
            # tuple was already taken must fail, or two takers would both "get" it.
            return not (row is None or row[2] != op.index)
        if verb in ("check_session", "unlock"):
            return not (row is None or not op.session or row[3] != op.session)
        if verb == "check_not_exists":
            return row is None
        if verb == "lock":
            holder = None if row is None else row[3]
            return not (holder not in (None, op.session) or not self._session_alive(conn, op.session))
        return True

    def _apply_checked(self, conn: sqlite3.Connection, op: Op, text: Optional[str], row: Any,
                       index: int, touched: Set[str]) -> None:
        """The write of a verb whose check passed (``_CHECKED_WRITES``)."""
        verb, key = op.verb, op.key
        if verb == "cas":
            self._store(conn, key, cast(str, text), index)
        elif verb in ("delete_cas", "delete_cas_present"):
            conn.execute("DELETE FROM kv WHERE key = ?", (key,))
            touched.add(key)
        elif verb == "lock":
            self._store(conn, key, cast(str, text), index, session=op.session)
        elif verb == "unlock":
            self._store(conn, key, text if text is not None else row[1], index, session=None)
