# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Space contract: a Linda tuple space on top of a small transactional key/value store.

Both backends (embedded SQLite, Consul) implement the same primitives with the semantics Consul
gives, so the engine is written once:

* every key carries a modify ``index``; all indexes come from one counter that only grows, so the
  index of a write orders it after everything it read (the trace's ``seq`` relies on that);
* ``txn`` applies a list of operations atomically, or none of them; a failed check (CAS, lock, not
  exists) makes it return ``TxnResult(ok=False, failed=[...])`` rather than raise;
* ``wait`` is a blocking query: it returns when something under a prefix changed after an index,
  or at its timeout, and may return early (callers re-read);
* sessions with a TTL own locks (``acquire``); a session that is not renewed in time is destroyed
  and the keys it held are released, so a dead worker's step is retaken.

Values are JSON documents.  Backends store them as JSON text and parse them on read; a value that is
not valid JSON raises ``SpaceDataError`` naming the key.
"""
from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import SpaceDataError, TxnTooLarge

# Consul 1.8 accepts at most 64 operations in one transaction; every backend enforces the same
# limit so that code tested on the embedded Space also runs on Consul.
MAX_TXN_OPS = 64
# Consul's default limit for one value.
MAX_VALUE_BYTES = 512 * 1024


@dataclass(frozen=True)
class Entry:
    """One key as read from the Space."""

    key: str
    value: Any
    index: int
    session: Optional[str] = None


@dataclass(frozen=True)
class Op:
    """One operation of a transaction.

    verbs: ``set``, ``cas`` (``index`` 0 means "must not exist"), ``delete``, ``delete_cas``,
    ``delete_cas_present``, ``delete_tree``, ``check_index``, ``check_session``,
    ``check_not_exists``, ``lock``, ``unlock``, ``get``, ``get_tree`` (``key`` is a prefix; only
    in a read-only transaction, after its other operations, with prefixes that do not contain
    one another: see ``check_ops``).
    """

    verb: str
    key: str
    value: Any = None
    index: int = 0
    session: Optional[str] = None


def op_set(key: str, value: Any) -> Op:
    return Op("set", key, value)


def op_cas(key: str, value: Any, index: int) -> Op:
    return Op("cas", key, value, index)


def op_delete(key: str) -> Op:
    return Op("delete", key)


def op_delete_cas(key: str, index: int) -> Op:
    return Op("delete_cas", key, index=index)


def op_delete_cas_present(key: str, index: int) -> Op:
    """``delete_cas`` of a key the caller knows exists: a tuple that only the holder of a lock
    deletes, in a transaction that checks that lock.  On a missing key its outcome is
    unspecified (Consul's native delete-cas succeeds, the embedded Space fails); in exchange it
    is one Consul operation instead of two, which lets a batch commit fit in one transaction."""
    return Op("delete_cas_present", key, index=index)


def op_delete_tree(prefix: str) -> Op:
    return Op("delete_tree", prefix)


def op_check_index(key: str, index: int) -> Op:
    return Op("check_index", key, index=index)


def op_check_session(key: str, session: str) -> Op:
    return Op("check_session", key, session=session)


def op_check_not_exists(key: str) -> Op:
    return Op("check_not_exists", key)


def op_lock(key: str, value: Any, session: str) -> Op:
    return Op("lock", key, value, session=session)


def op_unlock(key: str, session: str) -> Op:
    return Op("unlock", key, session=session)


def op_get(key: str) -> Op:
    return Op("get", key)


def op_get_tree(prefix: str) -> Op:
    """Every entry under ``prefix``, read in the same snapshot as the transaction's ``get``s: a
    read that needs a key and a prefix (the end of a run: its record, its queue, its facts)
    costs one round trip instead of one per prefix."""
    return Op("get_tree", prefix)


VERBS = frozenset(["set", "cas", "delete", "delete_cas", "delete_cas_present", "delete_tree", "check_index",
                   "check_session", "check_not_exists", "lock", "unlock", "get", "get_tree"])
# Verbs that leave the store unchanged: a transaction of only these is a read (a snapshot).
READ_VERBS = frozenset(["get", "get_tree", "check_index", "check_session", "check_not_exists"])


@dataclass
class TxnResult:
    """Outcome of ``txn``: ``ok`` is False when a check failed; ``failed`` lists the keys whose
    operation failed; ``entries`` holds what ``get`` operations read (key -> Entry or None);
    ``trees`` what ``get_tree`` operations read (prefix -> entries sorted by key); ``index`` is
    the commit index of a successful write transaction."""

    ok: bool
    failed: List[str] = field(default_factory=list)
    entries: Dict[str, Optional[Entry]] = field(default_factory=dict)
    index: int = 0
    trees: Dict[str, List[Entry]] = field(default_factory=dict)


def dumps(value: Any) -> str:
    """Canonical JSON text of a value (the only encoding the Space accepts)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)


def loads(key: str, text: Any) -> Any:
    """Parse a stored value; anything that is not JSON is refused (never eval, never pickle)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise SpaceDataError("%s: value is not UTF-8 text" % key)
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SpaceDataError("%s: value is not JSON (%s)" % (key, exc))


def check_ops(ops: Sequence[Op], limit: int = MAX_TXN_OPS) -> None:
    if len(ops) > limit:
        raise TxnTooLarge("transaction of %d operations exceeds the limit of %d" % (len(ops), limit))
    trees: List[str] = []
    for op in ops:
        if op.verb not in VERBS:
            raise ValueError("unknown transaction verb %r" % op.verb)
        if op.verb == "get_tree":
            trees.append(op.key)
        elif trees:
            raise ValueError("get_tree operations come after the others of a transaction")
    # Consul returns a get-tree's entries as a run of results with no marker of where one tree
    # ends: prefixes that cannot share a key keep them apart.
    if trees:
        if any(op.verb not in READ_VERBS for op in ops):
            raise ValueError("get_tree is only allowed in a read-only transaction")
        if any(a != b and b.startswith(a) for a in trees for b in trees) or len(set(trees)) < len(trees):
            raise ValueError("get_tree prefixes of one transaction must not contain one another: %s"
                             % ", ".join(trees))


class Space(ABC):
    """A Linda tuple space.  Subclasses implement the key/value primitives; the Linda operations
    (out, in, inp, rd, rdp) are built here on top of them, identically for every backend."""

    max_txn_ops: int = MAX_TXN_OPS
    # Batch steps one worker runs at once (worker.py): what pays off depends on where a batch
    # spends its time (CPU here, round trips there); backends set it from measurements.
    batch_lanes: int = 1
    name: str = "space"

    # ---- key/value primitives -------------------------------------------------------------
    @abstractmethod
    def get(self, key: str) -> Optional[Entry]:
        """The entry at ``key`` or None."""

    @abstractmethod
    def list(self, prefix: str) -> List[Entry]:
        """Every entry whose key starts with ``prefix``, sorted by key."""

    @abstractmethod
    def keys(self, prefix: str) -> List[str]:
        """Every key that starts with ``prefix``, sorted."""

    @abstractmethod
    def put(self, key: str, value: Any) -> int:
        """Write ``value`` at ``key``; returns the new modify index."""

    @abstractmethod
    def txn(self, ops: Sequence[Op]) -> TxnResult:
        """Apply ``ops`` atomically (all or nothing).  Raises TxnTooLarge above ``max_txn_ops``."""

    @abstractmethod
    def wait(self, prefix: str, index: int, timeout: float) -> Tuple[int, List[str]]:
        """Blocking query: wait until something under ``prefix`` changed after ``index`` (or the
        timeout), then return ``(new_index, keys under prefix)``.  ``index`` 0 returns at once."""

    # ---- sessions and locks ------------------------------------------------------------------
    @abstractmethod
    def session_create(self, name: str, ttl: float, behavior: str = "release") -> str:
        """A new session; it is destroyed if not renewed within ``ttl``.  Its locks are then
        released (``behavior="release"``) or the locked keys deleted (``"delete"``, what workers
        use: a lock key that disappears wakes every worker's blocking query)."""

    @abstractmethod
    def session_renew(self, session: str) -> bool:
        """Renew; False if the session no longer exists (it expired: its locks are gone)."""

    @abstractmethod
    def session_destroy(self, session: str) -> None:
        """Destroy the session, releasing its locks."""

    @abstractmethod
    def acquire(self, key: str, session: str, value: Any = None) -> bool:
        """Take the lock on ``key`` for ``session``; False if another session holds it."""

    @abstractmethod
    def release(self, key: str, session: str) -> bool:
        """Release the lock on ``key`` if ``session`` holds it."""

    def close(self) -> None:
        """Free connections; the Space is unusable afterwards."""

    # ---- helpers built on the primitives ------------------------------------------------------
    def cas(self, key: str, value: Any, index: int) -> bool:
        return self.txn([op_cas(key, value, index)]).ok

    def delete(self, key: str) -> None:
        self.txn([op_delete(key)])

    def delete_tree(self, prefix: str) -> None:
        self.txn([op_delete_tree(prefix)])

    def write_chunked(self, ops: Iterable[Op]) -> None:
        """Apply many unconditional writes in as few transactions as the backend allows.
        Not atomic as a whole: only for writes that are invisible until a final pointer is set."""
        batch: List[Op] = []
        for op in ops:
            batch.append(op)
            if len(batch) == self.max_txn_ops:
                self._must(batch)
                batch = []
        if batch:
            self._must(batch)

    def watch(self, key: str, index: int, timeout: float) -> Tuple[int, Optional[Entry]]:
        """Blocking query on one key: wait until it changed after ``index`` (or the timeout),
        then return ``(new_index, its entry or None)``.  This default waits on the key as a
        prefix, then reads it; a Space that can return the value with the wake-up (Consul)
        saves that read, which is on the path of every ``wfctl workflow --wait``."""
        new_index, dummy = self.wait(key, index, timeout)
        return new_index, self.get(key)

    def get_many(self, keys: Sequence[str]) -> Dict[str, Optional[Entry]]:
        """Entries of many keys (None when missing), in as few read-only transactions as the
        operation limit allows.  Each transaction is a consistent snapshot; the whole is not."""
        out: Dict[str, Optional[Entry]] = {}
        keys = list(keys)
        for i in range(0, len(keys), self.max_txn_ops):
            chunk = keys[i:i + self.max_txn_ops]
            res = self.txn([op_get(k) for k in chunk])
            for k in chunk:
                out[k] = res.entries.get(k)
        return out

    def _must(self, ops: Sequence[Op]) -> TxnResult:
        res = self.txn(ops)
        if not res.ok:
            from ..errors import SpaceError
            raise SpaceError("transaction refused on %s" % ", ".join(res.failed or ["?"]))
        return res

    # ---- Linda -----------------------------------------------------------------------------
    # A tuple is a (key, JSON value) pair; a template is a key prefix.  ``out`` adds a tuple,
    # ``rd``/``rdp`` read one matching the template, ``in``/``inp`` take one (read and remove
    # atomically, so two takers never get the same tuple).  The blocking forms use ``wait``.

    def out(self, key: str, value: Any) -> None:
        self.put(key, value)

    def rdp(self, template: str) -> Optional[Entry]:
        found = self.list(template)
        return found[0] if found else None

    def rd(self, template: str, timeout: Optional[float] = None) -> Optional[Entry]:
        return self._blocking(self.rdp, template, timeout)

    def inp(self, template: str) -> Optional[Entry]:
        for entry in self.list(template):
            if self.txn([op_delete_cas(entry.key, entry.index)]).ok:
                return entry
        return None

    def in_(self, template: str, timeout: Optional[float] = None) -> Optional[Entry]:
        return self._blocking(self.inp, template, timeout)

    def _blocking(self, attempt: Callable[[str], Optional[Entry]], template: str,
                  timeout: Optional[float]) -> Optional[Entry]:
        """``rd`` and ``in_`` are their non-blocking form retried on every change under the
        template (``wait``, at most 30 s at a time) until it finds a tuple or the timeout ends."""
        deadline = None if timeout is None else time.monotonic() + timeout
        index = 0
        while True:
            found = attempt(template)
            if found is not None:
                return found
            remaining = 30.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return None
            index, dummy = self.wait(template, index or 1, min(remaining, 30.0))
