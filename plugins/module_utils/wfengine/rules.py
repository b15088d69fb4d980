# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compile declarative workflows into rules, and rules into the program of one node instance.

A *rule* is JSON data stored with the model: for each (workflow, node type) the ordered activities
of the node's sequence, and for each (workflow, relationship type) the source and target weavings.
A node instance's *program* interleaves its sequence with the weavings of each of its relationship
instances: entries anchored ``before`` a state go just before the ``set_state``, ``after`` ones just
after it, and each entry first waits for the other end (``wait_target`` / ``after_source``), then
runs its activity once for that relationship instance.  Conditions therefore hold per relationship
instance, never per type.

Workers rebuild the program from the rules, the node instance and the program counter stored in the
fact: the program is a pure function of immutable data, so any worker can resume any fact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set

from .errors import ModelError, SpaceDataError

STATE = "state"
CALL = "call"
WAIT = "wait"
RCALL = "rcall"


@dataclass(frozen=True)
class Instr:
    """One instruction of a node instance's program."""

    op: str                       # STATE | CALL | WAIT | RCALL
    name: str                     # state (STATE, WAIT: awaited state) or full operation name
    rel: Optional[str] = None     # relationship instance id (WAIT, RCALL)
    rtype: Optional[str] = None   # relationship type (WAIT, RCALL)
    other: Optional[str] = None   # node instance at the other end (WAIT, RCALL)
    side: Optional[str] = None    # "source" | "target": this node's end of the relationship
    step: Optional[str] = None    # imperative workflows: the step this instruction belongs to
    args: Optional[tuple] = None  # imperative GUARD: ((kind, predecessor step, node ids), ...)
    host: Optional[str] = None    # imperative step's operation_host (CALL, RCALL)


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


def validate_rule_set(wf: str, rs: Any) -> Dict[str, Any]:
    """Shape check of a rule set read back from the Space."""
    if isinstance(rs, dict) and "imperative" in rs:
        from .imperative import validate
        validate(wf, rs["imperative"])
    if not isinstance(rs, dict) or not isinstance(rs.get("nodes"), dict) \
            or not isinstance(rs.get("relationships"), dict):
        raise SpaceDataError("rules of workflow %s: not a rule set" % wf)
    for t, r in rs["nodes"].items():
        acts = r.get("activities") if isinstance(r, dict) else None
        if not isinstance(acts, list) or not all(
                isinstance(a, dict) and a.get("kind") in ("set_state", "call_operation")
                and isinstance(a.get("name"), str) for a in acts):
            raise SpaceDataError("rules of workflow %s, node type %s: bad activities" % (wf, t))
    for t, r in rs["relationships"].items():
        for side in ("source", "target"):
            entries = r.get(side) if isinstance(r, dict) else None
            if not isinstance(entries, list) or not all(
                    isinstance(e, dict) and e.get("position") in ("before", "after")
                    and isinstance(e.get("state"), str) for e in entries):
                raise SpaceDataError("rules of workflow %s, relationship type %s: bad %s weaving"
                                     % (wf, t, side))
    return rs


# ---------------------------------------------------------------- programs
class RuleSet:
    """The rules of one workflow, with the queries the engine asks of them."""

    def __init__(self, workflow: str, rules: Dict[str, Any]):
        self.workflow = workflow
        self.nodes: Dict[str, Any] = rules.get("nodes", {})
        self.relationships: Dict[str, Any] = rules.get("relationships", {})

    def participates(self, node_type: str) -> bool:
        return node_type in self.nodes

    def takes_part(self, node: Dict[str, Any]) -> bool:
        return self.participates(node["type"])

    def states(self, node_type: str) -> List[str]:
        return list(self.nodes[node_type]["states"]) if node_type in self.nodes else []

    def _weaves(self, rtype: str, side: str) -> List[Dict[str, Any]]:
        rule = self.relationships.get(rtype)
        return rule[side] if rule else []

    def program(self, node: Dict[str, Any]) -> List[Instr]:
        """The program of one node instance (a dict as stored by ``instances``)."""
        rule = self.nodes.get(node["type"])
        if rule is None:
            return []
        anchored: Dict[tuple, List[Instr]] = {}

        def weave(rel: Dict[str, Any], side: str, other: str, other_type: str) -> None:
            for e in self._weaves(rel["type"], side):
                chunk = anchored.setdefault((e["position"], e["state"]), [])
                if e.get("wait_state") and self.participates(other_type):
                    chunk.append(Instr(WAIT, e["wait_state"], rel["id"], rel["type"], other, side))
                if e.get("activity"):
                    chunk.append(Instr(RCALL, e["activity"], rel["id"], rel["type"], other, side))

        for rel in node.get("out", []):
            weave(rel, "source", rel["target"], rel["target_type"])
        for rel in node.get("in", []):
            weave(rel, "target", rel["source"], rel["source_type"])

        prog: List[Instr] = []
        for act in rule["activities"]:
            if act["kind"] == "set_state":
                prog.extend(anchored.get(("before", act["name"]), []))
                prog.append(Instr(STATE, act["name"]))
                prog.extend(anchored.get(("after", act["name"]), []))
            else:
                prog.append(Instr(CALL, act["name"]))
        return prog

    def wakes(self, node: Dict[str, Any], reached: Iterable[str]) -> List[str]:
        """Node instances that may be waiting for ``node`` to reach one of ``reached``.

        Computed from the rules alone, so a state change costs one write per waiting neighbour and
        never a scan of the other facts.
        """
        reached = set(reached)
        if not reached:
            return []
        out: List[str] = []
        seen: Set[str] = set()
        for rel in node.get("out", []):
            if not self.participates(rel["target_type"]):
                continue
            if any(e.get("wait_state") in reached for e in self._weaves(rel["type"], "target")):
                if rel["target"] not in seen and rel["target"] != node["id"]:
                    seen.add(rel["target"])
                    out.append(rel["target"])
        for rel in node.get("in", []):
            if not self.participates(rel["source_type"]):
                continue
            if any(e.get("wait_state") in reached for e in self._weaves(rel["type"], "source")):
                if rel["source"] not in seen and rel["source"] != node["id"]:
                    seen.add(rel["source"])
                    out.append(rel["source"])
        return out

    def starts_ready(self, node: Dict[str, Any]) -> bool:
        """True when the node can make progress at the start of a run (its program does not begin
        with a wait: nobody has reached any state yet, so such a wait cannot hold).

        Equal to ``program(node)[0].op != WAIT`` (tests check it), without building the whole
        program: run start asks it of every node instance."""
        rule = self.nodes.get(node["type"])
        if rule is None or not rule["activities"]:
            return False
        first = rule["activities"][0]
        if first["kind"] != "set_state":
            return True
        sides = [("source", r, r["target_type"]) for r in node.get("out", [])] + \
                [("target", r, r["source_type"]) for r in node.get("in", [])]
        for side, rel, other_type in sides:
            for e in self._weaves(rel["type"], side):
                if e["position"] != "before" or e["state"] != first["name"]:
                    continue
                if e.get("wait_state") and self.participates(other_type):
                    return False      # the program opens with this wait
                if e.get("activity"):
                    return True       # ... or with this operation
        return True


def rule_set(workflow: str, rules: Dict[str, Any], instances: Any = None) -> Any:
    """The RuleSet of a stored rule set: declarative (per type) or imperative (per template,
    imperative.py; ``instances(template)`` gives the deployment's node ids)."""
    if isinstance(rules, dict) and "imperative" in rules:
        from .imperative import ImperativeRuleSet
        return ImperativeRuleSet(workflow, rules, instances)
    if isinstance(rules, dict) and rules.get("update") is True:
        from .updates import UpdateRuleSet     # an update run's composite rules (updates.py)
        return UpdateRuleSet(workflow, rules)
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


def _template_nodes(model: Any) -> Dict[str, Dict[str, Any]]:
    """Template-level stand-ins for node instances (one per template)."""
    nodes = {name: {"id": name, "type": t.type, "template": name, "out": [], "in": []}
             for name, t in model.templates.items()}
    for name, t in model.templates.items():
        for i, req in enumerate(t.requirements):
            rel = {"id": "%s:%s#%d:%s" % (name, req.name, i, req.node), "type": req.relationship,
                   "requirement": req.name, "source": name, "target": req.node,
                   "source_type": t.type, "target_type": model.templates[req.node].type}
            nodes[name]["out"].append(rel)
            nodes[req.node]["in"].append(rel)
    return nodes


def ordering_deps(programs: Dict[str, List[Instr]]) -> Dict[tuple, List[tuple]]:
    """The "must happen after" graph of program points: point ``(t, k)`` (instruction ``k`` of
    node ``t``) happens after ``(t, k-1)`` and, for a wait, after the awaited state instruction.
    The deadlock check looks for a cycle in it; ``wfctl graph`` draws its wait edges."""
    state_pos: Dict[tuple, int] = {}
    for t, prog in programs.items():
        for k, ins in enumerate(prog):
            if ins.op == STATE:
                state_pos.setdefault((t, ins.name), k)
    deps: Dict[tuple, List[tuple]] = {}
    for t, prog in programs.items():
        for k, ins in enumerate(prog):
            d = [(t, k - 1)] if k else []
            if ins.op == WAIT and (ins.other, ins.name) in state_pos:
                d.append((ins.other, state_pos[(ins.other, ins.name)]))
            deps[(t, k)] = d
    return deps


def _find_cycle(programs: Dict[str, List[Instr]]) -> Optional[str]:
    """A cycle in the "must happen after" graph of program points, as a readable chain."""
    deps = ordering_deps(programs)
    color: Dict[tuple, int] = {}
    parent: Dict[tuple, Optional[tuple]] = {}
    for start in deps:
        if color.get(start):
            continue
        stack = [(start, iter(deps[start]))]
        color[start] = 1
        parent[start] = None
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = 2
                stack.pop()
                continue
            if nxt not in deps:
                continue
            if color.get(nxt) == 1:
                return _describe_cycle(programs, [n for n, dummy in stack], nxt)
            if not color.get(nxt):
                color[nxt] = 1
                stack.append((nxt, iter(deps[nxt])))
    return None


def find_cycle(programs: Dict[str, List[Instr]]) -> Optional[str]:
    """A readable cycle of waits among ``programs`` (node or template -> program), or None: the
    upload's deadlock check, also run on the programs of an update run before it starts."""
    return _find_cycle(programs)


def _describe_cycle(programs: Dict[str, List[Instr]], path: List[tuple], back: tuple) -> str:
    cyc = path[path.index(back):]
    hops: List[str] = []
    for t, k in cyc:
        ins = programs[t][k]
        if ins.op == WAIT:
            hop = "%s waits for %s to be %s (%s)" % (t, ins.other, ins.name, ins.rtype)
            if hop not in hops:
                hops.append(hop)
    if not hops:
        hops = ["%s" % t for t, dummy in cyc]
    return "; ".join(hops) + " -> cycle"
