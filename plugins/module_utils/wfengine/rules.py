# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compile declarative workflows into rules, read rule sets back, and check them at upload.

A *rule* is JSON data stored with the model: for each (workflow, node type) the ordered activities
of the node's sequence, and for each (workflow, relationship type) the source and target weavings.
``rule_set`` gives the RuleSet that turns a stored rule set into the program of one node instance:
declarative (``programs.RuleSet``), imperative (``imperative.py``) or an update run's
(``update_rules.py``); the instructions and how weavings interleave are in ``programs.py``.

Workers rebuild the program from the rules, the node instance and the program counter stored in the
fact: the program is a pure function of immutable data, so any worker can resume any fact.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

from .errors import ModelError, SpaceDataError
from .records import Nodes, Relationship
from .imperative import ImperativeRuleSet, validate as validate_imperative
# The program vocabulary lives in programs.py (shared with imperative.py and update_rules.py);
# re-exported here, where the engine has always found it.
# `X as X`: an explicit re-export (mypy); pylint takes it for a useless alias.
# pylint: disable=useless-import-alias,unused-import
from .programs import (CALL as CALL, RCALL as RCALL, STATE as STATE, WAIT as WAIT,
                       Instr as Instr, RuleSet as RuleSet, _find_cycle as _find_cycle,
                       find_cycle as find_cycle, ordering_deps as ordering_deps)
# pylint: enable=useless-import-alias,unused-import
from .update_rules import UpdateRuleSet


# ---------------------------------------------------------------- compiling types into rules
def node_rule(activities: Sequence[Any]) -> Dict[str, Any]:
    """JSON rule of one (workflow, node type) from its activities (objects with kind/name)."""
    acts = [{"kind": a.kind, "name": a.name} for a in activities]
    return {"activities": acts, "states": [a["name"] for a in acts if a["kind"] == "set_state"]}


def _entry_json(e: Any) -> Dict[str, Any]:
    return {"position": e.position, "state": e.state, "wait_state": e.wait_state, "activity": e.activity}


def rel_rule(rel_workflow: Any) -> Dict[str, Any]:
    """JSON rule of one (workflow, relationship type): its source and target weavings."""
    return {"source": [_entry_json(e) for e in rel_workflow.source],
            "target": [_entry_json(e) for e in rel_workflow.target]}


def compile_rules(model: Any) -> Dict[str, Dict[str, Any]]:
    """All rules of a model: ``{workflow: {"nodes": {type: rule}, "relationships": {type: rule}}}``.

    Only types used by the model's templates matter; a node type that does not define a workflow is
    simply not part of it.
    """
    rules: Dict[str, Dict[str, Any]] = {}
    used_node_types = {t.type for t in model.templates.values()}
    used_rel_types = {r.relationship for t in model.templates.values() for r in t.requirements}
    for tname in sorted(used_node_types):
        ntype = model.node_types[tname]
        for wf, acts in ntype.workflows.items():
            rules.setdefault(wf, {"nodes": {}, "relationships": {}})["nodes"][tname] = node_rule(acts)
    for rname in sorted(used_rel_types):
        rtype = model.relationship_types[rname]
        for wf, rw in rtype.workflows.items():
            rules.setdefault(wf, {"nodes": {}, "relationships": {}})["relationships"][rname] = rel_rule(rw)
    return rules


def _check_node_rules(wf: str, nodes: Dict[str, Any]) -> None:
    for t, r in nodes.items():
        acts = r.get("activities") if isinstance(r, dict) else None
        if not isinstance(acts, list) or not all(
                isinstance(a, dict) and a.get("kind") in ("set_state", "call_operation")
                and isinstance(a.get("name"), str) for a in acts):
            raise SpaceDataError("rules of workflow %s, node type %s: bad activities" % (wf, t))


def _check_rel_rules(wf: str, relationships: Dict[str, Any]) -> None:
    for t, r in relationships.items():
        for side in ("source", "target"):
            entries = r.get(side) if isinstance(r, dict) else None
            if not isinstance(entries, list) or not all(
                    isinstance(e, dict) and e.get("position") in ("before", "after")
                    and isinstance(e.get("state"), str) for e in entries):
                raise SpaceDataError("rules of workflow %s, relationship type %s: bad %s weaving"
                                     % (wf, t, side))


def validate_rule_set(wf: str, rs: Any) -> Dict[str, Any]:
    """Shape check of a rule set read back from the Space."""
    if isinstance(rs, dict) and "imperative" in rs:
        validate_imperative(wf, rs["imperative"])
    if not isinstance(rs, dict) or not isinstance(rs.get("nodes"), dict) \
            or not isinstance(rs.get("relationships"), dict):
        raise SpaceDataError("rules of workflow %s: not a rule set" % wf)
    _check_node_rules(wf, rs["nodes"])
    _check_rel_rules(wf, rs["relationships"])
    return rs


# ---------------------------------------------------------------- programs
def rule_set(workflow: str, rules: Dict[str, Any], instances: Any = None) -> Any:
    """The RuleSet of a stored rule set: declarative (per type) or imperative (per template,
    imperative.py; ``instances(template)`` gives the deployment's node ids)."""
    if isinstance(rules, dict) and "imperative" in rules:
        return ImperativeRuleSet(workflow, rules, instances)
    if isinstance(rules, dict) and rules.get("update") is True:
        return UpdateRuleSet(workflow, rules)     # an update run's composite rules (updates.py)
    return RuleSet(workflow, rules)


# ---------------------------------------------------------------- static checks at upload
def check_workflows(model: Any, rules: Dict[str, Dict[str, Any]]) -> None:
    """Reject a model whose workflows cannot finish: a weaving anchored to a state the node never
    sets, a wait for a state the other end never reaches, or a cycle of waits (deadlock).

    The check runs on templates: every instance of a template has the same program shape, and a
    wait between instances of two templates exists iff it exists between the templates, so a cycle
    among instances implies one among templates (and conversely, self-relationships included).
    """
    for wf in sorted(rules):
        rs = RuleSet(wf, rules[wf])
        tnodes = _template_nodes(model)
        programs = {name: rs.program(n) for name, n in tnodes.items()}
        for name, n in tnodes.items():
            if not rs.participates(n["type"]):
                continue
            states = set(rs.states(n["type"]))
            for side, rel in [("source", r) for r in n["out"]] + [("target", r) for r in n["in"]]:
                other_type = rel["target_type"] if side == "source" else rel["source_type"]
                other = rel["target"] if side == "source" else rel["source"]
                for e in rs._weaves(rel["type"], side):
                    if e["state"] not in states:
                        raise ModelError(
                            "%s: workflow %s: %s weaving of %s is anchored %s state '%s', which type %s "
                            "never sets" % (name, wf, side, rel["type"], e["position"], e["state"], n["type"]))
                    if e.get("wait_state") and rs.participates(other_type) \
                            and e["wait_state"] not in rs.states(other_type):
                        raise ModelError(
                            "%s: workflow %s: %s waits for %s to reach '%s' (%s), which type %s never sets"
                            % (name, wf, rel["type"], other, e["wait_state"],
                               rel["requirement"], other_type))
        cycle = _find_cycle(programs)
        if cycle:
            raise ModelError("workflow %s deadlocks: %s" % (wf, cycle))


def _template_nodes(model: Any) -> Nodes:
    """Template-level stand-ins for node instances (one per template)."""
    nodes: Nodes = {name: {"id": name, "type": t.type, "template": name, "out": [], "in": []}
                    for name, t in model.templates.items()}
    for name, t in model.templates.items():
        for i, req in enumerate(t.requirements):
            rel: Relationship = {
                "id": "%s:%s#%d:%s" % (name, req.name, i, req.node), "type": req.relationship,
                "requirement": req.name, "source": name, "target": req.node,
                "source_type": t.type, "target_type": model.templates[req.node].type}
            nodes[name]["out"].append(rel)
            nodes[req.node]["in"].append(rel)
    return nodes
