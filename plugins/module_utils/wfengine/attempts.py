# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether an operation attempt another worker recorded may still be committed by it.

After an outage or a pause longer than the session TTL, every worker's session is gone at once
and the nodes they held are free.  The first worker back must not run again an operation whose
worker is alive and holds its result (it sends it with a CAS on the fact, see architecture.md,
"Fencing"): it leaves the node for a while instead.  The worker that recorded the attempt is
known by its id and its ``boot`` (one per process), so a restarted worker of the same id counts
as another one.  A worker that is not registered counts as alive for ``grace`` seconds after
this worker first noticed it missing: after a collective expiry, peers re-register one by one.
"""
from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Dict, Optional, Set, Tuple

# How long a node left for its attempt's worker is not claimed again (doubling up to MAX).
DEFER_FIRST = 0.25
DEFER_MAX = 4.0


def new_boot() -> str:
    """A token for this worker process: a restart with the same id gets another one."""
    return uuid.uuid4().hex[:12]


def attempt_may_be_delivered(attempt: Optional[Dict[str, Any]], worker_id: str,
                             registration: Any, absent_for: float, grace: float) -> bool:
    """Whether the worker that recorded ``attempt`` (a fact's ``inflight``) may still commit
    its result, so that ``worker_id`` must not run the operation again now.

    ``registration``: the value of that worker's registration key (None when not registered);
    ``absent_for``: how long this worker has seen it unregistered.  An attempt of this worker,
    of an older engine (no ``boot``), or handed back by a worker that stopped, is run again."""
    if not isinstance(attempt, dict):
        return False
    other, boot = attempt.get("worker"), attempt.get("boot")
    if not other or other == worker_id or not boot or attempt.get("handed_back"):
        return False
    if registration is not None:
        return isinstance(registration, dict) and registration.get("boot") == boot
    return absent_for < grace


class AttemptWatch:
    """What a worker remembers to apply ``attempt_may_be_delivered``: since when each peer is
    missing from its listings, the nodes it left for another worker (not claimed again before
    their time), and the nodes whose attempt it recorded and gave up before starting (its own
    again, whoever owns them: nobody else runs them while it lives)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._missing_since: Dict[str, float] = {}
        self._deferred: Dict[Tuple[str, str], Tuple[float, float]] = {}
        self._abandoned: Set[Tuple[str, str]] = set()

    def saw_peers(self, peers: Set[str]) -> None:
        """A listing showed these workers registered."""
        with self._lock:
            for w in peers:
                self._missing_since.pop(w, None)

    def absent_for(self, worker: str, now: Optional[float] = None) -> float:
        """How long ``worker`` has been missing, counted from when this worker first noticed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return now - self._missing_since.setdefault(worker, now)

    def defer(self, run: str, node: str, now: Optional[float] = None) -> None:
        """Leave ``node`` alone for a while, longer each time in a row."""
        now = time.monotonic() if now is None else now
        with self._lock:
            dummy, delay = self._deferred.get((run, node), (0.0, DEFER_FIRST / 2))
            delay = min(DEFER_MAX, delay * 2)
            self._deferred[(run, node)] = (now + delay, delay)

    def deferred_for(self, run: str, node: str, now: Optional[float] = None) -> float:
        """Seconds before ``node`` may be claimed again (0: now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            entry = self._deferred.get((run, node))
        return max(0.0, entry[0] - now) if entry else 0.0

    def settled(self, run: str, node: str) -> None:
        """The node was taken and its attempt dealt with: no more deferring or abandonment."""
        with self._lock:
            self._deferred.pop((run, node), None)
            self._abandoned.discard((run, node))

    def abandon(self, run: str, node: str) -> None:
        """This worker recorded an attempt on ``node`` and gave the node up before it ran."""
        with self._lock:
            self._abandoned.add((run, node))

    def abandoned(self, run: str, node: str) -> bool:
        with self._lock:
            return (run, node) in self._abandoned

    def keep_runs(self, runs: Set[str]) -> None:
        """Only these runs are running: nothing of the others to remember."""
        with self._lock:
            for k in [k for k in self._deferred if k[0] not in runs]:
                del self._deferred[k]
            self._abandoned = {k for k in self._abandoned if k[0] in runs}
