# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The embedded Space's sessions and locks.

Sessions have an absolute expiry (``time.time()``); expired sessions are reaped lazily (at the
start of write transactions, before reads that could see their locks, at every poll of a
blocking query), releasing their locks like Consul's ``behavior=release`` (or deleting the keys,
``behavior=delete``).  The time the store refused writes is credited to them
(``EmbeddedStore._credit_stall``, embedded_store.py).  ``acquire`` and ``release`` are the
transactions of one ``lock`` / ``unlock``.
"""
from __future__ import annotations

import sqlite3
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Optional, Sequence, Tuple

from ..errors import SpaceError
from .base import Op, TxnResult, op_lock, op_unlock
from .embedded_store import R, _Shared

# Consul refuses TTLs under 10 s; the embedded Space accepts much shorter ones so tests of expiry
# stay fast, but not so short that a loaded machine expires live sessions between two renewals.
MIN_SESSION_TTL = 0.5


class EmbeddedSessions:
    """Mixin of EmbeddedSpace: sessions, their reaping, ``acquire`` and ``release``.  Uses the
    Space's transactions (``_read``, ``_write``, ``_remove``, ``_touch``: embedded_store.py,
    embedded.py), ``_shared`` and ``txn``."""

    _shared: _Shared

    if TYPE_CHECKING:      # EmbeddedSpace's (annotations only: nothing here at run time)
        def _remove(self, conn: sqlite3.Connection, keys: List[str]) -> None:
            ...

        def _touch(self, keys: Iterable[str]) -> None:
            ...

        def _read(self, fn: Callable[[sqlite3.Connection], R], reap: bool = True) -> R:
            ...

        def _write(self, fn: Callable[[sqlite3.Connection, int], Tuple[R, bool]]) -> R:
            ...

        def txn(self, ops: Sequence[Op]) -> TxnResult:
            ...

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

        def look(conn: sqlite3.Connection) -> Any:
            found = conn.execute("SELECT 1 FROM sessions WHERE expires_at <= ? LIMIT 1",
                                 (now,)).fetchone()
            if found is None:
                self._quiet_until(conn, now)
            return found
        row = self._read(look, reap=False)
        if row is not None:
            self._write(lambda c, i: (None, False))

    @staticmethod
    def _session_alive(conn: sqlite3.Connection, sid: Optional[str]) -> bool:
        if not sid:
            return False
        row = conn.execute("SELECT expires_at FROM sessions WHERE id = ?", (sid,)).fetchone()
        return row is not None and row[0] > time.time()

    # ---- sessions and locks ----------------------------------------------------------------------
    def session_create(self, name: str, ttl: float, behavior: str = "release") -> str:
        if behavior not in ("release", "delete"):
            raise SpaceError("session %r: behavior must be release or delete" % name)
        ttl = float(ttl)
        if ttl < MIN_SESSION_TTL:
            raise SpaceError("session %r: ttl %.3fs is below the minimum of %.1fs"
                             % (name, ttl, MIN_SESSION_TTL))
        sid = str(uuid.uuid4())

        def apply(conn: sqlite3.Connection, index: int) -> Tuple[str, bool]:
            conn.execute("INSERT INTO sessions (id, name, ttl, expires_at, behavior) "
                         "VALUES (?, ?, ?, ?, ?)", (sid, name, ttl, time.time() + ttl, behavior))
            return sid, False
        return self._write(apply)

    def session_renew(self, session: str) -> bool:
        def apply(conn: sqlite3.Connection, index: int) -> Tuple[bool, bool]:
            # Reaping ran first: an expired session is gone, its locks released.
            row = conn.execute("SELECT ttl FROM sessions WHERE id = ?", (session,)).fetchone()
            if row is None:
                return False, False
            conn.execute("UPDATE sessions SET expires_at = ? WHERE id = ?",
                         (time.time() + row[0], session))
            return True, False
        return self._write(apply)

    def session_destroy(self, session: str) -> None:
        def apply(conn: sqlite3.Connection, index: int) -> Tuple[None, bool]:
            return None, self._drop_session(conn, session, index) > 0
        self._write(apply)

    def acquire(self, key: str, session: str, value: Any = None) -> bool:
        return self.txn([op_lock(key, value, session)]).ok

    def release(self, key: str, session: str) -> bool:
        return self.txn([op_unlock(key, session)]).ok
