# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stateless worker.

A worker keeps nothing that another worker could need: everything lives in the Space.  Its loop is
one blocking query on ``q/`` (what is ready, what is locked, which runs went quiet, which workers
are alive); the ready nodes it owns (zones of related root hosts, locality.py) go by batches to a
bounded pool of threads, each of which claims, advances and commits its batch (batch.py).

A node that stops before an operation with side effects goes on alone on the single-node path
below (``_advance``): it commits the attempt (checkpoint), runs the operation, and commits the
outcome with its own ready tuple and lock, in ONE transaction: session check, fact (CAS on what it
read), trace events, ready tuples for the neighbours that may wait on the states just reached,
removal of its own ready tuple (CAS: a wake-up that arrived meanwhile is kept) and of its lock.

A crash anywhere before a commit leaves the ready tuple in place: the step is retaken and its
operations run again (at least once).  See docs/architecture.md.

Fencing (issue 17): an operation starts only while the step's session provably holds the node (the
host lock is taken in one transaction with that check; a session known lost starts nothing).  A
result that cannot be committed is kept (journal.py) and sent again; once the node's lock is lost,
it is committed with a CAS on the fact alone, or recorded in the trace as ``stale``.

The Worker is assembled from parts that each hold one concern: the loop and who takes which
ready node (worker_dispatch.py), the session and its renewal, fencing's clock and the audit
after outages (worker_sessions.py), host locks (worker_hosts.py), operations with side effects
(worker_operations.py) and commits (worker_commits.py); what it knows of a run and of a step is
in run_context.py, batches of nodes in batch.py.  This module keeps its lifecycle, task tables
and the single-node path.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from . import events, keys
from .batch import Batch, fact_entry
from .errors import (PermissionDenied, SpaceDataError, SpaceError, SpaceUnavailable, TxnTooLarge, WfError,
                     WorkerInterrupt)
from .operation.executor import Executor, OperationCall
from .journal import Journal
from .facts import new_fact, passes, remaining_states, validate_fact
from .placement import call_end
from . import imperative
from .rules import CALL, RCALL, STATE, WAIT, Instr
from .run_context import RunContext, _Step
from .runs import finalize_run
from .space.base import Space, op_cas, op_check_session, op_delete, op_delete_cas, op_get, op_set
from .worker_commits import Commits
from .worker_dispatch import BUSY, INFLIGHT, SUBMITTED, Dispatch
from .worker_hosts import HostLocks
from .worker_operations import CANCELED, Operations
from .worker_sessions import Sessions

log = logging.getLogger("wfengine.worker")

EVENTS_PER_COMMIT = 200
# SIGTERM: operations in flight get this long to finish, then are killed and handed back.
STOP_GRACE = 1.2


class _DenialWatch:
    """The worker's view of its Space: an ACL refusal anywhere (a step, a renewal, a finalizer,
    the executor's log writes) stops the worker, whatever the caller then does with the error.
    Retrying a write the token cannot make only spins: issue 17 measured about 5,000 Raft
    writes in 40 s from a worker without write on ``facts/``.  A request the Space left
    unanswered past the client's retries is reported too (``on_unanswered``): Consul may still
    apply it once it is back (Sessions._audit_locks)."""

    def __init__(self, space: Space, on_denied, on_unanswered=None) -> None:
        self._space = space
        self._on_denied = on_denied
        self._on_unanswered = on_unanswered

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._space, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except PermissionDenied as exc:
                self._on_denied(exc)
                raise
            except SpaceUnavailable:
                if self._on_unanswered is not None:
                    self._on_unanswered()
                raise
        self.__dict__[name] = call      # made once per method: it is on every step's path
        return call


class Worker(Dispatch, Sessions, HostLocks, Operations, Commits):
    """A long-lived worker: ``serve()`` until ``stop()``."""

    def __init__(self, space: Space, worker_id: Optional[str] = None, threads: int = 8,
                 ttl: float = 15.0, executor: Optional[Executor] = None, poll: float = 30.0,
                 log_dir: Optional[str] = None, cache_dir: Optional[str] = None,
                 exec_log: Optional[str] = None, op_timeout: Optional[float] = None,
                 batch: int = 16, steal_after: float = 1.0, lanes: Optional[int] = None,
                 ssh_options: Optional[Any] = None, state_dir: Optional[str] = None,
                 playbook_forkserver: Optional[bool] = None):
        # The first permission denied met (then the worker stops; ``serve`` raises it) and what
        # wakes the thread that runs ``serve`` from its blocking query (cmd_worker: a signal).
        self.fatal: Optional[PermissionDenied] = None
        self.on_fatal: Optional[Any] = None
        # Set when a request went unanswered past the client's retries; once the Space answers
        # again the renewal thread audits this worker's locks for a while (_audit_locks).
        self._unanswered = False
        self._audit_until = 0.0
        self.space = _DenialWatch(space, self._denied, self._note_unanswered)  # type: ignore[assignment]
        space = self.space                                 # type: ignore[assignment]
        self.id = worker_id or "%s-%d-%s" % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:6])
        self.threads = max(1, int(threads))
        self.ttl = ttl
        self.poll = poll
        if executor is None:
            from .operation.resolver import default_executor
            executor = default_executor(space, self.context, log_dir=log_dir, cache_dir=cache_dir,
                                        exec_log=exec_log, timeout=op_timeout, ssh_options=ssh_options,
                                        playbook_forkserver=playbook_forkserver)
        self.executor = executor
        # Hosts this worker serves (``--serves``): their operations run here and nowhere else.
        self.serves: Tuple[str, ...] = tuple(getattr(ssh_options, "serves", ()) or ())
        # Served hosts of every worker, from the last listing: name -> worker ids (placement.py).
        self._served: Dict[str, Set[str]] = {}
        self.session: Optional[str] = None
        # Sessions this worker had and lost (expired): a step claimed with one of them no longer
        # holds its node and starts nothing (fencing, see _run_effectful).
        self._lost: Set[str] = set()
        # When the last successful renewal (or the creation) of the session was SENT (monotonic,
        # which counts the time a SIGSTOP lasted): the session lives at least ``ttl`` after it.
        self._renewed_at = 0.0
        self._registered = False
        # Results of operations with side effects not committed yet (journal.py).
        self.journal = Journal(state_dir)
        self._handing_back = False     # stopping: operations still running are killed, handed back
        self._stop = threading.Event()
        self._inflight: Set[Tuple[str, str]] = set()
        self._busy = 0
        self.batch = max(1, min(int(batch), space.max_txn_ops // 4))   # a claim: 4 ops per node
        self.steal_after = steal_after
        # Batch steps in flight at once (see Space.batch_lanes), on threads of their own: ``threads``
        # bounds the other tasks (operations with side effects, fan-outs, finalizers).
        self.lanes = max(1, int(lanes or space.batch_lanes))
        self._lanes_busy = 0
        self._peers: List[str] = [self.id]
        self._seen: Dict[Tuple[str, str], float] = {}   # ready nodes of other owners: first seen
        # Ready nodes of the last listing that the lane was not free to take (single-lane workers):
        # it goes on with them (and with what its commit handed off) instead of waiting for a
        # listing.
        self._backlog: Dict[str, Dict[str, None]] = {}
        self._canceled: Set[str] = set()     # runs whose listing showed a cancel: no handoff
        self._recheck: Optional[float] = None
        # The last listing gave this worker nothing to do and no zone in any running run: it
        # follows keys.CONTROL only (a run starting or ending, a peer coming or going).
        self._idle = False
        self._inflight_lock = threading.Condition()
        # Facts and ready tuples that commits of this worker's lanes are writing, and checking,
        # right now ((run, node) -> commits): conflicting commits of two lanes go one after the
        # other instead of one of them failing in the Space (batch.py, _commit_txn).
        self._writing: Dict[Tuple[str, str], int] = {}
        self._checking: Dict[Tuple[str, str], int] = {}
        self._sending_cond = threading.Condition()
        self._completions = 0
        self._contexts: Dict[str, RunContext] = {}
        self._ctx_lock = threading.Lock()
        self._host_locks: Dict[str, threading.Lock] = {}
        # Host locks this worker holds in the Space, and with which session; steps of this
        # worker waiting for one: a step that leaves a host with a waiter here hands the Space
        # lock over with the local one (same session) instead of a release and a new lock.
        self._host_sessions: Dict[str, str] = {}
        self._host_waiters: Dict[str, int] = {}
        # Host locks whose release the Space did not take (an outage): released by a thread of
        # their own once it answers, while the step that held them goes on to commit its result
        # (see _release_host).  (key, session, local lock) in order; the thread runs while any.
        self._unreleased: List[Tuple[str, Optional[str], Any]] = []
        self._unreleased_cond = threading.Condition()
        self._releaser: Optional[threading.Thread] = None
        self.stats = {"taken": 0, "commits": 0, "conflicts": 0, "lost": 0, "operations": 0}
        # The thread serving this worker, when run_workers started it (stop_workers joins it).
        self.thread: Optional[threading.Thread] = None

    def _count(self, name: str, n: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + n

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        self._stop.set()

    def _denied(self, exc: PermissionDenied) -> None:
        """A permission this worker's token lacks: stop now (``serve`` raises it), never retry."""
        first = self.fatal is None
        if first:
            self.fatal = exc
            log.error("worker %s: %s; stopping", self.id, exc.line())
        self._stop.set()
        with self._inflight_lock:
            self._inflight_lock.notify_all()
        if first and self.on_fatal is not None:
            self.on_fatal()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def serve(self, wake_address: Optional[Tuple[str, int]] = None) -> None:
        """Run until ``stop()``: pick up what is pending now, then follow the blocking query.

        ``wake_address`` (host, port) also listens for ``POST /wake``, the handler of the Consul
        watch that the wf_worker role installs (the seed's trigger): each call re-lists the queue
        at once.  It is a second trigger, never the only one: the blocking query alone loses
        nothing."""
        self._new_session()
        self._replay_journal()
        renewer = threading.Thread(target=self._renew_loop, name="renew-%s" % self.id, daemon=True)
        renewer.start()
        pool = ThreadPoolExecutor(max_workers=self.threads + self.lanes,
                                  thread_name_prefix="wf-%s" % self.id)
        self._pool = pool
        server = self._wake_server(wake_address, pool) if wake_address else None
        try:
            self._loop(pool)
        except WorkerInterrupt:
            pass
        finally:
            self._stop.set()
            if server is not None:
                server.shutdown()
                server.server_close()
            self._drain(pool)
            closer = getattr(self.executor, "close", None)
            if closer is not None:
                closer()
            try:
                if self.session:
                    self.space.session_destroy(self.session)
            except WfError:
                pass
            self.journal.close()
        if self.fatal is not None:
            raise self.fatal

    def _drain(self, pool: ThreadPoolExecutor) -> None:
        """Stopping (SIGTERM): steps in flight get STOP_GRACE seconds to finish and commit; then
        the operations still running are killed and their nodes handed back (nothing recorded:
        the fact keeps the attempt, the next worker records it as interrupted and runs it again),
        and the session's destruction (serve) deletes the node locks at once."""
        deadline = time.monotonic() + STOP_GRACE
        with self._inflight_lock:
            while self._busy + self._lanes_busy > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._inflight_lock.wait(remaining)
            busy = self._busy + self._lanes_busy
        if busy:
            self._handing_back = True
            cancel = getattr(self.executor, "cancel", None)
            if cancel is not None:
                with self._ctx_lock:
                    runs = list(self._contexts)
                for run in runs:
                    try:
                        cancel(run)
                    except Exception:  # noqa: BLE001 (best effort: the process group may be gone)
                        log.debug("worker %s: cancel of %s failed", self.id, run, exc_info=True)
            log.info("worker %s: stopping; %d task(s) still running handed back", self.id, busy)
            deadline = time.monotonic() + 0.5
            with self._inflight_lock:
                while self._busy + self._lanes_busy > 0 and time.monotonic() < deadline:
                    self._inflight_lock.wait(max(0.01, deadline - time.monotonic()))
        pool.shutdown(wait=False, cancel_futures=True)

    def _wake_server(self, address: Tuple[str, int], pool: ThreadPoolExecutor):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        worker = self

        class Wake(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                if self.path.rstrip("/") != "/wake":
                    self.send_error(404)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(min(length, 1 << 20))  # the watch's payload: not needed
                worker.stats["wakes"] = worker.stats.get("wakes", 0) + 1
                try:
                    worker._dispatch(worker.space.keys(keys.QUEUE), pool)
                except WfError as exc:
                    log.warning("worker %s: wake: %s", worker.id, exc)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(address, Wake)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="wake-%s" % self.id, daemon=True).start()
        return server

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

    def _submit(self, pool: ThreadPoolExecutor, tokens: List[Tuple[str, str]], fn, *args,
                force: bool = False, lane: bool = False) -> str:
        with self._inflight_lock:
            if not force:
                if any(t in self._inflight for t in tokens):
                    return INFLIGHT
                if (self._lanes_busy >= self.lanes) if lane else (self._busy >= self.threads):
                    return BUSY
            self._inflight.update(tokens)
            if lane:
                self._lanes_busy += 1
            else:
                self._busy += 1
        pool.submit(self._guard, tokens, fn, *args, lane=lane)
        return SUBMITTED

    def _guard(self, tokens: List[Tuple[str, str]], fn, *args, lane: bool = False) -> None:
        kept: Set[Tuple[str, str]] = set()
        try:
            kept = fn(*args) or set()
        except WfError as exc:
            log.warning("worker %s: %s %s: %s", self.id, fn.__name__, tokens[:3], exc)
        except Exception:  # a bug must not kill the thread pool; the step stays ready
            log.exception("worker %s: unexpected error on %s", self.id, tokens[:3])
        finally:
            with self._inflight_lock:
                self._inflight.difference_update(t for t in tokens if t not in kept)
                if lane:
                    self._lanes_busy -= 1
                else:
                    self._busy -= 1
                self._completions += 1
                self._inflight_lock.notify_all()

    def context(self, run_id: str) -> RunContext:
        """The run's one RunContext in this worker.  Made under the lock: the lanes that start
        on a new run at once must share it (its fact hints are how a lane learns what the
        others committed; with one context each, they re-read and collided in the Space)."""
        with self._ctx_lock:
            ctx = self._contexts.get(run_id)
            if ctx is None:
                ctx = RunContext(self.space, run_id)
                if len(self._contexts) > 64:
                    self._contexts.clear()
                self._contexts[run_id] = ctx
        return ctx

    # ------------------------------------------------------------------ steps
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

    def _finalize(self, run_id: str) -> None:
        with self._ctx_lock:
            ctx = self._contexts.get(run_id)
        finalize_run(self.space, run_id, None if ctx is None else (ctx.model, ctx.instance))
        with self._ctx_lock:
            self._contexts.pop(run_id, None)

    def _release(self, lock_key: str, session: Optional[str] = None) -> None:
        """Delete a lock that ``session`` (default: the worker's current one) holds.

        Sent again until the Space answers.  A session survives a quorum loss (the new leader
        resets its timer): a lock whose release failed during one would stay held by a live
        session that no task of this worker uses any more, and no worker would ever take the
        node again (the run stayed ``running``, every worker silent).  Gives up (raises) only
        when that cannot happen: the session is known lost (its locks went with it), or the
        worker stops (``serve`` destroys the session, which deletes them)."""
        session = session or self.session
        delay = 0.5
        while True:
            try:
                self.space.txn([op_check_session(lock_key, session or ""), op_delete(lock_key)])
                return
            except (TxnTooLarge, SpaceDataError, PermissionDenied):
                raise
            except SpaceError as exc:
                if self._stop.is_set() or not session or session in self._lost:
                    raise
                self._count("release_retries")
                log.warning("worker %s: cannot release %s (%s); retrying (a lock of a live session "
                            "is never left behind)", self.id, lock_key, exc)
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)

    def _release_quietly(self, lock_key: str, session: Optional[str] = None) -> None:
        """``_release``, when the caller has nothing better to do with its failure (stopping, or
        the session lost: the lock is gone or goes with the session)."""
        try:
            self._release(lock_key, session)
        except WfError as exc:
            log.debug("worker %s: release of %s: %s", self.id, lock_key, exc)

    def _fan_out(self, run_id: str, ident: str) -> None:
        """Put out the ready tuples of an outbox (idempotent: a retry re-puts the same tuples)."""
        lk = keys.lock(run_id, "~o-" + ident)
        session = self.session
        try:
            got = self.space.acquire(lk, session, {"worker": self.id})
        except BaseException:
            self._release_quietly(lk, session)    # it may have applied before its answer was lost
            raise
        if not got:
            return
        try:
            box = self.space.get(keys.outbox(run_id, ident))
            if box is None:
                return
            wake = box.value.get("wake") if isinstance(box.value, dict) else None
            if not isinstance(wake, list) or not all(isinstance(w, str) for w in wake):
                raise SpaceDataError("%s: not an outbox" % box.key)
            tuple_ = {"epoch": int(box.value.get("epoch") or 0)} if box.value.get("epoch") else {}
            self.space.write_chunked(op_set(keys.ready(run_id, w), tuple_) for w in wake)
            self.space.txn([op_delete_cas(box.key, box.index)])
        finally:
            self._release_quietly(lk, session)

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
                b = Batch(self, ctx, ids)
                if handed and len(handed) == len(ids):
                    b.adopt(handed)
                else:
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
                if not b.members and not b.released:
                    self._count("empty_claims")
                if b.members:
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
                if b.members or b.released:
                    done, dummy = b.commit()
                    ended = bool(done) and all(m.fact.get("done") for m in done)
                    for m in done:
                        if m.pause:
                            step = _Step(ctx, m.id, m.ready, m.lock, b.session)
                            step.fact_entry = fact_entry(run_id, m)
                            paused.add(m.id)
                            self._submit(self._pool, [(run_id, m.id)], self._continue, step,
                                         force=True)
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
                more = self._from_backlog(run_id, self.batch - len(handed)) if self.lanes == 1 else []
                ids = list(handed) + more
            if (ended and not ids and ctx.small and not self._stop.is_set()
                    and run_id not in self._canceled and self._finalizer(run_id)):
                self._end_now(run_id)
        finally:
            self._unreserve(run_id, [n for n in ids if n not in paused])
        return {(run_id, n) for n in node_ids}

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

    def _record_error(self, run_id: str, node_id: str, message: str, lk: str, session: str) -> bool:
        """Bad data in the Space: stop this node (the run ends failed) instead of looping on it."""
        fkey = keys.fact(run_id, node_id)
        e = self.space.get(fkey)
        fact = new_fact(node_id)
        if e is not None and isinstance(e.value, dict):
            fact.update({k: v for k, v in e.value.items() if k in fact})
        fact["error"] = {"message": message, "worker": self.id}
        fact["version"] = int(fact.get("version") or 0) + 1
        res = self.space.txn([op_check_session(lk, session), op_cas(fkey, fact, e.index if e else 0),
                              op_delete(keys.ready(run_id, node_id)), op_delete(lk)])
        return res.ok

    def _stop_operations(self, run_id: str) -> None:
        """``wfctl cancel``: kill the run's operations running here (the executor's process
        groups, SIGTERM then SIGKILL after its grace), on a thread of its own: the grace must not
        hold up the listing.  Their results say canceled; the nodes can be resumed."""
        stop = getattr(self.executor, "cancel", None)
        if stop is None:
            return

        def kill() -> None:
            try:
                n = stop(run_id)
                if n:
                    log.info("worker %s: run %s canceled, %d operation(s) stopped", self.id, run_id, n)
            except Exception:  # noqa: BLE001 (a kill that failed leaves the operation to end)
                log.exception("worker %s: stopping the operations of run %s", self.id, run_id)
        threading.Thread(target=kill, name="cancel-%s" % run_id, daemon=True).start()

    def _advance(self, step: "_Step") -> bool:
        ctx, node_id = step.ctx, step.node_id
        fkey = keys.fact(ctx.run_id, node_id)
        fe = step.fact_entry
        fact = new_fact(node_id) if fe is None else validate_fact(fkey, fe.value)
        step.fact, step.fact_index = fact, (fe.index if fe is not None else 0)
        before = (fact["pc"], fact.get("waiting"), fact.get("epoch"), bool(fact.get("error")))
        epoch = int((step.ready.value or {}).get("epoch", 0)) if isinstance(step.ready.value, dict) else 0
        if fact.get("error") and epoch > int(fact.get("epoch") or 0):
            # Resumed run: retry the failed step; what succeeded before is not run again.
            fact["error"] = None
            fact["state"] = fact["reached"][-1] if fact["reached"] else None
            fact["inflight"] = None
        fact["epoch"] = max(epoch, int(fact.get("epoch") or 0))
        if fact["done"] or fact.get("error"):
            return self._commit(step, write_fact=False)
        node = ctx.node(node_id)
        prog = ctx.program(node_id)
        fact["waiting"] = None
        while fact["pc"] < len(prog):
            if len(step.events) >= EVENTS_PER_COMMIT:
                # A node with hundreds of relationship instances: keep each value and each
                # transaction well under Consul's limits by committing as it goes.
                if not self._commit(step, final=False):
                    return False
            ins = prog[fact["pc"]]
            if ins.op == STATE:
                if imperative.is_marker(ins.name):
                    step.events.append(events.event(node, "step", ins.step, None,
                                                    status=imperative.end_status(fact, ins.step)))
                else:
                    fact["state"] = ins.name
                    step.events.append(events.event(node, "state", ins.name, None))
                fact["reached"].append(ins.name)
                step.reached_now.append(ins.name)
                fact["pc"] += 1
            elif ins.op == imperative.GUARD:
                got = self._guard_facts(step, ins)
                if imperative.guard_runs(ins, lambda i: fact if i == node_id else got.get(i)):
                    fact["pc"] += 1
                else:
                    imperative.skip_step(fact, prog)
            elif ins.op in (CALL, RCALL):
                rel, cnode, cside = None, node, ins.side
                if ins.op == RCALL:
                    rel = ctx.relationship(node_id, ins.rel)
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
                        return False  # lock lost: another worker owns this node now
                    if ok is CANCELED:
                        break  # canceled: schedule nothing new; the ready tuple stays for a resume
                if not ok:
                    fact["state"] = "error"
                    step.events.append(events.event(node, "state", "error", None))
                    if ins.step is not None:
                        imperative.fail_step(fact, prog)   # on to the step's end, then on_failure steps
                        continue
                    if ctx.past_failures:
                        # Those that wait for this node go on (facts.passes): wake them.
                        step.reached_now.extend(remaining_states(prog, fact["pc"]))
                    break
                fact["pc"] += 1
            elif ins.op == WAIT:
                other = self._awaited(step, prog, fact["pc"]).get(ins.other)
                if passes(other, ins.name, ctx.past_failures):
                    fact["pc"] += 1
                else:
                    fact["waiting"] = {"node": ins.other, "state": ins.name, "relationship": ins.rel}
                    break
            else:
                raise SpaceDataError("unknown instruction %r" % (ins.op,))
        imperative.finish(fact, prog)
        fact["done"] = fact["pc"] >= len(prog) and not fact.get("error")
        moved = before != (fact["pc"], fact.get("waiting"), fact.get("epoch"), bool(fact.get("error")))
        # Woken but still waiting for the same thing: only the ready tuple and the lock go.
        return self._commit(step, write_fact=moved or fe is None or bool(step.events))

    def _guard_facts(self, step: "_Step", ins: Instr) -> Dict[str, Any]:
        """Facts of the predecessors an imperative GUARD looks at: those its waits just read, the
        others (after a resume at the GUARD) read now.  A fact that does not exist reads as a node
        that reached nothing."""
        cache = step.awaited
        wanted = [i for dummy, dummy2, ids in ins.args or () for i in ids
                  if i != step.node_id and i not in cache]
        wanted = list(dict.fromkeys(wanted))
        for k in range(0, len(wanted), max(1, self.space.max_txn_ops // 2)):
            part = wanted[k:k + max(1, self.space.max_txn_ops // 2)]
            fkeys = [keys.fact(step.ctx.run_id, o) for o in part]
            res = self.space.txn([op_get(fk) for fk in fkeys])
            for o, fk in zip(part, fkeys):
                e = res.entries.get(fk)
                cache[o] = validate_fact(fk, e.value) if e is not None else None
                step.awaited_index[o] = e.index if e is not None else 0
        return {i: (f if f is not None else new_fact(i)) for i, f in cache.items()}

    def _awaited(self, step: "_Step", prog: List[Instr], pc: int) -> Dict[str, Any]:
        """Facts of the other ends of the waits from ``pc`` to the next state (e.g. one wait per
        ConnectsTo source after `configuring`), read in one transaction: a node with a fan-in of
        N evaluates its waits in one round trip, not N."""
        cache = step.awaited
        if prog[pc].other in cache:
            return cache
        wanted = []
        for ins in prog[pc:]:
            if ins.op == STATE:
                break   # waits past the next state are read when the node gets there
            if ins.op == WAIT and ins.other not in cache and ins.other not in wanted:
                wanted.append(ins.other)
        wanted = wanted[:self.space.max_txn_ops // 2]
        fkeys = [keys.fact(step.ctx.run_id, o) for o in wanted]
        res = self.space.txn([op_get(k) for k in fkeys])
        for o, k in zip(wanted, fkeys):
            e = res.entries.get(k)
            cache[o] = validate_fact(k, e.value) if e is not None else None
            step.awaited_index[o] = e.index if e is not None else 0
        return cache


def run_workers(space_factory, count: int, stop: threading.Event, threads: int = 8,
                ttl: float = 15.0, executor: Optional[Executor] = None,
                ssh_options: Optional[Any] = None) -> List[Worker]:
    """Start ``count`` workers in threads of this process (the embedded ``--workers N`` mode);
    they stop when ``stop`` is set.  Each gets its own Space client, as separate hosts would."""
    workers: List[Worker] = []

    def stopper() -> None:
        stop.wait()
        for w in list(workers):
            w.stop()

    # The stopper first: a stop set while the workers start (a Ctrl-C) reaches each of them.
    threading.Thread(target=stopper, daemon=True).start()
    for i in range(count):
        w = Worker(space_factory(), threads=threads, ttl=ttl, executor=executor, poll=1.0,
                   ssh_options=ssh_options)
        workers.append(w)
        if stop.is_set():
            w.stop()
        w.thread = threading.Thread(target=w.serve, name="worker-%d" % i, daemon=True)
        w.thread.start()
    return list(workers)


def stop_workers(workers: List[Worker], timeout: float = STOP_GRACE + 5.0) -> None:
    """Stop workers of ``run_workers`` and wait (up to ``timeout``) until each has left the Space:
    a process that returns while they still deregister (a module's, whose daemon threads die at
    exit) leaves registrations and trace writes landing after its result was reported."""
    for w in workers:
        w.stop()
    deadline = time.monotonic() + timeout
    for w in workers:
        if w.thread is not None:
            w.thread.join(max(0.0, deadline - time.monotonic()))
