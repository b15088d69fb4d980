# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The embedded Space's blocking queries.

Blocking queries: same-process waiters are woken by a ``threading.Condition`` notified after each
commit; changes made by other processes are found by polling the counter with a backoff from 1 ms
to 50 ms (the counter read is one indexed row, so polling is cheap).
A prefix's index is one row of the ``dirs`` table (``EmbeddedStore._stamp_dirs``): its keys are
listed only when it moved past the caller's index.
"""
from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any, Callable, List, Tuple, cast

from ..errors import SpaceError
from .embedded_store import R, _is_busy, _prefix_clause, _Shared

_POLL_MIN = 0.001
_POLL_MAX = 0.05


class EmbeddedWaits:
    """Mixin of EmbeddedSpace: ``wait``.  Uses the Space's transactions and connections
    (``_read``, ``_conn``, ``_index``, ``_keys``, ``_still_locked``), ``_shared`` and its reaping
    (``_reap_if_due``)."""

    path: str
    _shared: _Shared

    if TYPE_CHECKING:      # EmbeddedSpace's (annotations only: nothing here at run time)
        @staticmethod
        def _keys(conn: sqlite3.Connection, where: str, args: Tuple[Any, ...]) -> List[str]:
            ...

        def _conn(self) -> sqlite3.Connection:
            ...

        @staticmethod
        def _index(conn: sqlite3.Connection) -> int:
            ...

        def _still_locked(self, began: float) -> None:
            ...

        def _read(self, fn: Callable[[sqlite3.Connection], R], reap: bool = True) -> R:
            ...

        def _reap_if_due(self) -> None:
            ...

    @staticmethod
    def _prefix_index(conn: sqlite3.Connection, prefix: str) -> int:
        """The index of the last change under ``prefix``'s directory (deletions included)."""
        row = conn.execute("SELECT idx FROM dirs WHERE prefix = ?",
                           (prefix[:prefix.rfind("/") + 1],)).fetchone()
        floor = conn.execute("SELECT value FROM meta WHERE name = 'dirs_floor'").fetchone()[0]
        return cast(int, max(row[0] if row else 0, floor))

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
