# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Zones: which root hosts a worker should own together.

Why.  Workers share out a run's nodes by root host (worker_dispatch.py, ``_hand_ok``).  A relationship
between nodes of two owners costs a Space round trip that a relationship inside one worker does
not: the waker cannot hand the woken node to its own next batch, it checks the other node's fact
in its commit (a check that fails when that worker moved it meanwhile, and a failed transaction
costs a Raft round), and the woken node waits for its owner's listing and claim.  Hashing root
hosts to workers one by one cuts about (n-1)/n of the relationships between hosts (39 % of the
2k benchmark's relationship instances with 3 workers).

So ``start_run`` orders the root hosts so that related hosts sit close to each other (a
breadth-first walk of the graph of relationships between root hosts, Cuthill-McKee style: it
visits low-degree neighbours first, which keeps the bands narrow), cuts that order into zones of
about ``ZONE_NODES`` nodes, and each worker owns a contiguous range of zones.  Contiguous ranges
cut the order in n places only (4 % of the 2k benchmark's relationship instances cross owners),
and they split a run's nodes evenly whatever the workers' ids.  A run smaller than a zone has a
single one: one worker runs it all, which is the fastest schedule for a small run (its chains
never cross workers), while other runs go to other workers (the ranges start at an offset that
depends on the run).

Ownership is a preference, never a guarantee: another worker takes a node that stays ready longer
than ``steal_after``, so a wrong or missing zone map costs speed, not correctness.
"""
from __future__ import annotations

import collections
import zlib
from typing import Any, Dict, Iterable, List, Optional, Sequence

from .instances import root_of, split_instance_id
from .records import Nodes

# Nodes per zone: above a batch (16 nodes) so that a zone's frontier fills a worker's batches,
# small enough that 3 to 6 workers get several zones each from 200 nodes on.
ZONE_NODES = 32


def _roots(nodes: Nodes) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for nid in nodes:
        chain = []
        cur = nid
        while cur not in out and (host := nodes[cur].get("host")):
            chain.append(cur)
            cur = host
        root = out.get(cur, cur)
        out[cur] = root
        for c in chain:
            out[c] = root
    return out


def locality_order(nodes: Nodes) -> List[str]:
    """Root host ids, related ones close to each other; deterministic."""
    root = _roots(nodes)
    adj: Dict[str, Dict[str, int]] = {r: {} for r in set(root.values())}
    for n in nodes.values():
        for rel in n["out"]:
            a, b = root[rel["source"]], root[rel["target"]]
            if a != b:
                adj[a][b] = adj[a].get(b, 0) + 1
                adj[b][a] = adj[b].get(a, 0) + 1

    def by_degree(r: str) -> Any:
        return (len(adj[r]), r)

    seen = set()
    order: List[str] = []
    for start in sorted(adj, key=by_degree):
        if start in seen:
            continue
        seen.add(start)
        queue = collections.deque([start])
        while queue:
            v = queue.popleft()
            order.append(v)
            for u in sorted(adj[v], key=by_degree):
                if u not in seen:
                    seen.add(u)
                    queue.append(u)
    return order


def zone_map(nodes: Nodes, zone_nodes: int = ZONE_NODES,
             spread: bool = False) -> Dict[str, Any]:
    """The run record's ``zones``: ``{"count": Z, "of": {root template: zone | [zone per
    instance]}}``.  Root host ids are ``<template>_<n>`` (instances.expand), so a template whose
    instances share a zone takes one number.

    ``spread``: the run's nodes run real operations (scripts, playbooks).  Then an operation
    costs far more than the Space round trips that cross-worker relationships add, and a small
    run kept on one worker queues its operations on that machine's threads and CPU while the
    others idle: the map has a zone per root host at least, so the workers share it out
    (issue 20)."""
    root = _roots(nodes)
    weight = collections.Counter(root.values())
    order = locality_order(nodes)
    total = sum(weight.values())
    count = max(1, total // max(1, zone_nodes), len(weight) if spread else 1)
    per_template: Dict[str, Dict[int, int]] = {}
    done = 0
    for r in order:
        zone = min(count - 1, done * count // max(1, total))
        done += weight[r]
        template, index = split_instance_id(r) or (r, 0)
        per_template.setdefault(template, {})[index] = zone
    of: Dict[str, Any] = {}
    for template, zones in sorted(per_template.items()):
        values = [zones.get(i, 0) for i in range(max(zones) + 1)]
        of[template] = values[0] if len(set(values)) == 1 else values
    return {"count": count, "of": of}


class Zones:
    """A run's zone map as read back from its record (validated: a malformed map is ignored, and
    ownership then falls back to hashing root hosts)."""

    def __init__(self, value: Any, hosting: Dict[str, Any]):
        self.count = 0
        self._of: Dict[str, Any] = {}
        self._hosting = hosting
        self._cache: Dict[str, Optional[int]] = {}
        if not isinstance(value, dict):
            return
        count, of = value.get("count"), value.get("of")
        if not (isinstance(count, int) and count > 0 and isinstance(of, dict)):
            return

        def ok(z: Any) -> bool:
            return isinstance(z, int) and not isinstance(z, bool) and 0 <= z < count

        for template, z in of.items():
            if not (isinstance(template, str)
                    and (ok(z) or (isinstance(z, list) and z and all(ok(x) for x in z)))):
                return
        self.count, self._of = count, of

    def __bool__(self) -> bool:
        return self.count > 0

    def zone(self, node_id: str) -> Optional[int]:
        """The zone of ``node_id``'s root host, or None if the map does not name it."""
        z = self._cache.get(node_id, -1)
        if z != -1:
            return z
        root = root_of(node_id, self._hosting)
        template, index = split_instance_id(root) or (root, 0)
        entry = self._of.get(template)
        if isinstance(entry, list):
            z = entry[index] if index < len(entry) else None
        else:
            z = entry
        self._cache[node_id] = z
        return z


def hashed_owner(key: str, peers: Iterable[str]) -> str:
    """Rendezvous hashing: the worker of ``peers`` that takes ``key`` (a root host id, a served
    node) first.  Every worker computes the same owner from the same registrations, so they
    claim different nodes instead of colliding; the others take a node that stays ready longer
    than ``steal_after`` (owner busy, or dead and not yet expired)."""
    return max(peers, key=lambda p: zlib.crc32(("%s\0%s" % (p, key)).encode("utf-8")))


def zone_owner(run_id: str, zone: int, count: int, peers: Sequence[str]) -> str:
    """The worker of ``peers`` (sorted, the same list on every worker) that owns ``zone``:
    contiguous ranges of zones, starting at an offset that depends on the run."""
    n = len(peers)
    offset = zlib.crc32(run_id.encode("utf-8")) % n
    return peers[(zone * n // count + offset) % n]


def owns_a_zone(run_id: str, count: int, peers: Sequence[str], worker: str) -> bool:
    """Whether ``worker`` owns at least one of the run's ``count`` zones (as ``zone_owner``):
    a worker that owns none has nothing of the run to do but take over late work."""
    if worker not in peers:
        return False
    if count >= len(peers):
        return True          # the ranges cover every worker
    return any(zone_owner(run_id, z, count, peers) == worker for z in range(count))
