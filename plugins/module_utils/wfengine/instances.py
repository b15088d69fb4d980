# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Expand a model's templates into node instances and relationship instances.

Scaling follows hosting: a template with N default instances hosted on a template with M instances
gives N x M instances, each linked by HostedOn to its own host instance, recursively.  Other
relationships (ConnectsTo, DependsOn, ...) link each source instance to every target instance.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, cast

from . import limits
from .errors import ModelError
from .records import NodeInstance, Nodes, Relationship
# `X as X`: an explicit re-export (mypy); pylint takes it for a useless alias.
# pylint: disable=useless-import-alias,unused-import
from .records import validate_node as validate_node  # its home before records.py

HOSTED_ON = "tosca.relationships.HostedOn"


def instance_id(template: str, number: int) -> str:
    """The id of a node instance: ``<template>_<n>`` (``expand`` numbers them)."""
    return "%s_%d" % (template, number)


def split_instance_id(node_id: str) -> Optional[Tuple[str, int]]:
    """``<template>_<n>`` -> (template, n); None for an id without that form."""
    template, sep, index = node_id.rpartition("_")
    if not sep or not index.isdigit():
        return None
    return template, int(index)


def natural_key(node_id: str) -> Tuple[str, int]:
    """Sort key of node ids: by template, then by number (``c_2`` before ``c_10``)."""
    base, dummy, num = node_id.rpartition("_")
    return (base, int(num)) if num.isdigit() else (node_id, 0)


def _host_requirement(model: Any, tname: str) -> Optional[Any]:
    tpl = model.templates[tname]
    hosts = [r for r in tpl.requirements if model.relationship_types[r.relationship].is_a(HOSTED_ON)]
    if len({r.node for r in hosts}) > 1:
        # Several HostedOn requirements naming one host (tosca-parser's test_requirements.yaml
        # writes `req1` and `host` for the same web server) are one host; two hosts are not.
        raise ModelError("%s: template has %d HostedOn requirements on different templates (%s); a node has "
                         "one host" % (tname, len(hosts), ", ".join("%s -> %s" % (r.name, r.node) for r in hosts)))
    return hosts[0] if hosts else None


def hosting_order(model: Any) -> List[str]:
    """Templates ordered hosts first; a HostedOn cycle is an error naming the cycle."""
    order: List[str] = []
    state: Dict[str, int] = {}

    def visit(name: str, chain: List[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cyc = chain[chain.index(name):] + [name]
            raise ModelError("HostedOn cycle: %s" % " -> ".join(cyc))
        state[name] = 1
        req = _host_requirement(model, name)
        if req is not None:
            visit(req.node, chain + [name])
        state[name] = 2
        order.append(name)

    for name in sorted(model.templates):
        visit(name, [])
    return order


def check_counts(model: Any, limit: Optional[int] = None) -> int:
    """The node instances ``expand`` would create, computed from the counts alone (the product of
    ``default_instances`` along each HostedOn chain), refused over the limit before a single one
    is created: ``default_instances: 10000000`` costs milliseconds, not gigabytes."""
    limit = limits.max_instances() if limit is None else limit
    per: Dict[str, int] = {}
    total = 0
    for tname in hosting_order(model):
        req = _host_requirement(model, tname)
        per[tname] = model.templates[tname].scaling.default_instances * (per[req.node] if req is not None else 1)
        total += per[tname]
        if total > limit:
            raise ModelError("%s: %d node instances (default_instances along its HostedOn chain), %d in all so "
                             "far: more than the %d allowed (set %s to raise the limit)"
                             % (tname, per[tname], total, limit, limits.MAX_INSTANCES_ENV))
    links = 0
    rel_limit = limit * limits.RELATIONSHIPS_PER_INSTANCE
    for tname in sorted(model.templates):
        for req in model.templates[tname].requirements:
            hosted = model.relationship_types[req.relationship].is_a(HOSTED_ON)
            links += per[tname] * (1 if hosted else per.get(req.node, 0))
            if links > rel_limit:
                raise ModelError("%s: requirement '%s': %d relationship instances (each of %d source instances "
                                 "to each of %d targets): more than the %d allowed (%d per allowed node instance)"
                                 % (tname, req.name, per[tname] * per.get(req.node, 0), per[tname],
                                    per.get(req.node, 0), rel_limit, limits.RELATIONSHIPS_PER_INSTANCE))
    return total


def _number(node_id: str) -> int:
    """The ``<n>`` of an id ``<template>_<n>`` (-1 when it has none)."""
    parsed = split_instance_id(node_id)
    return parsed[1] if parsed is not None else -1


def expand(model: Any, previous: Optional[Mapping[str, NodeInstance]] = None,
           drop_first: Iterable[str] = ()) -> Nodes:
    """Node instances of a model, keyed by id (``<template>_<n>``), as JSON-ready dicts::

        {"id", "template", "type", "host": id | None,
         "out": [{"id", "type", "requirement", "source", "target", "source_type", "target_type"}],
         "in":  [same dicts, for relationships whose target is this instance]}

    With ``previous`` (the node instances of the deployment's current generation), identities
    are stable (docs/day2.md): on each host instance that still exists, the instances of a
    template that were there keep their ids, lowest numbers first, up to the new count (scale-in
    drops the highest-numbered of that host, after those named in ``drop_first``, which go
    first); missing ones get new numbers above every number
    the template used so far.  A relationship instance id is ``<source>:<requirement>#<index>:<target>``
    (the index finds its operations: resolver.py), so it is stable with its ends as long as the
    requirement keeps its place in the template.  Without ``previous``, instances are numbered
    per template in hosting order.
    """
    check_counts(model)
    by_template: Dict[str, List[str]] = {}
    nodes: Nodes = {}
    kept: Dict[Tuple[str, Optional[str]], List[str]] = {}      # (template, host or None) -> previous ids, by number
    next_number: Dict[str, int] = {}
    for old in (previous or {}).values():
        kept.setdefault((old["template"], old.get("host")), []).append(old["id"])
        next_number[old["template"]] = max(next_number.get(old["template"], 0), _number(old["id"]) + 1)
    named = set(drop_first)
    for previous_ids in kept.values():
        previous_ids.sort(key=lambda i: (i in named, _number(i), i))
    for tname in hosting_order(model):
        tpl = model.templates[tname]
        n = tpl.scaling.default_instances
        req = _host_requirement(model, tname)
        hosts: List[Optional[str]] = list(by_template[req.node]) if req is not None else [None]
        ids: List[str] = []
        for host in hosts:
            old_ids = [i for i in kept.get((tname, host), []) if i not in nodes][:n]
            for k in range(n):
                if k < len(old_ids):
                    nid = old_ids[k]
                else:
                    num = next_number.get(tname, 0) if previous else len(ids)
                    nid = instance_id(tname, num)
                    while nid in nodes:
                        num += 1
                        nid = instance_id(tname, num)
                    next_number[tname] = num + 1
                ids.append(nid)
                nodes[nid] = {"id": nid, "template": tname, "type": tpl.type, "host": host,
                              "out": [], "in": []}
        by_template[tname] = ids

    for tname in sorted(model.templates):
        tpl = model.templates[tname]
        for i, req in enumerate(tpl.requirements):
            hosted = model.relationship_types[req.relationship].is_a(HOSTED_ON)
            target_type = model.templates[req.node].type
            for src in by_template[tname]:
                # a HostedOn requirement's source has its host: the instance it was made on
                targets = [cast(str, nodes[src]["host"])] if hosted else by_template[req.node]
                for tgt in targets:
                    rel: Relationship = {
                        "id": "%s:%s#%d:%s" % (src, req.name, i, tgt), "type": req.relationship,
                        "requirement": req.name, "source": src, "target": tgt,
                        "source_type": tpl.type, "target_type": target_type}
                    nodes[src]["out"].append(rel)
                    nodes[tgt]["in"].append(rel)
    return nodes


ROOTS = "~roots"     # hosting map entry: {node id: root host id} where the numbering rule fails


def _true_roots(nodes: Mapping[str, NodeInstance]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for nid in nodes:
        cur, seen = nid, 0
        while (host := nodes[cur].get("host")) and seen < 64:
            cur = host
            seen += 1
        out[nid] = cur
    return out


def hosting_map(nodes: Mapping[str, NodeInstance]) -> Dict[str, Any]:
    """``{template: [host template, instances per host instance]}`` of the hosted templates:
    with the numbering of a fresh ``expand`` (the k-th instance of a template with n instances
    per host sits on host instance k // n), enough to find any instance's root host from its id
    alone.  A generation made by an update keeps the ids of the previous one (stable identities),
    so that rule no longer holds for every node: those nodes are listed under ``"~roots"``
    (``~`` is no template name), and only those, so a fresh instance's map stays small."""
    count: Dict[str, int] = {}
    host_template: Dict[str, str] = {}
    for node in nodes.values():
        count[node["template"]] = count.get(node["template"], 0) + 1
        host = node.get("host")
        if host:
            host_template[node["template"]] = nodes[host]["template"]
    out: Dict[str, Any] = {t: [h, max(1, count[t] // max(1, count[h]))] for t, h in sorted(host_template.items())}
    exceptions = {nid: root for nid, root in sorted(_true_roots(nodes).items())
                  if nid != root and root_of(nid, out) != root}
    if exceptions:
        out[ROOTS] = exceptions
    return out


def root_of(node_id: str, hosting: Dict[str, Any]) -> str:
    """The root host instance of ``node_id`` (itself if not hosted), from ``hosting_map``."""
    exceptions = hosting.get(ROOTS)
    if isinstance(exceptions, dict):
        root = exceptions.get(node_id)
        if isinstance(root, str):
            return root
    parsed = split_instance_id(node_id)
    if parsed is None:
        return node_id
    template, k = parsed
    seen = 0
    while template in hosting and seen < 64:
        entry = hosting[template]
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                and isinstance(entry[1], int) and entry[1] > 0):
            return node_id
        template, k = entry[0], k // entry[1]
        seen += 1
    return instance_id(template, k)
