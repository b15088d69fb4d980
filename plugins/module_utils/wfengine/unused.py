# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Implementations that a model declares and that no workflow will ever run.

A model whose install "succeeds" while a script it declares never ran is worse than a refused
one: the user believes the work was done.  TOSCA lets a type or template give an implementation
to any operation (``target_changed``, a custom interface, ``Standard.create`` of a node type whose
own ``workflows`` leave it out), but only the operations that a workflow calls are ever run.  So
at upload every (template, operation) with an implementation is matched against the operations
the compiled rules call, and each one that nothing calls becomes a warning line.

Who calls an operation is asked of every function in ``CALL_SOURCES``: each takes the model and
the compiled rules and yields ``Call`` tuples.  The declarative workflows are one such source;
another kind of workflow (imperative ``topology_template.workflows``, TOSCA 1.3 7.3) adds its own
function to that list and the check covers it, with nothing else to change.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from .operations import split_operation

# (node template, "node" or the requirement's index as a string, (short interface name, operation))
Call = Tuple[str, str, Tuple[str, str]]
NODE = "node"


def declarative_calls(model: Any, rules: Dict[str, Dict[str, Any]]) -> Iterable[Call]:
    """The operations the declarative rules call: a node type's ``call_operation`` activities for
    its templates, and a relationship type's woven activities for each requirement using it, on
    the condition that the end whose sequence holds the weaving takes part in that workflow (a
    node type without the workflow has an empty program, so its weavings never run).  Rule sets
    of another shape (no ``nodes`` / ``relationships``) are left to their own source."""
    for rs in rules.values():
        nodes = rs.get("nodes") if isinstance(rs, dict) else None
        rels = rs.get("relationships") if isinstance(rs, dict) else None
        if not isinstance(nodes, dict) or not isinstance(rels, dict):
            continue
        for tname, tpl in model.templates.items():
            nrule = nodes.get(tpl.type)
            for act in (nrule or {}).get("activities", []):
                if act.get("kind") == "call_operation":
                    yield tname, NODE, split_operation(act["name"])
            for i, req in enumerate(tpl.requirements):
                rrule = rels.get(req.relationship)
                if not rrule:
                    continue
                ends = (("source", tpl.type), ("target", model.templates[req.node].type))
                for side, end_type in ends:
                    if end_type not in nodes:
                        continue
                    for e in rrule.get(side) or []:
                        if e.get("activity"):
                            yield tname, str(i), split_operation(e["activity"])


def imperative_calls(model: Any, rules: Dict[str, Dict[str, Any]]) -> Iterable[Call]:
    """The operations imperative workflows (imperative.py) call: their rule sets list them under
    ``imperative.calls`` (a relationship operation by requirement name: every assignment of it)."""
    for rs in rules.values():
        imp = rs.get("imperative") if isinstance(rs, dict) else None
        if not isinstance(imp, dict):
            continue
        for c in imp.get("calls") or []:
            tpl = model.templates.get(c.get("template"))
            if tpl is None or not isinstance(c.get("operation"), str):
                continue
            op = split_operation(c["operation"])
            if "requirement" in c:
                for i, req in enumerate(tpl.requirements):
                    if req.name == c["requirement"]:
                        yield (tpl.name, str(i), op)
            else:
                yield (tpl.name, NODE, op)


# Extension point: every function listed here contributes the operations it calls.
CALL_SOURCES: List[Callable[[Any, Dict[str, Dict[str, Any]]], Iterable[Call]]] = [
    declarative_calls, imperative_calls]


def called_operations(model: Any, rules: Dict[str, Dict[str, Any]]) -> Set[Call]:
    """Every (template, node-or-requirement, operation) some workflow of the model calls."""
    called: Set[Call] = set()
    for source in CALL_SOURCES:
        called.update(source(model, rules))
    return called


def unused_implementations(model: Any, ops: Dict[str, Dict[str, Any]], called: Set[Call],
                           file_of: Optional[Callable[[Any], str]] = None) -> List[str]:
    """One warning line (``<file>: <yaml path>: <what>``) per declared implementation that no
    call in ``called`` reaches.  ``ops``: ``operations.compile_operations`` (only operations with
    an implementation are in it).  ``file_of(template)``: how to name the template's file."""
    out: List[str] = []
    for tname in sorted(ops):
        tpl = model.templates[tname]
        fname = file_of(tpl) if file_of else (tpl.file or model.file)
        base = "topology_template.node_templates.%s" % tname
        for full in sorted((ops[tname].get("node") or {})):
            if (tname, NODE, split_operation(full)) not in called:
                out.append("%s: %s: implementation of %s is never run: no workflow of node type %s "
                           "calls it" % (fname, base, _short(full), tpl.type))
        rels = ops[tname].get("relationships") or {}
        for index in sorted(rels, key=int):
            req = tpl.requirements[int(index)]
            for full in sorted(rels[index]):
                if (tname, index, split_operation(full)) not in called:
                    out.append("%s: %s.requirements[%s] (%s -> %s): implementation of %s is never run: "
                               "relationship type %s weaves no activity for it into a workflow its "
                               "ends take part in" % (fname, base, index, req.name, req.node, _short(full),
                                                      req.relationship))
    return out


def _short(full: str) -> str:
    iface, op = split_operation(full)
    return "%s.%s" % (iface, op) if iface else op
