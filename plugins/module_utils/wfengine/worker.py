# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stateless worker.

A worker keeps nothing that another worker could need: everything lives in the Space.  Its loop is
one blocking query on ``q/`` (what is ready, what is locked, which runs went quiet, which workers
are alive); the ready nodes it owns (zones of related root hosts, locality.py) go by batches to a
bounded pool of threads, each of which claims, advances and commits its batch (batch.py).

A node that stops before an operation with side effects goes on alone on the single-node path
(worker_single.py, ``_advance``): it commits the attempt (checkpoint), runs the operation, and
commits the outcome with its own ready tuple and lock, in ONE transaction: session check, fact (CAS on what it
read), trace events, ready tuples for the neighbours that may wait on the states just reached,
removal of its own ready tuple (CAS: a wake-up that arrived meanwhile is kept) and of its lock.

A crash anywhere before a commit leaves the ready tuple in place: the step is retaken and its
operations run again (at least once).  See docs/architecture.md.

Fencing (issue 17): an operation starts only while the step's session provably holds the node (the
host lock is taken in one transaction with that check; a session known lost starts nothing).  A
result that cannot be committed is kept (journal.py) and sent again; once the node's lock is lost,
it is committed with a CAS on the fact alone, or recorded in the trace as ``stale``.

The Worker is assembled from parts that each hold one concern: the loop and who takes which
ready node (worker_dispatch.py), the lanes that take batches (worker_lanes.py), the single-node
path (worker_single.py), the session and its renewal, fencing's clock and the audit
after outages (worker_sessions.py), host locks (worker_hosts.py), operations with side effects
(worker_operations.py) and commits (worker_commits.py); what it knows of a run and of a step is
in run_context.py, batches of nodes in batch.py.  This module keeps its lifecycle and task
tables.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple, cast

from . import keys
from .attempts import AttemptWatch, new_boot
from .errors import (PermissionDenied, SpaceDataError, SpaceError, SpaceUnavailable, TxnTooLarge, WfError,
                     WorkerInterrupt)
from .operation.executor import Executor
from .journal import Journal
from .run_context import RunContext
from .runs import finalize_run
from .space.base import Space, op_check_session, op_delete, op_delete_cas, op_set
from .worker_commits import Commits
from .worker_dispatch import BUSY, INFLIGHT, SUBMITTED, Dispatch
from .worker_hosts import HostLocks
from .worker_lanes import Lanes
from .worker_operations import Operations
from .worker_options import WorkerOptions
from .worker_sessions import Sessions
from .worker_single import SingleNode

if TYPE_CHECKING:  # pragma: no cover
    from http.server import ThreadingHTTPServer

log = logging.getLogger("wfengine.worker")

# SIGTERM: operations in flight get this long to finish, then are killed and handed back.
STOP_GRACE = 1.2
# The longest wait on the queue of the workers a client runs in its own process (run_workers).
LOCAL_POLL = 1.0


class _DenialWatch:
    """The worker's view of its Space: an ACL refusal anywhere (a step, a renewal, a finalizer,
    the executor's log writes) stops the worker, whatever the caller then does with the error.
    Retrying a write the token cannot make only spins: issue 17 measured about 5,000 Raft
    writes in 40 s from a worker without write on ``facts/``.  A request the Space left
    unanswered past the client's retries is reported too (``on_unanswered``): Consul may still
    apply it once it is back (Sessions._audit_locks)."""

    def __init__(self, space: Space, on_denied: Callable[[PermissionDenied], None],
                 on_unanswered: Optional[Callable[[], None]] = None) -> None:
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


class Worker(Dispatch, Lanes, SingleNode, Sessions, HostLocks, Operations, Commits):
    """A long-lived worker: ``serve()`` until ``stop()``."""

    def __init__(self, space: Space, options: Optional[WorkerOptions] = None, *,
                 executor: Optional[Executor] = None, ssh_options: Optional[Any] = None,
                 **overrides: Any) -> None:
        """``options`` (default: WorkerOptions()), with ``overrides`` of its fields by name
        (``Worker(space, threads=2, poll=1.0)``, as before WorkerOptions; an unknown name is a
        TypeError).  ``executor`` (default: the process executor the options describe) and
        ``ssh_options`` (how operations reach remote hosts; its ``serves``, the hosts served
        here) are objects, not options."""
        opts = dataclasses.replace(options or WorkerOptions(), **overrides)
        self.options = opts
        # The first permission denied met (then the worker stops; ``serve`` raises it) and what
        # wakes the thread that runs ``serve`` from its blocking query (cmd_worker: a signal).
        self.fatal: Optional[PermissionDenied] = None
        self.on_fatal: Optional[Any] = None
        # Set when a request went unanswered past the client's retries; once the Space answers
        # again the renewal thread audits this worker's locks for a while (_audit_locks).
        self._unanswered = False
        self._audit_until = 0.0
        self.space = _DenialWatch(space, self._denied, self._note_unanswered)  # type: ignore[assignment]
        space = self.space
        self.id = opts.worker_id or "%s-%d-%s" % (socket.gethostname(), os.getpid(),
                                                  uuid.uuid4().hex[:6])
        self.threads = max(1, int(opts.threads))
        self.ttl = opts.ttl
        self.poll = opts.poll
        if executor is None:
            from .operation.resolver import default_executor
            executor = default_executor(space, self.context, log_dir=opts.log_dir,
                                        cache_dir=opts.cache_dir, exec_log=opts.exec_log,
                                        timeout=opts.op_timeout, ssh_options=ssh_options,
                                        playbook_forkserver=opts.playbook_forkserver)
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
        self.journal = Journal(opts.state_dir)
        self._handing_back = False     # stopping: operations still running are killed, handed back
        # This process (a restart with the same id is another one) and what it remembers of
        # other workers' attempts in flight (attempts.py).
        self.boot = new_boot()
        self.attempts = AttemptWatch()
        self._stop = threading.Event()
        self._inflight: Set[Tuple[str, str]] = set()
        self._busy = 0
        self.batch = max(1, min(int(opts.batch), space.max_txn_ops // 4))  # a claim: 4 ops a node
        self.steal_after = opts.steal_after
        # Batch steps in flight at once (see Space.batch_lanes), on threads of their own: ``threads``
        # bounds the other tasks (operations with side effects, fan-outs, finalizers).
        self.lanes = max(1, int(opts.lanes or space.batch_lanes))
        self._lanes_busy = 0
        self._peers: List[str] = [self.id]
        self._seen: Dict[Tuple[str, str], float] = {}   # ready nodes of other owners: first seen
        # Ready nodes of the last listing that the lane was not free to take (single-lane workers):
        # it goes on with them (and with what its commit handed off) instead of waiting for a
        # listing.
        self._backlog: Dict[str, Dict[str, None]] = {}
        self._canceled: Set[str] = set()     # runs whose listing showed a cancel: no handoff
        # (the ignore: until worker_dispatch.py declares it Optional[float])
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
        # (the ignore: until worker_hosts.py declares it Optional[threading.Thread])
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

    def _wake_server(self, address: Tuple[str, int],
                     pool: ThreadPoolExecutor) -> ThreadingHTTPServer:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        worker = self

        class Wake(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
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

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(address, Wake)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="wake-%s" % self.id, daemon=True).start()
        return server

    def _submit(self, pool: ThreadPoolExecutor, tokens: List[Tuple[str, str]],
                fn: Callable[..., Any], *args: Any, force: bool = False, lane: bool = False) -> str:
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

    def _guard(self, tokens: List[Tuple[str, str]], fn: Callable[..., Any], *args: Any,
               lane: bool = False) -> None:
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
            got = self.space.acquire(lk, cast(str, session), {"worker": self.id})
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


def run_workers(space_factory: Callable[[], Space], count: int, stop: threading.Event,
                options: Optional[WorkerOptions] = None, *, executor: Optional[Executor] = None,
                ssh_options: Optional[Any] = None, **overrides: Any) -> List[Worker]:
    """Start ``count`` workers in threads of this process (the embedded ``--workers N`` mode);
    they stop when ``stop`` is set.  Each gets its own Space client, as separate hosts would.
    ``options`` and ``overrides`` as for Worker; these workers poll every LOCAL_POLL seconds."""
    opts = dataclasses.replace(options or WorkerOptions(), **dict(overrides, poll=LOCAL_POLL))
    workers: List[Worker] = []

    def stopper() -> None:
        stop.wait()
        for w in list(workers):
            w.stop()

    # The stopper first: a stop set while the workers start (a Ctrl-C) reaches each of them.
    threading.Thread(target=stopper, daemon=True).start()
    for i in range(count):
        w = Worker(space_factory(), opts, executor=executor, ssh_options=ssh_options)
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
