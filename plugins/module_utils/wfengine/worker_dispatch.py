# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A worker's loop and dispatch: one blocking query on ``q/``, then which ready nodes to take now.

Why a module of its own: who takes what (zones of root hosts, served hosts, late work of busy or
dead owners, finalizing runs that went quiet) is a policy of its own; the steps themselves
(worker.py, batch.py) never look at it.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

from . import keys
from .errors import SpaceError, WfError
from .instances import root_of
from .locality import hashed_owner, owns_a_zone, zone_owner

if TYPE_CHECKING:  # pragma: no cover
    from .attempts import AttemptWatch
    from .run_context import RunContext
    from .space.base import Space

log = logging.getLogger("wfengine.worker")

# What submitting a batch of nodes to the pool gave (Worker._submit).
SUBMITTED, BUSY, INFLIGHT = "submitted", "busy", "inflight"


def _parse_listing(qkeys: List[str], worker_id: str
                   ) -> Tuple[Dict[str, Dict[str, Any]], Set[str], Dict[str, Set[str]]]:
    """A listing of ``q/``: per run, its keys by kind (``run``, ``cancel``: present; ``r``,
    ``o``: names; ``l``: locked names; ``h``: host locks), the live workers, and the served
    hosts (name -> worker ids)."""
    groups: Dict[str, Dict[str, Any]] = {}
    peers = {worker_id}
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
    return groups, peers, served


class Dispatch:
    """Mixin of Worker.  Uses ``space``, ``id``, ``poll``, ``steal_after``, ``lanes``, ``_stop``,
    ``_peers``, ``_idle``, ``_recheck``, the task tables (``_inflight``, ``_lanes_busy``,
    ``_completions``, under ``_inflight_lock``), ``context`` and the submission of batches
    (``_submit``, ``_take_tokens``, ``_from_backlog``, ...) of worker.py."""

    space: Space
    id: str
    poll: float
    steal_after: float
    batch: int
    lanes: int
    attempts: AttemptWatch
    _stop: threading.Event
    _peers: List[str]
    _served: Dict[str, Set[str]]
    _seen: Dict[Tuple[str, str], float]
    _idle: bool
    _recheck: Optional[float]
    _canceled: Set[str]
    _inflight: Set[Tuple[str, str]]
    _inflight_lock: threading.Condition
    _lanes_busy: int
    _completions: int
    _backlog: Dict[str, Dict[str, None]]

    if TYPE_CHECKING:  # pragma: no cover (the Worker's other parts)
        def context(self, run_id: str) -> RunContext:
            ...

        def _count(self, name: str, n: int = 1) -> None:
            ...

        def _submit(self, pool: ThreadPoolExecutor, tokens: List[Tuple[str, str]],
                    fn: Callable[..., Any], *args: Any, force: bool = False,
                    lane: bool = False) -> str:
            ...

        def _finalize(self, run_id: str) -> None:
            ...

        def _fan_out(self, run_id: str, ident: str) -> None:
            ...

        def _stop_operations(self, run_id: str) -> None:
            ...

        def _take_batch(self, run_id: str, node_ids: List[str]) -> Set[Tuple[str, str]]:
            ...

    def _owner(self, node: str) -> str:
        """The live worker that takes ``node`` (a root host id) first, for a run whose record has
        no zone map (see _hand_ok): locality.hashed_owner over the registered peers."""
        return hashed_owner(node, self._peers)

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
        groups, peers, served = _parse_listing(qkeys, self.id)
        self._peers = sorted(peers)
        self.attempts.saw_peers(peers)
        self._served = served
        canceled = {run for run, g in groups.items() if g["cancel"]}
        for run in sorted(canceled - self._canceled):
            self._stop_operations(run)
        self._canceled = canceled
        left = False
        seen: Dict[Tuple[str, str], float] = {}
        self._recheck = None
        for run, g in groups.items():
            if g["run"] and self._dispatch_run(run, g, pool, seen):
                left = True
        self._seen = seen
        with self._inflight_lock:
            for run in [r for r in self._backlog if r not in groups]:
                del self._backlog[run]
            busy = bool(self._inflight)
        self.attempts.keep_runs(set(groups))
        self._idle = not (left or busy or len(self._peers) <= 1
                          or any(self._owns_some(run) for run, g in groups.items() if g["run"]))
        return left

    def _dispatch_run(self, run: str, g: Dict[str, Any], pool: ThreadPoolExecutor,
                      seen: Dict[Tuple[str, str], float]) -> bool:
        """Submit what to do now for the running ``run`` (its keys of the listing: ``g``): end
        it if it went quiet, fan its outboxes out, take its ready nodes.  True when something
        was left for a later look (busy, or a node of this worker still finishing)."""
        quiet = not g["l"] and not g["h"] and (g["cancel"] or (not g["r"] and not g["o"]))
        if quiet and self._ends(run, seen):
            self._submit(pool, [(run, "~finalize")], self._finalize, run)
        if g["cancel"] or quiet:
            # Cancel: nothing new is scheduled; once the steps in flight are committed, the
            # run ends.
            return False
        left = self._submit_fan_outs(run, g, pool)
        with self._inflight_lock:
            cands = [n for n in g["r"] if n not in g["l"] and (run, n) not in self._inflight]
            inflight = len(cands) < len(g["r"]) - len(g["l"] & set(g["r"]))
            free = self.lanes - self._lanes_busy
        if inflight:
            left = True   # a node of ours is still finishing: look again when it ends
        cands = self._not_deferred(run, cands)
        cands = self._mine(run, cands, seen, max(0, free) * self.batch)
        if cands and free <= 0:
            left = True
        elif cands and self._submit_batches(run, cands, pool):
            left = True
        if self.lanes == 1:
            with self._inflight_lock:
                # What the lane did not take: it goes on with these when its batch ends.
                self._backlog[run] = {n: None for n in cands if (run, n) not in self._inflight}
        return left

    def _submit_fan_outs(self, run: str, g: Dict[str, Any], pool: ThreadPoolExecutor) -> bool:
        """Submit the fan-out of the run's outboxes no task holds; True when some were not."""
        left = False
        for ident in g["o"]:
            if ("~o-" + ident) not in g["l"]:
                if self._submit(pool, [(run, "~o-" + ident)], self._fan_out, run,
                                ident) != SUBMITTED:
                    left = True
        return left

    def _submit_batches(self, run: str, cands: List[str], pool: ThreadPoolExecutor) -> bool:
        """Submit ``cands`` to the lanes by batches; True when some were not taken."""
        left = False
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
        return left

    def _owns_some(self, run: str) -> bool:
        """Whether some node of ``run`` may be this worker's (without a zone map: any)."""
        try:
            zones = self.context(run).zones
        except WfError:
            return True
        return not zones or owns_a_zone(run, zones.count, self._peers, self.id)

    def _not_deferred(self, run: str, cands: List[str]) -> List[str]:
        """The candidates not left to another worker's attempt for now (attempts.py); when to
        look again at the others."""
        kept = []
        for n in cands:
            wait = self.attempts.deferred_for(run, n)
            if wait <= 0:
                kept.append(n)
            elif self._recheck is None or wait < self._recheck:
                self._recheck = wait
        return kept

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
            if self._hand_ok(run, n, ctx) or self.attempts.abandoned(run, n):
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
                return bool(alive) and hashed_owner(node_id, alive) == self.id
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
