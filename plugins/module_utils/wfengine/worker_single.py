# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The single-node path: a node stopped before an operation with side effects goes on alone.

Why a file of its own: it is the worker's other way of advancing a node (batch.py is the
first), with its own reads and its own commit per operation (worker_operations.py and
worker_commits.py): ``SingleNode._advance`` runs the node's program from its pc, records and runs
its operations with side effects, and commits the outcome with its ready tuple and lock in one
transaction (see worker.py).
"""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple, cast

from . import events, imperative, keys
from .errors import SpaceDataError, WfError, WorkerInterrupt
from .facts import new_fact, passes, remaining_states, validate_fact
from .interpreter import run_program
from .records import Fact, NodeInstance, Relationship, salvage_fact
from .operation.executor import OperationCall
from .placement import call_end
from .rules import RCALL, STATE, WAIT, Instr
from .space.base import op_cas, op_check_session, op_delete, op_get
from .worker_operations import CANCELED

if TYPE_CHECKING:  # pragma: no cover
    from .attempts import AttemptWatch
    from .operation.executor import Executor
    from .run_context import _Step
    from .space.base import Op, Space

log = logging.getLogger("wfengine.worker")

EVENTS_PER_COMMIT = 200


class SingleNode:
    """Mixin of Worker.  Uses ``space``, ``id``, ``boot``, ``attempts``, ``executor``, ``stats``,
    ``_stop``, the operations (Operations: ``_run_effectful``, ``_record_result``), the commits
    (Commits: ``_commit``, ``_give_up``), host locks (HostLocks: ``_drop_host``) and
    ``_release_quietly``."""

    id: str
    boot: str
    attempts: AttemptWatch
    stats: Dict[str, int]
    executor: Executor
    space: Space
    _stop: threading.Event

    if TYPE_CHECKING:  # pragma: no cover (the Worker's other parts)
        def _commit(self, step: _Step, write_fact: bool = True, final: bool = True,
                    checks: Optional[List[Op]] = None, host_ops: Optional[List[Op]] = None,
                    expected: Optional[Set[str]] = None) -> bool:
            ...

        def _give_up(self, step: _Step) -> None:
            ...

        def _drop_host(self, step: _Step) -> None:
            ...

        def _record_result(self, step: _Step, node: NodeInstance, call: OperationCall,
                           result: Any, rel: Optional[Relationship], recorded: bool,
                           final_attempt: bool = True) -> bool:
            ...

        def _run_effectful(self, step: _Step, node: NodeInstance, call: OperationCall,
                           rel: Optional[Relationship]) -> Any:
            ...

        def _release_quietly(self, lock_key: str, session: Optional[str] = None) -> None:
            ...

    def _continue(self, step: "_Step") -> None:
        committed = False
        try:
            committed = self._advance(step)
        except WorkerInterrupt:
            pass   # stopping while it waited for its host: the ready tuple stays
        except SpaceDataError as exc:
            committed = self._record_error(step.ctx.run_id, step.node_id, str(exc), step.lock,
                                           step.session)
        except WfError:
            # Results of operations this step ran are not lost with it (a read after the
            # operation failed, e.g. an outage longer than the client's retries): committed, or
            # kept in the journal and salvaged, as when a step gives its node up; else the node
            # would be retaken and the operation run again.
            if step.pending and not self._stop.is_set():
                try:
                    self._give_up(step)
                except WfError as exc:
                    log.warning("worker %s: %s/%s: result not committed (%s); kept in the journal",
                                self.id, step.ctx.run_id, step.node_id, exc)
            raise
        finally:
            try:
                if step.host:
                    self._drop_host(step)
            finally:
                if not committed:
                    self._release_quietly(step.lock, step.session)
                    inflight = step.fact.get("inflight") if isinstance(step.fact, dict) else None
                    if isinstance(inflight, dict) and inflight.get("boot") == self.boot:
                        # Its attempt may stay recorded with nothing run: the others leave
                        # the node to this worker while it lives (attempts.py), so it takes
                        # the node again itself, whoever owns it.
                        self.attempts.abandon(step.ctx.run_id, step.node_id)

    def _record_error(self, run_id: str, node_id: str, message: str, lk: str, session: str) -> bool:
        """Bad data in the Space: stop this node (the run ends failed) instead of looping on it."""
        fkey = keys.fact(run_id, node_id)
        e = self.space.get(fkey)
        fact = salvage_fact(node_id, e.value if e is not None else None)
        fact["error"] = {"message": message, "worker": self.id}
        fact["version"] = int(fact.get("version") or 0) + 1
        res = self.space.txn([op_check_session(lk, session),
                              op_cas(fkey, fact, e.index if e else 0),
                              op_delete(keys.ready(run_id, node_id)), op_delete(lk)])
        return res.ok

    def _advance(self, step: "_Step") -> bool:
        ctx, node_id = step.ctx, step.node_id
        fe = step.fact_entry
        before = self._load_fact(step)
        fact = step.fact
        if fact["done"] or fact.get("error"):
            return self._commit(step, write_fact=False)
        prog = ctx.program(node_id)
        if not run_program(fact, prog, _NodeSteps(self, step, ctx.node(node_id), prog)):
            return False  # lock lost: another worker owns this node now
        moved = before != (fact["pc"], fact.get("waiting"), fact.get("epoch"),
                           bool(fact.get("error")))
        # Woken but still waiting for the same thing: only the ready tuple and the lock go.
        return self._commit(step, write_fact=moved or fe is None or bool(step.events))

    def _load_fact(self, step: "_Step") -> Tuple[Any, ...]:
        """The step's fact (``step.fact``), as its ready tuple's epoch makes it (a resumed run
        retries a failed step); returns what says whether it moved since."""
        fe = step.fact_entry
        fkey = keys.fact(step.ctx.run_id, step.node_id)
        fact = new_fact(step.node_id) if fe is None else validate_fact(fkey, fe.value)
        step.fact, step.fact_index = fact, (fe.index if fe is not None else 0)
        before = (fact["pc"], fact.get("waiting"), fact.get("epoch"), bool(fact.get("error")))
        epoch = (int((step.ready.value or {}).get("epoch", 0))
                 if isinstance(step.ready.value, dict) else 0)
        if fact.get("error") and epoch > int(fact.get("epoch") or 0):
            # Resumed run: retry the failed step; what succeeded before is not run again.
            fact["error"] = None
            fact["state"] = fact["reached"][-1] if fact["reached"] else None
            fact["inflight"] = None
        fact["epoch"] = max(epoch, int(fact.get("epoch") or 0))
        return before

    def _call(self, step: "_Step", node: NodeInstance, ins: Instr,
              prog: List[Instr]) -> Optional[bool]:
        """An operation of the step's node, run (an operation with side effects through
        ``_run_effectful``): True to go on with the program, False where the node stops (a
        failure outside a step, or the run canceled: the ready tuple stays for a resume), None
        when the node's lock is lost."""
        ctx, fact = step.ctx, step.fact
        rel, cnode, cside = None, node, ins.side
        if ins.op == RCALL:
            rel = ctx.relationship(step.node_id, cast(str, ins.rel))    # an RCALL names it
            cnode, cside = call_end(ins.name, rel, ins.side, node, ctx.node)
        call = OperationCall(ctx.run_id, ctx.workflow, cnode, ins.name, rel, cside, self.id,
                             operation_host=ins.host)
        if not self.executor.effectful(call):
            result = self.executor.run(call)
            self.stats["operations"] += 1
            ok = self._record_result(step, node, call, result, rel, recorded=False)
        else:
            ok = self._run_effectful(step, node, call, rel)
            if ok is None:
                return None
            if ok is CANCELED:
                return False  # canceled: schedule nothing new
        if not ok:
            fact["state"] = "error"
            step.events.append(events.event(node, "state", "error", None))
            if ins.step is not None:
                # on to the step's end, then on_failure steps
                imperative.fail_step(fact, prog)
                return True
            if ctx.past_failures:
                # Those that wait for this node go on (facts.passes): wake them.
                step.reached_now.extend(remaining_states(prog, fact["pc"]))
            return False
        fact["pc"] += 1
        return True

    def _guard_facts(self, step: "_Step", ins: Instr) -> Dict[str, Fact]:
        """Facts of the predecessors an imperative GUARD looks at: those its waits just read, the
        others (after a resume at the GUARD) read now.  A fact that does not exist reads as a node
        that reached nothing."""
        cache = step.awaited
        wanted = [i for dummy, dummy2, ids in ins.args or () for i in ids
                  if i != step.node_id and i not in cache]
        self._read_facts(step, list(dict.fromkeys(wanted)))
        return {i: (f if f is not None else new_fact(i)) for i, f in cache.items()}

    def _read_facts(self, step: "_Step", ids: List[str]) -> None:
        """The facts of ``ids`` into the step's cache (None: no fact yet), with the indexes its
        commit checks, in transactions of half the Space's limit (a wait reads many)."""
        size = max(1, self.space.max_txn_ops // 2)
        for k in range(0, len(ids), size):
            part = ids[k:k + size]
            fkeys = [keys.fact(step.ctx.run_id, o) for o in part]
            res = self.space.txn([op_get(fk) for fk in fkeys])
            for o, fk in zip(part, fkeys):
                e = res.entries.get(fk)
                step.awaited[o] = validate_fact(fk, e.value) if e is not None else None
                step.awaited_index[o] = e.index if e is not None else 0

    def _awaited(self, step: "_Step", prog: List[Instr], pc: int) -> Dict[str, Optional[Fact]]:
        """Facts of the other ends of the waits from ``pc`` to the next state (e.g. one wait per
        ConnectsTo source after `configuring`), read in one transaction: a node with a fan-in of
        N evaluates its waits in one round trip, not N."""
        cache = step.awaited
        if prog[pc].other in cache:
            return cache
        wanted: List[str] = []
        for ins in prog[pc:]:
            if ins.op == STATE:
                break   # waits past the next state are read when the node gets there
            if ins.op == WAIT and ins.other not in cache and ins.other not in wanted:
                wanted.append(cast(str, ins.other))     # a WAIT names the other end
        self._read_facts(step, wanted[:self.space.max_txn_ops // 2])
        return cache


class _NodeSteps:
    """The single-node side of the interpreter (interpreter.py): facts are read as needed, an
    operation runs here (with its checkpoint if it has side effects), and the node commits what
    it did every EVENTS_PER_COMMIT events (a node with hundreds of relationship instances keeps
    each value and each transaction well under Consul's limits)."""

    def __init__(self, worker: SingleNode, step: "_Step", node: NodeInstance,
                 prog: List[Instr]) -> None:
        self.worker, self.step, self.node, self.prog = worker, step, node, prog

    def room(self) -> Optional[bool]:
        if len(self.step.events) >= EVENTS_PER_COMMIT:
            if not self.worker._commit(self.step, final=False):
                return None
        return True

    def on_state(self, ins: Instr) -> None:
        step = self.step
        if imperative.is_marker(ins.name):
            name = cast(str, ins.step)    # a marker's instruction names its step
            step.events.append(events.event(self.node, "step", name, None,
                                            status=imperative.end_status(step.fact, name)))
        else:
            step.events.append(events.event(self.node, "state", ins.name, None))
        step.reached_now.append(ins.name)

    def guard(self, ins: Instr) -> Optional[bool]:
        step = self.step
        got = self.worker._guard_facts(step, ins)
        return bool(imperative.guard_runs(
            ins, lambda i: step.fact if i == step.node_id else got.get(i)))

    def call(self, ins: Instr) -> Optional[bool]:
        return self.worker._call(self.step, self.node, ins, self.prog)

    def wait(self, ins: Instr, prog: List[Instr], pc: int) -> Optional[bool]:
        step = self.step
        other = self.worker._awaited(step, prog, pc).get(cast(str, ins.other))  # a WAIT names it
        return passes(other, ins.name, step.ctx.past_failures)
