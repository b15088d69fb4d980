# -*- coding: utf-8 -*-
# Copyright: ditrit.workflows contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preconditions of imperative workflows (TOSCA 1.3 §7.3): conditions on the state and the stored
attributes of every instance of a template or group, checked at upload (only attributes the
targets have, only constraints the engine evaluates) and evaluated when a run starts.

Why a file of its own: the condition language (clauses, constraints) is one job, used at upload
(``imperative_compile.py``) and at run start (``runs.py`` through ``imperative.py``), apart from
how steps are compiled and run.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Set

from .imperative_activities import WorkflowError, target_templates


def compile_preconditions(model: Any, groups: Dict[str, Any], wf: str,
                          raw: Any) -> List[Dict[str, Any]]:
    """The checked preconditions of workflow ``wf`` (``raw``: as written), for
    ``check_preconditions``: ``[{"target", "templates", "condition"}]``."""
    err = WorkflowError(model.file, wf)
    if not isinstance(raw, list):
        raise err("preconditions must be a list", ".preconditions")
    out = []
    for i, pre in enumerate(raw):
        path = ".preconditions[%d]" % i
        if not isinstance(pre, dict) or set(pre) - {"target", "target_relationship", "condition"}:
            raise err("precondition %d: a mapping with target and condition" % i, path)
        if pre.get("target_relationship"):
            raise err("precondition %d: target_relationship is not supported" % i,
                      path + ".target_relationship")
        target = pre.get("target")
        templates = target_templates(model, groups, target)
        if templates is None:
            raise err("precondition %d targets unknown node template or group %s" % (i, target),
                      path + ".target")
        known = {"state"}
        for t in templates:
            known |= set(model.node_types[model.templates[t].type].attributes or {})
        cond = pre.get("condition") or []
        _check_clauses(cond, known, err, path + ".condition")
        out.append({"target": target, "templates": templates, "condition": cond})
    return out


_CONSTRAINTS = ("equal", "greater_than", "greater_or_equal", "less_than", "less_or_equal",
                "in_range", "valid_values", "length", "min_length", "max_length", "pattern")


def _check_clauses(clauses: Any, known: Set[str], err: WorkflowError, path: str) -> None:
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
            raise err("condition on unknown attribute %s (known: %s)"
                      % (key, ", ".join(sorted(known))), where)
        if not isinstance(value, list) or not all(
                isinstance(x, dict) and len(x) == 1 and next(iter(x)) in _CONSTRAINTS
                for x in value):
            raise err("condition on %s: a list of constraints among %s"
                      % (key, ", ".join(_CONSTRAINTS)), where)


def _holds(op: str, arg: Any, v: Any) -> bool:
    try:
        if op == "equal":
            return bool(v == arg)
        if op == "valid_values":
            return v in arg
        if op == "in_range":
            return v is not None and bool(arg[0] <= v <= arg[1])
        if op in ("greater_than", "greater_or_equal", "less_than", "less_or_equal"):
            if v is None:
                return False
            return bool({"greater_than": v > arg, "greater_or_equal": v >= arg,
                         "less_than": v < arg, "less_or_equal": v <= arg}[op])
        if op in ("length", "min_length", "max_length"):
            n = len(v)
            return bool(n == arg if op == "length" else n >= arg if op == "min_length"
                        else n <= arg)
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
