# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host locks of a worker (TOSCA 1.3: operations of nodes on one host instance run one at a time).

Why a module of their own: a host lock is held across a step's commits (taken by the checkpoint,
kept for the step's next operation on the same host, handed to a waiting step of the same
worker), released by a thread of its own when the Space does not answer, and audited after long
outages; the rules that keep that safe read better together than spread over the worker.
"""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from . import keys
from .errors import SpaceError, WfError, WorkerInterrupt
from .space.base import op_check_session, op_delete, op_lock
from .records import NodeInstance

if TYPE_CHECKING:
    from .run_context import RunContext, _Step
    from .space.base import Space

log = logging.getLogger("wfengine.worker")


class HostLocks:
    """Mixin of Worker.  Uses its Space (``space``), sessions (``session``, ``session_lost``,
    ``_lost``), ``_stop``, ``_ctx_lock`` and the host tables it creates (``_host_locks``,
    ``_host_sessions``, ``_host_waiters``, ``_unreleased``, ``_unreleased_cond``, ``_releaser``),
    and ``_release_quietly``."""

    id: str
    space: Space
    session: Optional[str]
    _lost: Set[str]
    _stop: threading.Event
    _ctx_lock: threading.Lock
    _host_locks: Dict[str, threading.Lock]
    _host_sessions: Dict[str, str]
    _host_waiters: Dict[str, int]
    _unreleased: List[Tuple[str, Optional[str], Any]]
    _unreleased_cond: threading.Condition
    _releaser: Optional[threading.Thread]

    if TYPE_CHECKING:  # pragma: no cover (the Worker's other parts)
        def session_lost(self, session: Optional[str]) -> bool:
            ...

        def _release_quietly(self, lock_key: str, session: Optional[str] = None) -> None:
            ...

    def _host_key(self, ctx: RunContext, node: NodeInstance) -> Optional[str]:
        """TOSCA 1.3 hosted nodes concurrency: operations of nodes on one host instance run one at
        a time.  The lock is the root host's (a dead worker's session drops it); None when the run
        does not serialize them."""
        if not ctx.record.get("serialize_hosted", True):
            return None
        root = node
        while host := root.get("host"):
            root = ctx.node(host)
        return keys.host_lock(ctx.run_id, root["id"])

    def _local_host_lock(self, hk: str) -> Any:
        """Threads of this worker share its session, and a session may re-acquire what it holds:
        a local lock serializes them, the Space lock serializes workers."""
        with self._ctx_lock:
            return self._host_locks.setdefault(hk, threading.Lock())

    def _host_lock(self, step: "_Step", node: NodeInstance, hk: str) -> Any:
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

    def _host_in_use(self, hk: str) -> bool:
        """Whether a task of this worker holds the host lock ``hk`` or is taking it: the lock is
        recorded in ``_host_sessions`` while held, and its local lock is held from before the
        Space is asked until after the release (the releaser thread's included)."""
        with self._ctx_lock:
            if hk in self._host_sessions:
                return True
            local = self._host_locks.get(hk)
        return local is not None and local.locked()
