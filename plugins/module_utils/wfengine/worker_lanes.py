# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The worker's batch lanes: the threads that take batches (``Lanes``), and what a batch is
given of its worker (``BatchPort``).

Why a file of its own: a lane claims, advances and commits a batch (batch.py), goes on with
what its commit handed off, and coordinates its commits with the worker's other lanes; batch.py
must not depend on the Worker (it did, and each imported the other): it names what it needs in
batch_host.BatchHost, and this module is the one place where the Worker is adapted to it.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Set, Tuple, cast

from . import keys
from .batch import Batch
from .batch_host import Marked
from .batch_member import fact_entry
from .errors import WfError
from .run_context import _Step

if TYPE_CHECKING:  # pragma: no cover
    from .operation.executor import Executor
    from .run_context import RunContext
    from .space.base import Space

log = logging.getLogger("wfengine.worker")


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
        return cast("Dict[str, int]", self._w.stats)

    @property
    def executor(self) -> "Executor":
        return cast("Executor", self._w.executor)

    @property
    def space(self) -> "Space":
        return cast("Space", self._w.space)

    @property
    def session(self) -> Optional[str]:
        return cast("Optional[str]", self._w.session)

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


class Lanes:
    """Mixin of Worker.  Uses ``_inflight``, ``_inflight_lock``, ``_backlog``, ``_writing``,
    ``_checking``, ``_sending_cond``, ``_stop``, ``_canceled``, ``_pool``, ``batch``, ``lanes``,
    ``context``, ``_count``, ``_submit``, ``_continue`` (SingleNode), ``_hand_ok`` and
    ``_finalizer`` (Dispatch), ``_finalize`` and ``_release_quietly``."""

    id: str
    batch: int
    lanes: int
    stats: Dict[str, int]
    _inflight: Set[Tuple[str, str]]
    _inflight_lock: threading.Condition
    _backlog: Dict[str, Dict[str, None]]
    _writing: Dict[Tuple[str, str], int]
    _checking: Dict[Tuple[str, str], int]
    _sending_cond: threading.Condition
    _stop: threading.Event
    _canceled: Set[str]
    _pool: Any

    if TYPE_CHECKING:  # pragma: no cover (the Worker's other parts)
        def context(self, run_id: str) -> RunContext:
            ...

        def _count(self, name: str, n: int = 1) -> None:
            ...

        def _submit(self, pool: Any, tokens: List[Tuple[str, str]], fn: Any, *args: Any,
                    force: bool = False, lane: bool = False) -> str:
            ...

        def _continue(self, step: _Step) -> None:
            ...

        def _hand_ok(self, run: str, node_id: str, ctx: Optional[RunContext]) -> bool:
            ...

        def _finalizer(self, run: str) -> bool:
            ...

        def _finalize(self, run_id: str) -> None:
            ...

        def _release_quietly(self, lock_key: str, session: Optional[str] = None) -> None:
            ...

    def enter_commit(self, run: str, checked: Iterable[str], writes: Iterable[str],
                     timeout: float = 2.0) -> Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]:
        """Before a lane sends a commit: wait (up to ``timeout``) until no commit of another lane
        in flight writes a node this one checks, or checks a node this one writes (whichever
        went second would fail), then mark both sets as in flight.  A lane waits only before
        marking, and marks are cleared when its commit returns, so lanes never wait for each
        other in a cycle.  Returns what to pass to ``leave_commit``."""
        reads = [(run, n) for n in checked]
        puts = [(run, n) for n in writes]
        deadline = time.monotonic() + timeout

        def clash() -> bool:
            return (any(c in self._writing for c in reads)
                    or any(w in self._checking for w in puts))
        with self._sending_cond:
            if clash():
                self._count("commit_waits")
                while clash():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._sending_cond.wait(remaining)
            for c in puts:
                self._writing[c] = self._writing.get(c, 0) + 1
            for c in reads:
                self._checking[c] = self._checking.get(c, 0) + 1
        return puts, reads

    def leave_commit(self, marked: Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]) -> None:
        with self._sending_cond:
            for table, items in ((self._writing, marked[0]), (self._checking, marked[1])):
                for c in items:
                    left = table.get(c, 0) - 1
                    if left > 0:
                        table[c] = left
                    else:
                        table.pop(c, None)
            self._sending_cond.notify_all()

    def _reserve(self, run: str, node_ids: List[str], limit: int) -> List[str]:
        """Reserve, for a handoff (batch.py, step 5), up to ``limit`` of ``node_ids`` that this
        worker would take and that no task of it holds."""
        ctx = self.context(run)
        with self._inflight_lock:
            backlog = self._backlog.get(run, {})
            out = self._take_tokens(run, (n for n in node_ids if self._hand_ok(run, n, ctx)),
                                    limit)
            for n in out:
                backlog.pop(n, None)
        return out

    def _take_tokens(self, run: str, node_ids: Iterable[str], limit: int) -> List[str]:
        """Up to ``limit`` of ``node_ids`` that no task of this worker holds, now held (call
        with ``_inflight_lock``)."""
        out: List[str] = []
        for n in node_ids:
            if len(out) >= limit:
                break
            if (run, n) not in self._inflight:
                self._inflight.add((run, n))
                out.append(n)
        return out

    def _held(self, run: str, node_ids: Iterable[str]) -> Set[str]:
        """Which of ``node_ids`` a task of this worker holds now."""
        with self._inflight_lock:
            return {n for n in node_ids if (run, n) in self._inflight}

    def _unreserve(self, run: str, node_ids: Iterable[str]) -> None:
        with self._inflight_lock:
            self._inflight.difference_update((run, n) for n in node_ids)
            self._inflight_lock.notify_all()

    def _from_backlog(self, run: str, limit: int) -> List[str]:
        """Reserve up to ``limit`` nodes of the last listing that no lane took yet."""
        out: List[str] = []
        with self._inflight_lock:
            backlog = self._backlog.get(run)
            while backlog and len(out) < limit:
                n = next(iter(backlog))
                del backlog[n]
                out += self._take_tokens(run, [n], 1)
        return out

    def _end_now(self, run_id: str) -> None:
        """A small run's owner, whose lane just committed nodes that are all done, ends the run
        at once if it is quiet (finalize_run looks), instead of waiting for its listing to show
        it: one blocking query's return less on the path of every small workflow."""
        with self._inflight_lock:
            if not self._take_tokens(run_id, ["~finalize"], 1):
                return      # the dispatcher is ending it
        try:
            self._finalize(run_id)
        except WfError as exc:
            log.warning("worker %s: ending run %s failed (%s); the listing will retry", self.id,
                        run_id, exc)
        finally:
            self._unreserve(run_id, ["~finalize"])

    def _take_batch(self, run_id: str, node_ids: List[str]) -> Set[Tuple[str, str]]:
        """Claim, advance and commit ``node_ids`` (see batch.py), then go on with what the
        commit handed off and, on a single-lane worker, with the ready nodes of the last listing
        it did not take (claimed together).  Nodes stopped before an operation with side effects
        go on, each in its own thread, on the single-node path.

        This task gives back the tokens of each round's nodes as soon as the round is committed
        (a node may be woken again while the chain goes on), so it returns all of ``node_ids``
        as kept: ``_guard`` must not give them back a second time."""
        ctx = self.context(run_id)
        handed: Dict[str, Tuple[Any, Any]] = {}
        ids = list(node_ids)
        paused: Set[str] = set()
        ended = False       # the last round committed nodes that are all done
        try:
            while ids:
                paused = set()
                ended = False
                b = self._claim_batch(ctx, ids, handed)
                self._advance_batch(b, run_id)
                if b.members or b.released:
                    ended = self._commit_batch(b, ctx, paused)
                handed = b.handed
                # (a node kept by its own commit, batch.py _settle_failure, stays reserved)
                self._unreserve(run_id, [n for n in ids if n not in paused and n not in handed])
                ids = []
                if self._stop.is_set() or run_id in self._canceled:
                    # Stopping, or the run was canceled meanwhile (nothing new is scheduled):
                    # the handed-off nodes keep their ready tuples for a resume or a restart.
                    for n in handed:
                        self._release_quietly(keys.lock(run_id, n), b.session)
                    self._unreserve(run_id, handed)
                    break
                # A single lane goes on with the listing's leftovers (the dispatcher would list
                # again only to hand them to this lane); with several lanes the dispatcher feeds
                # the free ones, and lanes that also drained the leftovers took neighbouring
                # nodes at once: 2k install, one worker on Consul, commit retries 44 -> 700.
                more = (self._from_backlog(run_id, self.batch - len(handed)) if self.lanes == 1
                        else [])
                ids = list(handed) + more
            if (ended and not ids and ctx.small and not self._stop.is_set()
                    and run_id not in self._canceled and self._finalizer(run_id)):
                self._end_now(run_id)
        finally:
            self._unreserve(run_id, [n for n in ids if n not in paused])
        return {(run_id, n) for n in node_ids}

    def _claim_batch(self, ctx: "RunContext", ids: List[str],
                     handed: Dict[str, Tuple[Any, Any]]) -> Batch:
        """A batch of ``ids``: what the last commit handed off (all of ``ids``), or claimed."""
        run_id = ctx.run_id
        b = Batch(BatchPort(self), ctx, ids)
        if handed and len(handed) == len(ids):
            b.adopt(handed)
            return b
        try:
            b.claim()
        except BaseException:
            # The claim may have applied (a lost response): release what it may hold.
            b._release_quietly([], [keys.lock(run_id, n) for n in ids])
            raise
        # Handed-off nodes are locked already: one the claim gave up on (conflicts
        # on the others) must not stay locked by this live session.
        for n in handed:
            lk = keys.lock(run_id, n)
            if n not in b.members and lk not in b.released:
                b.released.append(lk)
        return b

    def _advance_batch(self, b: Batch, run_id: str) -> None:
        """Read, advance and settle the wake-ups of the claimed batch ``b`` (batch.py)."""
        if not b.members and not b.released:
            self._count("empty_claims")
        if not b.members:
            return
        self.stats["taken"] += len(b.members)
        try:
            b.load()
            b.advance()
            b.settle_wakes()
            if not self._stop.is_set() and run_id not in self._canceled:
                b.choose_handoff()
        except BaseException:
            b.drop_handoff()
            b._release_quietly(list(b.members.values()), b.released)
            raise

    def _commit_batch(self, b: Batch, ctx: "RunContext", paused: Set[str]) -> bool:
        """Commit ``b``; its members paused before an operation with side effects go on, each
        on the single-node path (added to ``paused``).  True when the nodes it committed are
        all done."""
        run_id = ctx.run_id
        done, dummy = b.commit()
        ended = bool(done) and all(m.fact.get("done") for m in done)
        for m in done:
            if m.pause:
                # (a batch that claimed nodes has a session)
                step = _Step(ctx, m.id, m.ready, m.lock, cast(str, b.session))
                step.fact_entry = fact_entry(run_id, m)
                paused.add(m.id)
                self._submit(self._pool, [(run_id, m.id)], self._continue, step, force=True)
        return ended
