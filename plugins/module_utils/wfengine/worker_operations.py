# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A worker running an operation with side effects: the checkpoint that records the attempt (and
takes the host lock), the fencing checks around the start, retries, and the result's record.

Why a module of its own: this is the at-most-once-per-attempt path (issue 17) and the one write
per operation of issue 20; the batch path (batch.py) never runs such an operation.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple, cast

from . import events, keys
from .attempts import attempt_may_be_delivered
from .errors import WfError
from .facts import operation_error
from .instances import root_of
from .operation.executor import OperationCall, OperationResult
from .space.base import Op, op_check_not_exists, op_delete, op_lock
from .records import NodeInstance, Relationship

if TYPE_CHECKING:
    from .attempts import AttemptWatch
    from .operation.executor import Executor
    from .run_context import RunContext, _Step
    from .space.base import Space

log = logging.getLogger("wfengine.worker")

# What _run_effectful returns when the run was canceled before the operation started.
CANCELED = "canceled"

# What _served_elsewhere returns when the operation runs here.
_HERE = object()


def _first_attempt(step: "_Step", call: OperationCall,
                   rel: Optional[Relationship]) -> Tuple[int, Optional[List[Any]]]:
    """The number of the step's first attempt of ``call``, and the trace event of an attempt
    that a worker started and never committed (it died: the trace says so), if any."""
    prev = step.fact.get("inflight")
    if not (prev and prev.get("pc") == step.fact["pc"]):
        return 1, None
    interrupted = events.event(call.node, "operation", call.operation, rel,
                               status="interrupted", worker=prev.get("worker"),
                               attempt=prev.get("attempt"))
    step.events.append(interrupted)
    return int(prev.get("attempt", 0)) + 1, interrupted


def _not_started(step: "_Step", inflight: Optional[Dict[str, Any]],
                 interrupted: Optional[List[Any]]) -> None:
    """The run was canceled before the operation started: the node stays as it was (a resume
    says "interrupted")."""
    step.fact["inflight"] = inflight
    if interrupted is not None and interrupted in step.events:
        step.events.remove(interrupted)


def _last_attempt(result: Any, attempt: int, max_retries: int) -> bool:
    """Whether no attempt follows this one (a canceled one is not retried)."""
    canceled = bool((getattr(result, "details", None) or {}).get("canceled"))
    return bool(result.ok or attempt > max_retries or canceled)


class Operations:
    """Mixin of Worker.  Uses ``executor``, ``id``, ``boot``, ``ttl``, ``attempts``, ``space``,
    ``stats``, ``_stop``, ``_handing_back``,
    ``session_lost`` (Sessions), ``_commit`` (Commits), the host locks (HostLocks) and
    ``_servers``."""

    id: str
    boot: str
    ttl: float
    attempts: AttemptWatch
    executor: Executor
    space: Space
    stats: Dict[str, int]
    _stop: threading.Event
    _handing_back: bool
    _ctx_lock: threading.Lock
    _host_sessions: Dict[str, str]

    if TYPE_CHECKING:  # pragma: no cover (the Worker's other parts)
        def _count(self, name: str, n: int = 1) -> None:
            ...

        def session_lost(self, session: Optional[str]) -> bool:
            ...

        def _commit(self, step: _Step, write_fact: bool = True, final: bool = True,
                    checks: Optional[List[Op]] = None, host_ops: Optional[List[Op]] = None,
                    expected: Optional[Set[str]] = None) -> bool:
            ...

        def _servers(self, ctx: RunContext, node_id: str) -> Optional[Set[str]]:
            ...

        def _host_key(self, ctx: RunContext, node: NodeInstance) -> Optional[str]:
            ...

        def _local_host_lock(self, hk: str) -> Any:
            ...

        def _host_lock(self, step: _Step, node: NodeInstance, hk: str) -> Any:
            ...

        def _host_kept(self, hk: Optional[str]) -> bool:
            ...

        def _host_released(self, hk: Optional[str], kept: bool = False) -> None:
            ...

        def _drop_host(self, step: _Step) -> None:
            ...

        def _release_later(self, key: str, session: Optional[str], local: Any) -> None:
            ...

    def _run_effectful(self, step: "_Step", node: NodeInstance, call: OperationCall,
                       rel: Optional[Relationship]) -> Any:
        """Record the attempt, run the operation (serialized per host), retry as configured.
        Returns True/False for success, None if the node's lock was lost meanwhile, CANCELED if
        the run was canceled before it started (the node as it was, for a resume)."""
        fact, ctx = step.fact, step.ctx
        elsewhere = self._served_elsewhere(step, node, call, rel)
        if elsewhere is not _HERE:
            return elsewhere
        prev = fact.get("inflight")
        if self._left_to_its_worker(step, prev):
            return self._give_up(step)
        attempt, interrupted = _first_attempt(step, call, rel)
        first = attempt
        max_retries, interval = self.executor.retry_policy(call)
        max_retries = max(max_retries, int(ctx.record.get("max_retries") or 0))
        hk = self._host_key(ctx, call.node)      # the end the operation runs for
        while True:
            # Fencing, 1: a step whose session was lost (this worker was paused past its TTL, or
            # cut from the Space) starts nothing; the Space checks it again below.
            if self.session_lost(step.session) or self._stop.is_set():
                return self._give_up(step)
            fact["inflight"] = {"pc": fact["pc"], "operation": call.operation, "attempt": attempt,
                                "worker": self.id, "boot": self.boot, "started": time.time()}
            got = self._checkpoint(step, call.node, hk)
            if got is not True:
                if got is CANCELED:
                    _not_started(step, prev if attempt == first else None,
                                 interrupted if attempt == first else None)
                return got
            call.attempt = attempt
            # Fencing, 2: the checkpoint (and the host lock, in the same transaction or just
            # after it) checked that the node's lock is still held by the step's session; the
            # local view is looked at once more right before the start.  What a stale worker
            # still starts after that (it was paused between the check and the start) is
            # recorded as stale when its commit is refused.
            if self.session_lost(step.session):
                log.warning("worker %s: %s/%s: the node is no longer this worker's; %s not started",
                            self.id, ctx.run_id, step.node_id, call.operation)
                return None
            # The host lock stays held after the operation: the step's next commit releases it
            # (or keeps it for its next operation on the same host), saving two writes; a step of
            # this worker waiting for the host gets it at once, before this step commits.
            result = self.executor.run(call)
            self.stats["operations"] += 1
            self._hand_host_over(step)
            if self._handing_back and (result.details or {}).get("canceled"):
                # Stopping: killed before its end and handed back; the attempt stays recorded in
                # the fact, marked so (the next worker says it was interrupted, and runs it
                # again at once: attempts.py).
                self._mark_handed_back(step)
                return None
            fact["inflight"] = None
            step.pending.append(events.event(call.node, "operation", call.operation, rel,
                                             status="stale", attempt=attempt, worker=self.id))
            last = _last_attempt(result, attempt, max_retries)
            ok = self._record_result(step, node, call, result, rel, recorded=True, final_attempt=last)
            if ok or last:
                return ok
            attempt += 1
            if interval > 0:
                self._drop_host(step)     # the host's other operations go on meanwhile
                if self._stop.wait(interval):
                    return None

    def _left_to_its_worker(self, step: "_Step", prev: Optional[Dict[str, Any]]) -> bool:
        """Whether the attempt in flight on the node (``prev``, same instruction) is another
        live worker's, which may still commit its result: the node is left to it for a while
        instead of running the operation twice (attempts.py)."""
        run, node_id = step.ctx.run_id, step.node_id
        if not (prev and prev.get("pc") == step.fact["pc"]
                and prev.get("worker") not in (None, self.id) and prev.get("boot")):
            self.attempts.settled(run, node_id)
            return False
        other = str(prev["worker"])
        entry = self.space.get(keys.worker(other))
        registration = None if entry is None else entry.value
        absent = 0.0 if entry is not None else self.attempts.absent_for(other)
        if not attempt_may_be_delivered(prev, self.id, registration, absent, self.ttl / 2.0):
            self.attempts.settled(run, node_id)
            return False
        log.info("worker %s: %s/%s: attempt %s of %s is worker %s's, which may still commit it; "
                 "left to it", self.id, run, node_id, prev.get("attempt"), prev.get("operation"),
                 other)
        self.attempts.defer(run, node_id)
        self._count("left_to_its_worker")
        return True

    def _mark_handed_back(self, step: "_Step") -> None:
        """Say in the fact that this stopping worker handed the attempt back (nothing of it will
        come): the next worker runs it again without waiting for this one (attempts.py)."""
        inflight = step.fact.get("inflight")
        if not isinstance(inflight, dict):
            return
        inflight["handed_back"] = True
        try:
            self._commit(step, final=False)
        except WfError as exc:
            log.warning("worker %s: %s/%s: the handed back attempt not marked (%s); the next "
                        "worker waits for this one's registration to go", self.id,
                        step.ctx.run_id, step.node_id, exc)

    def _served_elsewhere(self, step: "_Step", node: NodeInstance, call: OperationCall,
                          rel: Optional[Relationship]) -> Any:
        """``_HERE`` when this worker may run ``call``; else what ``_run_effectful`` returns:
        the node given back (its host is served by another worker), or the operation failed
        (run for the other end of a relationship, whose host only another worker reaches)."""
        ctx = step.ctx
        servers = self._servers(ctx, step.node_id)
        if servers is not None and self.id not in servers:
            # Taken before this worker saw that another one serves the host: give it back
            # (nothing was recorded; the ready tuple stays for the serving worker).
            log.info("worker %s: %s belongs to a served host (%s); leaving it", self.id,
                     step.node_id, ", ".join(sorted(servers)))
            return self._give_up(step)
        if call.node["id"] != step.node_id:
            # An operation run for the other end (placement.call_end) whose host a worker of its
            # own serves: this worker reaches it only by its address (SSH); without one it would
            # run on the wrong machine, so it fails instead, saying so.
            others = self._servers(ctx, call.node["id"])
            root = root_of(call.node["id"], ctx.hosting)
            if others is not None and self.id not in others and not ctx.address(root):
                if self.space.get(keys.cancel(ctx.run_id)) is not None:
                    return CANCELED
                result = OperationResult(ok=False, exit_code=-1, output=(
                    "%s runs on host %s, which worker(s) %s serve and which has no address this "
                    "worker (%s, running %s) can reach it at" % (call.operation, root,
                                                                 ", ".join(sorted(others)), self.id,
                                                                 step.node_id)))
                return self._record_result(step, node, call, result, rel, recorded=True)
        return _HERE

    def _hand_host_over(self, step: "_Step") -> None:
        """A step of this worker waits for the host the step holds: it gets it now."""
        if step.host and self._host_kept(step.host):
            self._host_released(step.host, kept=True)
            step.host = None

    def _checkpoint(self, step: "_Step", node: NodeInstance, hk: Optional[str]) -> Any:
        """Commit the attempt before an operation with side effects runs (the results of the
        step's previous operations with it), checking in the same transaction that the run is not
        canceled and, when the host is free, taking its lock (kept if the step holds it already;
        the lock of another host the step held is released, or handed to a waiter).  A host busy
        elsewhere: the checkpoint is committed alone (results are never held back by a wait),
        then the lock is waited for, holding no other.  True when the operation may start,
        CANCELED, or None (the node is no longer this worker's)."""
        cancel_key = keys.cancel(step.ctx.run_id)
        checks = [op_check_not_exists(cancel_key)]
        held = step.host
        leave, kept, leave_ops = self._leaving(held, hk)
        local = self._free_here(hk) if hk is not None and hk != held else None
        if hk is None or hk == held or local is not None:
            # ``local`` is taken only for a host to take (``hk`` set): the casts below say so.
            take = [op_lock(cast(str, hk), {"worker": self.id, "node": node["id"]},
                            step.session)] if local is not None else []
            try:
                ok = self._commit(step, final=False, checks=checks, host_ops=leave_ops + take,
                                  expected={cancel_key} | ({cast(str, hk)} if take else set()))
            except BaseException:
                if local is not None:
                    # The lock may have applied before the answer was lost: released by the
                    # releaser thread, the local lock with it (as _host_lock does).
                    self._release_later(cast(str, hk), step.session, local)
                raise
            if ok:
                self._left(leave, kept)
                step.host = hk
                if take:
                    with self._ctx_lock:
                        self._host_sessions[cast(str, hk)] = step.session
                return True
            if local is not None:
                local.release()
            if cancel_key in step.failed:
                return CANCELED
            if not take or hk not in step.failed:
                return None
            self._count("host_waits")
        # The host is busy (here or in another worker): commit, leave the host the step holds,
        # then wait for this one (the wait holds no other host: no deadlock between steps).
        if not self._commit(step, final=False, checks=checks, host_ops=leave_ops,
                            expected={cancel_key}):
            return CANCELED if cancel_key in step.failed else None
        self._left(leave, kept)
        step.host = None
        got = self._host_lock(step, node, hk)
        if got is False:
            log.warning("worker %s: %s/%s: the node is no longer this worker's; not started",
                        self.id, step.ctx.run_id, step.node_id)
            return None
        step.host = hk
        return True

    def _leaving(self, held: Optional[str],
                 hk: Optional[str]) -> Tuple[Optional[str], bool, List[Op]]:
        """The host lock a step gives up to run on host ``hk`` (the one it holds, if another),
        whether it is handed to a waiter of this worker, and the removal to commit if not."""
        leave = held if held and held != hk else None
        kept = self._host_kept(leave)
        return leave, kept, ([op_delete(leave)] if leave and not kept else [])

    def _left(self, leave: Optional[str], kept: bool) -> None:
        """The checkpoint that gave up host lock ``leave`` (``_leaving``) is committed."""
        if leave:
            self._host_released(leave, kept)

    def _free_here(self, hk: str) -> Any:
        """This worker's local lock of host ``hk``, taken, or None if a step of it holds it."""
        local = self._local_host_lock(hk)
        return local if local.acquire(blocking=False) else None

    def _give_up(self, step: "_Step") -> None:
        """Leave the node without starting anything more; results of operations this step ran
        are committed first (or, the node lost, salvaged or recorded as stale: _commit)."""
        if step.pending:
            fact = step.fact
            fact["inflight"] = None
            self._commit(step, final=False)
        return None

    def _record_result(self, step: "_Step", node: NodeInstance, call: OperationCall, result: Any,
                       rel: Optional[Relationship], recorded: bool,
                       final_attempt: bool = True) -> bool:
        status = "ok" if result.ok else ("failed" if final_attempt else "retry")
        if not result.ok and (getattr(result, "details", None) or {}).get("canceled"):
            status = "canceled"
        extra = {"attempt": call.attempt} if recorded else {}
        if recorded:
            # Attempts that ended, committed with their results: what progress reports count.
            step.fact["operations"] = int(step.fact.get("operations") or 0) + 1
        # The event and the log name the node the operation ran for: the other end of the
        # relationship for an operation woven into this node's program (placement.call_end).
        ev = events.event(call.node, "operation", call.operation, rel, status=status, **extra)
        if recorded:
            step.logs.append({"node": call.node["id"], "operation": call.operation, "attempt": call.attempt,
                              "status": status, "exit_code": result.exit_code,
                              "duration": round(result.duration, 6), "worker": self.id,
                              "relationship": None if rel is None else rel["id"],
                              "output": result.output[-4096:], "ts": time.time(),
                              "log_file": (result.details or {}).get("log_file"),
                              "host": (result.details or {}).get("host"),
                              "address": (result.details or {}).get("address")})
        step.events.append(ev)
        attrs = getattr(result, "attributes", None)
        if attrs:
            if call.node["id"] == node["id"]:
                step.attributes.update(attrs)
            else:
                # An operation woven into this node's program for the other end of a
                # relationship (placement.operation_side): its outputs are that end's attributes.
                step.other_attributes.setdefault(call.node["id"], {}).update(attrs)
        if not result.ok and final_attempt:
            step.fact["error"] = operation_error(call.operation, result, self.id, call.attempt, rel)
            if status == "canceled":
                step.fact["error"]["canceled"] = True
        return cast(bool, result.ok)
