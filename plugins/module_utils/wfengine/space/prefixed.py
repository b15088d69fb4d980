# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A view of a Space under a key prefix, so several engines (or test runs) share one store
without seeing each other's keys.  Backend-neutral: it only uses the Space contract."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, overload

from .base import Entry, Op, Space, TxnResult


class PrefixedSpace(Space):
    """Every key and prefix given to this Space is stored as ``prefix + key``; results carry the
    keys without the prefix.  Sessions are not prefixed (they are not keys)."""

    def __init__(self, inner: Space, prefix: str) -> None:
        if not prefix:
            raise ValueError("PrefixedSpace needs a non-empty prefix")
        self.inner = inner
        self.prefix = prefix
        if isinstance(getattr(inner, "engine_prefix", None), str):
            inner.engine_prefix += prefix     # type: ignore[attr-defined]  # ConsulSpace's refusals
        self.max_txn_ops = inner.max_txn_ops
        self.batch_lanes = inner.batch_lanes
        self.name = inner.name

    def _in(self, key: str) -> str:
        return self.prefix + key

    def _out(self, key: str) -> str:
        return key[len(self.prefix):] if key.startswith(self.prefix) else key

    @overload
    def _entry(self, entry: Entry) -> Entry:
        ...

    @overload
    def _entry(self, entry: Optional[Entry]) -> Optional[Entry]:
        ...

    def _entry(self, entry: Optional[Entry]) -> Optional[Entry]:
        if entry is None:
            return None
        return Entry(self._out(entry.key), entry.value, entry.index, entry.session)

    # ---- key/value primitives -------------------------------------------------------------
    def get(self, key: str) -> Optional[Entry]:
        return self._entry(self.inner.get(self._in(key)))

    def list(self, prefix: str) -> List[Entry]:
        return [self._entry(e) for e in self.inner.list(self._in(prefix))]

    def keys(self, prefix: str) -> List[str]:
        return [self._out(k) for k in self.inner.keys(self._in(prefix))]

    def put(self, key: str, value: Any) -> int:
        return self.inner.put(self._in(key), value)

    def txn(self, ops: Sequence[Op]) -> TxnResult:
        p = self.prefix   # not dataclasses.replace(): it costs 10x more, on every operation
        res = self.inner.txn([Op(op.verb, p + op.key, op.value, op.index, op.session) for op in ops])
        entries: Dict[str, Optional[Entry]] = {
            self._out(k): self._entry(e) for k, e in res.entries.items()}
        trees = {self._out(k): [self._entry(e) for e in es] for k, es in res.trees.items()}
        return TxnResult(ok=res.ok, failed=[self._out(k) for k in res.failed], entries=entries,
                         index=res.index, trees=trees)

    def wait(self, prefix: str, index: int, timeout: float) -> Tuple[int, List[str]]:
        new_index, keys = self.inner.wait(self._in(prefix), index, timeout)
        return new_index, [self._out(k) for k in keys]

    def watch(self, key: str, index: int, timeout: float) -> Tuple[int, Optional[Entry]]:
        new_index, e = self.inner.watch(self._in(key), index, timeout)
        return new_index, self._entry(e)

    # ---- sessions and locks ---------------------------------------------------------------
    def session_create(self, name: str, ttl: float, behavior: str = "release") -> str:
        return self.inner.session_create(name, ttl, behavior)

    def session_renew(self, session: str) -> bool:
        return self.inner.session_renew(session)

    def session_destroy(self, session: str) -> None:
        self.inner.session_destroy(session)

    def acquire(self, key: str, session: str, value: Any = None) -> bool:
        return self.inner.acquire(self._in(key), session, value)

    def release(self, key: str, session: str) -> bool:
        return self.inner.release(self._in(key), session)

    def close(self) -> None:
        self.inner.close()
