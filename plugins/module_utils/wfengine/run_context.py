# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a worker knows about a run (``RunContext``: immutable once the run started, shared by
its threads) and about the node one of its threads advances (``_Step``: accumulated until the
step commits).  Both are rebuilt from the Space at will: a worker keeps nothing another needs."""
from __future__ import annotations

import itertools
import threading
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from . import deployments, keys
from .errors import NotFound, SpaceDataError, WfError
from .facts import new_fact
from .instances import natural_key, split_instance_id, validate_node
from .locality import Zones
from .placement import host_address
from .records import Fact, NodeInstance, Nodes, Relationship
from .rules import Instr, RuleSet, rule_set, validate_rule_set
from .run_records import rules_key_of, run_record
from .space.base import Entry, Space


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
        self._nodes: Nodes = {}
        self._programs: Dict[str, List[Instr]] = {}
        self._rels: Dict[str, Dict[str, Relationship]] = {}
        self._wakes: Dict[Tuple[str, str], Tuple[str, ...]] = {}
        self._lock = threading.Lock()
        # Facts as this worker last committed or read them (node -> (fact, index)).  A hint, never
        # the truth: a decision taken on a stale one is caught by the index checks of the commit
        # (batch.py), and a wait found satisfied stays satisfied (states reached only grow).
        self._facts: Dict[str, Tuple[Optional[Fact], int]] = {}
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
        rules = validate_rule_set(self.workflow, entry.value)
        with self._lock:
            if self._rules is None:
                self._rules = rule_set(self.workflow, rules, self.template_instances)

    @property
    def fresh(self) -> Set[str]:
        """Nodes whose fact is still the one start_run wrote, as far as this worker knows."""
        return self._fresh

    def known_fact(self, node_id: str) -> Optional[Tuple[Optional[Fact], int]]:
        hit = self._facts.get(node_id)
        if hit is None and node_id in self._fresh:
            return new_fact(node_id), self._fresh_index
        return hit

    def remember_fact(self, node_id: str, fact: Optional[Fact], index: int) -> None:
        """Keep a copy (the caller goes on changing its fact), unless a newer one is known: a
        read that returns after another lane's commit must not bring an older index back."""
        if fact is not None:
            kept = fact.copy()
            kept["reached"] = list(fact["reached"])
            fact = kept
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

    def node(self, node_id: str) -> NodeInstance:
        with self._lock:
            n = self._nodes.get(node_id)
        if n is None:
            n = deployments.read_node(self._space, self.model, self.instance, self.generation, node_id)
            with self._lock:
                self._nodes[node_id] = n
        return n

    def relationship(self, node_id: str, rel_id: str) -> Optional[Relationship]:
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
        return sorted((i for i in ids if (split_instance_id(i) or ("",))[0] == template),
                      key=natural_key)

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


class _Step:
    """What one worker thread accumulates while it advances one node, until it commits."""

    def __init__(self, ctx: RunContext, node_id: str, ready: Any, lock: str, session: str):
        self.ctx = ctx
        self.node_id = node_id
        self.ready = ready
        self.lock = lock
        self.session = session
        self.fact: Fact = new_fact(node_id)     # as read by the step
        self.fact_index = 0
        self.events: List[List[Any]] = []     # rows of events.py
        self.logs: List[Dict[str, Any]] = []
        self.reached_now: List[str] = []
        self.attributes: Dict[str, Any] = {}
        self.other_attributes: Dict[str, Dict[str, Any]] = {}   # outputs of operations run for another end
        self.fact_entry: Any = None
        self.awaited: Dict[str, Optional[Fact]] = {}   # facts of other ends read during this step
        self.awaited_index: Dict[str, int] = {}
        # Events (status stale) of operations with side effects run and not committed yet.
        self.pending: List[List[Any]] = []
        # The host lock this step holds (released by its next commit, or by _drop_host).
        self.host: Optional[str] = None
        self.failed: List[str] = []     # keys of the last commit refused on expected keys
