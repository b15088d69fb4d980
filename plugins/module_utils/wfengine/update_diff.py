# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an update of a deployment would do (``wfctl update --check``, ``wfctl plan``, and the
first half of every update): read the instance and the model's current version, compute the new
generation, and sort node and relationship instances into novel, obsolete, modified and
unchanged; nothing here writes.

Why a file of its own: the diff is the update's reading half; ``updates.py`` applies it (writes
the generations and starts the run) and ``update_rules.py`` composes the run's rules.  Identities
are stable (instances.expand with ``previous``), so a node instance of both generations is
modified exactly when its template's values change (docs/day2.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set, Tuple

from . import catalog, deployments
from .errors import SpaceDataError, WfError
from .instances import expand, natural_key
from .operation.function_eval import input_values
from .records import InstanceHead, ModelHead, Nodes
from .space.base import Entry, Space
from .tosca.checks import check_input_values
from .tosca.model import NodeTemplate
from .tosca.scaling import KEYS as SCALING_KEYS
from .tosca.scaling import apply_counts, apply_inputs
from .tosca.sensitive import check_given_inputs
from .update_rules import INSTALL, UNINSTALL, UPDATE, Change, compose


def _comparable(tpl: Dict[str, Any]) -> Dict[str, Any]:
    """A template without what does not change its node instances: counts (scaling), the file it
    was read from, its description."""
    out = {k: v for k, v in tpl.items() if k not in ("scaling", "file", "description", "name")}
    caps = {}
    for name, cap in (tpl.get("capabilities") or {}).items():
        if isinstance(cap, dict) and isinstance(cap.get("properties"), dict):
            props = {k: v for k, v in cap["properties"].items() if k not in SCALING_KEYS}
            cap = dict(cap, properties=props)
        caps[name] = cap
    out["capabilities"] = caps
    return out


def _changed_inputs(space: Space, model: str, head: InstanceHead,
                    values: Dict[str, Any]) -> Set[str]:
    """Inputs whose value the update changes: given ones, and defaults the new version changed."""
    old_given = head.get("inputs") or {}
    try:
        old_defs = catalog.read_meta(space, model, head["model_digest"]).get("inputs") or {}
        old_values = input_values(old_defs, dict(old_given))
    except WfError:
        old_values = dict(old_given)
    return {k for k in set(values) | set(old_values) if values.get(k) != old_values.get(k)}


def _functions(value: Any, name: str) -> List[Any]:
    """The arguments of every call of the TOSCA function ``name`` inside ``value``."""
    out: List[Any] = []
    if isinstance(value, dict):
        if len(value) == 1 and name in value:
            out.append(value[name])
        for v in value.values():
            out.extend(_functions(v, name))
    elif isinstance(value, list):
        for v in value:
            out.extend(_functions(v, name))
    return out


def _fed_by_inputs(raw: Dict[str, Any], changed: Set[str], values_changed: Set[str]) -> Set[str]:
    """Templates whose values change although their text does not (TOSCA 2.0 4.4: a node whose
    properties change is modified): those that read one of the ``changed`` inputs (``get_input``,
    anywhere in the template: properties, capabilities, requirements' filters, operation
    inputs), then, until nothing is added, those that read by its name (``get_property: [name,
    ...]``) a property of such a template or of one whose properties the new version changed
    (``values_changed``).  SELF, HOST, SOURCE and TARGET are not followed (docs/day2.md)."""
    fed: Set[str] = set()
    if not changed and not values_changed:
        return fed
    for t, tpl in raw.items():
        for arg in _functions(tpl, "get_input"):
            name = arg[0] if isinstance(arg, list) and arg else arg
            if isinstance(name, str) and name in changed:
                fed.add(t)
                break
    grown = True
    while grown:
        grown = False
        for t, tpl in raw.items():
            if t in fed:
                continue
            for arg in _functions(tpl, "get_property"):
                if isinstance(arg, list) and arg and arg[0] in (fed | values_changed) \
                        and arg[0] != t:
                    fed.add(t)
                    grown = True
                    break
    return fed


def _descendants(nodes: Nodes, roots: List[str]) -> List[str]:
    """``roots`` and every node hosted on them, transitively."""
    hosted: Dict[str, List[str]] = {}
    for nid, n in nodes.items():
        host = n.get("host")
        if host:
            hosted.setdefault(host, []).append(nid)
    out, stack = set(), list(roots)
    while stack:
        nid = stack.pop()
        if nid in out:
            continue
        out.add(nid)
        stack.extend(hosted.get(nid, []))
    return sorted(out)


class _Model:
    def __init__(self, templates: Dict[str, Any], rel_types: Dict[str, Any]):
        self.templates = templates
        self.relationship_types = rel_types


class _RelKind:
    def __init__(self, ancestors: Any):
        self._ancestors = set(ancestors)

    def is_a(self, name: str) -> bool:
        return name in self._ancestors


def _new_generation(space: Space, model: str, head: InstanceHead, mhead: ModelHead,
                    meta: Dict[str, Any], old_nodes: Nodes,
                    given: Optional[Dict[str, Any]], counts: Dict[str, int], where: str,
                    remove: Optional[List[str]] = None
                    ) -> Tuple[Nodes, Dict[str, Any], Dict[str, Any]]:
    """(new nodes, new templates, input values) of the model's current version over the old
    generation; counts from ``counts`` (wfctl scale) win over the model's, within min/max; the
    node instances named in ``remove`` are the first a scale-in drops on their host."""
    defs = meta.get("inputs") or {}
    check_given_inputs(defs, given, where)
    check_input_values(defs, given or {}, meta.get("data_types") or {}, where)
    kept = {k: v for k, v in (head.get("inputs") or {}).items() if k in defs}
    values = input_values(defs, dict(kept, **(given or {})))
    raw = catalog.read_templates(space, model, mhead["digest"])
    missing = sorted(set(mhead.get("templates") or []) - set(raw))
    if missing:
        raise SpaceDataError("model %s: version %s is incomplete in the Space (no template %s); "
                             "upload the model again to restore it"
                             % (model, mhead["digest"], ", ".join(missing)))
    templates = {n: NodeTemplate.from_json(v) for n, v in raw.items()}
    apply_inputs(templates, values, where)
    apply_counts(templates, counts, where)
    rel_types = {name: _RelKind(anc) for name, anc in (meta.get("reltypes") or {}).items()}
    nodes = expand(_Model(templates, rel_types), previous=old_nodes, drop_first=remove or ())
    return nodes, raw, values


def _rules(space: Space, model: str, digest: str, workflow: str) -> Dict[str, Any]:
    return catalog.read_rules(space, model, digest, workflow) or {"nodes": {}, "relationships": {}}


@dataclass
class _Versions:
    """The instance as it is, and the generation the model's current version gives it."""

    head: InstanceHead
    mhead: ModelHead
    meta_entry: Entry
    counts: Dict[str, int]
    old_nodes: Nodes
    new_nodes: Nodes
    old_raw: Dict[str, Any]
    new_raw: Dict[str, Any]
    values: Dict[str, Any]

    @property
    def old_digest(self) -> str:
        return str(self.head["model_digest"])

    @property
    def new_digest(self) -> str:
        return str(self.mhead["digest"])


def _check_removable(where: str, remove: Optional[List[str]], old_nodes: Nodes) -> None:
    unknown = [n for n in remove or () if n not in old_nodes]
    if unknown:
        raise WfError("%s has no node instance %s" % (where, ", ".join(unknown)))


def _check_removed(where: str, remove: Optional[List[str]], old_nodes: Nodes,
                   new_nodes: Nodes) -> None:
    staying = [n for n in remove or () if n in new_nodes]
    if staying:
        raise WfError("%s: %s would stay: the update removes fewer instances of %s from %s "
                      "(a count is per host instance; lower it, or name fewer)"
                      % (where, ", ".join(staying), old_nodes[staying[0]]["template"],
                         old_nodes[staying[0]].get("host") or "the topology"))


def _read_versions(space: Space, model: str, instance: str, inputs: Optional[Dict[str, Any]],
                   counts: Optional[Dict[str, int]], remove: Optional[List[str]],
                   where: str) -> _Versions:
    head = deployments.instance_head(space, model, instance)
    old_nodes = deployments.read_nodes(space, model, instance, head)
    mhead = catalog.model_head(space, model)
    meta_entry = catalog.version_entry(space, model, mhead)
    all_counts = dict(head.get("counts") or {})
    all_counts.update(counts or {})
    _check_removable(where, remove, old_nodes)
    new_nodes, new_raw, values = _new_generation(space, model, head, mhead, meta_entry.value,
                                                 old_nodes, inputs, all_counts, where, remove)
    _check_removed(where, remove, old_nodes, new_nodes)
    old_digest, new_digest = head["model_digest"], mhead["digest"]
    old_raw = (catalog.read_templates(space, model, old_digest) if old_digest != new_digest
               else new_raw)
    return _Versions(head, mhead, meta_entry, all_counts, old_nodes, new_nodes, old_raw, new_raw,
                     values)


def _changed_templates(space: Space, model: str, v: _Versions) -> Set[str]:
    """Templates whose node instances the update modifies: their text changed, or their values
    through inputs (``_fed_by_inputs``)."""
    old_raw, new_raw = v.old_raw, v.new_raw
    changed_tpl = {t for t in set(old_raw) & set(new_raw)
                   if _comparable(old_raw[t]) != _comparable(new_raw[t])}
    values_changed = {t for t in changed_tpl
                      if old_raw[t].get("properties") != new_raw[t].get("properties")
                      or _comparable(old_raw[t])["capabilities"]
                      != _comparable(new_raw[t])["capabilities"]}
    inputs_changed = _changed_inputs(space, model, v.head, v.values)
    changed_tpl |= _fed_by_inputs(new_raw, inputs_changed, values_changed)
    return changed_tpl


def _modified(v: _Versions, changed_tpl: Set[str],
              update_rules: Dict[str, Any]) -> Tuple[List[str], List[str]]:
    """``(reinstalled, updated)``: modified nodes (and what they host) reinstalled, and modified
    nodes that run their type's ``update`` workflow instead."""
    old_nodes, new_nodes = v.old_nodes, v.new_nodes
    both = set(new_nodes) & set(old_nodes)
    modified = sorted(n for n in both if new_nodes[n]["template"] in changed_tpl)
    declared = [n for n in modified if new_nodes[n]["type"] in update_rules["nodes"]
                and old_nodes[n]["type"] == new_nodes[n]["type"]]
    reinstall = [n for n in _descendants(new_nodes, [n for n in modified if n not in declared])
                 if n in both]
    declared = [n for n in declared if n not in reinstall]
    return reinstall, declared


def _classify(space: Space, model: str, v: _Versions) -> Change:
    """Sort node and relationship instances into the update's categories (natural order)."""
    old_nodes, new_nodes = v.old_nodes, v.new_nodes
    changed_tpl = _changed_templates(space, model, v)
    install_rules = _rules(space, model, v.new_digest, INSTALL)
    uninstall_rules = _rules(space, model, v.old_digest, UNINSTALL)
    update_rules = _rules(space, model, v.new_digest, UPDATE)
    reinstall, declared = _modified(v, changed_tpl, update_rules)
    old_rels = {r["id"]: r for n in old_nodes.values() for r in n["out"]}
    new_rels = {r["id"]: r for n in new_nodes.values() for r in n["out"]}
    nat = natural_key
    modified = set(reinstall) | set(declared)
    unchanged = sorted((set(new_nodes) & set(old_nodes)) - modified, key=nat)
    return Change(old_nodes, new_nodes, sorted(set(new_nodes) - set(old_nodes), key=nat),
                  sorted(set(old_nodes) - set(new_nodes), key=nat), sorted(reinstall, key=nat),
                  sorted(declared, key=nat), unchanged, old_rels, new_rels,
                  sorted(set(new_rels) - set(old_rels)), sorted(set(old_rels) - set(new_rels)),
                  install_rules, uninstall_rules, update_rules, v.old_digest)


def _summary(model: str, instance: str, v: _Versions, c: Change) -> Dict[str, Any]:
    nat = natural_key
    summary = {"model": model, "instance": instance, "from_version": v.old_digest,
               "to_version": v.new_digest, "novel": c.novel, "obsolete": c.obsolete,
               "modified": sorted(set(c.reinstall) | set(c.declared), key=nat),
               "reinstalled": c.reinstall, "updated": c.declared,
               "relationships": {"novel": c.rel_novel, "obsolete": c.rel_obsolete},
               "inputs_changed": v.values != (v.head.get("inputs") or {}),
               "version_changed": v.old_digest != v.new_digest}
    summary["unchanged"] = c.unchanged
    summary["changed"] = bool(c.novel or c.obsolete or c.reinstall or c.declared
                              or c.rel_novel or c.rel_obsolete)
    return summary


def compute(space: Space, model: str, instance: str, inputs: Optional[Dict[str, Any]] = None,
            counts: Optional[Dict[str, int]] = None,
            remove: Optional[List[str]] = None) -> Dict[str, Any]:
    """What an update of the instance would do, without writing: the categories, and (when
    something changes) the records and rules to write.  ``counts``: per-host instance counts
    of templates (wfctl scale), kept with the instance for later updates; ``remove``: node
    instances a scale-in removes instead of the highest-numbered of their host (each must go)."""
    where = "instance %s/%s" % (model, instance)
    v = _read_versions(space, model, instance, inputs, counts, remove, where)
    c = _classify(space, model, v)
    summary = _summary(model, instance, v, c)
    if not summary["changed"]:
        return summary
    composed = compose(c, where)
    summary.update({"participants": composed.participants, "peers": composed.peers})
    summary["_write"] = {"new_nodes": v.new_nodes, "union": composed.union, "rules": composed.rules,
                         "values": v.values, "counts": v.counts, "head": v.head, "mhead": v.mhead,
                         "meta_entry": v.meta_entry}
    return summary
