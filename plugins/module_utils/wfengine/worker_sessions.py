# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A worker's Consul session: creation, registration, renewal, and what happens after outages.

Why a module of their own: fencing (issue 17) rests on them.  A step starts an operation only
while its session is provably live (``session_lost``); the renewal notices a lost session and
opens another; and after an outage past the client's retries it audits the locks that Consul may
have applied late (``_audit_locks``).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Dict, Optional, Set, Tuple, cast

from . import keys
from .errors import WfError
from .space.base import op_delete_cas, op_set

if TYPE_CHECKING:  # pragma: no cover
    from .run_context import RunContext
    from .space.base import Space

log = logging.getLogger("wfengine.worker")

# Seconds during which, once the Space answers again after requests went unanswered, the renewal
# thread releases locks of this worker's sessions that no task uses (Sessions._audit_locks).
AUDIT_AFTER_OUTAGE = 60.0


class Sessions:
    """Mixin of Worker.  Uses ``space``, ``id``, ``ttl``, ``_stop``, the session's state
    (``session``, ``_renewed_at``, ``_registered``, ``_lost``, ``_unanswered``, ``_audit_until``),
    ``_contexts`` (under ``_ctx_lock``), ``_inflight`` (under ``_inflight_lock``), ``_count``
    and ``_host_in_use`` (HostLocks)."""

    space: Space
    id: str
    ttl: float
    threads: int
    boot: str
    serves: Tuple[str, ...]
    session: Optional[str]
    _renewed_at: float
    _registered: bool
    _lost: Set[str]
    _unanswered: bool
    _audit_until: float
    _stop: threading.Event
    _contexts: Dict[str, RunContext]
    _ctx_lock: threading.Lock
    _inflight: Set[Tuple[str, str]]
    _inflight_lock: threading.Condition

    if TYPE_CHECKING:  # pragma: no cover (the Worker's other parts)
        def _count(self, name: str, n: int = 1) -> None:
            ...

        def _host_in_use(self, hk: str) -> bool:
            ...

    def _new_session(self) -> None:
        sent = time.monotonic()
        self.session = self.space.session_create("wf-worker-%s" % self.id, self.ttl, behavior="delete")
        self._renewed_at = sent
        self._registered = False
        self._register()

    def _register(self) -> None:
        """Registration: peers split the ready nodes between the live workers they see.  Made
        again by the renewal if it failed (a new session opened as Consul came back)."""
        # (after _new_session: the worker has a session)
        self.space.acquire(keys.worker(self.id), cast(str, self.session),
                           {"host": socket.gethostname(), "pid": os.getpid(), "threads": self.threads,
                            "boot": self.boot,
                            "serves": list(self.serves)})
        self._registered = True
        # Served hosts outlive the session on purpose: when this worker dies, the operations of
        # its hosts wait for it (or a worker that serves the same names) instead of running
        # elsewhere.  ``wfctl serves --forget`` removes a claim for good.
        if self.serves:
            self.space.write_chunked(op_set(keys.served(name, self.id),
                                            {"since": time.time(), "host": socket.gethostname()})
                                     for name in self.serves)

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
                # (serve opened the session before it started this thread)
                if self.space.session_renew(cast(str, self.session)):
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
