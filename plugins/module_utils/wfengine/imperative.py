# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Imperative workflows (TOSCA 1.3 §7.3, ``topology_template.workflows``) compiled into the rules
the workers already run.

A workflow is a graph of *steps*; each step targets a node template (or every member of a group)
and runs its activities on every instance of it.  Compiling gives each template an ordered list
of items (stored as JSON with the model); ``ImperativeRuleSet.program`` expands them for one node
instance into the usual instructions, plus a GUARD per step that has predecessors:

* each step ends with a *marker* state ``@<step>`` appended to the fact's ``reached`` (it does not
  change the node's displayed state); ``@<step>!failed`` / ``@<step>!skipped`` precede it when the
  step failed or was skipped;
* a step waits (WAIT, the ordinary wait on another node instance's state) for the end marker of
  each predecessor step on every instance of the predecessor's templates; a predecessor on the
  SAME template is the same instance's, already earlier in its own program;
* the GUARD then decides from those markers whether the step runs: all ``on_success``
  predecessors succeeded on every instance, or one ``on_failure`` predecessor failed on some
  instance; a step with no predecessor runs.  Otherwise it is skipped (and so are the steps that
  only it would have enabled);
* an operation that fails inside a step ends that step (``@<step>!failed``) and the instance goes
  on with its program: the ``on_failure`` steps run, and the run ends ``failed`` after them.

Programs are a pure function of the rules, the node instance and the deployment's instance ids,
so any worker resumes any fact after a crash, exactly as for declarative workflows.
"""
from __future__ import annotations

import os
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from .errors import SpaceDataError, ToscaError
from .operations import CANONICAL, OPERATION_HOSTS, split_operation

GUARD = "guard"
MARK = "@"
_WF_KEYS = {"description", "metadata", "inputs", "preconditions", "steps", "implementation", "outputs"}
_STEP_KEYS = {"description", "metadata", "target", "target_relationship", "operation_host", "filter",
              "activities", "on_success", "on_failure"}
_ACTIVITIES = ("delegate", "set_state", "call_operation", "inline")
STANDARD_OPS = ("create", "configure", "start", "stop", "delete")
CONFIGURE_OPS = ("pre_configure_source", "pre_configure_target", "post_configure_source",
                 "post_configure_target", "add_target", "add_source", "target_changed",
                 "remove_target", "remove_source")
# Configure operations of the TARGET end (TOSCA 1.3 §5.8.4): traced on that side.
_TARGET_SIDE = ("pre_configure_target", "post_configure_target", "add_source", "remove_source")
_NAME_RE = re.compile(r"^[^@!/\s]+$")


def marker(step: str) -> str:
    return MARK + step


def is_marker(state: str) -> bool:
    return state.startswith(MARK)


def is_imperative(rules: Dict[str, Any]) -> bool:
    return isinstance(rules, dict) and "imperative" in rules


# ---------------------------------------------------------------- compiling
class _Err:
    def __init__(self, file: str, wf: str):
        self.file, self.wf = file, wf

    def __call__(self, msg: str, path: str = "") -> ToscaError:
        return ToscaError("workflow %s: %s" % (self.wf, msg), file=self.file,
                          path="topology_template.workflows.%s%s" % (self.wf, path))


def _list_of_names(value: Any, err: _Err, path: str, what: str) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise err("%s must be a list of step names" % what, path)
    return list(value)


def _interface_ops(interfaces: Dict[str, Any]) -> Dict[str, Set[str]]:
    """Operations declared per interface short name (``Standard`` lists its normative ones)."""
    out: Dict[str, Set[str]] = {}
    for iname, body in (interfaces or {}).items():
        short = iname.rsplit(".", 1)[-1]
        ops = out.setdefault(short, set())
        if short == "Standard" or (isinstance(body, dict) and str(body.get("type", "")).endswith(".Standard")):
            ops.update(STANDARD_OPS)
        if short == "Configure" or (isinstance(body, dict) and str(body.get("type", "")).endswith(".Configure")):
            ops.update(CONFIGURE_OPS)
        if isinstance(body, dict):
            ops.update(k for k in body if k not in ("type", "description", "inputs", "operations",
                                                    "notifications", "derived_from", "metadata", "version"))
            if isinstance(body.get("operations"), dict):
                ops.update(body["operations"])
    return out


def _operation_name(raw: str) -> str:
    """The name a call_operation runs under: ``Standard.create`` becomes the full name the
    declarative workflows use, so traces and the no-caller check see one spelling."""
    iface, op = split_operation(raw)
    if iface in CANONICAL:
        return "%s.%s" % (CANONICAL[iface], op)
    return raw


class _Compiler:
    def __init__(self, model: Any):
        self.model = model
        self.file = model.file
        self.raw = model.workflows or {}
        self.groups = (model.sections or {}).get("groups") or {}

    # steps of one workflow, with inline workflows expanded -----------------------------------
    def expand(self, wf: str, prefix: str, stack: Tuple[str, ...]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """``(steps, ends)``: the concrete steps (qualified names) of ``wf`` and, per step as
        written, ``(entries, exits, all)`` of what it became (an inline step: the inlined graph)."""
        err = _Err(self.file, stack[0])
        body = self.raw.get(wf)
        if not isinstance(body, dict):
            raise err("must be a mapping" if wf in self.raw else "inlines unknown workflow %s" % wf)
        unknown = set(body) - _WF_KEYS
        if unknown:
            raise err("unknown keys %s" % ", ".join(sorted(unknown)))
        for key, why in (("inputs", "workflow inputs cannot be passed to a run"),
                         ("implementation", "externally implemented workflows are not run by the engine"),
                         ("outputs", "workflow outputs are not collected")):
            if body.get(key):
                raise err("%s are not supported (%s); remove them" % (key, why) if key.endswith("s")
                          else "%s is not supported (%s)" % (key, why), "." + key)
        steps_raw = body.get("steps") or {}
        if not isinstance(steps_raw, dict):
            raise err("steps must map step names to definitions", ".steps")
        steps: Dict[str, Any] = {}
        ends: Dict[str, Tuple[List[str], List[str], List[str]]] = {}
        for sname, sbody in steps_raw.items():
            path = ".steps.%s" % sname
            if not isinstance(sname, str) or not _NAME_RE.match(sname):
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
            q = prefix + sname
            if "inline" in kinds:
                if len(acts) != 1:
                    raise err("step %s: an inline activity must be the step's only activity" % sname,
                              path + ".activities")
                inner = acts[0]["inline"]
                if isinstance(inner, dict):
                    if set(inner) - {"workflow", "inputs"} or inner.get("inputs"):
                        raise err("step %s: inline takes a workflow name (inputs are not supported)" % sname,
                                  path + ".activities[0]")
                    inner = inner.get("workflow")
                if not isinstance(inner, str) or inner not in self.raw:
                    raise err("step %s inlines unknown workflow %s" % (sname, inner), path + ".activities[0]")
                if inner in stack:
                    raise err("step %s: inlining %s loops (%s)" % (sname, inner, " -> ".join(stack + (inner,))),
                              path + ".activities[0]")
                if sbody.get("target") or sbody.get("target_relationship"):
                    raise err("step %s: an inline step has no target" % sname, path)
                isteps, iends = self.expand(inner, q + "/", stack + (inner,))
                if not isteps:
                    raise err("step %s inlines workflow %s, which has no steps" % (sname, inner), path)
                roots = [s for s in isteps if not isteps[s]["preds"]]
                sinks = [s for s in isteps if not any(s == p for t in isteps.values() for p, k in t["preds"]
                                                      if k == "s")]
                steps.update(isteps)
                ends[sname] = (roots, sinks, list(isteps))
            else:
                self.check_host(sname, sbody, kinds, err, path)
                steps[q] = self.concrete(sname, q, sbody, acts, err, path)
                ends[sname] = ([q], [q], [q])
        # edges, in terms of concrete steps
        for sname, sbody in steps_raw.items():
            path = ".steps.%s" % sname
            for key, kind in (("on_success", "s"), ("on_failure", "f")):
                for nxt in _list_of_names(sbody.get(key), err, path + "." + key, key):
                    if nxt not in ends:
                        raise err("step %s: %s names unknown step %s" % (sname, key, nxt), path + "." + key)
                    froms = ends[sname][1] if kind == "s" else ends[sname][2]
                    for entry in ends[nxt][0]:
                        for f in froms:
                            if (f, kind) not in steps[entry]["preds"]:
                                steps[entry]["preds"].append((f, kind))
        return steps, ends

    def preconditions(self, wf: str) -> List[Dict[str, Any]]:
        """§7.3 preconditions, checked when a run starts (``check_preconditions``): conditions on
        the state and the stored attributes of every instance of a template or group."""
        err = _Err(self.file, wf)
        raw = self.raw[wf].get("preconditions") or []
        if not isinstance(raw, list):
            raise err("preconditions must be a list", ".preconditions")
        out = []
        for i, pre in enumerate(raw):
            path = ".preconditions[%d]" % i
            if not isinstance(pre, dict) or set(pre) - {"target", "target_relationship", "condition"}:
                raise err("precondition %d: a mapping with target and condition" % i, path)
            if pre.get("target_relationship"):
                raise err("precondition %d: target_relationship is not supported" % i, path + ".target_relationship")
            target = pre.get("target")
            if target in self.model.templates:
                templates = [target]
            elif target in self.groups:
                templates = list(self.groups[target].get("members") or [])
            else:
                raise err("precondition %d targets unknown node template or group %s" % (i, target), path + ".target")
            known = {"state"}
            for t in templates:
                known |= set(self.model.node_types[self.model.templates[t].type].attributes or {})
            cond = pre.get("condition") or []
            _check_clauses(cond, known, err, path + ".condition")
            out.append({"target": target, "templates": templates, "condition": cond})
        return out

    def check_host(self, sname: str, sbody: Dict[str, Any], kinds: List[str], err: _Err, path: str) -> None:
        """A step's operation_host (§7.3): where its call_operation activities run, overriding the
        implementation's.  On a delegate step only ORCHESTRATOR makes sense (the engine runs the
        delegated sequence, whose operations run where their implementations say)."""
        host = sbody.get("operation_host")
        if host is None:
            return
        allowed = OPERATION_HOSTS if sbody.get("target_relationship") else ("SELF", "HOST", "ORCHESTRATOR")
        if host not in allowed:
            raise err("step %s: operation_host must be one of %s" % (sname, ", ".join(allowed)),
                      path + ".operation_host")
        if "delegate" in kinds and host != "ORCHESTRATOR":
            raise err("step %s: operation_host %s cannot apply to a delegate activity (only ORCHESTRATOR)"
                      % (sname, host), path + ".operation_host")

    def concrete(self, sname: str, q: str, sbody: Dict[str, Any], acts: List[Dict[str, Any]],
                 err: _Err, path: str) -> Dict[str, Any]:
        target = sbody.get("target")
        if not isinstance(target, str):
            raise err("step %s needs a target (a node template or a group)" % sname, path + ".target")
        if target in self.model.templates:
            templates = [target]
        elif target in self.groups:
            templates = list(self.groups[target].get("members") or [])
        else:
            raise err("step %s targets unknown node template or group %s" % (sname, target), path + ".target")
        rel = sbody.get("target_relationship")
        if rel is not None:
            for t in templates:
                if not isinstance(rel, str) or not any(r.name == rel for r in self.model.templates[t].requirements):
                    raise err("step %s: template %s has no requirement %s" % (sname, t, rel),
                              path + ".target_relationship")
        items: Dict[str, List[Dict[str, Any]]] = {}
        host = sbody.get("operation_host")
        for t in templates:
            items[t] = []
            for i, a in enumerate(acts):
                got = self.activity(sname, t, rel, a, err, "%s.activities[%d]" % (path, i))
                if host and "delegate" not in a:
                    got = [dict(it, host=host) if it["op"] in ("call", "rcall") else it for it in got]
                items[t].extend(got)
        return {"step": sname, "templates": templates, "items": items, "preds": []}

    def activity(self, sname: str, tname: str, rel: Optional[str], a: Dict[str, Any], err: _Err,
                 path: str) -> List[Dict[str, Any]]:
        (kind, value), = a.items()
        tpl = self.model.templates[tname]
        ntype = self.model.node_types[tpl.type]
        if kind == "set_state":
            if not isinstance(value, str) or not value or is_marker(value):
                raise err("step %s: set_state needs a state name" % sname, path)
            return [{"op": "state", "name": value}]
        if kind == "delegate":
            if isinstance(value, dict):
                if set(value) - {"workflow", "inputs"} or value.get("inputs"):
                    raise err("step %s: delegate takes a workflow name (inputs are not supported)" % sname, path)
                value = value.get("workflow")
            acts = ntype.workflows.get(value) if isinstance(value, str) else None
            if acts is None:
                raise err("step %s: delegate %s: type %s of %s defines no such declarative workflow (it has: %s)"
                          % (sname, value, tpl.type, tname, ", ".join(sorted(ntype.workflows)) or "none"), path)
            if rel is not None:
                raise err("step %s: delegate applies to a node, not to target_relationship %s" % (sname, rel), path)
            return [{"op": "state" if x.kind == "set_state" else "call", "name": x.name} for x in acts]
        # call_operation
        if isinstance(value, dict):
            if set(value) - {"operation", "inputs"} or value.get("inputs"):
                raise err("step %s: call_operation takes an operation name (inputs are not supported)" % sname, path)
            value = value.get("operation")
        if not isinstance(value, str) or "." not in value:
            raise err("step %s: call_operation needs <interface>.<operation>, got %r" % (sname, value), path)
        iface, op = split_operation(value)
        if rel is None:
            declared = _interface_ops(dict(ntype.interfaces, **(tpl.interfaces or {})))
        else:
            declared = {}
            for r in tpl.requirements:
                if r.name == rel:
                    rtype = self.model.relationship_types[r.relationship]
                    for k, v in _interface_ops(dict(rtype.interfaces, **(r.interfaces or {}))).items():
                        declared.setdefault(k, set()).update(v)
        if op not in declared.get(iface, ()):
            raise err("step %s: %s declares no operation %s (interfaces: %s)"
                      % (sname, tname if rel is None else "%s's requirement %s" % (tname, rel), value,
                         ", ".join(sorted(declared)) or "none"), path)
        name = _operation_name(value)
        if rel is None:
            return [{"op": "call", "name": name}]
        return [{"op": "rcall", "name": name, "requirement": rel,
                 "side": "target" if op in _TARGET_SIDE else "source"}]


_CONSTRAINTS = ("equal", "greater_than", "greater_or_equal", "less_than", "less_or_equal", "in_range",
                "valid_values", "length", "min_length", "max_length", "pattern")


def _check_clauses(clauses: Any, known: Set[str], err: _Err, path: str) -> None:
    """Condition clauses (§3.6.25 / §7.3): ``and`` / ``or`` / ``not`` / ``assert`` of
    ``{attribute: [constraints]}``; an attribute the targets do not have, or a constraint the
    engine does not evaluate, is an upload error."""
    if not isinstance(clauses, list):
        raise err("a condition is a list of clauses", path)
    for k, c in enumerate(clauses):
        where = "%s[%d]" % (path, k)
        if not isinstance(c, dict) or len(c) != 1:
            raise err("condition clause %d: a single-entry mapping" % k, where)
        (key, value), = c.items()
        if key in ("and", "or", "not", "assert"):
            _check_clauses(value, known, err, "%s.%s" % (where, key))
            continue
        if key not in known:
            raise err("condition on unknown attribute %s (known: %s)" % (key, ", ".join(sorted(known))), where)
        if not isinstance(value, list) or not all(
                isinstance(x, dict) and len(x) == 1 and next(iter(x)) in _CONSTRAINTS for x in value):
            raise err("condition on %s: a list of constraints among %s" % (key, ", ".join(_CONSTRAINTS)), where)


def _holds(op: str, arg: Any, v: Any) -> bool:
    try:
        if op == "equal":
            return v == arg
        if op == "valid_values":
            return v in arg
        if op == "in_range":
            return v is not None and arg[0] <= v <= arg[1]
        if op in ("greater_than", "greater_or_equal", "less_than", "less_or_equal"):
            if v is None:
                return False
            return {"greater_than": v > arg, "greater_or_equal": v >= arg,
                    "less_than": v < arg, "less_or_equal": v <= arg}[op]
        if op in ("length", "min_length", "max_length"):
            n = len(v)
            return n == arg if op == "length" else n >= arg if op == "min_length" else n <= arg
        if op == "pattern":
            return isinstance(v, str) and re.fullmatch(arg, v) is not None
    except TypeError:
        return False
    return False


def _evaluate(clauses: List[Any], values: Dict[str, Any]) -> bool:
    for c in clauses:
        (key, value), = c.items()
        if key in ("and", "assert"):
            ok = _evaluate(value, values)
        elif key == "or":
            ok = any(_evaluate([x], values) for x in value)
        elif key == "not":
            ok = not _evaluate(value, values)
        else:
            ok = all(_holds(op, arg, values.get(key)) for x in value for op, arg in x.items())
        if not ok:
            return False
    return True


def check_preconditions(workflow: str, rules: Dict[str, Any], instances: Callable[[str], List[str]],
                        values: Callable[[str], Dict[str, Any]]) -> Optional[str]:
    """Why a run of an imperative workflow may not start (its first precondition not met on some
    instance), or None.  ``values(node)`` is the instance's stored attributes with its ``state``."""
    for i, pre in enumerate(rules.get("imperative", {}).get("preconditions") or []):
        for t in pre["templates"]:
            for nid in instances(t):
                if not _evaluate(pre["condition"], values(nid)):
                    v = values(nid)
                    return ("workflow %s: precondition %d on %s not met by %s (state %s)"
                            % (workflow, i, pre["target"], nid, v.get("state")))
    return None


def _order(wf: str, steps: Dict[str, Any], file: str) -> List[str]:
    """Steps in a topological order of their edges; a cycle is an upload error."""
    err = _Err(file, wf)
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
        if not isinstance(wf, str) or not _NAME_RE.match(wf):
            raise ToscaError("workflow name %r: no spaces, '@', '!' or '/'" % (wf,), file=model.file,
                             path="topology_template.workflows")
        steps, dummy = comp.expand(wf, "", (wf,))
        order = _order(wf, steps, model.file)
        templates: Dict[str, List[Dict[str, Any]]] = {}
        calls: List[Dict[str, Any]] = []
        for q in order:
            s = steps[q]
            for t in s["templates"]:
                items = templates.setdefault(t, [])
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
        out[wf] = {"nodes": {}, "relationships": {},
                   "imperative": {"templates": templates, "preconditions": comp.preconditions(wf),
                                  "steps": {q: {"templates": steps[q]["templates"], "step": steps[q]["step"]}
                                            for q in order},
                                  "calls": calls}}
    return out


def announce(model: Any, declarative: Dict[str, Any], imperative: Dict[str, Any]) -> None:
    """Upload warnings: an imperative workflow replacing a declarative one of the same name."""
    shown = os.path.basename(model.file)
    for wf in imperative:
        if wf in declarative:
            model.warnings.append("%s: topology_template.workflows.%s: imperative workflow %s replaces the "
                                  "declarative %s of the node types" % (shown, wf, wf, wf))


# ---------------------------------------------------------------- shape check (read back from the Space)
_ITEM_OPS = ("wait", "guard", "state", "call", "rcall", "end")


def validate(wf: str, imp: Any) -> None:
    ok = isinstance(imp, dict) and isinstance(imp.get("templates"), dict) and isinstance(imp.get("steps"), dict)
    if ok:
        for items in imp["templates"].values():
            if not isinstance(items, list) or not all(
                    isinstance(it, dict) and it.get("op") in _ITEM_OPS and isinstance(it.get("step"), str)
                    for it in items):
                ok = False
                break
    if not ok:
        raise SpaceDataError("rules of workflow %s: bad imperative steps" % wf)


# ---------------------------------------------------------------- programs
class ImperativeRuleSet:
    """The RuleSet of an imperative workflow: programs per template, waits across templates.

    ``instances(template)`` gives the node instance ids of a template in the run's deployment,
    in a fixed order: programs hold one WAIT per awaited instance, and every worker must build
    the same program to resume a fact at its program counter."""

    def __init__(self, workflow: str, rules: Dict[str, Any],
                 instances: Optional[Callable[[str], List[str]]] = None):
        self.workflow = workflow
        self.nodes: Dict[str, Any] = {}
        self.relationships: Dict[str, Any] = {}
        imp = rules["imperative"]
        self.templates: Dict[str, List[Dict[str, Any]]] = imp["templates"]
        self.steps: Dict[str, Any] = imp["steps"]
        self.instances = instances
        # (awaited template, step) -> templates whose instances wait for it
        self.waiters: Dict[Tuple[str, str], List[str]] = {}
        for t, items in self.templates.items():
            for it in items:
                if it["op"] == "wait":
                    w = self.waiters.setdefault((it["template"], it["step"]), [])
                    if t not in w:
                        w.append(t)

    def _ids(self, template: str) -> List[str]:
        if self.instances is None:
            raise SpaceDataError("workflow %s: imperative rules used without the deployment's instances"
                                 % self.workflow)
        return list(self.instances(template))

    def takes_part(self, node: Dict[str, Any]) -> bool:
        return node["template"] in self.templates

    def participates(self, node_type: str) -> bool:
        return False     # per template, never per type: see takes_part

    def states(self, node_type: str) -> List[str]:
        return []

    def program(self, node: Dict[str, Any]) -> List[Any]:
        from .rules import CALL, RCALL, STATE, WAIT, Instr
        prog: List[Any] = []
        me, tpl = node["id"], node["template"]
        for it in self.templates.get(tpl, []):
            op, step = it["op"], it["step"]
            if op == "wait":
                prog.extend(Instr(WAIT, marker(step), other=i, step=it["step"]) for i in self._ids(it["template"]))
            elif op == "guard":
                args = []
                for kind, key in (("s", "success"), ("f", "failure")):
                    for p in it[key]:
                        ids: List[str] = []
                        for u in self.steps[p]["templates"]:
                            ids.extend([me] if u == tpl else self._ids(u))
                        args.append((kind, p, tuple(ids)))
                prog.append(Instr(GUARD, step, step=step, args=tuple(args)))
            elif op == "state":
                prog.append(Instr(STATE, it["name"], step=step))
            elif op == "call":
                prog.append(Instr(CALL, it["name"], step=step, host=it.get("host")))
            elif op == "rcall":
                for rel in node.get("out", []):
                    if rel.get("requirement") == it["requirement"]:
                        prog.append(Instr(RCALL, it["name"], rel["id"], rel["type"], rel["target"],
                                          it.get("side") or "source", step=step, host=it.get("host")))
            elif op == "end":
                prog.append(Instr(STATE, marker(step), step=step))
        return prog

    def wakes(self, node: Dict[str, Any], reached: Sequence[str]) -> List[str]:
        out: List[str] = []
        for r in reached:
            if not is_marker(r) or "!" in r:
                continue
            for w in self.waiters.get((node["template"], r[len(MARK):]), []):
                for i in self._ids(w):
                    if i != node["id"] and i not in out:
                        out.append(i)
        return out

    def starts_ready(self, node: Dict[str, Any]) -> bool:
        """``program(node)[0].op != WAIT`` without building the program (run start asks it of
        every node instance, and a program holds one wait per awaited instance)."""
        for it in self.templates.get(node["template"], []):
            if it["op"] == "wait" and not self._ids(it["template"]):
                continue      # a template without instances: no wait
            if it["op"] == "rcall" and not any(r.get("requirement") == it["requirement"] for r in node.get("out", [])):
                continue      # no relationship instance of that requirement: no call
            return it["op"] != "wait"
        return False


def instances_from(nodes: Dict[str, Dict[str, Any]]) -> Callable[[str], List[str]]:
    """``instances`` for a RuleSet over a dict of node records (run start)."""
    by: Dict[str, List[str]] = {}
    for nid, n in nodes.items():
        by.setdefault(n["template"], []).append(nid)
    for ids in by.values():
        ids.sort(key=lambda i: (i.rpartition("_")[0], int(i.rpartition("_")[2]) if i.rpartition("_")[2].isdigit() else 0, i))
    return lambda t: by.get(t, [])


# ---------------------------------------------------------------- run time (batch.py, worker.py)
def guard_runs(ins: Any, fact_of: Callable[[str], Optional[Dict[str, Any]]]) -> Optional[bool]:
    """Whether the step of GUARD ``ins`` runs, from its predecessors' markers; None when a fact
    it needs is not at hand (the caller reads it and evaluates again)."""
    succ: List[bool] = []
    fail = False
    for kind, p, ids in ins.args or ():
        done, bad, skip = marker(p), marker(p) + "!failed", marker(p) + "!skipped"
        facts = []
        for i in ids:
            f = fact_of(i)
            if f is None:
                return None
            facts.append(f["reached"])
        if kind == "s":
            succ.append(all(done in r and bad not in r and skip not in r for r in facts))
        elif any(bad in r for r in facts):
            fail = True
    return fail or (bool(succ) and all(succ)) or not (ins.args or ())


def skip_step(fact: Dict[str, Any], prog: List[Any]) -> None:
    """The GUARD said no: mark the step skipped and go to its end marker."""
    step = prog[fact["pc"]].step
    fact["reached"].append(marker(step) + "!skipped")
    fact["pc"] = _end(prog, fact["pc"], step)


def end_status(fact: Dict[str, Any], step: str) -> str:
    """Status of the step event traced at a step's end: ok, failed or skipped."""
    r = fact["reached"]
    return "failed" if marker(step) + "!failed" in r else "skipped" if marker(step) + "!skipped" in r else "ok"


def fail_step(fact: Dict[str, Any], prog: List[Any]) -> None:
    """An operation of an imperative step failed (``fact["error"]`` says which): keep the error
    for the end of the run, mark the step failed and go to its end marker, so that the
    ``on_failure`` steps and the other instances' waits can proceed."""
    step = prog[fact["pc"]].step
    err = dict(fact.get("error") or {}, step=step)
    fact.setdefault("failed", []).append(err)
    fact["error"] = None
    fact["state"] = "error"
    fact["reached"].append(marker(step) + "!failed")
    fact["pc"] = _end(prog, fact["pc"], step)


def finish(fact: Dict[str, Any], prog: List[Any]) -> None:
    """At the end of an imperative program with failed steps: the node ends in error, so the run
    ends ``failed`` (after the on_failure steps, which have run by now)."""
    if fact["pc"] >= len(prog) and fact.get("failed") and not fact.get("error"):
        first = fact["failed"][0]
        fact["error"] = dict(first, message="step(s) %s failed" % ", ".join(f["step"] for f in fact["failed"]))


def _end(prog: List[Any], pc: int, step: str) -> int:
    from .rules import STATE
    end = marker(step)
    for k in range(pc, len(prog)):
        if prog[k].op == STATE and prog[k].name == end:
            return k
    raise SpaceDataError("imperative step %s has no end marker" % step)
