# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The worker's batch lanes: what a batch is given of its worker (``BatchPort``).

Why a file of its own: batch.py must not depend on the Worker (it did, and each imported the
other); it names what it needs in batch_host.BatchHost, and this module is the one place where
the Worker is adapted to it, so the Worker keeps its private members private.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Set, cast

from .batch_host import Marked

if TYPE_CHECKING:  # pragma: no cover
    from .operation.executor import Executor
    from .run_context import RunContext
    from .space.base import Space


class BatchPort:
    """The worker as its batches see it (satisfies batch_host.BatchHost); every call goes to
    the worker as it is at that moment."""

    __slots__ = ("_w",)

    def __init__(self, worker: Any) -> None:
        self._w = worker

    @property
    def id(self) -> str:
        return cast(str, self._w.id)

    @property
    def batch(self) -> int:
        return cast(int, self._w.batch)

    @property
    def stats(self) -> Dict[str, int]:
        return cast(Dict[str, int], self._w.stats)

    @property
    def executor(self) -> "Executor":
        return cast("Executor", self._w.executor)

    @property
    def space(self) -> "Space":
        return cast("Space", self._w.space)

    @property
    def session(self) -> Optional[str]:
        return cast(Optional[str], self._w.session)

    def count(self, name: str, n: int = 1) -> None:
        self._w._count(name, n)

    def held(self, run: str, node_ids: Iterable[str]) -> Set[str]:
        return cast(Set[str], self._w._held(run, node_ids))

    def hand_ok(self, run: str, node_id: str, ctx: Optional["RunContext"]) -> bool:
        return cast(bool, self._w._hand_ok(run, node_id, ctx))

    def merged_attributes(self, ctx: "RunContext", node_id: str,
                          new: Dict[str, Any]) -> Dict[str, Any]:
        return cast(Dict[str, Any], self._w._merged_attributes(ctx, node_id, new))

    def enter_commit(self, run: str, checked: Iterable[str], writes: Iterable[str]) -> Marked:
        return cast(Marked, self._w.enter_commit(run, checked, writes))

    def leave_commit(self, marked: Marked) -> None:
        self._w.leave_commit(marked)

    def release_quietly(self, lock_key: str, session: Optional[str] = None) -> None:
        self._w._release_quietly(lock_key, session)

    def reserve(self, run: str, node_ids: List[str], limit: int) -> List[str]:
        return cast(List[str], self._w._reserve(run, node_ids, limit))

    def unreserve(self, run: str, node_ids: Iterable[str]) -> None:
        self._w._unreserve(run, node_ids)
