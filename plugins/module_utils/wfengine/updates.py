# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Move a deployment to the model's current version, new inputs or new counts (``wfctl update``,
``wfctl scale``): one *update* run, distributed and resumable like any run (docs/day2.md).

Why a run over crafted records, not a new engine path.  Workers run programs built by a RuleSet
from rules and node records (rules.py).  An update compares the instance's generation with the
one the new model gives (identities are stable: instances.expand with ``previous``) and sorts node
and relationship instances into novel, obsolete, modified and unchanged.  It then writes, besides
the new generation, an *update generation*: every node of both, each record tagged with a virtual
type (``install|T`` for a novel node, ``uninstall|T`` for an obsolete one, ``reinstall|T|T'`` for a
modified one and what it hosts, ``update|T`` for a modified node whose type declares an ``update``
workflow, ``peer|T`` for an unchanged node with relationship instances added or removed) and each
changed relationship instance with a virtual relationship type whose weavings say what each end
does.  The rules of those virtual types are composed from the stored install and uninstall rules
of the two versions and stored with the update generation; ``UpdateRuleSet`` reads the tags, so
every worker builds the same programs, and facts, locks, wake-ups, resume and the trace work as
for any workflow.

What each end of a changed relationship instance runs:

* a novel, obsolete or reinstalled end: its whole install (uninstall) weaving, except the
  operations it would run *for* an intact other end (or one running its type's ``update``
  workflow) other than ``add_*`` / ``remove_*`` (an intact host gets no
  ``pre_configure_target``), and without waits on such an end (it is installed, and stays so
  during the run);
* an intact end (peer): only ``add_source`` / ``add_target`` (novel relationship instances) or
  ``remove_source`` / ``remove_target`` (obsolete ones), each after the peer's one state
  (``started``, which it already has), waiting as the weaving says for the other end.
"""
from __future__ import annotations

import copy
import time
import uuid
from typing import Any, Dict, List, Optional, Set, Tuple

from . import catalog, deployments, keys
from .errors import Conflict, ModelError, SpaceDataError, WfError
from .operation.function_eval import input_values
from .instances import expand, natural_key
from .placement import operation_side
from .rules import RuleSet, find_cycle
from .space.base import Space, op_cas, op_check_index, op_set
from .tosca.checks import check_input_values
from .tosca.model import NodeTemplate
from .tosca.scaling import KEYS as SCALING_KEYS
from .tosca.scaling import apply_counts, apply_inputs
from .tosca.sensitive import check_given_inputs

UPDATE = "update"
PEER_STATE = "started"
INSTALL = "install"
UNINSTALL = "uninstall"
_ADDS = ("add_source", "add_target")
_REMOVES = ("remove_source", "remove_target")


# ---------------------------------------------------------------- the rule set workers use
class UpdateRuleSet(RuleSet):
    """The composite rules of one update run, over node records tagged by ``compute``: the
    record's ``vtype`` (and its relationship instances' ``vtype``, ``source_vtype``,
    ``target_vtype``) stand for the real types when rules are looked up."""

    @staticmethod
    def _tag(d: Dict[str, Any], key: str, default: str) -> str:
        v = d.get(key, default)
        if not isinstance(v, str):
            raise SpaceDataError("node instance %s: %s is not a text" % (d.get("id"), key))
        return v

    def _v(self, node: Dict[str, Any]) -> Dict[str, Any]:
        def vrel(r: Dict[str, Any]) -> Dict[str, Any]:
            return dict(r, type=self._tag(r, "vtype", r["type"]),
                        source_type=self._tag(r, "source_vtype", r["source_type"]),
                        target_type=self._tag(r, "target_vtype", r["target_type"]))
        return {"id": node["id"], "template": node.get("template"), "type": self._tag(node, "vtype", node["type"]),
                "out": [vrel(r) for r in node.get("out", [])], "in": [vrel(r) for r in node.get("in", [])]}

    def takes_part(self, node: Dict[str, Any]) -> bool:
        return self.participates(self._tag(node, "vtype", node["type"]))

    def program(self, node: Dict[str, Any]) -> List[Any]:
        return super().program(self._v(node))

    def wakes(self, node: Dict[str, Any], reached: Any) -> List[str]:
        return super().wakes(self._v(node), reached)

    def starts_ready(self, node: Dict[str, Any]) -> bool:
        return super().starts_ready(self._v(node))


# ---------------------------------------------------------------- diff
def _short(op: Optional[str]) -> str:
    return (op or "").rsplit(".", 1)[-1]


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


def _changed_inputs(space: Space, model: str, head: Dict[str, Any], values: Dict[str, Any]) -> Set[str]:
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
                if isinstance(arg, list) and arg and arg[0] in (fed | values_changed) and arg[0] != t:
                    fed.add(t)
                    grown = True
                    break
    return fed


def _descendants(nodes: Dict[str, Dict[str, Any]], roots: List[str]) -> List[str]:
    """``roots`` and every node hosted on them, transitively."""
    hosted: Dict[str, List[str]] = {}
    for nid, n in nodes.items():
        if n.get("host"):
            hosted.setdefault(n["host"], []).append(nid)
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


def _new_generation(space: Space, model: str, head: Dict[str, Any], mhead: Dict[str, Any], meta: Dict[str, Any],
                    old_nodes: Dict[str, Dict[str, Any]], given: Optional[Dict[str, Any]],
                    counts: Dict[str, int], where: str,
                    remove: Optional[List[str]] = None) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]:
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
        raise SpaceDataError("model %s: version %s is incomplete in the Space (no template %s); upload the "
                             "model again to restore it" % (model, mhead["digest"], ", ".join(missing)))
    templates = {n: NodeTemplate.from_json(v) for n, v in raw.items()}
    apply_inputs(templates, values, where)
    apply_counts(templates, counts, where)
    rel_types = {name: _RelKind(anc) for name, anc in (meta.get("reltypes") or {}).items()}
    nodes = expand(_Model(templates, rel_types), previous=old_nodes, drop_first=remove or ())
    return nodes, raw, values


def _rules(space: Space, model: str, digest: str, workflow: str) -> Dict[str, Any]:
    return catalog.read_rules(space, model, digest, workflow) or {"nodes": {}, "relationships": {}}


def compute(space: Space, model: str, instance: str, inputs: Optional[Dict[str, Any]] = None,
            counts: Optional[Dict[str, int]] = None, remove: Optional[List[str]] = None) -> Dict[str, Any]:
    """What an update of the instance would do, without writing: the categories, and (when
    something changes) the records and rules to write.  ``counts``: per-host instance counts
    of templates (wfctl scale), kept with the instance for later updates; ``remove``: node
    instances a scale-in removes instead of the highest-numbered of their host (each must go)."""
    where = "instance %s/%s" % (model, instance)
    head = deployments.instance_head(space, model, instance)
    old_nodes = deployments.read_nodes(space, model, instance, head)
    mhead = catalog.model_head(space, model)
    meta_entry = catalog.version_entry(space, model, mhead)
    meta = meta_entry.value
    all_counts = dict(head.get("counts") or {})
    all_counts.update(counts or {})
    unknown = [n for n in remove or () if n not in old_nodes]
    if unknown:
        raise WfError("%s has no node instance %s" % (where, ", ".join(unknown)))
    new_nodes, new_raw, values = _new_generation(space, model, head, mhead, meta, old_nodes, inputs,
                                                 all_counts, where, remove)
    staying = [n for n in remove or () if n in new_nodes]
    if staying:
        raise WfError("%s: %s would stay: the update removes fewer instances of %s from %s (a count "
                      "is per host instance; lower it, or name fewer)"
                      % (where, ", ".join(staying), old_nodes[staying[0]]["template"],
                         old_nodes[staying[0]].get("host") or "the topology"))
    old_digest, new_digest = head["model_digest"], mhead["digest"]
    old_raw = catalog.read_templates(space, model, old_digest) if old_digest != new_digest else new_raw

    novel = sorted(set(new_nodes) - set(old_nodes))
    obsolete = sorted(set(old_nodes) - set(new_nodes))
    both = set(new_nodes) & set(old_nodes)
    changed_tpl = {t for t in set(old_raw) & set(new_raw) if _comparable(old_raw[t]) != _comparable(new_raw[t])}
    values_changed = {t for t in changed_tpl if old_raw[t].get("properties") != new_raw[t].get("properties")
                      or _comparable(old_raw[t])["capabilities"] != _comparable(new_raw[t])["capabilities"]}
    changed_tpl |= _fed_by_inputs(new_raw, _changed_inputs(space, model, head, values), values_changed)
    modified = sorted(n for n in both if new_nodes[n]["template"] in changed_tpl)

    install_rules = _rules(space, model, new_digest, INSTALL)
    uninstall_rules = _rules(space, model, old_digest, UNINSTALL)
    update_rules = _rules(space, model, new_digest, UPDATE)
    declared = [n for n in modified if new_nodes[n]["type"] in update_rules["nodes"]
                and old_nodes[n]["type"] == new_nodes[n]["type"]]
    reinstall = [n for n in _descendants(new_nodes, [n for n in modified if n not in declared]) if n in both]
    declared = [n for n in declared if n not in reinstall]

    old_rels = {r["id"]: r for n in old_nodes.values() for r in n["out"]}
    new_rels = {r["id"]: r for n in new_nodes.values() for r in n["out"]}
    rel_novel = sorted(set(new_rels) - set(old_rels))
    rel_obsolete = sorted(set(old_rels) - set(new_rels))

    nat = natural_key
    novel, obsolete, modified = sorted(novel, key=nat), sorted(obsolete, key=nat), sorted(modified, key=nat)
    reinstall, declared = sorted(reinstall, key=nat), sorted(declared, key=nat)
    summary = {"model": model, "instance": instance, "from_version": old_digest, "to_version": new_digest,
               "novel": novel, "obsolete": obsolete, "modified": sorted(set(reinstall) | set(declared), key=nat),
               "reinstalled": reinstall, "updated": declared,
               "relationships": {"novel": rel_novel, "obsolete": rel_obsolete},
               "inputs_changed": values != (head.get("inputs") or {}),
               "version_changed": old_digest != new_digest}
    summary["unchanged"] = sorted(both - set(summary["modified"]), key=nat)
    summary["changed"] = bool(novel or obsolete or reinstall or declared or rel_novel or rel_obsolete)
    if not summary["changed"]:
        return summary

    role: Dict[str, str] = {}
    for n in novel:
        if new_nodes[n]["type"] in install_rules["nodes"]:
            role[n] = "install|%s" % new_nodes[n]["type"]
    for n in obsolete:
        if old_nodes[n]["type"] in uninstall_rules["nodes"]:
            role[n] = "uninstall|%s" % old_nodes[n]["type"]
    for n in reinstall:
        role[n] = "reinstall|%s|%s" % (old_nodes[n]["type"], new_nodes[n]["type"])
    for n in declared:
        role[n] = "update|%s" % new_nodes[n]["type"]
    intact = set(summary["unchanged"])

    def mode(nid: str) -> str:
        r = role.get(nid, "")
        if r.startswith(("install|", "uninstall|", "reinstall|")):
            return "full"
        return "intact" if nid in intact else "none"

    vrules: Dict[str, Any] = {"update": True, "nodes": {}, "relationships": {}}
    for nid, r in role.items():
        kind = r.split("|", 1)[0]
        if kind == "install":
            vrules["nodes"][r] = install_rules["nodes"][new_nodes[nid]["type"]]
        elif kind == "uninstall":
            vrules["nodes"][r] = uninstall_rules["nodes"][old_nodes[nid]["type"]]
        elif kind == "update":
            vrules["nodes"][r] = update_rules["nodes"][new_nodes[nid]["type"]]
        else:
            acts = list((uninstall_rules["nodes"].get(old_nodes[nid]["type"]) or {}).get("activities") or []) \
                + list((install_rules["nodes"].get(new_nodes[nid]["type"]) or {}).get("activities") or [])
            vrules["nodes"][r] = {"activities": acts, "states": [a["name"] for a in acts if a["kind"] == "set_state"]}

    rel_tags: Dict[str, Dict[str, str]] = {}
    peer_entries: Dict[str, int] = {}
    for rid in sorted(set(old_rels) | set(new_rels)):
        rel = new_rels.get(rid) or old_rels[rid]
        if rid in rel_novel:
            parts = [(INSTALL, rel["type"])]
        elif rid in rel_obsolete:
            parts = [(UNINSTALL, rel["type"])]
        elif role.get(rel["source"], "").startswith("reinstall|") or role.get(rel["target"], "").startswith("reinstall|"):
            parts = [(UNINSTALL, old_rels[rid]["type"]), (INSTALL, rel["type"])]
        else:
            continue
        smode, tmode = mode(rel["source"]), mode(rel["target"])
        vtype = "|".join([p for p, dummy in parts] + [smode, tmode] + [t for dummy, t in parts])
        if vtype not in vrules["relationships"]:
            vrules["relationships"][vtype] = {
                side: _side_entries(parts, side, m, other, install_rules, uninstall_rules)
                for side, m, other in (("source", smode, tmode), ("target", tmode, smode))}
        rel_tags[rid] = {"vtype": vtype}
        for side, m in (("source", smode), ("target", tmode)):
            if m == "intact" and vrules["relationships"][vtype][side]:
                peer_entries[rel[side]] = peer_entries.get(rel[side], 0) + 1
    for nid in sorted(peer_entries):
        node = new_nodes[nid]
        role[nid] = "peer|%s" % node["type"]
        vrules["nodes"][role[nid]] = {"activities": [{"kind": "set_state", "name": PEER_STATE}],
                                      "states": [PEER_STATE]}

    # The update generation: every node of both generations, tagged.
    union: Dict[str, Dict[str, Any]] = {}
    for nid in sorted(set(old_nodes) | set(new_nodes)):
        base = copy.deepcopy(new_nodes.get(nid) or old_nodes[nid])
        if nid in old_nodes and nid in new_nodes:
            have = {r["id"] for r in base["out"]} | {r["id"] for r in base["in"]}
            base["out"] += [copy.deepcopy(r) for r in old_nodes[nid]["out"] if r["id"] not in have]
            base["in"] += [copy.deepcopy(r) for r in old_nodes[nid]["in"] if r["id"] not in have]
        if nid not in new_nodes:
            base["model_digest"] = old_digest      # its operations are the old version's
        if nid in role:
            base["vtype"] = role[nid]
        for r in base["out"] + base["in"]:
            if r["id"] in rel_tags:
                r["vtype"] = rel_tags[r["id"]]["vtype"]
                for end in ("source", "target"):
                    if r[end] in role:
                        r[end + "_vtype"] = role[r[end]]
        union[nid] = base
    rs = UpdateRuleSet(UPDATE, vrules)
    programs = {n: rs.program(v) for n, v in union.items() if rs.takes_part(v)}
    cycle = find_cycle(programs)
    if cycle:
        raise ModelError("%s: the update cannot run, its steps wait for each other: %s" % (where, cycle))
    summary.update({"participants": len(programs), "peers": sorted(peer_entries)})
    summary["_write"] = {"new_nodes": new_nodes, "union": union, "rules": vrules, "values": values,
                         "counts": all_counts, "head": head, "mhead": mhead, "meta_entry": meta_entry}
    return summary


def _side_entries(parts: List[Tuple[str, str]], side: str, mode: str, other: str,
                  install_rules: Dict[str, Any], uninstall_rules: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The weaving entries of one end of a changed relationship instance (module docstring)."""
    out: List[Dict[str, Any]] = []
    if mode not in ("full", "intact"):
        return out
    for part, rtype in parts:
        rules = install_rules if part == INSTALL else uninstall_rules
        rr = rules["relationships"].get(rtype) or {}
        keep_ops = _ADDS if part == INSTALL else _REMOVES
        for e in rr.get(side) or []:
            act = e.get("activity")
            if mode == "full":
                if other != "full":     # intact, or an end running its type's update workflow
                    if act and operation_side(act, side) != side and _short(act) not in keep_ops:
                        act = None
                    if not act:
                        continue
                    e = dict(e, wait_state=None, activity=act)
                out.append(dict(e))
            elif act and _short(act) in keep_ops:
                out.append({"position": "after", "state": PEER_STATE,
                            "wait_state": e.get("wait_state") if other == "full" else None, "activity": act})
    return out


# ---------------------------------------------------------------- start
def update(space: Space, model: str, instance: str, inputs: Optional[Dict[str, Any]] = None,
           counts: Optional[Dict[str, int]] = None, max_retries: int = 0,
           remove: Optional[List[str]] = None) -> Dict[str, Any]:
    """Start the update run (or continue a failed or canceled one); returns the diff summary with
    ``run`` (the run record) or ``run: None`` and ``message`` when nothing changes."""
    from . import runs
    recs = runs.instance_runs(space, model, instance)
    last = recs[-1] if recs else None
    if last is not None and last.get("workflow") == UPDATE and last.get("status") in (runs.FAILED, runs.CANCELED):
        if _moves(space, model, instance, inputs, counts) or remove:
            # The head already names the generation that run moves to: a diff from it would take
            # the nodes that run did not install yet for installed ones.  Inputs and counts it
            # already has are no change (a declarative caller gives them every time).
            raise Conflict("instance %s/%s: the last update run %s %s; continue it first (wfctl update %s %s, "
                           "without inputs or counts)" % (model, instance, last["id"], last["status"], model,
                                                          instance))
        rec = runs.resume_run(space, UPDATE, model, instance)
        return {"model": model, "instance": instance, "changed": True, "resumed": True, "run": rec,
                "message": "continuing update run %s from where it stopped" % rec["id"]}
    diff = compute(space, model, instance, inputs, counts, remove)
    w = diff.pop("_write", None)
    if w is None:
        head_entry = space.get(keys.instance_head(model, instance))
        head = dict(head_entry.value) if head_entry is not None else {}
        moved = diff["version_changed"] or diff["inputs_changed"] or (counts and head.get("counts") != dict(
            head.get("counts") or {}, **counts))
        if moved:
            # Nothing to run, but the instance now follows the version, inputs and counts given.
            mhead = catalog.model_head(space, model)
            new_head = dict(head, model_digest=mhead["digest"], updated=time.time(),
                            counts=dict(head.get("counts") or {}, **(counts or {})))
            new_head["inputs"] = _values_of(space, model, instance, inputs)
            if not space.txn([op_cas(keys.instance_head(model, instance), new_head, head_entry.index),
                              op_set(keys.model_pin(model, mhead["digest"]), {"instance": instance, "at": time.time()})]).ok:
                raise WfError("instance %s/%s changed during the update; retry" % (model, instance))
        diff.update(run=None, message="no change to node or relationship instances: no run%s"
                    % (" (instance now on version %s)" % diff["to_version"] if moved else ""))
        return diff
    head, mhead = w["head"], w["mhead"]
    new_gen = uuid.uuid4().hex[:12]
    if not _installed(recs):
        # Nothing is deployed: the instance moves to the new generation, no run (install and
        # add_source on nodes that were never installed would be wrong).
        return _move_only(space, model, instance, diff, w, new_gen)
    ugen = "u" + uuid.uuid4().hex[:11]
    rules_key = keys.instance_rules(model, instance, ugen)
    writes = [op_set(keys.instance_node(model, instance, new_gen, nid), n) for nid, n in w["new_nodes"].items()]
    writes += [op_set(keys.instance_node(model, instance, ugen, nid), n) for nid, n in w["union"].items()]
    writes.append(op_set(rules_key, w["rules"]))
    head_key = keys.instance_head(model, instance)
    head_entry = space.get(head_key)
    if head_entry is None or head_entry.value != head:
        raise WfError("instance %s/%s changed during the update; retry" % (model, instance))
    new_head = dict(head, model_digest=mhead["digest"], generation=new_gen, nodes=len(w["new_nodes"]),
                    inputs=w["values"], counts=w["counts"], updated=time.time(),
                    previous_digest=head["model_digest"], update_generation=ugen)
    extra = [op_cas(head_key, new_head, head_entry.index),
             op_check_index(keys.model_meta(model, mhead["digest"]), w["meta_entry"].index),
             op_set(keys.model_pin(model, mhead["digest"]), {"instance": instance, "at": time.time()})]
    try:
        space.write_chunked(writes)
        rec = runs.start_run(space, UPDATE, model, instance, max_retries=max_retries,
                             override={"generation": ugen, "rules_key": rules_key,
                                       "model_digest": mhead["digest"]}, extra_ops=extra)
    except Exception:
        try:
            space.delete_tree(keys.instance_generation(model, instance, new_gen))
            space.delete_tree(keys.instance_generation(model, instance, ugen))
        finally:
            raise
    diff.update(run=rec, message="update run %s started" % rec["id"])
    return diff


def _moves(space: Space, model: str, instance: str, inputs: Optional[Dict[str, Any]],
           counts: Optional[Dict[str, int]]) -> bool:
    """Whether ``inputs`` or ``counts`` differ from what the instance head already has."""
    if not inputs and not counts:
        return False
    head = deployments.instance_head(space, model, instance)
    if counts and dict(head.get("counts") or {}, **counts) != (head.get("counts") or {}):
        return True
    return bool(inputs) and _values_of(space, model, instance, inputs) != (head.get("inputs") or {})


def installed(space: Space, model: str, instance: str) -> bool:
    """Whether an update of the instance would start a run (else it only moves the instance)."""
    from . import runs
    return _installed(runs.instance_runs(space, model, instance))


def _installed(recs: List[Dict[str, Any]]) -> bool:
    """Whether the instance is deployed: its last succeeded install, uninstall or update run is
    not an uninstall (a failed run leaves it as it was before, for this purpose)."""
    for rec in reversed(recs):
        if rec.get("workflow") in (INSTALL, UNINSTALL, UPDATE) and rec.get("status") == "succeeded":
            return rec["workflow"] != UNINSTALL
    return False


def _move_only(space: Space, model: str, instance: str, diff: Dict[str, Any], w: Dict[str, Any],
               new_gen: str) -> Dict[str, Any]:
    head, mhead = w["head"], w["mhead"]
    head_key = keys.instance_head(model, instance)
    head_entry = space.get(head_key)
    if head_entry is None or head_entry.value != head:
        raise WfError("instance %s/%s changed during the update; retry" % (model, instance))
    space.write_chunked([op_set(keys.instance_node(model, instance, new_gen, nid), n)
                         for nid, n in w["new_nodes"].items()])
    new_head = dict(head, model_digest=mhead["digest"], generation=new_gen, nodes=len(w["new_nodes"]),
                    inputs=w["values"], counts=w["counts"], updated=time.time())
    new_head.pop("update_generation", None)
    res = space.txn([op_cas(head_key, new_head, head_entry.index),
                     op_check_index(keys.model_meta(model, mhead["digest"]), w["meta_entry"].index),
                     op_set(keys.model_pin(model, mhead["digest"]), {"instance": instance, "at": time.time()})])
    if not res.ok:
        space.delete_tree(keys.instance_generation(model, instance, new_gen))
        raise WfError("instance %s/%s changed during the update; retry" % (model, instance))
    diff.update(run=None, message="the instance is not installed: it now has the new node instances, no run "
                                  "(wfctl workflow install deploys them)")
    return diff


def _values_of(space: Space, model: str, instance: str, given: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    head = deployments.instance_head(space, model, instance)
    mhead = catalog.model_head(space, model)
    defs = catalog.read_meta(space, model, mhead["digest"]).get("inputs") or {}
    kept = {k: v for k, v in (head.get("inputs") or {}).items() if k in defs}
    return input_values(defs, dict(kept, **(given or {})))


def scale_counts(space: Space, model: str, instance: str, template: str, count: Optional[int] = None,
                 delta: Optional[int] = None) -> Dict[str, int]:
    """``{template: instances per host}`` for ``wfctl scale``: ``count``, or the current count
    plus ``delta`` (the current count: the template's instances over its host's)."""
    head = deployments.instance_head(space, model, instance)
    nodes = deployments.read_nodes(space, model, instance, head)
    mine = [n for n in nodes.values() if n["template"] == template]
    if count is None:
        hosts = {n.get("host") for n in mine}
        if not mine:
            tpl = catalog.read_templates(space, model, head["model_digest"]).get(template)
            if tpl is None:
                raise WfError("instance %s/%s has no template %s" % (model, instance, template))
            current = 0
        else:
            current = len(mine) // max(1, len(hosts))
        count = current + int(delta or 0)
    if count < 0:
        raise WfError("template %s: %d instances per host is not a count" % (template, count))
    return {template: count}
