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
"""
from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from . import catalog, deployments, events, keys
from .batch import Batch, fact_entry
from .errors import (NotFound, PermissionDenied, SpaceDataError, SpaceError, SpaceUnavailable, TxnTooLarge,
                     WfError)
from .operation.executor import Executor, OperationCall, OperationResult
from .journal import Journal, op_from_json, op_to_json
from .facts import new_fact, passes, remaining_states, validate_fact
from .instances import root_of, validate_node
from .locality import Zones, owns_a_zone, zone_owner
from .placement import call_end, host_address
from . import imperative
from .rules import CALL, RCALL, STATE, WAIT, Instr, RuleSet, rule_set
from .runs import finalize_run, rules_key_of, run_record
from .space.base import (Entry, Op, Space, op_cas, op_check_index, op_check_not_exists,
                         op_check_session, op_delete, op_delete_cas, op_get, op_lock, op_set)

log = logging.getLogger("wfengine.worker")

SUBMITTED, BUSY, INFLIGHT = "submitted", "busy", "inflight"
# What _run_effectful returns when the run was canceled before the operation started.
CANCELED = "canceled"
EVENTS_PER_COMMIT = 200
# SIGTERM: operations in flight get this long to finish, then are killed and handed back.
STOP_GRACE = 1.2
# Seconds during which, once the Space answers again after requests went unanswered, the renewal
# thread releases locks of this worker's sessions that no task uses (Worker._audit_locks).
AUDIT_AFTER_OUTAGE = 60.0


class WorkerInterrupt(Exception):
    """Raised by a signal handler to leave a blocking query at once (graceful stop)."""


class _DenialWatch:
    """The worker's view of its Space: an ACL refusal anywhere (a step, a renewal, a finalizer,
    the executor's log writes) stops the worker, whatever the caller then does with the error.
    Retrying a write the token cannot make only spins: issue 17 measured about 5,000 Raft
    writes in 40 s from a worker without write on ``facts/``.  A request the Space left
    unanswered past the client's retries is reported too (``on_unanswered``): Consul may still
    apply it once it is back (Worker._retire_session)."""

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


class RunContext:
    """What a worker caches about a run: immutable once the run started."""

    def __init__(self, space: Space, run_id: str):
        entry = space.get(keys.run(run_id))
        if entry is None:
            raise NotFound("unknown run %s" % run_id)
        rec = run_record(entry)
        self.run_id = run_id
        self.record = rec
        self.workflow = rec["workflow"]
        self.model = rec["model"]
        self.instance = rec["instance"]
        self.generation = rec["generation"]
        # The rules are read when first needed, or with a batch's claim (rules_key): a worker
        # that owns nothing of the run never reads them, the one that does saves a round trip.
        self._rules: Optional[RuleSet] = None
        self.rules_key = rules_key_of(rec)
        self._space = space
        self._nodes: Dict[str, Dict[str, Any]] = {}
        self._programs: Dict[str, List[Instr]] = {}
        self._rels: Dict[str, Dict[str, Dict[str, Any]]] = {}
        self._wakes: Dict[Tuple[str, str], Tuple[str, ...]] = {}
        self._lock = threading.Lock()
        # Facts as this worker last committed or read them (node -> (fact, index)).  A hint, never
        # the truth: a decision taken on a stale one is caught by the index checks of the commit
        # (batch.py), and a wait found satisfied stays satisfied (states reached only grow).
        self._facts: Dict[str, Tuple[Optional[Dict[str, Any]], int]] = {}
        self._ready: Dict[str, int] = {}      # node -> index of the last ready tuple it wrote
        self._floor: Dict[str, int] = {}      # node -> newest index seen for its fact
        # A small run's facts, written with its record (runs.start_run, "fresh"): new, at the
        # record's index, until this worker learns otherwise.
        fresh = rec.get("fresh")
        self.small = isinstance(fresh, list)     # started in one transaction (runs.start_run)
        self._fresh: Set[str] = set(fresh) if isinstance(fresh, list) and all(
            isinstance(n, str) for n in fresh) else set()
        self._fresh_index = entry.index
        hosting = rec.get("hosting")
        self.hosting: Dict[str, str] = hosting if isinstance(hosting, dict) else {}
        # An uninstall goes on past failed operations (runs.start_run sets it): a wait on a node
        # in error holds.
        self.past_failures = rec.get("past_failures") is True
        self.zones = Zones(rec.get("zones"), self.hosting)
        self._addresses: Dict[str, Optional[str]] = {}

    def address(self, root: str) -> Optional[str]:
        """The address of a root host (placement.host_address), as first read by this worker:
        served hosts are matched by it.  Read only when some worker serves hosts."""
        with self._lock:
            if root in self._addresses:
                return self._addresses[root]
        try:
            found = host_address(self.function_context(root), root)
        except WfError:
            found = None
        with self._lock:
            self._addresses[root] = found
        return found

    def function_context(self, self_node: str) -> Any:
        """A TOSCA function context over this run's deployment (values, inputs, attributes)."""
        from .operation.resolver import deployment_values, model_context
        values, inputs = deployment_values(self._space, self.model, self.instance,
                                           self.record["model_digest"])
        return model_context(self._space, self, values, inputs, self_node)

    @property
    def has_rules(self) -> bool:
        return self._rules is not None

    @property
    def rules(self) -> RuleSet:
        if self._rules is None:
            self.set_rules(self._space.get(self.rules_key))
        return self._rules   # type: ignore[return-value]

    def set_rules(self, entry: Optional[Entry]) -> None:
        """Validate and keep the rules read at ``rules_key``."""
        if entry is None:
            raise SpaceDataError("run %s: rules of workflow %s are missing"
                                 % (self.run_id, self.workflow))
        rules = catalog.validate_rule_set(self.workflow, entry.value)
        with self._lock:
            if self._rules is None:
                self._rules = rule_set(self.workflow, rules, self.template_instances)

    @property
    def fresh(self) -> Set[str]:
        """Nodes whose fact is still the one start_run wrote, as far as this worker knows."""
        return self._fresh

    def known_fact(self, node_id: str) -> Optional[Tuple[Optional[Dict[str, Any]], int]]:
        hit = self._facts.get(node_id)
        if hit is None and node_id in self._fresh:
            return new_fact(node_id), self._fresh_index
        return hit

    def remember_fact(self, node_id: str, fact: Optional[Dict[str, Any]], index: int) -> None:
        """Keep a copy (the caller goes on changing its fact), unless a newer one is known: a
        read that returns after another lane's commit must not bring an older index back."""
        if fact is not None:
            fact = dict(fact, reached=list(fact["reached"]))
        with self._lock:
            if index >= self._floor.get(node_id, 0):
                self._facts[node_id] = (fact, index)
                self._floor[node_id] = index

    def fact_floor(self, node_id: str) -> int:
        """The newest index this worker has seen for ``node_id``'s fact (committed or read):
        unlike the hint, never forgotten, so a check older than it is known to fail."""
        return self._floor.get(node_id, 0)

    def remember_ready(self, node_ids: Iterable[str], index: int) -> None:
        """Ready tuples this worker's commit (re)wrote at ``index``: a batch holding one of
        these nodes with an older tuple knows its removal will fail."""
        for n in node_ids:
            if index > self._ready.get(n, 0):
                self._ready[n] = index

    def ready_index(self, node_id: str) -> int:
        return self._ready.get(node_id, 0)

    def forget_fact(self, node_id: str) -> None:
        self._facts.pop(node_id, None)
        self._fresh.discard(node_id)

    def node(self, node_id: str) -> Dict[str, Any]:
        with self._lock:
            n = self._nodes.get(node_id)
        if n is None:
            n = deployments.read_node(self._space, self.model, self.instance, self.generation, node_id)
            with self._lock:
                self._nodes[node_id] = n
        return n

    def relationship(self, node_id: str, rel_id: str) -> Optional[Dict[str, Any]]:
        """A relationship instance of ``node_id`` by id, indexed once per node: a node with R
        relationship instances runs operations on each of them (a scan each time is R^2)."""
        with self._lock:
            by_id = self._rels.get(node_id)
        if by_id is None:
            node = self.node(node_id)
            by_id = {}
            for r in itertools.chain(node["out"], node["in"]):
                by_id.setdefault(r["id"], r)
            with self._lock:
                self._rels[node_id] = by_id
        return by_id.get(rel_id)

    def prefetch(self, node_ids: List[str]) -> None:
        """Read the node records of a batch that are not cached yet, in a few read transactions
        instead of one request per node."""
        wanted = self.node_keys(node_ids)
        if wanted:
            read = self._space.get_many(list(wanted.values()))
            self.cache_nodes({n: read[k] for n, k in wanted.items()})

    def node_keys(self, node_ids: List[str]) -> Dict[str, str]:
        """Keys of the node records not cached yet (read with a batch's claim)."""
        with self._lock:
            return {n: keys.instance_node(self.model, self.instance, self.generation, n)
                    for n in node_ids if n not in self._nodes}

    def cache_nodes(self, entries: Dict[str, Any]) -> None:
        found = {n: validate_node(e.key, e.value) for n, e in entries.items() if e is not None}
        with self._lock:
            self._nodes.update(found)

    def template_instances(self, template: str) -> List[str]:
        """Node ids of a template in this deployment (ids are ``<template>_<n>``)."""
        with self._lock:
            ids = getattr(self, "_ids", None)
        if ids is None:
            prefix = keys.instance_nodes(self.model, self.instance, self.generation)
            ids = [k[len(prefix):] for k in self._space.keys(prefix)]
            with self._lock:
                self._ids = ids
        return sorted((i for i in ids if i.rpartition("_")[0] == template),
                      key=lambda i: int(i.rpartition("_")[2]))

    def wakes(self, node_id: str, states: Iterable[str]) -> List[str]:
        """Nodes that may wait for ``node_id`` to reach one of ``states``: cached per node and
        state, as every node reaches every state once and wakes are asked at each step."""
        out: Dict[str, None] = {}
        for state in states:
            w = self._wakes.get((node_id, state))
            if w is None:
                w = tuple(self.rules.wakes(self.node(node_id), [state]))
                self._wakes[(node_id, state)] = w   # a racing twin computes the same tuple
            out.update(dict.fromkeys(w))
        return list(out)

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

    def _new_session(self) -> None:
        sent = time.monotonic()
        self.session = self.space.session_create("wf-worker-%s" % self.id, self.ttl, behavior="delete")
        self._renewed_at = sent
        self._registered = False
        self._register()

    def _register(self) -> None:
        """Registration: peers split the ready nodes between the live workers they see.  Made
        again by the renewal if it failed (a new session opened as Consul came back)."""
        self.space.acquire(keys.worker(self.id), self.session,
                           {"host": socket.gethostname(), "pid": os.getpid(), "threads": self.threads,
                            "serves": list(self.serves)})
        self._registered = True
        # Served hosts outlive the session on purpose: when this worker dies, the operations of
        # its hosts wait for it (or a worker that serves the same names) instead of running
        # elsewhere.  ``wfctl serves --forget`` removes a claim for good.
        if self.serves:
            self.space.write_chunked(op_set(keys.served(name, self.id),
                                            {"since": time.time(), "host": socket.gethostname()})
                                     for name in self.serves)

    def _owner(self, node: str) -> str:
        """Rendezvous hashing: the live worker that takes ``node`` (a root host id) first, for a
        run whose record has no zone map (see _hand_ok).  Every worker computes the same owner
        from the same registrations, so they claim different nodes instead of colliding; the
        others take a node that stays ready longer than ``steal_after`` (owner busy, or dead and
        not yet expired)."""
        return max(self._peers, key=lambda p: zlib.crc32(("%s\0%s" % (p, node)).encode("utf-8")))

    def session_lost(self, session: Optional[str]) -> bool:
        """Whether ``session`` may no longer be this worker's live session (fencing): known lost,
        replaced, or not renewed for most of its TTL.  The last one needs no round trip, so a
        worker resumed after a pause longer than its TTL knows at once, before its renewal
        thread has asked the Space; a check that passed in the Space (the host lock's) plus this
        one afterwards proves that the session still held the node's lock when it passed here."""
        return (session is None or session in self._lost or session != self.session
                or time.monotonic() - self._renewed_at > 0.8 * self.ttl)

    def _renew_loop(self) -> None:
        period = max(0.2, self.ttl / 3.0)
        pause = period
        while not self._stop.wait(pause):
            pause = period
            try:
                sent = time.monotonic()
                if self.space.session_renew(self.session):
                    self._renewed_at = sent
                    if self._unanswered:
                        # The Space answers again: look for what it applied late, for a while.
                        self._unanswered = False
                        self._audit_until = time.monotonic() + AUDIT_AFTER_OUTAGE
                    if time.monotonic() - sent > period:
                        # Answered after the Consul client's retries (an outage, a quorum
                        # loss): when it was applied is unknown, so the renewal counts from
                        # when it was first sent; renew again now for a fresh start time.
                        pause = 0.0
                    if not self._registered:
                        self._register()
                    if time.monotonic() < self._audit_until:
                        self._audit_locks()
                else:
                    log.warning("worker %s: session expired; its locks are gone, opening a new one",
                                self.id)
                    # Before anything else: every step claimed with it stops before starting
                    # anything (each start checks this, then the Space checks the lock).
                    if self.session:
                        self._lost.add(self.session)
                    self._new_session()
            except WfError as exc:
                log.warning("worker %s: session renew failed (%s); retrying", self.id, exc)
            except Exception:  # noqa: BLE001 (this thread must not die: the session would go)
                log.exception("worker %s: session renewal: unexpected error; retrying", self.id)

    def _note_unanswered(self) -> None:
        self._unanswered = True

    def _audit_locks(self) -> int:
        """Release node and host locks that this worker's sessions hold and no task of it uses.

        After an outage that outlasted the client's retries, Consul may still apply a request
        whose caller gave up: a claim, whose caller then released its locks (finding nothing
        yet), takes a node lock for a session that lives on (sessions survive outages: their
        timers restart) and that no task uses.  Nobody would take the node again: the run
        stayed ``running`` with every worker idle (seen in CI after the 90 s full outage).  So
        for a while after such an outage the renewal thread looks at the queues of the runs
        this worker knows: a lock of one of its sessions whose node it holds no token for is
        deleted, by CAS on the index listed (a task that took the node since changed it).
        Outbox locks (``~o-``) are left alone.  A host lock taken late the same way (its
        transaction timed out, the releaser found nothing to release) would stop every other
        worker's operations on that host: one that no task of this worker holds or is taking
        goes too.  Returns how many were released."""
        mine = {self.session} | set(self._lost)
        with self._ctx_lock:
            runs = list(self._contexts)
        released = 0
        for run in runs:
            for e in self.space.list(keys.queue(run)):
                if e.session not in mine or not (keys.is_lock(e.key) or keys.is_host_lock(e.key)):
                    continue
                if keys.is_host_lock(e.key):
                    if self._host_in_use(e.key):
                        continue
                else:
                    node = e.key.rsplit("/", 1)[1]
                    if node.startswith("~"):
                        continue
                    with self._inflight_lock:
                        if (run, node) in self._inflight:
                            continue
                # A task that took the key since it was listed changed its index (a session
                # re-acquiring what it holds writes it again): the CAS leaves it alone.
                if self.space.txn([op_delete_cas(e.key, e.index)]).ok:
                    released += 1
                    self._count("orphan_locks")
                    log.warning("worker %s: released %s, held by its session %s for no task (a "
                                "request applied after the Space came back)", self.id, e.key,
                                (e.session or "-")[:8])
        return released

    def _host_in_use(self, hk: str) -> bool:
        """Whether a task of this worker holds the host lock ``hk`` or is taking it: the lock is
        recorded in ``_host_sessions`` while held, and its local lock is held from before the
        Space is asked until after the release (the releaser thread's included)."""
        with self._ctx_lock:
            if hk in self._host_sessions:
                return True
            local = self._host_locks.get(hk)
        return local is not None and local.locked()

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

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        index = 0
        backoff = 0.05
        while not self._stop.is_set():
            with self._inflight_lock:
                # Every lane busy: a listing now could start no batch (each commit of ours would
                # cost a listing for nothing); wait for a lane, up to a second (other tasks).
                # The condition is notified at every round of a lane (tokens given back), so
                # wait in a loop: a listing per commit is what made the embedded worker's time
                # per node grow with the frontier (10k: 17 % of its samples in the listing).
                deadline = time.monotonic() + 1.0
                while self._lanes_busy >= self.lanes and not self._stop.is_set():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._inflight_lock.wait(remaining)
            try:
                timeout = self.poll if self._recheck is None else min(self.poll, self._recheck + 0.01)
                if self._idle and index:
                    # Nothing of ours in the running runs: wait for a run to start or end or a
                    # peer to come or go, then list it all; the index of the last listing of q/
                    # is valid for q/~/ below it.  Every steal_after at least, list anyway: the
                    # others' work may be late (an owner alive but overloaded).
                    self._count("idle_waits")
                    self.space.wait(keys.CONTROL, index, timeout if self._recheck is not None
                                    else min(self.poll, max(1.0, self.steal_after)))
                    index = 0
                index, qkeys = self.space.wait(keys.QUEUE, index, timeout if index else 0)
                backoff = 0.05
            except SpaceError as exc:
                if self._stop.is_set():
                    break
                log.warning("worker %s: %s; retrying", self.id, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
                index = 0
                continue
            if self._stop.is_set():
                break
            seen = self._completions
            if self._dispatch(qkeys, pool):
                # Work is left that this worker could not take now (pool full, or the node's
                # previous step still finishing here): re-list as soon as a step ends, instead of
                # waiting for the next change in the Space (there may be none).
                with self._inflight_lock:
                    if self._completions == seen and not self._stop.is_set():
                        self._inflight_lock.wait(1.0)
                index = 0

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, qkeys: List[str], pool: ThreadPoolExecutor) -> bool:
        groups: Dict[str, Dict[str, Any]] = {}
        peers = {self.id}
        served: Dict[str, Set[str]] = {}
        for k in qkeys:
            if k.startswith(keys.CONTROL):
                if k.startswith(keys.WORKERS):
                    peers.add(k[len(keys.WORKERS):])
                elif k.startswith(keys.SERVED):
                    name, dummy, wid = k[len(keys.SERVED):].rpartition("/")
                    if name and wid:
                        served.setdefault(name, set()).add(wid)
                continue
            parsed = keys.parse_queue_key(k)
            if parsed is None:
                continue
            run, kind, name = parsed
            g = groups.setdefault(run, {"run": False, "cancel": False, "r": [], "l": set(), "o": [],
                                        "h": 0})
            if kind in ("run", "cancel"):
                g[kind] = True
            elif kind in ("r", "o"):
                g[kind].append(name)
            elif kind == "l":
                g["l"].add(name)
            elif kind == "h":
                g["h"] += 1
        self._peers = sorted(peers)
        self._served = served
        canceled = {run for run, g in groups.items() if g["cancel"]}
        for run in sorted(canceled - self._canceled):
            self._stop_operations(run)
        self._canceled = canceled
        left = False
        seen: Dict[Tuple[str, str], float] = {}
        self._recheck = None
        for run, g in groups.items():
            if not g["run"]:
                continue
            quiet = not g["l"] and not g["h"] and (g["cancel"] or (not g["r"] and not g["o"]))
            if quiet and self._ends(run, seen):
                self._submit(pool, [(run, "~finalize")], self._finalize, run)
            if g["cancel"] or quiet:
                # Cancel: nothing new is scheduled; once the steps in flight are committed, the
                # run ends.
                continue
            for ident in g["o"]:
                if ("~o-" + ident) not in g["l"]:
                    if self._submit(pool, [(run, "~o-" + ident)], self._fan_out, run,
                                    ident) != SUBMITTED:
                        left = True
            with self._inflight_lock:
                cands = [n for n in g["r"] if n not in g["l"] and (run, n) not in self._inflight]
                inflight = len(cands) < len(g["r"]) - len(g["l"] & set(g["r"]))
                free = self.lanes - self._lanes_busy
            if inflight:
                left = True   # a node of ours is still finishing: look again when it ends
            cands = self._mine(run, cands, seen, max(0, free) * self.batch)
            if cands and free <= 0:
                left = True
            elif cands:
                # Large batches: a batch costs the same few round trips whatever its size, and
                # its nodes see each other's states in memory.
                size = max(1, min(self.batch, len(cands)))
                for i in range(0, len(cands), size):
                    chunk = cands[i:i + size]
                    outcome = self._submit(pool, [(run, n) for n in chunk], self._take_batch, run,
                                           chunk, lane=True)
                    if outcome != SUBMITTED:
                        left = True
                        if outcome == BUSY:
                            break
            if self.lanes == 1:
                with self._inflight_lock:
                    # What the lane did not take: it goes on with these when its batch ends.
                    self._backlog[run] = {n: None for n in cands if (run, n) not in self._inflight}
        self._seen = seen
        with self._inflight_lock:
            for run in [r for r in self._backlog if r not in groups]:
                del self._backlog[run]
            busy = bool(self._inflight)
        self._idle = not (left or busy or len(self._peers) <= 1
                          or any(self._owns_some(run) for run, g in groups.items() if g["run"]))
        return left

    def _owns_some(self, run: str) -> bool:
        """Whether some node of ``run`` may be this worker's (without a zone map: any)."""
        try:
            zones = self.context(run).zones
        except WfError:
            return True
        return not zones or owns_a_zone(run, zones.count, self._peers, self.id)

    def _mine(self, run: str, cands: List[str], seen: Dict[Tuple[str, str], float],
              room: int) -> List[str]:
        """The candidates this worker claims now: its own, then, only if they leave room in its
        free lanes (``room`` nodes), other owners' that waited too long.  A worker with work of
        its own does not steal: when every worker is saturated, every ready node is "late", and
        stealing then only makes workers collide on the same locks and facts."""
        if len(self._peers) <= 1 and not self._served:
            return cands
        try:
            ctx: Optional[RunContext] = self.context(run)
        except WfError:
            ctx = None
        # Owned by root host: the nodes of one host go to one worker, so the waits along
        # HostedOn (most of them) and the host's operation lock stay within a worker.
        now = time.monotonic()
        own, late_ones = [], []
        for n in cands:
            if self._hand_ok(run, n, ctx):
                own.append(n)
            elif (ctx is None or self._servers(ctx, n) is None) and self._late(run, n, seen, now):
                late_ones.append(n)   # a served host's nodes are never taken by another worker
        if len(own) >= room:
            return own
        return own + late_ones[:room - len(own)]

    def _late(self, run: str, token: str, seen: Dict[Tuple[str, str], float], now: float) -> bool:
        """Whether another owner's work has waited longer than ``steal_after`` (first seen by
        this worker's listings); if not, when to look again."""
        first = seen[(run, token)] = self._seen.get((run, token), now)
        late = first + self.steal_after - now
        if late > 0 and (self._recheck is None or late < self._recheck):
            self._recheck = late
        return late <= 0

    def _ends(self, run: str, seen: Dict[Tuple[str, str], float]) -> bool:
        """Whether this worker ends a quiet run now: the run's owner at once, the others only if
        it stays quiet (owner dead or busy), instead of every worker racing through the same
        reads on the last step of every workflow."""
        return self._finalizer(run) or self._late(run, "~finalize", seen, time.monotonic())

    def _finalizer(self, run: str) -> bool:
        """Whether this worker is the run's owner, which ends it: the owner of its first zone
        (for a run of one zone, the worker that ran it all)."""
        if len(self._peers) <= 1:
            return True
        try:
            zones = self.context(run).zones
        except WfError:
            zones = None
        if zones:
            return zone_owner(run, 0, zones.count, self._peers) == self.id
        return self._owner("~end/" + run) == self.id

    def _hand_ok(self, run: str, node_id: str, ctx: Optional[RunContext]) -> bool:
        """Whether this worker owns ``node_id``: it claims it at once, takes it in a handoff, and
        trusts its fact hints.  By the zone of its root host (locality.py), or, for a run
        without a zone map, by its root host alone."""
        if self._served and ctx is not None:
            servers = self._servers(ctx, node_id)
            if servers is not None:
                # A served host: its worker(s) only; none alive, nobody (the host waits).
                alive = [w for w in self._peers if w in servers]
                return bool(alive) and max(alive, key=lambda p: zlib.crc32(
                    ("%s\0%s" % (p, node_id)).encode("utf-8"))) == self.id
        if len(self._peers) <= 1:
            return True
        if ctx is None:
            return self._owner(node_id) == self.id
        zone = ctx.zones.zone(node_id) if ctx.zones else None
        if zone is None:
            return self._owner(root_of(node_id, ctx.hosting)) == self.id
        return zone_owner(run, zone, ctx.zones.count, self._peers) == self.id

    def _servers(self, ctx: RunContext, node_id: str) -> Optional[Set[str]]:
        """Workers registered to serve ``node_id``'s root host (alive or not), by its node
        instance id or its address; None when no worker serves it."""
        if not self._served:
            return None
        root = root_of(node_id, ctx.hosting)
        ids = set(self._served.get(root, ()))
        address = ctx.address(root)
        if address:
            ids.update(self._served.get(address, ()))
        return ids or None

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

    def _run_effectful(self, step: "_Step", node: Dict[str, Any], call: OperationCall,
                       rel: Optional[Dict[str, Any]]) -> Any:
        """Record the attempt, run the operation (serialized per host), retry as configured.
        Returns True/False for success, None if the node's lock was lost meanwhile, CANCELED if
        the run was canceled before it started (the node as it was, for a resume)."""
        fact, ctx = step.fact, step.ctx
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
        prev = fact.get("inflight")
        attempt = first = 1
        interrupted = None
        if prev and prev.get("pc") == fact["pc"]:
            # The worker that ran this operation died before committing: the trace says so.
            attempt = first = int(prev.get("attempt", 0)) + 1
            interrupted = events.event(call.node, "operation", call.operation, rel,
                                       status="interrupted", worker=prev.get("worker"),
                                       attempt=prev.get("attempt"))
            step.events.append(interrupted)
        max_retries, interval = self.executor.retry_policy(call)
        max_retries = max(max_retries, int(ctx.record.get("max_retries") or 0))
        hk = self._host_key(ctx, call.node)      # the end the operation runs for
        while True:
            # Fencing, 1: a step whose session was lost (this worker was paused past its TTL, or
            # cut from the Space) starts nothing; the Space checks it again below.
            if self.session_lost(step.session) or self._stop.is_set():
                return self._give_up(step)
            fact["inflight"] = {"pc": fact["pc"], "operation": call.operation, "attempt": attempt,
                                "worker": self.id, "started": time.time()}
            got = self._checkpoint(step, call.node, hk)
            if got is not True:
                if got is CANCELED:
                    # Nothing started: the node stays as it was (a resume says "interrupted").
                    fact["inflight"] = prev if attempt == first else None
                    if attempt == first and interrupted is not None and interrupted in step.events:
                        step.events.remove(interrupted)
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
            if step.host and self._host_kept(step.host):
                self._host_released(step.host, kept=True)
                step.host = None
            if self._handing_back and (result.details or {}).get("canceled"):
                # Stopping: killed before its end and handed back; the attempt stays recorded in
                # the fact (the next worker says it was interrupted, and runs it again).
                return None
            fact["inflight"] = None
            step.pending.append(events.event(call.node, "operation", call.operation, rel,
                                             status="stale", attempt=attempt, worker=self.id))
            canceled = bool((getattr(result, "details", None) or {}).get("canceled"))
            last = result.ok or attempt > max_retries or canceled     # a canceled one is not retried
            ok = self._record_result(step, node, call, result, rel, recorded=True, final_attempt=last)
            if ok or last:
                return ok
            attempt += 1
            if interval > 0:
                self._drop_host(step)     # the host's other operations go on meanwhile
                if self._stop.wait(interval):
                    return None

    def _checkpoint(self, step: "_Step", node: Dict[str, Any], hk: Optional[str]) -> Any:
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
        leave = held if held and held != hk else None
        kept = self._host_kept(leave)
        leave_ops = [op_delete(leave)] if leave and not kept else []
        local = None
        if hk is not None and hk != held:
            local = self._local_host_lock(hk)
            if not local.acquire(blocking=False):
                local = None
        if hk is None or hk == held or local is not None:
            take = [op_lock(hk, {"worker": self.id, "node": node["id"]}, step.session)] \
                if local is not None else []
            try:
                ok = self._commit(step, final=False, checks=checks, host_ops=leave_ops + take,
                                  expected={cancel_key} | ({hk} if take else set()))
            except BaseException:
                if local is not None:
                    # The lock may have applied before the answer was lost: released by the
                    # releaser thread, the local lock with it (as _host_lock does).
                    self._release_later(hk, step.session, local)
                raise
            if ok:
                if leave:
                    self._host_released(leave, kept)
                step.host = hk
                if take:
                    with self._ctx_lock:
                        self._host_sessions[hk] = step.session
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
        if leave:
            self._host_released(leave, kept)
        step.host = None
        got = self._host_lock(step, node, hk)
        if got is False:
            log.warning("worker %s: %s/%s: the node is no longer this worker's; not started",
                        self.id, step.ctx.run_id, step.node_id)
            return None
        step.host = hk
        return True

    def _give_up(self, step: "_Step") -> None:
        """Leave the node without starting anything more; results of operations this step ran
        are committed first (or, the node lost, salvaged or recorded as stale: _commit)."""
        if step.pending:
            fact = step.fact
            fact["inflight"] = None
            self._commit(step, final=False)
        return None

    def _record_result(self, step: "_Step", node: Dict[str, Any], call: OperationCall, result: Any,
                       rel: Optional[Dict[str, Any]], recorded: bool, final_attempt: bool = True) -> bool:
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
            step.fact["error"] = {"operation": call.operation, "exit_code": result.exit_code,
                                  "output": result.output[-2000:], "worker": self.id,
                                  "attempt": call.attempt,
                                  "relationship": None if rel is None else rel["id"]}
            if status == "canceled":
                step.fact["error"]["canceled"] = True
        return result.ok

    def _host_key(self, ctx: RunContext, node: Dict[str, Any]) -> Optional[str]:
        """TOSCA 1.3 hosted nodes concurrency: operations of nodes on one host instance run one at
        a time.  The lock is the root host's (a dead worker's session drops it); None when the run
        does not serialize them."""
        if not ctx.record.get("serialize_hosted", True):
            return None
        root = node
        while root.get("host"):
            root = ctx.node(root["host"])
        return keys.host_lock(ctx.run_id, root["id"])

    def _local_host_lock(self, hk: str) -> Any:
        """Threads of this worker share its session, and a session may re-acquire what it holds:
        a local lock serializes them, the Space lock serializes workers."""
        with self._ctx_lock:
            return self._host_locks.setdefault(hk, threading.Lock())

    def _host_lock(self, step: "_Step", node: Dict[str, Any], hk: str) -> Any:
        """Wait for the host lock ``hk``, taken with the step's session, in one transaction with
        a check that the step's session still holds the node's lock: False if it does not (the
        node is no longer this worker's), else the key."""
        local = self._local_host_lock(hk)
        with self._ctx_lock:
            self._host_waiters[hk] = self._host_waiters.get(hk, 0) + 1
        try:
            local.acquire()
        finally:
            with self._ctx_lock:
                self._host_waiters[hk] -= 1
                if not self._host_waiters[hk]:
                    del self._host_waiters[hk]
                holder = self._host_sessions.get(hk)
        if holder is not None and holder == step.session:
            # Handed over by the step of this worker that held it (the checkpoint of this step
            # checked its node's lock, held by the same session, which is looked at again
            # right before the start).
            return hk
        if holder is not None:
            # Kept in the Space for this step under a session the worker has since lost.
            self._release_quietly(hk, holder)
            with self._ctx_lock:
                self._host_sessions.pop(hk, None)
        try:
            index = 0
            while True:
                if self.session_lost(step.session):
                    local.release()
                    return False
                res = self.space.txn([op_check_session(step.lock, step.session),
                                      op_lock(hk, {"worker": self.id, "node": node["id"]}, step.session)])
                if res.ok:
                    break
                if step.lock in res.failed:
                    local.release()
                    return False
                if self._stop.is_set():
                    raise WorkerInterrupt()
                index, dummy = self.space.wait(hk, index, 1.0)
        except BaseException:
            # The lock's transaction may have applied before its answer was lost (the local
            # lock says no other task of this worker holds it in the Space): released by the
            # releaser thread, the local lock with it, while this step gives its node back.
            self._release_later(hk, step.session, local)
            raise
        with self._ctx_lock:
            self._host_sessions[hk] = step.session
        return hk

    def _host_kept(self, hk: Optional[str]) -> bool:
        """Whether a step leaving ``hk`` keeps it in the Space for a step of this worker that waits
        for it (no release is written; the waiter takes it over with the local lock)."""
        if not hk:
            return False
        with self._ctx_lock:
            return self._host_waiters.get(hk, 0) > 0

    def _host_released(self, hk: Optional[str], kept: bool = False) -> None:
        """The step that held ``hk`` left it: released in the Space by its commit, or ``kept``
        there for a waiter of this worker.  The local side."""
        if not hk:
            return
        with self._ctx_lock:
            if not kept:
                self._host_sessions.pop(hk, None)
            local = self._host_locks.get(hk)
        if local is not None:
            local.release()

    def _drop_host(self, step: "_Step") -> None:
        """Release the host lock the step holds, on its own (the step ends without a commit that
        could carry the release, or waits before a retry); handed over to a waiter of this
        worker if there is one."""
        if step.host:
            hk, step.host = step.host, None
            if self._host_kept(hk):
                self._host_released(hk, kept=True)
            else:
                self._release_host(hk)

    def _release_host(self, hk: str) -> None:
        """Release a host lock.  If the Space does not take the release (an outage), the lock is
        released later by another thread (``_release_later``), and stays held locally until
        then: the step goes on to commit (or journal) the result of the operation it just ran
        instead of waiting for the Space here."""
        with self._ctx_lock:
            session = self._host_sessions.pop(hk, None)
            local = self._host_locks.get(hk)
        try:
            self.space.txn([op_check_session(hk, session or self.session or ""), op_delete(hk)])
        except SpaceError:
            if not (self._stop.is_set() or (session or self.session) in self._lost):
                self._release_later(hk, session or self.session, local)
                return
        except WfError:
            pass    # a permission refused: the worker stops (_denied), its session goes
        except BaseException:
            if local is not None:
                local.release()
            raise
        if local is not None:
            local.release()

    def _release_later(self, key: str, session: Optional[str], local: Any) -> None:
        """Release ``key`` (held by ``session``) on the releaser thread, then ``local``."""
        with self._unreleased_cond:
            self._unreleased.append((key, session, local))
            if self._releaser is None:
                self._releaser = threading.Thread(target=self._release_loop, daemon=True,
                                                  name="release-%s" % self.id)
                self._releaser.start()

    def _release_loop(self) -> None:
        while True:
            with self._unreleased_cond:
                if not self._unreleased:
                    self._releaser = None
                    return
                key, session, local = self._unreleased[0]
            try:
                self._release_quietly(key, session)
            finally:
                with self._unreleased_cond:
                    self._unreleased.pop(0)
                if local is not None:
                    local.release()

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
        extra = list(checks or ()) + list(host_ops or ())
        released = step.host if final else None
        kept = self._host_kept(released)
        if released and not kept:
            extra.append(op_delete(released))
        run_id = ctx.run_id
        ops = [op_check_session(step.lock, step.session)]
        if write_fact:
            fact["version"] = fact["version"] + 1
            fact["updated"] = time.time()
            ops.append(op_cas(keys.fact(run_id, node_id), fact, step.fact_index))
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
        wakes = ctx.wakes(node_id, step.reached_now)
        room = self.space.max_txn_ops - len(ops) - 2
        if len(wakes) <= room:
            ops.extend(op_set(keys.ready(run_id, w), {}) for w in wakes)
        else:
            for i in range(0, len(wakes), keys.OUTBOX_CHUNK):
                ops.append(op_set(keys.outbox(run_id, "%s-%d-%d" % (node_id, fact["version"], i)),
                                  {"wake": wakes[i:i + keys.OUTBOX_CHUNK]}))
        tail = [op_delete_cas(keys.ready(run_id, node_id), step.ready.index), op_delete(step.lock)] \
            if final else []
        waiting = fact.get("waiting") if final else None
        if waiting:
            # Blocked: check that what it waits on did not move since it was read (batch.py,
            # settle_wakes: the node that moves checks this fact in turn, and wakes it).
            o = waiting["node"]
            ak = keys.fact(run_id, o)
            index = step.awaited_index.get(o, 0)
            tail.insert(0, op_check_index(ak, index) if index else op_check_not_exists(ak))
        # Results of operations with side effects in this commit: kept (journal) until the
        # Space has them, and sent again after an outage instead of running them again.
        jkey = "%s/%s" % (run_id, node_id)
        pending = bool(step.pending) and write_fact
        salvage: List[Op] = []
        if pending:
            salvage = [op_cas(keys.fact(run_id, node_id), dict(fact, inflight=None), step.fact_index)] + ops[2:]
            stale = self._stale_ops(step)
            self.journal.put(jkey, {"ops": [op_to_json(o) for o in salvage],
                                    "stale": [op_to_json(o) for o in stale],
                                    "fact_version": [fact["version"], fact["updated"]],
                                    "worker": self.id, "ts": time.time()})
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
        retry = {keys.ready(run_id, node_id)} | ({keys.fact(run_id, waiting["node"])} if waiting else set())
        if final and not res.ok and res.failed and set(res.failed) <= retry:
            # A neighbour woke this node, or moved what it waits on, while it was evaluated:
            # keep the ready tuple so that the node is evaluated again with what the neighbour
            # just committed.
            if waiting:
                ctx.forget_fact(waiting["node"])
            res = self._send_commit(ops + [op_delete(step.lock)] + extra, pending)
        if res.ok:
            self.stats["commits"] += 1
            if released:
                self._host_released(released, kept)
                step.host = None
            if write_fact:
                step.fact_index = res.index
                ctx.remember_fact(node_id, fact, res.index)
            step.events, step.logs, step.reached_now = [], [], []
            step.attributes, step.other_attributes = {}, {}
            if pending:
                step.pending = []
                self.journal.drop(jkey)
            return True
        if expected and res.failed and set(res.failed) <= expected:
            step.failed = list(res.failed)
            return False
        if pending:
            if self._send_salvage(jkey, [], stale, [fact["version"], fact["updated"]]) is not None:
                self.journal.drop(jkey)
            step.pending = []
        self.stats["lost"] += 1
        log.warning("worker %s: commit of %s/%s refused on %s (lock lost?); another worker retakes it",
                    self.id, run_id, node_id, ",".join(res.failed))
        return False

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
        self._count("stale")
        log.warning("worker %s: %s: operation ran after the node was taken over (stale "
                    "execution, recorded in the trace)", self.id, jkey)
        return False

    def _merged_attributes(self, ctx: RunContext, node_id: str, new: Dict[str, Any]) -> Dict[str, Any]:
        e = self.space.get(keys.attributes(ctx.model, ctx.instance, node_id))
        cur = dict(e.value) if e is not None and isinstance(e.value, dict) else {}
        cur.update(new)
        return cur


class _Step:
    """What one worker thread accumulates while it advances one node, until it commits."""

    def __init__(self, ctx: RunContext, node_id: str, ready: Any, lock: str, session: str):
        self.ctx = ctx
        self.node_id = node_id
        self.ready = ready
        self.lock = lock
        self.session = session
        self.fact: Dict[str, Any] = {}
        self.fact_index = 0
        self.events: List[List[Any]] = []     # rows of events.py
        self.logs: List[Dict[str, Any]] = []
        self.reached_now: List[str] = []
        self.attributes: Dict[str, Any] = {}
        self.other_attributes: Dict[str, Dict[str, Any]] = {}   # outputs of operations run for another end
        self.fact_entry: Any = None
        self.awaited: Dict[str, Any] = {}   # facts of other ends read during this step
        self.awaited_index: Dict[str, int] = {}
        # Events (status stale) of operations with side effects run and not committed yet.
        self.pending: List[List[Any]] = []
        # The host lock this step holds (released by its next commit, or by _drop_host).
        self.host: Optional[str] = None
        self.failed: List[str] = []     # keys of the last commit refused on expected keys


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
