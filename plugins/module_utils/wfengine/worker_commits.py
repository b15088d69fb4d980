# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A worker's commits: the one transaction that writes a step's progress, and what becomes of a
result the Space refused or did not answer (salvage by CAS, the journal, ``stale`` records).

Why a module of its own: every guarantee about results (never lost, never run twice when it
could be committed, a stale execution always recorded) is decided here.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from . import events, keys
from .errors import SpaceDataError, SpaceError, TxnTooLarge, WfError
from .journal import op_from_json, op_to_json
from .space.base import (Op, op_cas, op_check_index, op_check_not_exists, op_check_session, op_delete,
                         op_delete_cas, op_set)

if TYPE_CHECKING:
    from .attempts import AttemptWatch
    from .journal import Journal
    from .run_context import RunContext, _Step
    from .space.base import Space

log = logging.getLogger("wfengine.worker")


def _tail(step: "_Step") -> Tuple[List[Op], Optional[Dict[str, Any]]]:
    """What a final commit of the step ends with: the removal of its ready tuple (CAS) and of
    its lock, after the check on what it waits on; and what it waits on (None if nothing)."""
    run_id = step.ctx.run_id
    tail = [op_delete_cas(keys.ready(run_id, step.node_id), step.ready.index),
            op_delete(step.lock)]
    waiting = step.fact.get("waiting")
    if waiting:
        # Blocked: check that what it waits on did not move since it was read (batch.py,
        # settle_wakes: the node that moves checks this fact in turn, and wakes it).
        o = waiting["node"]
        ak = keys.fact(run_id, o)
        index = step.awaited_index.get(o, 0)
        tail.insert(0, op_check_index(ak, index) if index else op_check_not_exists(ak))
    return tail, waiting


def _extra_ops(checks: Optional[List[Op]], host_ops: Optional[List[Op]],
               released: Optional[str], kept: bool) -> List[Op]:
    """What a commit carries after its own operations: the ``checks`` and host lock
    ``host_ops`` of a checkpoint, the removal of the host lock a final commit gives up (none
    when it is handed over)."""
    return (list(checks or ()) + list(host_ops or ())
            + ([op_delete(released)] if released and not kept else []))


def _woken_meanwhile(step: "_Step", waiting: Optional[Dict[str, Any]],
                     failed: List[str]) -> bool:
    """Whether a final commit failed only on the node's ready tuple or on what it waits on: a
    neighbour woke it, or moved, while it was evaluated."""
    run_id = step.ctx.run_id
    retry = ({keys.ready(run_id, step.node_id)}
             | ({keys.fact(run_id, waiting["node"])} if waiting else set()))
    return bool(failed) and set(failed) <= retry


class Commits:
    """Mixin of Worker.  Uses ``space``, ``id``, ``journal``, ``attempts``, ``stats``,
    ``_count``, ``_stop``, the host lock side of a commit (HostLocks: ``_host_kept``,
    ``_host_released``) and the run contexts' fact caches."""

    id: str
    space: Space
    journal: Journal
    attempts: AttemptWatch
    stats: Dict[str, int]
    _stop: threading.Event

    if TYPE_CHECKING:  # pragma: no cover (the Worker's other parts)
        def _count(self, name: str, n: int = 1) -> None:
            ...

        def _host_kept(self, hk: Optional[str]) -> bool:
            ...

        def _host_released(self, hk: Optional[str], kept: bool = False) -> None:
            ...

    def _replay_journal(self) -> None:
        """Results a previous run of this worker (same state directory) could not commit: sent
        now, before any work is taken (see _salvage)."""
        for entry in self.journal.entries():
            try:
                ops = [op_from_json(o) for o in entry.get("ops") or []]
                stale = [op_from_json(o) for o in entry.get("stale") or []]
            except (ValueError, TypeError):
                log.error("worker %s: journal entry %s unreadable; dropped", self.id, entry.get("key"))
                self.journal.drop(entry["key"])
                continue
            if self._send_salvage(entry["key"], ops, stale, entry.get("fact_version")) is not None:
                self.journal.drop(entry["key"])

    def _commit(self, step: "_Step", write_fact: bool = True, final: bool = True,
                checks: Optional[List[Op]] = None, host_ops: Optional[List[Op]] = None,
                expected: Optional[Set[str]] = None) -> bool:
        """Write the step's progress in one transaction.  ``final`` also removes the node's ready
        tuple (CAS) and lock, and the host lock the step holds; a checkpoint (before an operation
        with side effects) keeps both, and carries the ``checks`` and host lock ``host_ops`` of
        _checkpoint.  Refused on keys of ``expected`` only: False, quietly, the keys in
        ``step.failed`` and the step's results still pending (the caller commits again)."""
        ctx, node_id, fact = step.ctx, step.node_id, step.fact
        step.failed = []
        released = step.host if final else None
        kept = self._host_kept(released)
        extra = _extra_ops(checks, host_ops, released, kept)
        run_id = ctx.run_id
        ops = [op_check_session(step.lock, step.session)]
        if write_fact:
            ops += self._fact_writes(step)
        ops += self._wake_ops(step, self.space.max_txn_ops - len(ops) - 2)
        tail, waiting = _tail(step) if final else ([], None)
        # Results of operations with side effects in this commit: kept (journal) until the
        # Space has them, and sent again after an outage instead of running them again.
        jkey = "%s/%s" % (run_id, node_id)
        pending = bool(step.pending) and write_fact
        salvage: List[Op] = []
        stale: List[Op] = []
        if pending:
            salvage, stale = self._journal_commit(step, jkey, ops)
        res = self._send_commit(ops + tail + extra, pending)
        if pending and not res.ok and step.lock in res.failed:
            # The node's lock is gone (session expired while the operation ran, or during an
            # outage): the result is committed anyway if nobody moved the node meanwhile (CAS
            # on its fact); else this execution was stale, and the trace says so.
            if self._send_salvage(jkey, salvage, stale, [fact["version"], fact["updated"]]) is not None:
                self.journal.drop(jkey)
            step.pending = []
            self.stats["lost"] += 1
            return False
        if final and not res.ok and _woken_meanwhile(step, waiting, res.failed):
            # A neighbour woke this node, or moved what it waits on, while it was evaluated:
            # keep the ready tuple so that the node is evaluated again with what the neighbour
            # just committed.
            if waiting:
                ctx.forget_fact(waiting["node"])
            res = self._send_commit(ops + [op_delete(step.lock)] + extra, pending)
        journaled = jkey if pending else None
        if res.ok:
            self._committed(step, res.index, released, kept, write_fact, journaled)
            return True
        if expected and res.failed and set(res.failed) <= expected:
            step.failed = list(res.failed)
            return False
        self._refused(step, res.failed, journaled, stale)
        return False

    def _refused(self, step: "_Step", failed: List[str], jkey: Optional[str],
                 stale: List[Op]) -> None:
        """The step's commit was refused on ``failed`` (its lock lost?): its results of
        operations with side effects (journal entry ``jkey``) are recorded as stale."""
        fact = step.fact
        if jkey is not None:
            if self._send_salvage(jkey, [], stale, [fact["version"], fact["updated"]]) is not None:
                self.journal.drop(jkey)
            step.pending = []
        self.stats["lost"] += 1
        log.warning("worker %s: commit of %s/%s refused on %s (lock lost?); another worker retakes it",
                    self.id, step.ctx.run_id, step.node_id, ",".join(failed))

    def _fact_writes(self, step: "_Step") -> List[Op]:
        """What a commit of the step writes of its node: its fact (CAS, next version), trace
        events, logs and attributes (its own, and those its operations set on others)."""
        ctx, node_id, fact = step.ctx, step.node_id, step.fact
        run_id = ctx.run_id
        fact["version"] = fact["version"] + 1
        fact["updated"] = time.time()
        ops = [op_cas(keys.fact(run_id, node_id), fact, step.fact_index)]
        if step.events:
            ops.append(op_set(keys.trace(run_id, node_id, fact["version"]),
                              events.record(ctx.workflow, self.id, step.events)))
        if step.logs:
            ops.append(op_set(keys.log(run_id, node_id, fact["version"]), step.logs))
        if step.attributes:
            ops.append(op_set(keys.attributes(ctx.model, ctx.instance, node_id),
                              self._merged_attributes(ctx, node_id, step.attributes)))
        for other, attrs in sorted(step.other_attributes.items()):
            ops.append(op_set(keys.attributes(ctx.model, ctx.instance, other),
                              self._merged_attributes(ctx, other, attrs)))
        return ops

    def _wake_ops(self, step: "_Step", room: int) -> List[Op]:
        """The wake-ups of the neighbours that may wait on the states the step reached: ready
        tuples, or outbox tuples when more than ``room``."""
        ctx, node_id = step.ctx, step.node_id
        wakes = ctx.wakes(node_id, step.reached_now)
        if len(wakes) <= room:
            return [op_set(keys.ready(ctx.run_id, w), {}) for w in wakes]
        return [op_set(keys.outbox(ctx.run_id, "%s-%d-%d" % (node_id, step.fact["version"], i)),
                       {"wake": wakes[i:i + keys.OUTBOX_CHUNK]})
                for i in range(0, len(wakes), keys.OUTBOX_CHUNK)]

    def _journal_commit(self, step: "_Step", jkey: str,
                        ops: List[Op]) -> Tuple[List[Op], List[Op]]:
        """Keep a commit that carries results of operations with side effects in the journal
        (``jkey``) until the Space has it; returns its salvage and stale operations."""
        fact = step.fact
        salvage = ([op_cas(keys.fact(step.ctx.run_id, step.node_id), dict(fact, inflight=None),
                           step.fact_index)] + ops[2:])
        stale = self._stale_ops(step)
        self.journal.put(jkey, {"ops": [op_to_json(o) for o in salvage],
                                "stale": [op_to_json(o) for o in stale],
                                "fact_version": [fact["version"], fact["updated"]],
                                "worker": self.id, "ts": time.time()})
        return salvage, stale

    def _committed(self, step: "_Step", index: int, released: Optional[str], kept: bool,
                   write_fact: bool, jkey: Optional[str]) -> None:
        """The step's commit went through: what it held and carried is done with (``jkey``:
        its journal entry, when it carried results of operations with side effects)."""
        self.stats["commits"] += 1
        if released:
            self._host_released(released, kept)
            step.host = None
        if write_fact:
            step.fact_index = index
            step.ctx.remember_fact(step.node_id, step.fact, index)
        step.events, step.logs, step.reached_now = [], [], []
        step.attributes, step.other_attributes = {}, {}
        if jkey is not None:
            step.pending = []
            self.journal.drop(jkey)

    def _send_commit(self, ops: List[Op], pending: bool) -> Any:
        """Send a commit; one that carries results of operations with side effects is sent again
        until the Space answers (outage, quorum loss), unless the worker stops: the journal then
        keeps it for the next start."""
        delay = 0.5
        while True:
            try:
                return self.space.txn(ops)
            except (TxnTooLarge, SpaceDataError):
                raise
            except SpaceError as exc:
                if not pending or self._stop.is_set():
                    raise
                self._count("outage_retries")
                log.warning("worker %s: cannot commit a finished operation's result (%s); kept "
                            "(journal %s), retrying", self.id, exc, self.journal.path or "in memory")
                self._stop.wait(delay)
                delay = min(delay * 2, 1.0)

    def _stale_ops(self, step: "_Step") -> List[Op]:
        """The records of a stale execution: its operations' events (``status: stale``, worker
        id) and logs, under keys of their own (keys.trace_stale)."""
        ctx = step.ctx
        stamp = time.time_ns()
        out = [op_set(keys.trace_stale(ctx.run_id, step.node_id, self.id, stamp),
                      events.record(ctx.workflow, self.id, step.pending))]
        if step.logs:
            out.append(op_set(keys.log_stale(ctx.run_id, step.node_id, self.id, stamp),
                              [dict(r, status="stale") for r in step.logs]))
        return out

    def _send_salvage(self, jkey: str, salvage: List[Op], stale: List[Op], stamp: Any) -> Optional[bool]:
        """Commit results whose node this worker no longer holds: the fact's CAS (on the index the
        worker's checkpoint wrote) succeeds only if no other worker moved the node since, which
        is also the only way another worker could have started the same operation (it records
        its attempt first).  Refused: the execution was stale, recorded as such.  True if the
        results are in the Space, None if the Space could not be reached (the journal keeps them)."""
        run_id, dummy, node_id = jkey.partition("/")
        fkey = keys.fact(run_id, node_id)
        try:
            if salvage:
                res = self.space.txn(salvage)
                if res.ok:
                    self._count("salvaged")
                    log.warning("worker %s: %s: result committed after the node's lock was lost "
                                "(its fact had not moved)", self.id, jkey)
                    return True
            e = self.space.get(fkey)
            if (e is not None and isinstance(e.value, dict) and isinstance(stamp, list)
                    and [e.value.get("version"), e.value.get("updated")] == stamp):
                return True   # an earlier attempt whose response was lost had committed it
            self.space.write_chunked(stale)
        except WfError as exc:
            log.error("worker %s: %s: cannot commit or record a finished operation (%s); kept in the "
                      "journal", self.id, jkey, exc)
            return None
        # If its own attempt is still the one recorded (the fact moved for another reason), the
        # other workers leave the node to this one while it lives: it takes the node back itself.
        self.attempts.abandon(run_id, node_id)
        self._count("stale")
        log.warning("worker %s: %s: operation ran after the node was taken over (stale "
                    "execution, recorded in the trace)", self.id, jkey)
        return False

    def _merged_attributes(self, ctx: RunContext, node_id: str, new: Dict[str, Any]) -> Dict[str, Any]:
        e = self.space.get(keys.attributes(ctx.model, ctx.instance, node_id))
        cur = dict(e.value) if e is not None and isinstance(e.value, dict) else {}
        cur.update(new)
        return cur
