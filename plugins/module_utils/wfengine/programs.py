# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The program of a node instance: its instructions, the declarative ``RuleSet`` that builds it
from stored rules, and the "must happen after" graph the deadlock check searches for a cycle.

Why a file of its own: declarative rules (``rules.py``), imperative workflows (``imperative.py``)
and update runs (``update_rules.py``) all build programs of these instructions, and
``rules.rule_set`` chooses among them.  Holding the shared vocabulary here, below all three, keeps
the imports one way (rules -> imperative / update_rules -> programs).

A node instance's *program* interleaves its sequence with the weavings of each of its relationship
instances: entries anchored ``before`` a state go just before the ``set_state``, ``after`` ones just
after it, and each entry first waits for the other end (``wait_target`` / ``after_source``), then
runs its activity once for that relationship instance.  Conditions therefore hold per relationship
instance, never per type.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple
from .records import NodeInstance, Relationship

STATE = "state"
CALL = "call"
WAIT = "wait"
RCALL = "rcall"
GUARD = "guard"     # imperative workflows: does the step run (imperative.py)
MARK = "@"          # imperative workflows: a step's end marker state is ``@<step>``

# A program point: (node or template, index of the instruction in its program).
Point = Tuple[str, int]


def marker(step: str) -> str:
    """The marker state an imperative step's end appends to the fact's ``reached``."""
    return MARK + step


def is_marker(state: str) -> bool:
    return state.startswith(MARK)


@dataclass(frozen=True)
class Instr:
    """One instruction of a node instance's program."""

    op: str                       # STATE | CALL | WAIT | RCALL | GUARD
    name: str                     # state (STATE, WAIT: awaited state) or full operation name
    rel: Optional[str] = None     # relationship instance id (WAIT, RCALL)
    rtype: Optional[str] = None   # relationship type (WAIT, RCALL)
    other: Optional[str] = None   # node instance at the other end (WAIT, RCALL)
    side: Optional[str] = None    # "source" | "target": this node's end of the relationship
    step: Optional[str] = None    # imperative workflows: the step this instruction belongs to
    args: Optional[Tuple[Any, ...]] = None  # imperative GUARD: ((kind, step, node ids), ...)
    host: Optional[str] = None    # imperative step's operation_host (CALL, RCALL)


class RuleSet:
    """The rules of one workflow, with the queries the engine asks of them."""

    def __init__(self, workflow: str, rules: Dict[str, Any]):
        self.workflow = workflow
        self.nodes: Dict[str, Any] = rules.get("nodes", {})
        self.relationships: Dict[str, Any] = rules.get("relationships", {})

    def participates(self, node_type: str) -> bool:
        return node_type in self.nodes

    def takes_part(self, node: NodeInstance) -> bool:
        return self.participates(node["type"])

    def states(self, node_type: str) -> List[str]:
        return list(self.nodes[node_type]["states"]) if node_type in self.nodes else []

    def _weaves(self, rtype: str, side: str) -> List[Dict[str, Any]]:
        rule = self.relationships.get(rtype)
        return rule[side] if rule else []

    def _anchored(self, node: NodeInstance) -> Dict[Tuple[str, str], List[Instr]]:
        """The weaving instructions of the node's relationship instances, by (position, state)."""
        anchored: Dict[Tuple[str, str], List[Instr]] = {}

        def weave(rel: Relationship, side: str, other: str, other_type: str) -> None:
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
        return anchored

    def program(self, node: NodeInstance) -> List[Instr]:
        """The program of one node instance (a dict as stored by ``instances``)."""
        rule = self.nodes.get(node["type"])
        if rule is None:
            return []
        anchored = self._anchored(node)
        prog: List[Instr] = []
        for act in rule["activities"]:
            if act["kind"] == "set_state":
                prog.extend(anchored.get(("before", act["name"]), []))
                prog.append(Instr(STATE, act["name"]))
                prog.extend(anchored.get(("after", act["name"]), []))
            else:
                prog.append(Instr(CALL, act["name"]))
        return prog

    def _waiting(self, node: Mapping[str, Any], reached: Set[str], direction: str,
                 seen: Set[str], out: List[str]) -> None:
        """Add to ``out`` the other ends of the node's ``direction`` ("out" or "in") relationship
        instances whose weaving waits for one of ``reached``."""
        other_end = "target" if direction == "out" else "source"
        for rel in node.get(direction, []):
            if not self.participates(rel[other_end + "_type"]):
                continue
            if any(e.get("wait_state") in reached for e in self._weaves(rel["type"], other_end)):
                if rel[other_end] not in seen and rel[other_end] != node["id"]:
                    seen.add(rel[other_end])
                    out.append(rel[other_end])

    def wakes(self, node: NodeInstance, reached: Iterable[str]) -> List[str]:
        """Node instances that may be waiting for ``node`` to reach one of ``reached``.

        Computed from the rules alone, so a state change costs one write per waiting neighbour and
        never a scan of the other facts.
        """
        reached = set(reached)
        if not reached:
            return []
        out: List[str] = []
        seen: Set[str] = set()
        self._waiting(node, reached, "out", seen, out)
        self._waiting(node, reached, "in", seen, out)
        return out

    def starts_ready(self, node: NodeInstance) -> bool:
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


# ---------------------------------------------------------------- the ordering graph, deadlocks
def ordering_deps(programs: Dict[str, List[Instr]]) -> Dict[Point, List[Point]]:
    """The "must happen after" graph of program points: point ``(t, k)`` (instruction ``k`` of
    node ``t``) happens after ``(t, k-1)`` and, for a wait, after the awaited state instruction.
    The deadlock check looks for a cycle in it; ``wfctl graph`` draws its wait edges."""
    state_pos: Dict[Tuple[str, str], int] = {}
    for t, prog in programs.items():
        for k, ins in enumerate(prog):
            if ins.op == STATE:
                state_pos.setdefault((t, ins.name), k)
    deps: Dict[Point, List[Point]] = {}
    for t, prog in programs.items():
        for k, ins in enumerate(prog):
            d = [(t, k - 1)] if k else []
            if ins.op == WAIT and ins.other is not None and (ins.other, ins.name) in state_pos:
                d.append((ins.other, state_pos[(ins.other, ins.name)]))
            deps[(t, k)] = d
    return deps


def _find_cycle(programs: Dict[str, List[Instr]]) -> Optional[str]:
    """A cycle in the "must happen after" graph of program points, as a readable chain."""
    deps = ordering_deps(programs)
    color: Dict[Point, int] = {}
    for start in deps:
        if color.get(start):
            continue
        stack = [(start, iter(deps[start]))]
        color[start] = 1
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


def _describe_cycle(programs: Dict[str, List[Instr]], path: List[Point], back: Point) -> str:
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
