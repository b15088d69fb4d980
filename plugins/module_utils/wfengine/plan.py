# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``wfctl plan``: what a run of a workflow would do, before anything runs.

Why a plan is computed, not simulated: workers run each node instance's *program*, a pure function
of the stored rules and the node record (rules.py).  The plan builds the same programs from the
same data, read in one snapshot, and writes nothing: no run record, no fact, no session.  Its
points are the program's state changes and operations (relationship operations on the end they
are made for, as the trace shows them: placement.call_end); its edges are the happens-before
order the workers enforce: each point after the previous point of its node, and the point after a
wait after the state that wait is for.  A run of the same generation therefore performs exactly
the plan's operations, in an order that respects every edge (tests/engine/test_plan.py runs one
and checks both).

``plan update`` shows the run ``wfctl update`` would start (updates.py), from the same diff.

An imperative workflow's guards decide at run time whether a step runs: the plan shows every step
as if each of its predecessors succeeded.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from . import catalog, deployments, keys
from .errors import WfError
from .imperative import instances_from, is_marker
from .placement import call_end
from .records import InstanceHead, Nodes, Relationship
from .rules import CALL, RCALL, STATE, WAIT, rule_set
from .space.base import READ_VERBS, Entry, Space, TxnResult
from .updates import UPDATE, compute


class ReadOnlySpace:
    """A view of a Space that can only read: a plan that tried to write would be a bug, and must
    fail instead of changing a deployment it only describes.  On the embedded Space, reads also
    stop reaping expired sessions (housekeeping a reader otherwise does)."""

    def __init__(self, space: Space) -> None:
        self._space = space
        inner: Any = space
        while hasattr(inner, "inner"):
            inner = inner.inner
        if hasattr(inner, "reap_on_read"):
            inner.reap_on_read = False

    def get(self, key: str) -> Optional[Entry]:
        return self._space.get(key)

    def list(self, prefix: str) -> List[Entry]:
        return self._space.list(prefix)

    def keys(self, prefix: str) -> List[str]:
        return self._space.keys(prefix)

    def txn(self, ops: List[Any]) -> TxnResult:
        bad = [op.verb for op in ops if op.verb not in READ_VERBS]
        if bad:
            raise WfError("internal error: a plan tried to write (%s)" % ", ".join(sorted(set(bad))))
        return self._space.txn(ops)


def _point_label(p: Dict[str, Any]) -> str:
    rel = p.get("relationship")
    suffix = " [%s->%s]" % (rel["source"], rel["target"]) if rel else ""
    return "%s %s%s" % (p["node"], p["name"].rsplit(".", 1)[-1], suffix)


def plan(space: Space, workflow: str, model: str, instance: str, inputs: Optional[Dict[str, Any]] = None,
         counts: Optional[Dict[str, int]] = None, remove: Optional[List[str]] = None) -> Dict[str, Any]:
    """The operations, state changes and happens-before edges of a run of ``workflow`` on the
    instance's current generation; reads only.  ``inputs``, ``counts`` and ``remove``
    (``update`` only) are those an update would be given (tosca_instance in check mode).

    Returns ``{"workflow", "model", "instance", "model_digest", "generation", "nodes",
    "participants", "points": [{"id", "kind", "node", "name", "relationship"?, "program"}],
    "edges": [[before id, after id], ...], "counts": {"operations", "states", "edges"}}``;
    ``program`` is the node whose program holds the point (``node`` differs for a relationship
    operation made for the other end)."""
    ro: Any = ReadOnlySpace(space)
    head = deployments.instance_head(ro, model, instance)
    diff: Optional[Dict[str, Any]] = None
    if workflow == UPDATE:
        # wfctl update's run: the same diff and composite rules (updates.compute), not written
        diff = compute(ro, model, instance, inputs, counts, remove)
        w = diff.pop("_write", None)
        nodes = w["union"] if w else {}
        rs: Any = rule_set(UPDATE, w["rules"] if w else {"update": True, "nodes": {},
                                                         "relationships": {}})
    else:
        nodes, rs = _workflow_nodes(ro, workflow, model, instance, head)
    participants = sorted(n for n, v in nodes.items() if rs.takes_part(v))
    points, edges = _points_and_edges(rs, nodes, participants)
    ops = sum(1 for p in points if p["kind"] == "operation")
    extra = {} if diff is None else {"update": {k: v for k, v in diff.items()
                                                if not k.startswith("_")}}
    return {**extra, "workflow": workflow, "model": model, "instance": instance,
            "model_digest": head["model_digest"], "generation": head["generation"],
            "nodes": len(nodes), "participants": len(participants), "points": points,
            "edges": edges,
            "counts": {"operations": ops, "states": sum(1 for p in points if p["kind"] == "state"),
                       "edges": len(edges)}}


def _workflow_nodes(ro: Any, workflow: str, model: str, instance: str, head: InstanceHead
                    ) -> Tuple[Nodes, Any]:
    """The nodes of the instance's current generation and the rules of ``workflow`` over them,
    read in one snapshot (as runs.start_run reads them)."""
    nodes_prefix = keys.instance_nodes(model, instance, head["generation"])
    rules, dummy, node_entries = catalog.read_rules_and_meta(ro, model, head["model_digest"],
                                                             workflow, nodes_prefix)
    if rules is None:
        raise catalog.unknown_workflow(ro, model, workflow)
    nodes = deployments.nodes_of(nodes_prefix, node_entries)
    return nodes, rule_set(workflow, rules, instances_from(nodes))


def _points_and_edges(rs: Any, nodes: Nodes, participants: List[str]
                      ) -> Tuple[List[Dict[str, Any]], List[List[int]]]:
    """The points of the participants' programs, and the happens-before edges between them: each
    point after the previous point of its program, a point after a wait after the state waited
    for."""
    rels: Dict[str, Relationship] = {}
    for n in nodes.values():
        for rel in n["out"]:
            rels[rel["id"]] = rel
    points: List[Dict[str, Any]] = []
    state_point: Dict[Tuple[str, str], int] = {}
    waits: List[Tuple[int, str, str]] = []        # (point after the wait, other node, state)
    edges: List[List[int]] = []
    for nid in participants:
        prev: Optional[int] = None
        pending: List[Tuple[str, str]] = []
        for ins in rs.program(nodes[nid]):
            if ins.op == WAIT:
                pending.append((ins.other, ins.name))
                continue
            point = _point(ins, nid, nodes, rels)
            if point is None:
                continue          # an imperative guard: decided at run time
            pid = len(points)
            point["id"] = pid
            points.append(point)
            if ins.op == STATE:
                state_point.setdefault((nid, ins.name), pid)
            if prev is not None:
                edges.append([prev, pid])
            for other, state in pending:
                waits.append((pid, other, state))
            pending = []
            prev = pid
    for pid, other, state in waits:
        before = state_point.get((other, state))
        if before is not None:
            edges.append([before, pid])
    return points, edges


def _point(ins: Any, nid: str, nodes: Nodes,
           rels: Dict[str, Relationship]) -> Optional[Dict[str, Any]]:
    """The plan point of one instruction of ``nid``'s program (its ``id`` not set yet): a state
    change, a step marker or an operation; None for an imperative guard."""
    if ins.op == STATE:
        kind = "step" if is_marker(ins.name) else "state"
        return {"kind": kind, "node": nid, "program": nid,
                "name": ins.step if kind == "step" else ins.name}
    if ins.op not in (CALL, RCALL):
        return None
    point: Dict[str, Any] = {"kind": "operation", "node": nid, "program": nid, "name": ins.name}
    if ins.op == RCALL:
        rel = rels.get(ins.rel)
        if rel is None:
            raise WfError("%s: relationship instance %s is not in the deployment" % (nid, ins.rel))
        end = call_end(ins.name, rel, ins.side, nodes[nid], lambda i: nodes[i])[0]
        point["node"] = end["id"]
        point["relationship"] = {"id": rel["id"], "type": rel["type"], "source": rel["source"],
                                 "target": rel["target"]}
    return point


def operations(p: Dict[str, Any]) -> Dict[str, Any]:
    """A plan as the modules return it: the counts and one entry per operation, in the order of
    the plan (node by node); the points and edges stay with ``wfctl plan --json``, which a
    playbook rarely needs and which would swell every check-mode result."""
    ops = []
    for pt in p["points"]:
        if pt["kind"] != "operation":
            continue
        op: Dict[str, Any] = {"node": pt["node"], "operation": pt["name"]}
        rel = pt.get("relationship")
        if rel:
            op["relationship"] = dict(rel)
        ops.append(op)
    return {"workflow": p["workflow"], "nodes": p["nodes"], "participants": p["participants"],
            "counts": dict(p["counts"]), "operations": ops}


def to_dot(p: Dict[str, Any]) -> str:
    """Graphviz text of a plan: one cluster per node instance's program."""
    lines = ["digraph plan {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
    by_program: Dict[str, List[Dict[str, Any]]] = {}
    for pt in p["points"]:
        by_program.setdefault(pt["program"], []).append(pt)
    for k, (prog, pts) in enumerate(sorted(by_program.items())):
        lines.append("  subgraph cluster_%d {" % k)
        lines.append("    label=%s;" % _quote(prog))
        for pt in pts:
            shape = "" if pt["kind"] == "operation" else ", shape=ellipse"
            lines.append("    p%d [label=%s%s];" % (pt["id"], _quote(_point_label(pt)), shape))
        lines.append("  }")
    for a, b in p["edges"]:
        lines.append("  p%d -> p%d;" % (a, b))
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(p: Dict[str, Any]) -> str:
    """Mermaid flowchart text of a plan (renders in GitHub and GitLab markdown)."""
    lines = ["flowchart LR"]
    for pt in p["points"]:
        text = _point_label(pt).replace('"', "'")
        lines.append('  p%d%s' % (pt["id"], '["%s"]' % text if pt["kind"] == "operation" else '(["%s"])' % text))
    for a, b in p["edges"]:
        lines.append("  p%d --> p%d" % (a, b))
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')
