# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compile imperative workflows (TOSCA 1.3 §7.3, ``topology_template.workflows``) at upload:
check each workflow's steps, expand inline workflows, link the steps by ``on_success`` /
``on_failure``, order them, and give each template its ordered list of items (the rules stored
with the model; ``imperative.py`` turns them into programs).

Why a file of its own: compiling runs once, at upload, against the model; running (programs,
guards, markers) is ``imperative.py``, on workers.  What one activity becomes is
``imperative_activities.py``, preconditions are ``preconditions.py``.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple

from .errors import ToscaError
from .imperative_activities import NAME_RE, Activities, WorkflowError, check_host, target_templates
from .preconditions import compile_preconditions

_WF_KEYS = {"description", "metadata", "inputs", "preconditions", "steps", "implementation",
            "outputs"}
_STEP_KEYS = {"description", "metadata", "target", "target_relationship", "operation_host",
              "filter", "activities", "on_success", "on_failure"}
_ACTIVITIES = ("delegate", "set_state", "call_operation", "inline")
_UNSUPPORTED = (("inputs", "workflow inputs cannot be passed to a run"),
                ("implementation", "externally implemented workflows are not run by the engine"),
                ("outputs", "workflow outputs are not collected"))

# A step as written -> (entry steps, exit steps, all steps) of what it became, qualified names.
Ends = Dict[str, Tuple[List[str], List[str], List[str]]]


def _list_of_names(value: Any, err: WorkflowError, path: str, what: str) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise err("%s must be a list of step names" % what, path)
    return list(value)


def _workflow_steps(wf: str, raw: Dict[str, Any], err: WorkflowError) -> Dict[str, Any]:
    """The steps of workflow ``wf`` as written, after checking its keys."""
    body = raw.get(wf)
    if not isinstance(body, dict):
        raise err("must be a mapping" if wf in raw else "inlines unknown workflow %s" % wf)
    unknown = set(body) - _WF_KEYS
    if unknown:
        raise err("unknown keys %s" % ", ".join(sorted(unknown)))
    for key, why in _UNSUPPORTED:
        if body.get(key):
            raise err("%s are not supported (%s); remove them" % (key, why) if key.endswith("s")
                      else "%s is not supported (%s)" % (key, why), "." + key)
    steps_raw = body.get("steps") or {}
    if not isinstance(steps_raw, dict):
        raise err("steps must map step names to definitions", ".steps")
    return steps_raw


def _step_activities(sname: Any, sbody: Any, err: WorkflowError,
                     path: str) -> Tuple[List[Dict[str, Any]], List[str]]:
    """``(activities, their kinds)`` of a step as written, after checking its keys."""
    if not isinstance(sname, str) or not NAME_RE.match(sname):
        raise err("step name %r: no spaces, '@', '!' or '/'" % (sname,), path)
    if not isinstance(sbody, dict):
        raise err("step %s must be a mapping" % sname, path)
    unknown = set(sbody) - _STEP_KEYS
    if unknown:
        raise err("step %s: unknown keys %s" % (sname, ", ".join(sorted(unknown))), path)
    if sbody.get("filter"):
        raise err("step %s: filter is not supported (conditions on attributes are not evaluated "
                  "by the engine)" % sname, path + ".filter")
    acts = sbody.get("activities")
    if not isinstance(acts, list) or not acts:
        raise err("step %s needs a list of activities" % sname, path + ".activities")
    kinds = []
    for i, a in enumerate(acts):
        if not isinstance(a, dict) or len(a) != 1 or next(iter(a)) not in _ACTIVITIES:
            raise err("step %s: activity %d must be one of %s" % (sname, i, ", ".join(_ACTIVITIES)),
                      "%s.activities[%d]" % (path, i))
        kinds.append(next(iter(a)))
    return acts, kinds


def _inlined(sname: str, sbody: Dict[str, Any], acts: List[Dict[str, Any]], raw: Dict[str, Any],
             stack: Tuple[str, ...], err: WorkflowError, path: str) -> str:
    """The workflow an inline step inlines, checked (known, no loop, the step's only activity)."""
    if len(acts) != 1:
        raise err("step %s: an inline activity must be the step's only activity" % sname,
                  path + ".activities")
    inner = acts[0]["inline"]
    if isinstance(inner, dict):
        if set(inner) - {"workflow", "inputs"} or inner.get("inputs"):
            raise err("step %s: inline takes a workflow name (inputs are not supported)" % sname,
                      path + ".activities[0]")
        inner = inner.get("workflow")
    if not isinstance(inner, str) or inner not in raw:
        raise err("step %s inlines unknown workflow %s" % (sname, inner), path + ".activities[0]")
    if inner in stack:
        raise err("step %s: inlining %s loops (%s)" % (sname, inner, " -> ".join(stack + (inner,))),
                  path + ".activities[0]")
    if sbody.get("target") or sbody.get("target_relationship"):
        raise err("step %s: an inline step has no target" % sname, path)
    return inner


def _link(steps_raw: Dict[str, Any], steps: Dict[str, Any], ends: Ends, err: WorkflowError) -> None:
    """Add each step's predecessors (edges in terms of concrete steps): ``(step, "s" | "f")``."""
    for sname, sbody in steps_raw.items():
        path = ".steps.%s" % sname
        for key, kind in (("on_success", "s"), ("on_failure", "f")):
            for nxt in _list_of_names(sbody.get(key), err, path + "." + key, key):
                if nxt not in ends:
                    raise err("step %s: %s names unknown step %s" % (sname, key, nxt),
                              path + "." + key)
                froms = ends[sname][1] if kind == "s" else ends[sname][2]
                for entry in ends[nxt][0]:
                    for f in froms:
                        if (f, kind) not in steps[entry]["preds"]:
                            steps[entry]["preds"].append((f, kind))


class _Compiler:
    def __init__(self, model: Any):
        self.model = model
        self.file = model.file
        self.raw = model.workflows or {}
        self.groups = (model.sections or {}).get("groups") or {}
        self.activities = Activities(model)

    # steps of one workflow, with inline workflows expanded -----------------------------------
    def expand(self, wf: str, prefix: str, stack: Tuple[str, ...]) -> Tuple[Dict[str, Any], Ends]:
        """``(steps, ends)``: the concrete steps (qualified names) of ``wf`` and, per step as
        written, ``(entries, exits, all)`` of what it became (an inline step: the inlined graph)."""
        err = WorkflowError(self.file, stack[0])
        steps_raw = _workflow_steps(wf, self.raw, err)
        steps: Dict[str, Any] = {}
        ends: Ends = {}
        for sname, sbody in steps_raw.items():
            path = ".steps.%s" % sname
            acts, kinds = _step_activities(sname, sbody, err, path)
            q = prefix + sname
            if "inline" in kinds:
                inner = _inlined(sname, sbody, acts, self.raw, stack, err, path)
                ends[sname] = self._inline(sname, q, inner, stack, steps, err, path)
            else:
                check_host(sname, sbody, kinds, err, path)
                steps[q] = self.concrete(sname, q, sbody, acts, err, path)
                ends[sname] = ([q], [q], [q])
        _link(steps_raw, steps, ends, err)
        return steps, ends

    def _inline(self, sname: str, q: str, inner: str, stack: Tuple[str, ...], steps: Dict[str, Any],
                err: WorkflowError, path: str) -> Tuple[List[str], List[str], List[str]]:
        """Expand workflow ``inner`` in place of step ``sname`` (its steps added to ``steps``);
        returns the step's ends: the inlined graph's roots, sinks and steps."""
        isteps, dummy = self.expand(inner, q + "/", stack + (inner,))
        if not isteps:
            raise err("step %s inlines workflow %s, which has no steps" % (sname, inner), path)
        roots = [s for s in isteps if not isteps[s]["preds"]]
        sinks = [s for s in isteps if not any(s == p for t in isteps.values() for p, k in t["preds"]
                                              if k == "s")]
        steps.update(isteps)
        return roots, sinks, list(isteps)

    def preconditions(self, wf: str) -> List[Dict[str, Any]]:
        """§7.3 preconditions, checked when a run starts (``check_preconditions``)."""
        return compile_preconditions(self.model, self.groups, wf,
                                     self.raw[wf].get("preconditions") or [])

    def _step_templates(self, sname: str, sbody: Dict[str, Any], err: WorkflowError,
                        path: str) -> List[str]:
        target = sbody.get("target")
        if not isinstance(target, str):
            raise err("step %s needs a target (a node template or a group)" % sname,
                      path + ".target")
        templates = target_templates(self.model, self.groups, target)
        if templates is None:
            raise err("step %s targets unknown node template or group %s" % (sname, target),
                      path + ".target")
        rel = sbody.get("target_relationship")
        if rel is not None:
            for t in templates:
                reqs = self.model.templates[t].requirements
                if not isinstance(rel, str) or not any(r.name == rel for r in reqs):
                    raise err("step %s: template %s has no requirement %s" % (sname, t, rel),
                              path + ".target_relationship")
        return templates

    def concrete(self, sname: str, q: str, sbody: Dict[str, Any], acts: List[Dict[str, Any]],
                 err: WorkflowError, path: str) -> Dict[str, Any]:
        templates = self._step_templates(sname, sbody, err, path)
        rel = sbody.get("target_relationship")
        items: Dict[str, List[Dict[str, Any]]] = {}
        host = sbody.get("operation_host")
        for t in templates:
            items[t] = []
            for i, a in enumerate(acts):
                got = self.activities.items(sname, t, rel, a, err, "%s.activities[%d]" % (path, i))
                if host and "delegate" not in a:
                    got = [dict(it, host=host) if it["op"] in ("call", "rcall") else it
                           for it in got]
                items[t].extend(got)
        return {"step": sname, "templates": templates, "items": items, "preds": []}


def _order(wf: str, steps: Dict[str, Any], file: str) -> List[str]:
    """Steps in a topological order of their edges; a cycle is an upload error."""
    err = WorkflowError(file, wf)
    succ: Dict[str, List[str]] = {q: [] for q in steps}
    for q, s in steps.items():
        for p, dummy in s["preds"]:
            succ[p].append(q)
    color: Dict[str, int] = {}
    order: List[str] = []

    def visit(q: str, path: List[str]) -> None:
        color[q] = 1
        for n in succ[q]:
            if color.get(n) == 1:
                cyc = path[path.index(n):] + [n] if n in path else [q, n]
                raise err("steps %s form a cycle" % " -> ".join(c.replace("/", ".") for c in cyc),
                          ".steps.%s" % n.split("/")[0])
            if not color.get(n):
                visit(n, path + [n])
        color[q] = 2
        order.append(q)

    for q in steps:          # declaration order: a deterministic program for every worker
        if not color.get(q):
            visit(q, [q])
    return list(reversed(order))


def _template_items(t: str, q: str, s: Dict[str, Any], steps: Dict[str, Any],
                    calls: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The items of step ``q`` on template ``t``: waits for its predecessors on other
    templates, its guard, its activities, its end; the operations it calls are added to
    ``calls``."""
    items: List[Dict[str, Any]] = []
    for p, dummy in s["preds"]:
        for u in steps[p]["templates"]:
            if u != t:
                items.append({"op": "wait", "template": u, "step": p})
    if s["preds"]:
        items.append({"op": "guard", "step": q,
                      "success": [p for p, k in s["preds"] if k == "s"],
                      "failure": [p for p, k in s["preds"] if k == "f"]})
    for it in s["items"][t]:
        items.append(dict(it, step=q))
        if it["op"] in ("call", "rcall"):
            c = {"template": t, "operation": it["name"]}
            if it["op"] == "rcall":
                c["requirement"] = it["requirement"]
            if c not in calls:
                calls.append(c)
    items.append({"op": "end", "step": q})
    return items


def compile_imperative(model: Any) -> Dict[str, Dict[str, Any]]:
    """Rule sets of the model's imperative workflows: ``{wf: {"nodes": {}, "relationships": {},
    "imperative": {"templates": {template: [items]}, "steps": {...}, "calls": [...]}}}``.

    ``calls`` lists every operation the workflow can call (``{"template", "operation"}`` and, for
    relationship operations, ``"requirement"``): what other checks read to know which
    implementations some workflow runs."""
    raw = model.workflows or {}
    out: Dict[str, Dict[str, Any]] = {}
    comp = _Compiler(model)
    for wf in raw:
        if not isinstance(wf, str) or not NAME_RE.match(wf):
            raise ToscaError("workflow name %r: no spaces, '@', '!' or '/'" % (wf,),
                             file=model.file, path="topology_template.workflows")
        steps, dummy = comp.expand(wf, "", (wf,))
        order = _order(wf, steps, model.file)
        templates: Dict[str, List[Dict[str, Any]]] = {}
        calls: List[Dict[str, Any]] = []
        for q in order:
            for t in steps[q]["templates"]:
                templates.setdefault(t, []).extend(_template_items(t, q, steps[q], steps, calls))
        out[wf] = {"nodes": {}, "relationships": {},
                   "imperative": {"templates": templates, "preconditions": comp.preconditions(wf),
                                  "steps": {q: {"templates": steps[q]["templates"],
                                                "step": steps[q]["step"]} for q in order},
                                  "calls": calls}}
    return out


def announce(model: Any, declarative: Dict[str, Any], imperative: Dict[str, Any]) -> None:
    """Upload warnings: an imperative workflow replacing a declarative one of the same name."""
    shown = os.path.basename(model.file)
    for wf in imperative:
        if wf in declarative:
            model.warnings.append("%s: topology_template.workflows.%s: imperative workflow %s "
                                  "replaces the declarative %s of the node types"
                                  % (shown, wf, wf, wf))
