# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stateless worker.

A worker keeps nothing that another worker could need: everything lives in the Space.  Its loop is
one blocking query on ``q/`` (what is ready, what is locked, which runs went quiet); for each ready
node it can take, a thread of a bounded pool

1. takes the node's lock with the worker's session (a dead worker's session expires and its locks
   vanish with it, so another worker retakes the step);
2. reads the ready tuple, the fact and, for waits, the facts of the other ends;
3. advances the node's program as far as it can (states, operations, satisfied waits);
4. commits in ONE transaction: session check, fact (CAS on what it read), trace events, ready tuples
   for the neighbours that wait on the states just reached, removal of its own ready tuple (CAS:
   a wake-up that arrived meanwhile is kept) and of its lock.

A crash anywhere before step 4 leaves the ready tuple in place: the step is retaken and its
operations run again (at least once).  After step 4 nothing is left to do.  See
docs/architecture.md.
"""
from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Set, Tuple

from . import catalog, deployments, keys
from .errors import SpaceDataError, SpaceError, WfError
from .executor import Executor, OperationCall, RecordingExecutor
from .facts import new_fact, reached, validate_fact
from .rules import CALL, RCALL, STATE, WAIT, Instr, RuleSet
from .runs import finalize_run, read_run
from .space.base import (Space, op_check_session, op_cas, op_delete, op_delete_cas, op_set)

log = logging.getLogger("wfengine.worker")

# Fixed operations of a commit: check_session, cas fact, trace, delete_cas ready, delete lock.
_COMMIT_FIXED_OPS = 5
OUTBOX_CHUNK = 5000


class WorkerInterrupt(Exception):
    """Raised by a signal handler to leave a blocking query at once (graceful stop)."""


class RunContext:
    """What a worker caches about a run: immutable once the run started."""

    def __init__(self, space: Space, run_id: str):
        rec = read_run(space, run_id)
        self.run_id = run_id
        self.record = rec
        self.workflow = rec["workflow"]
        self.model = rec["model"]
        self.instance = rec["instance"]
        self.generation = rec["generation"]
        rules = catalog.read_rules(space, rec["model"], rec["model_digest"], rec["workflow"])
        if rules is None:
            raise SpaceDataError("run %s: rules of workflow %s are missing" % (run_id, rec["workflow"]))
        self.rules = RuleSet(rec["workflow"], rules)
        self._space = space
        self._nodes: Dict[str, Dict[str, Any]] = {}
        self._programs: Dict[str, List[Instr]] = {}
        self._lock = threading.Lock()

    def node(self, node_id: str) -> Dict[str, Any]:
        with self._lock:
            n = self._nodes.get(node_id)
        if n is None:
            n = deployments.read_node(self._space, self.model, self.instance, self.generation, node_id)
            with self._lock:
                self._nodes[node_id] = n
        return n

    def program(self, node_id: str) -> List[Instr]:
        with self._lock:
            p = self._programs.get(node_id)
        if p is None:
            p = self.rules.program(self.node(node_id))
            with self._lock:
                self._programs[node_id] = p
        return p


class Worker:
    """A long-lived worker: ``serve()`` until ``stop()``."""

    def __init__(self, space: Space, worker_id: Optional[str] = None, threads: int = 8,
                 ttl: float = 15.0, executor: Optional[Executor] = None, poll: float = 30.0):
        self.space = space
        self.id = worker_id or "%s-%d-%s" % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:6])
        self.threads = max(1, int(threads))
        self.ttl = ttl
        self.poll = poll
        self.executor = executor or RecordingExecutor()
        self.session: Optional[str] = None
        self._stop = threading.Event()
        self._inflight: Set[Tuple[str, str]] = set()
        self._inflight_lock = threading.Condition()
        self._contexts: Dict[str, RunContext] = {}
        self._ctx_lock = threading.Lock()
        self.stats = {"taken": 0, "commits": 0, "conflicts": 0, "lost": 0, "operations": 0}

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _new_session(self) -> None:
        self.session = self.space.session_create("wf-worker-%s" % self.id, self.ttl, behavior="delete")

    def _renew_loop(self) -> None:
        period = max(0.2, self.ttl / 3.0)
        while not self._stop.wait(period):
            try:
                if not self.space.session_renew(self.session):
                    log.warning("worker %s: session expired; its locks are gone, opening a new one",
                                self.id)
                    self._new_session()
            except WfError as exc:
                log.warning("worker %s: session renew failed (%s); retrying", self.id, exc)

    def serve(self) -> None:
        """Run until ``stop()``: pick up what is pending now, then follow the blocking query."""
        self._new_session()
        renewer = threading.Thread(target=self._renew_loop, name="renew-%s" % self.id, daemon=True)
        renewer.start()
        pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="wf-%s" % self.id)
        try:
            self._loop(pool)
        except WorkerInterrupt:
            pass
        finally:
            self._stop.set()
            pool.shutdown(wait=True)
            try:
                if self.session:
                    self.space.session_destroy(self.session)
            except WfError:
                pass

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        index = 0
        backoff = 0.05
        while not self._stop.is_set():
            try:
                index, qkeys = self.space.wait(keys.QUEUE, index, self.poll if index else 0)
                backoff = 0.05
            except SpaceError as exc:
                log.warning("worker %s: %s; retrying", self.id, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
                index = 0
                continue
            if self._stop.is_set():
                break
            if self._dispatch(qkeys, pool):
                # Work is left that the pool could not take: wait for a free thread, re-list.
                with self._inflight_lock:
                    while len(self._inflight) >= self.threads and not self._stop.is_set():
                        self._inflight_lock.wait(1.0)
                index = 0

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, qkeys: List[str], pool: ThreadPoolExecutor) -> bool:
        groups: Dict[str, Dict[str, Any]] = {}
        for k in qkeys:
            parsed = keys.parse_queue_key(k)
            if parsed is None:
                continue
            run, kind, name = parsed
            g = groups.setdefault(run, {"run": False, "r": [], "l": set(), "o": []})
            if kind == "run":
                g["run"] = True
            elif kind in ("r", "o"):
                g[kind].append(name)
            elif kind == "l":
                g["l"].add(name)
        left = False
        for run, g in groups.items():
            if not g["run"]:
                continue
            if not g["r"] and not g["o"] and not g["l"]:
                self._submit(pool, (run, "~finalize"), self._finalize, run)
                continue
            for ident in g["o"]:
                if ("~o-" + ident) not in g["l"]:
                    self._submit(pool, (run, "~o-" + ident), self._fan_out, run, ident)
            cands = [n for n in g["r"] if n not in g["l"]]
            random.shuffle(cands)
            for n in cands:
                if not self._submit(pool, (run, n), self._take, run, n):
                    left = True
                    break
        return left

    def _submit(self, pool: ThreadPoolExecutor, token: Tuple[str, str], fn, *args) -> bool:
        with self._inflight_lock:
            if token in self._inflight:
                return True
            if len(self._inflight) >= self.threads:
                return False
            self._inflight.add(token)
        pool.submit(self._guard, token, fn, *args)
        return True

    def _guard(self, token: Tuple[str, str], fn, *args) -> None:
        try:
            fn(*args)
        except WfError as exc:
            log.warning("worker %s: %s %s: %s", self.id, fn.__name__, token, exc)
        except Exception:  # a bug must not kill the thread pool; the step stays ready
            log.exception("worker %s: unexpected error on %s", self.id, token)
        finally:
            with self._inflight_lock:
                self._inflight.discard(token)
                self._inflight_lock.notify_all()

    def context(self, run_id: str) -> RunContext:
        with self._ctx_lock:
            ctx = self._contexts.get(run_id)
        if ctx is None:
            ctx = RunContext(self.space, run_id)
            with self._ctx_lock:
                if len(self._contexts) > 64:
                    self._contexts.clear()
                self._contexts[run_id] = ctx
        return ctx

    # ------------------------------------------------------------------ steps
    def _finalize(self, run_id: str) -> None:
        finalize_run(self.space, run_id)
        with self._ctx_lock:
            self._contexts.pop(run_id, None)

    def _release(self, lock_key: str) -> None:
        self.space.txn([op_check_session(lock_key, self.session), op_delete(lock_key)])

    def _fan_out(self, run_id: str, ident: str) -> None:
        """Put out the ready tuples of an outbox (idempotent: a retry re-puts the same tuples)."""
        lk = keys.lock(run_id, "~o-" + ident)
        if not self.space.acquire(lk, self.session, {"worker": self.id}):
            return
        try:
            box = self.space.get(keys.outbox(run_id, ident))
            if box is None:
                return
            wake = box.value.get("wake") if isinstance(box.value, dict) else None
            if not isinstance(wake, list) or not all(isinstance(w, str) for w in wake):
                raise SpaceDataError("%s: not an outbox" % box.key)
            self.space.write_chunked(op_set(keys.ready(run_id, w), {}) for w in wake)
            self.space.txn([op_delete_cas(box.key, box.index)])
        finally:
            self._release(lk)

    def _take(self, run_id: str, node_id: str) -> None:
        lk = keys.lock(run_id, node_id)
        session = self.session
        if not self.space.acquire(lk, session, {"worker": self.id}):
            return
        committed = False
        try:
            ready = self.space.get(keys.ready(run_id, node_id))
            if ready is None:
                return
            self.stats["taken"] += 1
            ctx = self.context(run_id)
            committed = self._advance(ctx, node_id, ready.index, lk, session)
        except SpaceDataError as exc:
            committed = self._record_error(run_id, node_id, str(exc), lk, session)
        finally:
            if not committed:
                try:
                    self._release(lk)
                except WfError:
                    pass  # the session's expiry releases it

    def _record_error(self, run_id: str, node_id: str, message: str, lk: str, session: str) -> bool:
        """Bad data in the Space: stop this node (the run ends failed) instead of looping on it."""
        fkey = keys.fact(run_id, node_id)
        e = self.space.get(fkey)
        fact = new_fact(node_id) if e is None else dict(e.value) if isinstance(e.value, dict) else new_fact(node_id)
        fact.setdefault("version", 0)
        fact["error"] = {"message": message, "worker": self.id}
        fact["version"] = int(fact.get("version") or 0) + 1
        res = self.space.txn([op_check_session(lk, session), op_cas(fkey, fact, e.index if e else 0),
                              op_delete(keys.ready(run_id, node_id)), op_delete(lk)])
        return res.ok

    def _advance(self, ctx: RunContext, node_id: str, ready_index: int, lk: str, session: str) -> bool:
        fkey = keys.fact(ctx.run_id, node_id)
        fe = self.space.get(fkey)
        fact = new_fact(node_id) if fe is None else validate_fact(fkey, fe.value)
        fact_index = fe.index if fe is not None else 0
        if fact["done"] or fact.get("error"):
            return self._commit(ctx, node_id, fact, fact_index, [], [], ready_index, lk, session,
                                write_fact=False)
        node = ctx.node(node_id)
        prog = ctx.program(node_id)
        pc = fact["pc"]
        events: List[Dict[str, Any]] = []
        reached_now: List[str] = []
        fact["waiting"] = None
        while pc < len(prog):
            ins = prog[pc]
            if ins.op == STATE:
                fact["state"] = ins.name
                fact["reached"].append(ins.name)
                reached_now.append(ins.name)
                events.append(self._event(ctx, node, "state", ins.name, None))
                pc += 1
            elif ins.op in (CALL, RCALL):
                rel = None
                if ins.op == RCALL:
                    rel = next((r for r in node["out"] + node["in"] if r["id"] == ins.rel), None)
                call = OperationCall(ctx.run_id, ctx.workflow, node, ins.name, rel, ins.side, self.id)
                result = self.executor.run(call)
                self.stats["operations"] += 1
                if not result.ok:
                    fact["error"] = {"operation": ins.name, "exit_code": result.exit_code,
                                     "output": result.output[-2000:], "worker": self.id}
                    events.append(self._event(ctx, node, "operation", ins.name, rel, status="failed"))
                    break
                events.append(self._event(ctx, node, "operation", ins.name, rel))
                pc += 1
            elif ins.op == WAIT:
                okey = keys.fact(ctx.run_id, ins.other)
                oe = self.space.get(okey)
                other = validate_fact(okey, oe.value) if oe is not None else None
                if reached(other, ins.name):
                    pc += 1
                else:
                    fact["waiting"] = {"node": ins.other, "state": ins.name, "relationship": ins.rel}
                    break
            else:
                raise SpaceDataError("unknown instruction %r" % (ins.op,))
        fact["pc"] = pc
        fact["done"] = pc >= len(prog) and not fact.get("error")
        wakes = ctx.rules.wakes(node, reached_now)
        return self._commit(ctx, node_id, fact, fact_index, events, wakes, ready_index, lk, session)

    def _event(self, ctx: RunContext, node: Dict[str, Any], kind: str, name: str,
               rel: Optional[Dict[str, Any]], status: str = "ok") -> Dict[str, Any]:
        ev = {"ts": time.time(), "workflow": ctx.workflow, "node": node["id"], "template": node["template"],
              "kind": kind, "name": name, "worker": self.id,
              "relationship": None if rel is None else {"type": rel["type"], "source": rel["source"],
                                                        "target": rel["target"]}}
        if status != "ok":
            ev["status"] = status
        return ev

    def _commit(self, ctx: RunContext, node_id: str, fact: Dict[str, Any], fact_index: int,
                events: List[Dict[str, Any]], wakes: List[str], ready_index: int, lk: str,
                session: str, write_fact: bool = True) -> bool:
        run_id = ctx.run_id
        ops = [op_check_session(lk, session)]
        if write_fact:
            fact["version"] = fact["version"] + 1
            fact["updated"] = time.time()
            ops.append(op_cas(keys.fact(run_id, node_id), fact, fact_index))
            if events:
                ops.append(op_set(keys.trace(run_id, node_id, fact["version"]), events))
        room = self.space.max_txn_ops - _COMMIT_FIXED_OPS
        if len(wakes) <= room:
            ops.extend(op_set(keys.ready(run_id, w), {}) for w in wakes)
        else:
            for i in range(0, len(wakes), OUTBOX_CHUNK):
                ops.append(op_set(keys.outbox(run_id, "%s-%d-%d" % (node_id, fact["version"], i)),
                                  {"wake": wakes[i:i + OUTBOX_CHUNK]}))
        tail = [op_delete_cas(keys.ready(run_id, node_id), ready_index), op_delete(lk)]
        res = self.space.txn(ops + tail)
        if not res.ok and res.failed == [keys.ready(run_id, node_id)]:
            # A neighbour woke this node while it was evaluated: keep the ready tuple so that the
            # node is evaluated again with what the neighbour just committed.
            res = self.space.txn(ops + [op_delete(lk)])
        if res.ok:
            self.stats["commits"] += 1
            return True
        self.stats["lost"] += 1
        log.warning("worker %s: commit of %s/%s refused on %s (lock lost?); another worker retakes it",
                    self.id, run_id, node_id, ",".join(res.failed))
        return False


def run_workers(space_factory, count: int, stop: threading.Event, threads: int = 8,
                ttl: float = 15.0, executor: Optional[Executor] = None) -> List[Worker]:
    """Start ``count`` workers in threads of this process (the embedded ``--workers N`` mode);
    they stop when ``stop`` is set.  Each gets its own Space client, as separate hosts would."""
    workers = []
    for i in range(count):
        w = Worker(space_factory(), threads=threads, ttl=ttl, executor=executor, poll=1.0)
        t = threading.Thread(target=w.serve, name="worker-%d" % i, daemon=True)
        workers.append((w, t))
        t.start()

    def stopper() -> None:
        stop.wait()
        for w, _ in workers:
            w.stop()

    threading.Thread(target=stopper, daemon=True).start()
    return [w for w, _ in workers]
