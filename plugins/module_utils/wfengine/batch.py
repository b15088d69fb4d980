# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The batch step: one worker thread advances many ready nodes of a run with a few transactions.

Why.  A step per node costs at least two Space writes (lock, commit) plus reads, and a Raft write
on Consul costs milliseconds; the frontier of a large topology holds hundreds of ready nodes at
once.  Taking them by batches divides the number of round trips by the batch size, and nodes of
one batch see each other's new states at once (in memory) instead of through a wake-up, a
listing and another take.

Protocol (its crash safety is the single step's, see worker.py):

1. *claim*: one transaction locks every node of the batch with the worker's session and reads
   their ready tuples; a node locked by another worker is dropped and the claim retried;
2. *read*: their facts, then the facts their waits name, in read-only transactions (no Raft
   write on Consul);
3. *advance in memory*: each node runs its program (states, operations without side effects,
   satisfied waits).  A node that passes a wait thanks to a state another batch node reached in
   this batch joins that node's *group*: groups commit atomically, so no commit ever shows a node
   past a wait whose state is not committed with it.  A node stops at an unsatisfied wait, at the
   end of its program, or right before an operation with side effects, which then goes on alone
   on the single-node path (it records the attempt before running it);
4. *commit*: groups are packed into as few transactions as the Space's operation limit allows;
   each holds a session check, the removal of its ready tuples (CAS: a tuple rewritten by a
   wake-up meanwhile is kept, so the node is evaluated again) and of its locks, the facts (CAS),
   one trace record and the wake-ups of nodes outside the batch;
5. *handoff*: the woken nodes this worker would take anyway are also locked by that commit (with
   a check that their fact is still the one read), and become the next batch of the same thread
   at once: no blocking query, listing or claim between a wake-up and its evaluation, which is
   what a chain of dependent steps pays on every link.  A handoff the Space refuses (another
   worker holds the node, or its fact moved) falls back to the plain wake-up.

The commit (steps 4 and 5) is in batch_commit.py, a member and the batch's limits in
batch_member.py, what the batch needs of its worker in batch_host.py.

A crash before a group's commit leaves its ready tuples: the group is retaken, and nothing of it
was visible outside the Space (no operation with side effects runs inside a batch).
"""
from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, cast

from . import events as trace_events
from . import keys
from .batch_commit import BatchCommit
from .batch_member import CANDS_MAX, GROUP_EVENTS, GROUP_MAX, Member
from .errors import SpaceDataError, WfError
from .operation.executor import OperationCall
from .facts import (evaluated, new_fact, operation_error, passes, reached, remaining_states,
                    validate_fact)
from .interpreter import run_program
from .placement import call_end
from . import imperative
from .records import Fact, NodeInstance, Relationship, salvage_fact
from .rules import RCALL, STATE, WAIT, Instr
from .space.base import Entry, TxnResult, op_get, op_lock

if TYPE_CHECKING:  # pragma: no cover
    from .batch_host import BatchHost
    from .run_context import RunContext

log = logging.getLogger("wfengine.worker")


class Batch(BatchCommit):
    """Claim, advance and commit a batch of nodes of one run for ``worker`` (what it needs of
    the worker: batch_host.BatchHost)."""

    def __init__(self, worker: "BatchHost", ctx: "RunContext", node_ids: List[str]):
        self.w, self.space, self.ctx, self.run_id = worker, worker.space, ctx, ctx.run_id
        self.session = worker.session
        # fixed for the worker's life: read once, not through the port at every operation
        self.wid, self.executor, self.stats = worker.id, worker.executor, worker.stats
        self.node_ids = node_ids
        self.members: Dict[str, Member] = {}
        # Facts of nodes outside the batch, as read: node -> (fact or None, index or 0).
        self.outside: Dict[str, Tuple[Optional[Fact], int]] = {}
        self.to_read: Dict[str, None] = {}
        self.seq = itertools.count()
        self.released: List[str] = []        # locks taken on nodes whose tuple was gone
        self.fact_entries: Dict[str, Optional[Entry]] = {}
        self.sizes: Dict[int, int] = {}
        self.gevents: Dict[int, int] = {}    # trace events per group (root id)
        # Handoff: facts of precisely woken nodes as read (node -> (fact or None, index)), the
        # nodes chosen, and after the commit what the next batch starts from.
        self.woken_facts: Dict[str, Tuple[Optional[Fact], int]] = {}
        self.hand_index: Dict[str, int] = {}
        self.handed: Dict[str, Tuple[Entry, Optional[Entry]]] = {}
        self.may_hand = False                # choose_handoff ran: this lane goes on after it

    def adopt(self, handed: Dict[str, Tuple[Entry, Optional[Entry]]]) -> None:
        """Start from nodes a previous commit of this thread locked and woke (step 5): their
        ready tuples, locks and facts are known, so there is nothing to claim."""
        for n, (ready, fact) in handed.items():
            self.members[n] = Member(n, ready, keys.lock(self.run_id, n))
            self.fact_entries[n] = None if fact is None else Entry(
                fact.key, dict(fact.value, reached=list(fact.value["reached"])), fact.index)

    # ------------------------------------------------------------------ 1. claim
    def claim(self) -> None:
        todo = list(self.node_ids)[:self.space.max_txn_ops // 4]
        rounds = 0
        while todo and rounds < 4:
            rounds += 1
            lks = [keys.lock(self.run_id, n) for n in todo]
            nks, rules = self._claim_reads(todo)
            # Linda `in` of many tuples: lock, ready tuple and fact of every node (and the node
            # records this worker has not cached yet), one round trip.
            res = self.space.txn([op_lock(k, {"worker": self.wid}, cast(str, self.session)) for k in lks]
                                 + [op_get(keys.ready(self.run_id, n)) for n in todo]
                                 + [op_get(keys.fact(self.run_id, n)) for n in todo]
                                 + [op_get(k) for k in nks.values()] + [op_get(k) for k in rules])
            self.w.count("claims")
            if res.ok:
                self._claimed(res, todo, nks, rules)
                return
            failed = set(res.failed)
            self.w.count("claim_conflicts")
            left = [n for n, lk in zip(todo, lks) if lk not in failed]
            if len(left) == len(todo):
                return    # the session is gone (no lock can be taken): the renewer reopens one
            todo = left

    def _claim_reads(self, todo: List[str]) -> Tuple[Dict[str, str], List[str]]:
        """What a claim of ``todo`` reads besides their tuples and facts: the node records
        this worker has not cached (node -> key), and the rules' key if it has not read them."""
        nks = self.ctx.node_keys(todo)
        # The run's rules if this worker has not read them yet (RunContext.rules), and a
        # small run's other node records, while the claim has room: the first commit then
        # reads nothing more (the nodes it may wake are the run's own).
        rules = [] if self.ctx.has_rules else [self.ctx.rules_key]
        room = self.space.max_txn_ops - 3 * len(todo) - len(nks) - len(rules)
        if room < 0:
            rules, room = [], room + len(rules)
        if self.ctx.fresh and room > 0:
            nks.update(self.ctx.node_keys(sorted(self.ctx.fresh - set(nks))[:room]))
        return nks, rules

    def _claimed(self, res: TxnResult, todo: List[str], nks: Dict[str, str],
                 rules: List[str]) -> None:
        """A claim of ``todo`` went through: its members, and what it read."""
        self.ctx.cache_nodes({n: res.entries.get(k) for n, k in nks.items()})
        if rules and res.entries.get(rules[0]) is not None:
            self.ctx.set_rules(res.entries[rules[0]])
        for n in todo:
            lk = keys.lock(self.run_id, n)
            ready = res.entries.get(keys.ready(self.run_id, n))
            if ready is None:
                self.released.append(lk)   # taken and committed by another worker
            else:
                self.members[n] = Member(n, ready, lk)
                self.fact_entries[n] = res.entries.get(keys.fact(self.run_id, n))

    # ------------------------------------------------------------------ 2. read
    def load(self) -> None:
        ctx = self.ctx
        entries = self.fact_entries
        self._load_members(entries)
        # One read for what the batch will most likely need: the facts its waits up to the next
        # state name, and those of the nodes its states may wake (read again only if missing).
        want: Dict[str, None] = {}
        for m in self.members.values():
            if m.skip:
                continue
            states = []
            for ins in m.prog[m.fact["pc"]:]:
                if ins.op == STATE:
                    states.append(ins.name)
                elif ins.op == WAIT and not states and ins.other not in self.members:
                    want[ins.other] = None
            for t in ctx.wakes(m.id, states):
                if t not in self.members:
                    want[t] = None
        if want:
            self._read_outside(list(want))

    def _load_members(self, entries: Dict[str, Optional[Entry]]) -> None:
        ctx = self.ctx
        for m in self.members.values():
            fkey = keys.fact(self.run_id, m.id)
            e = entries.get(m.id)
            m.new = e is None
            m.index = 0 if e is None else e.index
            try:
                m.fact = new_fact(m.id) if e is None else validate_fact(fkey, e.value)
                m.node = ctx.node(m.id)
                m.prog = ctx.program(m.id)
            except SpaceDataError as exc:
                self._fail(m, e, str(exc))
                continue
            fact = m.fact
            m.before = (fact["pc"], fact.get("waiting"), fact.get("epoch"), bool(fact.get("error")))
            value = m.ready.value if isinstance(m.ready.value, dict) else {}
            epoch = int(value.get("epoch", 0) or 0)
            if fact.get("error") and epoch > int(fact.get("epoch") or 0):
                # Resumed run: retry the failed step; what succeeded before is not run again.
                fact["error"] = None
                fact["state"] = fact["reached"][-1] if fact["reached"] else None
                fact["inflight"] = None
            fact["epoch"] = max(epoch, int(fact.get("epoch") or 0))
            m.skip = bool(fact["done"] or fact.get("error"))

    def _fail(self, m: Member, e: Optional[Entry], message: str) -> None:
        """Bad data in the Space: stop this node (the run ends failed) instead of looping on it."""
        fact = salvage_fact(m.id, e.value if e is not None else None)
        fact["error"] = {"message": message, "worker": self.wid}
        if not isinstance(fact.get("version"), int):
            fact["version"] = 0
        m.fact, m.skip, m.new = fact, True, True
        m.before = ()

    # ------------------------------------------------------------------ 3. advance
    def advance(self) -> None:
        pending = [m for m in self.members.values() if not m.skip]
        for m in pending:
            m.queued = True
        while pending:
            while pending:
                m = pending.pop(0)
                m.queued = False
                self._run(m, pending)
            if self.to_read:
                wanted = list(self.to_read)
                self.to_read = {}
                self._read_outside(wanted)
                for m in self.members.values():
                    if m.need_read:
                        m.need_read = False
                        m.queued = True
                        pending.append(m)

    def _read_outside(self, ids: List[str],
                      into: Optional[Dict[str, Tuple[Optional[Fact], int]]] = None) -> None:
        """Facts of nodes outside the batch: from what this worker knows of the nodes it owns
        and no other lane of it holds (it wrote most of them: see RunContext.known_fact), read
        from the Space otherwise."""
        into = self.outside if into is None else into
        ctx = self.ctx
        unknown = []
        busy = self.w.held(self.run_id, ids)   # another lane of this worker may be moving them
        for n in ids:
            hit = (ctx.known_fact(n) if n not in busy and self.w.hand_ok(self.run_id, n, ctx)
                   else None)
            if hit is None:
                unknown.append(n)
            else:
                into[n] = hit
        if not unknown:
            return
        read = self.space.get_many([keys.fact(self.run_id, n) for n in unknown])
        for n in unknown:
            k = keys.fact(self.run_id, n)
            e = read[k]
            into[n] = (validate_fact(k, e.value), e.index) if e is not None else (None, 0)
            ctx.remember_fact(n, *into[n])

    def _root(self, m: Member) -> Member:
        while m.group is not m:
            m.group = m.group.group
            m = m.group
        return m

    def _union(self, a: Member, b: Member) -> bool:
        ra, rb = self._root(a), self._root(b)
        if ra is rb:
            return True
        size = self.sizes.get(id(ra), 1) + self.sizes.get(id(rb), 1)
        events = self.gevents.get(id(ra), 0) + self.gevents.get(id(rb), 0)
        if size > GROUP_MAX or events >= GROUP_EVENTS:
            return False
        rb.group = ra
        self.sizes[id(ra)] = size
        self.gevents[id(ra)] = events
        return True

    def _event(self, m: Member, kind: str, name: str, rel: Optional[Relationship],
               status: str = "ok", node: Optional[NodeInstance] = None) -> None:
        """``node``: the end an operation ran for, when not ``m`` (placement.call_end)."""
        m.events.append((next(self.seq), trace_events.event(node or m.node, kind, name, rel, status)))
        r = id(self._root(m))
        self.gevents[r] = self.gevents.get(r, 0) + 1

    def _run(self, m: Member, pending: List[Member]) -> None:
        run_program(m.fact, m.prog, _MemberSteps(self, m, pending))

    def _call(self, m: Member, ins: Any) -> bool:
        """An operation of ``m``: run now if it has no side effects; False where ``m`` stops
        (before an operation with side effects, or at a failure outside a step)."""
        ctx, fact = self.ctx, m.fact
        rel, cnode, cside = None, m.node, ins.side
        if ins.op == RCALL:
            rel = ctx.relationship(m.id, ins.rel)
            cnode, cside = call_end(ins.name, rel, ins.side, m.node, ctx.node)
        call = OperationCall(ctx.run_id, ctx.workflow, cnode, ins.name, rel, cside, self.wid,
                             operation_host=ins.host)
        if self.executor.effectful(call):
            m.pause = True     # goes on alone after the commit (worker_single.py)
            return False
        result = self.executor.run(call)
        self.stats["operations"] += 1
        self._event(m, "operation", ins.name, rel, status="ok" if result.ok else "failed",
                    node=cnode)
        if getattr(result, "attributes", None):
            if cnode is not m.node:
                # Only operations without side effects run here: they report nothing.
                raise WfError("%s: %s reported outputs for %s in a batch"
                              % (m.id, ins.name, cnode["id"]))
            m.attributes.update(result.attributes)
        if not result.ok:
            fact["error"] = operation_error(ins.name, result, self.wid, 1, rel)
            fact["state"] = "error"
            self._event(m, "state", "error", None)
            if ins.step is not None:
                imperative.fail_step(m.fact, m.prog)   # on to the step's end, then on_failure
                return True
            if ctx.past_failures:
                # Its waiters go on once the error is committed (facts.passes): woken
                # through the Space by this commit, never in this batch.
                m.wakes.update(dict.fromkeys(ctx.wakes(m.id, remaining_states(m.prog, fact["pc"]))))
            return False
        fact["pc"] += 1
        return True

    def _fact_at_hand(self, m: Member, other: str) -> Optional[Fact]:
        """A fact an imperative GUARD looks at (its waits just made it at hand), or None after
        asking for it to be read (a node resumed right at its GUARD)."""
        if other == m.id:
            return m.fact
        om = self.members.get(other)
        if om is not None:
            return om.fact
        if other in self.outside:
            return self.outside[other][0] or new_fact(other)
        self.to_read[other] = None
        return None

    def _satisfied(self, m: Member, ins: Instr, prog: List[Instr], pc: int) -> Optional[bool]:
        """True/False, or None when the awaited fact must be read first."""
        other = cast(str, ins.other)     # a WAIT names the node it waits for
        om = self.members.get(other)
        if om is not None:
            if not reached(om.fact, ins.name):
                # a member in error since before this batch (committed) holds no uninstall up
                return bool(self.ctx.past_failures and om.before and om.before[3] and om.fact.get("error"))
            if ins.name in om.reached_now and om is not m:
                if not self._union(m, om):
                    om.wakes[m.id] = None    # wake it through the Space after om commits
                    return False
            return True
        if other in self.outside:
            return passes(self.outside[other][0], ins.name, self.ctx.past_failures)
        # Read, in one go, every fact the waits up to the next state name.
        for later in prog[pc:]:
            if later.op == STATE:
                break
            if (later.op == WAIT and later.other not in self.members
                    and later.other not in self.outside):
                self.to_read[cast(str, later.other)] = None
        return None

    def _woken_by(self, m: Member, state: str, pending: List[Member]) -> None:
        for t in self.ctx.wakes(m.id, (state,)):
            tm = self.members.get(t)
            if tm is None:
                m.cands[t] = None
            elif tm.pause:
                m.wakes[t] = None
            elif (tm.skip or tm.fact.get("done") or tm.fact.get("error") or tm.queued
                  or tm.need_read):
                continue
            else:
                tm.queued = True
                pending.append(tm)

    def settle_wakes(self) -> None:
        """Which nodes outside the batch to wake: those whose fact says they wait for a state a
        member reached.  The others' facts are checked unchanged at commit (a node that commits
        its wait meanwhile makes the check fail, and is then woken); symmetrically a member that
        stays blocked checks the fact it waits on.  Of two such commits, the later one sees the
        earlier: no wake-up is lost, and no node is woken for nothing."""
        want: Dict[str, None] = {}
        for m in self.members.values():
            if len(m.cands) > CANDS_MAX:
                m.wakes.update(m.cands)     # a large fan-out: wake them all, no reads
                m.cands = {}
            want.update(m.cands)
        if not want:
            return
        # Facts read by load() serve as they are (a node that moved since makes its check fail,
        # and is then woken); the others are read now.
        fresh = {t: self.outside[t] for t in want if t in self.outside}
        missing = [t for t in want if t not in fresh]
        if missing:
            self._read_outside(missing, fresh)
        self.ctx.prefetch([t for t in want if not evaluated(fresh[t][0])])
        for m in self.members.values():
            for t in m.cands:
                fact, index = fresh[t]
                if fact is not None and fact.get("done"):
                    continue
                w = self._waiting(t, fact)
                if w.get("node") == m.id and passes(m.fact, cast(str, w.get("state")), self.ctx.past_failures):
                    m.wakes[t] = None
                    self.woken_facts[t] = (fact, index)
                else:
                    m.checks[t] = index

    def _waiting(self, t: str, fact: Optional[Fact]) -> Dict[str, Any]:
        """What node ``t`` (outside the batch, its fact as read) waits for: {node, state}."""
        if fact is not None and fact["version"]:
            return fact.get("waiting") or {}
        # Never evaluated: a node that does not start ready waits at its first
        # instruction without having said so.
        prog = self.ctx.program(t)
        first = prog[0] if prog else None
        return ({"node": first.other, "state": first.name}
                if first is not None and first.op == WAIT else {})

    def choose_handoff(self) -> None:
        """Pick the woken nodes this commit also locks (step 5): woken because their fact says
        they wait for a state reached here, taken by this worker anyway (``Worker._hand_ok``),
        not in flight elsewhere in this worker, at most a batch."""
        self.may_hand = True
        # A member woken by another member it could not join (a full group) would commit its
        # wait, then be woken through the Space by the other group's commit, listed and claimed
        # again: it keeps its lock and ready tuple instead, and this lane evaluates it next.
        for om in self.members.values():
            for t in [t for t in om.wakes if t in self.members and not self.members[t].pause]:
                tm = self.members[t]
                tm.keep = tm.keep_ready = True
                del om.wakes[t]
        wanted: Dict[str, Member] = {}
        for m in self.members.values():
            for t in m.wakes:
                if t in self.woken_facts and t not in self.members and t not in wanted:
                    wanted[t] = m
        if not wanted:
            return
        for t in self.w.reserve(self.run_id, list(wanted), self.w.batch):
            m = wanted[t]
            m.hand[t] = None
            self.hand_index[t] = self.woken_facts[t][1]

    def _drop_hand(self, m: Member, t: str) -> None:
        del m.hand[t]
        self.hand_index.pop(t, None)
        self.w.unreserve(self.run_id, [t])

    def drop_handoff(self) -> None:
        """Give back every reserved handoff that was not committed."""
        for m in self.members.values():
            for t in list(m.hand):
                self._drop_hand(m, t)


class _MemberSteps:
    """The batch's side of the interpreter (interpreter.py) for member ``m``: waiters in the batch
    queue in ``pending``; a fact not at hand stops ``m`` until read; a full group stops."""

    def __init__(self, batch: Batch, m: Member, pending: List[Member]) -> None:
        self.batch, self.m, self.pending = batch, m, pending

    def room(self) -> Optional[bool]:
        b, m = self.batch, self.m
        if b.gevents.get(id(b._root(m)), 0) >= GROUP_EVENTS:
            # A node with hundreds of relationship instances: commit what it did so far and
            # go on in a later step (its ready tuple stays), so no transaction grows too big.
            m.keep_ready = True
            return False
        return True

    def on_state(self, ins: Instr) -> None:
        b, m = self.batch, self.m
        if imperative.is_marker(ins.name):
            step = cast(str, ins.step)     # a marker's instruction names its step
            b._event(m, "step", step, None, status=imperative.end_status(m.fact, step))
        else:
            b._event(m, "state", ins.name, None)
        m.reached_now.add(ins.name)
        b._woken_by(m, ins.name, self.pending)

    def guard(self, ins: Instr) -> Optional[bool]:
        runs = imperative.guard_runs(ins, lambda i: self.batch._fact_at_hand(self.m, i))
        if runs is None:
            self.m.need_read = True
        return runs

    def call(self, ins: Instr) -> Optional[bool]:
        return self.batch._call(self.m, ins)

    def wait(self, ins: Instr, prog: List[Instr], pc: int) -> Optional[bool]:
        ok = self.batch._satisfied(self.m, ins, prog, pc)
        if ok is None:
            self.m.need_read = True
        return ok
