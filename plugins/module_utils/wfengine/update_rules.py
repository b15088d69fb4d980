# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The composite rules of an update run (docs/day2.md): the virtual types an update gives node and
relationship instances, the rules composed for them from the stored install, uninstall and update
rules of the two versions, and ``UpdateRuleSet``, which workers use to build programs from them.

Why a file of its own: composing rules is pure (no Space), and ``rules.rule_set`` must reach
``UpdateRuleSet`` without importing the update's Space side (``updates.py``, which starts runs);
this file sits below both.  The diff that decides which instances change is ``update_diff.py``.

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
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

from .errors import ModelError, SpaceDataError
from .placement import operation_side
from .programs import Instr, RuleSet, find_cycle
from .records import NodeInstance, Nodes, Relationship

UPDATE = "update"
PEER_STATE = "started"
INSTALL = "install"
UNINSTALL = "uninstall"
_ADDS = ("add_source", "add_target")
_REMOVES = ("remove_source", "remove_target")

Rels = Dict[str, Relationship]     # relationship instances by id


# ---------------------------------------------------------------- the rule set workers use
class UpdateRuleSet(RuleSet):
    """The composite rules of one update run, over node records tagged by ``compose``: the
    record's ``vtype`` (and its relationship instances' ``vtype``, ``source_vtype``,
    ``target_vtype``) stand for the real types when rules are looked up."""

    @staticmethod
    def _tag(d: Mapping[str, Any], key: str, default: str) -> str:
        v = d.get(key, default)
        if not isinstance(v, str):
            raise SpaceDataError("node instance %s: %s is not a text" % (d.get("id"), key))
        return v

    def _v(self, node: NodeInstance) -> NodeInstance:
        def vrel(r: Relationship) -> Relationship:
            v = r.copy()
            v["type"] = self._tag(r, "vtype", r["type"])
            v["source_type"] = self._tag(r, "source_vtype", r["source_type"])
            v["target_type"] = self._tag(r, "target_vtype", r["target_type"])
            return v
        return {"id": node["id"], "template": node["template"],
                "type": self._tag(node, "vtype", node["type"]),
                "out": [vrel(r) for r in node.get("out", [])],
                "in": [vrel(r) for r in node.get("in", [])]}

    def takes_part(self, node: NodeInstance) -> bool:
        return self.participates(self._tag(node, "vtype", node["type"]))

    def program(self, node: NodeInstance) -> List[Instr]:
        return super().program(self._v(node))

    def wakes(self, node: NodeInstance, reached: Any) -> List[str]:
        return super().wakes(self._v(node), reached)

    def starts_ready(self, node: NodeInstance) -> bool:
        return super().starts_ready(self._v(node))


# ---------------------------------------------------------------- composing the rules
@dataclass
class Change:
    """What an update changes (``update_diff.classify``): the two generations, the categories of
    node and relationship instances (natural order), and the stored rules it composes from."""

    old_nodes: Nodes
    new_nodes: Nodes
    novel: List[str]
    obsolete: List[str]
    reinstall: List[str]
    declared: List[str]          # modified nodes running their type's ``update`` workflow
    unchanged: List[str]
    old_rels: Rels
    new_rels: Rels
    rel_novel: List[str]
    rel_obsolete: List[str]
    install: Dict[str, Any]      # install rules of the new version
    uninstall: Dict[str, Any]    # uninstall rules of the old version
    update: Dict[str, Any]       # update rules of the new version
    old_digest: str


@dataclass
class Composed:
    """The update generation (every node of both generations, tagged), its rules, and what the
    summary says of them."""

    rules: Dict[str, Any]
    union: Nodes
    participants: int
    peers: List[str]


def _short(op: Optional[str]) -> str:
    return (op or "").rsplit(".", 1)[-1]


def _roles(c: Change) -> Dict[str, str]:
    """The virtual type of each node instance the update runs something on (peers: later)."""
    role: Dict[str, str] = {}
    for n in c.novel:
        if c.new_nodes[n]["type"] in c.install["nodes"]:
            role[n] = "install|%s" % c.new_nodes[n]["type"]
    for n in c.obsolete:
        if c.old_nodes[n]["type"] in c.uninstall["nodes"]:
            role[n] = "uninstall|%s" % c.old_nodes[n]["type"]
    for n in c.reinstall:
        role[n] = "reinstall|%s|%s" % (c.old_nodes[n]["type"], c.new_nodes[n]["type"])
    for n in c.declared:
        role[n] = "update|%s" % c.new_nodes[n]["type"]
    return role


def _node_rule(c: Change, nid: str, r: str) -> Dict[str, Any]:
    """The rule of the virtual node type ``r`` of node instance ``nid``."""
    kind = r.split("|", 1)[0]
    if kind == "install":
        return dict(c.install["nodes"][c.new_nodes[nid]["type"]])
    if kind == "uninstall":
        return dict(c.uninstall["nodes"][c.old_nodes[nid]["type"]])
    if kind == "update":
        return dict(c.update["nodes"][c.new_nodes[nid]["type"]])
    old = c.uninstall["nodes"].get(c.old_nodes[nid]["type"]) or {}
    new = c.install["nodes"].get(c.new_nodes[nid]["type"]) or {}
    acts = list(old.get("activities") or []) + list(new.get("activities") or [])
    return {"activities": acts, "states": [a["name"] for a in acts if a["kind"] == "set_state"]}


def _mode(role: Dict[str, str], intact: Set[str], nid: str) -> str:
    r = role.get(nid, "")
    if r.startswith(("install|", "uninstall|", "reinstall|")):
        return "full"
    return "intact" if nid in intact else "none"


def _rel_parts(c: Change, role: Dict[str, str], rid: str,
               rel: Relationship) -> Optional[List[Tuple[str, str]]]:
    """(install or uninstall, relationship type) of what a relationship instance runs, or None
    when it is unchanged."""
    if rid in c.rel_novel:
        return [(INSTALL, rel["type"])]
    if rid in c.rel_obsolete:
        return [(UNINSTALL, rel["type"])]
    if role.get(rel["source"], "").startswith("reinstall|") \
            or role.get(rel["target"], "").startswith("reinstall|"):
        return [(UNINSTALL, c.old_rels[rid]["type"]), (INSTALL, rel["type"])]
    return None


def _rel_rules(c: Change, role: Dict[str, str],
               vrules: Dict[str, Any]) -> Tuple[Dict[str, str], Dict[str, int]]:
    """Virtual relationship types (added to ``vrules``): ``(vtype per relationship instance,
    number of weaving entries per intact end)``."""
    intact = set(c.unchanged)
    rel_tags: Dict[str, str] = {}
    peer_entries: Dict[str, int] = {}
    for rid in sorted(set(c.old_rels) | set(c.new_rels)):
        rel = c.new_rels.get(rid) or c.old_rels[rid]
        parts = _rel_parts(c, role, rid, rel)
        if parts is None:
            continue
        smode, tmode = _mode(role, intact, rel["source"]), _mode(role, intact, rel["target"])
        vtype = "|".join([p for p, dummy in parts] + [smode, tmode] + [t for dummy, t in parts])
        if vtype not in vrules["relationships"]:
            vrules["relationships"][vtype] = {
                side: _side_entries(parts, side, m, other, c.install, c.uninstall)
                for side, m, other in (("source", smode, tmode), ("target", tmode, smode))}
        rel_tags[rid] = vtype
        for side, m, end in (("source", smode, rel["source"]), ("target", tmode, rel["target"])):
            if m == "intact" and vrules["relationships"][vtype][side]:
                peer_entries[end] = peer_entries.get(end, 0) + 1
    return rel_tags, peer_entries


def _side_entries(parts: List[Tuple[str, str]], side: str, mode: str, other: str,
                  install_rules: Dict[str, Any],
                  uninstall_rules: Dict[str, Any]) -> List[Dict[str, Any]]:
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
                            "wait_state": e.get("wait_state") if other == "full" else None,
                            "activity": act})
    return out


def _record(c: Change, nid: str, role: Dict[str, str], rel_tags: Dict[str, str]) -> NodeInstance:
    """Node instance ``nid`` in the update generation: its relationship instances of both
    generations, tagged with the virtual types."""
    base = copy.deepcopy(c.new_nodes.get(nid) or c.old_nodes[nid])
    if nid in c.old_nodes and nid in c.new_nodes:
        have = {r["id"] for r in base["out"]} | {r["id"] for r in base["in"]}
        base["out"] += [copy.deepcopy(r) for r in c.old_nodes[nid]["out"] if r["id"] not in have]
        base["in"] += [copy.deepcopy(r) for r in c.old_nodes[nid]["in"] if r["id"] not in have]
    if nid not in c.new_nodes:
        base["model_digest"] = c.old_digest      # its operations are the old version's
    if nid in role:
        base["vtype"] = role[nid]
    for r in base["out"] + base["in"]:
        if r["id"] in rel_tags:
            r["vtype"] = rel_tags[r["id"]]
            if r["source"] in role:
                r["source_vtype"] = role[r["source"]]
            if r["target"] in role:
                r["target_vtype"] = role[r["target"]]
    return base


def compose(c: Change, where: str) -> Composed:
    """The update generation and its rules; an update whose steps would wait for each other is
    refused (ModelError) before anything is written."""
    role = _roles(c)
    vrules: Dict[str, Any] = {"update": True, "nodes": {}, "relationships": {}}
    for nid, r in role.items():
        vrules["nodes"][r] = _node_rule(c, nid, r)
    rel_tags, peer_entries = _rel_rules(c, role, vrules)
    for nid in sorted(peer_entries):
        role[nid] = "peer|%s" % c.new_nodes[nid]["type"]
        vrules["nodes"][role[nid]] = {"activities": [{"kind": "set_state", "name": PEER_STATE}],
                                      "states": [PEER_STATE]}
    union = {nid: _record(c, nid, role, rel_tags)
             for nid in sorted(set(c.old_nodes) | set(c.new_nodes))}
    rs = UpdateRuleSet(UPDATE, vrules)
    programs = {n: rs.program(v) for n, v in union.items() if rs.takes_part(v)}
    cycle = find_cycle(programs)
    if cycle:
        raise ModelError("%s: the update cannot run, its steps wait for each other: %s"
                         % (where, cycle))
    return Composed(vrules, union, len(programs), sorted(peer_entries))
