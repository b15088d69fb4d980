"""Ordering rules of the normative install and uninstall workflows, checked on a trace.

Written from the rules as stated in docs/workflows.md (not from the engine's code), so a test that
uses it checks the engine against the specification.  Every function raises AssertionError with a
message naming the nodes and events at fault.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Dict, List, Optional, Tuple

STD = "tosca.interfaces.node.lifecycle.Standard."
CFG = "tosca.interfaces.relationships.Configure."
HOSTED_ON = "tosca.relationships.HostedOn"
DEPENDS_ON = "tosca.relationships.DependsOn"
CONNECTS_TO = "tosca.relationships.ConnectsTo"

INSTALL_SEQ = ["creating", STD + "create", "created", "configuring", STD + "configure", "configured",
               "starting", STD + "start", "started"]
UNINSTALL_SEQ = ["stopping", STD + "stop", "stopped", "deleting", STD + "delete", "deleted"]


class Trace:
    """Index of one run's events: seq of each (node, name[, relationship])."""

    def __init__(self, events: List[Dict[str, Any]], workflow: str):
        self.events = [e for e in events if e["workflow"] == workflow]
        seqs = [e["seq"] for e in self.events]
        assert len(seqs) == len(set(seqs)), "duplicate seq in trace"
        self.by_node: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
        for e in sorted(self.events, key=lambda e: e["seq"]):
            self.by_node[e["node"]].append(e)

    def seq(self, node: str, name: str, rel: Optional[Tuple[str, str]] = None) -> int:
        hits = [e["seq"] for e in self.by_node[node] if e["name"] == name and
                (rel is None or (e["relationship"] and (e["relationship"]["source"], e["relationship"]["target"]) == rel))]
        assert hits, "%s: no event %s%s" % (node, name, " for %s->%s" % rel if rel else "")
        return hits[0]

    def node_sequence(self, node: str) -> List[str]:
        return [e["name"] for e in self.by_node[node] if e["relationship"] is None]


def relationships(nodes: Dict[str, Any]) -> List[Tuple[str, str, str]]:
    """(type, source, target) of every relationship instance, from ``status --json`` nodes."""
    return [(r["type"], src, r["target"]) for src, n in nodes.items() for r in n["relationships"]]


def _before(t: Trace, a: Tuple, b: Tuple, why: str) -> None:
    sa, sb = t.seq(*a), t.seq(*b)
    assert sa < sb, "%s: %s (seq %d) should come before %s (seq %d)" % (why, a, sa, b, sb)


def _once_per_relationship(t: Trace, rels: List[Tuple[str, str, str]], kind: str, op: str, end: str) -> None:
    """Each relationship instance of ``kind`` runs ``op`` exactly once on its ``end``."""
    want = Counter((s, tg) for ty, s, tg in rels if ty == kind)
    got = Counter((e["relationship"]["source"], e["relationship"]["target"]) for e in t.events
                  if e["name"] == CFG + op and e["relationship"] and e["relationship"]["type"] == kind
                  and e["node"] == e["relationship"][end])
    assert got == want, "%s: expected once per %s instance, got %s" % (op, kind, dict(got - want) or dict(want - got))


def check_install(events: List[Dict[str, Any]], nodes: Dict[str, Any]) -> None:
    t = Trace(events, "install")
    rels = relationships(nodes)
    for n in nodes:
        assert t.node_sequence(n) == INSTALL_SEQ, "%s: install sequence %s" % (n, t.node_sequence(n))
    for ty, s, tg in rels:
        r = (s, tg)
        if ty in (HOSTED_ON, DEPENDS_ON):
            why = "%s %s->%s" % (ty, s, tg)
            _before(t, (tg, "started"), (s, "creating"), why)
            # The Configure operations follow the source's lifecycle; the target's run for it.
            chain = [(s, "configuring"), (s, CFG + "pre_configure_source", r),
                     (tg, CFG + "pre_configure_target", r), (s, STD + "configure"),
                     (s, CFG + "post_configure_source", r), (tg, CFG + "post_configure_target", r),
                     (s, "configured"), (s, "started"), (s, CFG + "add_target", r),
                     (tg, CFG + "add_source", r)]
            for a, b in zip(chain, chain[1:]):
                _before(t, a, b, why)
        elif ty == CONNECTS_TO:
            why = "ConnectsTo %s->%s" % r
            pcs = (s, CFG + "pre_configure_source", r)
            _before(t, (s, "configuring"), pcs, why)
            _before(t, (tg, "started"), pcs, why)
            _before(t, pcs, (s, STD + "configure"), why)
            pct = (tg, CFG + "pre_configure_target", r)
            _before(t, (tg, "configuring"), pct, why)
            _before(t, (s, "created"), pct, why)
            _before(t, pct, (tg, STD + "configure"), why)
            _before(t, (s, STD + "configure"), (s, CFG + "post_configure_source", r), why)
            _before(t, (s, CFG + "post_configure_source", r), (s, "configured"), why)
            _before(t, (tg, STD + "configure"), (tg, CFG + "post_configure_target", r), why)
            _before(t, (tg, CFG + "post_configure_target", r), (tg, "configured"), why)
            _before(t, (tg, "started"), (s, "starting"), why)
            _before(t, (s, "started"), (s, CFG + "add_target", r), why)
            _before(t, (tg, "started"), (tg, CFG + "add_source", r), why)
    for op, end in (("pre_configure_source", "source"), ("post_configure_source", "source"),
                    ("add_target", "source"), ("pre_configure_target", "target"),
                    ("post_configure_target", "target"), ("add_source", "target")):
        for kind in (CONNECTS_TO, HOSTED_ON, DEPENDS_ON):
            _once_per_relationship(t, rels, kind, op, end)
    for n in nodes:
        ops = Counter(e["name"] for e in t.by_node[n] if e["kind"] == "operation" and e["relationship"] is None)
        assert all(v == 1 for v in ops.values()), "%s: operation run more than once: %s" % (n, ops)


def check_uninstall(events: List[Dict[str, Any]], nodes: Dict[str, Any]) -> None:
    t = Trace(events, "uninstall")
    rels = relationships(nodes)
    for n in nodes:
        assert t.node_sequence(n) == UNINSTALL_SEQ, "%s: uninstall sequence %s" % (n, t.node_sequence(n))
    for ty, s, tg in rels:
        r = (s, tg)
        if ty == HOSTED_ON:
            _before(t, (s, "deleted"), (tg, "stopping"), "HostedOn %s->%s" % r)
        elif ty in (CONNECTS_TO, DEPENDS_ON):
            _before(t, (s, "stopped"), (tg, "stopping"), "%s %s->%s" % (ty, s, tg))
        if ty == CONNECTS_TO:
            why = "ConnectsTo %s->%s" % r
            _before(t, (s, "stopping"), (s, CFG + "remove_target", r), why)
            _before(t, (s, CFG + "remove_target", r), (s, STD + "stop"), why)
            _before(t, (tg, "stopping"), (tg, CFG + "remove_source", r), why)
            _before(t, (tg, CFG + "remove_source", r), (tg, STD + "stop"), why)
        if ty in (HOSTED_ON, DEPENDS_ON):
            why = "%s %s->%s" % (ty, s, tg)
            chain = [(s, "stopping"), (s, CFG + "remove_target", r), (tg, CFG + "remove_source", r),
                     (s, STD + "stop")]
            for a, b in zip(chain, chain[1:]):
                _before(t, a, b, why)
    for kind in (CONNECTS_TO, HOSTED_ON, DEPENDS_ON):
        _once_per_relationship(t, rels, kind, "remove_target", "source")
        _once_per_relationship(t, rels, kind, "remove_source", "target")
