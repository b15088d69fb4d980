# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The batch's commit (step 4 and 5 of batch.py): groups packed into transactions, each built
as a list of Space operations, sent, and its outcome applied to the members.

Why a file of its own: the commit is the batch's most delicate part (what a transaction checks,
removes, writes and wakes, and how a refused one is settled and retried) and reads best apart
from how the batch advances its nodes in memory.  ``BatchCommit`` is a part of ``Batch``.
"""
from __future__ import annotations

import itertools
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Set, Tuple, cast

from . import events as trace_events
from . import keys
from .batch_member import RECORD_EVENTS, TXN_EVENTS, Member
from .records import Fact
from .space.base import (Entry, Op, TxnResult, op_cas, op_check_index, op_check_not_exists,
                         op_check_session, op_delete, op_delete_cas_present, op_get,
                         op_lock, op_set)

if TYPE_CHECKING:  # pragma: no cover
    from .batch_host import BatchHost
    from .run_context import RunContext
    from .space.base import Space

log = logging.getLogger("wfengine.worker")

_TRACE_TAG = uuid.uuid4().hex[:10]
_TRACE_SEQ = itertools.count(1)


def _records(events: int) -> int:
    """Trace records for ``events`` events."""
    return -(-events // RECORD_EVENTS)


class _Txn:
    """One commit transaction of a batch, built before it is sent: its operations, and what
    sending it and settling its failure need to know."""

    __slots__ = ("ops", "checks", "blocks", "gets", "removed", "direct")

    def __init__(self, ops: List[Op], checks: Dict[str, Op], blocks: Dict[str, List[Member]],
                 gets: Dict[str, str], removed: List[Member], direct: List[str]) -> None:
        self.ops = ops
        self.checks = checks          # fact key -> its check
        self.blocks = blocks          # fact key -> the blocked members that check it
        self.gets = gets              # node -> key of its record, read with the handoffs
        self.removed = removed        # members whose ready tuple this commit removes
        self.direct = direct          # nodes woken by a ready tuple (not an outbox)


class BatchCommit:
    """Commit of a batch's members (mixed into batch.Batch, which holds the state below)."""

    w: "BatchHost"
    space: "Space"
    ctx: "RunContext"
    run_id: str
    session: Optional[str]     # the worker's live session (set before any batch)
    wid: str                   # the worker's id, and its counters (batch.py reads them once)
    stats: Dict[str, int]
    members: Dict[str, Member]
    outside: Dict[str, Tuple[Optional[Fact], int]]
    released: List[str]
    woken_facts: Dict[str, Tuple[Optional[Fact], int]]
    hand_index: Dict[str, int]
    handed: Dict[str, Tuple[Entry, Optional[Entry]]]
    may_hand: bool

    def _root(self, m: Member) -> Member:
        raise NotImplementedError

    def _drop_hand(self, m: Member, t: str) -> None:
        raise NotImplementedError

    def _block_check(self, m: Member, tx_ids: Set[str]) -> Optional[Op]:
        """The check a blocked member's commit carries on the fact it waits on (see above)."""
        w = m.fact.get("waiting")
        if not w or m.pause or m.keep_ready:
            return None
        o = w.get("node")
        if o in tx_ids:
            return None       # committed in the same transaction
        om = self.members.get(o)
        index = om.index if om is not None else self.outside.get(o, (None, 0))[1]
        key = keys.fact(self.run_id, o)
        return op_check_index(key, index) if index else op_check_not_exists(key)

    # ------------------------------------------------------------------ 4. commit
    def _moved(self, m: Member) -> bool:
        fact = m.fact
        now = (fact["pc"], fact.get("waiting"), fact.get("epoch"), bool(fact.get("error")))
        return m.new or bool(m.events) or m.before != now

    def _removals(self, m: Member) -> List[Op]:
        if m.pause or m.keep:
            return []       # the single-node path, or this lane, goes on with the lock and tuple
        # The ready tuple is under this member's lock (checked by the commit): one Consul op.
        ops = [] if m.keep_ready else [op_delete_cas_present(m.ready.key, m.ready.index)]
        return ops + [op_delete(m.lock)]

    def _cost(self, m: Member) -> int:
        """Operations of one member, as Consul counts them (a delete_cas is two)."""
        n = sum(2 if op.verb == "delete_cas" else 1 for op in self._removals(m))
        n += int(self._moved(m)) + int(bool(m.attributes))
        n += -(-len(m.wakes) // keys.OUTBOX_CHUNK) if m.outbox else len(m.wakes)
        n += 2 * len(m.hand) + len(self.ctx.node_keys(list(m.hand))) + int(m.keep)
        return n + len(m.checks) + int(bool(m.fact.get("waiting")))

    def commit(self) -> Tuple[List[Member], List[Member]]:
        """Commit every group; returns (committed members, lost members)."""
        txns = self._pack()
        done: List[Member] = []
        for i, tx in enumerate(txns):
            released = self.released if i == 0 else []
            try:
                ok = self._commit_txn(tx, released)
            except BaseException:
                # Whatever happened (Space unavailable, a transaction refused as too large, a
                # bug), the nodes not committed must not stay locked by this live session: their
                # ready tuples are still there, another step takes them.  Nodes handed off by
                # the transactions that did commit are released too: nobody goes on with them,
                # nor with their members paused before an operation (the single-node path is
                # never started for them): they are taken again from their ready tuples.
                self._release_quietly([m for t in txns[i:] for m in t]
                                      + [m for m in done if m.pause],
                                      released + [keys.lock(self.run_id, n) for n in self.handed])
                self.w.unreserve(self.run_id, list(self.handed))
                self.handed = {}
                raise
            if not ok:
                lost = [m for t in txns[i:] for m in t]
                self._release_quietly(lost, released)
                return done, lost
            done.extend(tx)
        return done, []

    def _pack(self) -> List[List[Member]]:
        """The groups, packed into as few transactions as the Space's limits allow."""
        groups: Dict[int, List[Member]] = {}
        for m in self.members.values():
            groups.setdefault(id(self._root(m)), []).append(m)
        # A transaction holds: the session check, the released locks (first one only), its
        # members' operations and ceil(events / RECORD_EVENTS) trace records.
        limit = self.space.max_txn_ops - 1 - len(self.released)
        txns: List[List[Member]] = []
        cur: List[Member] = []
        cur_cost = 0
        cur_events = 0
        for members in groups.values():
            events = sum(len(m.events) for m in members)
            cost = self._group_cost(members, events, limit)
            if cur and (cur_cost + cost + _records(cur_events + events) > limit
                        or cur_events + events > TXN_EVENTS):
                txns.append(cur)
                cur, cur_cost, cur_events = [], 0, 0
            cur.extend(members)
            cur_cost += cost
            cur_events += events
        if cur or self.released:
            txns.append(cur)
        return txns

    def _group_cost(self, members: List[Member], events: int, limit: int) -> int:
        """Operations of one group; a group too large for a transaction gives up its handoffs
        and checks (its candidates are woken, through an outbox when more than one)."""
        cost = sum(self._cost(m) for m in members)
        if cost + _records(events) <= limit:
            return cost
        for m in members:
            for t in list(m.hand):
                self._drop_hand(m, t)
            m.outbox = len(m.wakes) + len(m.checks) > 1
            m.wakes.update((t, None) for t in m.checks)
            m.checks = {}
        return sum(self._cost(m) for m in members)

    def _commit_txn(self, tx: List[Member], released: List[str]) -> bool:
        """Commit the members ``tx`` in one transaction: built, sent, its outcome applied; a
        refused one is settled (``_settle_failure``) and sent again while that helps."""
        moved = [m for m in tx if self._moved(m)]
        # Each failed attempt settles at least one condition (a ready tuple, a check).
        attempts = 2 + sum(2 + len(m.checks) + 2 * len(m.hand) for m in tx)
        for dummy in range(attempts):
            now = time.time()
            for m in moved:
                m.fact["version"] = int(m.fact["version"]) + 1
                m.fact["updated"] = now
            txn = self._build(tx, released, moved)
            res, stale = self._send(txn, moved)
            if res.ok:
                self._applied(tx, res, txn.gets)
                return True
            for m in moved:     # the transaction did not apply
                m.fact["version"] = int(m.fact["version"]) - 1
            if self._settle_failure(tx, set(res.failed), txn.blocks, known=bool(stale)):
                self.w.count("commit_retries")
                continue
            break
        self.stats["lost"] += 1
        log.warning("worker %s: batch commit of %s refused on %s (lock lost?); another worker "
                    "retakes its nodes", self.wid, self.run_id, ",".join(res.failed))
        return False

    def _build(self, tx: List[Member], released: List[str], moved: List[Member]) -> "_Txn":
        """The transaction of ``tx``, as a list of Space operations (nothing is sent)."""
        run_id = self.run_id
        removals: List[Op] = [op_delete(lk) for lk in released]
        for m in tx:
            removals.extend(self._removals(m))
        writes, wakes = self._writes(tx, moved)
        # A session check on one held lock covers them all: a session's locks go together.
        held = next((m.lock for m in tx), released[0] if released else None)
        checks, blocks = self._checks(tx)
        hands, gets = self._hands(tx, checks)
        ops: List[Op] = ([op_check_session(cast(str, held), cast(str, self.session))]
                         + list(checks.values()) + removals + writes + self._trace_records(tx))
        # Wake-ups last: a wake-up of a batch node whose removal is in this transaction
        # re-creates its ready tuple after the removal.
        kept = [keys.ready(run_id, m.id) for m in tx if m.keep]
        ops += (list(wakes.values()) + hands + [op_get(k) for k in gets.values()]
                + [op_get(k) for k in kept])
        removed = [m for m in tx if not (m.pause or m.keep or m.keep_ready)]
        direct = [t for m in tx if not m.outbox for t in m.wakes]
        return _Txn(ops, checks, blocks, gets, removed, direct)

    def _writes(self, tx: List[Member], moved: List[Member]) -> Tuple[List[Op], Dict[str, Op]]:
        """The facts (CAS), attributes and outboxes ``tx`` writes, and its direct wake-ups."""
        run_id = self.run_id
        writes: List[Op] = []
        wakes: Dict[str, Op] = {}
        for m in tx:
            if m.attributes:
                writes.append(op_set(keys.attributes(self.ctx.model, self.ctx.instance, m.id),
                                     self.w.merged_attributes(self.ctx, m.id, m.attributes)))
            if m.outbox:
                ws = list(m.wakes)
                for i in range(0, len(ws), keys.OUTBOX_CHUNK):
                    ident = "%s-%d-%d" % (m.id, m.fact["version"], i)
                    writes.append(op_set(keys.outbox(run_id, ident),
                                         {"wake": ws[i:i + keys.OUTBOX_CHUNK]}))
            else:
                for t in m.wakes:
                    k = keys.ready(run_id, t)
                    wakes[k] = op_set(k, {})
        facts = [op_cas(keys.fact(run_id, m.id), m.fact, m.index) for m in moved]
        return facts + writes, wakes

    def _checks(self, tx: List[Member]) -> Tuple[Dict[str, Op], Dict[str, List[Member]]]:
        """The checks of ``tx`` (fact key -> operation): the facts of the candidates it does
        not wake, and of what its blocked members wait on (``blocks``: key -> those members)."""
        ids = {m.id for m in tx}
        checks: Dict[str, Op] = {}
        blocks: Dict[str, List[Member]] = {}
        for m in tx:
            for t, index in m.checks.items():
                k = keys.fact(self.run_id, t)
                checks[k] = op_check_index(k, index) if index else op_check_not_exists(k)
            op = self._block_check(m, ids)
            if op is not None:
                checks.setdefault(op.key, op)
                blocks.setdefault(op.key, []).append(m)
        return checks, blocks

    def _hands(self, tx: List[Member], checks: Dict[str, Op]) -> Tuple[List[Op], Dict[str, str]]:
        """The locks of the handoffs of ``tx`` (their facts' checks go into ``checks``), and
        the node records to read with them (node -> key)."""
        hands: List[Op] = []
        gets: Dict[str, str] = {}
        for m in tx:
            for t in m.hand:
                k = keys.fact(self.run_id, t)
                index = self.hand_index[t]
                checks.setdefault(k, op_check_index(k, index) if index
                                  else op_check_not_exists(k))
                hands.append(op_lock(keys.lock(self.run_id, t), {"worker": self.wid},
                                     cast(str, self.session)))
            gets.update(self.ctx.node_keys(list(m.hand)))
        return hands, gets

    def _trace_records(self, tx: List[Member]) -> List[Op]:
        """The trace events of ``tx``, in the order they happened, RECORD_EVENTS a record."""
        events: List[Tuple[int, List[Any]]] = [e for m in tx for e in m.events]
        events.sort(key=lambda e: e[0])
        ops: List[Op] = []
        for i in range(0, len(events), RECORD_EVENTS):
            rows = [e[1] for e in events[i:i + RECORD_EVENTS]]
            ops.append(op_set(keys.trace_batch(self.run_id, _TRACE_TAG, next(_TRACE_SEQ)),
                              trace_events.record(self.ctx.workflow, self.wid, rows)))
        return ops

    def _send(self, txn: "_Txn", moved: List[Member]) -> Tuple[TxnResult, List[str]]:
        """Send ``txn`` (unless it is known to fail: then the keys it would fail on); returns
        the result and the keys known stale."""
        # Another lane of this worker may be committing (or have committed since this
        # batch read it) a node this transaction checks, or checking one it writes: one of
        # the two would fail, and a failed Consul transaction costs a Raft round like a
        # successful one.  Wait for that commit, then settle here what is known to fail.
        fact_prefix = keys.fact(self.run_id, "")
        marked = self.w.enter_commit(
            self.run_id, [k[len(fact_prefix):] for k in txn.checks] + [m.id for m in txn.removed],
            [m.id for m in moved] + txn.direct)
        try:
            stale = self._known_stale(txn.checks.values(), txn.removed)
            if stale:
                res = TxnResult(ok=False, failed=stale)
                self.w.count("retry_local")
            else:
                res = self.space.txn(txn.ops)
                if res.ok:
                    for m in moved:
                        m.index, m.new, m.before = res.index, False, ()
                        self.ctx.remember_fact(m.id, m.fact, res.index)
                    self.ctx.remember_ready(txn.direct, res.index)
        finally:
            self.w.leave_commit(marked)
        return res, stale

    def _applied(self, tx: List[Member], res: TxnResult, gets: Dict[str, str]) -> None:
        """``tx`` committed: what its handoffs and kept members start the next batch from."""
        run_id = self.run_id
        self.stats["commits"] += 1
        self.w.count("handoffs", sum(len(m.hand) for m in tx))
        for m in tx:
            m.events = []
            for t in m.hand:
                fact, index = self.woken_facts[t]
                self.handed[t] = (
                    Entry(keys.ready(run_id, t), {}, res.index),
                    None if fact is None else Entry(keys.fact(run_id, t), fact, index))
            m.hand = {}
            ready = res.entries.get(keys.ready(run_id, m.id)) if m.keep else None
            if ready is not None:
                self.handed[m.id] = (ready, Entry(keys.fact(run_id, m.id), m.fact, m.index))
            elif m.keep:    # cannot happen while we hold its lock; do not keep it then
                self.w.release_quietly(m.lock, self.session)
        self.ctx.cache_nodes({n: res.entries.get(k) for n, k in gets.items()})

    def _known_stale(self, checks: Iterable[Op], removed: List[Member]) -> List[str]:
        """Keys whose operation this worker knows would fail: a fact check older than the newest
        index it has seen for the node (RunContext.fact_floor: every commit of its lanes and
        every read update it), a ready tuple removal older than the tuple one of its commits
        wrote since."""
        prefix = keys.fact(self.run_id, "")
        out = []
        for op in checks:
            if (op.verb in ("check_index", "check_not_exists") and op.key.startswith(prefix)
                    and self.ctx.fact_floor(op.key[len(prefix):]) > op.index):
                out.append(op.key)
        out += [m.ready.key for m in removed if self.ctx.ready_index(m.id) > m.ready.index]
        return out

    def _settle_failure(self, tx: List[Member], failed: Set[str],
                        blocks: Dict[str, List[Member]], known: bool = False) -> bool:
        """A transaction failed on ``failed``: adjust what can be (True), or give up (False).
        ``known``: found before sending (``_known_stale``), so the hints are right and stay."""
        for k in failed:
            handled = False
            if k.startswith(keys.fact(self.run_id, "")) and not known:
                self.ctx.forget_fact(k[len(keys.fact(self.run_id, "")):])
            for m in tx:
                t = next((t for t in m.hand
                          if k in (keys.lock(self.run_id, t), keys.fact(self.run_id, t))), None)
                if t is not None:
                    # Another worker holds the node, or its fact moved: a plain wake-up then.
                    self._drop_hand(m, t)
                    handled = True
                    self.w.count("retry_hand")
                if m.ready.key == k and not m.pause:
                    # A neighbour woke this node while it was evaluated: keep its ready tuple so
                    # that it is evaluated again with what the neighbour just committed, and, as
                    # with a handoff, its lock too: this lane goes on with it at once instead of
                    # letting it go through a listing and a claim.
                    m.keep_ready = handled = True
                    m.keep = self.may_hand
                    self.w.count("retry_ready")
                t = next((t for t in m.checks if keys.fact(self.run_id, t) == k), None)
                if t is not None:
                    # That node committed meanwhile, maybe a wait for this member: wake it.
                    del m.checks[t]
                    m.wakes[t] = None
                    handled = True
                    self.w.count("retry_cand")
            for m in blocks.get(k, []):
                m.keep_ready = handled = True     # what it waits on moved: evaluate it again
                self.w.count("retry_block")
            if not handled:
                return False
        return bool(failed)

    def _release_quietly(self, members: List[Member], released: List[str]) -> None:
        # Handoff locks too: a transaction whose answer was lost may have taken them.
        hands = [keys.lock(self.run_id, t) for m in members for t in m.hand]
        for lk in released + [m.lock for m in members] + hands:
            # Sent again until the Space answers (a live session's lock is never left behind)
            self.w.release_quietly(lk, self.session)
        for m in members:
            for t in list(m.hand):
                self._drop_hand(m, t)
